//! `zkcohort operator ...`: the operator's calls to a running server.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use zkcohort::client::MarketClient;
use zkcohort_market::api::CreateApiKey;
use zkcohort_market::api_keys::ApiKeyRole;

/// The roles an operator can give a key.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum RoleName {
    /// Posts, funds and closes studies.
    Researcher,
    /// Appends and revokes registry leaves.
    Issuer,
}

impl From<RoleName> for ApiKeyRole {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Researcher => ApiKeyRole::Researcher,
            RoleName::Issuer => ApiKeyRole::Issuer,
        }
    }
}

/// A client of `server` with the operator token read from `token_file`.
fn operator_client(server: &str, token_file: &Path) -> Result<MarketClient> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading the operator token {}", token_file.display()))?;
    Ok(MarketClient::new(server)?.with_token(token.trim()))
}

pub(crate) fn create_key(
    server: &str,
    token_file: &Path,
    request_file: &Path,
    json: bool,
) -> Result<ExitCode> {
    let text = std::fs::read_to_string(request_file)
        .with_context(|| format!("reading the key request {}", request_file.display()))?;
    let request: CreateApiKey = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a key request (as `zkcohort account request-key` writes)",
            request_file.display()
        )
    })?;
    let created = operator_client(server, token_file)?.create_api_key(&request)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&created)?);
    } else {
        println!(
            "bound key {} ({}) to account {}: its holder can use it now",
            created.key_id,
            serde_json::to_value(created.role)?.as_str().unwrap_or("?"),
            created.account
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn suspend_issuer(
    server: &str,
    token_file: &Path,
    issuer: &str,
    json: bool,
) -> Result<ExitCode> {
    let answer = operator_client(server, token_file)?.suspend_issuer(issuer)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else if answer.newly_suspended {
        println!(
            "issuer {} suspended: its records are revoked (they stop enrolling anywhere once the root window has passed), its appends are refused, studies posted from now on do not accept it",
            answer.issuer
        );
    } else {
        println!("issuer {} was already suspended", answer.issuer);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn mint(
    server: &str,
    token_file: &Path,
    to: &str,
    amount: u64,
    json: bool,
) -> Result<ExitCode> {
    let entry = operator_client(server, token_file)?.mint(to, amount)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entry)?);
    } else {
        println!(
            "minted {} to {to} (ledger entry {})",
            entry.amount, entry.seq
        );
    }
    Ok(ExitCode::SUCCESS)
}
