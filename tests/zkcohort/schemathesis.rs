//! Schemathesis against a real `zkcohort serve`: requests generated from
//! `/openapi.json` (valid ones, and ones the description forbids), sent with the
//! operator's, a researcher's and an issuer's credentials, must never get a 5xx, an
//! answer the description does not list or whose body does not match it, or an error
//! outside the one error shape; schema-invalid requests must be refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::common::{request_key, run_ok, stderr, stdout, ServerProcess};

/// Where the README's test command installs schemathesis (a virtual environment).
const INSTALLED: &str = "target/schemathesis/bin/schemathesis";

/// Set (by `.ci/run`) where a missing schemathesis must fail the test, not skip it.
const REQUIRED_ENV: &str = "ZKCOHORT_REQUIRE_SCHEMATHESIS";

/// The run's settings. Every check runs but `positive_data_acceptance`: a request the
/// description admits is not one the marketplace must accept, since signatures, proofs
/// and balances are beyond what a schema can say. Credentials per route: the
/// researcher's on study routes, the issuer's on the registry's, the operator's
/// elsewhere; study routes name the study the test posted.
const CONFIG: &str = r#"
headers = { Authorization = "Bearer ${ZKCOHORT_OPERATOR}" }

[generation]
max-examples = 50

[[operations]]
include-path-regex = "^/studies"
headers = { Authorization = "Bearer ${ZKCOHORT_RESEARCHER}" }
parameters = { "path.id" = 1 }

[[operations]]
include-path-regex = "^/registry"
headers = { Authorization = "Bearer ${ZKCOHORT_ISSUER}" }
"#;

fn schemathesis() -> Option<PathBuf> {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join(INSTALLED);
    installed.exists().then_some(installed)
}

#[test]
fn generated_requests_get_no_5xx_and_only_described_answers_in_the_error_shape() {
    let Some(schemathesis) = schemathesis() else {
        assert!(
            std::env::var_os(REQUIRED_ENV).is_none(),
            "{REQUIRED_ENV} is set but schemathesis is not installed at {INSTALLED}"
        );
        eprintln!(
            "SKIPPED: schemathesis is not installed at {INSTALLED} (the README's test \
             command installs it)"
        );
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path());
    let token_file = data.path().join("operator.token");
    let operator = std::fs::read_to_string(&token_file).unwrap();
    let mut holders = Vec::new();
    for role in ["researcher", "issuer"] {
        let holder = request_key(work.path(), role, &server.url, role);
        run_ok(&[
            "operator",
            "create-key",
            "--server",
            &server.url,
            "--token-file",
            token_file.to_str().unwrap(),
            "--request",
            holder.request.to_str().unwrap(),
        ]);
        holders.push(holder);
    }
    let (researcher, issuer) = (&holders[0], &holders[1]);
    let client = server.client();
    let operator_client = client.clone().with_token(operator.trim());
    operator_client.mint(&researcher.account, 1_000).unwrap();
    let study: Value = client
        .clone()
        .with_token(&researcher.api_key)
        .post(
            "/studies",
            &json!({
                "title": "Hypertension over 40",
                "query": "index date 2021-01-01\nrequire age >= 40\nrequire condition hypertension",
                "reward": 10,
                "max_enrollments": 10,
                "epsilon_budget": 1.0,
                "issuers": [issuer.account],
            }),
        )
        .unwrap();
    assert_eq!(study["id"], 1, "{study}");

    let config = work.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let output = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", server.url)])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        // One worker: the threaded generator of this Python trips over its own AST cache.
        .args(["--workers", "1", "--no-color"])
        .env("ZKCOHORT_OPERATOR", operator.trim())
        .env("ZKCOHORT_RESEARCHER", &researcher.api_key)
        .env("ZKCOHORT_ISSUER", &issuer.api_key)
        .current_dir(work.path())
        .output()
        .unwrap();
    let report = stdout(&output);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        stderr(&output)
    );
    // It ran: every described operation was tested, and thousands of requests passed.
    let description: Value = client.get("/openapi.json").unwrap();
    let operations: usize = description["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "{report}"
    );
    let passed = report
        .lines()
        .find(|line| line.contains(" generated, "))
        .and_then(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|word| word.starts_with("passed"))?;
            words.get(at.checked_sub(1)?)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    assert!(
        passed >= 1_000,
        "only {passed} generated requests passed:\n{report}"
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}
