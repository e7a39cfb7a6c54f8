//! Circuit keys on disk: the single-party development setup behind `zkcohort setup`,
//! the ceremony's keys with their transcript (what `zkcohort ceremony finalize` writes),
//! the keys a marketplace serves, and the keys a wallet downloads.
//!
//! A key folder holds `proving-key-c{clauses}-s{slot}-r{registry}-i{issuers}.bin` (the
//! eligibility circuit) and `note-proving-key-d{depth}.bin` (the note-transfer circuit)
//! and, for keys from a ceremony, each one's transcript beside it under the same stem:
//! `.ptau` (phase 1) and `.zkey` (the final phase-2 state).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::progress::{Progress, Unit};
use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::shape::NoteShape;
use zkcohort_circuits::CircuitId;
use zkcohort_market::http::{CircuitFiles, ServedFile};
use zkcohort_prover::ceremony::{transcript, Circuit, Phase1, Phase2};
use zkcohort_prover::keys::KeyedCircuit;
use zkcohort_prover::CircuitKeys;
use zkcohort_verifier::setup::transcript_file;
use zkcohort_verifier::{CeremonyTranscript, KeySetup};

use crate::client::MarketClient;
use crate::patient::AnnouncedCircuit;

/// The flag that lets `zkcohort serve` use keys without a ceremony transcript.
pub const DEV_FLAG: &str = "--dev-unsafe-setup";

/// Keys just created by [`setup_keys`].
pub struct CreatedKeys<S: KeyedCircuit = CircuitShape> {
    /// The keys.
    pub keys: CircuitKeys<S>,
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
pub fn setup_keys<S: KeyedCircuit>(shape: S, keys_dir: &Path) -> Result<CreatedKeys<S>> {
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

/// The transcript files beside a shape's proving key: (phase 1 `.ptau`, final `.zkey`).
pub fn transcript_paths<S: KeyedCircuit>(keys_dir: &Path, shape: S) -> (PathBuf, PathBuf) {
    let stem = CircuitKeys::proving_key_path(keys_dir, shape).with_extension("");
    (stem.with_extension("ptau"), stem.with_extension("zkey"))
}

/// Saves ceremony keys and their transcript in `keys_dir` (as `ceremony finalize`
/// does); returns the proving key's path.
///
/// # Errors
///
/// I/O errors.
pub fn save_ceremony_keys<S: KeyedCircuit>(
    keys: &CircuitKeys<S>,
    keys_dir: &Path,
    phase1: &[u8],
    zkey: &[u8],
) -> Result<PathBuf> {
    let path = keys
        .save(keys_dir)
        .with_context(|| format!("saving the keys in {}", keys_dir.display()))?;
    let (phase1_path, zkey_path) = transcript_paths(keys_dir, keys.shape());
    write_atomically(&phase1_path, phase1)?;
    write_atomically(&zkey_path, zkey)?;
    Ok(path)
}

/// Writes then renames, so a crash never leaves half a file under the final name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}

/// What `zkcohort serve` does with keys that have no ceremony transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupPolicy {
    /// Refuse them: only keys with a transcript beside them are served.
    CeremonyOnly,
    /// Serve them (and make them with a single-party setup when there are none),
    /// announcing a development setup: [`DEV_FLAG`].
    DevelopmentUnsafe,
}

/// A circuit a marketplace serves: its keys, where they came from, and the files it
/// hands to wallets and sponsors.
pub struct ServedCircuit<S: KeyedCircuit = CircuitShape> {
    /// The keys.
    pub keys: CircuitKeys<S>,
    /// Where they came from.
    pub setup: KeySetup,
    /// The proving key file, as served.
    pub proving_key_file: Vec<u8>,
    /// The one-file ceremony transcript (`zkcohort_verifier::setup`), for ceremony keys.
    pub transcript_file: Option<Vec<u8>>,
}

impl<S: KeyedCircuit> ServedCircuit<S> {
    /// The files the marketplace serves for it.
    pub fn files(&self) -> CircuitFiles {
        CircuitFiles {
            proving_key: Some(ServedFile::new(self.proving_key_file.clone())),
            transcript: self.transcript_file.clone().map(ServedFile::new),
        }
    }
}

/// Loads the keys `zkcohort serve` serves from `keys_dir`.
///
/// Keys with a transcript beside them are checked against it at every start: the
/// transcript's final verifying key must be the keys' (their circuit ids, hashes of
/// the whole verifying key, are compared) and its id is what the marketplace announces
/// and its bundles name. The contributions themselves are not re-verified here (a
/// pairing check of every step, seconds for the small shape and minutes for the
/// reference one): `ceremony finalize` verified them before writing the keys, and
/// anyone re-checks the served transcript with `zkcohort ceremony verify`; the id
/// pins exactly the files that were checked.
///
/// # Errors
///
/// Keys without a transcript (or no keys) under [`SetupPolicy::CeremonyOnly`], naming
/// the ceremony commands and [`DEV_FLAG`]; a transcript that is not these keys'; key
/// or transcript files that do not load; a failed development setup.
pub fn load_served_circuit<S: KeyedCircuit>(
    shape: S,
    keys_dir: &Path,
    policy: SetupPolicy,
) -> Result<ServedCircuit<S>> {
    let path = CircuitKeys::proving_key_path(keys_dir, shape);
    let (phase1_path, zkey_path) = transcript_paths(keys_dir, shape);
    let has_transcript = phase1_path.exists() && zkey_path.exists();
    let keys = if path.exists() {
        CircuitKeys::load(keys_dir, shape)
            .with_context(|| format!("loading the circuit keys {}", path.display()))?
    } else if policy == SetupPolicy::DevelopmentUnsafe {
        tracing::warn!(
            "no circuit keys for this shape in {}: creating development keys (one time)",
            keys_dir.display()
        );
        let created = setup_keys(shape, keys_dir)?;
        tracing::info!(
            "created {} in {:.1} s (circuit id {})",
            created.path.display(),
            created.elapsed.as_secs_f64(),
            created.keys.circuit_id()
        );
        created.keys
    } else {
        bail!(
            "no circuit keys for this shape in {}: make them with a multi-party ceremony \
             (`zkcohort ceremony ...`, then `zkcohort ceremony finalize --keys {}`), or start \
             with {DEV_FLAG} for a single-party development setup",
            keys_dir.display(),
            keys_dir.display()
        );
    };
    let proving_key_file =
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if !has_transcript {
        if policy == SetupPolicy::CeremonyOnly {
            bail!(
                "{} has no ceremony transcript beside it ({} and {}, which `zkcohort ceremony \
                 finalize` writes): whoever made these keys could forge proofs. Make keys with \
                 `zkcohort ceremony ...` and `zkcohort ceremony finalize --keys {}`, or start \
                 with {DEV_FLAG} to serve a development setup",
                path.display(),
                phase1_path.display(),
                zkey_path.display(),
                keys_dir.display()
            );
        }
        return Ok(ServedCircuit {
            keys,
            setup: KeySetup::Development,
            proving_key_file,
            transcript_file: None,
        });
    }
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let file = transcript_file(&read(&phase1_path)?, &read(&zkey_path)?);
    let transcript = CeremonyTranscript::read(&file)
        .with_context(|| format!("reading the transcript {}", zkey_path.display()))?;
    let output = CircuitId::of(&transcript.verifying_key);
    ensure!(
        output == keys.circuit_id(),
        "the transcript {} ends in circuit {output}, the keys {} are circuit {}: they are not \
         this ceremony's keys (run `zkcohort ceremony finalize` again)",
        zkey_path.display(),
        path.display(),
        keys.circuit_id()
    );
    Ok(ServedCircuit {
        keys,
        setup: KeySetup::Ceremony {
            transcript_id: transcript.id,
        },
        proving_key_file,
        transcript_file: Some(file),
    })
}

/// The names of the demo's ceremony participants (each contributes to both phases).
pub const DEMO_PARTICIPANTS: [&str; 3] = ["demo-alice", "demo-bob", "demo-carol"];

/// The circuits a marketplace serves: eligibility and note transfer.
pub struct ServedCircuits {
    /// The eligibility circuit.
    pub eligibility: ServedCircuit,
    /// The note-transfer circuit.
    pub note: ServedCircuit<NoteShape>,
}

/// Loads both circuits `zkcohort serve` serves from `keys_dir` under one policy (see
/// [`load_served_circuit`]).
///
/// # Errors
///
/// As [`load_served_circuit`], for either circuit.
pub fn load_served_circuits(
    shape: CircuitShape,
    keys_dir: &Path,
    policy: SetupPolicy,
) -> Result<ServedCircuits> {
    Ok(ServedCircuits {
        eligibility: load_served_circuit(shape, keys_dir, policy)?,
        note: load_served_circuit(NoteShape::STANDARD, keys_dir, policy)
            .context("the note-transfer circuit")?,
    })
}

/// Runs a whole ceremony in this process for both circuits (the eligibility circuit of
/// `shape` and the note-transfer circuit): one phase 1 of the larger circuit's power and a
/// phase 2 per circuit, each with a contribution from every name in `participants`,
/// verified and finalized, the keys and transcripts saved in `keys_dir`. Every secret
/// comes from the OS RNG and is dropped after its contribution, but all of them passed
/// through this one process, so this shows the flow; real keys come from participants on
/// their own machines.
///
/// # Errors
///
/// Synthesis, ceremony or I/O errors.
pub fn run_local_ceremony(
    shape: CircuitShape,
    keys_dir: &Path,
    participants: &[&str],
) -> Result<ServedCircuits> {
    let eligibility = Circuit::of(shape).context("synthesizing the eligibility circuit")?;
    let note = Circuit::of(NoteShape::STANDARD).context("synthesizing the note circuit")?;
    let mut phase1 = Phase1::new(eligibility.domain_power().max(note.domain_power()))?;
    for name in participants {
        phase1.contribute(name, &mut rand::rngs::OsRng)?;
    }
    phase1.prepare();
    let phase1_bytes = phase1.to_bytes();
    Ok(ServedCircuits {
        eligibility: local_phase2(eligibility, &phase1, &phase1_bytes, keys_dir, participants)?,
        note: local_phase2(note, &phase1, &phase1_bytes, keys_dir, participants)?,
    })
}

/// One circuit's phase 2 of [`run_local_ceremony`], finalized and saved.
fn local_phase2<S: KeyedCircuit>(
    circuit: Circuit<S>,
    phase1: &Phase1,
    phase1_bytes: &[u8],
    keys_dir: &Path,
    participants: &[&str],
) -> Result<ServedCircuit<S>> {
    let mut phase2 = Phase2::new(&circuit, phase1)?;
    for name in participants {
        phase2.contribute(name, &mut rand::rngs::OsRng)?;
    }
    let zkey = phase2.to_zkey(&circuit);
    let (keys, transcript_id) = transcript::finalize(circuit, phase1_bytes, &zkey)?;
    let path = save_ceremony_keys(&keys, keys_dir, phase1_bytes, &zkey)?;
    let proving_key_file =
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(ServedCircuit {
        keys,
        setup: KeySetup::Ceremony { transcript_id },
        proving_key_file,
        transcript_file: Some(transcript_file(phase1_bytes, &zkey)),
    })
}

/// The marketplace's proving key of `circuit` (its eligibility or note-transfer
/// circuit), for a wallet: from the wallet's cache (`DIR/keys/<circuit id>/`) when it was
/// downloaded before, else downloaded from `GET /circuits/{id}/proving-key` (a progress
/// bar on stderr when `progress`) and checked before it is cached: its SHA-256 against the
/// server's checksum header, every point on the curve and in the subgroup, its circuit id
/// against the announced one ([`CircuitKeys::load_checked`]), and for a ceremony the
/// transcript (downloaded too): its id must be the announced one and its final verifying
/// key the key's.
///
/// # Errors
///
/// Network errors; a download whose checksum does not match; a key or transcript
/// that fails a check, named; I/O errors of the cache.
pub fn marketplace_keys<S: KeyedCircuit>(
    client: &MarketClient,
    circuit: &AnnouncedCircuit<S>,
    wallet_dir: &Path,
    progress: bool,
) -> Result<CircuitKeys<S>> {
    let announced = circuit.circuit_id;
    let cache = wallet_dir.join("keys").join(announced.to_string());
    if CircuitKeys::proving_key_path(&cache, circuit.shape).exists() {
        // Checked when it was cached; the load still checks the checksum and the id.
        let keys = CircuitKeys::load(&cache, circuit.shape)
            .with_context(|| format!("loading the cached key in {}", cache.display()))?;
        circuit.check_keys(&keys)?;
        return Ok(keys);
    }
    let partial = wallet_dir.join("keys").join(format!("{announced}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("clearing {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    // Nothing refused stays behind: the download lands in `partial`, removed on failure.
    let fetched = fetch_checked_keys(client, circuit, &partial, progress);
    if fetched.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    let keys = fetched?;
    if cache.exists() {
        std::fs::remove_dir_all(&cache).with_context(|| format!("clearing {}", cache.display()))?;
    }
    std::fs::rename(&partial, &cache).with_context(|| format!("caching in {}", cache.display()))?;
    Ok(keys)
}

/// Downloads a circuit's key (and its transcript, for a ceremony) into `partial` and
/// checks them (see [`marketplace_keys`]).
fn fetch_checked_keys<S: KeyedCircuit>(
    client: &MarketClient,
    circuit: &AnnouncedCircuit<S>,
    partial: &Path,
    progress: bool,
) -> Result<CircuitKeys<S>> {
    let announced = circuit.circuit_id;
    let key_file = download(
        client,
        &format!("/circuits/{announced}/proving-key"),
        &format!("{} proving key", circuit.name),
        progress,
    )?;
    std::fs::write(
        CircuitKeys::proving_key_path(partial, circuit.shape),
        &key_file,
    )
    .with_context(|| format!("writing in {}", partial.display()))?;
    let keys = CircuitKeys::load_checked(partial, circuit.shape, announced)
        .with_context(|| format!("the proving key {} serves is refused", client.base()))?;
    if let KeySetup::Ceremony { transcript_id } = circuit.setup {
        let file = download(
            client,
            &format!("/circuits/{announced}/transcript"),
            &format!("{} ceremony transcript", circuit.name),
            progress,
        )?;
        let transcript = CeremonyTranscript::read(&file).context("the served transcript")?;
        ensure!(
            transcript.id == transcript_id,
            "the served transcript is ceremony {}, the marketplace announces {transcript_id}",
            transcript.id
        );
        ensure!(
            CircuitId::of(&transcript.verifying_key) == announced,
            "the served transcript does not end in the announced circuit {announced}"
        );
        std::fs::write(partial.join("transcript.bin"), &file)
            .with_context(|| format!("writing in {}", partial.display()))?;
    }
    Ok(keys)
}

/// Downloads `path`, with a progress bar, and checks it against the checksum header.
fn download(client: &MarketClient, path: &str, what: &str, progress: bool) -> Result<Vec<u8>> {
    let bar = Progress::new(
        progress,
        &format!("downloading the {what}"),
        Unit::Bytes,
        0,
        &format!("  {what} {{bar:40}} {{bytes}}/{{total_bytes}}, {{bytes_per_sec}}, eta {{eta}}"),
    );
    let downloaded = client.download(path, |done, total| {
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(done);
    })?;
    bar.finish();
    let digest = hex::encode(Sha256::digest(&downloaded.bytes));
    match downloaded.checksum {
        Some(sent) if sent == digest => Ok(downloaded.bytes),
        Some(sent) => bail!(
            "the {what} from {path} is damaged: its SHA-256 is {digest}, the server sent {sent}"
        ),
        None => bail!("the server sent the {what} without its checksum header"),
    }
}
