//! Circuit keys on disk: the single-party development setup behind
//! `zkcohort setup`, and the load-or-create step `zkcohort serve` runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_prover::CircuitKeys;

/// Keys just created by [`setup_keys`].
pub struct CreatedKeys {
    /// The keys.
    pub keys: CircuitKeys,
    /// The proving-key file they were saved to.
    pub path: PathBuf,
    /// How long the setup and the save took.
    pub elapsed: Duration,
}

/// Runs a single-party development setup for `shape` and saves the keys in
/// `keys_dir`, warning on stderr that whoever ran it could forge proofs.
///
/// # Errors
///
/// Synthesis or I/O errors of the setup and the save.
pub fn setup_keys(shape: CircuitShape, keys_dir: &Path) -> Result<CreatedKeys> {
    eprintln!("DEVELOPMENT SETUP (single party): whoever runs this setup could forge proofs.");
    eprintln!("Use keys from a multi-party ceremony for anything real.");
    let started = Instant::now();
    let keys = CircuitKeys::setup(shape).context("circuit setup")?;
    let path = keys
        .save(keys_dir)
        .with_context(|| format!("saving the keys in {}", keys_dir.display()))?;
    Ok(CreatedKeys {
        keys,
        path,
        elapsed: started.elapsed(),
    })
}

/// Loads the keys of `shape` from `keys_dir`, or creates them there with
/// [`setup_keys`] (saying so on stderr) when the folder has none for this shape.
///
/// # Errors
///
/// A key file that does not load (corrupt, another shape, unreadable), or a
/// failed setup.
pub fn load_or_setup_keys(shape: CircuitShape, keys_dir: &Path) -> Result<CircuitKeys> {
    let path = CircuitKeys::proving_key_path(keys_dir, shape);
    if path.exists() {
        return CircuitKeys::load(keys_dir, shape)
            .with_context(|| format!("loading the circuit keys {}", path.display()));
    }
    eprintln!(
        "no circuit keys for this shape in {}: creating them (one time)",
        keys_dir.display()
    );
    let created = setup_keys(shape, keys_dir)?;
    eprintln!(
        "created {} in {:.1} s (circuit id {})",
        created.path.display(),
        created.elapsed.as_secs_f64(),
        created.keys.circuit_id()
    );
    Ok(created.keys)
}
