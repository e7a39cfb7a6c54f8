//! Proving: one proof, or a batch across patients in parallel with results streamed
//! to a callback as they finish.
//!
//! Each proof synthesizes the circuit only to collect the witness (no constraint
//! matrices, no cached linear-combination values) and reuses the shape's matrices
//! computed when the keys were loaded; the Groth16 prover (`crate::groth16`) runs its
//! MSMs and FFTs on rayon.

use std::sync::atomic::{AtomicUsize, Ordering};

use ark_bn254::{Bn254, Fr};
use ark_ff::UniformRand;
use ark_groth16::Proof;
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisError, SynthesisMode,
};
use rand::{rngs::StdRng, SeedableRng};
use rayon::prelude::*;
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit, EligibilityWitness};
use zkcohort_circuits::identity::{signal_hash, IdentitySecret, StudyScope};
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::measure::{random_blinding, MeasureOpening};
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::MembershipPath;
use zkcohort_circuits::statement::Statement;
use zkcohort_cohort::query::CompiledQuery;

use crate::keys::{CircuitKeys, KeyedCircuit};
use crate::ProverError;

/// What a wallet knows when it asks for a proof.
#[derive(Clone, Debug)]
pub struct ProofRequest {
    /// The identity secret.
    pub secret: IdentitySecret,
    /// The issued record with its salt.
    pub record: IssuedRecord,
    /// The record leaf's path in the registry, rebuilt locally from downloaded leaves.
    pub registry_path: MembershipPath,
    /// The issuers the study accepts.
    pub issuers: IssuerSet,
    /// The study's compiled query.
    pub query: CompiledQuery,
    /// The study's scope.
    pub study_scope: StudyScope,
    /// The one-time receiver of the reward note ([`zkcohort_circuits::note::Note::receiver`]).
    pub reward_receiver: Fr,
}

impl ProofRequest {
    /// The statement and witness for a shape, the measure values committed under
    /// `measure_blinding` (a fresh random field element per proof).
    ///
    /// # Errors
    /// [`ProverError::Circuit`]: the record does not satisfy the query
    /// ([`zkcohort_circuits::CircuitError::NotEligible`]) or the data does not fit the shape.
    pub fn build(
        &self,
        shape: CircuitShape,
        measure_blinding: Fr,
    ) -> Result<(Statement, EligibilityWitness), ProverError> {
        let witness = EligibilityWitness::new(
            shape,
            &self.secret,
            &self.record,
            self.registry_path.clone(),
            &self.issuers,
            &self.query,
            measure_blinding,
        )?;
        let statement = witness.statement(
            self.study_scope,
            signal_hash(self.reward_receiver, self.study_scope),
        );
        Ok((statement, witness))
    }
}

/// A proof with the statement it proves and the opening of its measure commitment.
#[derive(Clone, Debug, PartialEq)]
pub struct EligibilityProof {
    /// The public inputs.
    pub statement: Statement,
    /// The Groth16 proof.
    pub proof: Proof<Bn254>,
    /// The measure values and blinding behind `statement.measure_commitment`: sent to
    /// the marketplace only, never published.
    pub measure_opening: MeasureOpening,
}

impl<S: KeyedCircuit> CircuitKeys<S> {
    /// Proves the assignment a circuit with values synthesizes, reusing the keys' matrices.
    pub(crate) fn prove_circuit<C, R>(
        &self,
        circuit: C,
        rng: &mut R,
    ) -> Result<Proof<Bn254>, ProverError>
    where
        C: ConstraintSynthesizer<Fr>,
        R: rand::RngCore + rand::CryptoRng,
    {
        let full_assignment = assignment_of(circuit)?;
        let (r, s) = (Fr::rand(rng), Fr::rand(rng));
        Ok(crate::groth16::create_proof(
            &self.proving_key,
            &self.matrices,
            &full_assignment,
            r,
            s,
        )?)
    }
}

/// The full assignment `[1, public inputs…, witnesses…]`: the circuit synthesized only to
/// collect values (no matrices, no cached linear-combination values).
fn assignment_of(circuit: impl ConstraintSynthesizer<Fr>) -> Result<Vec<Fr>, ProverError> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: false,
        generate_lc_assignments: false,
    });
    circuit.generate_constraints(cs.clone())?;
    let system = cs.borrow().ok_or(SynthesisError::MissingCS)?;
    Ok([system.instance_assignment()?, system.witness_assignment()?].concat())
}

/// How far a batch has come, passed with each finished proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchProgress {
    /// The request this result belongs to (its position in the input).
    pub index: usize,
    /// Results delivered so far, this one included.
    pub done: usize,
}

impl CircuitKeys {
    /// Proves a request with fresh randomness from the OS RNG.
    ///
    /// # Errors
    /// As [`ProofRequest::build`], or [`ProverError::Synthesis`].
    pub fn prove(&self, request: &ProofRequest) -> Result<EligibilityProof, ProverError> {
        self.prove_with_rng(request, &mut rand::rngs::OsRng)
    }

    /// Proves a request with randomness from `rng` (tests and benches use a seeded one).
    ///
    /// # Errors
    /// As [`ProofRequest::build`], or [`ProverError::Synthesis`].
    pub fn prove_with_rng<R: rand::RngCore + rand::CryptoRng>(
        &self,
        request: &ProofRequest,
        rng: &mut R,
    ) -> Result<EligibilityProof, ProverError> {
        let (statement, witness) = request.build(self.shape, random_blinding(rng))?;
        let measure_opening = witness.measure_opening();
        let proof = self.prove_witness(statement, witness, rng)?;
        Ok(EligibilityProof {
            statement,
            proof,
            measure_opening,
        })
    }

    /// Proves a prepared statement and witness.
    ///
    /// # Errors
    /// [`ProverError::Synthesis`] when the witness does not fit the shape.
    pub fn prove_witness<R: rand::RngCore + rand::CryptoRng>(
        &self,
        statement: Statement,
        witness: EligibilityWitness,
        rng: &mut R,
    ) -> Result<Proof<Bn254>, ProverError> {
        self.prove_circuit(EligibilityCircuit::new(self.shape, statement, witness), rng)
    }

    /// The full assignment `[1, public inputs…, witnesses…]` of a statement and its witness.
    ///
    /// # Errors
    /// [`ProverError::Synthesis`] when the witness does not fit the shape.
    pub fn full_assignment(
        &self,
        statement: Statement,
        witness: EligibilityWitness,
    ) -> Result<Vec<Fr>, ProverError> {
        assignment_of(EligibilityCircuit::new(self.shape, statement, witness))
    }

    /// Proves many requests in parallel (rayon, one proof per worker at a time), handing
    /// each result to `on_proof` as soon as it is ready, in completion order. Only the
    /// proofs in flight are held in memory. Randomness comes from the OS RNG.
    pub fn prove_batch<I, F>(&self, requests: I, on_proof: F)
    where
        I: IntoIterator<Item = ProofRequest>,
        I::IntoIter: Send,
        F: Fn(BatchProgress, Result<EligibilityProof, ProverError>) + Sync,
    {
        self.prove_batch_inner(requests, on_proof, |_| {
            StdRng::from_rng(rand::rngs::OsRng).expect("the OS RNG works")
        });
    }

    /// [`CircuitKeys::prove_batch`] with each proof's randomness derived from `seed`
    /// and its index (tests and benches).
    pub fn prove_batch_with_seed<I, F>(&self, requests: I, seed: u64, on_proof: F)
    where
        I: IntoIterator<Item = ProofRequest>,
        I::IntoIter: Send,
        F: Fn(BatchProgress, Result<EligibilityProof, ProverError>) + Sync,
    {
        self.prove_batch_inner(requests, on_proof, |index| {
            StdRng::seed_from_u64(seed ^ index as u64)
        });
    }

    fn prove_batch_inner<I, F, G>(&self, requests: I, on_proof: F, rng_for: G)
    where
        I: IntoIterator<Item = ProofRequest>,
        I::IntoIter: Send,
        F: Fn(BatchProgress, Result<EligibilityProof, ProverError>) + Sync,
        G: Fn(usize) -> StdRng + Sync,
    {
        let done = AtomicUsize::new(0);
        requests
            .into_iter()
            .enumerate()
            .par_bridge()
            .for_each(|(index, request)| {
                let result = self.prove_with_rng(&request, &mut rng_for(index));
                let done = done.fetch_add(1, Ordering::SeqCst) + 1;
                on_proof(BatchProgress { index, done }, result);
            });
    }
}
