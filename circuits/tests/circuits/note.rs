//! The note-transfer circuit: honest transfers satisfy it, every false statement leaves
//! it unsatisfied (one test per constraint family), and a real Groth16 proof binds every
//! public input, so neither the recipient nor the amount of a copied proof can change.

use ark_bn254::Bn254;
use ark_groth16::Groth16;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem, SynthesisMode};
use ark_snark::SNARK;
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::note::circuit::{CreatedNoteValues, NoteTransferCircuit, SpentNoteValues};
use zkcohort_circuits::note::{
    note_nullifier, withdrawal_binding, CreatedNote, SpendingKey, SpentNote, TransferStatement,
    TransferWitness, NOTE_TREE_DEPTH, TRANSFER_PUBLIC_INPUTS,
};
use zkcohort_circuits::poseidon::poseidon_hash2;
use zkcohort_circuits::registry::{MembershipPath, RegistryTree};
use zkcohort_circuits::Fr;

const RECIPIENT: [u8; 32] = [5; 32];
const MARKETPLACE: [u8; 32] = [6; 32];

/// A note tree holding two notes of one wallet (7 and 5 tokens) among other leaves.
struct World {
    rng: StdRng,
    key: SpendingKey,
    tree: RegistryTree,
    seven: SpentNote,
    five: SpentNote,
}

fn world() -> World {
    let mut rng = StdRng::seed_from_u64(0x2026_1202);
    let key = SpendingKey::random_with_rng(&mut rng);
    let mut tree = RegistryTree::new(NOTE_TREE_DEPTH).unwrap();
    let stranger = SpendingKey::random_with_rng(&mut rng);
    tree.append(stranger.note(3, &mut rng).commitment())
        .unwrap();
    let (seven, five) = (key.note(7, &mut rng), key.note(5, &mut rng));
    let seven_at = tree.append(seven.commitment()).unwrap();
    tree.append(stranger.note(9, &mut rng).commitment())
        .unwrap();
    let five_at = tree.append(five.commitment()).unwrap();
    let spent = |note, index| SpentNote {
        key: key.clone(),
        note,
        path: tree.path(index).unwrap(),
    };
    World {
        seven: spent(seven, seven_at),
        five: spent(five, five_at),
        rng,
        key,
        tree,
    }
}

impl World {
    /// The honest transfer: both notes in, 4 kept as change, 8 withdrawn.
    fn merge_and_withdraw(&mut self) -> (TransferStatement, TransferWitness) {
        let change = CreatedNote::of(&self.key.note(4, &mut self.rng));
        let zero = CreatedNote::zero(&mut self.rng);
        let witness = TransferWitness::new(
            NOTE_TREE_DEPTH,
            self.tree.root(),
            [self.seven.clone(), self.five.clone()],
            [change, zero],
            8,
        )
        .unwrap();
        let statement = witness.statement(
            self.tree.root(),
            8,
            withdrawal_binding(&RECIPIENT, &MARKETPLACE),
        );
        (statement, witness)
    }
}

fn raw(statement: &TransferStatement, witness: &TransferWitness) -> Raw {
    Raw {
        public: statement.to_public_inputs(),
        inputs: witness.inputs.clone().map(|input| SpentNoteValues {
            key: input.key.0,
            value: Fr::from(input.note.value),
            blinding: input.note.blinding,
            path: input.path,
        }),
        outputs: witness.outputs.map(|output| CreatedNoteValues {
            value: Fr::from(output.value),
            receiver: output.receiver,
        }),
    }
}

/// A transfer as raw field values, to state what no wallet would.
#[derive(Clone)]
struct Raw {
    public: [Fr; TRANSFER_PUBLIC_INPUTS],
    inputs: [SpentNoteValues; 2],
    outputs: [CreatedNoteValues; 2],
}

impl Raw {
    fn satisfied(self) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        NoteTransferCircuit::from_field_values(
            NOTE_TREE_DEPTH,
            self.public,
            self.inputs,
            self.outputs,
        )
        .generate_constraints(cs.clone())
        .unwrap();
        cs.is_satisfied().unwrap()
    }

    /// Sets created note `position` to `value`, and its public commitment to match.
    fn set_output(&mut self, position: usize, value: Fr) {
        self.outputs[position].value = value;
        self.public[3 + position] = poseidon_hash2(value, self.outputs[position].receiver);
    }
}

fn satisfied(statement: &TransferStatement, witness: &TransferWitness) -> bool {
    raw(statement, witness).satisfied()
}

#[test]
fn honest_merges_withdrawals_and_dummies_satisfy_the_circuit() {
    let mut world = world();
    let (statement, witness) = world.merge_and_withdraw();
    assert!(satisfied(&statement, &witness));

    // One note and a dummy, nothing withdrawn: a pure re-randomisation.
    let dummy = SpentNote::dummy(NOTE_TREE_DEPTH, &mut world.rng).unwrap();
    let outputs = [
        CreatedNote::of(&world.key.note(5, &mut world.rng)),
        CreatedNote::zero(&mut world.rng),
    ];
    let witness = TransferWitness::new(
        NOTE_TREE_DEPTH,
        world.tree.root(),
        [world.five.clone(), dummy],
        outputs,
        0,
    )
    .unwrap();
    let statement = witness.statement(world.tree.root(), 0, Fr::from(0u64));
    assert!(satisfied(&statement, &witness));

    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(SynthesisMode::Setup);
    NoteTransferCircuit::blank(NOTE_TREE_DEPTH)
        .generate_constraints(cs.clone())
        .unwrap();
    assert_eq!(cs.num_instance_variables(), 1 + TRANSFER_PUBLIC_INPUTS);
    assert!(
        cs.num_constraints() + TRANSFER_PUBLIC_INPUTS < 1 << 14,
        "{} constraints: the circuit outgrew its 2^14 domain",
        cs.num_constraints()
    );
}

#[test]
fn one_note_spent_as_both_inputs_is_rejected() {
    let mut world = world();
    let (mut statement, mut witness) = world.merge_and_withdraw();
    witness.inputs[1] = witness.inputs[0].clone();
    statement.nullifiers[1] = statement.nullifiers[0];
    statement.withdrawal = 10;
    let twice = raw(&statement, &witness);
    assert!(
        !twice.satisfied(),
        "7 + 7 = 4 + 10 but the nullifiers repeat"
    );
}

#[test]
fn value_created_from_nothing_is_rejected() {
    let mut world = world();
    let (statement, witness) = world.merge_and_withdraw();
    let mut richer = raw(&statement, &witness);
    richer.set_output(0, Fr::from(5u64));
    assert!(!richer.satisfied(), "12 in, 13 out");
    let mut larger_withdrawal = raw(&statement, &witness);
    larger_withdrawal.public[5] = Fr::from(9u64);
    assert!(!larger_withdrawal.satisfied(), "12 in, 4 + 9 out");
}

#[test]
fn values_that_wrap_the_field_are_rejected() {
    let mut world = world();
    let (statement, witness) = world.merge_and_withdraw();
    let minus = |value: u64| -Fr::from(value);

    // 12 = (16 + 8) + (-12) balances modulo r; the negative output does not fit 64 bits.
    let mut negative_output = raw(&statement, &witness);
    negative_output.set_output(0, Fr::from(16u64));
    negative_output.set_output(1, minus(12));
    assert!(!negative_output.satisfied());

    // A negative withdrawal would pay into the pool from nowhere: 12 = (4 + 10) + 0 - 2.
    let mut negative_withdrawal = raw(&statement, &witness);
    negative_withdrawal.public[5] = minus(2);
    negative_withdrawal.set_output(0, Fr::from(14u64));
    assert!(!negative_withdrawal.satisfied());

    // A note of value -1 in the tree (no output could have made it; only the range check
    // stands in its way here): 7 + (-1) = 4 + 0 + 2. The same transfer of a note of 1 with
    // a withdrawal of 4 is honest and satisfies the circuit.
    let spending_extra_note = |value: Fr, withdrawal: u64| {
        let mut tree = world.tree.clone();
        let blinding = Fr::from(99u64);
        let commitment = poseidon_hash2(value, poseidon_hash2(world.key.owner(), blinding));
        let at = tree.append(commitment).unwrap();
        let mut transfer = raw(&statement, &witness);
        transfer.public[0] = tree.root();
        transfer.inputs[0].path = tree.path(world.seven.path.index()).unwrap();
        transfer.inputs[1] = SpentNoteValues {
            key: world.key.0,
            value,
            blinding,
            path: tree.path(at).unwrap(),
        };
        transfer.public[2] = note_nullifier(&world.key, commitment, at);
        transfer.public[5] = Fr::from(withdrawal);
        transfer
    };
    assert!(spending_extra_note(Fr::from(1u64), 4).satisfied());
    assert!(!spending_extra_note(minus(1), 2).satisfied());
}

#[test]
fn a_note_outside_the_tree_or_of_another_key_is_rejected() {
    let mut world = world();
    let (statement, witness) = world.merge_and_withdraw();

    // A root of a tree the prover made up, holding a note nobody paid for.
    let mut forged_tree = world.tree.clone();
    let invented = world.key.note(1_000, &mut world.rng);
    let at = forged_tree.append(invented.commitment()).unwrap();
    let mut forged = raw(&statement, &witness);
    forged.inputs[1] = SpentNoteValues {
        key: world.key.0,
        value: Fr::from(1_000u64),
        blinding: invented.blinding,
        path: forged_tree.path(at).unwrap(),
    };
    forged.public[2] = note_nullifier(&world.key, invented.commitment(), at);
    forged.set_output(0, Fr::from(999u64));
    assert!(
        !forged.satisfied(),
        "its path leads to another root than the statement's"
    );

    // The right note opened at another index.
    let mut moved = raw(&statement, &witness);
    let path = moved.inputs[0].path.clone();
    moved.inputs[0].path = MembershipPath::new(path.index() + 1, path.siblings().to_vec()).unwrap();
    moved.public[1] = note_nullifier(&world.key, world.seven.note.commitment(), path.index() + 1);
    assert!(!moved.satisfied());

    // Someone else's key: the owner, so the commitment, differs.
    let thief = SpendingKey::random_with_rng(&mut world.rng);
    let mut stolen = raw(&statement, &witness);
    stolen.inputs[0].key = thief.0;
    let mut thief_s_note = world.seven.note;
    thief_s_note.owner = thief.owner();
    stolen.public[1] = note_nullifier(&thief, thief_s_note.commitment(), world.seven.path.index());
    assert!(!stolen.satisfied());

    // A "dummy" of non-zero value skips no membership check.
    let mut dummy = raw(&statement, &witness);
    let fake = SpentNote::dummy(NOTE_TREE_DEPTH, &mut world.rng).unwrap();
    dummy.inputs[1] = SpentNoteValues {
        key: fake.key.0,
        value: Fr::from(5u64),
        blinding: fake.note.blinding,
        path: fake.path.clone(),
    };
    let mut fake_five = fake.note;
    fake_five.value = 5;
    dummy.public[2] = note_nullifier(&fake.key, fake_five.commitment(), 0);
    assert!(!dummy.satisfied());
}

#[test]
fn a_nullifier_or_output_other_than_the_notes_is_rejected() {
    let mut world = world();
    let (statement, witness) = world.merge_and_withdraw();
    for position in 1..=4 {
        let mut other = raw(&statement, &witness);
        other.public[position] += Fr::from(1u64);
        assert!(!other.satisfied(), "public input {position}");
    }
    let mut stale_index = raw(&statement, &witness);
    stale_index.public[1] = note_nullifier(&world.key, world.seven.note.commitment(), 0);
    assert!(
        !stale_index.satisfied(),
        "a nullifier for another leaf index"
    );
}

#[test]
fn a_proof_binds_its_recipient_amount_and_every_other_input() {
    let mut world = world();
    let mut rng = StdRng::seed_from_u64(7);
    let (proving_key, verifying_key) = Groth16::<Bn254>::circuit_specific_setup(
        NoteTransferCircuit::blank(NOTE_TREE_DEPTH),
        &mut rng,
    )
    .unwrap();
    let prepared = Groth16::<Bn254>::process_vk(&verifying_key).unwrap();
    let (statement, witness) = world.merge_and_withdraw();
    let proof = Groth16::<Bn254>::prove(
        &proving_key,
        NoteTransferCircuit::new(NOTE_TREE_DEPTH, &statement, &witness),
        &mut rng,
    )
    .unwrap();
    let inputs = statement.to_public_inputs();
    assert!(Groth16::<Bn254>::verify_with_processed_vk(&prepared, &inputs, &proof).unwrap());
    for position in 0..inputs.len() {
        let mut swapped = inputs;
        swapped[position] += Fr::from(1u64);
        assert!(
            !Groth16::<Bn254>::verify_with_processed_vk(&prepared, &swapped, &proof).unwrap(),
            "input {position}"
        );
    }
    let mut redirected = statement;
    redirected.withdrawal_binding = withdrawal_binding(&[7; 32], &MARKETPLACE);
    assert!(!Groth16::<Bn254>::verify_with_processed_vk(
        &prepared,
        &redirected.to_public_inputs(),
        &proof
    )
    .unwrap());
}
