//! The accept loop under every server ([`serve_connections`]), and the middleware that
//! reads request bodies in time ([`read_body_in_time`]).
//!
//! axum's own `serve` sets no timer, so hyper's header read timeout never fires and a
//! client may hold a connection, or a concurrency slot with a body it trickles, for as
//! long as it likes. Here:
//! - at most [`Limits::max_connections`] connections are open; one more is closed as
//!   soon as it is accepted (its client retries), so idle connections cannot exhaust
//!   the process's descriptors or starve the accept loop;
//! - a connection must deliver a request's whole head within
//!   [`Limits::header_read_timeout`] of opening, or of its previous answer: half-sent
//!   headers and idle keep-alive connections are closed after it; a TLS handshake gets
//!   the same time; a request target over [`MAX_URI_BYTES`] answers 414 and headers over
//!   [`MAX_HEADER_BYTES`] 431, in the error shape;
//! - a request's body is read whole, within [`Limits::body_read_timeout`] (408 past it)
//!   and [`Limits::body_bytes`] (413, at once when `Content-Length` says so), before the
//!   request takes one of the [`Limits::concurrency`] slots: slow senders hold only
//!   their own connection;
//! - on shutdown the loop stops accepting and asks every connection to close after its
//!   current answer (one just accepted gets a moment to send its first request, so a
//!   server that restarts its store on the same listener answers every client), then
//!   waits for them (at most the request timeout).

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt as _;

use super::{ApiError, AppState, Limits};

/// The longest request target (path and query) answered: past it, 414 in the error shape.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The most bytes of headers answered: past them, 431 in the error shape.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// hyper's read buffer, and so the largest head it reads at all (it closes a connection
/// whose head is larger, with a bare 431): room for the limits above to answer in the
/// error shape.
const HYPER_BUFFER_BYTES: usize = 64 * 1024;

/// How long, on shutdown, a connection that has not begun a request yet is given to
/// send it.
const FIRST_REQUEST_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves `router` on the connections `listener` accepts, each opened by `handshake`
/// (the plain TCP stream, or a TLS handshake), under `limits` (see the module
/// documentation), until `shutdown` completes.
///
/// # Errors
///
/// None yet: accept errors (a descriptor limit reached, a connection reset before it
/// was accepted) are logged and retried; the signature leaves room for a listener that
/// fails for good.
pub async fn serve_connections<H, F, IO>(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    handshake: H,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    H: Fn(TcpStream) -> F + Send + Sync + 'static,
    F: Future<Output = io::Result<IO>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake = Arc::new(handshake);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(HYPER_BUFFER_BYTES);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and the like: give connections time to close.
                    tracing::warn!("accepting a connection: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&open).try_acquire_owned() else {
            tracing::warn!(
                "{} connections open: closing a new one",
                limits.max_connections
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handshake = Arc::clone(&handshake);
        let (began, mut first_request) = watch::channel(false);
        let service = TowerToHyperService::new(router.clone().map_request(
            move |request: Request<hyper::body::Incoming>| {
                began.send_replace(true);
                request
            },
        ));
        let http = http.clone();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let io = match tokio::time::timeout(limits.header_read_timeout, handshake(stream)).await
            {
                Ok(Ok(io)) => io,
                Ok(Err(error)) => {
                    tracing::debug!("handshake: {error}");
                    return;
                }
                Err(_) => return,
            };
            let connection = http.serve_connection(TokioIo::new(io), service);
            tokio::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        tracing::debug!("connection: {error}");
                    }
                }
                () = stop_requested(&mut stopping) => {
                    // A connection accepted just before the stop whose request is still
                    // on the wire would be closed unanswered: it gets its one answer.
                    if !*first_request.borrow() {
                        tokio::select! {
                            served = connection.as_mut() => {
                                if let Err(error) = served {
                                    tracing::debug!("connection: {error}");
                                }
                                return;
                            }
                            _ = first_request.wait_for(|began| *began) => {}
                            () = tokio::time::sleep(FIRST_REQUEST_GRACE) => {}
                        }
                    }
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.request_timeout, open.acquire_many(all)).await;
    Ok(())
}

/// Reads the request's body whole before the request goes on (see the module
/// documentation): 413 `body_too_large` at once for a `Content-Length` over the limit,
/// 408 `request_timeout` for a body that does not arrive in time. A request with a body
/// that names an API key that is not one answers 401 here, before its body is read.
/// Every answer given here closes the connection: the body may be left unread.
pub(super) async fn read_body_in_time(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limits = state.config().limits;
    if let Err(refusal) = check_head(&state, &request) {
        return closing(refusal);
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        limits.body_read_timeout,
        axum::body::to_bytes(body, limits.body_bytes),
    )
    .await;
    match read {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(error)) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
            closing(if too_large {
                body_too_large(limits.body_bytes)
            } else {
                ApiError::bad_request(
                    "unreadable_body",
                    format!("the body could not be read: {error}"),
                )
            })
        }
        Err(_) => closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {} s",
                limits.body_read_timeout.as_secs_f64()
            ),
        )),
    }
}

/// What is refused from the request's head alone: its target's and headers' sizes, a
/// declared body over the limit, an unknown key on a request that carries a body.
fn check_head(state: &AppState, request: &Request) -> Result<(), ApiError> {
    if request.uri().to_string().len() > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("request targets are limited to {MAX_URI_BYTES} bytes"),
        ));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("request headers are limited to {MAX_HEADER_BYTES} bytes"),
        ));
    }
    let limit = state.config().limits.body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(body_too_large(limit));
    }
    if ![Method::GET, Method::HEAD].contains(request.method()) {
        state.bearer_is_known(request.headers())?;
    }
    Ok(())
}

/// `error` as an answer that closes the connection.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Completes once the loop asks its connections to close (or can no longer ask).
async fn stop_requested(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

fn body_too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request bodies are limited to {limit} bytes"),
    )
}
