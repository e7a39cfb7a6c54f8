//! Release time at scale: a sled store in a temporary folder with a study of
//! 10,000 settled enrollments (each with the measure values its proof would
//! open), and fresh DP releases of each kind drawn from it: what
//! [`Store::release`] does per request (read the settled values, calibrate
//! OpenDP's measurement, draw, charge both budgets, store and audit).
//!
//! ```text
//! cargo bench -p zkcohort-market --bench release
//! RELEASE_ENROLLMENTS=2000 RELEASE_ROUNDS=20 cargo bench -p zkcohort-market --bench release
//! ```
//!
//! Each round asks a new question (its epsilon differs by a micro-epsilon), so
//! none is a cache hit; the caps are set high enough for every round. The
//! median and the range of the rounds are printed per statistic, with a cached
//! answer's time for comparison.

#[path = "../tests/market/common.rs"]
mod common;

use std::time::{Duration, Instant};

use zkcohort_circuits::CircuitId;
use zkcohort_cohort::Catalog;
use zkcohort_market::dp::{Epsilon, Mechanism, PostProcess, ReleaseRequest, Spend, Statistic};
use zkcohort_market::{NewStudy, PrivacyCaps, ProofRecord, Store, StoreConfig};

use common::{fund_through_store, measured_query, public_key, store_config, unverified_proof};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {value:?} is not a number"))
        })
        .unwrap_or(default)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let enrollments = setting("RELEASE_ENROLLMENTS", 10_000);
    let rounds = setting("RELEASE_ROUNDS", 10).max(1);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let large = Spend {
        epsilon: Epsilon::from_micros(1_000_000 * 1_000_000).expect("epsilon 10^6"),
        delta_nanos: 1_000_000,
    };
    let store = Store::open(
        folder.path(),
        StoreConfig {
            privacy: PrivacyCaps {
                study: large,
                researcher: large,
                ..PrivacyCaps::default()
            },
            ..store_config()
        },
    )
    .expect("the store opens");
    let researcher = public_key(1);
    let study = store
        .create_study(NewStudy {
            researcher,
            title: "Release bench".into(),
            description: String::new(),
            query: measured_query(),
            query_hash: [7; 32],
            circuit_id: CircuitId([7; 32]),
            issuers: vec![[9; 32]],
            issuer_depth: 1,
            reward: 1,
            max_enrollments: enrollments,
            epsilon_budget: 1_000_000.0,
        })
        .expect("the study posts");
    store.mint(researcher, enrollments).expect("mint");
    fund_through_store(&store, 1, study.id, enrollments).expect("fund");
    let measures = measured_query()
        .compile(Catalog::bundled())
        .expect("compiles")
        .measures;
    let span = |position: usize| measures[position].value_count() - 1;
    let root = store.registry_root().expect("a root").root;
    // A receiver is a field element (a note key): canonical, unlike most byte strings.
    let mut receiver = [0u8; 32];
    receiver[31] = 2;
    let started = Instant::now();
    for n in 0..enrollments {
        let mut nullifier = [0u8; 32];
        nullifier[..8].copy_from_slice(&n.to_be_bytes());
        let values = vec![1 + n % span(0), 1 + n % span(1), (n * 37) % (span(2) + 1)];
        store
            .enroll(
                study.id,
                nullifier,
                receiver,
                ProofRecord {
                    registry_root: root,
                    proof: unverified_proof(),
                    public_inputs: vec![],
                },
                values,
            )
            .expect("enrolls");
    }
    eprintln!(
        "{enrollments} settled enrollments stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("statistic                     median     min      max   (fresh releases of {enrollments} enrollments, {rounds} rounds)");
    for (name, statistic) in [
        ("histogram of sex", Statistic::Histogram("sex".into())),
        (
            "table of age by sex",
            Statistic::Table("age".into(), "sex".into()),
        ),
        ("sum and mean of hba1c", Statistic::Sum("3".into())),
    ] {
        for mechanism in [Mechanism::DiscreteLaplace, Mechanism::DiscreteGaussian] {
            let mut times: Vec<Duration> = (0..rounds)
                .map(|round| {
                    let request = ReleaseRequest {
                        study: study.id,
                        statistic: statistic.clone(),
                        epsilon: Epsilon::from_micros(500_000 + round).expect("epsilon"),
                        mechanism,
                    };
                    let started = Instant::now();
                    store
                        .release(researcher, &request, PostProcess::None)
                        .expect("releases");
                    started.elapsed()
                })
                .collect();
            let low = times.iter().min().copied().unwrap_or_default();
            let high = times.iter().max().copied().unwrap_or_default();
            println!(
                "{:<22} {:<8} {:>7.1} ms {:>7.1} {:>7.1}",
                name,
                if mechanism == Mechanism::DiscreteLaplace {
                    "laplace"
                } else {
                    "gaussian"
                },
                median(&mut times).as_secs_f64() * 1e3,
                low.as_secs_f64() * 1e3,
                high.as_secs_f64() * 1e3,
            );
        }
    }
    let cached = ReleaseRequest {
        study: study.id,
        statistic: Statistic::Histogram("sex".into()),
        epsilon: Epsilon::from_micros(500_000).expect("epsilon"),
        mechanism: Mechanism::DiscreteLaplace,
    };
    let started = Instant::now();
    store
        .release(researcher, &cached, PostProcess::I2b2)
        .expect("a cached release");
    println!(
        "a cached answer (i2b2 display): {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
}
