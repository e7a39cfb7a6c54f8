//! Interop with the circom ecosystem: the eligibility circuit as an iden3 `.r1cs`
//! file, a full assignment as a `.wtns` file, and our proving key as a snarkjs
//! Groth16 `.zkey`, so snarkjs and rapidsnark prove our circuit with our key and
//! provers can be compared on identical inputs.
//!
//! All three are iden3 "binfiles": a 4-byte magic, a `u32` version, a `u32`
//! section count, then sections of `u32 id | u64 byte length | bytes`, every
//! integer little-endian (`@iden3/binfileutils`, `readBinFile`).
//!
//! Wires follow arkworks' variable order, which is also circom's: wire 0 is the
//! constant 1, wires 1..=7 the public inputs `registry_root, query_hash,
//! study_scope, nullifier, signal_hash, issuers_root, measure_commitment` (circom "public
//! inputs", no outputs),
//! then every witness variable (circom intermediate signals, no private inputs).
//!
//! - `.r1cs`, version 1 (`r1csfile`, `readR1csHeader`, `readConstraints`,
//!   `readMap`): section 1 header `n8 = 32 | prime r | nWires | nPubOut = 0 |
//!   nPubIn = 5 | nPrvIn = 0 | nLabels: u64 | nConstraints`; section 2 the
//!   constraints `A·w × B·w = C·w`, each linear combination `u32 count` then
//!   `u32 wire | 32-byte coefficient` in standard (not Montgomery) form; section 3
//!   the wire-to-label map, one `u64` per wire (here the identity).
//! - `.wtns`, version 2 (`snarkjs/src/wtns_utils.js`): section 1 `n8 = 32 | prime
//!   r | count`, section 2 the values, 32 bytes each in standard form.
//! - `.zkey`, version 1, ten sections, as `snarkjs zkey new` writes them
//!   (`snarkjs/src/zkey_new.js`, read back by `zkey_utils.js` `readHeader` and
//!   ark-circom's `src/zkey.rs`): 1 the protocol (`1` = Groth16); 2 `n8q | q | n8r
//!   | r | nVars | nPublic | domainSize | alpha1 | beta1 | beta2 | gamma2 | delta1 |
//!   delta2`; 3 `IC` (`nPublic + 1` points); 4 the coefficients of `A` and `B`:
//!   `u32 count`, then `u32 matrix (0 = A, 1 = B) | u32 constraint | u32 wire |
//!   32-byte value`, the value being `v·R² mod r` in standard form (`R = 2²⁵⁶`),
//!   followed by snarkjs's input rows `A[nConstraints + i][i] = 1` for the
//!   constant and every public input; 5 `A`, 6 `B` in G1, 7 `B` in G2 (`nVars`
//!   points each), 8 `C` (`nVars − nPublic − 1` points, the private wires), 9 `H`
//!   (`domainSize` points); 10 the contributions: a 64-byte circuit hash and a
//!   `u32` count, here zeros and 0 (snarkjs fills in a BLAKE2b hash of the points
//!   its own setup computed, which only `zkey verify` against a powers-of-tau
//!   file uses). Points are affine `x | y` with every base-field coordinate in
//!   Montgomery form, little-endian (`WasmCurve.toRprLEM`); the point at infinity
//!   is all zeros.
//!
//! This matches ark-groth16's key under [`CircomReduction`](crate::reduction):
//! arkworks' instance map adds the same input rows (`a[num_constraints + i] +=
//! 1`, `LibsnarkReduction::instance_map_with_evaluation`), its domain is the
//! same `(constraints + inputs).next_power_of_two()`, and its `h_query` holds
//! the odd Lagrange bases of the doubled domain over `delta`, which is what
//! snarkjs's `H` section holds.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ark_bn254::{Bn254, Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, Field, PrimeField};
use ark_groth16::ProvingKey;
use ark_relations::gr1cs::SynthesisError;
use zkcohort_circuits::circuit::EligibilityWitness;
use zkcohort_circuits::statement::Statement;

use crate::keys::{CircuitKeys, ConstraintMatrices};
use crate::ProverError;

/// The bytes of one field element in every iden3 file for BN254.
pub(crate) const N8: usize = 32;

/// The files [`export_circom`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircomFiles {
    /// The constraint system, `circuit.r1cs`.
    pub r1cs: PathBuf,
    /// The proving key, `circuit.zkey`.
    pub zkey: PathBuf,
    /// The full assignment, `witness.wtns`, when a witness was given.
    pub witness: Option<PathBuf>,
}

/// Writes `circuit.r1cs`, `circuit.zkey` and, given a statement and its witness,
/// `witness.wtns` into `folder` (created if needed), for snarkjs:
///
/// ```text
/// snarkjs r1cs info circuit.r1cs
/// snarkjs wtns check circuit.r1cs witness.wtns
/// snarkjs groth16 prove circuit.zkey witness.wtns proof.json public.json
/// snarkjs zkey export verificationkey circuit.zkey verification_key.json
/// ```
///
/// # Errors
/// [`ProverError::Io`] when a file cannot be written; with a witness, as
/// [`full_assignment`].
pub fn export_circom(
    keys: &CircuitKeys,
    folder: &Path,
    witness: Option<(Statement, EligibilityWitness)>,
) -> Result<CircomFiles, ProverError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProverError::Io { path, source }
    };
    std::fs::create_dir_all(folder).map_err(io_error(folder))?;
    // The witness first: a witness that does not satisfy the circuit writes nothing.
    let assignment = witness
        .map(|(statement, witness)| full_assignment(keys, statement, witness))
        .transpose()?;
    let write = |name: &str, writer: &dyn Fn(&mut Vec<u8>) -> io::Result<()>| {
        let path = folder.join(name);
        let mut bytes = Vec::new();
        writer(&mut bytes).map_err(io_error(&path))?;
        std::fs::write(&path, bytes).map_err(io_error(&path))?;
        Ok::<_, ProverError>(path)
    };
    let r1cs = write("circuit.r1cs", &|out: &mut Vec<u8>| write_r1cs(keys, out))?;
    let zkey = write("circuit.zkey", &|out: &mut Vec<u8>| write_zkey(keys, out))?;
    let witness = assignment
        .map(|assignment| {
            write("witness.wtns", &|out: &mut Vec<u8>| {
                write_wtns(&assignment, out)
            })
        })
        .transpose()?;
    Ok(CircomFiles {
        r1cs,
        zkey,
        witness,
    })
}

/// The full assignment `[1, public inputs…, witnesses…]` of a statement and its
/// witness, in wire order, checked against the circuit's constraints.
///
/// # Errors
/// [`ProverError::Synthesis`] when the witness does not fit the shape, or
/// ([`SynthesisError::Unsatisfiable`]) when the assignment does not satisfy every
/// constraint, e.g. a statement that is not the witness's.
pub fn full_assignment(
    keys: &CircuitKeys,
    statement: Statement,
    witness: EligibilityWitness,
) -> Result<Vec<Fr>, ProverError> {
    let assignment = keys.full_assignment(statement, witness)?;
    if assignment.len() != wire_count(keys) || !is_satisfied(keys, &assignment) {
        return Err(SynthesisError::Unsatisfiable.into());
    }
    Ok(assignment)
}

/// Whether a full assignment satisfies every constraint of the keys' shape.
pub fn is_satisfied(keys: &CircuitKeys, assignment: &[Fr]) -> bool {
    let matrices = &keys.matrices;
    assignment.len() >= matrices.wires()
        && (0..matrices.num_constraints).all(|row| {
            matrices.evaluate(0, row, assignment) * matrices.evaluate(1, row, assignment)
                == matrices.evaluate(2, row, assignment)
        })
}

/// Writes the circuit of the keys' shape as an iden3 `.r1cs` file (see the module
/// documentation for the layout).
///
/// # Errors
/// As `out`'s writes.
pub fn write_r1cs(keys: &CircuitKeys, out: &mut impl Write) -> io::Result<()> {
    write_r1cs_parts(&keys.matrices, wire_count(keys), out)
}

/// [`write_r1cs`] for the matrices of a circuit with `wires` wires.
pub(crate) fn write_r1cs_parts(
    matrices: &ConstraintMatrices,
    wires: usize,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut header = Vec::new();
    put_u32(&mut header, N8 as u32);
    header.extend_from_slice(&Fr::MODULUS.to_bytes_le());
    put_u32(&mut header, wires as u32);
    put_u32(&mut header, 0); // outputs
                             // Public inputs: every instance variable but the constant one.
    put_u32(&mut header, (matrices.num_inputs - 1) as u32);
    put_u32(&mut header, 0); // private inputs
    header.extend_from_slice(&(wires as u64).to_le_bytes()); // labels
    put_u32(&mut header, matrices.num_constraints as u32);

    let mut constraints = Vec::new();
    for row in 0..matrices.num_constraints {
        for matrix in 0..3 {
            put_u32(&mut constraints, matrices.row(matrix, row).count() as u32);
            for (coefficient, wire) in matrices.row(matrix, row) {
                put_u32(&mut constraints, wire as u32);
                constraints.extend_from_slice(&standard(coefficient));
            }
        }
    }

    let mut labels = Vec::with_capacity(8 * wires);
    for wire in 0..wires as u64 {
        labels.extend_from_slice(&wire.to_le_bytes());
    }
    write_binfile(
        out,
        b"r1cs",
        1,
        &[(1, header), (2, constraints), (3, labels)],
    )
}

/// Writes a full assignment (see [`full_assignment`]) as an iden3 `.wtns` file
/// (see the module documentation for the layout).
///
/// # Errors
/// As `out`'s writes.
pub fn write_wtns(assignment: &[Fr], out: &mut impl Write) -> io::Result<()> {
    let mut header = Vec::new();
    put_u32(&mut header, N8 as u32);
    header.extend_from_slice(&Fr::MODULUS.to_bytes_le());
    put_u32(&mut header, assignment.len() as u32);
    let mut values = Vec::with_capacity(N8 * assignment.len());
    for value in assignment {
        values.extend_from_slice(&standard(*value));
    }
    write_binfile(out, b"wtns", 2, &[(1, header), (2, values)])
}

/// Writes the proving key as a snarkjs Groth16 `.zkey` file (see the module
/// documentation for the layout).
///
/// # Errors
/// As `out`'s writes; [`io::ErrorKind::InvalidData`] when the key does not have
/// the sizes of the keys' shape under snarkjs's reduction.
pub fn write_zkey(keys: &CircuitKeys, out: &mut impl Write) -> io::Result<()> {
    let mut contributions = vec![0u8; 64];
    put_u32(&mut contributions, 0);
    write_zkey_parts(&keys.proving_key, &keys.matrices, contributions, out)
}

/// [`write_zkey`] for a proving key and the matrices of its circuit, with the given
/// contributions section (the ceremony writes its own: circuit hash and contributions).
pub(crate) fn write_zkey_parts(
    key: &ProvingKey<Bn254>,
    matrices: &ConstraintMatrices,
    contributions: Vec<u8>,
    out: &mut impl Write,
) -> io::Result<()> {
    let wires = matrices.num_inputs + key.l_query.len();
    let public = matrices.num_inputs - 1;
    let domain_size = (matrices.num_constraints + matrices.num_inputs).next_power_of_two();
    let sizes = [
        (key.vk.gamma_abc_g1.len(), public + 1, "IC"),
        (key.a_query.len(), wires, "A"),
        (key.b_g1_query.len(), wires, "B1"),
        (key.b_g2_query.len(), wires, "B2"),
        (key.l_query.len(), wires - public - 1, "C"),
        (key.h_query.len(), domain_size, "H"),
    ];
    if let Some((found, expected, name)) =
        sizes.iter().find(|(found, expected, _)| found != expected)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the proving key's {name} has {found} points, the circuit needs {expected}"),
        ));
    }
    let montgomery = MontgomeryForm::new();

    let mut protocol = Vec::new();
    put_u32(&mut protocol, 1); // Groth16

    let mut header = Vec::new();
    put_u32(&mut header, N8 as u32);
    header.extend_from_slice(&Fq::MODULUS.to_bytes_le());
    put_u32(&mut header, N8 as u32);
    header.extend_from_slice(&Fr::MODULUS.to_bytes_le());
    put_u32(&mut header, wires as u32);
    put_u32(&mut header, public as u32);
    put_u32(&mut header, domain_size as u32);
    montgomery.g1(&mut header, &key.vk.alpha_g1);
    montgomery.g1(&mut header, &key.beta_g1);
    montgomery.g2(&mut header, &key.vk.beta_g2);
    montgomery.g2(&mut header, &key.vk.gamma_g2);
    montgomery.g1(&mut header, &key.delta_g1);
    montgomery.g2(&mut header, &key.vk.delta_g2);

    // snarkjs multiplies the stored value by the witness in Montgomery form
    // (`groth16_prove.js`, `buildABC1`), so it stores `v·R²`: `v·R` in Montgomery form.
    let mut coefficients = Vec::new();
    let mut count = 0u32;
    let mut put_coefficient = |matrix: u32, row: usize, wire: usize, value: Fr| {
        put_u32(&mut coefficients, matrix);
        put_u32(&mut coefficients, row as u32);
        put_u32(&mut coefficients, wire as u32);
        coefficients.extend_from_slice(&standard(value * montgomery.r2));
        count += 1;
    };
    for row in 0..matrices.num_constraints {
        for matrix in 0..2 {
            for (value, wire) in matrices.row(matrix, row) {
                put_coefficient(matrix as u32, row, wire, value);
            }
        }
    }
    for input in 0..=public {
        put_coefficient(0, matrices.num_constraints + input, input, Fr::ONE);
    }
    let mut coefficients_section = Vec::with_capacity(4 + coefficients.len());
    put_u32(&mut coefficients_section, count);
    coefficients_section.extend_from_slice(&coefficients);

    let g1_section = |points: &[G1Affine]| {
        let mut bytes = Vec::with_capacity(2 * N8 * points.len());
        points
            .iter()
            .for_each(|point| montgomery.g1(&mut bytes, point));
        bytes
    };
    let mut b2 = Vec::with_capacity(4 * N8 * key.b_g2_query.len());
    key.b_g2_query
        .iter()
        .for_each(|point| montgomery.g2(&mut b2, point));
    write_binfile(
        out,
        b"zkey",
        1,
        &[
            (1, protocol),
            (2, header),
            (3, g1_section(&key.vk.gamma_abc_g1)),
            (4, coefficients_section),
            (5, g1_section(&key.a_query)),
            (6, g1_section(&key.b_g1_query)),
            (7, b2),
            (8, g1_section(&key.l_query)),
            (9, g1_section(&key.h_query)),
            (10, contributions),
        ],
    )
}

/// The number of wires: the constant, the public inputs and the witnesses.
fn wire_count(keys: &CircuitKeys) -> usize {
    keys.matrices.num_inputs + keys.proving_key.l_query.len()
}

/// A scalar in standard form, little-endian.
pub(crate) fn standard(value: Fr) -> Vec<u8> {
    value.into_bigint().to_bytes_le()
}

pub(crate) fn put_u32(bytes: &mut Vec<u8>, value: u32) {
    bytes.extend_from_slice(&value.to_le_bytes());
}

/// Curve points in snarkjs's Montgomery encoding, computed through the public
/// field API: the Montgomery form of `x` is the standard form of `x·R`.
pub(crate) struct MontgomeryForm {
    /// `R = 2²⁵⁶ mod q`.
    r: Fq,
    /// `R² mod r` in the scalar field, for the coefficient section.
    r2: Fr,
}

impl MontgomeryForm {
    pub(crate) fn new() -> Self {
        let r = Fq::from(2u64).pow([256u64]);
        let r_scalar = Fr::from(2u64).pow([256u64]);
        MontgomeryForm {
            r,
            r2: r_scalar.square(),
        }
    }

    fn fq(&self, bytes: &mut Vec<u8>, value: Fq) {
        bytes.extend_from_slice(&(value * self.r).into_bigint().to_bytes_le());
    }

    fn fq2(&self, bytes: &mut Vec<u8>, value: Fq2) {
        self.fq(bytes, value.c0);
        self.fq(bytes, value.c1);
    }

    pub(crate) fn g1(&self, bytes: &mut Vec<u8>, point: &G1Affine) {
        match point.xy() {
            Some((x, y)) => {
                self.fq(bytes, x);
                self.fq(bytes, y);
            }
            None => bytes.extend_from_slice(&[0; 2 * N8]),
        }
    }

    pub(crate) fn g2(&self, bytes: &mut Vec<u8>, point: &G2Affine) {
        match point.xy() {
            Some((x, y)) => {
                self.fq2(bytes, x);
                self.fq2(bytes, y);
            }
            None => bytes.extend_from_slice(&[0; 4 * N8]),
        }
    }
}

/// Writes an iden3 binfile: magic, version, section count, then the sections.
pub(crate) fn write_binfile(
    out: &mut impl Write,
    magic: &[u8; 4],
    version: u32,
    sections: &[(u32, Vec<u8>)],
) -> io::Result<()> {
    out.write_all(magic)?;
    out.write_all(&version.to_le_bytes())?;
    out.write_all(&(sections.len() as u32).to_le_bytes())?;
    for (id, bytes) in sections {
        out.write_all(&id.to_le_bytes())?;
        out.write_all(&(bytes.len() as u64).to_le_bytes())?;
        out.write_all(bytes)?;
    }
    out.flush()
}
