//! Circuit keys: setup per shape, key files, and the circuit id (the SHA-256 of the
//! compressed verifying key) that names the circuit everywhere.
//!
//! Setup here is a single-party development setup: whoever runs it knows the toxic
//! waste and could forge proofs. Production keys come from a multi-party ceremony.
//!
//! Proving key file (`proving-key-c{clauses}-s{slot_depth}-r{registry_depth}-i{issuer_depth}.bin`):
//! `"ZKCOHORT-PK" 0x00 | format u32 | clauses u32 | slot depth u32 | registry depth u32
//! | issuer depth u32 | circuit id [32] | SHA-256 of payload [32] | payload`, the payload being the key
//! followed by the shape's R1CS matrices (see `encode_payload`): field elements as their
//! Montgomery limbs, so that loading copies them instead of converting each coordinate,
//! and the matrices in compressed sparse rows. The matrices are stored because deriving
//! them (synthesis and inlining every linear combination, ~0.6 s for the reference
//! shape) costs more than loading the rest.
//!
//! What is checked where:
//! - [`CircuitKeys::load`] (a key this machine made or already checked) checks the
//!   header and the checksum and that the embedded verifying key hashes to the circuit id
//!   in the header, and skips arkworks' curve and subgroup checks, which dominate a naive
//!   load. The checksum catches corruption and truncation, not tampering: anyone can
//!   recompute it.
//! - [`CircuitKeys::load_checked`] (a key given to a wallet) also checks every point on
//!   the curve and in the prime-order subgroup (with coordinates below the modulus), that
//!   the circuit id is the one announced,
//!   and that the proving key's `β·G1` and `δ·G1` have the ratio of the verifying key's
//!   `β·G2` and `δ·G2` (a pairing). A key that passes can still be wrong in its queries: its proofs
//!   would then fail to verify, which costs the wallet a proof but not soundness, which
//!   rests on the verifier's key. [`crate::ceremony::transcript::check_keys`] compares
//!   the whole key with a verified ceremony transcript.
//! - [`check_verifying_key`] (the server, at start) checks the verifying key's points,
//!   `γ ≠ δ` (a key with `γ = δ` lets anyone move public inputs into `C`) and its id.

use std::path::{Path, PathBuf};

use ark_bn254::{Bn254, Fr, G1Affine, G2Affine};
use ark_ec::pairing::Pairing;
use ark_groth16::{Groth16, PreparedVerifyingKey, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisError, SynthesisMode,
    R1CS_PREDICATE_LABEL,
};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use ark_snark::SNARK;
use sha2::{Digest, Sha256};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit};
use zkcohort_circuits::note::circuit::NoteTransferCircuit;
use zkcohort_circuits::shape::NoteShape;
use zkcohort_circuits::CircuitError;

use crate::codec::{g1_canonical, g2_canonical, put_g1s, put_g2s, put_u64, Reader};
pub(crate) use crate::matrices::ConstraintMatrices;
use crate::reduction::CircomReduction;
use crate::ProverError;

const MAGIC: &[u8; 12] = b"ZKCOHORT-PK\0";
/// The key file format. It changes whenever a circuit does (6: a word names the circuit,
/// eligibility or note transfer), since a key file holds that circuit's matrices and keys,
/// and when the payload's encoding does (7: raw Montgomery limbs, matrices in sparse rows).
const FORMAT: u32 = 7;
const SHAPE_WORDS: usize = 4;
const CIRCUIT_ID_AT: usize = 12 + 4 * (2 + SHAPE_WORDS);
/// The key file's header length: the payload starts here, right after the payload's
/// SHA-256 (the header's last 32 bytes).
pub const HEADER: usize = CIRCUIT_ID_AT + 32 + 32;

/// Groth16 over BN254 with snarkjs's reduction.
pub(crate) type Snark = Groth16<Bn254, CircomReduction>;

pub use zkcohort_circuits::CircuitId;

/// A circuit that keys are made for: the eligibility circuit of a [`CircuitShape`] or the
/// note-transfer circuit of a [`NoteShape`]. Both go through the same setup path (a
/// development setup, or a ceremony's phase 2 over one phase 1) and the same key files.
pub trait KeyedCircuit: Copy + Eq + std::fmt::Debug + Send + Sync {
    /// The circuit synthesized at setup.
    type Blank: ConstraintSynthesizer<Fr>;

    /// The circuit without values.
    fn blank(self) -> Self::Blank;

    /// Checks the dimensions.
    ///
    /// # Errors
    /// The circuit crate's error for a dimension out of range.
    fn validate(self) -> Result<(), CircuitError>;

    /// The key file's words after the format: which circuit, then its dimensions.
    fn header_words(self) -> [u32; 1 + SHAPE_WORDS];

    /// The key file's name without extension, for example `proving-key-c6-s8-r8-i1`.
    fn file_stem(self) -> String;
}

/// The header word that names the eligibility circuit.
const ELIGIBILITY_KIND: u32 = 1;
/// The header word that names the note-transfer circuit.
const NOTE_TRANSFER_KIND: u32 = 2;

impl KeyedCircuit for CircuitShape {
    type Blank = EligibilityCircuit;

    fn blank(self) -> EligibilityCircuit {
        EligibilityCircuit::blank(self)
    }

    fn validate(self) -> Result<(), CircuitError> {
        CircuitShape::validate(&self)
    }

    fn header_words(self) -> [u32; 1 + SHAPE_WORDS] {
        [
            ELIGIBILITY_KIND,
            self.clauses as u32,
            self.slot_depth as u32,
            self.registry_depth as u32,
            self.issuer_depth as u32,
        ]
    }

    fn file_stem(self) -> String {
        format!(
            "proving-key-c{}-s{}-r{}-i{}",
            self.clauses, self.slot_depth, self.registry_depth, self.issuer_depth
        )
    }
}

impl KeyedCircuit for NoteShape {
    type Blank = NoteTransferCircuit;

    fn blank(self) -> NoteTransferCircuit {
        NoteTransferCircuit::blank(self.tree_depth)
    }

    fn validate(self) -> Result<(), CircuitError> {
        NoteShape::validate(&self)
    }

    fn header_words(self) -> [u32; 1 + SHAPE_WORDS] {
        [NOTE_TRANSFER_KIND, self.tree_depth as u32, 0, 0, 0]
    }

    fn file_stem(self) -> String {
        format!("note-proving-key-d{}", self.tree_depth)
    }
}

impl ConstraintMatrices {
    fn of<S: KeyedCircuit>(shape: S) -> Result<Self, ProverError> {
        Ok(Self::with_wires(shape)?.0)
    }

    /// The matrices and the number of wires (the constant, the inputs and the witnesses).
    pub(crate) fn with_wires<S: KeyedCircuit>(shape: S) -> Result<(Self, usize), ProverError> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        shape.blank().generate_constraints(cs.clone())?;
        cs.finalize();
        let mut all = cs.to_matrices()?;
        let matrices = all
            .remove(R1CS_PREDICATE_LABEL)
            .ok_or(SynthesisError::MissingCS)?;
        let matrices = ConstraintMatrices::from_arkworks(
            &matrices,
            cs.num_instance_variables(),
            cs.num_constraints(),
        );
        Ok((
            matrices,
            cs.num_instance_variables() + cs.num_witness_variables(),
        ))
    }
}

/// Everything needed to prove for one circuit: the eligibility circuit of a shape by
/// default, or the note-transfer circuit (`CircuitKeys<NoteShape>`).
pub struct CircuitKeys<S: KeyedCircuit = CircuitShape> {
    pub(crate) shape: S,
    pub(crate) proving_key: ProvingKey<Bn254>,
    pub(crate) prepared: PreparedVerifyingKey<Bn254>,
    pub(crate) matrices: ConstraintMatrices,
    circuit_id: CircuitId,
}

impl<S: KeyedCircuit> CircuitKeys<S> {
    /// A single-party development setup from the OS RNG.
    ///
    /// # Errors
    /// [`ProverError::Synthesis`] if the shape cannot be synthesized.
    pub fn setup(shape: S) -> Result<Self, ProverError> {
        Self::setup_with_rng(shape, &mut rand::rngs::OsRng)
    }

    /// A single-party development setup from the given RNG (tests and benches).
    ///
    /// # Errors
    /// [`ProverError::Synthesis`] if the shape cannot be synthesized.
    pub fn setup_with_rng<R: rand::RngCore + rand::CryptoRng>(
        shape: S,
        rng: &mut R,
    ) -> Result<Self, ProverError> {
        shape.validate()?;
        let (proving_key, _) = Snark::circuit_specific_setup(shape.blank(), rng)?;
        Self::from_proving_key(shape, proving_key)
    }

    fn from_proving_key(shape: S, proving_key: ProvingKey<Bn254>) -> Result<Self, ProverError> {
        let matrices = ConstraintMatrices::of(shape)?;
        Self::from_parts(shape, proving_key, matrices)
    }

    pub(crate) fn from_parts(
        shape: S,
        proving_key: ProvingKey<Bn254>,
        matrices: ConstraintMatrices,
    ) -> Result<Self, ProverError> {
        let prepared = Snark::process_vk(&proving_key.vk)?;
        let circuit_id = CircuitId::of(&proving_key.vk);
        Ok(CircuitKeys {
            shape,
            matrices,
            proving_key,
            prepared,
            circuit_id,
        })
    }

    /// The shape the keys are for.
    pub fn shape(&self) -> S {
        self.shape
    }

    /// The circuit id.
    pub fn circuit_id(&self) -> CircuitId {
        self.circuit_id
    }

    /// The number of constraints of the circuit (without the rows snarkjs's reduction adds
    /// per public input).
    pub fn constraints(&self) -> usize {
        self.matrices.num_constraints
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey<Bn254> {
        &self.proving_key.vk
    }

    /// The verifying key prepared for pairings.
    pub fn prepared_verifying_key(&self) -> &PreparedVerifyingKey<Bn254> {
        &self.prepared
    }

    /// The proving key.
    pub fn proving_key(&self) -> &ProvingKey<Bn254> {
        &self.proving_key
    }

    /// The proving key file for a shape in `folder`.
    pub fn proving_key_path(folder: &Path, shape: S) -> PathBuf {
        folder.join(format!("{}.bin", shape.file_stem()))
    }

    /// Writes the proving key file into `folder` (created if needed) and returns its path.
    ///
    /// # Errors
    /// [`ProverError::Io`] when the folder or file cannot be written.
    pub fn save(&self, folder: &Path) -> Result<PathBuf, ProverError> {
        let path = Self::proving_key_path(folder, self.shape);
        let io = |source| ProverError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(folder).map_err(io)?;
        let payload = encode_payload(&self.proving_key, &self.matrices).map_err(|error| {
            ProverError::KeyFile {
                path: path.clone(),
                reason: error.to_string(),
            }
        })?;
        let mut file = Vec::with_capacity(HEADER + payload.len());
        file.extend_from_slice(MAGIC);
        for value in std::iter::once(FORMAT).chain(self.shape.header_words()) {
            file.extend_from_slice(&value.to_le_bytes());
        }
        file.extend_from_slice(&self.circuit_id.0);
        file.extend_from_slice(&Sha256::digest(&payload));
        file.extend_from_slice(&payload);
        // Write then rename, so a crash never leaves a half-written key under the final name.
        let partial = path.with_extension("bin.partial");
        std::fs::write(&partial, &file).map_err(io)?;
        std::fs::rename(&partial, &path).map_err(io)?;
        Ok(path)
    }

    /// Loads the proving key of `shape` from `folder` (see the module documentation for
    /// what is checked).
    ///
    /// # Errors
    /// [`ProverError::Io`] when the file cannot be read; [`ProverError::KeyFile`] when it
    /// is not a zkcohort key for this shape, is truncated or corrupt, or its verifying
    /// key does not match its circuit id.
    pub fn load(folder: &Path, shape: S) -> Result<Self, ProverError> {
        Self::load_from(folder, shape, false)
    }

    /// Loads a proving key someone else made, checked as a wallet must (see the module
    /// documentation): every point, the announced circuit id, and the proving key
    /// against its verifying key.
    ///
    /// # Errors
    /// As [`CircuitKeys::load`]; [`ProverError::KeyFile`] for a point off the curve or
    /// outside the subgroup, another circuit id, or a proving key that does not match
    /// its verifying key.
    pub fn load_checked(
        folder: &Path,
        shape: S,
        announced: CircuitId,
    ) -> Result<Self, ProverError> {
        let keys = Self::load_from(folder, shape, true)?;
        let bad = |reason: String| ProverError::KeyFile {
            path: Self::proving_key_path(folder, shape),
            reason,
        };
        if keys.circuit_id != announced {
            return Err(bad(format!(
                "the key is for circuit {}, the announced circuit is {announced}",
                keys.circuit_id
            )));
        }
        check_verifying_key(keys.verifying_key(), announced)
            .map_err(|error| bad(error.to_string()))?;
        // β and δ in G1 against β and δ in G2, through their ratio, which does not depend
        // on the generators (arkworks' setup draws random ones): e(β₁, δ₂) = e(δ₁, β₂).
        let key = &keys.proving_key;
        if Bn254::pairing(key.beta_g1, key.vk.delta_g2)
            != Bn254::pairing(key.delta_g1, key.vk.beta_g2)
        {
            return Err(bad(
                "the proving key's beta and delta do not match the verifying key's".into(),
            ));
        }
        Ok(keys)
    }

    fn load_from(folder: &Path, shape: S, checked: bool) -> Result<Self, ProverError> {
        let path = Self::proving_key_path(folder, shape);
        let file = std::fs::read(&path).map_err(|source| ProverError::Io {
            path: path.clone(),
            source,
        })?;
        let bad = |reason: &str| ProverError::KeyFile {
            path: path.clone(),
            reason: reason.to_string(),
        };
        if file.len() < HEADER || &file[..12] != MAGIC {
            return Err(bad("not a zkcohort proving key"));
        }
        let word = |index: usize| {
            u32::from_le_bytes(
                file[12 + 4 * index..16 + 4 * index]
                    .try_into()
                    .expect("4 bytes"),
            )
        };
        if word(0) != FORMAT {
            return Err(ProverError::KeyFormat {
                path: path.clone(),
                found: word(0),
                expected: FORMAT,
            });
        }
        if [word(1), word(2), word(3), word(4), word(5)] != shape.header_words() {
            return Err(bad("the key is for another circuit or circuit shape"));
        }
        let circuit_id = CircuitId(
            file[CIRCUIT_ID_AT..CIRCUIT_ID_AT + 32]
                .try_into()
                .expect("32 bytes"),
        );
        let checksum: [u8; 32] = file[CIRCUIT_ID_AT + 32..HEADER]
            .try_into()
            .expect("32 bytes");
        let payload = &file[HEADER..];
        // Checking the checksum and decoding are independent reads of the same bytes.
        let (digest, decoded) = rayon::join(
            || <[u8; 32]>::from(Sha256::digest(payload)),
            || decode_payload(payload),
        );
        if digest != checksum {
            return Err(bad(
                "checksum mismatch: the file is truncated or corrupt; run setup again",
            ));
        }
        let (proving_key, matrices) = decoded.map_err(bad)?;
        if checked && !points_are_valid(&proving_key) {
            return Err(bad(
                "unreadable key: a point is off the curve or outside the prime-order subgroup, \
                 or a coordinate is not below the modulus",
            ));
        }
        if CircuitId::of(&proving_key.vk) != circuit_id {
            return Err(bad(
                "the embedded verifying key does not match the circuit id",
            ));
        }
        Self::from_parts(shape, proving_key, matrices)
    }
}

/// The key file's payload: the verifying key (arkworks' uncompressed form, its length
/// first), `β·G1` and `δ·G1`, the A, B (G1), B (G2), H and L queries in the raw form of
/// [`crate::codec`], then the matrices ([`ConstraintMatrices::write`]).
fn encode_payload(
    key: &ProvingKey<Bn254>,
    matrices: &ConstraintMatrices,
) -> Result<Vec<u8>, ark_serialize::SerializationError> {
    let mut vk = Vec::new();
    key.vk.serialize_uncompressed(&mut vk)?;
    let mut payload = Vec::with_capacity(vk.len() + 64 * 5 * key.h_query.len());
    put_u64(&mut payload, vk.len() as u64);
    payload.extend_from_slice(&vk);
    put_g1s(&mut payload, &[key.beta_g1, key.delta_g1]);
    put_g1s(&mut payload, &key.a_query);
    put_g1s(&mut payload, &key.b_g1_query);
    put_g2s(&mut payload, &key.b_g2_query);
    put_g1s(&mut payload, &key.h_query);
    put_g1s(&mut payload, &key.l_query);
    matrices.write(&mut payload);
    Ok(payload)
}

/// Reads what [`encode_payload`] wrote, or says why it cannot: a verifying key point off
/// the curve, or anything malformed or left over.
fn decode_payload(payload: &[u8]) -> Result<(ProvingKey<Bn254>, ConstraintMatrices), &'static str> {
    let mut reader = Reader::new(payload);
    let vk_bytes = reader
        .u64()
        .and_then(|length| reader.bytes(usize::try_from(length).ok()?))
        .ok_or(MALFORMED)?;
    let vk = VerifyingKey::deserialize_uncompressed(vk_bytes).map_err(|_| {
        "unreadable key: a point of its verifying key is off the curve or outside the \
         prime-order subgroup, or the verifying key is malformed"
    })?;
    decode_proving_key(&mut reader, vk).ok_or(MALFORMED)
}

const MALFORMED: &str = "unreadable key: the encoding is malformed";

fn decode_proving_key(
    reader: &mut Reader<'_>,
    vk: VerifyingKey<Bn254>,
) -> Option<(ProvingKey<Bn254>, ConstraintMatrices)> {
    let [beta_g1, delta_g1]: [G1Affine; 2] = reader.g1s()?.try_into().ok()?;
    let a_query = reader.g1s()?;
    let b_g1_query = reader.g1s()?;
    let b_g2_query = reader.g2s()?;
    let h_query = reader.g1s()?;
    let l_query = reader.g1s()?;
    let wires = a_query.len();
    let matrices = ConstraintMatrices::read(reader, wires)?;
    let consistent = reader.is_empty()
        && b_g1_query.len() == wires
        && b_g2_query.len() == wires
        && matrices.num_inputs + l_query.len() == wires
        && vk.gamma_abc_g1.len() == matrices.num_inputs;
    consistent.then_some((
        ProvingKey {
            vk,
            beta_g1,
            delta_g1,
            a_query,
            b_g1_query,
            b_g2_query,
            h_query,
            l_query,
        },
        matrices,
    ))
}

/// Every point of a proving key with canonical coordinates, on its curve and in the
/// prime-order subgroup (the verifying key's points are checked as it is decoded).
fn points_are_valid(key: &ProvingKey<Bn254>) -> bool {
    let g1_ok = |point: &G1Affine| {
        g1_canonical(point)
            && point.is_on_curve()
            && point.is_in_correct_subgroup_assuming_on_curve()
    };
    let g2_ok = |point: &G2Affine| {
        g2_canonical(point)
            && point.is_on_curve()
            && point.is_in_correct_subgroup_assuming_on_curve()
    };
    use rayon::prelude::*;
    [key.beta_g1, key.delta_g1].iter().all(g1_ok)
        && [&key.a_query, &key.b_g1_query, &key.h_query, &key.l_query]
            .into_par_iter()
            .all(|query| query.par_iter().all(g1_ok))
        && key.b_g2_query.par_iter().all(g2_ok)
}

/// Checks a verifying key as the server must before trusting it: every point on the curve
/// and in the prime-order subgroup, `γ ≠ δ`, and its circuit id.
///
/// # Errors
/// [`ProverError::Key`] naming the first check that fails.
pub fn check_verifying_key(
    verifying_key: &VerifyingKey<Bn254>,
    expected: CircuitId,
) -> Result<(), ProverError> {
    let bad = |reason: &str| Err(ProverError::Key(reason.to_string()));
    let g1_ok =
        |point: &G1Affine| point.is_on_curve() && point.is_in_correct_subgroup_assuming_on_curve();
    let g2_ok =
        |point: &G2Affine| point.is_on_curve() && point.is_in_correct_subgroup_assuming_on_curve();
    if !g1_ok(&verifying_key.alpha_g1) || !verifying_key.gamma_abc_g1.iter().all(g1_ok) {
        return bad("a G1 point of the verifying key is not on the curve");
    }
    if ![
        verifying_key.beta_g2,
        verifying_key.gamma_g2,
        verifying_key.delta_g2,
    ]
    .iter()
    .all(g2_ok)
    {
        return bad("a G2 point of the verifying key is not on the curve or not in the subgroup");
    }
    if verifying_key.gamma_g2 == verifying_key.delta_g2 {
        return bad("gamma equals delta: anyone could forge proofs");
    }
    if CircuitId::of(verifying_key) != expected {
        return bad("the verifying key is not the circuit's");
    }
    Ok(())
}
