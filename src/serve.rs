//! The marketplace server: `zkcohort serve`, and the same server in process.
//!
//! # The data folder
//!
//! | path | what | created |
//! |---|---|---|
//! | `keys/` | both circuits' proving keys (the shape's eligibility circuit and the note-transfer circuit) and their ceremony transcripts (as `zkcohort ceremony finalize` writes them; see [`crate::keys::load_served_circuits`]) | by the operator; with `--dev-unsafe-setup`, a development setup when there are none |
//! | `market/` | the sled [`Store`] (registry depth of the shape) | on first start |
//! | `marketplace.key` | the ed25519 key that signs audit heads: the marketplace's identity, bound into every study scope (hex, mode 0600) | once, never again |
//! | `operator.token` | the operator's bearer token (hex, mode 0600) | once |
//!
//! Keys without a ceremony transcript are refused unless the server is started with
//! `--dev-unsafe-setup` ([`SetupPolicy::DevelopmentUnsafe`]); a marketplace started so
//! logs a warning, announces `"setup": {"kind": "development"}` in `GET /marketplace`,
//! and every study bundle it exports says so.
//!
//! A store without its `marketplace.key` is refused: a new key would be a new
//! marketplace (every study scope, hence every nullifier, changes), so the key
//! is restored from a backup, never regenerated.
//!
//! # In process
//!
//! The end-to-end demo runs the server on a background thread with its own
//! tokio runtime, and talks to it with [`MarketClient`](crate::client::MarketClient):
//!
//! ```no_run
//! use std::path::Path;
//! use zkcohort::client::MarketClient;
//! use zkcohort::keys::SetupPolicy;
//! use zkcohort::serve::{Marketplace, Rules};
//! use zkcohort_circuits::circuit::CircuitShape;
//!
//! # fn main() -> anyhow::Result<()> {
//! let marketplace = Marketplace::open(
//!     Path::new("demo-data"),
//!     CircuitShape::SMALL,
//!     SetupPolicy::DevelopmentUnsafe,
//!     Rules::default(),
//! )?;
//! let running = marketplace.spawn("127.0.0.1:0")?;
//! let operator = MarketClient::new(running.url())?.with_token(running.operator_token());
//! let info = operator.marketplace()?;
//! println!("{}", info.circuit_id);
//! running.stop()?; // finishes requests in flight, flushes the store
//! # Ok(())
//! # }
//! ```
//!
//! Inside a tokio runtime of one's own, [`Marketplace::serve`] runs it on a
//! listener until a shutdown future completes.

use std::fs;
use std::future::Future;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use axum::Router;
use ed25519_dalek::SigningKey;
use rand::rngs::OsRng;
use rand::RngCore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_market::http::{
    app, serve_connections, settle_batches, store_fault, ApiConfig, AppState, CircuitDownloads,
    Limits, ProofBatching,
};
use zkcohort_market::{CohortPolicy, PrivacyCaps, Store, StoreConfig, DEFAULT_ROOT_WINDOW_MS};
use zkcohort_verifier::KeySetup;

use crate::keys::{load_served_circuits, ServedCircuits, SetupPolicy};

/// The marketplace's identity key, in the data folder.
pub const MARKETPLACE_KEY_FILE: &str = "marketplace.key";
/// The operator's bearer token, in the data folder.
pub const OPERATOR_TOKEN_FILE: &str = "operator.token";
/// The store's folder, in the data folder.
pub const STORE_DIR: &str = "market";
/// The circuit keys' folder, in the data folder.
pub const KEYS_DIR: &str = "keys";

/// What the operator decides about enrollments (`zkcohort serve` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How long a replaced registry root stays acceptable, in milliseconds.
    pub root_window_ms: u64,
    /// The minimum cohort, the batches and the resolution of public times.
    pub cohort: CohortPolicy,
    /// The privacy caps on each study and on each researcher's window.
    pub privacy: PrivacyCaps,
    /// How enrollment proofs that arrive together are verified together.
    pub proof_batching: ProofBatching,
}

impl Default for Rules {
    /// A day's root window, the default [`CohortPolicy`] (k = 10), the default
    /// [`PrivacyCaps`] and the default [`ProofBatching`] (up to 64 proofs, 2 ms).
    fn default() -> Self {
        Self {
            root_window_ms: DEFAULT_ROOT_WINDOW_MS,
            cohort: CohortPolicy::default(),
            privacy: PrivacyCaps::default(),
            proof_batching: ProofBatching::default(),
        }
    }
}

/// A marketplace opened from its data folder, ready to serve.
pub struct Marketplace {
    state: AppState,
    operator_token: String,
    operator_token_path: PathBuf,
    store_dir: PathBuf,
}

impl Marketplace {
    /// Opens the marketplace in `data_dir` for circuit `shape`, creating what
    /// is missing (see the module documentation); notices are `tracing` events.
    ///
    /// # Errors
    ///
    /// A store whose `marketplace.key` is missing; unreadable or malformed
    /// key or token files; circuit keys that do not load, or that have no
    /// ceremony transcript under [`SetupPolicy::CeremonyOnly`]; a store that does
    /// not open (held by another process, created for another shape).
    pub fn open(
        data_dir: &Path,
        shape: CircuitShape,
        policy: SetupPolicy,
        rules: Rules,
    ) -> Result<Self> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
        let circuits = load_served_circuits(shape, &data_dir.join(KEYS_DIR), policy)?;
        Self::open_with_circuit(data_dir, &circuits, rules)
    }

    /// Opens the marketplace in `data_dir` for `circuits` (kept elsewhere: the
    /// demo shares one key folder between runs and with the patients' prover).
    /// Creates what is missing, as [`Marketplace::open`], and holds enrollments to
    /// `rules`.
    ///
    /// # Errors
    ///
    /// As [`Marketplace::open`].
    pub fn open_with_circuit(
        data_dir: &Path,
        circuits: &ServedCircuits,
        rules: Rules,
    ) -> Result<Self> {
        let (circuit, note) = (&circuits.eligibility, &circuits.note);
        let keys = &circuit.keys;
        let shape = keys.shape();
        match circuit.setup {
            KeySetup::Development => tracing::warn!(
                "DEVELOPMENT SETUP: circuit {} was made by a single party, who could forge \
                 proofs; GET /marketplace and every study bundle say so",
                keys.circuit_id()
            ),
            KeySetup::Ceremony { transcript_id } => tracing::info!(
                "circuit {} from ceremony transcript {transcript_id}",
                keys.circuit_id()
            ),
        }
        // The verifying key is what soundness rests on: its points, gamma != delta, and
        // its id (the key file's header names it) are checked before anything is served.
        zkcohort_prover::keys::check_verifying_key(keys.verifying_key(), keys.circuit_id())
            .context("the circuit's verifying key")?;
        zkcohort_prover::keys::check_verifying_key(
            note.keys.verifying_key(),
            note.keys.circuit_id(),
        )
        .context("the note-transfer circuit's verifying key")?;
        if note.setup == KeySetup::Development {
            tracing::warn!(
                "DEVELOPMENT SETUP: note-transfer circuit {} was made by a single party, who \
                 could forge withdrawals",
                note.keys.circuit_id()
            );
        }
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
        let store_dir = data_dir.join(STORE_DIR);
        let audit_key = marketplace_key(&data_dir.join(MARKETPLACE_KEY_FILE), &store_dir)?;
        let operator_token_path = data_dir.join(OPERATOR_TOKEN_FILE);
        let operator_token = operator_token(&operator_token_path)?;
        let store = Store::open(
            &store_dir,
            StoreConfig {
                registry_depth: shape.registry_depth,
                root_window_ms: rules.root_window_ms,
                cohort: rules.cohort,
                privacy: rules.privacy,
            },
        )
        .with_context(|| {
            format!(
                "opening the store {} (is another server using it, or was it created with another --shape?)",
                store_dir.display()
            )
        })?;
        let config = ApiConfig {
            operator_key: operator_token.clone(),
            api_keys: Default::default(),
            shape,
            circuit_id: keys.circuit_id(),
            verifying_key: keys.prepared_verifying_key().clone(),
            setup: circuit.setup,
            note_circuit_id: note.keys.circuit_id(),
            note_verifying_key: note.keys.prepared_verifying_key().clone(),
            note_setup: note.setup,
            downloads: CircuitDownloads {
                eligibility: circuit.files(),
                note: note.files(),
            },
            audit_key,
            limits: Limits::default(),
            proof_batching: rules.proof_batching,
        };
        Ok(Self {
            state: AppState::new(store, config),
            operator_token,
            operator_token_path,
            store_dir,
        })
    }

    /// The server's state (store and configuration).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The operator's bearer token.
    pub fn operator_token(&self) -> &str {
        &self.operator_token
    }

    /// Where the operator's token is kept.
    pub fn operator_token_path(&self) -> &Path {
        &self.operator_token_path
    }

    /// The API's router (its request log is a `tracing` span per request).
    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    /// Serves the API on `listener` until `shutdown` completes, lets the
    /// requests in flight finish, then flushes the store. If the store fails to write,
    /// it answers 503 until the store's folder accepts writes again, then stops the same
    /// way and says so ([`Served::StorageFailed`]). Runs inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// I/O errors of the listener; a failed flush.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Served> {
        self.serve_with(listener, |stream| async move { Ok(stream) }, shutdown)
            .await
    }

    /// [`Marketplace::serve`] over https with `config`: every connection's TLS
    /// handshake has the head's time limit.
    ///
    /// # Errors
    ///
    /// I/O errors of the listener; a failed flush.
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Served> {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        self.serve_with(listener, move |stream| acceptor.accept(stream), shutdown)
            .await
    }

    /// Serves on the connections `handshake` opens (see
    /// [`zkcohort_market::http::serve_connections`]).
    async fn serve_with<H, F, IO>(
        self,
        listener: TcpListener,
        handshake: H,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Served>
    where
        H: Fn(tokio::net::TcpStream) -> F + Send + Sync + 'static,
        F: Future<Output = std::io::Result<IO>> + Send + 'static,
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let settler = tokio::spawn(settle_batches(self.state.clone()));
        let stop = self.stop_on(shutdown);
        let limits = self.state.config().limits;
        let served = serve_connections(listener, self.router(), limits, handshake, stop)
            .await
            .context("serving");
        settler.abort();
        served?;
        self.finish()
    }

    /// Completes when `shutdown` does, or once the store has failed to write and its
    /// folder accepts writes again: until then the failed store answers every request
    /// 503 (`/health` with the reason), so clients hear why rather than wait.
    fn stop_on(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let fault = store_fault(self.state.clone());
        let store_dir = self.store_dir.clone();
        async move {
            let healed = async {
                let reason = fault.await;
                tracing::error!(
                    "the store failed to write ({reason}): answering 503 until {} accepts \
                     writes again",
                    store_dir.display()
                );
                writable_again(&store_dir).await;
            };
            tokio::select! {
                () = shutdown => {}
                () = healed => tracing::info!(
                    "{} accepts writes again: opening the store from what was durable",
                    store_dir.display()
                ),
            }
        }
    }

    /// After serving: the store flushed, or the failure that stopped it.
    fn finish(self) -> Result<Served> {
        let store = self.state.store();
        if let Some(reason) = store.fault() {
            return Ok(Served::StorageFailed(reason));
        }
        store.flush().context("flushing the store")?;
        Ok(Served::Stopped)
    }

    /// Binds `addr` (port 0 picks a free port) and serves on a new thread
    /// with its own tokio runtime until [`RunningMarketplace::stop`] (or its
    /// drop).
    ///
    /// # Errors
    ///
    /// The address does not bind; the thread or the runtime does not start.
    pub fn spawn(self, addr: impl ToSocketAddrs) -> Result<RunningMarketplace> {
        let listener = std::net::TcpListener::bind(addr).context("binding the address")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let operator_token = self.operator_token.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("zkcohort-serve")
            .build()
            .context("starting the tokio runtime")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("zkcohort-serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    let served = self
                        .serve(listener, async move {
                            // A dropped sender stops the server too.
                            let _ = stopped.await;
                        })
                        .await?;
                    match served {
                        Served::Stopped => Ok(()),
                        Served::StorageFailed(reason) => {
                            Err(anyhow!("the store failed to write: {reason}"))
                        }
                    }
                })
            })
            .context("starting the server thread")?;
        Ok(RunningMarketplace {
            addr,
            operator_token,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Why [`Marketplace::serve`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// Its shutdown completed; the store was flushed.
    Stopped,
    /// The store failed to write (the reason): what it held in memory may not be on
    /// disk, so the server answered 503 from then on, and stopped once the disk accepted
    /// writes again. Opening the data folder again reads back exactly what was durable.
    StorageFailed(String),
}

/// A marketplace served on a background thread by [`Marketplace::spawn`].
/// Dropping it stops the server too, ignoring errors.
pub struct RunningMarketplace {
    addr: SocketAddr,
    operator_token: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl RunningMarketplace {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The operator's bearer token.
    pub fn operator_token(&self) -> &str {
        &self.operator_token
    }

    /// Stops the server: requests in flight finish, the store is flushed.
    ///
    /// # Errors
    ///
    /// What the server failed with, or a panic of its thread.
    pub fn stop(mut self) -> Result<()> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            // An error means the server has already ended; join tells why.
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow!("the server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningMarketplace {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            tracing::error!("zkcohort serve: {error:#}");
        }
    }
}

/// The certificate chain and private key `zkcohort serve` serves https with (PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The rustls configuration of these files, with ring as the process's provider,
    /// speaking HTTP/1.1 (the protocol the accept loop serves).
    ///
    /// # Errors
    ///
    /// Files that do not read, or do not hold a certificate and its key.
    pub fn config(&self) -> Result<Arc<rustls::ServerConfig>> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};

        // Installed once per process; a second call finds it installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let context = || {
            format!(
                "reading the TLS certificate {} and key {}",
                self.certificate.display(),
                self.key.display()
            )
        };
        let chain = CertificateDer::pem_file_iter(&self.certificate)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .with_context(context)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).with_context(context)?;
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .with_context(context)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// `zkcohort serve`: opens the marketplace in `data_dir`, serves on `addr` (over https
/// with `tls`) until Ctrl-C or SIGTERM, then finishes the requests in flight and flushes
/// the store. Prints `listening on http(s)://ADDR` (one line, stdout) once bound.
///
/// If the store fails to write (a full disk, an I/O error), the server stops answering
/// from it (503 to every request, `/health` says why), waits until the data folder
/// accepts writes again, opens the store again from what was durable and serves on the
/// same socket: connections made meanwhile wait in its backlog.
///
/// # Errors
///
/// As [`Marketplace::open`]; the address does not bind; TLS files that do not load;
/// serving fails.
pub fn run(
    data_dir: &Path,
    addr: &str,
    shape: CircuitShape,
    policy: SetupPolicy,
    rules: Rules,
    tls: Option<TlsFiles>,
) -> Result<()> {
    let mut marketplace = Marketplace::open(data_dir, shape, policy, rules)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        // The handlers are installed before the address is printed, so a
        // signal sent as soon as the line is read stops the server cleanly.
        let signal = shutdown_signal()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = stop.send(true);
        });
        let tls = match tls {
            Some(files) => Some(files.config()?),
            None => None,
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("listening on {scheme}://{}", listener.local_addr()?);
        println!(
            "operator token in {}",
            marketplace.operator_token_path().display()
        );
        // Kept bound while a failed store is opened again.
        let listener = listener.into_std()?;
        loop {
            let round = TcpListener::from_std(listener.try_clone()?)?;
            let shutdown = stop_requested(stopped.clone());
            let served = match &tls {
                Some(config) => {
                    marketplace
                        .serve_tls(round, config.clone(), shutdown)
                        .await?
                }
                None => marketplace.serve(round, shutdown).await?,
            };
            let Served::StorageFailed(reason) = served else {
                break;
            };
            tracing::info!("the store that failed ({reason}) is closed");
            match reopen(data_dir, shape, policy, rules, &stopped).await? {
                Some(reopened) => marketplace = reopened,
                None => return Ok(()),
            }
            tracing::info!("the store is open again; serving");
        }
        tracing::info!("stopped; store flushed");
        Ok(())
    })
}

/// Completes once `stopped` says a signal asked the server to stop.
async fn stop_requested(mut stopped: tokio::sync::watch::Receiver<bool>) {
    // An error means the sender is gone: nothing can ask to stop any more.
    if stopped.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How much a write probe writes: enough that a disk with room for it has room for
/// the store's next segment.
const WRITE_PROBE_BYTES: usize = 1 << 20;

/// Completes once `store_dir` accepts a write and sync of [`WRITE_PROBE_BYTES`], tried
/// every second; says every minute that it still waits.
async fn writable_again(store_dir: &Path) {
    let probe = store_dir.join(".write-probe");
    let mut waiting_since = Instant::now();
    loop {
        let written = tokio::task::spawn_blocking({
            let probe = probe.clone();
            move || write_probe(&probe)
        })
        .await;
        if matches!(written, Ok(Ok(()))) {
            return;
        }
        if waiting_since.elapsed() >= Duration::from_secs(60) {
            tracing::warn!(
                "{} still refuses writes: free space or fix the disk",
                store_dir.display()
            );
            waiting_since = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Opens the marketplace in `data_dir` again, once sled gives up the failed store's
/// lock (requests that held it finish first), trying every second; `None` if a signal
/// asks to stop meanwhile.
async fn reopen(
    data_dir: &Path,
    shape: CircuitShape,
    policy: SetupPolicy,
    rules: Rules,
    stopped: &tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Marketplace>> {
    loop {
        if *stopped.borrow() {
            return Ok(None);
        }
        match Marketplace::open(data_dir, shape, policy, rules) {
            Ok(marketplace) => return Ok(Some(marketplace)),
            Err(error) => tracing::warn!("opening the store again: {error:#}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Writes, syncs and removes a probe file of [`WRITE_PROBE_BYTES`].
fn write_probe(path: &Path) -> std::io::Result<()> {
    let written = fs::File::create(path).and_then(|mut file| {
        file.write_all(&vec![0u8; WRITE_PROBE_BYTES])?;
        file.sync_all()
    });
    let removed = fs::remove_file(path);
    written.and(removed)
}

/// A future that completes on Ctrl-C (SIGINT) or SIGTERM.
fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
                _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// Reads the marketplace key, or creates it when there is no store yet.
fn marketplace_key(path: &Path, store_dir: &Path) -> Result<SigningKey> {
    match read_secret(path)? {
        Some(text) => {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(&text, &mut bytes).map_err(|_| {
                anyhow!(
                    "{} is not a marketplace key (expected 64 hex digits)",
                    path.display()
                )
            })?;
            Ok(SigningKey::from_bytes(&bytes))
        }
        None if store_dir.exists() => bail!(
            "{} is missing but the store {} exists. The key is this marketplace's identity \
             (it signs the audit log and is bound into every study scope): restore it from \
             your backup. A new key would make a different marketplace; to start one, use a \
             new --data folder.",
            path.display(),
            store_dir.display()
        ),
        None => {
            let key = SigningKey::generate(&mut OsRng);
            create_secret(path, &hex::encode(key.to_bytes()))?;
            tracing::info!(
                "created the marketplace key {} (its identity: back it up, keep it secret)",
                path.display()
            );
            Ok(key)
        }
    }
}

/// Reads the operator token, or creates a random one.
fn operator_token(path: &Path) -> Result<String> {
    if let Some(token) = read_secret(path)? {
        if token.is_empty() {
            bail!(
                "{} is empty: delete it to get a new operator token",
                path.display()
            );
        }
        return Ok(token);
    }
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    create_secret(path, &token)?;
    tracing::info!("created the operator token {}", path.display());
    Ok(token)
}

/// The trimmed text of a secret file, `None` if it does not exist; warns when
/// others may read it.
fn read_secret(path: &Path) -> Result<Option<String>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "{} can be read by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
    Ok(Some(text.trim().to_owned()))
}

/// Writes a new secret file (mode 0600): into a temporary file first, then
/// linked into place, so the file is never seen half written and an
/// existing one is never replaced.
fn create_secret(path: &Path, text: &str) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        // A leftover of a crash may have other permissions: start afresh.
        match fs::remove_file(&temporary) {
            Err(error) if error.kind() != ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        let mut file = options.open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::hard_link(&temporary, path)
    };
    let written = write();
    let _ = fs::remove_file(&temporary);
    written.with_context(|| format!("creating {}", path.display()))
}
