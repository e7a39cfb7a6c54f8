//! Account key files: the ed25519 key of a researcher's or an issuer's account, which
//! signs every order that moves the account's tokens (an escrow funding) and the request
//! that binds an API key to the account. The holder draws the API key itself
//! ([`request_api_key`]) and the operator only forwards its signed id, so nobody else
//! holds a key that acts as the account; the API key alone moves no tokens.
//!
//! The file holds the 32-byte secret as 64 hex digits and a newline, readable by its
//! owner only (mode 0600); `zkcohort account new` writes one and never overwrites.

use std::path::Path;

use std::io::Write;

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use zkcohort_market::api::CreateApiKey;
use zkcohort_market::api_keys::{draw_api_key, ApiKeyRole};

use crate::client::MarketClient;
use crate::patient::RemoteMarketplace;
use crate::wallet::write_private;

/// Creates a new account key at `path` (which must not exist) from the OS RNG.
///
/// # Errors
/// The file exists or cannot be written.
pub fn create(path: &Path) -> Result<SigningKey> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write_private(
        path,
        format!("{}\n", hex::encode(key.to_bytes())).as_bytes(),
    )?;
    Ok(key)
}

/// Reads the account key at `path`.
///
/// # Errors
/// The file cannot be read or is not 64 hex digits.
pub fn load(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the account key {}", path.display()))?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).with_context(|| {
        format!(
            "{} is not an account key (64 hex digits, as `zkcohort account new` writes)",
            path.display()
        )
    })?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Draws an API key for `role`, signs the request binding it to the account of the key
/// file `key_path` on `client`'s marketplace, writes the request to `out` (which must
/// not exist) and returns the API key.
///
/// # Errors
/// The key file cannot be read, the marketplace cannot be reached, or `out` exists or
/// cannot be written.
pub fn request_api_key(
    client: &MarketClient,
    key_path: &Path,
    role: ApiKeyRole,
    out: &Path,
) -> Result<String> {
    let key = load(key_path)?;
    let market = RemoteMarketplace::fetch(client)?;
    let api_key = draw_api_key();
    let request = CreateApiKey::sign(&key, &market.key, role, &api_key);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("creating the key request {}", out.display()))?;
    serde_json::to_writer_pretty(&mut file, &request)?;
    file.write_all(b"\n")?;
    Ok(api_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_loads_back_and_is_never_overwritten() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("researcher.key");
        let created = create(&path).unwrap();
        assert_eq!(load(&path).unwrap().to_bytes(), created.to_bytes());
        assert!(create(&path).is_err());
        assert_eq!(load(&path).unwrap().to_bytes(), created.to_bytes());
        std::fs::write(&path, "not hex\n").unwrap();
        let error = format!("{:#}", load(&path).unwrap_err());
        assert!(error.contains("is not an account key"), "{error}");
    }
}
