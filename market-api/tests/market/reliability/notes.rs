//! Reward notes over HTTP: enrollments pay into notes of one wallet's key, and a
//! note transfer merges two of them and withdraws part to an account. Every refusal
//! changes nothing; the same transfer sent 50 times at once pays exactly once; the
//! ledger conserves minted = balances + escrows + unspent note value.

use super::*;
use zkcohort_circuits::note::{
    withdrawal_binding, CreatedNote, Note, SpendingKey, SpentNote, TransferWitness,
};
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::{fr_from_hex, fr_to_hex};
use zkcohort_prover::note::TransferProof;

use super::crash::post_all_and_kill_after_one;
use crate::common::note_keys;

/// The note tree as a wallet rebuilds it from `GET /notes/leaves`, checked against the
/// served root.
async fn note_tree(api: &Api) -> RegistryTree {
    let leaves: Vec<Fr> = api
        .note_leaves()
        .await
        .iter()
        .map(|leaf| fr_from_hex(leaf).unwrap())
        .collect();
    let tree = RegistryTree::from_leaves(20, &leaves).unwrap();
    let (status, state) = api.get("/notes").await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state["root"]["root"], fr_to_hex(&tree.root()));
    assert_eq!(state["leaf_count"], leaves.len());
    tree
}

/// A note to `key` spent from `tree`, where its commitment is.
fn spent(key: &SpendingKey, note: Note, tree: &RegistryTree) -> SpentNote {
    let index = tree
        .leaves()
        .iter()
        .position(|leaf| *leaf == note.commitment())
        .expect("the note is in the tree") as u64;
    SpentNote {
        key: key.clone(),
        note,
        path: tree.path(index).unwrap(),
    }
}

/// Proves a transfer of `inputs` to `outputs` with `withdrawal` to `recipient`.
fn prove(
    tree: &RegistryTree,
    inputs: [SpentNote; 2],
    outputs: [CreatedNote; 2],
    withdrawal: u64,
    recipient: &[u8; 32],
) -> TransferProof {
    let witness = TransferWitness::new(20, tree.root(), inputs, outputs, withdrawal).unwrap();
    note_keys()
        .prove_transfer(
            &witness,
            tree.root(),
            withdrawal,
            withdrawal_binding(recipient, &marketplace_key()),
            &mut StdRng::seed_from_u64(11),
        )
        .unwrap()
}

/// The body of `POST /notes/transfer` for `proof`, withdrawing to `recipient`.
fn transfer_body(proof: &TransferProof, recipient: &[u8; 32]) -> Value {
    let statement = &proof.statement;
    json!({
        "proof": serde_json::to_value(zkcohort_verifier::snarkjs::SnarkjsProof::from_proof(&proof.proof)).unwrap(),
        "note_root": fr_to_hex(&statement.note_root),
        "nullifiers": statement.nullifiers.iter().map(fr_to_hex).collect::<Vec<_>>(),
        "outputs": statement.outputs.iter().map(fr_to_hex).collect::<Vec<_>>(),
        "withdrawal": statement.withdrawal,
        "recipient": hex::encode(recipient),
    })
}

/// The body of a transfer withdrawing `note` (of `wallet`, in the served tree) whole to
/// `recipient`, with a dummy beside it.
pub(super) async fn withdrawal_of(
    api: &Api,
    wallet: &SpendingKey,
    note: Note,
    recipient: &[u8; 32],
) -> Value {
    let tree = note_tree(api).await;
    let mut rng = StdRng::seed_from_u64(43);
    let inputs = [
        spent(wallet, note, &tree),
        SpentNote::dummy(20, &mut rng).unwrap(),
    ];
    let outputs = [CreatedNote::zero(&mut rng), CreatedNote::zero(&mut rng)];
    transfer_body(
        &prove(&tree, inputs, outputs, note.value, recipient),
        recipient,
    )
}

/// What must not change when a transfer is refused.
async fn note_snapshot(api: &Api, recipient: &[u8; 32]) -> (Value, u64, Value) {
    (
        api.get("/notes").await.1,
        api.balance(recipient).await,
        api.get("/audit/head").await.1["head"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notes_from_two_enrollments_merge_and_withdraw_exactly_once() {
    let cohort = cohort(2);
    let wallet = SpendingKey::random_with_rng(&mut StdRng::seed_from_u64(21));
    let mut rng = StdRng::seed_from_u64(22);
    let rewards = [wallet.note(REWARD, &mut rng), wallet.note(REWARD, &mut rng)];
    let proofs = prove_cohort(keys(), &cohort, STUDY, |index| rewards[index].receiver());
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path()).await;
    server.api.set_up_market(&cohort, 10, REWARD * 2).await;
    for (proof, note) in proofs.iter().zip(&rewards) {
        let (status, enrolled) = server.api.enroll(proof, &note.receiver()).await;
        assert_eq!(status, StatusCode::CREATED, "{enrolled}");
        assert_eq!(
            enrolled["note_commitment"],
            hex::encode(fr_to_bytes(&note.commitment())),
            "the reward note opens to the study's reward and the bound receiver"
        );
    }
    let report = server.store().check_conservation().unwrap();
    assert_eq!(report.in_notes, REWARD * 2);

    let tree = note_tree(&server.api).await;
    let recipient = public_key(60);
    let change = wallet.note(5, &mut rng);
    let outputs = [CreatedNote::of(&change), CreatedNote::zero(&mut rng)];
    let inputs = rewards.map(|note| spent(&wallet, note, &tree));
    let withdrawal = REWARD * 2 - 5;
    let proof = prove(&tree, inputs.clone(), outputs, withdrawal, &recipient);
    let body = transfer_body(&proof, &recipient);
    let before = note_snapshot(&server.api, &recipient).await;

    // Refusals, each with its code; none changes anything.
    let refused = |change: &dyn Fn(&mut Value)| {
        let mut bad = body.clone();
        change(&mut bad);
        bad
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            refused(&|bad| bad["withdrawal"] = json!(withdrawal + 1)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_proof",
        ),
        (
            refused(&|bad| bad["recipient"] = json!(hex::encode(public_key(61)))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_proof",
        ),
        (
            refused(&|bad| bad["outputs"][0] = json!(fr_to_hex(&Fr::from(99u64)))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_proof",
        ),
        (
            refused(&|bad| bad["proof"] = json!({"pi_a": ["1", "2", "1"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_proof",
        ),
        (
            refused(&|bad| bad["note_root"] = json!(fr_to_hex(&Fr::from(12345u64)))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_note_root",
        ),
        (
            refused(&|bad| {
                bad["nullifiers"][0] =
                    json!("30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001")
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "non_canonical",
        ),
        (
            refused(&|bad| bad["nullifiers"].as_array_mut().unwrap().truncate(1)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_transfer",
        ),
        (
            refused(&|bad| bad["recipient"] = json!("zz")),
            StatusCode::BAD_REQUEST,
            "bad_key",
        ),
    ];
    for (bad, status, code) in cases {
        let (got, error) = server.api.post("/notes/transfer", None, &bad).await;
        assert_eq!(
            (got, error["error"]["code"].as_str()),
            (status, Some(code)),
            "{error}"
        );
    }
    assert_eq!(note_snapshot(&server.api, &recipient).await, before);

    // 50 concurrent submissions of the one transfer: exactly one spends.
    let submissions: Vec<_> = (0..50)
        .map(|_| {
            let (api, body) = (server.api.clone(), body.clone());
            tokio::spawn(async move { api.post("/notes/transfer", None, &body).await })
        })
        .collect();
    let mut statuses = HashMap::new();
    for submission in submissions {
        let (status, answer) = submission.await.unwrap();
        if status == StatusCode::CONFLICT {
            assert_eq!(answer["error"]["code"], "note_spent", "{answer}");
        } else {
            assert_eq!(status, StatusCode::CREATED, "{answer}");
            assert_eq!(answer["first_index"], 2);
            assert_eq!(answer["ledger"]["amount"], withdrawal);
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        HashMap::from([(StatusCode::CREATED, 1), (StatusCode::CONFLICT, 49)])
    );
    assert_eq!(server.api.balance(&recipient).await, withdrawal);
    let (_, state) = server.api.get("/notes").await;
    assert_eq!(
        (state["leaf_count"].as_u64(), state["spent"].as_u64()),
        (Some(4), Some(2))
    );
    let (status, spent_list) = server.api.get("/notes/spent?start=0&limit=10").await;
    assert_eq!(status, StatusCode::OK, "{spent_list}");
    let expected: Vec<String> = proof
        .statement
        .nullifiers
        .iter()
        .map(|nullifier| hex::encode(fr_to_bytes(nullifier)))
        .collect();
    assert_eq!(spent_list, json!(expected));
    let report = server.store().check_conservation().unwrap();
    assert_eq!(
        report.in_notes, 5,
        "what settled into notes minus what was withdrawn"
    );

    // One of the spent notes again, with a fresh dummy beside it under the new root: its
    // nullifier is spent, whatever else changes.
    let tree = note_tree(&server.api).await;
    let again = [
        spent(&wallet, rewards[0], &tree),
        SpentNote::dummy(20, &mut rng).unwrap(),
    ];
    let replay = prove(
        &tree,
        again,
        [CreatedNote::zero(&mut rng), CreatedNote::zero(&mut rng)],
        REWARD,
        &recipient,
    );
    let (status, error) = server
        .api
        .post("/notes/transfer", None, &transfer_body(&replay, &recipient))
        .await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (StatusCode::CONFLICT, &json!("note_spent"))
    );

    // The change note, withdrawn whole to a second account.
    let last = [
        spent(&wallet, change, &tree),
        SpentNote::dummy(20, &mut rng).unwrap(),
    ];
    let other = public_key(62);
    let proof = prove(
        &tree,
        last,
        [CreatedNote::zero(&mut rng), CreatedNote::zero(&mut rng)],
        5,
        &other,
    );
    let (status, answer) = server
        .api
        .post("/notes/transfer", None, &transfer_body(&proof, &other))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(server.api.balance(&other).await, 5);
    let report = server.store().check_conservation().unwrap();
    assert_eq!(report.in_notes, 0);
    assert_eq!(report.total_minted, report.in_keys + report.in_escrow);

    // The whole log replays: the note tree it builds is the served one, no nullifier
    // is spent twice.
    let entries = server.store().audit_entries(0, usize::MAX).unwrap();
    zkcohort_verifier::audit::verify_chain(&entries).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_note_transfers_survive_sigkill_and_none_pays_twice() {
    const MEMBERS: usize = 3;
    let cohort = cohort(MEMBERS);
    let wallet = SpendingKey::random_with_rng(&mut StdRng::seed_from_u64(31));
    let mut rng = StdRng::seed_from_u64(32);
    let rewards: Vec<Note> = (0..MEMBERS)
        .map(|_| wallet.note(REWARD, &mut rng))
        .collect();
    let proofs = prove_cohort(keys(), &cohort, STUDY, |index| rewards[index].receiver());
    let folder = tempfile::tempdir().unwrap();
    let (mut process, api) = super::crash::ServerProcess::start(folder.path());
    api.set_up_market(&cohort, 10, REWARD * MEMBERS as u64)
        .await;
    for (proof, note) in proofs.iter().zip(&rewards) {
        let (status, enrolled) = api.enroll(proof, &note.receiver()).await;
        assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    }
    // One transfer per note, each withdrawing it whole to its own account.
    let tree = note_tree(&api).await;
    let recipients: Vec<[u8; 32]> = (0..MEMBERS)
        .map(|index| public_key(70 + index as u8))
        .collect();
    let transfers: Vec<(TransferProof, Value)> = rewards
        .iter()
        .zip(&recipients)
        .map(|(note, recipient)| {
            let inputs = [
                spent(&wallet, *note, &tree),
                SpentNote::dummy(20, &mut rng).unwrap(),
            ];
            let outputs = [CreatedNote::zero(&mut rng), CreatedNote::zero(&mut rng)];
            let proof = prove(&tree, inputs, outputs, REWARD, recipient);
            let body = transfer_body(&proof, recipient);
            (proof, body)
        })
        .collect();

    let mut acknowledged = [false; MEMBERS];
    let (status, answer) = api.post("/notes/transfer", None, &transfers[0].1).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    acknowledged[0] = true;
    // The others at once; the server dies right after the first of them is acknowledged.
    let others = transfers
        .iter()
        .enumerate()
        .skip(1)
        .map(|(index, (_, body))| (index, body.clone()))
        .collect();
    for index in post_all_and_kill_after_one(&mut process, &api, "/notes/transfer", others).await {
        acknowledged[index] = true;
    }

    // Every acknowledged transfer survived; each one either fully happened (nullifier
    // spent, outputs appended, withdrawal paid) or not at all.
    let store = Store::open(folder.path().join("db"), store_config()).unwrap();
    let mut spent_now = Vec::new();
    for (index, (proof, _)) in transfers.iter().enumerate() {
        let nullifier = fr_to_bytes(&proof.statement.nullifiers[0]);
        let is_spent = store.is_note_spent(&nullifier).unwrap();
        let paid = store.balance(Account::Key(recipients[index])).unwrap();
        assert_eq!(paid, if is_spent { REWARD } else { 0 }, "transfer {index}");
        assert!(
            !acknowledged[index] || is_spent,
            "acknowledged transfer {index} was lost"
        );
        spent_now.push(is_spent);
    }
    let done = spent_now.iter().filter(|&&is| is).count() as u64;
    assert_eq!(store.spent_note_count().unwrap(), 2 * done);
    assert_eq!(
        store.note_root().unwrap().unwrap().leaf_count,
        MEMBERS as u64 + 2 * done
    );
    let report = store.check_conservation().unwrap();
    assert_eq!(report.in_notes, REWARD * (MEMBERS as u64 - done));
    store.verify_audit_log().unwrap();
    drop(store);

    // Served again: the spent ones are refused, the rest go through, each pays once.
    let server = Server::start(&folder.path().join("db")).await;
    for (index, (_, body)) in transfers.iter().enumerate() {
        let (status, answer) = server.api.post("/notes/transfer", None, body).await;
        if spent_now[index] {
            assert_eq!(answer["error"]["code"], "note_spent", "{answer}");
        } else {
            assert_eq!(status, StatusCode::CREATED, "{answer}");
        }
    }
    for recipient in &recipients {
        assert_eq!(server.api.balance(recipient).await, REWARD);
    }
    assert_eq!(server.store().check_conservation().unwrap().in_notes, 0);
    server.stop().await;
}
