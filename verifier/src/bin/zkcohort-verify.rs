//! `zkcohort-verify`: the trial sponsor's offline check of eligibility proofs
//! and study bundles.
//!
//! ```text
//! zkcohort-verify proof --vk verification_key.json --proof proof.json --public public.json
//! zkcohort-verify bundle study.json --marketplace-key HEX [--transcript FILE] [--json]
//! zkcohort-verify study.json ...    (the same as `bundle study.json ...`)
//! ```
//!
//! `proof` prints each public input by name, `bundle` a table of checks, then
//! `VALID` or `INVALID`; a bundle whose keys are a development setup gets a warning
//! line before the table and after the verdict, since its proofs may be forged. A bundle
//! checked without `--marketplace-key` was only checked against the key it carries, which
//! anyone can write: the verdict is followed by an `UNPINNED` line and the exit status is
//! 1 unless `--allow-unpinned` is given (`zkcohort marketplace --server URL` prints the
//! key to pin). Exit status: 0 when valid (and pinned), 1 when not, 2 for malformed or
//! unreadable input (the error names the file and the field).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use zkcohort_verifier::snarkjs::{
    proof_from_json, public_signals_from_json, verifying_key_from_json,
};
use zkcohort_verifier::{
    prepare_verifying_key, verify, verify_bundle, CeremonyTranscript, KeySetup, Statement,
    StudyBundle, PUBLIC_INPUT_NAMES,
};

/// Verify zkcohort eligibility proofs offline (snarkjs Groth16 JSON, BN254).
#[derive(Parser)]
#[command(name = "zkcohort-verify", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify one proof: exit 0 when valid, 1 when invalid, 2 for malformed input.
    Proof {
        /// The verifying key, snarkjs `verification_key.json`.
        #[arg(long)]
        vk: PathBuf,
        /// The proof, snarkjs `proof.json`.
        #[arg(long)]
        proof: PathBuf,
        /// The public signals, snarkjs `public.json`: registry_root, query_hash,
        /// study_scope, nullifier, signal_hash, issuers_root, measure_commitment.
        #[arg(long)]
        public: PathBuf,
    },
    /// Verify a study bundle end to end: exit 0 when valid, 1 when invalid, 2
    /// for malformed input. `zkcohort-verify FILE` means `bundle FILE`.
    Bundle {
        /// The bundle, as `GET /studies/{id}/bundle` serves it.
        file: PathBuf,
        /// The marketplace's ed25519 key (hex) the bundle must be signed by.
        #[arg(long, value_name = "HEX")]
        marketplace_key: Option<String>,
        /// The ceremony transcript to pin (as `GET /circuits/{id}/transcript` serves
        /// it): the bundle's verifying key must be its output and the bundle must
        /// name its id. Its contributions are checked by `zkcohort ceremony verify`.
        #[arg(long, value_name = "FILE")]
        transcript: Option<PathBuf>,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Accept a bundle checked only against the key it carries (no
        /// `--marketplace-key`): a forger's own bundle passes that way.
        #[arg(long)]
        allow_unpinned: bool,
    },
}

/// The first arguments that are not a bundle file.
const NOT_A_FILE: [&str; 7] = ["proof", "bundle", "help", "-h", "--help", "-V", "--version"];

fn main() -> ExitCode {
    let mut args: Vec<_> = std::env::args_os().collect();
    // The product docs say `zkcohort-verify BUNDLE`: a first argument that is
    // no subcommand or flag is a bundle file.
    if args
        .get(1)
        .is_some_and(|first| !NOT_A_FILE.iter().any(|known| first == *known))
    {
        args.insert(1, "bundle".into());
    }
    let cli = Cli::parse_from(args);
    match run(cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<bool> {
    match command {
        Command::Proof { vk, proof, public } => check_proof(&vk, &proof, &public),
        Command::Bundle {
            file,
            marketplace_key,
            transcript,
            json,
            allow_unpinned,
        } => {
            let valid = check_bundle(
                &file,
                marketplace_key.as_deref(),
                transcript.as_deref(),
                json,
            )?;
            if marketplace_key.is_some() {
                return Ok(valid);
            }
            let line = "UNPINNED: checked against the key inside the bundle, which anyone can write; pin the marketplace's key with --marketplace-key HEX (`zkcohort marketplace --server URL` prints it)";
            if json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
            Ok(valid && allow_unpinned)
        }
    }
}

fn check_bundle(
    path: &Path,
    marketplace_key: Option<&str>,
    transcript: Option<&Path>,
    json: bool,
) -> Result<bool> {
    let pinned = marketplace_key
        .map(|text| {
            let mut key = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut key)
                .map(|()| key)
                .context("--marketplace-key: expected 64 hex digits")
        })
        .transpose()?;
    let transcript = transcript
        .map(|file| {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            CeremonyTranscript::read(&bytes).with_context(|| format!("{}", file.display()))
        })
        .transpose()?;
    let bundle = StudyBundle::from_json(&read(path)?)
        .with_context(|| format!("{}: not a study bundle", path.display()))?;
    let report = verify_bundle(&bundle, pinned.as_ref(), transcript.as_ref());
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(report.valid);
    }
    let development = report.setup == KeySetup::Development;
    const WARNING: &str = "WARNING: DEVELOPMENT SETUP: the circuit keys were made by a single party, who could forge every proof in this bundle";
    if development {
        println!("{WARNING}");
    }
    println!("bundle {}", path.display());
    println!(
        "  study {}, marketplace key {}",
        report.study_id, report.marketplace_key
    );
    println!(
        "  head size {}, {} audit entries verified, {} enrollments, {} proofs verified, {} of {} tokens paid",
        report.head_size,
        report.audit_entries_verified,
        report.enrollments,
        report.proofs_verified,
        report.tokens_paid,
        report.tokens_funded
    );
    for check in &report.checks {
        let mark = if check.passed { "ok  " } else { "FAIL" };
        println!("  {mark} {:<18} {}", check.name, check.detail);
    }
    println!("{}", if report.valid { "VALID" } else { "INVALID" });
    if development {
        println!("{WARNING}");
    }
    Ok(report.valid)
}

fn check_proof(vk_path: &Path, proof_path: &Path, public_path: &Path) -> Result<bool> {
    let vk = verifying_key_from_json(&read(vk_path)?)
        .with_context(|| format!("{}: invalid verifying key", vk_path.display()))?;
    let inputs = public_signals_from_json(&read(public_path)?)
        .with_context(|| format!("{}: invalid public signals", public_path.display()))?;
    let expected = vk.gamma_abc_g1.len().saturating_sub(1);
    anyhow::ensure!(
        inputs.len() == expected,
        "{}: {} public signals, but the verifying key {} takes {expected}",
        public_path.display(),
        inputs.len(),
        vk_path.display(),
    );
    let statement = Statement::from_public_inputs(&inputs)
        .with_context(|| format!("{}: not an eligibility statement", public_path.display()))?;
    let proof = proof_from_json(&read(proof_path)?)
        .with_context(|| format!("{}: invalid proof", proof_path.display()))?;

    let valid = verify(&prepare_verifying_key(&vk), &statement, &proof)?;
    println!("proof {}", proof_path.display());
    for (name, value) in PUBLIC_INPUT_NAMES
        .iter()
        .zip(statement.to_decimal_strings())
    {
        println!("  {name:<13} {value}");
    }
    println!("{}", if valid { "VALID" } else { "INVALID" });
    Ok(valid)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
