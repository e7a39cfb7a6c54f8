//! Enrollment proofs verified in batches ([`ProofBatcher`]): a bad proof is named alone
//! and its caller alone refused, every verdict reaches its own caller, a lone proof
//! does not wait, and concurrent enrollments over HTTP are verified in fewer batches
//! than proofs, with the refusal a bad proof always had.

use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use zkcohort_circuits::Fr;
use zkcohort_market::http::{BatchStats, ProofBatcher, ProofBatching};
use zkcohort_market::Store;
use zkcohort_prover::EligibilityProof;
use zkcohort_verifier::Statement;

use crate::common::{
    api_config, api_keys, cohort, enroll_body, keys, prove_cohort, researcher_key, store_config,
    study_body, Cohort, TestServer, ISSUER, RESEARCHER, REWARD,
};

const MEMBERS: usize = 8;
/// The one study of the server here.
const STUDY: u64 = 1;

/// The reward receiver of member `index`.
fn receiver(index: usize) -> Fr {
    Fr::from(500 + index as u64)
}

/// [`MEMBERS`] identities and one proof each for [`STUDY`], made once for every test here.
fn proved() -> &'static (Cohort, Vec<EligibilityProof>) {
    static PROVED: OnceLock<(Cohort, Vec<EligibilityProof>)> = OnceLock::new();
    PROVED.get_or_init(|| {
        let cohort = cohort(MEMBERS);
        let proofs = prove_cohort(keys(), &cohort, STUDY, receiver);
        (cohort, proofs)
    })
}

/// Batches of up to 64 proofs that wait up to `max_wait` for requests on their way.
fn batching(max_wait: Duration) -> ProofBatching {
    ProofBatching {
        max_proofs: NonZeroUsize::new(64).unwrap(),
        max_wait,
    }
}

/// `proof`'s statement with another signal hash: what the proof does not prove.
fn forged(proof: &EligibilityProof) -> Statement {
    Statement {
        signal_hash: proof.statement.signal_hash + Fr::from(1u64),
        ..proof.statement
    }
}

/// Announces every item first, then verifies them all at once in `batcher`; each
/// caller's verdict, in the items' order.
async fn verify_together(
    batcher: &ProofBatcher,
    items: Vec<(Statement, EligibilityProof)>,
) -> Vec<bool> {
    let incoming: Vec<_> = items.iter().map(|_| batcher.incoming()).collect();
    let callers: Vec<_> = incoming
        .into_iter()
        .zip(items)
        .map(|(incoming, (statement, proof))| tokio::spawn(incoming.verify(statement, proof.proof)))
        .collect();
    let mut verdicts = Vec::new();
    for caller in callers {
        verdicts.push(caller.await.unwrap().unwrap());
    }
    verdicts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_with_one_bad_proof_refuses_it_alone_and_answers_each_caller() {
    let (_, proofs) = proved();
    // A long wait: every announced request is in the batch before it goes.
    let batcher = ProofBatcher::new(
        keys().prepared_verifying_key().clone(),
        batching(Duration::from_secs(30)),
    );
    const BAD: usize = 1;
    let items: Vec<(Statement, EligibilityProof)> = proofs[..5]
        .iter()
        .enumerate()
        .map(|(index, proof)| {
            let statement = if index == BAD {
                forged(proof)
            } else {
                proof.statement
            };
            (statement, proof.clone())
        })
        .collect();
    let verdicts = verify_together(&batcher, items).await;
    // Off-centre, so verdicts handed back in reverse order would show.
    assert_eq!(verdicts, [true, false, true, true, true]);
    assert_eq!(
        batcher.stats(),
        BatchStats {
            batches: 1,
            proofs: 5,
            // The failed combined check, then each proof on its own.
            final_exponentiations: 6,
        }
    );

    // All valid: one final exponentiation for the batch.
    let items = proofs[..5]
        .iter()
        .map(|proof| (proof.statement, proof.clone()))
        .collect();
    assert_eq!(verify_together(&batcher, items).await, [true; 5]);
    assert_eq!(
        batcher.stats(),
        BatchStats {
            batches: 2,
            proofs: 10,
            final_exponentiations: 7,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_waits_only_for_requests_on_their_way() {
    let (_, proofs) = proved();
    let batcher = ProofBatcher::new(
        keys().prepared_verifying_key().clone(),
        batching(Duration::from_secs(30)),
    );
    let proof = &proofs[0];
    // Announced, then refused before its proof was checked: no batch waits for it.
    let refused = batcher.incoming();
    let lone = batcher.incoming();
    drop(refused);
    let started = Instant::now();
    assert!(lone
        .verify(proof.statement, proof.proof.clone())
        .await
        .unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a lone proof waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        batcher.stats(),
        BatchStats {
            batches: 1,
            proofs: 1,
            final_exponentiations: 1,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_batching_off_each_proof_is_verified_on_its_own() {
    let (_, proofs) = proved();
    let batcher = ProofBatcher::new(keys().prepared_verifying_key().clone(), ProofBatching::OFF);
    let items = proofs[..3]
        .iter()
        .enumerate()
        .map(|(index, proof)| {
            let statement = if index == 2 {
                forged(proof)
            } else {
                proof.statement
            };
            (statement, proof.clone())
        })
        .collect();
    assert_eq!(verify_together(&batcher, items).await, [true, true, false]);
    assert_eq!(
        batcher.stats(),
        BatchStats {
            batches: 3,
            proofs: 3,
            final_exponentiations: 3,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enrollments_with_one_bad_proof_enroll_every_honest_patient() {
    let (cohort, proofs) = proved();
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open(folder.path(), store_config()).unwrap();
    let researcher = researcher_key().verifying_key().to_bytes();
    let mut config = api_config(keys(), api_keys(researcher));
    // Long enough that requests sent together meet in a batch on a loaded machine; a
    // batch goes as soon as none is on its way.
    config.proof_batching = batching(Duration::from_millis(200));
    let server = TestServer::serve(store, config).await;
    let (status, appended) = server
        .post("/registry/records", Some(ISSUER), &cohort.records_body())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{appended}");
    let (status, study) = server
        .post("/studies", Some(RESEARCHER), &study_body(MEMBERS as u64))
        .await;
    assert_eq!(
        (status, study["id"].as_u64()),
        (StatusCode::CREATED, Some(STUDY))
    );
    server.mint(&researcher, REWARD * MEMBERS as u64).await;
    server.fund(STUDY, REWARD * MEMBERS as u64).await;

    // Member BAD sends its proof with another reward receiver: the statement the server
    // rebuilds is not the one proved.
    const BAD: usize = 3;
    let bodies: Vec<_> = proofs
        .iter()
        .enumerate()
        .map(|(index, proof)| {
            let paid_to = if index == BAD {
                receiver(MEMBERS)
            } else {
                receiver(index)
            };
            enroll_body(proof, &paid_to)
        })
        .collect();
    let path = format!("/studies/{STUDY}/enroll");
    let submissions: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (api, path) = (server.api.clone(), path.clone());
            tokio::spawn(async move { api.post(&path, None, &body).await })
        })
        .collect();
    for (index, submission) in submissions.into_iter().enumerate() {
        let (status, answer) = submission.await.unwrap();
        if index == BAD {
            // The refusal a bad proof has always had.
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
            assert_eq!(
                answer,
                serde_json::json!({"error": {
                    "code": "bad_proof",
                    "message": "the proof does not verify for this study",
                }})
            );
        } else {
            assert_eq!(status, StatusCode::CREATED, "member {index}: {answer}");
        }
    }
    let stats = server.state.proof_batcher().stats();
    assert_eq!(stats.proofs, MEMBERS as u64);
    assert!(
        stats.batches < stats.proofs,
        "{MEMBERS} concurrent enrollments verified one by one: {stats:?}"
    );
    for index in (0..MEMBERS).filter(|&index| index != BAD) {
        assert_eq!(
            server.paid_to(&receiver(index)).await,
            REWARD,
            "member {index}"
        );
    }
    assert_eq!(server.paid_to(&receiver(MEMBERS)).await, 0);

    // The refused patient's nullifier was not taken: its own proof enrolls it.
    let (status, answer) = server
        .post(&path, None, &enroll_body(&proofs[BAD], &receiver(BAD)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(server.paid_to(&receiver(BAD)).await, REWARD);
    server.stop().await;
}
