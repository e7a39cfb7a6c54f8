//! The marketplace's records as the audit log carries them: ledger entries
//! and accounts, studies, API key roles and the parameters of DP releases.
//!
//! The marketplace stores these very types and the sponsor's verifier reads
//! them back from audit entries, so their JSON form is written once, here.
//! Their serialized bytes are hashed into the audit chain: a renamed field is
//! a new log format, which `tests/vectors/audit_events.json` catches. With
//! the `openapi` feature they also describe themselves for the marketplace's
//! OpenAPI document (utoipa); the sponsor's build leaves it off.

use std::fmt;

use serde::{Deserialize, Serialize};
use zkcohort_circuits::CircuitId;
use zkcohort_cohort::Query;

use crate::audit::Bytes32;

/// The domain separator of funding orders.
const FUNDING_DOMAIN: &[u8] = b"zkcohort-funding-v1";

/// The bytes a researcher signs to move `amount` tokens from its account into study
/// `study`'s escrow: `"zkcohort-funding-v1" || marketplace key || researcher || study ||
/// amount || nonce` (u64 BE each). The nonce is the researcher account's next one, the
/// sequence its transfers use, so an order funds once; naming the marketplace keeps it
/// from being replayed on another.
pub fn funding_message(
    marketplace_key: &Bytes32,
    researcher: &Bytes32,
    study: u64,
    amount: u64,
    nonce: u64,
) -> Vec<u8> {
    let mut message = FUNDING_DOMAIN.to_vec();
    message.extend_from_slice(marketplace_key);
    message.extend_from_slice(researcher);
    for value in [study, amount, nonce] {
        message.extend_from_slice(&value.to_be_bytes());
    }
    message
}

/// Whether `signature` is `researcher`'s strict ed25519 signature over
/// [`funding_message`].
pub fn funding_signature_is_valid(
    marketplace_key: &Bytes32,
    researcher: &Bytes32,
    study: u64,
    amount: u64,
    nonce: u64,
    signature: &[u8; 64],
) -> bool {
    signature_is_valid(
        researcher,
        &funding_message(marketplace_key, researcher, study, amount, nonce),
        signature,
    )
}

/// The domain separator of API key requests.
const API_KEY_DOMAIN: &[u8] = b"zkcohort-api-key-v1";

/// The bytes an account holder signs to have an API key bound to its account (its proof
/// of possession): `"zkcohort-api-key-v1" || marketplace key || account || role (0
/// researcher, 1 issuer) || key id`. The holder draws the key and sends only its id
/// (SHA-256), so the operator who creates the grant never learns the key and cannot act
/// as the account; naming the marketplace keeps the request from being used on another.
pub fn api_key_message(
    marketplace_key: &Bytes32,
    account: &Bytes32,
    role: ApiKeyRole,
    key_id: &Bytes32,
) -> Vec<u8> {
    let mut message = API_KEY_DOMAIN.to_vec();
    message.extend_from_slice(marketplace_key);
    message.extend_from_slice(account);
    message.push(match role {
        ApiKeyRole::Researcher => 0,
        ApiKeyRole::Issuer => 1,
    });
    message.extend_from_slice(key_id);
    message
}

/// Whether `possession` is `account`'s strict ed25519 signature over
/// [`api_key_message`].
pub fn api_key_possession_is_valid(
    marketplace_key: &Bytes32,
    account: &Bytes32,
    role: ApiKeyRole,
    key_id: &Bytes32,
    possession: &[u8; 64],
) -> bool {
    signature_is_valid(
        account,
        &api_key_message(marketplace_key, account, role, key_id),
        possession,
    )
}

/// Whether `signature` is `signer`'s strict ed25519 signature over `message`.
fn signature_is_valid(signer: &Bytes32, message: &[u8], signature: &[u8; 64]) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(signer).is_ok_and(|key| {
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
            .is_ok()
    })
}

/// A ledger account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Account {
    /// An ed25519 public key: a patient, researcher or issuer.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    Key(#[serde(with = "crate::hex_serde")] Bytes32),
    /// The escrow of a study.
    Escrow(u64),
    /// The mint, the only source of tokens.
    Mint,
    /// The reward-note pool: the value of every note not yet spent. A payout moves a
    /// reward from an escrow into it (into a note whose value only its holder can open);
    /// a note transfer's withdrawal moves an amount out to a key.
    Notes,
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Key(key) => write!(f, "key:{}", hex::encode(key)),
            Account::Escrow(study) => write!(f, "escrow:{study}"),
            Account::Mint => f.write_str("mint"),
            Account::Notes => f.write_str("notes"),
        }
    }
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// The operator issued tokens (mint → key).
    Mint,
    /// A signed transfer (key → key).
    Transfer,
    /// A researcher funded a study (key → escrow).
    FundEscrow,
    /// An enrollment's reward, into a reward note (escrow → notes).
    Payout,
    /// A note transfer's withdrawal (notes → key).
    Withdrawal,
    /// A closed study's remainder (escrow → researcher).
    Refund,
}

/// One balanced ledger entry: `amount` leaves `debit` and reaches `credit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEntry {
    /// Its position in the ledger, from 0.
    pub seq: u64,
    /// What it records.
    pub kind: LedgerKind,
    /// The account debited.
    pub debit: Account,
    /// The account credited.
    pub credit: Account,
    /// The amount moved.
    pub amount: u64,
    /// The study it concerns, if any.
    pub study: Option<u64>,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Whether a study takes enrollments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StudyStatus {
    /// Takes enrollments and funding.
    Open,
    /// Closed by its researcher; its escrow was refunded.
    Closed,
}

/// Micro-epsilons per epsilon: the resolution of every epsilon the marketplace charges
/// and the log records.
pub const MICROS_PER_EPSILON: u64 = 1_000_000;

/// The largest epsilon accepted anywhere (a request or a budget), so that every
/// epsilon converts to `f64` and back exactly.
pub const MAX_EPSILON: u64 = 1_000_000_000;

/// The smallest epsilon one release may spend, in micro-epsilons: below it the noise
/// drowns any cohort the marketplace serves, and it bounds how many charges a
/// researcher's window holds.
pub const MIN_RELEASE_EPSILON_MICROS: u64 = 1_000;

/// A study as the marketplace stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Study {
    /// Its id, from 1.
    pub id: u64,
    /// The researcher's account key.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
    #[serde(with = "crate::hex_serde")]
    pub researcher: Bytes32,
    /// A short title.
    pub title: String,
    /// What the study is about.
    pub description: String,
    /// The cohort query (JSON form of [`Query`]).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub query: Query,
    /// The hash of the compiled query.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
    #[serde(with = "crate::hex_serde")]
    pub query_hash: Bytes32,
    /// The circuit's id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
    pub circuit_id: CircuitId,
    /// The issuer accounts whose records the study accepts, ascending.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[serde(with = "crate::hex_serde::vec32")]
    pub issuers: Vec<Bytes32>,
    /// The root of their issuer set ([`zkcohort_circuits::issuers::IssuerSet`]), every
    /// proof's `issuers_root`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
    #[serde(with = "crate::hex_serde")]
    pub issuers_root: Bytes32,
    /// The registry root current when the study was posted: a proof must use this
    /// root or a later one, so a record revoked before the study was posted never
    /// enrolls in it.
    pub min_root_seq: u64,
    /// How long a replaced registry root stays acceptable for this study's
    /// enrollments, in milliseconds: the marketplace's window when the study was
    /// posted, fixed with it so a sponsor checks each enrollment against it.
    pub root_window_ms: u64,
    /// Tokens paid per enrollment.
    pub reward: u64,
    /// The most enrollments the study takes.
    pub max_enrollments: u64,
    /// The minimum cohort k the marketplace held the study to when it was posted: its
    /// enrollments become public in batches, the first of at least k, so it shows either
    /// no enrollment or at least k.
    pub min_cohort: u64,
    /// The differential-privacy budget (epsilon).
    pub epsilon_budget: f64,
    /// Open or closed.
    pub status: StudyStatus,
    /// Enrollments made public so far (settled): 0, or at least `min_cohort`.
    pub enrolled: u64,
    /// Tokens in escrow (the balance of [`Account::Escrow`] for this id).
    pub escrow: u64,
    /// When it was created, in milliseconds since the Unix epoch, rounded down to the
    /// marketplace's public time unit (a day by default).
    pub created_ms: u64,
}

impl Study {
    /// What the public knows of the cohort's size: the count once enrollments are
    /// public, `fewer than k` before (none is public below the minimum cohort).
    pub fn public_count(&self) -> String {
        if self.enrolled == 0 {
            format!("fewer than {}", self.min_cohort)
        } else {
            self.enrolled.to_string()
        }
    }

    /// The study's escrow account.
    pub fn escrow_account(&self) -> Account {
        Account::Escrow(self.id)
    }

    /// The epsilon budget its researcher chose, to the nearest micro-epsilon (at most
    /// [`MAX_EPSILON`]): the most its releases may spend, unless the marketplace's
    /// study cap is lower.
    pub fn epsilon_budget_micros(&self) -> u64 {
        // The clamp keeps the product below 2^53, so its rounding is exact enough and
        // the cast cannot saturate.
        (self.epsilon_budget.clamp(0.0, MAX_EPSILON as f64) * MICROS_PER_EPSILON as f64).round()
            as u64
    }
}

/// What a created API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyRole {
    /// Posts, funds and closes studies as its account.
    Researcher,
    /// Appends and revokes registry leaves as its account (issuer key).
    Issuer,
}

/// What a release computes from the measure values a study's enrollments proved.
/// Measures are named as the study's query names them (`age`, `sex`,
/// `lab hba1c latest`) or by their position from 1 (`"2"`).
///
/// JSON: `{"histogram": "age"}`, `{"table": ["age", "sex"]}`, `{"sum": "lab hba1c latest"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Statistic {
    /// The count of enrollments per value of a binned measure (its missing value
    /// included).
    Histogram(String),
    /// The count of enrollments per pair of values of two binned measures: rows by the
    /// first, columns by the second.
    Table(String, String),
    /// The bounded sum of a sum measure over the enrollments that have a value, with
    /// their count; the mean is their quotient (post-processing).
    Sum(String),
}

impl Statistic {
    /// The measure names it reads, in order.
    pub fn measures(&self) -> Vec<&str> {
        match self {
            Statistic::Histogram(measure) | Statistic::Sum(measure) => vec![measure],
            Statistic::Table(rows, columns) => vec![rows, columns],
        }
    }
}

impl std::fmt::Display for Statistic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Statistic::Histogram(measure) => write!(f, "histogram of {measure}"),
            Statistic::Table(rows, columns) => write!(f, "table of {rows} by {columns}"),
            Statistic::Sum(measure) => write!(f, "sum and mean of {measure}"),
        }
    }
}

/// The noise distribution of a release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Discrete Laplace (the geometric mechanism): pure epsilon-DP, scale `1/epsilon`.
    #[default]
    DiscreteLaplace,
    /// Discrete Gaussian: (epsilon, delta)-DP through zCDP.
    DiscreteGaussian,
}

impl Mechanism {
    /// Its name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::DiscreteLaplace => "discrete_laplace",
            Mechanism::DiscreteGaussian => "discrete_gaussian",
        }
    }
}

/// How a release is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostProcess {
    /// The noisy integers as they are.
    #[default]
    None,
    /// i2b2/SHRINE style: below 10 reads `"<10"`, anything else rounds to the nearest 5.
    I2b2,
}

impl PostProcess {
    /// Its name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            PostProcess::None => "none",
            PostProcess::I2b2 => "i2b2",
        }
    }
}

/// The noisy values of a release. Counts are non-negative integers (negative draws
/// read as 0: post-processing, which costs no privacy); no true value is ever part of
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasedValues {
    /// The row labels: a histogram's values, a table's first measure's, a sum's one
    /// row (`with a value`).
    pub rows: Vec<String>,
    /// A table's column labels (its second measure's values); empty otherwise.
    pub columns: Vec<String>,
    /// The noisy counts, row by row (`rows.len() * max(columns.len(), 1)` of them).
    pub counts: Vec<u64>,
    /// A sum's noisy bounded sum and mean.
    pub sum: Option<ReleasedSum>,
}

/// The noisy bounded sum of a sum measure and what it reads as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasedSum {
    /// The noisy sum, in the measure's stored units, of each value clamped into
    /// `[low, high]`: `low` times the noisy count plus the noisy sum of the values above
    /// `low` (never below it).
    pub total: i64,
    /// The clamping bounds, in stored units.
    pub low: i64,
    /// See `low`.
    pub high: i64,
    /// Stored units per `unit`.
    pub units_per_display: i64,
    /// The unit the mean reads in.
    pub unit: String,
}

impl ReleasedSum {
    /// The mean in the measure's unit: the noisy sum over the noisy count, clamped into
    /// the bounds (post-processing); `None` when the noisy count is 0.
    pub fn mean(&self, count: u64) -> Option<f64> {
        (count > 0).then(|| {
            let mean = (self.total as f64 / count as f64).clamp(self.low as f64, self.high as f64);
            mean / self.units_per_display as f64
        })
    }
}
