//! What a researcher does against a marketplace: post a study from a query file,
//! fund its escrow, follow enrollment, ask for differentially private statistics, close
//! it (the escrow remainder is refunded) and export the study bundle sponsors check.

use std::path::Path;

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use zkcohort_market::api::{ClosedStudy, CreateStudy, FundStudy, NewRelease};
use zkcohort_market::dp::{Mechanism, PostProcess, Statistic};
use zkcohort_market::releases::{ReleaseAnswer, StudyReleases};
use zkcohort_market::{LedgerEntry, Study};
use zkcohort_verifier::{verify_bundle, CeremonyTranscript, StudyBundle};

use crate::client::MarketClient;
use crate::patient::RemoteMarketplace;

/// A study to post.
#[derive(Debug, Clone, Serialize)]
pub struct StudyPost {
    /// A short title.
    pub title: String,
    /// What the study is about.
    pub description: String,
    /// The cohort query, text or JSON form.
    pub query: String,
    /// Tokens per enrollment.
    pub reward: u64,
    /// The most enrollments.
    pub max_enrollments: u64,
    /// The differential-privacy budget (epsilon).
    pub epsilon_budget: f64,
    /// The issuer accounts (hex) the study accepts; empty for every issuer the
    /// marketplace has when it is posted.
    pub issuers: Vec<String>,
}

/// Posts a study; the marketplace compiles its query and answers its `query_hash`.
///
/// # Errors
/// The marketplace refuses it (an invalid query names the line and column).
pub fn post_study(client: &MarketClient, post: &StudyPost) -> Result<Study> {
    // The text either form is written in: the server reads both.
    let body = CreateStudy {
        title: post.title.clone(),
        description: post.description.clone(),
        query: serde_json::Value::String(post.query.clone()),
        reward: post.reward,
        max_enrollments: post.max_enrollments,
        epsilon_budget: post.epsilon_budget,
        issuers: (!post.issuers.is_empty()).then(|| post.issuers.clone()),
    };
    Ok(client.create_study(&body)?)
}

/// Moves `amount` tokens from the researcher's account into the study's escrow, on
/// an order signed with the account's `key` for this marketplace at the account's next
/// nonce.
///
/// # Errors
/// The marketplace refuses it (balance, closed study, another researcher's study, a
/// key that is not the API key's account).
pub fn fund(
    client: &MarketClient,
    key: &SigningKey,
    study: u64,
    amount: u64,
) -> Result<LedgerEntry> {
    let market = RemoteMarketplace::fetch(client)?;
    let nonce = client.account(&key.verifying_key().to_bytes())?.nonce;
    let order = FundStudy::sign(key, &market.key, study, amount, nonce);
    Ok(client.fund_study(study, &order)?)
}

/// Closes a study; the escrow remainder goes back to the researcher.
///
/// # Errors
/// The marketplace refuses it.
pub fn close(client: &MarketClient, study: u64) -> Result<ClosedStudy> {
    Ok(client.close_study(study)?)
}

/// Writes the study bundle (`GET /studies/{id}/bundle`) to `path`.
///
/// # Errors
/// The marketplace refuses it, or the file cannot be written.
pub fn export_bundle(client: &MarketClient, study: u64, path: &Path) -> Result<()> {
    let bundle = client.bundle(study)?;
    std::fs::write(path, bundle.to_json()).with_context(|| format!("writing {}", path.display()))
}

/// What the verifier said of a bundle file.
pub struct BundleVerdict {
    /// Whether every check passed.
    pub valid: bool,
    /// One line: what was checked, or the failed checks.
    pub summary: String,
}

/// Checks a bundle file with the verifier crate (what `zkcohort-verify` does),
/// pinning the marketplace key and the ceremony transcript when given.
///
/// # Errors
/// The file cannot be read or is not a bundle.
pub fn verify_bundle_file(
    path: &Path,
    marketplace_key: Option<&[u8; 32]>,
    transcript: Option<&CeremonyTranscript>,
) -> Result<BundleVerdict> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bundle = StudyBundle::from_json(&text).with_context(|| format!("{}", path.display()))?;
    let report = verify_bundle(&bundle, marketplace_key, transcript);
    let summary = if report.valid {
        format!(
            "{} proofs verified, {} tokens paid of {} funded, {} audit entries proven in a log of {}",
            report.proofs_verified,
            report.tokens_paid,
            report.tokens_funded,
            report.audit_entries_verified,
            report.head_size
        )
    } else {
        report
            .failures()
            .map(|check| format!("{}: {}", check.name, check.detail))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Ok(BundleVerdict {
        valid: report.valid,
        summary,
    })
}

/// Asks for a DP release of `statistic` at `epsilon`, charged to the study's budget and
/// the researcher's (asking again before more enrollments settle returns the same
/// answer for free), shown as `post_process` says.
///
/// # Errors
/// The marketplace refuses it (a budget cannot pay, an unknown measure, another
/// researcher's study, fewer settled enrollments than the minimum cohort).
pub fn release(
    client: &MarketClient,
    study: u64,
    statistic: Statistic,
    epsilon: f64,
    mechanism: Mechanism,
    post_process: PostProcess,
) -> Result<ReleaseAnswer> {
    let body = NewRelease {
        statistic,
        epsilon,
        mechanism,
        post_process,
    };
    Ok(client.release(study, &body)?)
}

/// A release as a readable table: the cells (or a sum and mean), the privacy
/// parameters and both budgets.
pub fn render_release(answer: &ReleaseAnswer) -> String {
    let release = &answer.release.release;
    let values = &release.values;
    let mut out = format!(
        "study {}: {} over {} settled enrollments\n",
        release.request.study, release.request.statistic, answer.release.enrollments
    );
    let row_width = values
        .rows
        .iter()
        .map(|row| row.len())
        .max()
        .unwrap_or(0)
        .max(5);
    if let Some(sum) = &values.sum {
        let count = answer.shown.first().map_or("?", String::as_str);
        out += &format!("  with a value  {count}\n");
        out += &format!(
            "  sum           {} {} (each value clamped into {} .. {})\n",
            sum.total as f64 / sum.units_per_display as f64,
            sum.unit,
            sum.low as f64 / sum.units_per_display as f64,
            sum.high as f64 / sum.units_per_display as f64,
        );
        out += &format!(
            "  mean          {}\n",
            answer.mean.as_deref().unwrap_or("not shown (too few)")
        );
    } else if values.columns.is_empty() {
        for (row, shown) in values.rows.iter().zip(&answer.shown) {
            out += &format!("  {row:<row_width$}  {shown:>6}\n");
        }
    } else {
        let widths: Vec<usize> = values
            .columns
            .iter()
            .map(|column| column.len().max(6))
            .collect();
        out += &format!("  {:<row_width$}", "");
        for (column, width) in values.columns.iter().zip(&widths) {
            out += &format!("  {column:>width$}");
        }
        out += "\n";
        for (row, cells) in values
            .rows
            .iter()
            .zip(answer.shown.chunks(values.columns.len()))
        {
            out += &format!("  {row:<row_width$}");
            for (shown, width) in cells.iter().zip(&widths) {
                out += &format!("  {shown:>width$}");
            }
            out += "\n";
        }
    }
    out += &format!(
        "noise: {} at epsilon {}{} (scale {:.3}); counts below 0 read as 0\n",
        release.mechanism.name(),
        release.epsilon,
        if release.delta_nanos > 0 {
            format!(", delta {}e-9", release.delta_nanos)
        } else {
            String::new()
        },
        release.scale
    );
    out += &format!(
        "budget: study spent {} of {} ({} left); researcher spent {} of {} in the window ({} left)",
        answer.study_budget.spent.epsilon,
        answer.study_budget.cap.epsilon,
        answer.study_budget.remaining.epsilon,
        answer.researcher_budget.spent.epsilon,
        answer.researcher_budget.cap.epsilon,
        answer.researcher_budget.remaining.epsilon,
    );
    out
}

/// The study's releases and its privacy budget.
///
/// # Errors
/// The marketplace refuses it (another researcher's study).
pub fn releases(client: &MarketClient, study: u64) -> Result<StudyReleases> {
    Ok(client.releases(study)?)
}
