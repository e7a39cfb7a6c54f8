//! Where a circuit's keys came from, and the ceremony transcript as a sponsor checks it.
//!
//! Groth16 is only as sound as its setup: whoever knows the setup's trapdoor can prove
//! anything. [`KeySetup`] says which kind a marketplace's keys are: a multi-party
//! ceremony named by its [`TranscriptId`], or a single-party development setup that
//! its runner could forge proofs with. Every study bundle carries it.
//!
//! The transcript travels as one file ([`transcript_file`], what `GET
//! /circuits/{id}/transcript` serves): `"ZKCOHORT-TR" 0x00 | format u32 (1) | phase 1
//! length u64 | the phase 1 file (.ptau) | zkey length u64 | the final phase-2 state
//! (.zkey)`, integers little-endian. Its id is the ceremony's id, over the two files.
//!
//! [`CeremonyTranscript::read`] is the minimal part a sponsor needs: the id, and the
//! verifying key the final `.zkey` holds (its Groth16 header and `IC` section, points
//! in snarkjs's little-endian Montgomery form, each checked on the curve and in the
//! subgroup), so a bundle's key can be compared with the transcript's output. Checking
//! every contribution needs the circuit's constraint system, which this crate does not
//! compile: that is `zkcohort ceremony verify` (or `snarkjs zkey verify`), run once on
//! the same files, whose id the sponsor then pins.

use std::collections::HashMap;
use std::sync::OnceLock;

use ark_bn254::{Bn254, Fq, Fq2, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInt, BigInteger, Field, PrimeField};
use ark_groth16::VerifyingKey;
use serde::{Deserialize, Serialize};
pub use zkcohort_circuits::TranscriptId;

use crate::VerifierError;

/// How a circuit's keys were made, as the marketplace announces it and bundles carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum KeySetup {
    /// A multi-party ceremony: sound if one participant was honest.
    Ceremony {
        /// The transcript's id (64 hex digits).
        #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
        transcript_id: TranscriptId,
    },
    /// A single-party setup (`zkcohort setup`, `zkcohort serve --dev-unsafe-setup`):
    /// whoever ran it knows the trapdoor and can forge proofs.
    Development,
}

impl KeySetup {
    /// The transcript id of a ceremony setup.
    pub fn transcript_id(&self) -> Option<TranscriptId> {
        match self {
            KeySetup::Ceremony { transcript_id } => Some(*transcript_id),
            KeySetup::Development => None,
        }
    }
}

const MAGIC: &[u8; 12] = b"ZKCOHORT-TR\0";
const FORMAT: u32 = 1;

/// The one-file transcript of a phase 1 file and a final phase-2 `.zkey` (see the
/// module documentation).
pub fn transcript_file(phase1: &[u8], zkey: &[u8]) -> Vec<u8> {
    let mut file = Vec::with_capacity(32 + phase1.len() + zkey.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&FORMAT.to_le_bytes());
    for part in [phase1, zkey] {
        file.extend_from_slice(&(part.len() as u64).to_le_bytes());
        file.extend_from_slice(part);
    }
    file
}

/// The phase 1 file and the `.zkey` of a one-file transcript.
///
/// # Errors
/// [`VerifierError::Transcript`] when the file is not a transcript or is truncated.
pub fn split_transcript(file: &[u8]) -> Result<(&[u8], &[u8]), VerifierError> {
    let bad = |reason: &str| VerifierError::Transcript(reason.to_string());
    if file.len() < 16 || &file[..12] != MAGIC {
        return Err(bad("not a zkcohort ceremony transcript"));
    }
    if u32_at(file, 12) != Some(FORMAT) {
        return Err(bad("unsupported transcript format"));
    }
    let mut rest = &file[16..];
    let mut take = || -> Result<&[u8], VerifierError> {
        let length = rest
            .get(..8)
            .map(|bytes| u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
            .and_then(|length| usize::try_from(length).ok())
            .ok_or_else(|| bad("truncated"))?;
        let part = rest.get(8..8 + length).ok_or_else(|| bad("truncated"))?;
        rest = &rest[8 + length..];
        Ok(part)
    };
    let phase1 = take()?;
    let zkey = take()?;
    if !rest.is_empty() {
        return Err(bad("bytes after the zkey"));
    }
    Ok((phase1, zkey))
}

/// A ceremony transcript as a sponsor checks a bundle against it.
#[derive(Debug, Clone, PartialEq)]
pub struct CeremonyTranscript {
    /// Its id.
    pub id: TranscriptId,
    /// The verifying key of its final state.
    pub verifying_key: VerifyingKey<Bn254>,
}

impl CeremonyTranscript {
    /// Reads a one-file transcript: its id and its final verifying key.
    ///
    /// # Errors
    /// [`VerifierError::Transcript`] for a malformed file or a point off the curve or outside
    /// the subgroup.
    pub fn read(file: &[u8]) -> Result<Self, VerifierError> {
        let (phase1, zkey) = split_transcript(file)?;
        Ok(CeremonyTranscript {
            id: TranscriptId::of(phase1, zkey),
            verifying_key: zkey_verifying_key(zkey)?,
        })
    }
}

/// The verifying key in a snarkjs Groth16 `.zkey`: section 2 (`n8q | q | n8r | r |
/// wires | public | domain | α·G1 | β·G1 | β·G2 | γ·G2 | δ·G1 | δ·G2`) and section 3
/// (`IC`, `public + 1` G1 points).
fn zkey_verifying_key(zkey: &[u8]) -> Result<VerifyingKey<Bn254>, VerifierError> {
    let bad = |reason: String| VerifierError::Transcript(format!("zkey: {reason}"));
    if zkey.len() < 12 || &zkey[..4] != b"zkey" || u32_at(zkey, 4) != Some(1) {
        return Err(bad("not a version-1 zkey".into()));
    }
    let mut sections = HashMap::new();
    let mut position = 12usize;
    for _ in 0..u32_at(zkey, 8).unwrap_or(0) {
        let id = u32_at(zkey, position).ok_or_else(|| bad("truncated".into()))?;
        let size = zkey
            .get(position + 4..position + 12)
            .map(|bytes| u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
            .and_then(|size| usize::try_from(size).ok())
            .ok_or_else(|| bad("truncated".into()))?;
        let start = position + 12;
        let section = start
            .checked_add(size)
            .and_then(|end| zkey.get(start..end))
            .ok_or_else(|| bad(format!("section {id} is truncated")))?;
        sections.insert(id, section);
        position = start + size;
    }
    let section = |id: u32| {
        sections
            .get(&id)
            .copied()
            .ok_or_else(|| bad(format!("no section {id}")))
    };
    if u32_at(section(1)?, 0) != Some(1) {
        return Err(bad("not a Groth16 zkey".into()));
    }
    let header = section(2)?;
    // n8q (4) | q (32) | n8r (4) | r (32) | wires, public, domain (12).
    let fixed = 4 + 32 + 4 + 32 + 12;
    if header.len() != fixed + 3 * 64 + 3 * 128
        || u32_at(header, 0) != Some(32)
        || header[4..36] != Fq::MODULUS.to_bytes_le()[..]
    {
        return Err(bad("the Groth16 header is not BN254's".into()));
    }
    let public = u32_at(header, fixed - 8).expect("checked length") as usize;
    let g1 = |bytes: &[u8], what: &str| {
        g1(bytes).ok_or_else(|| bad(format!("{what} is not a G1 point of the subgroup")))
    };
    let g2 = |bytes: &[u8], what: &str| {
        g2(bytes).ok_or_else(|| bad(format!("{what} is not a G2 point of the subgroup")))
    };
    let at = |offset: usize, size: usize| &header[fixed + offset..fixed + offset + size];
    let ic = section(3)?;
    if ic.len() != 64 * (public + 1) {
        return Err(bad("section 3 is not public + 1 G1 points".into()));
    }
    Ok(VerifyingKey {
        alpha_g1: g1(at(0, 64), "alpha")?,
        beta_g2: g2(at(128, 128), "beta")?,
        gamma_g2: g2(at(256, 128), "gamma")?,
        delta_g2: g2(at(384 + 64, 128), "delta")?,
        gamma_abc_g1: ic
            .chunks_exact(64)
            .enumerate()
            .map(|(index, bytes)| g1(bytes, &format!("IC[{index}]")))
            .collect::<Result<_, _>>()?,
    })
}

/// A base-field element in snarkjs's form: little-endian Montgomery (`x·R mod q`).
fn fq(bytes: &[u8]) -> Option<Fq> {
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        *limb = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    // R = 2^256 mod q, so dividing by R turns the Montgomery form into the value.
    static R_INVERSE: OnceLock<Fq> = OnceLock::new();
    let r_inverse = R_INVERSE.get_or_init(|| {
        Fq::from(2u64)
            .pow([256u64])
            .inverse()
            .expect("2^256 is invertible mod q")
    });
    Fq::from_bigint(BigInt::new(limbs)).map(|value| value * r_inverse)
}

/// A G1 point (64 bytes; all zero is the point at infinity), on the curve (BN254's G1
/// has no cofactor, the subgroup check is kept for clarity).
fn g1(bytes: &[u8]) -> Option<G1Affine> {
    if bytes.iter().all(|byte| *byte == 0) {
        return Some(G1Affine::zero());
    }
    let point = G1Affine::new_unchecked(fq(&bytes[..32])?, fq(&bytes[32..64])?);
    (point.is_on_curve() && point.is_in_correct_subgroup_assuming_on_curve()).then_some(point)
}

/// A G2 point (128 bytes), on the curve and in the prime-order subgroup.
fn g2(bytes: &[u8]) -> Option<G2Affine> {
    if bytes.iter().all(|byte| *byte == 0) {
        return Some(G2Affine::zero());
    }
    let x = Fq2::new(fq(&bytes[..32])?, fq(&bytes[32..64])?);
    let y = Fq2::new(fq(&bytes[64..96])?, fq(&bytes[96..128])?);
    let point = G2Affine::new_unchecked(x, y);
    (point.is_on_curve() && point.is_in_correct_subgroup_assuming_on_curve()).then_some(point)
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}
