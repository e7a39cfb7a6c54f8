//! Study bundles: everything a trial sponsor needs to re-check one study
//! offline, and [`verify_bundle`], which checks it end to end.
//!
//! - this module: the bundle format ([`StudyBundle`] and its parts);
//! - [`report`]: what a check found ([`BundleReport`], [`BundleCheck`]);
//! - `checks`: [`verify_bundle`] and each of its checks, one function each.
//!
//! A bundle (JSON, [`BUNDLE_FORMAT`]) holds the marketplace key, the study as
//! the marketplace stores it, the circuit shape its query is compiled for,
//! the verifying key (snarkjs form), where that key came from ([`KeySetup`]: the
//! ceremony transcript's id, or a development setup), every enrollment with its proof, the
//! registry roots those proofs use, and the study's whole audit chain (every entry
//! of the study names the study's previous one, see [`crate::audit`]), each entry
//! with an RFC 9162 inclusion proof against the one signed head in the bundle,
//! which also names the study's latest entry and its number of entries.
//!
//! The sponsor trusts nothing in the bundle but the marketplace key it pins:
//! the head's signature vouches for the log, inclusion proofs for each entry,
//! and each entry's payload for the bundle's claims (the study, each
//! enrollment and payout, each root). Everything else is recomputed: the
//! circuit id from the key, the query hash from the query, the scope from
//! the marketplace key and study id, and every statement from those.
//!
//! The setup is the marketplace's word until the sponsor pins a transcript: with one
//! (`zkcohort-verify --transcript FILE`), the bundle must name its id and its key must be
//! the transcript's final key. A development-setup bundle can verify, but whoever ran the
//! setup could have forged its proofs: the report says so first.
//!
//! The `study_chain` check walks the chain back from the signed study head: an
//! enrollment, funding, DP release or close left out of the bundle breaks it; the
//! releases' budgets are replayed ([`crate::release_budgets`]). A marketplace that
//! wants to hide its study's latest entries must sign a study head the log contradicts
//! (anyone holding the log, or a receipt of a later entry, can show the signed lie).
//! What a bundle cannot show: whether a replaced registry root was still within the
//! acceptance window (the bundle holds only the roots used, each proven to precede its
//! enrollment).

mod checks;
pub mod report;

use serde::{Deserialize, Serialize};
use zkcohort_circuits::shape::CircuitShape;

pub use checks::verify_bundle;
pub use report::{BundleCheck, BundleReport};

use crate::audit::{AuditEntry, Bytes32, InclusionProof, SignedStudyHead};
use crate::records::Study;
use crate::setup::KeySetup;
use crate::snarkjs::{SnarkjsProof, SnarkjsVerifyingKey};
use crate::VerifierError;

/// The bundle format this verifier reads (5: studies carry their minimum cohort and
/// public times are rounded to the marketplace's time unit; 4 paid rewards into notes,
/// where 3 named payout accounts).
pub const BUNDLE_FORMAT: u32 = 5;

/// A study bundle, as `GET /studies/{id}/bundle` serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyBundle {
    /// The format version, [`BUNDLE_FORMAT`].
    pub format: u32,
    /// The marketplace's ed25519 key (hex): it signs audit heads and is part
    /// of every study scope.
    #[serde(with = "crate::hex_serde")]
    pub marketplace_key: Bytes32,
    /// The study as the marketplace stores it.
    pub study: Study,
    /// The circuit shape the study's query is compiled for.
    pub circuit: BundleCircuit,
    /// The circuit's verifying key (snarkjs `verification_key.json`).
    pub verifying_key: SnarkjsVerifyingKey,
    /// Where the verifying key came from.
    pub setup: KeySetup,
    /// Every enrollment of the study.
    pub enrollments: Vec<BundleEnrollment>,
    /// The registry roots the enrollments' proofs use.
    pub registry_roots: Vec<BundleRoot>,
    /// The audit head every inclusion proof is against and the study's head in it,
    /// signed by the marketplace key.
    pub head: SignedStudyHead,
    /// The study's chain (`study_created`, each `escrow_funded`, each `enroll`,
    /// `study_closed` if any) and the registry entries that made each used root
    /// current.
    pub audit_entries: Vec<ProvenEntry>,
}

/// The circuit shape numbers a query is compiled and hashed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleCircuit {
    /// Clauses per query.
    pub clauses: usize,
    /// The slot-tree depth.
    pub slot_depth: usize,
    /// The issuer-set depth: the study's issuers root is of a tree this deep.
    pub issuer_depth: usize,
    /// The registry tree's depth.
    pub registry_depth: usize,
    /// Measure slots per study.
    pub measures: usize,
    /// Bins per measure.
    pub measure_bins: usize,
}

impl BundleCircuit {
    /// The shape these numbers describe.
    pub fn shape(&self) -> CircuitShape {
        CircuitShape {
            clauses: self.clauses,
            slot_depth: self.slot_depth,
            registry_depth: self.registry_depth,
            issuer_depth: self.issuer_depth,
            measures: self.measures,
            measure_bins: self.measure_bins,
        }
    }
}

/// One enrollment: which note was paid what, for which proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleEnrollment {
    /// The nullifier, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub nullifier: Bytes32,
    /// The one-time receiver the proof's `signal_hash` binds, a field element.
    #[serde(with = "crate::hex_serde")]
    pub reward_receiver: Bytes32,
    /// The reward note, `note_commitment(reward, reward_receiver)`: its position in the
    /// note tree is in its audit entry.
    #[serde(with = "crate::hex_serde")]
    pub note_commitment: Bytes32,
    /// The reward paid.
    pub reward: u64,
    /// The registry root the proof is against, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub registry_root: Bytes32,
    /// The root's sequence number.
    pub root_seq: u64,
    /// The proof (snarkjs `proof.json`).
    pub proof: SnarkjsProof,
    /// The public inputs as decimal strings, in circuit order.
    pub public_inputs: Vec<String>,
    /// The index of the audit entry that records it.
    pub audit_index: u64,
}

/// A registry root used by an enrollment (the marketplace's root record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRoot {
    /// Its sequence number.
    pub seq: u64,
    /// The root, 32 big-endian bytes.
    #[serde(with = "crate::hex_serde")]
    pub root: Bytes32,
    /// The number of leaves when it became current.
    pub leaf_count: u64,
    /// The audit entry of the change that made it current.
    pub audit_index: u64,
    /// When it became current, in milliseconds since the Unix epoch, rounded down to the
    /// marketplace's public time unit.
    pub at_ms: u64,
}

/// An audit entry with its inclusion proof against the bundle's head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvenEntry {
    /// The entry.
    pub entry: AuditEntry,
    /// Its RFC 9162 inclusion proof.
    pub inclusion: InclusionProof,
}

impl StudyBundle {
    /// Reads a bundle from JSON.
    ///
    /// # Errors
    ///
    /// [`VerifierError::Json`] naming where the document is malformed.
    pub fn from_json(text: &str) -> Result<Self, VerifierError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|error| VerifierError::Json {
            path: error.path().to_string(),
            message: error.inner().to_string(),
        })
    }

    /// The bundle as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
