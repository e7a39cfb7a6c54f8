//! Helpers shared by the tests that run the real `zkcohort` binary.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use zkcohort::client::MarketClient;
use zkcohort::keys::run_local_ceremony;
use zkcohort_circuits::circuit::CircuitShape;

/// Runs `zkcohort` with `args` and waits for it.
pub(crate) fn zkcohort(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkcohort"))
        .args(args)
        .output()
        .expect("the zkcohort binary runs")
}

/// Runs `zkcohort` and returns its stdout, failing with its stderr when it fails.
pub(crate) fn run_ok(args: &[&str]) -> String {
    let output = zkcohort(args);
    assert!(
        output.status.success(),
        "zkcohort {args:?} failed:\n{}",
        stderr(&output)
    );
    stdout(&output)
}

/// A command's standard output.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A command's standard error.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An account made with `zkcohort account new`, and its API key request made with
/// `zkcohort account request-key` for the operator to bind.
pub(crate) struct KeyRequest {
    /// The account key file.
    pub(crate) key_file: PathBuf,
    /// The account, hex.
    pub(crate) account: String,
    /// The API key the holder drew.
    pub(crate) api_key: String,
    /// The request file.
    pub(crate) request: PathBuf,
}

/// A new account `name` in `folder` and its request for a `role` API key on `server`.
pub(crate) fn request_key(folder: &Path, name: &str, server: &str, role: &str) -> KeyRequest {
    let key_file = folder.join(format!("{name}.key"));
    let request = folder.join(format!("{name}.request.json"));
    let run = |args: &[&str]| run_ok(args).trim().to_string();
    let account = run(&["account", "new", "--out", key_file.to_str().unwrap()]);
    let api_key = run(&[
        "account",
        "request-key",
        "--server",
        server,
        "--key",
        key_file.to_str().unwrap(),
        "--role",
        role,
        "--out",
        request.to_str().unwrap(),
    ]);
    KeyRequest {
        key_file,
        account,
        api_key,
        request,
    }
}

/// A `zkcohort serve` process.
pub(crate) struct ServerProcess {
    child: Child,
    /// The base URL it listens on.
    pub(crate) url: String,
    pub(crate) stderr: Arc<Mutex<String>>,
}

/// Collects a pipe's text on a thread, so the child never blocks on a full pipe.
pub(crate) fn drain(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(read) = pipe.read(&mut buffer) {
            if read == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    });
}

impl ServerProcess {
    /// The command `zkcohort serve --shape small` on port 0 over `data`, with
    /// `--dev-unsafe-setup` (development keys, made on first start) when `development`.
    pub(crate) fn serve_command(data: &Path, development: bool) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_zkcohort"));
        command
            .args([
                "serve",
                "--shape",
                "small",
                "--addr",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(data);
        if development {
            command.arg("--dev-unsafe-setup");
        }
        command
    }

    /// [`ServerProcess::serve_command`] on development keys, every enrollment public at
    /// once and public times to the second: for the tests of everything but the minimum
    /// cohort.
    pub(crate) fn command(data: &Path) -> Command {
        let mut command = Self::serve_command(data, true);
        command.args([
            "--min-cohort",
            "1",
            "--batch-size",
            "1",
            "--public-time-unit-secs",
            "1",
        ]);
        command
    }

    /// Starts [`ServerProcess::command`] and waits until it listens.
    pub(crate) fn start(data: &Path) -> Self {
        Self::start_command(Self::command(data))
    }

    /// Starts `command` (a `serve` command) and waits until it listens.
    pub(crate) fn start_command(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the zkcohort binary runs");
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().unwrap(), stderr.clone());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let url = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!(
                    "serve ended ({status}) before listening:\n{}",
                    stderr.lock().unwrap()
                );
            }
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                break url.to_owned();
            }
        };
        drain(stdout, Arc::new(Mutex::new(String::new())));
        Self { child, url, stderr }
    }

    /// A client without a token.
    pub(crate) fn client(&self) -> MarketClient {
        MarketClient::new(&self.url).unwrap()
    }

    /// Sends SIGTERM and waits for the process to end.
    pub(crate) fn terminate(mut self) -> (ExitStatus, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the drain thread take the last lines.
                thread::sleep(Duration::from_millis(100));
                let stderr = self.stderr.lock().unwrap().clone();
                return (status, stderr);
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl ServerProcess {
    /// Kills the process at once (SIGKILL), as a crash would.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The circuit shape of these tests.
pub(crate) const SHAPE: CircuitShape = CircuitShape::SMALL;

/// A key folder with small-shape keys from a one-participant ceremony, made once per
/// test run (under Cargo's temporary folder for tests).
pub(crate) fn ceremony_folder() -> &'static Path {
    static FOLDER: OnceLock<tempfile::TempDir> = OnceLock::new();
    FOLDER
        .get_or_init(|| {
            let folder = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            run_local_ceremony(SHAPE, folder.path(), &["test"]).unwrap();
            folder
        })
        .path()
}

/// Copies every file of `from` into `to` (created).
pub(crate) fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
