//! `zkcohort ceremony`: the multi-party trusted setup, step by step. Each participant
//! runs `contribute` on their own machine with the current file only; the secret comes
//! from the OS RNG and is never written. The files are snarkjs's `.ptau` and `.zkey`, so
//! `snarkjs zkey verify` and `snarkjs zkey contribute` work on them too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;
use zkcohort::keys::{save_ceremony_keys, write_atomically};
use zkcohort_prover::ceremony::{transcript, Circuit, Phase1, Phase2};
use zkcohort_verifier::setup::split_transcript;

use zkcohort_circuits::shape::NoteShape;

use crate::proving::ShapeName;

/// The circuits a ceremony is run for.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CircuitName {
    /// The eligibility circuit of `--shape`.
    Eligibility,
    /// The note-transfer circuit (merging and withdrawing reward notes).
    Note,
}

/// Which circuit a ceremony command is about.
#[derive(clap::Args)]
pub(crate) struct CircuitChoice {
    /// The circuit: every marketplace needs keys for both.
    #[arg(long, value_enum, default_value = "eligibility")]
    circuit: CircuitName,
    /// The eligibility circuit's shape (ignored for the note circuit).
    #[arg(long, value_enum, default_value = "reference")]
    shape: ShapeName,
}

/// Runs `$body` with `$circuit` bound to the synthesized circuit `$choice` names (the
/// two circuits are different types, so the body is compiled once for each).
macro_rules! with_circuit {
    ($choice:expr, |$circuit:ident| $body:expr) => {
        match $choice.circuit {
            CircuitName::Eligibility => {
                let $circuit =
                    Circuit::of($choice.shape.shape()).context("synthesizing the circuit")?;
                $body
            }
            CircuitName::Note => {
                let $circuit = Circuit::of(NoteShape::STANDARD)
                    .context("synthesizing the note-transfer circuit")?;
                $body
            }
        }
    };
}

#[derive(Subcommand)]
pub(crate) enum CeremonyCommand {
    /// Phase 1 (powers of tau, shared by every circuit).
    #[command(subcommand)]
    Phase1(Phase1Command),
    /// Phase 2 (one per circuit: the eligibility circuit of a shape, and the note-transfer
    /// circuit).
    #[command(subcommand)]
    Phase2(Phase2Command),
    /// Re-check a whole transcript (phase 1 and phase 2) from the circuit's R1CS.
    Verify {
        #[command(flatten)]
        circuit: CircuitChoice,
        /// The phase 1 file.
        #[arg(long, required_unless_present = "transcript", requires = "zkey")]
        phase1: Option<PathBuf>,
        /// The phase-2 state.
        #[arg(long, requires = "phase1")]
        zkey: Option<PathBuf>,
        /// Both in one file, as a marketplace serves them (`GET /circuits/{id}/transcript`).
        #[arg(long, conflicts_with_all = ["phase1", "zkey"])]
        transcript: Option<PathBuf>,
        /// Print the verdict as JSON (`phase1_contributions`, `phase2_contributions`).
        #[arg(long)]
        json: bool,
    },
    /// Verify a transcript, write the proving key and keep the transcript beside it.
    Finalize {
        #[command(flatten)]
        circuit: CircuitChoice,
        /// The phase 1 file.
        #[arg(long)]
        phase1: PathBuf,
        /// The final phase-2 state.
        #[arg(long)]
        zkey: PathBuf,
        /// Folder for the proving key and the transcript files.
        #[arg(long, default_value = "zkcohort-data/keys")]
        keys: PathBuf,
        /// Print the result as JSON (`proving_key`, `circuit_id`, `transcript_id`).
        #[arg(long)]
        json: bool,
    },
    /// Write the circuit as circuit.r1cs (for `snarkjs zkey verify`).
    R1cs {
        #[command(flatten)]
        circuit: CircuitChoice,
        /// The file to write.
        #[arg(long, default_value = "circuit.r1cs")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum Phase1Command {
    /// Start a phase 1 from the generators, sized for a shape (or a given power).
    New {
        /// The circuit whose domain sets the power (the reference eligibility circuit's
        /// is the largest, so its phase 1 serves the note-transfer circuit too).
        #[command(flatten)]
        circuit: CircuitChoice,
        /// The power of tau, instead of the shape's.
        #[arg(long)]
        power: Option<u32>,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Start from a snarkjs `.ptau` (e.g. the Perpetual Powers of Tau); its powers are checked.
    Import {
        /// The `.ptau` file.
        #[arg(long)]
        ptau: PathBuf,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a contribution (OS randomness, never written).
    Contribute {
        /// The current file.
        #[arg(long = "in")]
        input: PathBuf,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// The participant's name (64 bytes at most).
        #[arg(long)]
        name: String,
    },
    /// Compute the Lagrange bases phase 2 needs (after the last contribution).
    Prepare {
        /// The current file.
        #[arg(long = "in")]
        input: PathBuf,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify phase 1 alone.
    Verify {
        /// The file.
        #[arg(long = "in")]
        input: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum Phase2Command {
    /// The initial phase-2 state of a shape over a prepared phase 1.
    New {
        #[command(flatten)]
        circuit: CircuitChoice,
        /// The prepared phase 1 file.
        #[arg(long)]
        phase1: PathBuf,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a contribution (OS randomness, never written).
    Contribute {
        #[command(flatten)]
        circuit: CircuitChoice,
        /// The current state.
        #[arg(long = "in")]
        input: PathBuf,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// The participant's name (64 bytes at most).
        #[arg(long)]
        name: String,
    },
    /// Apply a public random beacon (a value no participant knew in advance).
    Beacon {
        #[command(flatten)]
        circuit: CircuitChoice,
        /// The current state.
        #[arg(long = "in")]
        input: PathBuf,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// The beacon value, hex.
        #[arg(long)]
        hash: String,
        /// SHA-256 is iterated 2^N times over it (10 to 63).
        #[arg(long, default_value_t = 10)]
        iterations_exp: u8,
        /// The name recorded with it.
        #[arg(long, default_value = "beacon")]
        name: String,
    },
}

pub(crate) fn run(command: CeremonyCommand) -> Result<ExitCode> {
    match command {
        CeremonyCommand::Phase1(command) => phase1(command)?,
        CeremonyCommand::Phase2(command) => phase2(command)?,
        CeremonyCommand::Verify {
            circuit,
            phase1,
            zkey,
            transcript: one_file,
            json,
        } => {
            let (phase1, zkey) = match (one_file, phase1, zkey) {
                (Some(file), _, _) => {
                    let bytes = read(&file)?;
                    let (phase1, zkey) =
                        split_transcript(&bytes).with_context(|| format!("{}", file.display()))?;
                    (phase1.to_vec(), zkey.to_vec())
                }
                (None, Some(phase1), Some(zkey)) => (read(&phase1)?, read(&zkey)?),
                _ => anyhow::bail!("give --transcript, or --phase1 and --zkey"),
            };
            let started = Instant::now();
            eprintln!("verifying phase 1 and phase 2 ...");
            let (phase1, phase2) = with_circuit!(circuit, |circuit| transcript::verify(
                &circuit, &phase1, &zkey
            )?);
            let (first, second) = (phase1.contributions().len(), phase2.contributions().len());
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "valid": true,
                        "phase1_contributions": first,
                        "phase2_contributions": second,
                        "seconds": started.elapsed().as_secs_f64(),
                    })
                );
            } else {
                println!(
                    "transcript OK in {:.1} s: {first} phase-1 contributions, {second} phase-2 \
                     contributions",
                    started.elapsed().as_secs_f64(),
                );
            }
        }
        CeremonyCommand::Finalize {
            circuit,
            phase1,
            zkey,
            keys,
            json,
        } => {
            let (phase1_bytes, zkey_bytes) = (read(&phase1)?, read(&zkey)?);
            eprintln!("verifying the transcript ...");
            let (path, circuit_id, id) = with_circuit!(circuit, |circuit| {
                let (circuit_keys, id) = transcript::finalize(circuit, &phase1_bytes, &zkey_bytes)?;
                let path = save_ceremony_keys(&circuit_keys, &keys, &phase1_bytes, &zkey_bytes)?;
                (path, circuit_keys.circuit_id(), id)
            });
            let stem = path.with_extension("");
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "proving_key": path,
                        "circuit_id": circuit_id.to_string(),
                        "transcript_id": id.to_string(),
                        "transcript": [stem.with_extension("ptau"), stem.with_extension("zkey")],
                    })
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "proving key: {}\ncircuit id: {circuit_id}\ntranscript id: {id}\ntranscript: {}.ptau and .zkey",
                path.display(),
                stem.display()
            );
        }
        CeremonyCommand::R1cs { circuit, out } => {
            let mut bytes = Vec::new();
            with_circuit!(circuit, |circuit| circuit.write_r1cs(&mut bytes)?);
            write_atomically(&out, &bytes)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn phase1(command: Phase1Command) -> Result<()> {
    match command {
        Phase1Command::New {
            circuit,
            power,
            out,
        } => {
            let power = match power {
                Some(power) => power,
                None => with_circuit!(circuit, |circuit| circuit.domain_power()),
            };
            write_atomically(&out, &Phase1::new(power)?.to_bytes())?;
            println!(
                "phase 1 of 2^{power} started: its trapdoor is public until someone contributes"
            );
        }
        Phase1Command::Import { ptau, out } => {
            let phase1 = Phase1::read(&read(&ptau)?)?;
            eprintln!("checking the imported powers ...");
            phase1.verify()?;
            write_atomically(&out, &phase1.to_bytes())?;
            println!(
                "imported 2^{} powers of tau (their own contributions are checked by `snarkjs powersoftau verify`)",
                phase1.power()
            );
        }
        Phase1Command::Contribute { input, out, name } => {
            let mut phase1 = Phase1::read(&read(&input)?)?;
            let started = Instant::now();
            eprintln!("contributing to 2^{} powers of tau ...", phase1.power());
            let response = phase1.contribute(&name, &mut rand::rngs::OsRng)?.response;
            write_atomically(&out, &phase1.to_bytes())?;
            println!(
                "contributed in {:.1} s; response hash {}",
                started.elapsed().as_secs_f64(),
                hex::encode(response)
            );
        }
        Phase1Command::Prepare { input, out } => {
            let mut phase1 = Phase1::read(&read(&input)?)?;
            let started = Instant::now();
            eprintln!(
                "computing the Lagrange bases of 2^{} powers (group FFTs) ...",
                phase1.power()
            );
            phase1.prepare();
            write_atomically(&out, &phase1.to_bytes())?;
            println!("prepared in {:.1} s", started.elapsed().as_secs_f64());
        }
        Phase1Command::Verify { input } => {
            let phase1 = Phase1::read(&read(&input)?)?;
            let started = Instant::now();
            phase1.verify()?;
            println!(
                "phase 1 OK in {:.1} s: {} contributions",
                started.elapsed().as_secs_f64(),
                phase1.contributions().len()
            );
        }
    }
    Ok(())
}

fn phase2(command: Phase2Command) -> Result<()> {
    match command {
        Phase2Command::New {
            circuit,
            phase1,
            out,
        } => {
            let phase1 = Phase1::read(&read(&phase1)?)?;
            let started = Instant::now();
            eprintln!("computing the initial keys from the circuit and phase 1 ...");
            let state = with_circuit!(circuit, |circuit| {
                let state = Phase2::new(&circuit, &phase1)?;
                write_atomically(&out, &state.to_zkey(&circuit))?;
                state
            });
            println!(
                "initial state in {:.1} s; circuit hash {}",
                started.elapsed().as_secs_f64(),
                hex::encode(state.circuit_hash())
            );
        }
        Phase2Command::Contribute {
            circuit,
            input,
            out,
            name,
        } => {
            let started = Instant::now();
            let hash = with_circuit!(circuit, |circuit| {
                let mut state = Phase2::from_zkey(&circuit, &read(&input)?)?;
                let hash = state.contribute(&name, &mut rand::rngs::OsRng)?;
                write_atomically(&out, &state.to_zkey(&circuit))?;
                hash
            });
            println!(
                "contributed in {:.1} s; contribution hash {}",
                started.elapsed().as_secs_f64(),
                hex::encode(hash)
            );
        }
        Phase2Command::Beacon {
            circuit,
            input,
            out,
            hash,
            iterations_exp,
            name,
        } => {
            let beacon = hex::decode(&hash).context("the beacon hash is not hex")?;
            let contribution = with_circuit!(circuit, |circuit| {
                let mut state = Phase2::from_zkey(&circuit, &read(&input)?)?;
                let contribution = state.beacon(&name, &beacon, iterations_exp)?;
                write_atomically(&out, &state.to_zkey(&circuit))?;
                contribution
            });
            println!(
                "beacon applied; contribution hash {}",
                hex::encode(contribution)
            );
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
