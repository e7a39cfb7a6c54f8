//! Note-transfer keys and proofs: the note circuit goes through the eligibility circuit's
//! setup and key files, its proofs verify with the standalone verifier, and a key file of
//! one circuit never loads as the other's.

use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::note::{
    withdrawal_binding, CreatedNote, SpendingKey, SpentNote, TransferWitness, NOTE_TREE_DEPTH,
};
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::shape::NoteShape;
use zkcohort_prover::CircuitKeys;
use zkcohort_verifier::verify::verify_transfer;

use crate::common::{keys, SHAPE};

#[test]
fn a_transfer_proof_verifies_and_its_key_file_is_the_note_circuit_s_only() {
    let mut rng = StdRng::seed_from_u64(13);
    let note_keys = CircuitKeys::setup_with_rng(NoteShape::STANDARD, &mut rng).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let path = note_keys.save(folder.path()).unwrap();
    assert!(path.ends_with("note-proving-key-d20.bin"), "{path:?}");
    let loaded =
        CircuitKeys::load_checked(folder.path(), NoteShape::STANDARD, note_keys.circuit_id())
            .unwrap();
    assert_eq!(loaded.circuit_id(), note_keys.circuit_id());

    // The eligibility circuit's key under the note key's name is refused, and back.
    keys().save(folder.path()).unwrap();
    std::fs::copy(CircuitKeys::proving_key_path(folder.path(), SHAPE), &path).unwrap();
    let refused = CircuitKeys::load(folder.path(), NoteShape::STANDARD)
        .err()
        .expect("an eligibility key is no note key")
        .to_string();
    assert!(refused.contains("another circuit"), "{refused}");

    let key = SpendingKey::random_with_rng(&mut rng);
    let reward = key.note(30, &mut rng);
    let mut tree = RegistryTree::new(NOTE_TREE_DEPTH).unwrap();
    let index = tree.append(reward.commitment()).unwrap();
    let spent = SpentNote {
        key: key.clone(),
        note: reward,
        path: tree.path(index).unwrap(),
    };
    let witness = TransferWitness::new(
        NOTE_TREE_DEPTH,
        tree.root(),
        [spent, SpentNote::dummy(NOTE_TREE_DEPTH, &mut rng).unwrap()],
        [
            CreatedNote::of(&key.note(10, &mut rng)),
            CreatedNote::zero(&mut rng),
        ],
        20,
    )
    .unwrap();
    let binding = withdrawal_binding(&[1; 32], &[2; 32]);
    let transfer = loaded
        .prove_transfer(&witness, tree.root(), 20, binding, &mut rng)
        .unwrap();
    let prepared = loaded.prepared_verifying_key();
    assert!(verify_transfer(prepared, &transfer.statement, &transfer.proof).unwrap());
    let mut more = transfer.statement;
    more.withdrawal = 21;
    assert!(!verify_transfer(prepared, &more, &transfer.proof).unwrap());
    // The eligibility key takes as many inputs (seven) but is another circuit's: the
    // transfer proof does not verify under it.
    assert!(!verify_transfer(
        keys().prepared_verifying_key(),
        &transfer.statement,
        &transfer.proof
    )
    .unwrap());
}
