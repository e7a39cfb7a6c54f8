//! The record commands through the real `zkcohort` binary.

use std::path::{Path, PathBuf};

use crate::common::{stderr, stdout, zkcohort};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    zkcohort_testkit::fixtures_dir()
}

#[test]
fn check_prints_one_line_per_bundle() {
    let query = root().join("queries/hypertension.query");
    let output = zkcohort(&[
        "check",
        "--query",
        query.to_str().unwrap(),
        fixtures().to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("clauses; fits small (6 clauses), reference (16 clauses)"),
        "{}",
        stderr(&output)
    );
    let lines: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    let verdict = |name: &str| {
        lines
            .iter()
            .find(|line| line.contains(name))
            .unwrap()
            .clone()
    };
    assert!(verdict("Ali_Harris").ends_with(": eligible"));
    assert!(verdict("Estrella_Daugherty").ends_with(": eligible"));
    let young = verdict("Geoffrey_Abbott");
    assert!(
        young.contains(
            "not eligible: require age between 40 and 75 (born 1992-07-03, age 27 on 2020-01-01)"
        ),
        "{young}"
    );
}

#[test]
fn check_json_lines_parse() {
    let query = root().join("queries/hypertension.query");
    let bundle = fixtures().join("Renato_Dare_f07e9b1d-9cc7-465e-8abc-94e84793d1fb.json");
    let output = zkcohort(&[
        "check",
        "--json",
        "--query",
        query.to_str().unwrap(),
        bundle.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let line: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(line["eligible"], false);
    assert_eq!(
        line["failed"][0]["criterion"],
        "require condition hypertension"
    );
}

#[test]
fn summarize_json_has_summary_report_and_coverage() {
    let bundle = fixtures().join("Ali_Harris_eed1d00b-7665-4da3-88b7-c37cfb2ed245.json");
    let output = zkcohort(&[
        "summarize",
        "--json",
        "--issued-at",
        "2021-06-01",
        bundle.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let value: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(
        value["summary"]["slots"]["birth-date"]["first_date"],
        "1963-10-29"
    );
    assert_eq!(
        value["summary"]["slots"]["record-issued"]["last_date"],
        "2021-06-01"
    );
    assert_eq!(value["coverage"]["Condition"]["total"], 10);
    let text = zkcohort(&[
        "summarize",
        "--issued-at",
        "2021-06-01",
        bundle.to_str().unwrap(),
    ]);
    assert!(
        stdout(&text).contains("hypertension             hypertension on 1 day(s) from 1981-12-22"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let query = dir.path().join("bad.query");
    std::fs::write(
        &query,
        "index date 2020-01-01\nrequire lab hba1c latest >= 99\n",
    )
    .unwrap();
    let output = zkcohort(&[
        "check",
        "--query",
        query.to_str().unwrap(),
        fixtures().to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("line 2, column 9: 99 is out of range for hba1c"),
        "{}",
        stderr(&output)
    );

    let good_query = root().join("queries/hypertension.query");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "birthDate": 1970}}]}"#).unwrap();
    let output = zkcohort(&[
        "check",
        "--query",
        good_query.to_str().unwrap(),
        broken.to_str().unwrap(),
    ]);
    assert!(!output.status.success(), "a malformed bundle fails the run");
    assert!(
        stdout(&output).contains("entry[0] (Patient/?) at birthDate"),
        "{}",
        stdout(&output)
    );

    let output = zkcohort(&[
        "summarize",
        dir.path().join("missing.json").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("missing.json does not exist"),
        "{}",
        stderr(&output)
    );

    let output = zkcohort(&["catalog", "--kind", "gadget"]);
    assert!(
        stderr(&output).contains("no concepts of kind \"gadget\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn catalog_lists_concepts_with_codes() {
    let output = zkcohort(&["catalog", "--json", "--kind", "lab"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let hba1c = value["concepts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|concept| concept["id"] == "hba1c")
        .unwrap();
    assert_eq!(hba1c["unit"], "%");
    assert!(hba1c["codes"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("loinc:4548-4")));
    let text = stdout(&zkcohort(&["catalog", "--kind", "lab"]));
    assert!(text.contains("[%, in steps of 0.1] loinc:4548-4"), "{text}");
    assert!(text.contains("[mg/dL, in steps of 1]"), "{text}");
}

/// `zkcohort catalog --json | head -1`: the reader goes away; the command ends as a Unix
/// tool killed by SIGPIPE would (status 141), with no panic or backtrace on stderr. The
/// output is larger than a pipe holds (64 KiB), so the command is still writing when the
/// reader closes, however the two are scheduled.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let size = zkcohort(&["catalog", "--json"]).stdout.len();
    assert!(
        size > 64 * 1024,
        "the catalog is {size} bytes, no longer fills a pipe"
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zkcohort"))
        .args(["catalog", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(141), "{}", stderr(&output));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

/// `zkcohort completions SHELL` writes a completion script from the command definitions:
/// every role's commands are in it.
#[test]
fn completions_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let output = zkcohort(&["completions", shell]);
        assert!(output.status.success(), "{}", stderr(&output));
        let script = stdout(&output);
        for command in ["request-key", "enroll", "suspend-issuer", "completions"] {
            assert!(script.contains(command), "{shell}: no {command}");
        }
    }
    let output = zkcohort(&["completions", "cmd.exe"]);
    assert!(!output.status.success());
}

/// `check --help` teaches the query language: an example query and every kind of clause.
#[test]
fn check_help_describes_the_query_language() {
    let help = stdout(&zkcohort(&["check", "--help"]));
    for part in [
        "    require condition hypertension\n",
        "lab ID latest|min|max >= 6.5 [UNIT]",
        "`zkcohort catalog` lists them",
        "icd10:N18",
    ] {
        assert!(help.contains(part), "no {part:?} in:\n{help}");
    }
}

/// `setup --json` names both circuits' ids and key files, and the files are there.
#[test]
fn setup_answers_json_for_scripts() {
    let keys = tempfile::tempdir().unwrap();
    let output = zkcohort(&[
        "setup",
        "--shape",
        "small",
        "--keys",
        keys.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let made: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    for (id, file) in [
        ("circuit_id", "proving_key"),
        ("note_circuit_id", "note_proving_key"),
    ] {
        assert_eq!(made[id].as_str().map(str::len), Some(64), "{made}");
        let file = Path::new(made[file].as_str().unwrap());
        assert!(file.starts_with(keys.path()) && file.is_file(), "{made}");
    }
    assert_ne!(made["circuit_id"], made["note_circuit_id"]);
}
