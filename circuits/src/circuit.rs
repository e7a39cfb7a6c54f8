//! The eligibility circuit: one Groth16 statement that a registered, issuer-attested
//! record satisfies a study's query.
//!
//! Public inputs ([`Statement`]): `registry_root, query_hash, study_scope, nullifier,
//! signal_hash, issuers_root, measure_commitment`. The circuit proves knowledge of an
//! identity secret, a salted record summary, its issuer, a registry path, an
//! issuer-set path, the compiled query and a measure blinding such that
//! 1. `leaf = Poseidon(Poseidon(Poseidon(secret), Poseidon(slots_root, salt, catalog)),
//!    issuer_id, issued_at)` is under `registry_root`;
//! 2. `issuer_id` is non-zero and a leaf of the issuer set under `issuers_root`;
//! 3. every clause opens a slot of `slots_root` at the clause's slot index and tests it;
//!    OR within groups, AND across groups, negation per clause;
//! 4. `query_hash` is the hash of the same catalog tag, the index date, the clauses
//!    and the measures used;
//! 5. `nullifier = Poseidon(secret, study_scope)`;
//! 6. `signal_hash` is squared in a constraint, so it cannot be swapped on a copied proof;
//! 7. `measure_commitment` commits, under the blinding, to the values the study's
//!    measures take on the clauses' opened slots ([`crate::measure`]).

use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use zkcohort_cohort::query::CompiledQuery;

use crate::clause::gadget::{query_hash_gadget, ClauseVar};
use crate::clause::{encode_query, query_hash_dimensions, query_hash_of, ClauseEncoding};
use crate::encoding::{
    catalog_tag, encode_day, encode_slot, encode_view, fr_to_u64, EncodedView, SLOT_FIELDS,
};
use crate::identity::{IdentitySecret, StudyScope};
use crate::issuers::{IssuerId, IssuerSet};
use crate::measure::gadget::{measure_commitment_gadget, MeasureVar};
use crate::measure::{encode_measures, MeasureEncoding, MeasureOpening};
use crate::poseidon::gadget::{poseidon_hash2_gadget, poseidon_hash_gadget};
use crate::record::IssuedRecord;
use crate::registry::gadget::MembershipPathVar;
use crate::registry::MembershipPath;
pub use crate::shape::CircuitShape;
use crate::slots::gadget::slot_root_gadget;
use crate::slots::SlotTree;
use crate::statement::Statement;
use crate::{CircuitError, Fr};

/// One clause's private inputs: the clause and the slot it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClauseWitness {
    /// The encoded clause.
    pub clause: ClauseEncoding,
    /// The opened slot's encoded fields.
    pub slot: [Fr; SLOT_FIELDS],
    /// The clause's view of the slot, as the circuit computes it (for measures).
    pub view: EncodedView,
    /// The slot's siblings, three per level.
    pub siblings: Vec<[Fr; 3]>,
}

/// Everything the prover knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EligibilityWitness {
    /// The identity secret.
    pub identity_secret: Fr,
    /// The slot tree root (unsalted).
    pub slots_root: Fr,
    /// The record salt.
    pub salt: Fr,
    /// The catalog version's tag ([`catalog_tag`]).
    pub catalog_tag: Fr,
    /// The issuer's id ([`IssuerId`]).
    pub issuer_id: Fr,
    /// The issuer id's path in the study's issuer set.
    pub issuer_path: MembershipPath,
    /// The encoded issue day.
    pub issued_at: Fr,
    /// The registry path of the record's leaf.
    pub registry_path: MembershipPath,
    /// The encoded index date.
    pub index_date: Fr,
    /// One per clause of the shape, padding included.
    pub clauses: Vec<ClauseWitness>,
    /// One per measure slot of the shape, padding included: the encoding and the
    /// position its read slot selects ([`MeasureEncoding::selected`]).
    pub measures: Vec<(MeasureEncoding, usize)>,
    /// The blinding of the measure commitment.
    pub measure_blinding: Fr,
    /// Bins per measure in the shape (hashed into `query_hash` with the measures).
    pub measure_bins: usize,
}

impl EligibilityWitness {
    /// The witness for proving that `record` satisfies `query`.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] when the query, catalog or path does not fit the shape;
    /// [`CircuitError::NotEligible`] when the record does not satisfy the query (checked
    /// natively first, so a prover gets a clear answer instead of an unsatisfiable circuit).
    /// [`CircuitError::Issuers`] when the study does not accept the record's issuer.
    pub fn new(
        shape: CircuitShape,
        secret: &IdentitySecret,
        record: &IssuedRecord,
        registry_path: MembershipPath,
        issuers: &IssuerSet,
        query: &CompiledQuery,
        measure_blinding: Fr,
    ) -> Result<Self, CircuitError> {
        check_catalog(record, query)?;
        if !query.evaluate(&record.summary) {
            return Err(CircuitError::NotEligible);
        }
        let issuer_path = issuers.path(&record.issuer)?;
        Self::assemble(
            shape,
            secret,
            record,
            registry_path,
            issuer_path,
            query,
            measure_blinding,
        )
    }

    /// The witness without the native eligibility check: for a record that does not
    /// satisfy the query the circuit is unsatisfiable. Soundness tests use it.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] or [`CircuitError::OutOfRange`] when the data does not fit the shape.
    pub fn assemble(
        shape: CircuitShape,
        secret: &IdentitySecret,
        record: &IssuedRecord,
        registry_path: MembershipPath,
        issuer_path: MembershipPath,
        query: &CompiledQuery,
        measure_blinding: Fr,
    ) -> Result<Self, CircuitError> {
        shape.validate()?;
        check_catalog(record, query)?;
        if registry_path.depth() != shape.registry_depth {
            return Err(CircuitError::Shape(format!(
                "the registry path has depth {}, the circuit {}",
                registry_path.depth(),
                shape.registry_depth
            )));
        }
        if issuer_path.depth() != shape.issuer_depth {
            return Err(CircuitError::Shape(format!(
                "the issuer path has depth {}, the circuit {}",
                issuer_path.depth(),
                shape.issuer_depth
            )));
        }
        let tree = SlotTree::new(&record.summary, shape.slot_depth)?;
        let (index_date, encoded) = encode_query(query, shape.clauses, shape.slot_depth)?;
        let padded = query
            .padded(shape.clauses)
            .map_err(|error| CircuitError::Shape(error.message))?;
        let clauses = encoded
            .into_iter()
            .zip(&padded.clauses)
            .map(|(clause, compiled)| {
                let index = clause.slot as usize;
                let slot = record
                    .summary
                    .slots()
                    .get(index)
                    .copied()
                    .unwrap_or_default();
                Ok(ClauseWitness {
                    clause,
                    slot: encode_slot(&slot)?,
                    view: encode_view(&compiled.view(&slot))?,
                    siblings: tree.open(index)?.siblings,
                })
            })
            .collect::<Result<Vec<_>, CircuitError>>()?;
        let measures = encode_measures(query, shape.clauses, shape.measures, shape.measure_bins)?
            .into_iter()
            .map(|measure| {
                let selected = measure.selected(&clauses[measure.clause].view);
                (measure, selected)
            })
            .collect();
        Ok(EligibilityWitness {
            identity_secret: secret.0,
            slots_root: tree.root(),
            salt: record.salt.0,
            catalog_tag: catalog_tag(record.summary.catalog_version()),
            issuer_id: IssuerId::for_account(&record.issuer).0,
            issuer_path,
            issued_at: Fr::from(encode_day(record.issued_at)?),
            registry_path,
            index_date: Fr::from(index_date),
            clauses,
            measures,
            measure_blinding,
            measure_bins: shape.measure_bins,
        })
    }

    /// The measure values this witness commits to, with their blinding: what the
    /// wallet sends the marketplace beside the proof.
    pub fn measure_opening(&self) -> MeasureOpening {
        MeasureOpening {
            values: self
                .measures
                .iter()
                .map(|(measure, _)| {
                    let view = self
                        .clauses
                        .get(measure.clause)
                        .map_or(EncodedView::default(), |clause| clause.view);
                    measure.value(&view)
                })
                .collect(),
            blinding: self.measure_blinding,
        }
    }

    /// The public statement this witness proves, for a study and signal.
    pub fn statement(&self, study_scope: StudyScope, signal_hash: Fr) -> Statement {
        let secret = IdentitySecret(self.identity_secret);
        let record_root = crate::slots::record_root(
            self.slots_root,
            crate::slots::RecordSalt(self.salt),
            self.catalog_tag,
        );
        let leaf = crate::poseidon::poseidon_hash_fixed(&[
            crate::record::record_commitment(secret.commitment(), record_root),
            self.issuer_id,
            self.issued_at,
        ]);
        let clauses: Vec<ClauseEncoding> =
            self.clauses.iter().map(|clause| clause.clause).collect();
        let index_date = fr_to_u64(&self.index_date).unwrap_or(u64::MAX);
        let measures: Vec<MeasureEncoding> = self
            .measures
            .iter()
            .map(|(measure, _)| measure.clone())
            .collect();
        Statement {
            registry_root: self.registry_path.root_for(leaf),
            query_hash: query_hash_of(
                self.catalog_tag,
                index_date,
                &clauses,
                &measures,
                self.measure_bins,
            ),
            study_scope,
            nullifier: secret.nullifier(study_scope),
            signal_hash,
            issuers_root: self.issuer_path.root_for(self.issuer_id),
            measure_commitment: self.measure_opening().commitment().unwrap_or_default(),
        }
    }
}

fn check_catalog(record: &IssuedRecord, query: &CompiledQuery) -> Result<(), CircuitError> {
    if query.catalog_version != record.summary.catalog_version() {
        return Err(CircuitError::Shape(format!(
            "the query follows catalog {}, the record {}",
            query.catalog_version,
            record.summary.catalog_version()
        )));
    }
    Ok(())
}

/// The eligibility circuit for one shape; without a witness it serves key generation.
#[derive(Clone, Debug)]
pub struct EligibilityCircuit {
    shape: CircuitShape,
    assignment: Option<(Statement, EligibilityWitness)>,
}

impl EligibilityCircuit {
    /// A circuit without values, for setup.
    pub fn blank(shape: CircuitShape) -> Self {
        EligibilityCircuit {
            shape,
            assignment: None,
        }
    }

    /// A circuit with a statement and its witness, for proving.
    pub fn new(shape: CircuitShape, statement: Statement, witness: EligibilityWitness) -> Self {
        EligibilityCircuit {
            shape,
            assignment: Some((statement, witness)),
        }
    }

    /// The shape.
    pub fn shape(&self) -> CircuitShape {
        self.shape
    }
}

fn value<T>(assignment: Option<T>) -> Result<T, SynthesisError> {
    assignment.ok_or(SynthesisError::AssignmentMissing)
}

impl ConstraintSynthesizer<Fr> for EligibilityCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let shape = self.shape;
        shape
            .validate()
            .map_err(|_| SynthesisError::ArityMismatch)?;
        let statement = self
            .assignment
            .as_ref()
            .map(|(statement, _)| statement.to_public_inputs());
        let witness = self.assignment.as_ref().map(|(_, witness)| witness);
        if witness.is_some_and(|witness| {
            witness.clauses.len() != shape.clauses
                || witness.measures.len() != shape.measures
                || witness.measure_bins != shape.measure_bins
                || witness.measures.iter().any(|(measure, _)| {
                    measure.uppers.len() != shape.measure_bins || measure.clause >= shape.clauses
                })
        }) {
            return Err(SynthesisError::ArityMismatch);
        }
        let public = |position: usize| {
            FpVar::new_input(cs.clone(), || {
                value(statement.map(|inputs| inputs[position]))
            })
        };
        let private = |read: fn(&EligibilityWitness) -> Fr| {
            FpVar::new_witness(cs.clone(), || value(witness.map(read)))
        };

        let [registry_root, query_hash, study_scope, nullifier, signal_hash, issuers_root, measure_commitment] = [
            public(0)?,
            public(1)?,
            public(2)?,
            public(3)?,
            public(4)?,
            public(5)?,
            public(6)?,
        ];
        // An input no constraint touches could be changed freely on a valid proof.
        let _signal_square = signal_hash.square()?;

        let secret = private(|witness| witness.identity_secret)?;
        let identity_commitment = poseidon_hash_gadget(std::slice::from_ref(&secret))?;
        poseidon_hash2_gadget(&secret, &study_scope)?.enforce_equal(&nullifier)?;

        let slots_root = private(|witness| witness.slots_root)?;
        let salt = private(|witness| witness.salt)?;
        let catalog_tag = private(|witness| witness.catalog_tag)?;
        let record_root = poseidon_hash_gadget(&[slots_root.clone(), salt, catalog_tag.clone()])?;
        let record_commitment = poseidon_hash2_gadget(&identity_commitment, &record_root)?;
        let issuer_id = private(|witness| witness.issuer_id)?;
        let issued_at = private(|witness| witness.issued_at)?;
        let leaf = poseidon_hash_gadget(&[record_commitment, issuer_id.clone(), issued_at])?;
        let path =
            MembershipPathVar::new_witness_with_depth(cs.clone(), shape.registry_depth, || {
                value(witness.map(|witness| witness.registry_path.clone()))
            })?;
        path.root(&leaf)?.enforce_equal(&registry_root)?;
        // A zero id would open an empty position of the issuer set.
        issuer_id.enforce_not_equal(&FpVar::zero())?;
        let issuer_path =
            MembershipPathVar::new_witness_with_depth(cs.clone(), shape.issuer_depth, || {
                value(witness.map(|witness| witness.issuer_path.clone()))
            })?;
        issuer_path.root(&issuer_id)?.enforce_equal(&issuers_root)?;

        let index_date = private(|witness| witness.index_date)?;
        let mut hashed = vec![catalog_tag, index_date];
        let mut opened = Vec::with_capacity(shape.clauses);
        let mut all_groups = Boolean::TRUE;
        let mut group = Boolean::FALSE;
        for index in 0..shape.clauses {
            let clause_witness = witness.map(|witness| &witness.clauses[index]);
            let clause = ClauseVar::new_witness(
                &cs,
                clause_witness.map(|clause| &clause.clause),
                shape.slot_depth,
            )?;
            let slot: [FpVar<Fr>; SLOT_FIELDS] = (0..SLOT_FIELDS)
                .map(|field| {
                    FpVar::new_witness(cs.clone(), || {
                        value(clause_witness.map(|clause| clause.slot[field]))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
                .try_into()
                .map_err(|_| SynthesisError::ArityMismatch)?;
            let siblings = (0..shape.slot_depth / 2)
                .map(|level| {
                    let sibling = |position: usize| {
                        FpVar::new_witness(cs.clone(), || {
                            value(
                                clause_witness
                                    .and_then(|clause| clause.siblings.get(level))
                                    .map(|siblings| siblings[position]),
                            )
                        })
                    };
                    Ok([sibling(0)?, sibling(1)?, sibling(2)?])
                })
                .collect::<Result<Vec<_>, SynthesisError>>()?;
            let slot_leaf = poseidon_hash_gadget(&slot)?;
            slot_root_gadget(&slot_leaf, &clause.slot_bits, &siblings)?
                .enforce_equal(&slots_root)?;
            let outcome = clause.holds(&slot)?;
            let holds = outcome.holds;
            if index == 0 {
                group = holds;
            } else {
                // A new group may only start once the previous one holds.
                all_groups = &all_groups & &(&group | &!clause.starts_group.clone());
                group = clause.starts_group.select(&holds, &(&group | &holds))?;
            }
            hashed.extend(clause.words()?);
            opened.push(outcome.view);
        }
        (&all_groups & &group).enforce_equal(&Boolean::TRUE)?;

        let mut values = Vec::with_capacity(shape.measures);
        for index in 0..shape.measures {
            let measure = MeasureVar::new_witness(
                &cs,
                witness.map(|witness| {
                    let (encoding, selected) = &witness.measures[index];
                    (encoding, *selected)
                }),
                shape.clauses,
                shape.measure_bins,
            )?;
            hashed.extend(measure.elements()?);
            values.push(measure.value(&opened)?);
        }
        let measure_blinding = private(|witness| witness.measure_blinding)?;
        measure_commitment_gadget(&values, &measure_blinding)?
            .enforce_equal(&measure_commitment)?;
        let dimensions = query_hash_dimensions(shape.clauses, shape.measures, shape.measure_bins);
        query_hash_gadget(dimensions, &hashed)?.enforce_equal(&query_hash)?;
        Ok(())
    }
}
