//! Reliability of the HTTP API: real servers on 127.0.0.1 over sled stores in
//! temporary folders, real small-shape Groth16 proofs for several identities.
//!
//! - Concurrent enrollments of different identities against an escrow that
//!   pays only some of them.
//! - A clean restart mid-flow, and a crash (SIGKILL of a server process)
//!   right after an acknowledged enrollment.
//! - Seeded fuzzing of every POST route (the note transfer's included) with mutations
//!   of valid bodies: never a 5xx, always the one error shape, and nothing changes.
//! - Reward notes: merged and withdrawn with real note-transfer proofs, every refusal
//!   changing nothing, one note spent 50 times at once paying once.

mod concurrency;
mod crash;
mod fuzz;
mod notes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rand::{rngs::StdRng, Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use zkcohort_circuits::note::note_commitment;
use zkcohort_circuits::statement::fr_to_bytes;
use zkcohort_circuits::Fr;
use zkcohort_market::api::FundStudy;
use zkcohort_market::http::{serve, ApiConfig, AppState, Limits};
use zkcohort_market::{Account, CohortPolicy, SignedHead, SignedTransfer, Store};
use zkcohort_prover::{CircuitId, EligibilityProof};
use zkcohort_verifier::events::AuditEvent;
use zkcohort_verifier::snarkjs::{g2_to_json, verifying_key_from_json, verifying_key_to_json};

use crate::common::{
    cohort, enroll_body, keys, marketplace_key, prove_cohort, public_key, researcher_key,
    store_config, study_body, Api, Cohort, TestServer, ISSUER, OPERATOR, RESEARCHER, REWARD,
};

/// Every store here gets one study, so its id is known before the server
/// starts and proofs can be made in advance.
const STUDY: u64 = 1;

fn researcher() -> [u8; 32] {
    researcher_key().verifying_key().to_bytes()
}

/// The reward receiver of identity `index` (a fresh one per enrollment, as wallets draw).
fn receiver(index: usize) -> Fr {
    Fr::from(100 + index as u64)
}

fn api_config(
    circuit_id: CircuitId,
    verifying_key: zkcohort_verifier::PreparedVerifyingKey<ark_bn254::Bn254>,
) -> ApiConfig {
    crate::common::api_config_for(
        circuit_id,
        verifying_key,
        crate::common::api_keys(researcher()),
    )
}

impl Api {
    async fn study(&self) -> Value {
        let (status, study) = self.get(&format!("/studies/{STUDY}")).await;
        assert_eq!(status, StatusCode::OK, "{study}");
        study
    }

    /// Appends the cohort's leaves, posts the study (`max_enrollments`),
    /// mints 100 to the researcher and funds the escrow with `escrow`.
    async fn set_up_market(&self, cohort: &Cohort, max_enrollments: u64, escrow: u64) {
        let (status, appended) = self
            .post("/registry/records", Some(ISSUER), &cohort.records_body())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{appended}");
        assert_eq!(
            appended["first_index"], 0,
            "the proofs assume leaves from 0"
        );
        let (status, study) = self
            .post("/studies", Some(RESEARCHER), &study_body(max_enrollments))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{study}");
        assert_eq!(study["id"], STUDY);
        self.mint(&researcher(), 100).await;
        self.fund(STUDY, escrow).await;
    }

    async fn enroll(&self, proof: &EligibilityProof, receiver: &Fr) -> (StatusCode, Value) {
        self.post(
            &format!("/studies/{STUDY}/enroll"),
            None,
            &enroll_body(proof, receiver),
        )
        .await
    }
}

/// In-process servers over a store in a folder.
struct Server;

impl Server {
    /// Serves the store in `folder` (created if new).
    async fn start(folder: &Path) -> TestServer {
        Self::start_with_limits(folder, Limits::default()).await
    }

    /// Serves the store in `folder` with these request limits.
    async fn start_with_limits(folder: &Path, limits: Limits) -> TestServer {
        let store = Store::open(folder, store_config()).unwrap();
        let keys = keys();
        let mut config = api_config(keys.circuit_id(), keys.prepared_verifying_key().clone());
        config.limits = limits;
        TestServer::serve(store, config).await
    }
}

/// One proof per member for study [`STUDY`], paying member `i` to
/// [`receiver`]`(i)`, proved in parallel.
fn prove_all(cohort: &Cohort) -> Vec<EligibilityProof> {
    prove_cohort(keys(), cohort, STUDY, receiver)
}

fn nullifier_bytes(proof: &EligibilityProof) -> [u8; 32] {
    fr_to_bytes(&proof.statement.nullifier.0)
}

/// The number of `enroll` entries in the audit log from `start` on, and the
/// number of all entries from there.
fn audit_enrollments_since(store: &Store, start: u64) -> (usize, usize) {
    let entries = store.audit_entries(start, usize::MAX).unwrap();
    let enrollments = entries
        .iter()
        .filter(|entry| matches!(entry.event, AuditEvent::Enroll(_)))
        .count();
    (enrollments, entries.len())
}
