//! Concurrent enrollments of different identities against an escrow that
//! pays only some of them.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enrollments_past_the_escrow_pay_exactly_what_it_holds() {
    const MEMBERS: usize = 6;
    const PAID: usize = 3;
    let cohort = cohort(MEMBERS);
    let proofs = prove_all(&cohort);
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    server
        .api
        .set_up_market(&cohort, 10, REWARD * PAID as u64)
        .await;
    let audit_before = server.store().audit_head().unwrap().size;

    let submissions: Vec<_> = proofs
        .iter()
        .enumerate()
        .map(|(index, proof)| {
            let api = server.api.clone();
            let proof = proof.clone();
            tokio::spawn(async move { api.enroll(&proof, &receiver(index)).await })
        })
        .collect();
    let mut enrolled = Vec::new();
    let mut refused = 0;
    for (index, submission) in submissions.into_iter().enumerate() {
        let (status, answer) = submission.await.unwrap();
        match status {
            StatusCode::CREATED => enrolled.push(index),
            StatusCode::CONFLICT => {
                assert_eq!(answer["error"]["code"], "escrow_exhausted", "{answer}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!((enrolled.len(), refused), (PAID, MEMBERS - PAID));

    // Exactly the acknowledged payouts were paid, once each; the escrow is
    // empty, not negative, and every token is accounted for.
    for index in 0..MEMBERS {
        let expected = if enrolled.contains(&index) { REWARD } else { 0 };
        assert_eq!(
            server.api.paid_to(&receiver(index)).await,
            expected,
            "payout {index}"
        );
    }
    assert_eq!(
        server.api.balance(&researcher()).await,
        100 - REWARD * PAID as u64
    );
    let study = server.api.study().await;
    assert_eq!(
        (study["enrolled"].as_u64(), study["escrow"].as_u64()),
        (Some(PAID as u64), Some(0))
    );
    let store = server.store();
    assert_eq!(store.balance(Account::Escrow(STUDY)).unwrap(), 0);
    let report = store.check_conservation().unwrap();
    assert_eq!(
        (
            report.total_minted,
            report.in_keys,
            report.in_escrow,
            report.in_notes
        ),
        (100, 100 - REWARD * PAID as u64, 0, REWARD * PAID as u64)
    );
    assert_eq!(store.enrollments(STUDY).unwrap().len(), PAID);
    assert_eq!(audit_enrollments_since(store, audit_before), (PAID, PAID));
    store.verify_audit_log().unwrap();
    server.stop().await;
}
