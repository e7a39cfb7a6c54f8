//! A clean restart mid-flow, and a crash (SIGKILL of a server process) right
//! after an acknowledged enrollment.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_survives_a_restart_mid_flow() {
    let cohort = cohort(3);
    let proofs = prove_all(&cohort);
    let folder = tempfile::tempdir().unwrap();

    let server = Server::start(folder.path()).await;
    server.api.set_up_market(&cohort, 5, 30).await;
    for (index, proof) in proofs.iter().enumerate().take(2) {
        let (status, answer) = server.api.enroll(proof, &receiver(index)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let study = server.api.study().await;
    let balances = [
        server.api.balance(&researcher()).await,
        server.api.paid_to(&receiver(0)).await,
        server.api.paid_to(&receiver(1)).await,
    ];
    assert_eq!(balances, [70, REWARD, REWARD]);
    let (_, head) = server.api.get("/audit/head").await;
    let (_, root) = server.api.get("/registry/root").await;
    server.stop().await;

    let server = Server::start(folder.path()).await;
    assert_eq!(server.api.study().await, study);
    assert_eq!(
        [
            server.api.balance(&researcher()).await,
            server.api.paid_to(&receiver(0)).await,
            server.api.paid_to(&receiver(1)).await,
        ],
        balances
    );
    assert_eq!(server.api.get("/registry/root").await.1, root);
    let (status, head_after) = server.api.get("/audit/head").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(head_after["head"], head["head"]);
    let signed: SignedHead = serde_json::from_value(head_after).unwrap();
    signed.verify(Some(&marketplace_key())).unwrap();
    assert_eq!(server.store().verify_audit_log().unwrap(), signed.head);
    assert_eq!(server.store().enrollments(STUDY).unwrap().len(), 2);

    // The nullifiers survived: a replay is refused and changes nothing.
    let (status, answer) = server.api.enroll(&proofs[0], &receiver(0)).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::CONFLICT, &json!("duplicate_nullifier"))
    );
    assert_eq!(server.api.study().await, study);

    // The flow goes on where it stopped.
    let (status, answer) = server.api.enroll(&proofs[2], &receiver(2)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["position"], 2);
    let study = server.api.study().await;
    assert_eq!(
        (study["enrolled"].as_u64(), study["escrow"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(server.api.paid_to(&receiver(2)).await, REWARD);
    server.store().check_conservation().unwrap();
    assert_eq!(
        server.store().verify_audit_log().unwrap().size,
        signed.head.size + 1
    );
    server.stop().await;
}

/// Names the folder the crash test's server process serves; set only for
/// that process.
const CHILD_FOLDER_VAR: &str = "ZKCOHORT_RELIABILITY_SERVER_FOLDER";
/// The minimum cohort (and batch size) the server process holds enrollments to; unset,
/// every enrollment settles at once.
const CHILD_MIN_COHORT_VAR: &str = "ZKCOHORT_RELIABILITY_MIN_COHORT";
/// The test that acts as the server process.
const CHILD_TEST: &str = "reliability::crash::server_process_for_the_crash_test";

/// The server process of [`acknowledged_enrollments_survive_sigkill`]: this
/// test binary run again with `--ignored --exact` and [`CHILD_FOLDER_VAR`].
/// It serves the store in that folder with the verifying key found there,
/// writes its address to `addr`, and stops by itself after two minutes if
/// nobody kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the server process of acknowledged_enrollments_survive_sigkill, started by it"]
async fn server_process_for_the_crash_test() {
    // Run by hand (`--include-ignored`), it has no folder to serve: nothing
    // to do.
    let Some(folder) = std::env::var_os(CHILD_FOLDER_VAR).map(PathBuf::from) else {
        return;
    };
    let verifying_key =
        verifying_key_from_json(&std::fs::read_to_string(folder.join("vk.json")).unwrap()).unwrap();
    let config = api_config(
        CircuitId::of(&verifying_key),
        zkcohort_verifier::prepare_verifying_key(&verifying_key),
    );
    let mut store_config = store_config();
    if let Ok(k) = std::env::var(CHILD_MIN_COHORT_VAR) {
        let k = k.parse().unwrap();
        store_config.cohort = CohortPolicy {
            min_cohort: k,
            batch_size: k,
            batch_age_ms: 60_000,
            time_unit_ms: 1,
        };
    }
    let store = Store::open(folder.join("db"), store_config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Written whole, then renamed: the parent never reads half an address.
    let address = listener.local_addr().unwrap().to_string();
    std::fs::write(folder.join("addr.tmp"), address).unwrap();
    std::fs::rename(folder.join("addr.tmp"), folder.join("addr")).unwrap();
    serve(
        listener,
        AppState::new(store, config),
        tokio::time::sleep(Duration::from_secs(120)),
    )
    .await
    .unwrap();
}

/// A server process, killed when dropped (also when the test fails).
pub(super) struct ServerProcess(Child);

impl ServerProcess {
    /// Starts [`server_process_for_the_crash_test`] on `folder` and waits
    /// for its address.
    pub(super) fn start(folder: &Path) -> (Self, Api) {
        Self::start_with(folder, None)
    }

    /// [`ServerProcess::start`], holding enrollments to a minimum cohort when given.
    fn start_with(folder: &Path, min_cohort: Option<u64>) -> (Self, Api) {
        std::fs::write(
            folder.join("vk.json"),
            verifying_key_to_json(keys().verifying_key()),
        )
        .unwrap();
        let mut command = Command::new(std::env::current_exe().unwrap());
        if let Some(k) = min_cohort {
            command.env(CHILD_MIN_COHORT_VAR, k.to_string());
        }
        let child = command
            .args(["--ignored", "--exact", CHILD_TEST, "--test-threads=1"])
            .env(CHILD_FOLDER_VAR, folder)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut process = Self(child);
        let started = Instant::now();
        let address = loop {
            if let Ok(address) = std::fs::read_to_string(folder.join("addr")) {
                break address;
            }
            assert!(
                process.0.try_wait().unwrap().is_none(),
                "the server process exited early"
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server process did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        (process, Api::new(format!("http://{address}")))
    }

    /// SIGKILL: no shutdown, no flush, no destructor runs in the server.
    pub(super) fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Posts every `(index, body)` to `path` at once and SIGKILLs the server right after the
/// first of them is acknowledged (201), with the rest in flight or not yet started (or
/// once all are answered, if none is). Returns the indices acknowledged.
pub(super) async fn post_all_and_kill_after_one(
    process: &mut ServerProcess,
    api: &Api,
    path: &str,
    bodies: Vec<(usize, Value)>,
) -> Vec<usize> {
    let (done, mut results) = tokio::sync::mpsc::unbounded_channel();
    for (index, body) in bodies {
        let (api, path, done) = (api.clone(), path.to_string(), done.clone());
        tokio::spawn(async move {
            let answer = api
                .post_raw(
                    &path,
                    None,
                    Some("application/json"),
                    body.to_string().into_bytes(),
                )
                .await;
            let _ = done.send((index, answer.map(|(status, _)| status).ok()));
        });
    }
    drop(done);
    let mut acknowledged = Vec::new();
    while let Some((index, status)) = results.recv().await {
        if status == Some(StatusCode::CREATED) {
            if acknowledged.is_empty() {
                process.kill();
            }
            acknowledged.push(index);
        }
    }
    if acknowledged.is_empty() {
        process.kill();
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_enrollments_survive_sigkill() {
    const MEMBERS: usize = 4;
    let cohort = cohort(MEMBERS);
    let proofs = prove_all(&cohort);
    let folder = tempfile::tempdir().unwrap();
    let (mut process, api) = ServerProcess::start(folder.path());
    api.set_up_market(&cohort, 10, REWARD * MEMBERS as u64)
        .await;

    let mut acknowledged = [false; MEMBERS];
    let (status, answer) = api.enroll(&proofs[0], &receiver(0)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    acknowledged[0] = true;
    // The others at once; the server dies right after the first of them is
    // acknowledged, with the rest in flight or not yet started.
    let others = proofs
        .iter()
        .enumerate()
        .skip(1)
        .map(|(index, proof)| (index, enroll_body(proof, &receiver(index))))
        .collect();
    for index in post_all_and_kill_after_one(
        &mut process,
        &api,
        &format!("/studies/{STUDY}/enroll"),
        others,
    )
    .await
    {
        acknowledged[index] = true;
    }

    // Every acknowledged enrollment and payout survived; an unacknowledged
    // one either fully happened or not at all.
    let store = Store::open(folder.path().join("db"), store_config()).unwrap();
    let notes = store.note_leaves(0, usize::MAX).unwrap();
    let mut recorded = Vec::new();
    for (index, proof) in proofs.iter().enumerate() {
        let enrollment = store.enrollment(STUDY, &nullifier_bytes(proof)).unwrap();
        let note = fr_to_bytes(&note_commitment(REWARD, receiver(index)));
        let paid = REWARD * notes.iter().filter(|leaf| **leaf == note).count() as u64;
        assert_eq!(
            paid,
            if enrollment.is_some() { REWARD } else { 0 },
            "member {index}"
        );
        if acknowledged[index] {
            assert!(
                enrollment.is_some(),
                "acknowledged enrollment {index} was lost"
            );
        }
        recorded.push(enrollment.is_some());
    }
    let count = recorded.iter().filter(|&&is| is).count() as u64;
    let study = store.study(STUDY).unwrap();
    assert_eq!(
        (study.enrolled, study.escrow),
        (count, REWARD * (MEMBERS as u64 - count))
    );
    store.check_conservation().unwrap();
    store.verify_audit_log().unwrap();
    assert_eq!(audit_enrollments_since(&store, 0).0 as u64, count);
    drop(store);

    // Served again, the recorded ones are duplicates and the rest enroll.
    let server = Server::start(&folder.path().join("db")).await;
    for (index, proof) in proofs.iter().enumerate() {
        let (status, answer) = server.api.enroll(proof, &receiver(index)).await;
        if recorded[index] {
            assert_eq!(answer["error"]["code"], "duplicate_nullifier", "{answer}");
        } else {
            assert_eq!(status, StatusCode::CREATED, "{answer}");
        }
    }
    let study = server.api.study().await;
    assert_eq!(
        (study["enrolled"].as_u64(), study["escrow"].as_u64()),
        (Some(MEMBERS as u64), Some(0))
    );
    for index in 0..MEMBERS {
        assert_eq!(server.api.paid_to(&receiver(index)).await, REWARD);
    }
    server.store().check_conservation().unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_killed_while_it_settles_is_all_or_nothing() {
    const MEMBERS: usize = 4;
    let cohort = cohort(MEMBERS);
    let proofs = prove_all(&cohort);
    let escrow = REWARD * MEMBERS as u64;
    // The last enrollment completes the batch; the server is killed at several moments
    // after it is sent: before its proof is checked, while the batch commits, after.
    for delay_ms in [0u64, 4, 8, 12, 20, 40] {
        let folder = tempfile::tempdir().unwrap();
        let (mut process, api) = ServerProcess::start_with(folder.path(), Some(MEMBERS as u64));
        api.set_up_market(&cohort, 10, escrow).await;
        for (index, proof) in proofs.iter().enumerate().take(MEMBERS - 1) {
            let (status, answer) = api.enroll(proof, &receiver(index)).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
            assert_eq!(answer["status"], "pending");
        }
        let last = MEMBERS - 1;
        let body = enroll_body(&proofs[last], &receiver(last)).to_string();
        let sender = api.clone();
        let request = tokio::spawn(async move {
            sender
                .post_raw(
                    &format!("/studies/{STUDY}/enroll"),
                    None,
                    Some("application/json"),
                    body.into_bytes(),
                )
                .await
        });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        process.kill();
        let answered = matches!(request.await, Ok(Ok((StatusCode::CREATED, _))));

        let store = Store::open(folder.path().join("db"), store_config()).unwrap();
        let study = store.study(STUDY).unwrap();
        let public = (
            store.enrollments(STUDY).unwrap().len(),
            study.enrolled,
            study.escrow,
            store.note_leaves(0, usize::MAX).unwrap().len(),
            audit_enrollments_since(&store, 0).0,
            store.pending_count().unwrap(),
        );
        let settled = (MEMBERS, MEMBERS as u64, 0, MEMBERS, MEMBERS, 0);
        let pending = (0, 0, escrow, 0, 0, MEMBERS as u64 - 1);
        assert!(
            public == settled || (public == pending && !answered),
            "killed {delay_ms} ms in: {public:?}"
        );
        store.check_conservation().unwrap();
        store.verify_audit_log().unwrap();
    }
}
