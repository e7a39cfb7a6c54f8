//! Key distribution over real HTTP: `GET /circuits/{id}/proving-key` and `/transcript`
//! answer the configured files with their length and SHA-256, `GET /marketplace`
//! announces the setup, and another circuit id is a 404 in the API's error shape.

use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use zkcohort_circuits::{CircuitId, TranscriptId};
use zkcohort_market::http::{CircuitDownloads, CircuitFiles, ServedFile, CHECKSUM_HEADER};
use zkcohort_market::Store;
use zkcohort_verifier::KeySetup;

use crate::common::{api_config_for, api_keys, public_key, store_config, TestServer};

const CIRCUIT: CircuitId = CircuitId([7; 32]);

async fn server(setup: KeySetup, downloads: CircuitDownloads) -> TestServer {
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open(folder.path().join("db"), store_config()).unwrap();
    let mut config = api_config_for(CIRCUIT, Default::default(), api_keys(public_key(1)));
    config.setup = setup;
    config.downloads = downloads;
    let mut server = TestServer::serve(store, config).await;
    server._folder = Some(folder);
    server
}

/// The status, the headers and the body of a GET.
async fn fetch(
    server: &TestServer,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let response = server
        .client
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_served_files_come_with_their_length_and_checksum() {
    let key: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let transcript = b"a transcript".to_vec();
    let id = TranscriptId([3; 32]);
    let server = server(
        KeySetup::Ceremony { transcript_id: id },
        CircuitDownloads {
            eligibility: CircuitFiles {
                proving_key: Some(ServedFile::new(key.clone())),
                transcript: Some(ServedFile::new(transcript.clone())),
            },
            note: CircuitFiles::default(),
        },
    )
    .await;

    let (status, info) = server.get("/marketplace").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["setup"]["kind"], "ceremony");
    assert_eq!(info["setup"]["transcript_id"], id.to_string());

    for (path, expected) in [("proving-key", &key), ("transcript", &transcript)] {
        let (status, headers, body) = fetch(&server, &format!("/circuits/{CIRCUIT}/{path}")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(&body, expected, "{path}");
        assert_eq!(
            headers[reqwest::header::CONTENT_LENGTH].to_str().unwrap(),
            expected.len().to_string()
        );
        assert_eq!(
            headers[CHECKSUM_HEADER].to_str().unwrap(),
            hex::encode(Sha256::digest(expected))
        );
        assert_eq!(
            headers[reqwest::header::CONTENT_TYPE],
            "application/octet-stream"
        );
    }

    for path in ["proving-key", "transcript"] {
        for other in [CircuitId([8; 32]).to_string(), "not-hex".to_string()] {
            let (status, body) = server.get(&format!("/circuits/{other}/{path}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
            assert_eq!(body["error"]["code"], "unknown_circuit", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(&CIRCUIT.to_string()),
                "{body}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_development_marketplace_says_so_and_has_no_transcript() {
    let server = server(
        KeySetup::Development,
        CircuitDownloads {
            eligibility: CircuitFiles {
                proving_key: Some(ServedFile::new(vec![1, 2, 3])),
                transcript: None,
            },
            note: CircuitFiles::default(),
        },
    )
    .await;
    let (_, info) = server.get("/marketplace").await;
    assert_eq!(info["setup"], serde_json::json!({"kind": "development"}));
    let (status, body) = server.get(&format!("/circuits/{CIRCUIT}/transcript")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "no_transcript");
    let (status, _, key) = fetch(&server, &format!("/circuits/{CIRCUIT}/proving-key")).await;
    assert_eq!((status, key), (StatusCode::OK, vec![1, 2, 3]));
    server.stop().await;
}
