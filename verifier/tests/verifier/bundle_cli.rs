//! `zkcohort-verify bundle` and its bare form on files that are not valid
//! bundles: exit status 2 with an error naming the file, the same for both
//! forms; a bad `--marketplace-key` is refused before anything is read. The
//! end-to-end run on a real bundle is in `market-api/tests/market/bundle.rs`.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkcohort-verify"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn malformed_bundles_exit_2_naming_the_file_in_both_forms() {
    let folder = tempfile::tempdir().unwrap();
    let cases = [
        ("not-json.json", "{"),
        ("empty-object.json", "{}"),
        ("bad-key.json", r#"{"format": 1, "marketplace_key": "zz"}"#),
    ];
    for (name, text) in cases {
        let path = folder.path().join(name);
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap();
        for args in [vec!["bundle", path], vec![path], vec![path, "--json"]] {
            let output = run(&args);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{args:?}: {}",
                stderr(&output)
            );
            assert!(
                stderr(&output).contains(name) && stderr(&output).contains("not a study bundle"),
                "{args:?}: {}",
                stderr(&output)
            );
        }
    }
    let missing = folder.path().join("missing.json");
    let output = run(&[missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_malformed_marketplace_key_exits_2() {
    let output = run(&["bundle", "whatever.json", "--marketplace-key", "abc"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--marketplace-key"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn subcommands_and_help_are_not_taken_for_files() {
    let output = run(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("bundle") && help.contains("proof"), "{help}");
    // `proof` without its flags is a usage error from clap, not a file.
    let output = run(&["proof"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--vk"), "{}", stderr(&output));
}
