//! End to end, through the real binaries on the small circuit shape: the demo
//! (every role in one process over HTTP on 127.0.0.1), and each role's commands
//! against `zkcohort serve`.

use std::path::{Path, PathBuf};

use crate::common::{
    ceremony_folder, copy_folder, request_key, run_ok, stderr, stdout, zkcohort, ServerProcess,
};
use serde_json::{json, Value};
use zkcohort::sample::demo_bundles;
use zkcohort_cohort::{eligible, import_bundle, Catalog, Day, Query};
use zkcohort_verifier::{verify_bundle, StudyBundle};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// How many of `bundles` satisfy the query file, by the native evaluator.
fn natively_eligible(bundles: &[PathBuf], query_file: &str) -> usize {
    let catalog = Catalog::bundled();
    let text = std::fs::read_to_string(root().join("queries").join(query_file)).unwrap();
    let query = Query::parse(&text, catalog).unwrap();
    let today = Day::from_date(chrono::Local::now().date_naive()).unwrap();
    bundles
        .iter()
        .filter(|path| {
            let (summary, _) =
                import_bundle(catalog, &std::fs::read_to_string(path).unwrap(), today).unwrap();
            eligible(catalog, &summary, &query).unwrap().eligible
        })
        .count()
}

#[test]
fn the_demo_pays_every_eligible_patient_and_its_bundle_verifies() {
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("demo");
    // The demo's own three-party ceremony costs minutes on two cores; it reuses a
    // ceremony's keys found in its key folder, as on its second run.
    let keys = folder.path().join("keys");
    copy_folder(ceremony_folder(), &keys);
    let args = [
        "demo",
        "--shape",
        "small",
        "--json",
        "--data",
        path_arg(&data),
        "--keys",
        path_arg(&keys),
    ];
    let report: Value = serde_json::from_str(&run_ok(&args)).unwrap();

    let bundles = demo_bundles().unwrap();
    assert_eq!(report["patients"], bundles.len());
    // What the import kept and left out, as each bundle's own import report counts it.
    let (mut read, mut mapped, mut deceased) = (0, 0, 0);
    let today = Day::from_date(chrono::Local::now().date_naive()).unwrap();
    for path in &bundles {
        let text = std::fs::read_to_string(path).unwrap();
        let (_, imported) = import_bundle(Catalog::bundled(), &text, today).unwrap();
        for coverage in imported.coverage().values() {
            read += coverage.total;
            mapped += coverage.mapped;
        }
        deceased += usize::from(imported.patient.is_some_and(|patient| patient.is_deceased));
    }
    assert!(
        mapped > 0 && mapped < read,
        "the fixtures map some entries, not all"
    );
    assert_eq!(
        (
            &report["import"]["entries_read"],
            &report["import"]["entries_mapped"],
            &report["import"]["deceased"]
        ),
        (&json!(read), &json!(mapped), &json!(deceased)),
        "{}",
        report["import"]
    );
    let studies = report["studies"].as_array().unwrap();
    let mut proofs = 0;
    let mut paid = 0;
    for (study, query_file) in studies.iter().zip([
        "hypertension.query",
        "cardiometabolic.query",
        "respiratory.query",
    ]) {
        let expected = natively_eligible(&bundles, query_file);
        assert!(expected > 0, "{query_file} selects nobody: a weak demo");
        assert_eq!(study["eligible"], expected, "{query_file}");
        assert_eq!(study["accepted"], expected, "{query_file}");
        // The demo's minimum cohort is 3: a study fewer joined shows nothing.
        let (enrolled, shown) = if expected >= 3 {
            (expected, expected.to_string())
        } else {
            (0, "fewer than 3".to_string())
        };
        assert_eq!(study["enrolled"], enrolled, "{query_file}");
        assert_eq!(study["public_count"], shown, "{query_file}");
        proofs += expected;
        paid += study["paid"].as_u64().unwrap();
        assert_eq!(study["paid"] == 0, enrolled == 0, "{study}");
    }
    assert_eq!(report["proofs"], proofs);
    assert_eq!(report["tokens_paid"], paid);
    // The patient with the most enrollments merged its notes and withdrew them all: two
    // notes per transfer, the last one withdrawing.
    let withdrawal = &report["withdrawal"];
    let notes = withdrawal["notes"].as_u64().unwrap();
    assert!(notes >= 2, "{withdrawal}");
    assert_eq!(withdrawal["transfers"].as_u64(), Some(notes - 1));
    assert_eq!(withdrawal["account_balance"], withdrawal["amount"]);
    assert_eq!(report["bundle_verified"], true);

    // The sponsor's check of the exported file, independently of the demo.
    let file = PathBuf::from(report["bundle"].as_str().unwrap());
    let mut bundle = StudyBundle::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let verdict = verify_bundle(&bundle, None, None);
    assert!(verdict.valid, "{verdict:#?}");
    assert_eq!(
        verdict.enrollments as u64,
        studies
            .iter()
            .map(|study| study["enrolled"].as_u64().unwrap())
            .max()
            .unwrap()
    );
    bundle.enrollments[0].reward += 1;
    assert!(
        !verify_bundle(&bundle, None, None).valid,
        "a changed payout passes"
    );

    // The keys came from the ceremony, pinned by the bundle.
    let transcript_id = report["setup"]["transcript_id"].as_str().unwrap();
    assert_eq!(report["setup"]["kind"], "ceremony");
    assert!(
        report["ceremony_seconds"].is_null(),
        "the demo ran a ceremony again"
    );
    assert_eq!(
        bundle.setup,
        zkcohort_verifier::KeySetup::Ceremony {
            transcript_id: transcript_id.parse().unwrap()
        }
    );

    // A second run clears the demo folder and reuses the ceremony's keys.
    let output = zkcohort(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let again: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(again["setup"]["transcript_id"], transcript_id);
    assert!(again["ceremony_seconds"].is_null());
}

/// `zkcohort patient init` output: the identity commitment.
fn commitment_of(init_output: &str) -> String {
    init_output
        .lines()
        .find_map(|line| line.strip_prefix("identity commitment (give it to your issuer): "))
        .expect("init prints the commitment")
        .to_string()
}

fn fixture(prefix: &str) -> PathBuf {
    zkcohort_testkit::fixture_path(prefix)
}

#[test]
fn every_role_works_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path());
    let url = server.url.clone();
    let token_file = data.path().join("operator.token");

    // The researcher and the issuer make their account keys and request API keys; the
    // operator binds them and mints tokens for the researcher.
    let researcher = request_key(work.path(), "researcher", &url, "researcher");
    let account_key = researcher.key_file.clone();
    let researcher_account = researcher.account.clone();
    assert_eq!(
        run_ok(&["account", "show", "--key", path_arg(&account_key)]).trim(),
        researcher_account
    );
    let issuer = request_key(work.path(), "issuer", &url, "issuer");
    let issuer_account = issuer.account.clone();
    let operator = |args: &[&str]| {
        let mut all = vec!["operator"];
        all.extend_from_slice(args);
        all.extend(["--server", &url, "--token-file", path_arg(&token_file)]);
        run_ok(&all)
    };
    for request in [&issuer, &researcher] {
        let bound = operator(&["create-key", "--request", path_arg(&request.request)]);
        assert!(bound.contains(&request.account), "{bound}");
    }
    let issuer_key = issuer.api_key.clone();
    let researcher_key = researcher.api_key.clone();
    operator(&["mint", "--to", &researcher_account, "--amount", "1000"]);

    // Patients: one eligible for the hypertension study, one not.
    let wallet = |name: &str| work.path().join(name);
    let alice = wallet("alice");
    let clemente = wallet("clemente");
    let with_server = |args: &[&str], key: Option<&str>| {
        let mut all = args.to_vec();
        all.extend(["--server", &url]);
        if let Some(key) = key {
            all.extend(["--api-key", key]);
        }
        zkcohort(&all)
    };
    for (leaf, (wallet, bundle)) in [(&alice, "Ali_Harris"), (&clemente, "Clemente_Kreiger")]
        .into_iter()
        .enumerate()
    {
        let commitment = commitment_of(&run_ok(&["patient", "init", "--wallet", path_arg(wallet)]));
        let record = work.path().join(format!("{bundle}.record.json"));
        let issued = with_server(
            &[
                "issuer",
                "issue",
                "--bundle",
                path_arg(&fixture(bundle)),
                "--identity",
                &commitment,
                "--out",
                path_arg(&record),
                "--json",
            ],
            Some(&issuer_key),
        );
        assert!(issued.status.success(), "{}", stderr(&issued));
        let issued: Value = serde_json::from_str(&stdout(&issued)).unwrap();
        assert_eq!(issued["leaf_index"], json!(leaf), "{issued}");
        // The same entry counts as `summarize` reports for the bundle.
        let summarized: Value = serde_json::from_str(&run_ok(&[
            "summarize",
            "--json",
            path_arg(&fixture(bundle)),
        ]))
        .unwrap();
        let (mapped, total) = summarized["coverage"].as_object().unwrap().values().fold(
            (0, 0),
            |(mapped, total), coverage| {
                (
                    mapped + coverage["mapped"].as_u64().unwrap(),
                    total + coverage["total"].as_u64().unwrap(),
                )
            },
        );
        assert!(mapped > 0);
        assert_eq!(
            (&issued["entries_mapped"], &issued["entries_skipped"]),
            (&json!(mapped), &json!(total - mapped)),
            "{issued}"
        );
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(!text.contains("secret"), "the record file names a secret");
        let imported: Value = serde_json::from_str(&run_ok(&[
            "patient",
            "import",
            "--json",
            "--wallet",
            path_arg(wallet),
            path_arg(&record),
        ]))
        .unwrap();
        assert_eq!(imported["leaf_index"], json!(leaf), "{imported}");
    }
    // Another identity's record file is refused.
    let stranger = wallet("stranger");
    run_ok(&["patient", "init", "--wallet", path_arg(&stranger)]);
    let refused = zkcohort(&[
        "patient",
        "import",
        "--wallet",
        path_arg(&stranger),
        path_arg(&work.path().join("Ali_Harris.record.json")),
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("another identity"),
        "{}",
        stderr(&refused)
    );

    // Researcher: post and fund a study; funding needs the account key, and without it
    // nothing is posted.
    let query_file = root().join("queries/hypertension.query");
    let post = [
        "researcher",
        "post",
        "--query",
        path_arg(&query_file),
        "--title",
        "Hypertension",
        "--reward",
        "25",
        "--max-enrollments",
        "10",
        "--epsilon",
        "1",
    ];
    // Before any study: the patient is told so, not shown nothing; patients take no
    // API key.
    let none_open = with_server(&["patient", "studies", "--wallet", path_arg(&alice)], None);
    assert!(none_open.status.success(), "{}", stderr(&none_open));
    assert!(
        stdout(&none_open).starts_with("no open studies"),
        "{}",
        stdout(&none_open)
    );
    let keyed = with_server(
        &["patient", "studies", "--wallet", path_arg(&alice)],
        Some(&researcher_key),
    );
    assert!(
        !keyed.status.success() && stderr(&keyed).contains("--api-key"),
        "{}",
        stderr(&keyed)
    );
    let signed_post = [&post[..], &["--account-key", path_arg(&account_key)]].concat();
    // Without the API key: refused, with the way to pass it.
    let anonymous = with_server(&signed_post, None);
    assert!(!anonymous.status.success());
    assert!(
        stderr(&anonymous).contains("401") && stderr(&anonymous).contains("ZKCOHORT_API_KEY"),
        "{}",
        stderr(&anonymous)
    );
    // More escrow than the account holds: nothing is posted.
    let too_much = with_server(
        &[&signed_post[..], &["--fund", "5000"]].concat(),
        Some(&researcher_key),
    );
    assert!(!too_much.status.success());
    assert!(
        stderr(&too_much).contains("nothing was posted"),
        "{}",
        stderr(&too_much)
    );
    assert!(server.client().studies(0, 10).unwrap().is_empty());
    let unsigned = with_server(&post, Some(&researcher_key));
    assert!(!unsigned.status.success());
    assert!(
        stderr(&unsigned).contains("needs the researcher's account key"),
        "{}",
        stderr(&unsigned)
    );
    let posted = with_server(&signed_post, Some(&researcher_key));
    assert!(posted.status.success(), "{}", stderr(&posted));
    assert!(
        stdout(&posted).contains("study 1 posted"),
        "{}",
        stdout(&posted)
    );

    // Patients: local eligibility previews, then proofs and enrollment.
    let studies = |wallet: &Path| -> Value {
        let output = with_server(
            &["patient", "studies", "--json", "--wallet", path_arg(wallet)],
            None,
        );
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_str(stdout(&output).lines().next().unwrap()).unwrap()
    };
    assert_eq!(studies(&alice)["eligible"], true);
    let not_eligible = studies(&clemente);
    assert_eq!(not_eligible["eligible"], false);
    assert!(
        not_eligible["failed"].to_string().contains("age"),
        "{not_eligible}"
    );

    let enroll = |wallet: &Path| {
        with_server(
            &[
                "patient",
                "enroll",
                "--study",
                "1",
                "--wallet",
                path_arg(wallet),
            ],
            None,
        )
    };
    let enrolled = enroll(&alice);
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    // The wallet says what the study's measures reveal to the marketplace: Ali Harris is
    // 56 on the index date and male.
    assert!(
        stderr(&enrolled).contains("the marketplace learns, for its noisy aggregates only: age: 50-64, sex: male, lab systolic-bp latest: "),
        "{}",
        stderr(&enrolled)
    );
    // Piped, the key download reports its progress in lines instead of a bar.
    assert!(
        stderr(&enrolled).contains("  downloading the eligibility proving key: ")
            && stderr(&enrolled).contains("(100%)"),
        "{}",
        stderr(&enrolled)
    );
    // No --keys: the wallet downloaded the marketplace's key and cached it by circuit id.
    let circuit_id = server.client().marketplace().unwrap().circuit_id;
    assert!(
        alice.join("keys").join(circuit_id.to_string()).is_dir(),
        "the key is not cached by circuit id"
    );
    assert!(
        stdout(&enrolled).contains("25 tokens paid"),
        "{}",
        stdout(&enrolled)
    );
    // A second enrollment is refused by the wallet before it proves anything (the
    // marketplace refuses it too: market tests).
    let replay = enroll(&alice);
    assert!(!replay.status.success());
    assert!(
        stderr(&replay).contains("already enrolled in study 1")
            && !stderr(&replay).contains("proving"),
        "{}",
        stderr(&replay)
    );
    let ineligible = enroll(&clemente);
    assert!(!ineligible.status.success());
    assert!(stderr(&ineligible).contains("no record in this wallet satisfies"));
    assert_eq!(studies(&alice)["enrolled"], true);

    // The reward is a note only this wallet can open: the balance is computed here.
    let balance = |wallet: &Path| {
        let output = with_server(&["patient", "balance", "--wallet", path_arg(wallet)], None);
        stdout(&output)
    };
    assert!(
        balance(&alice).lines().next() == Some("25 tokens in 1 note"),
        "{}",
        balance(&alice)
    );
    let withdraw = |to: &str, amount: &str| {
        with_server(
            &[
                "patient",
                "withdraw",
                "--to",
                to,
                "--amount",
                amount,
                "--wallet",
                path_arg(&alice),
            ],
            None,
        )
    };
    let withdrawn = withdraw(&researcher_account, "5");
    assert!(withdrawn.status.success(), "{}", stderr(&withdrawn));
    assert!(
        stdout(&withdrawn).contains("withdrew 5") && stdout(&withdrawn).contains("change 20"),
        "{}",
        stdout(&withdrawn)
    );
    // An answer lost on the way (the wallet recorded the change note before sending, but
    // not its index nor the spend): the next sync finds both in the public note tree.
    let notes_file = alice.join("notes.json");
    let mut notes: Value = serde_json::from_slice(&std::fs::read(&notes_file).unwrap()).unwrap();
    for note in notes.as_array_mut().unwrap() {
        note["spent"] = json!(false);
        if note["origin"] == "change" {
            note["index"] = Value::Null;
        }
    }
    std::fs::write(&notes_file, serde_json::to_vec(&notes).unwrap()).unwrap();
    let synced = with_server(
        &["patient", "balance", "--json", "--wallet", path_arg(&alice)],
        None,
    );
    assert!(synced.status.success(), "{}", stderr(&synced));
    let as_json: Value = serde_json::from_str(&stdout(&synced)).unwrap();
    assert_eq!(
        as_json,
        json!({"balance": 20, "notes": 1, "pending": 0, "pending_studies": [], "voided": []})
    );
    let overdraft = withdraw(&researcher_account, "21");
    assert!(!overdraft.status.success());
    assert!(
        stderr(&overdraft).contains("hold 20 tokens, less than 21"),
        "{}",
        stderr(&overdraft)
    );
    // The rest to the wallet's own account, then a signed transfer from it.
    let to_wallet = withdraw("wallet", "20");
    assert!(to_wallet.status.success(), "{}", stderr(&to_wallet));
    assert!(
        balance(&alice).starts_with("0 tokens in 0 notes"),
        "{}",
        balance(&alice)
    );
    let sent = with_server(
        &[
            "patient",
            "transfer",
            "--to",
            &researcher_account,
            "--amount",
            "5",
            "--wallet",
            path_arg(&alice),
        ],
        None,
    );
    assert!(sent.status.success(), "{}", stderr(&sent));

    // Researcher: a noisy breakdown of the measures the proofs committed to (a
    // table, and a chart), closing with a refund, the bundle.
    let chart = work.path().join("sex.svg");
    let released = with_server(
        &[
            "researcher",
            "release",
            "--study",
            "1",
            "--histogram",
            "sex",
            "--epsilon",
            "0.5",
            "--i2b2",
            "--plot",
            path_arg(&chart),
        ],
        Some(&researcher_key),
    );
    assert!(released.status.success(), "{}", stderr(&released));
    let table = stdout(&released);
    for expected in [
        "histogram of sex over 1 settled enrollments",
        "male",
        "<10",
        "study spent 0.5 of 1 (0.5 left)",
        "researcher spent 0.5 of 5",
    ] {
        assert!(table.contains(expected), "{expected:?} in {table}");
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("noisy count"),
        "{svg}"
    );
    // The same question again is the cached release, free.
    let again = with_server(
        &[
            "researcher",
            "release",
            "--study",
            "1",
            "--histogram",
            "sex",
            "--epsilon",
            "0.5",
        ],
        Some(&researcher_key),
    );
    assert!(
        stdout(&again).contains("study spent 0.5 of 1"),
        "{}",
        stdout(&again)
    );
    let closed = with_server(
        &["researcher", "close", "--study", "1"],
        Some(&researcher_key),
    );
    assert!(
        stdout(&closed).contains("closed; enrollments public: 1; 225 tokens refunded"),
        "{}",
        stdout(&closed)
    );
    let bundle = work.path().join("study-1.json");
    let exported = with_server(
        &[
            "researcher",
            "bundle",
            "--study",
            "1",
            "--out",
            path_arg(&bundle),
        ],
        Some(&researcher_key),
    );
    assert!(exported.status.success(), "{}", stderr(&exported));
    let bundle = StudyBundle::from_json(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let report = verify_bundle(&bundle, None, None);
    assert!(report.valid, "{report:#?}");
    assert_eq!((report.enrollments, report.tokens_paid), (1, 25));

    // Issuer: revoking the record changes the registry root.
    let revoked = with_server(&["issuer", "revoke", "--index", "0"], Some(&issuer_key));
    assert!(
        stdout(&revoked).contains("revoked leaf 0"),
        "{}",
        stderr(&revoked)
    );
    // After a sync the wallet knows its record is revoked: a new study it would match
    // says so instead of ELIGIBLE.
    let mut again = post.to_vec();
    again[5] = "Hypertension again";
    let unfunded = with_server(
        &[&again[..], &["--fund", "0", "--json"]].concat(),
        Some(&researcher_key),
    );
    assert!(unfunded.status.success(), "{}", stderr(&unfunded));
    let posted: Value = serde_json::from_str(&stdout(&unfunded)).unwrap();
    assert_eq!(
        (&posted["study"]["id"], &posted["funding"]),
        (&json!(2), &Value::Null)
    );
    // The researcher's own studies, and one shown for people.
    let mine = with_server(
        &[
            "researcher",
            "list",
            "--account-key",
            path_arg(&account_key),
        ],
        None,
    );
    let mine = stdout(&mine);
    let listed: Vec<&str> = mine.lines().map(str::trim_start).collect();
    assert!(
        listed.len() == 2
            && listed[0].starts_with("1  Hypertension ")
            && listed[1].starts_with("2  Hypertension again"),
        "{mine}"
    );
    let shown = stdout(&with_server(&["researcher", "show", "--study", "1"], None));
    assert!(
        shown.starts_with("study 1: Hypertension (closed)")
            && shown.contains("1 of 10, reward 25 each, escrow 0"),
        "{shown}"
    );
    let synced = with_server(&["patient", "sync", "--wallet", path_arg(&alice)], None);
    assert!(synced.status.success(), "{}", stderr(&synced));
    // Piped, the sync counts the leaves in lines.
    assert!(
        stderr(&synced).contains("syncing the registry: 2 leaves of 2 leaves (100%)"),
        "{}",
        stderr(&synced)
    );
    let after_revocation = studies(&alice);
    assert_eq!(
        (
            &after_revocation["study"],
            &after_revocation["eligible"],
            &after_revocation["revoked"]
        ),
        (&json!(2), &json!(false), &json!(true)),
        "{after_revocation}"
    );
    let someone_else = with_server(&["issuer", "revoke", "--index", "1"], Some(&researcher_key));
    assert!(
        !someone_else.status.success(),
        "a researcher revoked a record"
    );

    // Operator: the marketplace key to pin, then a suspended issuer registers nothing.
    let announced = run_ok(&["marketplace", "--server", &url]);
    let info: Value =
        serde_json::from_str(&run_ok(&["marketplace", "--server", &url, "--json"])).unwrap();
    let key = info["marketplace_key"].as_str().unwrap();
    assert!(
        announced.contains(&format!("--marketplace-key {key}")),
        "{announced}"
    );
    let suspended: Value = serde_json::from_str(&operator(&[
        "suspend-issuer",
        "--issuer",
        &issuer_account,
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        suspended,
        json!({"issuer": issuer_account, "newly_suspended": true})
    );
    let again = operator(&["suspend-issuer", "--issuer", &issuer_account]);
    assert!(again.contains("was already suspended"), "{again}");
    let created: Value = serde_json::from_str(&run_ok(&[
        "patient",
        "init",
        "--wallet",
        path_arg(&wallet("late")),
        "--json",
    ]))
    .unwrap();
    let whoami: Value = serde_json::from_str(&run_ok(&[
        "patient",
        "whoami",
        "--wallet",
        path_arg(&wallet("late")),
        "--json",
    ]))
    .unwrap();
    assert_eq!(created, whoami);
    let commitment = created["identity_commitment"].as_str().unwrap().to_owned();
    assert_eq!(commitment.len(), 64, "{created}");
    let late = with_server(
        &[
            "issuer",
            "issue",
            "--bundle",
            path_arg(&fixture("Ali_Harris")),
            "--identity",
            &commitment,
            "--out",
            path_arg(&work.path().join("late.record.json")),
        ],
        Some(&issuer_key),
    );
    assert!(
        !late.status.success() && stderr(&late).contains("issuer_suspended"),
        "{}",
        stderr(&late)
    );

    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}
