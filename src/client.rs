//! A blocking JSON client for the marketplace API (stand-in until the serve branch lands).

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A marketplace at `base`, with an optional bearer token.
pub struct MarketClient {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl MarketClient {
    /// A client of the marketplace at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::blocking::Client::builder().build()?,
        })
    }

    /// GET `path`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        decode(request.send().with_context(|| format!("GET {path}"))?)
    }

    /// POST `body` to `path`.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        decode(request.send().with_context(|| format!("POST {path}"))?)
    }
}

fn decode<T: DeserializeOwned>(response: reqwest::blocking::Response) -> Result<T> {
    let status = response.status();
    let body: serde_json::Value = response.json()?;
    if !status.is_success() {
        bail!("{}: {}", body["error"]["code"], body["error"]["message"]);
    }
    Ok(serde_json::from_value(body)?)
}
