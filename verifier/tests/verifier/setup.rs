//! The one-file ceremony transcript: it splits back into its two files, and anything
//! else (another magic, a cut or padded file, a phase 2 that is no zkey) is refused with
//! its reason. Reading a real zkey's verifying key is tested against the prover's zkey
//! writer in `market-api/tests/market/bundle.rs`.

use zkcohort_verifier::setup::{split_transcript, transcript_file};
use zkcohort_verifier::{CeremonyTranscript, KeySetup, TranscriptId, VerifierError};

fn refusal(file: &[u8]) -> String {
    match CeremonyTranscript::read(file) {
        Err(VerifierError::Transcript(reason)) => reason,
        other => panic!("expected a transcript error, got {other:?}"),
    }
}

#[test]
fn a_transcript_file_splits_into_its_two_files_and_malformed_ones_are_named() {
    let file = transcript_file(b"phase one", b"the zkey");
    assert_eq!(
        split_transcript(&file).unwrap(),
        (&b"phase one"[..], &b"the zkey"[..])
    );
    // The id covers both files.
    assert_ne!(
        TranscriptId::of(b"phase one", b"the zkey"),
        TranscriptId::of(b"phase two", b"the zkey")
    );
    assert_ne!(
        TranscriptId::of(b"phase one", b"the zkey"),
        TranscriptId::of(b"phase one", b"another zkey")
    );
    assert!(refusal(&file[..file.len() - 1]).contains("truncated"));
    assert!(refusal(&[&file[..], &b"!"[..]].concat()).contains("bytes after the zkey"));
    let mut other = file.clone();
    other[0] = b'X';
    assert!(refusal(&other).contains("not a zkcohort ceremony transcript"));
    assert!(refusal(&file).contains("zkey: not a version-1 zkey"));
}

#[test]
fn the_setup_is_tagged_json() {
    let id = TranscriptId([0xab; 32]);
    let ceremony = KeySetup::Ceremony { transcript_id: id };
    let text = serde_json::to_string(&ceremony).unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"kind":"ceremony","transcript_id":"{}"}}"#,
            "ab".repeat(32)
        )
    );
    assert_eq!(serde_json::from_str::<KeySetup>(&text).unwrap(), ceremony);
    assert_eq!(
        serde_json::to_string(&KeySetup::Development).unwrap(),
        r#"{"kind":"development"}"#
    );
    assert!(serde_json::from_str::<KeySetup>(r#"{"kind":"ceremony"}"#).is_err());
}
