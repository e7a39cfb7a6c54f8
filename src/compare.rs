//! `zkcohort bench compare`: our cold proof against snarkjs (and rapidsnark, when its
//! binary is given) on the same circuit, proving key and witness, run by run.
//!
//! The circuit is exported once in the circom formats (`circuit.zkey`, `witness.wtns`);
//! each round runs every prover as its own process, in an order that rotates from round
//! to round so that none always runs first on a cold cache or last on a hot machine;
//! every proof each prover writes is checked against the verifying key before its time
//! counts. The figures are whole-process wall times, as a user waits for them; peak
//! memory comes from GNU time where `/usr/bin/time` exists, and `--threads N` also pins
//! every prover to the first N cores with `taskset` where it exists (rapidsnark sizes its
//! thread pool by the cores it may use, not by a variable).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use zkcohort_prover::CircuitKeys;
use zkcohort_verifier::snarkjs;

use crate::proving::ShapeName;

/// What `bench compare` runs.
#[derive(clap::Args)]
pub(crate) struct CompareOptions {
    /// The circuit shape.
    #[arg(long, value_enum, default_value = "reference")]
    pub(crate) shape: ShapeName,
    /// Folder with the key files.
    #[arg(long, default_value = "zkcohort-data/keys")]
    pub(crate) keys: PathBuf,
    /// Rounds: each prover runs once per round.
    #[arg(long, default_value_t = 7)]
    pub(crate) rounds: usize,
    /// Threads per prover (RAYON_NUM_THREADS, OMP_NUM_THREADS and the first N cores
    /// through taskset; all cores when absent).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// The snarkjs command.
    #[arg(long, default_value = "node_modules/.bin/snarkjs")]
    pub(crate) snarkjs: PathBuf,
    /// A rapidsnark `prover` binary to run as well.
    #[arg(long)]
    pub(crate) rapidsnark: Option<PathBuf>,
    /// Folder for the exported circuit and the proofs.
    #[arg(long, default_value = "zkcohort-data/compare")]
    pub(crate) work: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A prover's command line, writing its proof into the given folder.
type CommandFor = Box<dyn Fn(&Path) -> Command>;

/// One prover's runs.
struct ProverRuns {
    name: &'static str,
    wall: Vec<Duration>,
    peak_kib: Vec<u64>,
}

impl ProverRuns {
    fn median(&self) -> Duration {
        median(&self.wall)
    }
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

pub(crate) fn compare(options: &CompareOptions) -> Result<()> {
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    let shape = options.shape.shape();
    let keys = CircuitKeys::load(&options.keys, shape).with_context(|| {
        format!(
            "loading keys from {} (run `zkcohort setup --shape ...` first)",
            options.keys.display()
        )
    })?;
    std::fs::create_dir_all(&options.work)
        .with_context(|| format!("creating {}", options.work.display()))?;
    eprintln!("exporting the circuit to {}", options.work.display());
    let patient = zkcohort::sample::single_fixture_patient(shape)?;
    let files = zkcohort_prover::circom::export_circom(
        &keys,
        &options.work,
        Some(patient.request.build(
            shape,
            zkcohort_circuits::measure::random_blinding(&mut rand::rngs::OsRng),
        )?),
    )?;
    let witness = files.witness.context("the export wrote no witness")?;
    let snarkjs_ok = Command::new(&options.snarkjs)
        .arg("--version")
        .output()
        .is_ok();
    ensure!(
        snarkjs_ok,
        "{} does not run: install snarkjs (`bash tests/tools.sh` puts it in node_modules) or pass --snarkjs",
        options.snarkjs.display()
    );
    let exe = std::env::current_exe().context("finding this program")?;
    let mut provers: Vec<(ProverRuns, CommandFor)> = Vec::new();
    let keys_dir = options.keys.clone();
    let shape_name = options.shape;
    provers.push((
        runs("zkcohort"),
        Box::new(move |out| {
            let mut command = Command::new(&exe);
            command
                .args(["bench", "cold-proof", "--shape"])
                .arg(shape_name.as_arg())
                .arg("--keys")
                .arg(&keys_dir)
                .arg("--out")
                .arg(out);
            command
        }),
    ));
    let (zkey, wtns) = (files.zkey.clone(), witness.clone());
    if let Some(rapidsnark) = options.rapidsnark.clone() {
        let (zkey, wtns) = (zkey.clone(), wtns.clone());
        provers.push((
            runs("rapidsnark"),
            Box::new(move |out| {
                let mut command = Command::new(&rapidsnark);
                command
                    .arg(&zkey)
                    .arg(&wtns)
                    .arg(out.join("proof.json"))
                    .arg(out.join("public.json"));
                command
            }),
        ));
    }
    let snarkjs_command = options.snarkjs.clone();
    provers.push((
        runs("snarkjs"),
        Box::new(move |out| {
            let mut command = Command::new(&snarkjs_command);
            command
                .args(["groth16", "prove"])
                .arg(&zkey)
                .arg(&wtns)
                .arg(out.join("proof.json"))
                .arg(out.join("public.json"));
            command
        }),
    ));
    let gnu_time = Path::new("/usr/bin/time");
    let taskset = Path::new("/usr/bin/taskset");
    let measure_memory = gnu_time.exists();
    for round in 0..options.rounds {
        let count = provers.len();
        for step in 0..count {
            let (runs, command_for) = &mut provers[(round + step) % count];
            let out = options.work.join(format!("proof-{}", runs.name));
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let mut prover = command_for(&out);
            if let (Some(threads), true) = (options.threads, taskset.exists()) {
                // rapidsnark sizes its thread pool by the cores it may run on.
                let mut pinned = Command::new(taskset);
                pinned
                    .arg("-c")
                    .arg(format!("0-{}", threads.saturating_sub(1)))
                    .arg(prover.get_program())
                    .args(prover.get_args());
                prover = pinned;
            }
            let memory_file = out.join("peak-kib");
            let mut command = if measure_memory {
                let mut wrapped = Command::new(gnu_time);
                wrapped
                    .args(["-f", "%M", "-o"])
                    .arg(&memory_file)
                    .arg(prover.get_program())
                    .args(prover.get_args());
                wrapped
            } else {
                prover
            };
            if let Some(threads) = options.threads {
                command.env("RAYON_NUM_THREADS", threads.to_string());
                command.env("OMP_NUM_THREADS", threads.to_string());
            }
            let started = Instant::now();
            let output = command
                .output()
                .with_context(|| format!("running {}", runs.name))?;
            let wall = started.elapsed();
            if !output.status.success() {
                bail!(
                    "{} failed ({}): {}",
                    runs.name,
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            check_proof(&keys, &out)
                .with_context(|| format!("{}'s proof in round {}", runs.name, round + 1))?;
            runs.wall.push(wall);
            if let Some(kib) = std::fs::read_to_string(&memory_file)
                .ok()
                .and_then(|text| text.trim().lines().last()?.trim().parse().ok())
            {
                runs.peak_kib.push(kib);
            }
            eprintln!(
                "round {}/{}: {} {:.0} ms, proof verified",
                round + 1,
                options.rounds,
                runs.name,
                wall.as_secs_f64() * 1e3
            );
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let ours = provers[0].0.median();
    let threads = options
        .threads
        .map_or_else(|| "all".to_string(), |n| n.to_string());
    if options.json {
        let provers: Vec<_> = provers
            .iter()
            .map(|(runs, _)| {
                serde_json::json!({
                    "prover": runs.name,
                    "median_ms": runs.median().as_secs_f64() * 1e3,
                    "min_ms": runs.wall.iter().min().map(|d| d.as_secs_f64() * 1e3),
                    "max_ms": runs.wall.iter().max().map(|d| d.as_secs_f64() * 1e3),
                    "peak_rss_kib": runs.peak_kib.iter().max(),
                    "zkcohort_ratio": ours.as_secs_f64() / runs.median().as_secs_f64(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "shape": options.shape.as_arg(),
                "constraints": keys.constraints(),
                "rounds": options.rounds,
                "threads": threads,
                "load_average": load,
                "provers": provers,
            })
        );
        return Ok(());
    }
    println!(
        "{} shape, {} constraints, {} rounds, threads {threads}, load average {load} (1 min)",
        options.shape.as_arg(),
        keys.constraints(),
        options.rounds
    );
    println!(
        "{:<12} {:>10} {:>17} {:>10} {:>14}",
        "prover", "median ms", "min-max ms", "peak MB", "zkcohort/it"
    );
    for (runs, _) in &provers {
        let min = runs.wall.iter().min().copied().unwrap_or_default();
        let max = runs.wall.iter().max().copied().unwrap_or_default();
        let peak = runs.peak_kib.iter().max().map_or_else(
            || "-".to_string(),
            |kib| format!("{:.0}", *kib as f64 / 1024.0),
        );
        println!(
            "{:<12} {:>10.0} {:>17} {:>10} {:>14.2}",
            runs.name,
            runs.median().as_secs_f64() * 1e3,
            format!(
                "{:.0}-{:.0}",
                min.as_secs_f64() * 1e3,
                max.as_secs_f64() * 1e3
            ),
            peak,
            ours.as_secs_f64() / runs.median().as_secs_f64()
        );
    }
    Ok(())
}

fn runs(name: &'static str) -> ProverRuns {
    ProverRuns {
        name,
        wall: Vec::new(),
        peak_kib: Vec::new(),
    }
}

/// Reads a prover's `proof.json` and `public.json` and verifies them.
fn check_proof(keys: &CircuitKeys, out: &Path) -> Result<()> {
    let read = |name: &str| {
        let path = out.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let proof = snarkjs::proof_from_json(&read("proof.json")?)?;
    let inputs = snarkjs::public_signals_from_json(&read("public.json")?)?;
    ensure!(
        zkcohort_verifier::verify_inputs(keys.prepared_verifying_key(), &inputs, &proof)?,
        "the proof does not verify"
    );
    Ok(())
}
