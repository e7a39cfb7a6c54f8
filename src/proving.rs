//! Key setup and the prover bench commands.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use zkcohort::keys::{setup_keys, CreatedKeys};
use zkcohort::sample::{eligible_fixture_requests, single_fixture_patient};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::shape::NoteShape;
use zkcohort_prover::CircuitKeys;
use zkcohort_verifier::snarkjs;

/// Circuit shapes by name.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum ShapeName {
    /// 6 clauses, 256 slots, 256 registry leaves, 2 issuers per study (tests, the demo).
    Small,
    /// 16 clauses, 1024 slots, 2^20 registry leaves, 64 issuers per study.
    Reference,
}

impl ShapeName {
    /// The name as the command line takes it.
    pub(crate) fn as_arg(self) -> &'static str {
        match self {
            ShapeName::Small => "small",
            ShapeName::Reference => "reference",
        }
    }

    pub(crate) fn shape(self) -> CircuitShape {
        match self {
            ShapeName::Small => CircuitShape::SMALL,
            ShapeName::Reference => CircuitShape::REFERENCE,
        }
    }
}

pub(crate) fn setup(shape: ShapeName, keys_dir: &Path, json: bool) -> Result<()> {
    let shape = shape.shape();
    let CreatedKeys {
        keys,
        path,
        elapsed,
    } = setup_keys(shape, keys_dir)?;
    if json {
        let note = setup_keys(NoteShape::STANDARD, keys_dir)?;
        println!(
            "{}",
            serde_json::json!({
                "circuit_id": keys.circuit_id().to_string(),
                "proving_key": path,
                "note_circuit_id": note.keys.circuit_id().to_string(),
                "note_proving_key": note.path,
            })
        );
        return Ok(());
    }
    println!(
        "shape: {} clauses, slot depth {}, registry depth {}, issuer depth {}\ncircuit id: {}\nproving key: {} ({:.1} MB) in {:.1} s",
        shape.clauses,
        shape.slot_depth,
        shape.registry_depth,
        shape.issuer_depth,
        keys.circuit_id(),
        path.display(),
        std::fs::metadata(&path)?.len() as f64 / 1e6,
        elapsed.as_secs_f64()
    );
    let note = setup_keys(NoteShape::STANDARD, keys_dir)?;
    println!(
        "note-transfer circuit id: {}\nnote-transfer proving key: {} ({:.1} MB) in {:.1} s",
        note.keys.circuit_id(),
        note.path.display(),
        std::fs::metadata(&note.path)?.len() as f64 / 1e6,
        note.elapsed.as_secs_f64()
    );
    Ok(())
}

fn load_keys(keys_dir: &Path, shape: CircuitShape) -> Result<CircuitKeys> {
    CircuitKeys::load(keys_dir, shape).with_context(|| {
        format!(
            "loading keys from {} (run `zkcohort setup` for this shape first)",
            keys_dir.display()
        )
    })
}

/// One proof from a cold process: load the key while the witness is built (independent
/// work, side by side), prove, and write snarkjs `proof.json`, `public.json` and
/// `verification_key.json` into `out`.
pub(crate) fn cold_proof(shape: ShapeName, keys_dir: &Path, out: &Path) -> Result<()> {
    let shape = shape.shape();
    let started = Instant::now();
    let (keys, built) = rayon::join(
        || {
            let keys = load_keys(keys_dir, shape);
            (keys, started.elapsed())
        },
        || {
            let built = single_fixture_patient(shape).and_then(|patient| {
                Ok(patient.request.build(
                    shape,
                    zkcohort_circuits::measure::random_blinding(&mut rand::rngs::OsRng),
                )?)
            });
            (built, started.elapsed())
        },
    );
    let ((keys, loaded), ((statement, witness), witnessed)) =
        ((keys.0?, keys.1), (built.0?, built.1));
    let ready = started.elapsed();
    let proof = keys.prove_witness(statement, witness, &mut rand::rngs::OsRng)?;
    let proved = started.elapsed();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("proof.json", snarkjs::proof_to_json(&proof))?;
    write("public.json", snarkjs::statement_to_json(&statement))?;
    write(
        "verification_key.json",
        snarkjs::verifying_key_to_json(keys.verifying_key()),
    )?;
    let written = started.elapsed();
    let ms = |duration: std::time::Duration| duration.as_secs_f64() * 1e3;
    println!(
        "load key {:.0} ms beside import + witness {:.0} ms, prove {:.0} ms, write {:.0} ms; total {:.0} ms",
        ms(loaded),
        ms(witnessed),
        ms(proved - ready),
        ms(written - proved),
        ms(written)
    );
    Ok(())
}

/// Batch proving rate against the single-thread rate, measured in one run.
pub(crate) fn batch(shape: ShapeName, keys_dir: &Path, count: usize) -> Result<()> {
    let shape = shape.shape();
    let keys = load_keys(keys_dir, shape)?;
    let eligible = eligible_fixture_requests(shape, 2)?;
    anyhow::ensure!(
        !eligible.is_empty(),
        "no sample patient is eligible for the sample query"
    );
    let requests: Vec<_> = eligible.iter().cycle().take(count).cloned().collect();
    let single_count = count.clamp(1, 4);
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let started = Instant::now();
    one_thread.install(|| -> Result<()> {
        for request in &requests[..single_count] {
            keys.prove(request)?;
        }
        Ok(())
    })?;
    let single_rate = single_count as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let failures = std::sync::atomic::AtomicUsize::new(0);
    keys.prove_batch(requests, |progress, result| {
        if result.is_err() {
            failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        eprint!("\rproved {}/{count}", progress.done);
    });
    eprintln!();
    let batch_rate = count as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(failures.into_inner() == 0, "some proofs failed");
    println!(
        "threads {}: one thread {single_rate:.2} proofs/s, batch of {count} {batch_rate:.2} proofs/s, ratio {:.2}",
        rayon::current_num_threads(),
        batch_rate / single_rate
    );
    Ok(())
}

/// Exports the shape's constraint system, proving key and a sample patient's witness
/// in the circom formats (`circuit.r1cs`, `circuit.zkey`, `witness.wtns`).
pub(crate) fn export_circom(shape: ShapeName, keys_dir: &Path, out: &Path) -> Result<()> {
    let shape = shape.shape();
    let keys = load_keys(keys_dir, shape)?;
    let patient = single_fixture_patient(shape)?;
    let files = zkcohort_prover::circom::export_circom(
        &keys,
        out,
        Some(patient.request.build(
            shape,
            zkcohort_circuits::measure::random_blinding(&mut rand::rngs::OsRng),
        )?),
    )?;
    println!("wrote {}, {}", files.r1cs.display(), files.zkey.display());
    if let Some(witness) = files.witness {
        println!(
            "wrote {} (sample patient {}, sample query)",
            witness.display(),
            patient.name
        );
    }
    println!(
        "try: snarkjs groth16 prove {}/circuit.zkey {}/witness.wtns proof.json public.json",
        out.display(),
        out.display()
    );
    Ok(())
}
