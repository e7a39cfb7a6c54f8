//! A circuit's R1CS matrices A, B and C in compressed sparse rows: each row's terms as
//! (coefficient index, wire) pairs of 4 bytes each, and every distinct coefficient once
//! (1, −1, powers of two, Poseidon constants: a few thousand for 1.6 million terms).
//!
//! arkworks' `Vec<Vec<(Fr, usize)>>` spends 40 bytes a term and an allocation a row:
//! for the reference shape that was 60 MB of the prover's memory and a fifth of its key
//! load. Rows are merged when built (one term per wire, no zero coefficients), as the
//! circom formats and the ceremony need them.

use std::collections::HashMap;

use ark_bn254::Fr;
use ark_ff::{One, Zero};
use ark_relations::gr1cs::Matrix;
use rayon::prelude::*;

use crate::circom::put_u32;
use crate::codec::{put_fr, put_u64, Reader};

/// One term: an index into the coefficients and a wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Term {
    coefficient: u32,
    wire: u32,
}

/// The index of the coefficient 1 (its terms are added without a multiplication).
const ONE: u32 = 0;

/// The R1CS matrices of a shape, computed once and reused by every proof.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ConstraintMatrices {
    /// The instance variables: the constant 1 and the public inputs.
    pub(crate) num_inputs: usize,
    /// The rows of each matrix.
    pub(crate) num_constraints: usize,
    coefficients: Vec<Fr>,
    /// Per matrix, where each row's terms start, and the end of the last.
    row_starts: [Vec<u32>; 3],
    terms: [Vec<Term>; 3],
}

impl ConstraintMatrices {
    /// The matrices arkworks synthesized (A, B, C), rows merged.
    pub(crate) fn from_arkworks(
        matrices: &[Matrix<Fr>],
        num_inputs: usize,
        num_constraints: usize,
    ) -> Self {
        let mut index = HashMap::from([(Fr::one(), ONE)]);
        let mut coefficients = vec![Fr::one()];
        let mut convert = |matrix: &Matrix<Fr>| {
            let mut row_starts = Vec::with_capacity(num_constraints + 1);
            let mut terms = Vec::new();
            for row in matrix.iter().take(num_constraints) {
                row_starts.push(terms.len() as u32);
                for (value, wire) in merged(row) {
                    let coefficient = *index.entry(value).or_insert_with(|| {
                        coefficients.push(value);
                        coefficients.len() as u32 - 1
                    });
                    terms.push(Term {
                        coefficient,
                        wire: wire as u32,
                    });
                }
            }
            row_starts.resize(num_constraints + 1, terms.len() as u32);
            (row_starts, terms)
        };
        let [(a_starts, a), (b_starts, b), (c_starts, c)] =
            [0, 1, 2].map(|m| convert(&matrices[m]));
        ConstraintMatrices {
            num_inputs,
            num_constraints,
            coefficients,
            row_starts: [a_starts, b_starts, c_starts],
            terms: [a, b, c],
        }
    }

    /// The terms of a row of matrix `matrix` (0 = A, 1 = B, 2 = C), one per wire.
    pub(crate) fn row(&self, matrix: usize, row: usize) -> impl Iterator<Item = (Fr, usize)> + '_ {
        self.row_terms(matrix, row).iter().map(|term| {
            (
                self.coefficients[term.coefficient as usize],
                term.wire as usize,
            )
        })
    }

    fn row_terms(&self, matrix: usize, row: usize) -> &[Term] {
        let starts = &self.row_starts[matrix];
        &self.terms[matrix][starts[row] as usize..starts[row + 1] as usize]
    }

    /// A row of matrix `matrix` applied to an assignment (one holding every wire the
    /// matrices name: [`ConstraintMatrices::wires`]).
    pub(crate) fn evaluate(&self, matrix: usize, row: usize, assignment: &[Fr]) -> Fr {
        let mut sum = Fr::zero();
        for term in self.row_terms(matrix, row) {
            let value = assignment[term.wire as usize];
            if term.coefficient == ONE {
                sum += value;
            } else {
                sum += self.coefficients[term.coefficient as usize] * value;
            }
        }
        sum
    }

    /// One more than the highest wire any row names.
    pub(crate) fn wires(&self) -> usize {
        self.terms
            .iter()
            .flatten()
            .map(|term| term.wire as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// Appends the matrices in the key file's form (see [`crate::keys`]).
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        put_u64(out, self.num_inputs as u64);
        put_u64(out, self.num_constraints as u64);
        put_u64(out, self.coefficients.len() as u64);
        for coefficient in &self.coefficients {
            put_fr(out, coefficient);
        }
        for (starts, terms) in self.row_starts.iter().zip(&self.terms) {
            for start in starts {
                put_u32(out, *start);
            }
            put_u64(out, terms.len() as u64);
            for term in terms {
                put_u32(out, term.coefficient);
                put_u32(out, term.wire);
            }
        }
    }

    /// Reads what [`ConstraintMatrices::write`] wrote, checking that every row lies
    /// within the terms, every coefficient index within the coefficients and every wire
    /// below `wires`, so that evaluating a row cannot index out of range.
    pub(crate) fn read(reader: &mut Reader<'_>, wires: usize) -> Option<Self> {
        let num_inputs = usize::try_from(reader.u64()?).ok()?;
        let num_constraints = usize::try_from(reader.u64()?).ok()?;
        let count = usize::try_from(reader.u64()?).ok()?;
        let coefficients = reader.frs(count)?;
        if coefficients.first() != Some(&Fr::one()) {
            return None;
        }
        let mut read_matrix = || -> Option<(Vec<u32>, Vec<Term>)> {
            let starts = reader.u32s(num_constraints.checked_add(1)?)?;
            let count = usize::try_from(reader.u64()?).ok()?;
            let raw = reader.u32s(count.checked_mul(2)?)?;
            let terms: Vec<Term> = raw
                .chunks_exact(2)
                .map(|pair| Term {
                    coefficient: pair[0],
                    wire: pair[1],
                })
                .collect();
            let ordered = starts.windows(2).all(|pair| pair[0] <= pair[1])
                && starts.first() == Some(&0)
                && starts.last().map(|&end| end as usize) == Some(terms.len());
            let in_range = terms.par_iter().all(|term| {
                (term.coefficient as usize) < coefficients.len() && (term.wire as usize) < wires
            });
            (ordered && in_range).then_some((starts, terms))
        };
        let (a_starts, a) = read_matrix()?;
        let (b_starts, b) = read_matrix()?;
        let (c_starts, c) = read_matrix()?;
        Some(ConstraintMatrices {
            num_inputs,
            num_constraints,
            coefficients,
            row_starts: [a_starts, b_starts, c_starts],
            terms: [a, b, c],
        })
    }
}

/// A row with one term per wire, in wire order, without zero coefficients (circom writes
/// linear combinations so, and snarkjs keeps only the last coefficient of a repeated
/// wire).
fn merged(row: &[(Fr, usize)]) -> Vec<(Fr, usize)> {
    let mut terms = row.to_vec();
    terms.sort_by_key(|(_, wire)| *wire);
    let mut merged: Vec<(Fr, usize)> = Vec::with_capacity(terms.len());
    for (value, wire) in terms {
        match merged.last_mut() {
            Some((sum, last)) if *last == wire => *sum += value,
            _ => merged.push((value, wire)),
        }
    }
    merged.retain(|(value, _)| !value.is_zero());
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ConstraintMatrices {
        let two = Fr::from(2u64);
        let a = vec![
            vec![(Fr::one(), 1), (two, 3), (Fr::one(), 1)],
            vec![(Fr::from(5u64), 0)],
        ];
        let b = vec![vec![(Fr::one(), 2), (-Fr::one(), 2)], vec![(two, 2)]];
        let c = vec![vec![(Fr::from(7u64), 3)], vec![]];
        ConstraintMatrices::from_arkworks(&[a, b, c], 2, 2)
    }

    #[test]
    fn rows_are_merged_and_evaluate_as_written() {
        let matrices = sample();
        assert_eq!(
            matrices.row(0, 0).collect::<Vec<_>>(),
            vec![(Fr::from(2u64), 1), (Fr::from(2u64), 3)]
        );
        // 1·w2 − 1·w2 cancels: the row is empty.
        assert_eq!(matrices.row(1, 0).count(), 0);
        let assignment = [1u64, 3, 5, 7].map(Fr::from);
        assert_eq!(
            matrices.evaluate(0, 0, &assignment),
            Fr::from(2 * 3 + 2 * 7u64)
        );
        assert_eq!(matrices.evaluate(0, 1, &assignment), Fr::from(5u64));
        assert_eq!(matrices.evaluate(2, 0, &assignment), Fr::from(49u64));
        assert_eq!(matrices.wires(), 4);
    }

    #[test]
    fn the_stored_form_reads_back_and_bad_indices_are_refused() {
        let matrices = sample();
        let mut bytes = Vec::new();
        matrices.write(&mut bytes);
        assert_eq!(
            ConstraintMatrices::read(&mut Reader::new(&bytes), 4),
            Some(sample())
        );
        // A wire beyond the assignment.
        assert_eq!(ConstraintMatrices::read(&mut Reader::new(&bytes), 3), None);
        // Truncated.
        assert_eq!(
            ConstraintMatrices::read(&mut Reader::new(&bytes[..bytes.len() - 1]), 4),
            None
        );
        // A coefficient index past the coefficients: the last term's coefficient word.
        let mut bad = bytes.clone();
        let at = bad.len() - 8;
        bad[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(ConstraintMatrices::read(&mut Reader::new(&bad), 4), None);
    }
}
