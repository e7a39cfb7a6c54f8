//! The HTTP API's request and response bodies: the wire contract, written
//! once. The server's handlers read and answer these types and the
//! `zkcohort` client sends and reads the same ones, so a field cannot be
//! spelled two ways.
//!
//! Encodings on the wire, one per kind of value, the same in requests, answers,
//! the audit log and bundles: field elements (registry roots, leaves, commitments,
//! nullifiers) as 64 hex digits of their 32 big-endian bytes, canonical (below the
//! modulus; `zkcohort_circuits::statement::fr_to_hex`); keys, hashes and signatures as
//! lowercase hex; amounts and ids as unsigned integers. The one exception is what
//! snarkjs defines: proofs in its `proof.json` form
//! ([`SnarkjsProof`](zkcohort_verifier::snarkjs::SnarkjsProof)) and public inputs as its
//! `public.json` decimal strings, so the files interoperate with snarkjs as they are.
//! Records the store keeps ([`Study`],
//! [`LedgerEntry`], ...) are the verifier's record types
//! (`zkcohort_verifier::records`), answered as they are stored.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zkcohort_circuits::measure::MeasureOpening;
use zkcohort_circuits::CircuitId;
use zkcohort_verifier::KeySetup;

use crate::api_keys::ApiKeyRole;
pub use crate::http::{ErrorBody, ErrorDetail};
pub use crate::releases::NewRelease;
use crate::{Bytes32, LedgerEntry, Study};

/// The body of `POST /admin/api-keys`: an account holder's signed request, which the
/// operator forwards. The holder draws the key ([`crate::api_keys::draw_api_key`]) and
/// sends only its id, so the operator never learns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key may do.
    pub role: ApiKeyRole,
    /// The account the key acts as: an ed25519 public key, 64 hex digits.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub account: Bytes32,
    /// SHA-256 of the key's text, 64 hex digits.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    #[serde(with = "crate::hex_bytes")]
    pub key_id: Bytes32,
    /// The account's ed25519 signature over the request
    /// (`zkcohort_verifier::records::api_key_message`), 128 hex digits: its proof of
    /// possession.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{128}$")]
    #[serde(with = "crate::hex_bytes")]
    pub possession: [u8; 64],
}

impl CreateApiKey {
    /// The request that binds `api_key` for `role` to `key`'s account on the marketplace
    /// whose key is `marketplace_key`.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        marketplace_key: &Bytes32,
        role: ApiKeyRole,
        api_key: &str,
    ) -> Self {
        use ed25519_dalek::Signer;
        let account = key.verifying_key().to_bytes();
        let key_id = crate::api_keys::api_key_id(api_key);
        let message =
            zkcohort_verifier::records::api_key_message(marketplace_key, &account, role, &key_id);
        Self {
            role,
            account,
            key_id,
            possession: key.sign(&message).to_bytes(),
        }
    }
}

/// The answer of `POST /admin/api-keys`: what the key now grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    /// SHA-256 of the key, hex: names it in the audit log and for revocation.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub key_id: String,
    /// What the key may do.
    pub role: ApiKeyRole,
    /// The account the key acts as, hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub account: String,
}

/// The body of `POST /admin/api-keys/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeApiKey {
    /// The key's id (SHA-256 of the key, hex), as answered when it was created.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub key_id: String,
}

/// The body of `POST /admin/issuers/suspend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendIssuer {
    /// The issuer's account (hex).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub issuer: String,
}

/// The answer of `POST /admin/issuers/suspend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuspendedIssuer {
    /// The issuer's account (hex).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub issuer: String,
    /// `false` when it was already suspended (nothing changed).
    pub newly_suspended: bool,
}

/// The answer of `POST /admin/api-keys/revoke`: what the revoked key granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevokedApiKey {
    /// The revoked key's id, hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub key_id: String,
    /// What it allowed.
    pub role: ApiKeyRole,
    /// The account it acted as, hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub account: String,
}

/// The body of `POST /studies/{id}/enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The proof, as snarkjs writes `proof.json` ([`SnarkjsProof`](zkcohort_verifier::snarkjs::SnarkjsProof)); read in
    /// the handler, so a proof of the wrong shape is `bad_proof` (422) like
    /// one that does not verify, not a malformed body.
    #[schema(schema_with = proof_json)]
    pub proof: serde_json::Value,
    /// The registry root the proof is against, a field element (64 hex digits).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub registry_root: String,
    /// The nullifier, a field element (64 hex digits).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub nullifier: String,
    /// The one-time receiver of the reward note, a field element (64 hex digits): the
    /// proof's `signal_hash` binds it, and the reward is paid into
    /// `note_commitment(reward, reward_receiver)`.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub reward_receiver: String,
    /// The study's measure values on the patient's record and their blinding
    /// (`{"values": [..], "blinding": "64 hex digits"}`, one value per measure slot of
    /// the circuit): the marketplace hashes them into the proof's `measure_commitment`,
    /// so the proof verifies only with the record's true values. Kept private, for
    /// differentially private releases; never published.
    #[schema(schema_with = measure_opening)]
    pub measure_opening: MeasureOpening,
}

/// The body of `POST /notes/transfer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteTransferRequest {
    /// The note-transfer proof, as snarkjs writes `proof.json`.
    #[schema(schema_with = proof_json)]
    pub proof: serde_json::Value,
    /// A note-tree root the spent notes are under (any root the tree had), 64 hex digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub note_root: String,
    /// The two spent notes' nullifiers, 64 hex digits each.
    pub nullifiers: Vec<String>,
    /// The two output note commitments, 64 hex digits each.
    pub outputs: Vec<String>,
    /// The amount withdrawn from the notes to `recipient` (0 to merge or split only).
    pub withdrawal: u64,
    /// The ed25519 public key (hex) the withdrawal is paid to, bound into the proof.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub recipient: String,
}

/// The body of `POST /ledger/mint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// The recipient's public key, hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub to: String,
    /// The tokens to issue.
    #[schema(minimum = 1)]
    pub amount: u64,
}

/// The answer of `GET /accounts/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// The account's public key, hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub account: String,
    /// Its balance.
    pub balance: u64,
    /// The nonce its next signed transfer must carry.
    pub nonce: u64,
}

/// The body of `POST /registry/records`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendRecords {
    /// The records, in the order their leaves are appended.
    pub records: Vec<RecordToAppend>,
}

/// One record an issuer attests: the marketplace computes its leaf over the
/// commitment, the authenticated issuer's id and the issue day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordToAppend {
    /// `Poseidon(identity_commitment, record_root)`, a field element (64 hex digits).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub commitment: String,
    /// The day the record was issued (`YYYY-MM-DD`), not after today.
    #[schema(value_type = String)]
    pub issued_at: zkcohort_cohort::Day,
}

/// The body of `POST /registry/revoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeLeaf {
    /// The leaf's index.
    pub index: u64,
}

/// The body of `POST /studies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStudy {
    /// A short title.
    pub title: String,
    /// What the study is about.
    #[serde(default)]
    pub description: String,
    /// The cohort query: its text form as a JSON string, or its JSON form.
    #[schema(schema_with = query_text_or_json)]
    pub query: serde_json::Value,
    /// Tokens paid per enrollment.
    #[schema(minimum = 1)]
    pub reward: u64,
    /// The most enrollments the study takes.
    #[schema(minimum = 1)]
    pub max_enrollments: u64,
    /// The differential-privacy budget (epsilon).
    pub epsilon_budget: f64,
    /// The issuer accounts (hex) whose records the study accepts; every issuer the
    /// marketplace has when the study is posted if left out.
    #[serde(default)]
    pub issuers: Option<Vec<String>>,
}

/// The body of `POST /studies/{id}/fund`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundStudy {
    /// The tokens to move from the researcher's account into the escrow.
    #[schema(minimum = 1)]
    pub amount: u64,
    /// The researcher account's next nonce (`GET /accounts/{key}`).
    pub nonce: u64,
    /// The researcher's ed25519 signature over the funding order
    /// (`zkcohort_verifier::records::funding_message`), 128 hex digits: the API key
    /// alone moves no money.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{128}$")]
    #[serde(with = "crate::hex_bytes")]
    pub signature: [u8; 64],
}

impl FundStudy {
    /// The order moving `amount` from `key`'s account into study `study`'s escrow on the
    /// marketplace whose key is `marketplace_key`, at the account's `nonce`.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        marketplace_key: &Bytes32,
        study: u64,
        amount: u64,
        nonce: u64,
    ) -> Self {
        use ed25519_dalek::Signer;
        let message = zkcohort_verifier::records::funding_message(
            marketplace_key,
            &key.verifying_key().to_bytes(),
            study,
            amount,
            nonce,
        );
        Self {
            amount,
            nonce,
            signature: key.sign(&message).to_bytes(),
        }
    }
}

/// The answer of `POST /studies/{id}/close`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClosedStudy {
    /// The study, closed.
    pub study: Study,
    /// The refund of its escrow's remainder, if there was one.
    pub refund: Option<LedgerEntry>,
}

impl ClosedStudy {
    /// Tokens refunded.
    pub fn refunded(&self) -> u64 {
        self.refund.as_ref().map_or(0, |entry| entry.amount)
    }
}

/// What a wallet or a sponsor needs to know about this marketplace before
/// proving for it or checking its bundles (`GET /marketplace`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarketplaceInfo {
    /// The ed25519 key (hex) that signs audit heads; part of every study scope.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub marketplace_key: String,
    /// The circuit id: the SHA-256 of the compressed verifying key, hex.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    pub circuit_id: CircuitId,
    /// Clauses per query of the circuit.
    pub clauses: usize,
    /// The circuit's slot-tree depth.
    pub slot_depth: usize,
    /// The registry tree's depth.
    pub registry_depth: usize,
    /// The depth of a study's issuer set: a study accepts up to `2^issuer_depth`
    /// issuers.
    pub issuer_depth: usize,
    /// Measure slots per study: an enrollment's measure opening has this many values.
    pub measures: usize,
    /// Bins per measure.
    pub measure_bins: usize,
    /// How long a replaced registry root stays acceptable, in milliseconds.
    pub root_window_ms: u64,
    /// Where the circuit's keys came from: `{"kind": "ceremony", "transcript_id"}`
    /// (the transcript is at `GET /circuits/{id}/transcript`), or `{"kind":
    /// "development"}`, a single-party setup whose runner could forge proofs.
    pub setup: KeySetup,
    /// The note-transfer circuit's id (its proving key and transcript are served under
    /// it as the eligibility circuit's are).
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$")]
    pub note_circuit_id: CircuitId,
    /// The reward-note tree's depth.
    pub note_tree_depth: usize,
    /// Where the note-transfer circuit's keys came from, as `setup`.
    pub note_setup: KeySetup,
    /// The minimum cohort k: a study's enrollments stay pending, with nothing public,
    /// until k are pending; a study closed below k shows no enrollment.
    pub min_cohort: u64,
    /// A later batch settles once this many enrollments are pending...
    pub batch_size: u64,
    /// ... or once its oldest has waited this long, in milliseconds.
    pub batch_age_ms: u64,
    /// The resolution of every public time, in milliseconds (a day by default).
    pub time_unit_ms: u64,
}

/// A schema written as JSON, for the fields whose Rust type does not say their shape.
fn schema(json: serde_json::Value) -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    serde_json::from_value(json).expect("a well-formed schema")
}

/// A decimal string of a field element or coordinate, as snarkjs writes them.
fn decimal() -> serde_json::Value {
    serde_json::json!({"type": "string", "pattern": "^[0-9]{1,78}$"})
}

/// `proof.json` as snarkjs writes it: `A` and `C` in G1 (three projective coordinates),
/// `B` in G2 (three pairs).
pub(crate) fn proof_json() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let g1 = serde_json::json!({"type": "array", "items": decimal(), "minItems": 3, "maxItems": 3});
    let pair =
        serde_json::json!({"type": "array", "items": decimal(), "minItems": 2, "maxItems": 2});
    schema(serde_json::json!({
        "type": "object",
        "description": "A Groth16 proof as snarkjs writes `proof.json`.",
        "required": ["pi_a", "pi_b", "pi_c", "protocol"],
        "properties": {
            "pi_a": g1,
            "pi_b": {"type": "array", "items": pair, "minItems": 3, "maxItems": 3},
            "pi_c": g1,
            "protocol": {"type": "string", "enum": ["groth16"]},
            "curve": {"type": "string", "enum": ["bn128"]},
        },
    }))
}

/// [`MeasureOpening`]: the measure values and their blinding.
fn measure_opening() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    schema(serde_json::json!({
        "type": "object",
        "description": "The measure values (one per measure slot of the circuit) and their blinding.",
        "required": ["values", "blinding"],
        "additionalProperties": false,
        "properties": {
            "values": {
                "type": "array",
                "items": {"type": "integer", "format": "uint64", "minimum": 0, "maximum": u64::MAX},
            },
            "blinding": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        },
    }))
}

/// A study query: its text form as a string, or its JSON form as an object.
fn query_text_or_json() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    schema(serde_json::json!({
        "oneOf": [
            {"type": "string", "description": "The text form (see `zkcohort check --help`)."},
            {"type": "object", "description": "The JSON form."},
        ],
    }))
}
