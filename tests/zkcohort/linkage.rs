//! An outside observer against a world built through the real binaries: four patients
//! enroll in two studies each (minimum cohort 3), two of them merge their reward notes
//! and withdraw; one patient alone joins a third, singling-out study. Then, from the
//! public GET routes only, the observer tries to group the enrollments and withdrawals by
//! patient and to tie them to registry leaves.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{request_key, run_ok, ServerProcess};

const MIN_COHORT: &str = "3";
const PATIENTS: [&str; 4] = [
    "Ali_Harris",
    "Clemente_Kreiger",
    "Estrella_Daugherty",
    "Geoffrey_Abbott",
];

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The audit chain's own links: each entry names its predecessor's hash and its study's
/// previous entry, which ties neighbours in the log, not events of one patient.
const CHAIN_FIELDS: [&str; 3] = ["hash", "prev_hash", "study_prev"];

/// Every value in a JSON document that could identify something, as text: strings and
/// numbers of at least 10 characters (keys, field elements, proof points, times in
/// milliseconds). Shorter numbers are positions, counts and amounts, which every event
/// shows a few of and which coincide by chance.
fn values(document: &Value, into: &mut BTreeSet<String>) {
    let text = match document {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Array(items) => return items.iter().for_each(|item| values(item, into)),
        Value::Object(fields) => {
            return fields
                .iter()
                .filter(|(name, _)| !CHAIN_FIELDS.contains(&name.as_str()))
                .for_each(|(_, item)| values(item, into))
        }
        Value::Bool(_) | Value::Null => return,
    };
    if text.len() >= 10 {
        into.insert(text);
    }
}

/// A query file every adult patient of the fixtures satisfies.
fn broad_query(folder: &Path, name: &str, oldest: u32) -> PathBuf {
    let path = folder.join(format!("{name}.query"));
    std::fs::write(
        &path,
        format!("# everyone\nindex date 2020-01-01\nrequire age between 0 and {oldest}\n"),
    )
    .unwrap();
    path
}

#[test]
fn an_observer_of_the_public_routes_links_no_two_events_of_one_patient() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut command = ServerProcess::serve_command(data.path(), true);
    command.args(["--min-cohort", MIN_COHORT, "--batch-size", "1"]);
    let server = ServerProcess::start_command(command);
    let url = server.url.clone();
    let run = |args: &[&str]| run_ok(&[args, &["--server", &url]].concat());
    let token_file = data.path().join("operator.token");
    let operator = |args: &[&str]| {
        run(&[args, &["--token-file", arg(&token_file)]].concat());
    };
    let issuer = request_key(work.path(), "issuer", &url, "issuer");
    let researcher = request_key(work.path(), "researcher", &url, "researcher");
    for request in [&issuer, &researcher] {
        operator(&["operator", "create-key", "--request", arg(&request.request)]);
    }
    operator(&[
        "operator",
        "mint",
        "--to",
        &researcher.account,
        "--amount",
        "1000",
    ]);

    // Four patients, one record each.
    let wallets: Vec<PathBuf> = PATIENTS.iter().map(|name| work.path().join(name)).collect();
    for (wallet, name) in wallets.iter().zip(PATIENTS) {
        let init = run_ok(&["patient", "init", "--wallet", arg(wallet)]);
        let commitment = init
            .lines()
            .find_map(|line| line.strip_prefix("identity commitment (give it to your issuer): "))
            .unwrap()
            .to_string();
        let record = work.path().join(format!("{name}.record.json"));
        run(&[
            "issuer",
            "issue",
            "--bundle",
            arg(&zkcohort_testkit::fixture_path(name)),
            "--identity",
            &commitment,
            "--out",
            arg(&record),
            "--json",
            "--api-key",
            &issuer.api_key,
        ]);
        run_ok(&["patient", "import", "--wallet", arg(wallet), arg(&record)]);
    }

    let post = |title: &str, query: &Path, reward: &str| {
        run(&[
            "researcher",
            "post",
            "--query",
            arg(query),
            "--title",
            title,
            "--reward",
            reward,
            "--max-enrollments",
            "10",
            "--epsilon",
            "1",
            "--fund",
            "200",
            "--account-key",
            arg(&researcher.key_file),
            "--api-key",
            &researcher.api_key,
        ]);
    };
    post("Everyone A", &broad_query(work.path(), "a", 120), "10");
    post("Everyone B", &broad_query(work.path(), "b", 119), "15");
    post(
        "Singling out",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/hypertension.query"),
        "20",
    );
    let enroll = |wallet: &Path, study: &str| -> Value {
        let output = run(&[
            "patient",
            "enroll",
            "--study",
            study,
            "--wallet",
            arg(wallet),
            "--json",
        ]);
        serde_json::from_str(output.lines().last().unwrap()).unwrap()
    };
    // Interleaved, as patients would come; the first two of each study wait for the third.
    for study in ["1", "2"] {
        for (position, wallet) in wallets.iter().enumerate() {
            let status = enroll(wallet, study);
            let expected = if position < 2 { "pending" } else { "settled" };
            assert_eq!(
                status["status"], expected,
                "study {study}, patient {position}"
            );
        }
    }
    // Alone in the singling-out study: pending, and nothing public about it.
    assert_eq!(enroll(&wallets[0], "3")["status"], "pending");
    let client = server.client();
    let singled: Value = client.get("/studies/3").unwrap();
    assert_eq!(
        (singled["enrolled"].as_u64(), singled["escrow"].as_u64()),
        (Some(0), Some(200))
    );
    let bundle: Value = client.get("/studies/3/bundle").unwrap();
    assert_eq!(bundle["enrollments"], Value::Array(Vec::new()));

    // Two patients merge their notes and withdraw everything to fresh accounts.
    let mut recipients = Vec::new();
    for (index, wallet) in wallets.iter().enumerate().take(2) {
        let key_file = work.path().join(format!("spend{index}.key"));
        let recipient = run_ok(&["account", "new", "--out", arg(&key_file)])
            .trim()
            .to_string();
        run(&[
            "patient",
            "withdraw",
            "--wallet",
            arg(wallet),
            "--to",
            &recipient,
            "--amount",
            "25",
        ]);
        recipients.push(recipient);
    }

    // The researcher closes the singling-out study below k: voided, refunded whole, and
    // its patient's wallet is told why.
    let closed = run(&[
        "researcher",
        "close",
        "--study",
        "3",
        "--json",
        "--api-key",
        &researcher.api_key,
    ]);
    let closed: Value = serde_json::from_str(closed.lines().last().unwrap()).unwrap();
    assert_eq!(closed["study"]["enrolled"], 0, "{closed}");
    assert_eq!(closed["refund"]["amount"], 200, "{closed}");
    let balance = run(&["patient", "balance", "--wallet", arg(&wallets[0])]);
    assert!(
        balance.contains("study 3: enrollment voided, no reward"),
        "{balance}"
    );

    // The observer: public routes only.
    let observer = server.client();
    let registry_leaves: BTreeSet<String> = {
        let leaves: Value = observer.get("/registry/leaves?start=0&limit=1000").unwrap();
        let mut all = BTreeSet::new();
        values(&leaves, &mut all);
        all.into_iter().filter(|value| value.len() == 64).collect()
    };
    // Each public event (an enrollment's bundle entry with its audit entry, a withdrawal's
    // ledger entry) as the set of values it shows.
    let mut events: Vec<(String, BTreeSet<String>)> = Vec::new();
    let allowed: BTreeSet<&str> = [
        "nullifier",
        "note_commitment",
        "reward_receiver",
        "proof",
        "public_inputs",
        "registry_root",
        "root_seq",
        "reward",
        "audit_index",
    ]
    .into();
    for study in 1..=3u64 {
        let bundle: Value = observer.get(&format!("/studies/{study}/bundle")).unwrap();
        let entries: HashMap<u64, &Value> = bundle["audit_entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|proven| (proven["entry"]["index"].as_u64().unwrap(), &proven["entry"]))
            .collect();
        let enrollments = bundle["enrollments"].as_array().unwrap();
        for enrollment in enrollments {
            let fields: BTreeSet<&str> = enrollment
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(fields, allowed, "per-enrollment fields of study {study}");
            // Study-level and root-level fields take one value in the study.
            for shared in ["reward", "registry_root", "root_seq"] {
                assert_eq!(enrollment[shared], enrollments[0][shared], "{shared}");
            }
            let mut shown = BTreeSet::new();
            values(enrollment, &mut shown);
            values(
                entries[&enrollment["audit_index"].as_u64().unwrap()],
                &mut shown,
            );
            let nullifier = enrollment["nullifier"].as_str().unwrap().to_string();
            events.push((nullifier, shown));
        }
    }
    for recipient in &recipients {
        let account: Value = observer.get(&format!("/accounts/{recipient}")).unwrap();
        let mut shown = BTreeSet::new();
        values(&account, &mut shown);
        events.push((recipient.clone(), shown));
    }
    assert_eq!(
        events.len(),
        8 + 2,
        "eight enrollments public, two withdrawals"
    );

    // Ground truth: whose event is whose, from the wallets.
    let owner_of: HashMap<String, usize> = wallets
        .iter()
        .enumerate()
        .flat_map(|(patient, wallet)| {
            let made: Value = serde_json::from_str(
                &std::fs::read_to_string(wallet.join("enrollments.json")).unwrap(),
            )
            .unwrap();
            made.as_array()
                .unwrap()
                .iter()
                .map(|enrollment| {
                    (
                        enrollment["nullifier"].as_str().unwrap().to_string(),
                        patient,
                    )
                })
                .collect::<Vec<_>>()
        })
        .chain(recipients.iter().cloned().zip(0..))
        .collect();
    // A value links when it shows in two events of one patient and in no other patient's.
    let mut patients_showing: HashMap<&str, BTreeSet<usize>> = HashMap::new();
    let mut events_showing: HashMap<&str, usize> = HashMap::new();
    for (key, shown) in &events {
        let owner = owner_of[key];
        for value in shown {
            patients_showing.entry(value).or_default().insert(owner);
            *events_showing.entry(value).or_default() += 1;
        }
    }
    let linking: Vec<_> = events_showing
        .iter()
        .filter(|(value, count)| **count > 1 && patients_showing[*value].len() == 1)
        .map(|(value, _)| *value)
        .collect();
    assert!(
        linking.is_empty(),
        "values that group events by patient: {linking:?}"
    );
    // No public event shows a registry leaf, and no enrollment names its leaf's index
    // alone (indices are small numbers every event shows, if any).
    for (key, shown) in &events {
        assert!(
            shown.is_disjoint(&registry_leaves),
            "event {key} shows a registry leaf"
        );
    }
}
