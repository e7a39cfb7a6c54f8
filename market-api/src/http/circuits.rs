//! Key distribution: `GET /circuits/{id}/proving-key` and `GET
//! /circuits/{id}/transcript`, so a wallet needs nothing but the marketplace's address
//! to prove, and a sponsor gets the transcript the bundles name.
//!
//! The files are held in memory ([`ServedFile`]: the bytes and their SHA-256, computed
//! once at start), so an answer is a reference-counted copy with a known length: axum
//! writes `Content-Length`, and `X-Content-SHA256` carries the checksum (hex) for the
//! client to compare before it even parses the file. The checksum catches a broken
//! download, not a lying server: the wallet checks the key's points and circuit id
//! itself, and the sponsor pins the transcript id.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkcohort_circuits::CircuitId;

use super::extract::ApiPath;
use super::{ApiError, AppState, ErrorBody};

/// The checksum header of a served file: its SHA-256, 64 hex digits.
pub const CHECKSUM_HEADER: &str = "x-content-sha256";

/// A file the marketplace serves: its bytes and their SHA-256.
#[derive(Debug, Clone)]
pub struct ServedFile {
    bytes: Bytes,
    sha256: [u8; 32],
}

impl ServedFile {
    /// A file to serve, hashed once here.
    pub fn new(bytes: Vec<u8>) -> Self {
        let sha256 = Sha256::digest(&bytes).into();
        Self {
            bytes: bytes.into(),
            sha256,
        }
    }

    /// Its SHA-256.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// Its size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    fn response(&self, file_name: String) -> Response {
        let disposition = format!("attachment; filename=\"{file_name}\"");
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (
                    HeaderName::from_static(CHECKSUM_HEADER),
                    HeaderValue::from_str(&hex::encode(self.sha256)).expect("hex is a header"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&disposition).expect("a hex file name is a header"),
                ),
            ],
            self.bytes.clone(),
        )
            .into_response()
    }
}

/// One circuit's files to serve: the proving key (the `CircuitKeys` file format) and,
/// for ceremony keys, the one-file transcript (`zkcohort_verifier::setup`).
#[derive(Debug, Clone, Default)]
pub struct CircuitFiles {
    /// The proving key file.
    pub proving_key: Option<ServedFile>,
    /// The ceremony transcript, when the keys came from one.
    pub transcript: Option<ServedFile>,
}

/// The files of both circuits a marketplace serves.
#[derive(Debug, Clone, Default)]
pub struct CircuitDownloads {
    /// The eligibility circuit's.
    pub eligibility: CircuitFiles,
    /// The note-transfer circuit's.
    pub note: CircuitFiles,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(proving_key))
        .routes(routes!(transcript))
}

/// The served circuit `id` names and its files, or 404 for any other.
fn served_circuit<'a>(
    state: &'a AppState,
    id: &str,
) -> Result<(CircuitId, &'a CircuitFiles), ApiError> {
    let config = state.config();
    match id.parse::<CircuitId>() {
        Ok(asked) if asked == config.circuit_id => Ok((asked, &config.downloads.eligibility)),
        Ok(asked) if asked == config.note_circuit_id => Ok((asked, &config.downloads.note)),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_circuit",
            format!(
                "this marketplace serves circuits {} (eligibility) and {} (note transfer) only",
                config.circuit_id, config.note_circuit_id
            ),
        )),
    }
}

#[utoipa::path(get, path = "/circuits/{id}/proving-key", tag = "circuits",
    params(("id" = String, Path, description = "the circuit id (64 hex digits), as `GET /marketplace` announces it")),
    responses(
        (status = 200, description = "the proving key file (zkcohort's key format: header, checksum, key and R1CS matrices); `Content-Length`, and `X-Content-SHA256` with its SHA-256 in hex", content_type = "application/octet-stream", body = Vec<u8>),
        (status = "4XX", description = "404: another circuit (`unknown_circuit`), or no key served (`not_served`); the API error shape", body = ErrorBody)))]
async fn proving_key(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (circuit, files) = served_circuit(&state, &id)?;
    let file = files.proving_key.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_served",
            "this marketplace does not serve its proving key",
        )
    })?;
    Ok(file.response(format!("proving-key-{circuit}.bin")))
}

#[utoipa::path(get, path = "/circuits/{id}/transcript", tag = "circuits",
    params(("id" = String, Path, description = "the circuit id (64 hex digits), as `GET /marketplace` announces it")),
    responses(
        (status = 200, description = "the ceremony transcript as one file (the phase 1 `.ptau` and the final `.zkey`; see `zkcohort_verifier::setup`); `Content-Length`, and `X-Content-SHA256` with its SHA-256 in hex", content_type = "application/octet-stream", body = Vec<u8>),
        (status = "4XX", description = "404: another circuit (`unknown_circuit`), or keys from a development setup, which has no transcript (`no_transcript`); the API error shape", body = ErrorBody)))]
async fn transcript(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (circuit, files) = served_circuit(&state, &id)?;
    let file = files.transcript.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_transcript",
            "this marketplace's keys are a development setup: there is no ceremony transcript",
        )
    })?;
    Ok(file.response(format!("transcript-{circuit}.bin")))
}
