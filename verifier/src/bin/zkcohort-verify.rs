//! `zkcohort-verify`: the trial sponsor's offline check of eligibility proofs.
//!
//! ```text
//! zkcohort-verify proof --vk verification_key.json --proof proof.json --public public.json
//! ```
//!
//! Prints each public input by name and `VALID` or `INVALID`. Exit status: 0 when
//! the proof verifies, 1 when it does not, 2 for malformed or inconsistent input
//! (the error names the file and the field).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use zkcohort_verifier::snarkjs::{
    proof_from_json, public_signals_from_json, verifying_key_from_json,
};
use zkcohort_verifier::{prepare_verifying_key, verify, Statement, PUBLIC_INPUT_NAMES};

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
        /// study_scope, nullifier, signal_hash.
        #[arg(long)]
        public: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    }
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
