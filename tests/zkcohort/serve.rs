//! `zkcohort serve` and `zkcohort operator` through the real binary: a data
//! folder in a temporary directory, the small circuit shape, port 0, SIGTERM.

use std::path::Path;
use std::process::Output;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use zkcohort::client::{ClientError, MarketClient};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_market::{Store, StoreConfig};

use crate::common::{request_key, stderr, zkcohort, ServerProcess};

const QUERY: &str = "index date 2021-01-01\nrequire age >= 40\nrequire condition hypertension";

fn operator(args: &[&str]) -> Output {
    zkcohort(&[&["operator"], args].concat())
}

fn account(seed: u8) -> String {
    hex::encode(
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes(),
    )
}

fn status_of<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (u16, String) {
    match result {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn identity_token_and_money_survive_a_restart_and_sigterm_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path());
    let health: Value = server.client().get("/health").unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let info: Value = server.client().get("/marketplace").unwrap();
    let token = std::fs::read_to_string(data.path().join("operator.token")).unwrap();
    let key_file = std::fs::read_to_string(data.path().join("marketplace.key")).unwrap();
    #[cfg(unix)]
    {
        assert_eq!(mode(&data.path().join("operator.token")), 0o600);
        assert_eq!(mode(&data.path().join("marketplace.key")), 0o600);
    }
    let researcher = account(1);
    let operator = server.client().with_token(token.trim());
    let minted = operator.mint(&researcher, 70).unwrap();
    assert_eq!(minted.amount, 70);

    let (status, stderr) = server.terminate();
    assert!(status.success(), "exit {status}:\n{stderr}");
    // The request log: one timestamped line per answer, in its request's span.
    assert!(
        stderr.lines().any(|line| line.contains(" INFO ")
            && line.contains("method=POST path=/ledger/mint")
            && line.contains("status=200")),
        "request log:\n{stderr}"
    );
    {
        let store = Store::open(
            data.path().join("market"),
            StoreConfig {
                registry_depth: CircuitShape::SMALL.registry_depth,
                ..StoreConfig::default()
            },
        )
        .expect("the store reopens after SIGTERM");
        store.verify_audit_log().unwrap();
    }

    let server = ServerProcess::start(data.path());
    let again: Value = server.client().get("/marketplace").unwrap();
    assert_eq!(again["marketplace_key"], info["marketplace_key"]);
    assert_eq!(again["circuit_id"], info["circuit_id"]);
    assert_eq!(
        std::fs::read_to_string(data.path().join("operator.token")).unwrap(),
        token
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("marketplace.key")).unwrap(),
        key_file
    );
    let balance: Value = server
        .client()
        .get(&format!("/accounts/{researcher}"))
        .unwrap();
    assert_eq!(
        balance["balance"], 70,
        "the mint was flushed before its 200"
    );
    let (status, stderr) = server.terminate();
    assert!(status.success(), "exit {status}:\n{stderr}");
}

#[test]
fn a_researcher_key_bound_on_the_holder_s_request_posts_studies_and_cannot_mint() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path());
    let token_file = data.path().join("operator.token");
    let token_file = token_file.to_str().unwrap();
    let holder = request_key(work.path(), "researcher", &server.url, "researcher");
    let researcher = holder.account.clone();
    let api_key = holder.api_key.as_str();

    let output = operator(&[
        "create-key",
        "--server",
        &server.url,
        "--token-file",
        token_file,
        "--request",
        holder.request.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(created["role"], "researcher");
    assert_eq!(created["account"], researcher.as_str());
    assert!(
        created.get("api_key").is_none(),
        "the operator never sees the key"
    );
    let replayed = operator(&[
        "create-key",
        "--server",
        &server.url,
        "--token-file",
        token_file,
        "--request",
        holder.request.to_str().unwrap(),
    ]);
    assert!(
        !replayed.status.success() && stderr(&replayed).contains("api_key_exists"),
        "{}",
        stderr(&replayed)
    );

    // No issuer holds a key yet, so the study names the one it will accept.
    let study = json!({
        "title": "Hypertension over 40",
        "query": QUERY,
        "reward": 10,
        "max_enrollments": 5,
        "epsilon_budget": 1.0,
        "issuers": [hex::encode([9u8; 32])],
    });
    let posted: Value = server
        .client()
        .with_token(api_key)
        .post("/studies", &study)
        .unwrap();
    assert_eq!(posted["researcher"], researcher.as_str());

    let made_up = server.client().with_token("0".repeat(64));
    assert_eq!(
        status_of(made_up.post::<_, Value>("/studies", &study)),
        (401, "unauthorized".into())
    );
    let mint = json!({"to": researcher, "amount": 5});
    assert_eq!(
        status_of(
            server
                .client()
                .with_token(api_key)
                .post::<_, Value>("/ledger/mint", &mint)
        ),
        (403, "forbidden".into())
    );

    // The operator's mint command, and a wrong token named clearly.
    let output = operator(&[
        "mint",
        "--server",
        &server.url,
        "--token-file",
        token_file,
        "--to",
        &researcher,
        "--amount",
        "25",
    ]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("minted 25 to "));
    let wrong_token = data.path().join("wrong.token");
    std::fs::write(&wrong_token, "not-the-token").unwrap();
    let issuer = request_key(work.path(), "issuer", &server.url, "issuer");
    let output = operator(&[
        "create-key",
        "--server",
        &server.url,
        "--token-file",
        wrong_token.to_str().unwrap(),
        "--request",
        issuer.request.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("unauthorized"),
        "{stderr}"
    );
    let (status, stderr) = server.terminate();
    assert!(status.success(), "exit {status}:\n{stderr}");
}

#[test]
fn a_store_without_its_marketplace_key_is_refused_not_given_a_new_identity() {
    let data = tempfile::tempdir().unwrap();
    let (status, _) = ServerProcess::start(data.path()).terminate();
    assert!(status.success());
    let key_path = data.path().join("marketplace.key");
    std::fs::remove_file(&key_path).unwrap();

    let output = ServerProcess::command(data.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("marketplace.key is missing") && stderr.contains("restore"),
        "{stderr}"
    );
    assert!(!key_path.exists(), "no key was made up");
}

#[test]
fn the_library_serves_in_process_on_a_background_thread() {
    use zkcohort::keys::SetupPolicy;
    use zkcohort::serve::Marketplace;

    let data = tempfile::tempdir().unwrap();
    let marketplace = Marketplace::open(
        data.path(),
        CircuitShape::SMALL,
        SetupPolicy::DevelopmentUnsafe,
        zkcohort::serve::Rules::default(),
    )
    .unwrap();
    let running = marketplace.spawn("127.0.0.1:0").unwrap();
    let operator = MarketClient::new(running.url())
        .unwrap()
        .with_token(running.operator_token());
    let info: Value = operator.get("/marketplace").unwrap();
    let issuer = SigningKey::from_bytes(&[4; 32]);
    let api_key = zkcohort_market::api_keys::draw_api_key();
    let mut marketplace_key = [0u8; 32];
    hex::decode_to_slice(
        info["marketplace_key"].as_str().unwrap(),
        &mut marketplace_key,
    )
    .unwrap();
    let created = operator
        .create_api_key(&zkcohort_market::api::CreateApiKey::sign(
            &issuer,
            &marketplace_key,
            zkcohort_market::api_keys::ApiKeyRole::Issuer,
            &api_key,
        ))
        .unwrap();
    assert_eq!(created.account, account(4));
    running.stop().unwrap();

    // Reopened in the same process: same identity, the created key still works.
    let running = Marketplace::open(
        data.path(),
        CircuitShape::SMALL,
        SetupPolicy::DevelopmentUnsafe,
        zkcohort::serve::Rules::default(),
    )
    .unwrap()
    .spawn("127.0.0.1:0")
    .unwrap();
    let client = MarketClient::new(running.url()).unwrap();
    let again: Value = client.get("/marketplace").unwrap();
    assert_eq!(again["marketplace_key"], info["marketplace_key"]);
    let appended: Value = client
        .clone()
        .with_token(&api_key)
        .post(
            "/registry/records",
            &json!({"records": [{"commitment": "00".repeat(31) + "07", "issued_at": "2021-06-01"}]}),
        )
        .unwrap();
    assert_eq!(appended["first_index"], 0);
    running.stop().unwrap();
}

/// `serve --tls-cert --tls-key` serves https: a client told to trust the certificate
/// (`ZKCOHORT_CA_CERT`) talks to it; one that is not refuses the connection, and plain
/// http to the https port gets no answer. SIGTERM still stops it cleanly.
#[test]
fn serve_speaks_https_and_clients_trust_only_the_certificates_they_are_given() {
    let data = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (certificate, key) = (data.path().join("cert.pem"), data.path().join("key.pem"));
    std::fs::write(&certificate, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let mut command = ServerProcess::command(&data.path().join("market"));
    command
        .arg("--tls-cert")
        .arg(&certificate)
        .arg("--tls-key")
        .arg(&key);
    let server = ServerProcess::start_command(command);
    let url = server.url.clone();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let marketplace = |url: &str, trusted: Option<&Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_zkcohort"));
        command.args(["marketplace", "--json", "--server", url]);
        command.env_remove(zkcohort::client::CA_CERT_ENV);
        if let Some(file) = trusted {
            command.env(zkcohort::client::CA_CERT_ENV, file);
        }
        command.output().unwrap()
    };
    let trusted = marketplace(&url, Some(&certificate));
    assert!(trusted.status.success(), "{}", stderr(&trusted));
    let info: Value = serde_json::from_slice(&trusted.stdout).unwrap();
    assert!(info["marketplace_key"].is_string(), "{info}");
    let untrusted = marketplace(&url, None);
    assert!(!untrusted.status.success());
    assert!(
        stderr(&untrusted).to_lowercase().contains("certificate"),
        "{}",
        stderr(&untrusted)
    );
    let plain = marketplace(&url.replace("https://", "http://"), Some(&certificate));
    assert!(!plain.status.success(), "plain http got an answer");
    let missing = marketplace(&url, Some(&data.path().join("no-such.pem")));
    assert!(
        stderr(&missing).contains(zkcohort::client::CA_CERT_ENV),
        "{}",
        stderr(&missing)
    );

    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}

/// A tmpfs of a given size mounted at a folder for the length of a test.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts it, or says why this machine cannot (mounting needs root).
    fn mount(folder: &Path, bytes: u64) -> Result<Self, String> {
        std::fs::create_dir_all(folder).map_err(|error| error.to_string())?;
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(folder)
            .output()
            .map_err(|error| error.to_string())?;
        if output.status.success() {
            Ok(Self(folder.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Writes `path` until the disk is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 16 * 1024];
    while file
        .write_all(&chunk)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}

/// `GET path` without the client's error handling: the status and the JSON body, which
/// must come within 5 s (a server whose store failed answers at once).
fn raw_get(server: &ServerProcess, path: &str) -> (u16, Value) {
    let response = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("{}{path}", server.url))
        .send()
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

/// The store on a disk that fills up: the write that fails is answered 503 in the error
/// shape, and from then on every route but `/health` (503 with the reason) refuses, so
/// nobody reads a change that may not be on disk; once space is freed the server opens
/// its store again by itself. Every acknowledged mint survives, the failed one at most
/// once, and every head signed before the failure is a prefix of the log after it.
#[test]
fn a_full_disk_answers_503_loses_nothing_acknowledged_and_heals_once_space_is_freed() {
    let data = tempfile::tempdir().unwrap();
    let store_dir = data.path().join("market");
    // A first run makes the marketplace's identity and its store; the store then moves
    // onto a small disk of its own.
    let (status, stderr) = ServerProcess::start(data.path()).terminate();
    assert!(
        status.success(),
        "exit {status}:
{stderr}"
    );
    let first_store = data.path().join("first-store");
    std::fs::rename(&store_dir, &first_store).unwrap();
    let _disk = match Tmpfs::mount(&store_dir, 24 << 20) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("SKIPPED: the full-disk test cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(first_store.join("."))
        .arg(&store_dir)
        .status()
        .unwrap();
    assert!(copied.success());
    let server = ServerProcess::start(data.path());
    let token = std::fs::read_to_string(data.path().join("operator.token")).unwrap();
    let operator = server.client().with_token(token.trim());
    let researcher = account(1);
    operator.mint(&researcher, 5).unwrap();
    let signed_before: zkcohort_verifier::audit::SignedHead =
        server.client().get("/audit/head").unwrap();

    fill(&store_dir.join("filler"));
    let mut acknowledged = 5;
    let refusal = loop {
        match operator.mint(&researcher, 1) {
            Ok(_) => acknowledged += 1,
            Err(error) => break status_of::<()>(Err(error)),
        }
        assert!(
            acknowledged < 100_000,
            "the full disk never refused a write"
        );
    };
    assert_eq!(refusal, (503, "storage_unavailable".to_string()));
    let (status, health) = raw_get(&server, "/health");
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unavailable");
    assert!(!health["reason"].as_str().unwrap().is_empty(), "{health}");
    for path in [format!("/accounts/{researcher}"), "/audit/head".to_string()] {
        let (status, body) = raw_get(&server, &path);
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    }

    std::fs::remove_file(store_dir.join("filler")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while raw_get(&server, "/health").0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not heal:\n{}",
            server.stderr.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let balance: Value = server
        .client()
        .get(&format!("/accounts/{researcher}"))
        .unwrap();
    let balance = balance["balance"].as_u64().unwrap();
    assert!(
        (acknowledged..=acknowledged + 1).contains(&balance),
        "{acknowledged} acknowledged, balance {balance}"
    );
    operator.mint(&researcher, 1).unwrap();
    let (status, stderr) = server.terminate();
    assert!(status.success(), "exit {status}:\n{stderr}");
    assert!(
        stderr.contains("the store failed to write") && stderr.contains("serving"),
        "{stderr}"
    );

    let store = Store::open(
        &store_dir,
        StoreConfig {
            registry_depth: CircuitShape::SMALL.registry_depth,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    store.verify_audit_log().unwrap();
    let hashes: Vec<_> = store
        .audit_entries(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|entry| entry.hash)
        .collect();
    let size = signed_before.head.size as usize;
    assert_eq!(
        zkcohort_verifier::audit::merkle_root(&hashes[..size]),
        signed_before.head.root,
        "a head signed before the failure is not a prefix of the log after it"
    );
}

/// SIGKILL at many points while mints run and a poller collects signed heads: after each
/// restart, every head served before any kill is proven a prefix of the log (an RFC 9162
/// consistency proof from the restarted server, checked here), and every acknowledged
/// mint is in it. A head signed over an entry that was not yet durable would fail.
#[test]
fn every_head_served_before_a_kill_is_a_prefix_of_the_log_after_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use zkcohort_verifier::audit::{verify_consistency, ConsistencyProof, SignedHead};

    let data = tempfile::tempdir().unwrap();
    let researcher = account(2);
    let mut acknowledged = 0;
    let mut served: Vec<SignedHead> = Vec::new();
    let mut proven = 0;
    for round in 0..8u64 {
        let server = ServerProcess::start(data.path());
        let client = server.client();
        let current: SignedHead = client.get("/audit/head").unwrap();
        for head in &served {
            head.verify(Some(&current.public_key)).unwrap();
            let proof: ConsistencyProof = client
                .get(&format!(
                    "/audit/consistency?first={}&second={}",
                    head.head.size, current.head.size
                ))
                .unwrap();
            verify_consistency(&head.head, &current.head, &proof).unwrap_or_else(|error| {
                panic!(
                    "round {round}: the head of size {} served before a kill: {error}",
                    head.head.size
                )
            });
            proven += 1;
        }
        let balance: Value = client.get(&format!("/accounts/{researcher}")).unwrap();
        let balance = balance["balance"].as_u64().unwrap();
        assert!(
            balance >= acknowledged,
            "round {round}: {acknowledged} mints acknowledged, balance {balance}"
        );
        acknowledged = balance;

        let token = std::fs::read_to_string(data.path().join("operator.token")).unwrap();
        let operator = client.clone().with_token(token.trim());
        let stop = AtomicBool::new(false);
        let (minted, heads) = std::thread::scope(|scope| {
            let minter = scope.spawn(|| {
                let mut minted = 0;
                while !stop.load(Ordering::Relaxed) && operator.mint(&researcher, 1).is_ok() {
                    minted += 1;
                }
                minted
            });
            let poller = scope.spawn(|| {
                let mut heads = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match client.get::<SignedHead>("/audit/head") {
                        Ok(head) => heads.push(head),
                        Err(_) => break,
                    }
                }
                heads
            });
            // A different moment in each round.
            std::thread::sleep(std::time::Duration::from_millis(150 + (round * 97) % 400));
            server.kill();
            stop.store(true, Ordering::Relaxed);
            (minter.join().unwrap(), poller.join().unwrap())
        });
        assert!(minted > 0 && !heads.is_empty(), "round {round}: no load");
        acknowledged += minted;
        // The heads nearest the kill are the ones a crash could contradict.
        served.extend(heads.into_iter().rev().take(20));
    }
    assert!(proven >= 100, "only {proven} heads proven");
}

/// The operator's commands find the server in `ZKCOHORT_SERVER`, as every role's do; a
/// server that is not there is reported at once, not retried (a retry is for answers
/// lost on the way, with the request's idempotency key).
#[test]
fn operator_commands_read_zkcohort_server_and_report_a_refused_connection_at_once() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path());
    let token_file = data.path().join("operator.token");
    let mint = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_zkcohort"))
            .args(["operator", "mint", "--token-file"])
            .arg(&token_file)
            .args(["--to", &account(3), "--amount", "7"])
            .env("ZKCOHORT_SERVER", url)
            .output()
            .unwrap()
    };
    let minted = mint(&server.url);
    assert!(minted.status.success(), "{}", stderr(&minted));
    let balance: Value = server
        .client()
        .get(&format!("/accounts/{}", account(3)))
        .unwrap();
    assert_eq!(balance["balance"], 7, "{balance}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let refused = mint(&format!("http://{closed}"));
    assert!(!refused.status.success());
    let said = stderr(&refused);
    assert!(
        said.contains(&closed.to_string()) && !said.contains("sending it again"),
        "{said}"
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}
