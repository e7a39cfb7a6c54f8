//! The note-transfer circuit: two notes in, two out, and a public withdrawal.
//!
//! Public inputs ([`TransferStatement`]): `note_root, nullifier_0, nullifier_1, output_0,
//! output_1, withdrawal, withdrawal_binding`. The circuit proves knowledge of two spent
//! notes (key, value, blinding, tree path) and two created notes (value, receiver) such that
//! 1. every value and the withdrawal fit [`VALUE_BITS`] bits, so the balance below is an
//!    equation on integers (three `u64`s cannot reach the modulus);
//! 2. each spent note's commitment `Poseidon(value, Poseidon(Poseidon(tag, key), blinding))`
//!    is under `note_root` at its path's index, unless its value is 0 (a dummy);
//! 3. each `nullifier_i = Poseidon(tag, key_i, commitment_i, index_i)`, and the two differ, so
//!    one note cannot be spent as both inputs;
//! 4. each `output_j = Poseidon(value_j, receiver_j)`;
//! 5. the spent values equal the created values plus the withdrawal;
//! 6. `withdrawal_binding` is squared in a constraint, so it cannot be swapped on a copied
//!    proof.

use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

use super::{
    TransferStatement, TransferWitness, NOTES_PER_TRANSFER, NULLIFIER_TAG, OWNER_TAG,
    TRANSFER_PUBLIC_INPUTS, VALUE_BITS,
};
use crate::bits::to_bits_bounded;
use crate::poseidon::gadget::{poseidon_hash2_gadget, poseidon_hash_gadget};
use crate::registry::gadget::MembershipPathVar;
use crate::registry::MembershipPath;
use crate::Fr;

/// A spent note's private inputs as field elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpentNoteValues {
    /// The spending key.
    pub key: Fr,
    /// The value.
    pub value: Fr,
    /// The blinding.
    pub blinding: Fr,
    /// The note's path in the tree.
    pub path: MembershipPath,
}

/// A created note's private inputs as field elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreatedNoteValues {
    /// The value.
    pub value: Fr,
    /// The receiver.
    pub receiver: Fr,
}

/// The note-transfer circuit for a note tree of one depth; without an assignment it
/// serves key generation.
#[derive(Clone, Debug)]
pub struct NoteTransferCircuit {
    depth: usize,
    assignment: Option<Assignment>,
}

#[derive(Clone, Debug)]
struct Assignment {
    public: [Fr; TRANSFER_PUBLIC_INPUTS],
    inputs: [SpentNoteValues; NOTES_PER_TRANSFER],
    outputs: [CreatedNoteValues; NOTES_PER_TRANSFER],
}

impl NoteTransferCircuit {
    /// A circuit without values, for setup.
    pub fn blank(depth: usize) -> Self {
        NoteTransferCircuit {
            depth,
            assignment: None,
        }
    }

    /// A circuit with a statement and its witness, for proving.
    pub fn new(depth: usize, statement: &TransferStatement, witness: &TransferWitness) -> Self {
        let inputs = witness.inputs.clone().map(|input| SpentNoteValues {
            key: input.key.0,
            value: Fr::from(input.note.value),
            blinding: input.note.blinding,
            path: input.path,
        });
        let outputs = witness.outputs.map(|output| CreatedNoteValues {
            value: Fr::from(output.value),
            receiver: output.receiver,
        });
        Self::from_field_values(depth, statement.to_public_inputs(), inputs, outputs)
    }

    /// A circuit over raw field values, which may be ones no wallet forms (a value of
    /// `r - 1`, a withdrawal wider than 64 bits): soundness tests use it.
    pub fn from_field_values(
        depth: usize,
        public: [Fr; TRANSFER_PUBLIC_INPUTS],
        inputs: [SpentNoteValues; NOTES_PER_TRANSFER],
        outputs: [CreatedNoteValues; NOTES_PER_TRANSFER],
    ) -> Self {
        NoteTransferCircuit {
            depth,
            assignment: Some(Assignment {
                public,
                inputs,
                outputs,
            }),
        }
    }
}

fn value<T>(assignment: Option<T>) -> Result<T, SynthesisError> {
    assignment.ok_or(SynthesisError::AssignmentMissing)
}

impl ConstraintSynthesizer<Fr> for NoteTransferCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let assignment = self.assignment.as_ref();
        let public = |position: usize| {
            FpVar::new_input(cs.clone(), || {
                value(assignment.map(|assignment| assignment.public[position]))
            })
        };
        let [note_root, nullifier_0, nullifier_1, output_0, output_1, withdrawal, binding] = [
            public(0)?,
            public(1)?,
            public(2)?,
            public(3)?,
            public(4)?,
            public(5)?,
            public(6)?,
        ];
        let _binding_square = binding.square()?;
        to_bits_bounded(&withdrawal, VALUE_BITS)?;

        let mut spent = FpVar::zero();
        for (position, nullifier) in [nullifier_0.clone(), nullifier_1.clone()]
            .iter()
            .enumerate()
        {
            let input = assignment.map(|assignment| &assignment.inputs[position]);
            let private = |read: fn(&SpentNoteValues) -> Fr| {
                FpVar::new_witness(cs.clone(), || value(input.map(read)))
            };
            let key = private(|input| input.key)?;
            let note_value = private(|input| input.value)?;
            let blinding = private(|input| input.blinding)?;
            to_bits_bounded(&note_value, VALUE_BITS)?;
            let owner = poseidon_hash2_gadget(&FpVar::constant(Fr::from(OWNER_TAG)), &key)?;
            let receiver = poseidon_hash2_gadget(&owner, &blinding)?;
            let commitment = poseidon_hash2_gadget(&note_value, &receiver)?;
            let path = MembershipPathVar::new_witness_with_depth(cs.clone(), self.depth, || {
                value(input.map(|input| input.path.clone()))
            })?;
            let index = path
                .index_bits()
                .iter()
                .enumerate()
                .fold(FpVar::zero(), |index, (level, bit)| {
                    index + bit * Fr::from(1u64 << level)
                });
            poseidon_hash_gadget(&[
                FpVar::constant(Fr::from(NULLIFIER_TAG)),
                key,
                commitment.clone(),
                index,
            ])?
            .enforce_equal(nullifier)?;
            // (root - note_root) * value = 0: a note of any value but 0 must be in the tree.
            (path.root(&commitment)? - &note_root).mul_equals(&note_value, &FpVar::zero())?;
            spent += note_value;
        }
        nullifier_0.enforce_not_equal(&nullifier_1)?;

        let mut created = withdrawal;
        for (position, output) in [output_0, output_1].iter().enumerate() {
            let created_note = assignment.map(|assignment| &assignment.outputs[position]);
            let note_value =
                FpVar::new_witness(cs.clone(), || value(created_note.map(|note| note.value)))?;
            let receiver =
                FpVar::new_witness(cs.clone(), || value(created_note.map(|note| note.receiver)))?;
            to_bits_bounded(&note_value, VALUE_BITS)?;
            poseidon_hash2_gadget(&note_value, &receiver)?.enforce_equal(output)?;
            created += note_value;
        }
        spent.enforce_equal(&created)?;
        Ok(())
    }
}
