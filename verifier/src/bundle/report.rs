//! What [`verify_bundle`](super::verify_bundle) checked and found.

use serde::{Deserialize, Serialize};

use crate::setup::KeySetup;

/// One check of [`verify_bundle`](super::verify_bundle) and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleCheck {
    /// The check: `format`, `head_signature`, `audit_entries`, `study_chain`, `study_record`,
    /// `circuit_id`, `setup`, `query_hash`, `registry_roots`, `enrollment_entries`,
    /// `public_inputs`, `proofs`, `nullifiers_unique`, `rewards`,
    /// `enrollment_count`, `funds`, `roots_used`, `release_budgets`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was checked when it passed; every reason it failed otherwise.
    pub detail: String,
}

/// What [`verify_bundle`](super::verify_bundle) checked and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReport {
    /// Whether every check passed.
    pub valid: bool,
    /// The study's id.
    pub study_id: u64,
    /// The marketplace key the bundle claims (hex).
    pub marketplace_key: String,
    /// Where the bundle says its verifying key came from (checked against the
    /// transcript when one is pinned).
    pub setup: KeySetup,
    /// The size of the signed audit head.
    pub head_size: u64,
    /// Audit entries whose hash and inclusion proof verified.
    pub audit_entries_verified: usize,
    /// Enrollments in the bundle.
    pub enrollments: usize,
    /// Proofs that verified against the recomputed statements.
    pub proofs_verified: usize,
    /// Tokens paid out to enrollments.
    pub tokens_paid: u64,
    /// Tokens funded into the study's escrow, per the audit log.
    pub tokens_funded: u64,
    /// Every check, in the order run.
    pub checks: Vec<BundleCheck>,
}

impl BundleReport {
    /// The check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&BundleCheck> {
        self.checks.iter().find(|check| check.name == name)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &BundleCheck> {
        self.checks.iter().filter(|check| !check.passed)
    }
}

/// Collects checks: a check passes when it found no problem.
#[derive(Default)]
pub(super) struct Checks(pub(super) Vec<BundleCheck>);

impl Checks {
    pub(super) fn record(&mut self, name: &str, problems: Vec<String>, passed_detail: String) {
        let passed = problems.is_empty();
        self.0.push(BundleCheck {
            name: name.to_owned(),
            passed,
            detail: if passed {
                passed_detail
            } else {
                problems.join("; ")
            },
        });
    }
}
