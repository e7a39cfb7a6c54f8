//! Enrollment under load: the real HTTP server on 127.0.0.1 over sled in a
//! temporary folder, fed real small-shape Groth16 proofs of distinct
//! identities at fixed concurrency levels, each level with proof batching off
//! (every proof verified on its own) and on ([`ProofBatching`]), and the split of an
//! enrollment's cost between proof checking and storage, measured in the same run.
//!
//! ```text
//! cargo bench -p zkcohort-market --bench enroll_load
//! ENROLL_LOAD_PROOFS=96 ENROLL_LOAD_CONCURRENCY=1,8,32 cargo bench -p zkcohort-market --bench enroll_load
//! ```
//!
//! - `ENROLL_LOAD_PROOFS`: enrollments per concurrency level (distinct
//!   identities, at most the small registry's 256 leaves); default 48.
//! - `ENROLL_LOAD_CONCURRENCY`: comma-separated levels; default `1,4,16`.
//! - `ENROLL_LOAD_ROUNDS`: rounds per level and batching mode, each on a fresh store;
//!   default 5. The modes' rounds alternate, so a machine's drift hits both alike.
//! - `ENROLL_LOAD_BATCH_SIZE`, `ENROLL_LOAD_BATCH_WAIT_MS`: the batching that is
//!   compared with none; default the server's ([`ProofBatching::default`]).
//!
//! The proofs are made once (`prove_batch`, progress on stderr); each round
//! gets a fresh store and server with the same marketplace key, so the same
//! proofs enroll again. Verification cost does not depend on the circuit
//! shape (seven public inputs), so the small shape stands for the reference
//! one on the server side.

#[path = "../tests/market/common.rs"]
mod common;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zkcohort_circuits::identity::StudyScope;
use zkcohort_circuits::statement::fr_to_bytes;
use zkcohort_circuits::Fr;
use zkcohort_cohort::{Catalog, Query};
use zkcohort_market::http::{BatchStats, ProofBatching};
use zkcohort_market::{NewStudy, ProofRecord, Store};
use zkcohort_prover::{CircuitKeys, EligibilityProof, ProofRequest};
use zkcohort_testkit::{issued_at, ISSUER as ISSUER_ACCOUNT};
use zkcohort_verifier::events::AppendedRecord;
use zkcohort_verifier::snarkjs::{proof_from_json, proof_to_json};

use common::{
    api_config, api_keys, cohort, compiled_query, enroll_body, fund_through_store, marketplace_key,
    public_key, records_body, researcher_key, store_config, test_issuers, Cohort, TestServer,
    ISSUER, OPERATOR, QUERY, RESEARCHER, SHAPE,
};
use zkcohort_market::api::FundStudy;

const REWARD: u64 = 1;
/// The one study of every store here.
const STUDY: u64 = 1;

/// What to run, from the environment.
struct Options {
    proofs: usize,
    concurrency: Vec<usize>,
    rounds: usize,
    /// The batching compared with none.
    batching: ProofBatching,
}

impl Options {
    fn from_env() -> Result<Self, String> {
        let proofs = match std::env::var("ENROLL_LOAD_PROOFS") {
            Ok(text) => text
                .parse()
                .map_err(|_| format!("ENROLL_LOAD_PROOFS: not a number: {text:?}"))?,
            Err(_) => 48,
        };
        let capacity = 1usize << SHAPE.registry_depth;
        if proofs == 0 || proofs > capacity {
            return Err(format!("ENROLL_LOAD_PROOFS must be in 1..={capacity}"));
        }
        let concurrency = match std::env::var("ENROLL_LOAD_CONCURRENCY") {
            Ok(text) => text
                .split(',')
                .map(|level| match level.trim().parse() {
                    Ok(level) if level > 0 => Ok(level),
                    _ => Err(format!("ENROLL_LOAD_CONCURRENCY: bad level {level:?}")),
                })
                .collect::<Result<Vec<usize>, _>>()?,
            Err(_) => vec![1, 4, 16],
        };
        let rounds = match std::env::var("ENROLL_LOAD_ROUNDS") {
            Ok(text) => match text.parse() {
                Ok(rounds) if rounds > 0 => rounds,
                _ => {
                    return Err(format!(
                        "ENROLL_LOAD_ROUNDS: not a positive number: {text:?}"
                    ))
                }
            },
            Err(_) => 5,
        };
        let defaults = ProofBatching::default();
        let max_proofs = match std::env::var("ENROLL_LOAD_BATCH_SIZE") {
            Ok(text) => text
                .parse::<NonZeroUsize>()
                .map_err(|_| format!("ENROLL_LOAD_BATCH_SIZE: not a positive number: {text:?}"))?,
            Err(_) => defaults.max_proofs,
        };
        let max_wait = match std::env::var("ENROLL_LOAD_BATCH_WAIT_MS") {
            Ok(text) => Duration::from_millis(
                text.parse()
                    .map_err(|_| format!("ENROLL_LOAD_BATCH_WAIT_MS: not a number: {text:?}"))?,
            ),
            Err(_) => defaults.max_wait,
        };
        Ok(Self {
            proofs,
            concurrency,
            rounds,
            batching: ProofBatching {
                max_proofs,
                max_wait,
            },
        })
    }
}

/// The reward receiver of identity `index`.
fn receiver(index: usize) -> Fr {
    Fr::from(1 + index as u64)
}

/// `count` identities holding the fixture patient's record (each its own
/// salt and leaf), the records the issuer posts for them, and one proof each for
/// [`STUDY`].
fn prove_cohort(keys: &CircuitKeys, count: usize) -> (Vec<AppendedRecord>, Vec<EligibilityProof>) {
    let query = compiled_query();
    let scope = StudyScope::for_study(&marketplace_key(), STUDY);
    let Cohort {
        members,
        records,
        registry,
        ..
    } = cohort(count);
    let requests: Vec<ProofRequest> = members
        .into_iter()
        .enumerate()
        .map(|(index, (secret, record))| ProofRequest {
            secret,
            record,
            registry_path: registry.path(index as u64).expect("an appended leaf"),
            issuers: test_issuers(),
            query: query.clone(),
            study_scope: scope,
            reward_receiver: receiver(index),
        })
        .collect();
    let proofs = Mutex::new(vec![None; count]);
    let started = Instant::now();
    keys.prove_batch(requests, |progress, proof| {
        proofs.lock().expect("not poisoned")[progress.index] = Some(proof.expect("proves"));
        eprint!(
            "\rproving {}/{count} ({:.1} s)",
            progress.done,
            started.elapsed().as_secs_f64()
        );
    });
    eprintln!();
    let proofs = proofs
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|proof| proof.expect("every request proved"))
        .collect();
    (records, proofs)
}

/// One concurrency level's figures in one batching mode.
struct LevelFigures {
    concurrency: usize,
    batching: ProofBatching,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// The process's CPU time per enrollment (server and client), when known.
    cpu_per_enrollment: Option<Duration>,
    /// What the servers' proof batchers verified, over every round.
    stats: BatchStats,
}

impl LevelFigures {
    /// The figures of one mode's rounds, added up in `total`.
    fn new(concurrency: usize, batching: ProofBatching, total: Round) -> Self {
        let mut latencies = total.latencies;
        latencies.sort();
        let count = latencies.len() as u32;
        Self {
            concurrency,
            batching,
            per_second: f64::from(count) / total.elapsed.as_secs_f64(),
            p50: quantile(&latencies, 0.50),
            p99: quantile(&latencies, 0.99),
            max: *latencies.last().expect("at least one enrollment"),
            cpu_per_enrollment: total.cpu.map(|cpu| cpu / count),
            stats: total.stats,
        }
    }
}

/// What a round measured: each enrollment's latency, the time all of them took, the
/// CPU time the process spent meanwhile and what the proof batcher verified.
struct Round {
    latencies: Vec<Duration>,
    elapsed: Duration,
    cpu: Option<Duration>,
    stats: BatchStats,
}

/// The CPU time this process has used, all threads (Linux: `/proc/self/stat`, in
/// clock ticks of 10 ms); `None` elsewhere. Unlike wall time, it holds on a machine
/// that other work shares.
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The `quantile` (0..=1) of sorted latencies, nearest rank.
fn quantile(sorted: &[Duration], quantile: f64) -> Duration {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Serves a fresh store verifying proofs with `batching`, sets up the market over
/// HTTP and enrolls every proof with `concurrency` requests in flight.
async fn run_round(
    keys: &CircuitKeys,
    records: &[AppendedRecord],
    bodies: &Arc<Vec<Value>>,
    concurrency: usize,
    batching: ProofBatching,
) -> Round {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let store = Store::open(folder.path(), store_config()).expect("a new store");
    let researcher = public_key(7);
    let mut config = api_config(keys, api_keys(researcher));
    config.proof_batching = batching;
    let server = TestServer::serve(store, config).await;
    let base = server.base.clone();
    let client = server.client.clone();
    let post = |path: &str, key: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let count = bodies.len() as u64;
    for (path, key, body) in [
        ("/registry/records", ISSUER, records_body(records)),
        (
            "/studies",
            RESEARCHER,
            json!({"title": "load", "query": QUERY, "reward": REWARD,
                   "max_enrollments": count, "epsilon_budget": 1.0}),
        ),
        (
            "/ledger/mint",
            OPERATOR,
            json!({"to": hex::encode(researcher), "amount": count * REWARD}),
        ),
        (
            "/studies/1/fund",
            RESEARCHER,
            // The researcher's first order (nonce 0) on this server's marketplace key.
            serde_json::to_value(FundStudy::sign(
                &researcher_key(),
                &marketplace_key(),
                1,
                count * REWARD,
                0,
            ))
            .expect("an order serializes"),
        ),
    ] {
        let response = post(path, key, body).await.expect("the server answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }

    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(format!("{base}/studies/{STUDY}/enroll"));
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, bodies, url, client) = (
                Arc::clone(&next),
                Arc::clone(bodies),
                Arc::clone(&url),
                client.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(index) else {
                        break latencies;
                    };
                    let sent = Instant::now();
                    let response = client
                        .post(url.as_str())
                        .json(body)
                        .send()
                        .await
                        .expect("the server answers");
                    let status = response.status();
                    let answer = response.text().await.expect("a body");
                    assert_eq!(status, StatusCode::CREATED, "enrollment {index}: {answer}");
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("the worker finishes"));
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let stats = server.state.proof_batcher().stats();
    server.stop().await;
    Round {
        latencies,
        elapsed,
        cpu,
        stats,
    }
}

/// `rounds` rounds at one concurrency level in each of `modes`, the modes' rounds
/// alternating; one figure per mode.
async fn run_level(
    keys: &CircuitKeys,
    records: &[AppendedRecord],
    bodies: &Arc<Vec<Value>>,
    concurrency: usize,
    rounds: usize,
    modes: &[ProofBatching],
) -> Vec<LevelFigures> {
    let mut measured: Vec<Round> = modes
        .iter()
        .map(|_| Round {
            latencies: Vec::new(),
            elapsed: Duration::ZERO,
            cpu: Some(Duration::ZERO),
            stats: BatchStats::default(),
        })
        .collect();
    for _ in 0..rounds {
        for (&batching, total) in modes.iter().zip(&mut measured) {
            let round = run_round(keys, records, bodies, concurrency, batching).await;
            total.latencies.extend(round.latencies);
            total.elapsed += round.elapsed;
            total.cpu = total.cpu.zip(round.cpu).map(|(total, round)| total + round);
            total.stats.batches += round.stats.batches;
            total.stats.proofs += round.stats.proofs;
            total.stats.final_exponentiations += round.stats.final_exponentiations;
        }
    }
    modes
        .iter()
        .zip(measured)
        .map(|(&batching, total)| LevelFigures::new(concurrency, batching, total))
        .collect()
}

/// How a mode is named in the table.
fn mode_name(batching: ProofBatching) -> String {
    if batching.is_on() {
        format!(
            "N={}, T={} ms",
            batching.max_proofs,
            batching.max_wait.as_secs_f64() * 1000.0
        )
    } else {
        "off (N=1)".into()
    }
}

/// Milliseconds per item of `work` over `items`, run one after another.
fn ms_per_item<T>(items: &[T], mut work: impl FnMut(&T)) -> f64 {
    let started = Instant::now();
    items.iter().for_each(&mut work);
    started.elapsed().as_secs_f64() * 1000.0 / items.len() as f64
}

/// Milliseconds per enrollment of each part of the server's work, without HTTP.
#[derive(Default)]
struct CostSplit {
    /// Parsing the proof's JSON and checking its points.
    parse_ms: f64,
    /// One Groth16 check.
    verify_ms: f64,
    /// One proof's share of a `verify_batch` of every proof, on one core as the
    /// server's proof batcher runs it.
    batch_verify_ms: f64,
    /// The store's enrollment transaction with its flush, on a fresh store.
    store_ms: f64,
    /// The same from [`CONCURRENT_STORE_THREADS`] threads at once: wall time per
    /// enrollment, which shows whether concurrent flushes share their write.
    concurrent_store_ms: f64,
}

/// The threads of [`CostSplit::concurrent_store_ms`].
const CONCURRENT_STORE_THREADS: usize = 16;

/// [`CostSplit`], each part averaged over `rounds` passes over the proofs (a fresh
/// store each pass).
fn split_costs(
    keys: &CircuitKeys,
    records: &[AppendedRecord],
    proofs: &[EligibilityProof],
    rounds: usize,
) -> CostSplit {
    let texts: Vec<String> = proofs
        .iter()
        .map(|proof| proof_to_json(&proof.proof))
        .collect();
    let items: Vec<_> = proofs
        .iter()
        .map(|proof| (proof.statement, proof.proof.clone()))
        .collect();
    let one_core = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread");
    let mut split = CostSplit::default();
    let CostSplit {
        parse_ms,
        verify_ms,
        batch_verify_ms,
        store_ms,
        concurrent_store_ms,
    } = &mut split;
    for _ in 0..rounds {
        *parse_ms += ms_per_item(&texts, |text| {
            proof_from_json(text).expect("a valid proof");
        });
        *verify_ms += ms_per_item(proofs, |proof| {
            let valid = zkcohort_verifier::verify(
                keys.prepared_verifying_key(),
                &proof.statement,
                &proof.proof,
            )
            .expect("seven public inputs");
            assert!(valid, "a valid proof verifies");
        });
        let started = Instant::now();
        let report = one_core
            .install(|| zkcohort_verifier::verify_batch(keys.prepared_verifying_key(), &items))
            .expect("seven public inputs");
        assert!(report.batch_passed, "valid proofs verify together");
        *batch_verify_ms += started.elapsed().as_secs_f64() * 1000.0 / items.len() as f64;
        *store_ms += store_ms_per_enrollment(keys, records, proofs, &texts, 1);
        *concurrent_store_ms +=
            store_ms_per_enrollment(keys, records, proofs, &texts, CONCURRENT_STORE_THREADS);
    }
    let rounds = rounds as f64;
    for part in [
        parse_ms,
        verify_ms,
        batch_verify_ms,
        store_ms,
        concurrent_store_ms,
    ] {
        *part /= rounds;
    }
    split
}

/// Milliseconds per `Store::enroll` + flush over every proof, on a fresh
/// store with the study set up, from `threads` threads at once (wall time).
fn store_ms_per_enrollment(
    keys: &CircuitKeys,
    records: &[AppendedRecord],
    proofs: &[EligibilityProof],
    texts: &[String],
    threads: usize,
) -> f64 {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let store = Store::open(folder.path(), store_config()).expect("a new store");
    let researcher = public_key(7);
    let count = proofs.len() as u64;
    store
        .append_records(ISSUER_ACCOUNT, records, issued_at())
        .expect("room in the registry");
    store.mint(researcher, count * REWARD).expect("mints");
    let study = store
        .create_study(NewStudy {
            researcher,
            title: "load".into(),
            description: String::new(),
            query: Query::parse(QUERY, Catalog::bundled()).expect("a valid query"),
            query_hash: fr_to_bytes(&proofs[0].statement.query_hash),
            circuit_id: keys.circuit_id(),
            issuers: vec![ISSUER_ACCOUNT],
            issuer_depth: SHAPE.issuer_depth,
            reward: REWARD,
            max_enrollments: count,
            epsilon_budget: 1.0,
        })
        .expect("creates the study");
    fund_through_store(&store, 7, study.id, count * REWARD).expect("funds the escrow");
    store.flush().expect("flushes");
    let records: Vec<(usize, &EligibilityProof, ProofRecord)> = proofs
        .iter()
        .enumerate()
        .map(|(index, proof)| {
            let record = ProofRecord {
                registry_root: fr_to_bytes(&proof.statement.registry_root),
                proof: serde_json::from_str(&texts[index]).expect("JSON"),
                public_inputs: proof.statement.to_decimal_strings(),
            };
            (index, proof, record)
        })
        .collect();
    let enroll = |(index, proof, record): &(usize, &EligibilityProof, ProofRecord)| {
        store
            .enroll(
                study.id,
                fr_to_bytes(&proof.statement.nullifier.0),
                fr_to_bytes(&receiver(*index)),
                record.clone(),
                proof.measure_opening.values.clone(),
            )
            .expect("enrolls");
        store.flush().expect("flushes");
    };
    if threads == 1 {
        return ms_per_item(&records, enroll);
    }
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(item) = records.get(next.fetch_add(1, Ordering::Relaxed)) {
                    enroll(item);
                }
            });
        }
    });
    started.elapsed().as_secs_f64() * 1000.0 / records.len() as f64
}

fn main() {
    let options = match Options::from_env() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("enroll_load: {message}");
            std::process::exit(2);
        }
    };
    eprintln!("setting up the small-shape circuit keys");
    let keys =
        CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(1)).expect("circuit setup");
    let (records, proofs) = prove_cohort(&keys, options.proofs);
    let bodies: Arc<Vec<Value>> = Arc::new(
        proofs
            .iter()
            .enumerate()
            .map(|(index, proof)| enroll_body(proof, &receiver(index)))
            .collect(),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let modes = [ProofBatching::OFF, options.batching];
    let levels: Vec<Vec<LevelFigures>> = options
        .concurrency
        .iter()
        .map(|&concurrency| {
            eprintln!(
                "enrolling {} x {} rounds at concurrency {concurrency}, batching off and on",
                proofs.len(),
                options.rounds
            );
            runtime.block_on(run_level(
                &keys,
                &records,
                &bodies,
                concurrency,
                options.rounds,
                &modes,
            ))
        })
        .collect();
    eprintln!("timing verification and storage alone");
    let CostSplit {
        parse_ms,
        verify_ms,
        batch_verify_ms,
        store_ms,
        concurrent_store_ms,
    } = split_costs(&keys, &records, &proofs, options.rounds);

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "enroll_load: {} enrollments x {} rounds per level over HTTP on 127.0.0.1, \
         sled in a temporary folder, small shape ({} clauses), {cores} cores",
        proofs.len(),
        options.rounds,
        SHAPE.clauses
    );
    println!(
        "concurrency  proof batching   enroll/s   p50 ms   p99 ms   max ms  CPU ms/enroll  \
         proofs/batch  final exp/proof  vs off"
    );
    for modes in &levels {
        let unbatched = modes[0].per_second;
        for level in modes {
            let stats = level.stats;
            println!(
                "{:>11}  {:<15}  {:>8.1}  {:>7.1}  {:>7.1}  {:>7.1}  {:>13}  {:>12.2}  {:>15.2}  {:>5.2}x",
                level.concurrency,
                mode_name(level.batching),
                level.per_second,
                level.p50.as_secs_f64() * 1000.0,
                level.p99.as_secs_f64() * 1000.0,
                level.max.as_secs_f64() * 1000.0,
                level.cpu_per_enrollment.map_or("n/a".into(), |cpu| format!(
                    "{:.2}",
                    cpu.as_secs_f64() * 1000.0
                )),
                stats.proofs as f64 / stats.batches as f64,
                stats.final_exponentiations as f64 / stats.proofs as f64,
                level.per_second / unbatched,
            );
        }
    }
    let checking_ms = parse_ms + verify_ms;
    println!(
        "per enrollment, one at a time, same proofs, {} rounds:",
        options.rounds
    );
    println!("  proof JSON parse + point checks  {parse_ms:>7.2} ms");
    println!("  Groth16 verify (7 inputs)        {verify_ms:>7.2} ms");
    println!(
        "  verify_batch of {:>3}, per proof   {batch_verify_ms:>7.2} ms  (one core)",
        proofs.len()
    );
    println!("  Store::enroll + flush            {store_ms:>7.2} ms");
    println!(
        "  the same, {CONCURRENT_STORE_THREADS} threads at once       {concurrent_store_ms:>7.2} ms  (wall per enrollment)"
    );
    println!(
        "  proof checking : storage         {:>7.2} : 1  ({:.0}% proof checking)",
        checking_ms / store_ms,
        100.0 * checking_ms / (checking_ms + store_ms)
    );
}
