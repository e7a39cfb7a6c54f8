//! Proving note transfers: merging reward notes and withdrawing from them, with the
//! note-transfer circuit's keys (`CircuitKeys<NoteShape>`), made on the same setup path as
//! the eligibility keys.

use ark_bn254::Bn254;
use ark_groth16::Proof;
use zkcohort_circuits::note::circuit::NoteTransferCircuit;
use zkcohort_circuits::note::{TransferStatement, TransferWitness};
use zkcohort_circuits::shape::NoteShape;
use zkcohort_circuits::Fr;

use crate::{CircuitKeys, ProverError};

/// A transfer proof with the statement it proves.
#[derive(Clone, Debug, PartialEq)]
pub struct TransferProof {
    /// The public inputs.
    pub statement: TransferStatement,
    /// The Groth16 proof.
    pub proof: Proof<Bn254>,
}

impl CircuitKeys<NoteShape> {
    /// Proves a transfer of `witness` under `root`, withdrawing `withdrawal` to what
    /// `withdrawal_binding` names ([`zkcohort_circuits::note::withdrawal_binding`]).
    ///
    /// # Errors
    /// [`ProverError::Synthesis`] when the witness does not fit the keys' tree depth.
    pub fn prove_transfer<R: rand::RngCore + rand::CryptoRng>(
        &self,
        witness: &TransferWitness,
        root: Fr,
        withdrawal: u64,
        withdrawal_binding: Fr,
        rng: &mut R,
    ) -> Result<TransferProof, ProverError> {
        let statement = witness.statement(root, withdrawal, withdrawal_binding);
        let circuit = NoteTransferCircuit::new(self.shape.tree_depth, &statement, witness);
        let proof = self.prove_circuit(circuit, rng)?;
        Ok(TransferProof { statement, proof })
    }
}
