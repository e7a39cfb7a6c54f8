//! Slow and oversized clients against a real server on 127.0.0.1, over raw TCP: they
//! cannot starve others, and every refusal comes at once in the error shape.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zkcohort_market::http::Limits;
use zkcohort_market::Store;

use crate::common::{
    api_config, api_keys, keys, public_key, store_config, TestServer, OPERATOR, RESEARCHER,
};

/// A server whose limits are `limits`.
async fn server(limits: Limits) -> (TestServer, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open(folder.path().join("db"), store_config()).unwrap();
    let mut config = api_config(keys(), api_keys(public_key(1)));
    config.limits = limits;
    (TestServer::serve(store, config).await, folder)
}

/// Sends `request` on a new connection and reads until the server closes it (at most
/// `within`): the status code and the JSON body, or `None` for a connection closed
/// without an answer.
async fn exchange(addr: &str, request: &[u8], within: Duration) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .expect("the server answered and closed in time")
        .ok()?;
    parse_answer(&answer)
}

/// The status and JSON body of a raw HTTP/1.1 answer.
fn parse_answer(answer: &[u8]) -> Option<(u16, Value)> {
    let text = String::from_utf8_lossy(answer);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// Whether the server closes `stream` within `within` (reads end), sending nothing.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

fn mint_head(content_length: u64) -> String {
    format!(
        "POST /ledger/mint HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {OPERATOR}\r\n\
         Content-Type: application/json\r\nContent-Length: {content_length}\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_trickling_bodies_do_not_keep_health_or_a_mint_from_answering() {
    let limits = Limits {
        body_read_timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let (server, _folder) = server(limits).await;
    let addr = server.addr().to_owned();
    let body = json!({"to": hex::encode(public_key(3)), "amount": 1}).to_string();
    let padded = format!("{body:<100}");

    // 300 clients each send a mint's head, then its body a byte every 250 ms.
    let trickles: Vec<_> = (0..300)
        .map(|_| {
            let addr = addr.clone();
            let padded = padded.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&addr).await.unwrap();
                stream.write_all(mint_head(100).as_bytes()).await.unwrap();
                let mut answer = Vec::new();
                let mut buffer = [0u8; 4096];
                // Between bytes, read what the server answered, before its close.
                for byte in padded.bytes() {
                    if stream.write_all(&[byte]).await.is_err() {
                        break;
                    }
                    let wait = Duration::from_millis(250);
                    match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
                        Ok(Ok(0) | Err(_)) => break,
                        Ok(Ok(read)) => {
                            answer.extend_from_slice(&buffer[..read]);
                            break;
                        }
                        Err(_) => {}
                    }
                }
                let _ = stream.read_to_end(&mut answer).await;
                parse_answer(&answer)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    for _ in 0..4 {
        let started = Instant::now();
        let (status, health) = tokio::time::timeout(Duration::from_secs(1), server.get("/health"))
            .await
            .expect("/health answered within a second");
        assert_eq!((status.as_u16(), health), (200, json!({"status": "ok"})));
        let (status, minted) = tokio::time::timeout(
            Duration::from_secs(1),
            server.post(
                "/ledger/mint",
                Some(OPERATOR),
                &json!({"to": hex::encode(public_key(4)), "amount": 2}),
            ),
        )
        .await
        .expect("a mint answered within a second");
        assert_eq!(status.as_u16(), 200, "{minted}");
        // An enrollment is answered too (this one names no study).
        let (status, _) = tokio::time::timeout(
            Duration::from_secs(1),
            server.post("/studies/99/enroll", None, &json!({})),
        )
        .await
        .expect("an enrollment answered within a second");
        assert!(status.is_client_error());
        assert!(started.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Every trickler was cut off at the body timeout: with a 408 in the error shape, or
    // with its connection reset (the server closes with the trickled bytes unread, and
    // the reset can overtake the answer); none of their mints happened.
    let mut answered = 0;
    for trickle in trickles {
        let ended = tokio::time::timeout(Duration::from_secs(10), trickle)
            .await
            .expect("a trickler was cut off");
        if let Some((status, body)) = ended.unwrap() {
            assert_eq!(status, 408, "{body}");
            assert_eq!(body["error"]["code"], "request_timeout");
            answered += 1;
        }
    }
    assert!(answered > 0, "no trickler read its 408");
    assert_eq!(server.balance(&public_key(3)).await, 0);
    assert_eq!(server.balance(&public_key(4)).await, 8);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_and_wrong_methods_are_refused_at_once_in_the_error_shape() {
    let (server, _folder) = server(Limits::default()).await;
    let addr = server.addr().to_owned();
    let at_once = Duration::from_secs(1);

    let (status, body) = exchange(&addr, mint_head(10_000_000_000).as_bytes(), at_once)
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (413, json!("body_too_large"))
    );

    let long_target = format!(
        "GET /studies?start={} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        "1".repeat(10_000)
    );
    let (status, body) = exchange(&addr, long_target.as_bytes(), at_once)
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (414, json!("uri_too_long"))
    );

    let big_headers = format!(
        "GET /health HTTP/1.1\r\nHost: test\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let (status, body) = exchange(&addr, big_headers.as_bytes(), at_once)
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (431, json!("headers_too_large"))
    );

    let wrong_method = b"DELETE /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let (status, body) = exchange(&addr, wrong_method, at_once).await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (405, json!("method_not_allowed"))
    );

    // Authentication comes before the body is parsed: a malformed body without a key,
    // or with an unknown one, is a 401.
    for key in [None, Some("not-a-key")] {
        let (status, body) = server
            .post_raw(
                "/studies",
                key,
                Some("application/json"),
                b"{not json".to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(status.as_u16(), 401, "{key:?}: {body:?}");
        assert_eq!(body.unwrap()["error"]["code"], "unauthorized");
    }
    let (status, body) = server
        .post_raw(
            "/studies",
            Some(RESEARCHER),
            Some("application/json"),
            b"{not json".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(status.as_u16(), 400, "{body:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_and_idle_connections_are_closed_and_the_connection_limit_holds() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 20,
        ..Limits::default()
    };
    let (server, _folder) = server(limits).await;
    let addr = server.addr().to_owned();

    let mut half_sent = TcpStream::connect(&addr).await.unwrap();
    half_sent
        .write_all(b"GET /health HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut kept_alive = TcpStream::connect(&addr).await.unwrap();
    kept_alive
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let read = kept_alive.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    for (name, stream) in [
        ("half-sent head", &mut half_sent),
        ("idle", &mut idle),
        ("kept alive after an answer", &mut kept_alive),
    ] {
        assert!(
            closed_within(stream, Duration::from_secs(3)).await,
            "{name}: still open"
        );
    }

    // 20 connections fill the server; the 21st is closed as soon as it is accepted.
    let mut open = Vec::new();
    for _ in 0..20 {
        open.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    assert!(closed_within(&mut extra, Duration::from_millis(500)).await);
    // Once the idle ones have timed out, the server takes connections again.
    for stream in &mut open {
        assert!(closed_within(stream, Duration::from_secs(3)).await);
    }
    let (status, _) = server.get("/health").await;
    assert_eq!(status.as_u16(), 200);
    server.stop().await;
}
