//! The encodings snarkjs uses in its ceremony files and hashes, and its way of drawing
//! points from a hash.
//!
//! - Files hold affine points as `x | y` with every base-field coordinate in Montgomery
//!   form, little-endian (`toRprLEM`); zero is all zero bytes. [`Reader`] decodes them and
//!   refuses a non-canonical coordinate, a point off the curve or outside the subgroup.
//! - Hashes take points uncompressed and big-endian (`toRprUncompressed`): `x | y`, a G2
//!   coordinate `c1 | c0`; zero is all zero bytes.
//! - [`SnarkjsRng`] is ffjavascript's `ChaCha` seeded with eight big-endian words of a
//!   hash, and draws field elements and curve points as its `fromRng` does: four `u64`s
//!   (high word first), masked to the modulus' bits, retried until below the modulus,
//!   and read as a Montgomery form; a point takes a random `x`, a random sign bit, and
//!   retries until `x³ + b` is a square; G2 points are multiplied by the cofactor.

use std::collections::HashMap;

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{BigInt, BigInteger, Field, PrimeField, Zero};
use blake2::{Blake2b512, Digest};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::Sha256;

use super::CeremonyError;

/// BLAKE2b-512, snarkjs's transcript hash.
pub(crate) type Hasher = Blake2b512;

/// A 64-byte BLAKE2b digest.
pub(crate) type Hash64 = [u8; 64];

/// ffjavascript's G2 cofactor (`bn128.js`, `cofactorG2`), the multiplier `G2.fromRng` uses.
const G2_COFACTOR: BigInt<4> = BigInt::new([
    0x345f_2299_c0f9_fa8d,
    0x06ce_ecda_572a_2489,
    0xb850_45b6_8181_585e,
    0x3064_4e72_e131_a029,
]);

/// The inverse of `R = 2²⁵⁶` in a prime field: a Montgomery form `m` means `m·R⁻¹`.
fn r_inverse<F: PrimeField>() -> F {
    F::from(2u64)
        .pow([256u64])
        .inverse()
        .expect("R is invertible")
}

/// A G1 point uncompressed and big-endian, as snarkjs hashes it.
pub(crate) fn g1_uncompressed(point: &G1Affine) -> [u8; 64] {
    let mut bytes = [0u8; 64];
    if let Some((x, y)) = point.xy() {
        bytes[..32].copy_from_slice(&x.into_bigint().to_bytes_be());
        bytes[32..].copy_from_slice(&y.into_bigint().to_bytes_be());
    }
    bytes
}

/// A G2 point uncompressed and big-endian (`x.c1 | x.c0 | y.c1 | y.c0`), as snarkjs hashes it.
pub(crate) fn g2_uncompressed(point: &G2Affine) -> [u8; 128] {
    let mut bytes = [0u8; 128];
    if let Some((x, y)) = point.xy() {
        for (index, value) in [x.c1, x.c0, y.c1, y.c0].iter().enumerate() {
            bytes[32 * index..32 * (index + 1)].copy_from_slice(&value.into_bigint().to_bytes_be());
        }
    }
    bytes
}

/// Feeds a G1 point to a hasher as snarkjs does.
pub(crate) fn hash_g1(hasher: &mut Hasher, point: &G1Affine) {
    hasher.update(g1_uncompressed(point));
}

/// Feeds a G2 point to a hasher as snarkjs does.
pub(crate) fn hash_g2(hasher: &mut Hasher, point: &G2Affine) {
    hasher.update(g2_uncompressed(point));
}

/// The digest of a hasher as a fixed array.
pub(crate) fn digest(hasher: Hasher) -> Hash64 {
    hasher.finalize().into()
}

/// snarkjs's `hashToG2`: ChaCha20 seeded with the hash's first 32 bytes, one G2 point drawn.
pub(crate) fn hash_to_g2(hash: &[u8]) -> G2Affine {
    SnarkjsRng::from_hash(hash).g2()
}

/// ffjavascript's ChaCha RNG and its `fromRng` draws (see the module documentation).
pub(crate) struct SnarkjsRng(ChaCha20Rng);

impl SnarkjsRng {
    /// Seeded with eight big-endian words of `hash` (its first 32 bytes).
    pub(crate) fn from_hash(hash: &[u8]) -> Self {
        // ffjavascript puts the words into the ChaCha key as numbers; rand_chacha reads
        // its key as little-endian words, so each word is written back little-endian.
        let mut seed = [0u8; 32];
        for (word, chunk) in seed.chunks_exact_mut(4).zip(hash[..32].chunks_exact(4)) {
            let value = u32::from_be_bytes(chunk.try_into().expect("4 bytes"));
            word.copy_from_slice(&value.to_le_bytes());
        }
        SnarkjsRng(ChaCha20Rng::from_seed(seed))
    }

    /// snarkjs's beacon RNG (`misc.js`, `rngFromBeaconParams`): SHA-256 iterated
    /// `2^iterations_exp` times over the beacon hash, then [`SnarkjsRng::from_hash`].
    pub(crate) fn from_beacon(beacon: &[u8], iterations_exp: u8) -> Self {
        let mut current = beacon.to_vec();
        for _ in 0..1u64 << iterations_exp {
            current = Sha256::digest(&current).to_vec();
        }
        Self::from_hash(&current)
    }

    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        let high = self.next_u32() as u64;
        let low = self.next_u32() as u64;
        (high << 32) | low
    }

    /// A field element as ffjavascript's wasm fields draw one.
    pub(crate) fn field<F: PrimeField<BigInt = BigInt<4>>>(&mut self) -> F {
        let bits = F::MODULUS_BIT_SIZE;
        loop {
            let mut limbs = [0u64; 4];
            for limb in &mut limbs {
                *limb = self.next_u64();
            }
            limbs[3] &= (1u64 << (bits - 192)) - 1;
            if let Some(value) = F::from_bigint(BigInt::new(limbs)) {
                return value * r_inverse::<F>();
            }
        }
    }

    /// A G1 point as `G1.fromRng` draws one (G1's cofactor is 1).
    pub(crate) fn g1(&mut self) -> G1Affine {
        loop {
            let x: Fq = self.field();
            let greatest = self.next_u32() & 1 == 1;
            let right = x.square() * x
                + <ark_bn254::g1::Config as ark_ec::short_weierstrass::SWCurveConfig>::COEFF_B;
            if let Some(y) = right.sqrt() {
                let y = if greatest != is_negative(&y) { -y } else { y };
                return G1Affine::new_unchecked(x, y);
            }
        }
    }

    /// A G2 point as `G2.fromRng` draws one, cofactor cleared as it does.
    pub(crate) fn g2(&mut self) -> G2Affine {
        loop {
            let x = Fq2::new(self.field(), self.field());
            let greatest = self.next_u32() & 1 == 1;
            let right = x.square() * x
                + <ark_bn254::g2::Config as ark_ec::short_weierstrass::SWCurveConfig>::COEFF_B;
            if let Some(y) = right.sqrt() {
                let negative = if y.c1.is_zero() {
                    is_negative(&y.c0)
                } else {
                    is_negative(&y.c1)
                };
                let y = if greatest != negative { -y } else { y };
                return G2Affine::new_unchecked(x, y)
                    .mul_bigint(G2_COFACTOR)
                    .into_affine();
            }
        }
    }

    /// A scalar as `Fr.fromRng` draws one.
    pub(crate) fn scalar(&mut self) -> Fr {
        self.field()
    }
}

/// ffjavascript's sign of a base-field element: above `(q − 1)/2`.
fn is_negative(value: &Fq) -> bool {
    value.into_bigint() > Fq::MODULUS_MINUS_ONE_DIV_TWO
}

/// Coordinates and points in snarkjs's file encoding.
pub(crate) struct Montgomery {
    r_inverse: Fq,
}

impl Montgomery {
    pub(crate) fn new() -> Self {
        Montgomery {
            r_inverse: r_inverse(),
        }
    }

    fn fq(&self, bytes: &[u8]) -> Option<Fq> {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            *limb = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        }
        Fq::from_bigint(BigInt::new(limbs)).map(|value| value * self.r_inverse)
    }

    /// A G1 point from 64 bytes, checked on the curve (the subgroup is the whole curve).
    pub(crate) fn g1(&self, bytes: &[u8]) -> Option<G1Affine> {
        if bytes.iter().all(|byte| *byte == 0) {
            return Some(G1Affine::zero());
        }
        let point = G1Affine::new_unchecked(self.fq(&bytes[..32])?, self.fq(&bytes[32..64])?);
        (point.is_on_curve() && point.is_in_correct_subgroup_assuming_on_curve()).then_some(point)
    }

    /// A G2 point from 128 bytes, checked on the curve and in the prime-order subgroup.
    pub(crate) fn g2(&self, bytes: &[u8]) -> Option<G2Affine> {
        if bytes.iter().all(|byte| *byte == 0) {
            return Some(G2Affine::zero());
        }
        let x = Fq2::new(self.fq(&bytes[..32])?, self.fq(&bytes[32..64])?);
        let y = Fq2::new(self.fq(&bytes[64..96])?, self.fq(&bytes[96..128])?);
        let point = G2Affine::new_unchecked(x, y);
        (point.is_on_curve() && point.is_in_correct_subgroup_assuming_on_curve()).then_some(point)
    }
}

/// An iden3 binfile read into its sections (see [`crate::circom`] for the layout).
pub(crate) struct Reader<'a> {
    file: &'static str,
    sections: HashMap<u32, &'a [u8]>,
    montgomery: Montgomery,
}

impl<'a> Reader<'a> {
    /// Splits `bytes` into sections, checking the magic and the version.
    pub(crate) fn new(
        file: &'static str,
        magic: &[u8; 4],
        version: u32,
        bytes: &'a [u8],
    ) -> Result<Self, CeremonyError> {
        let bad = |reason: &str| CeremonyError::Format {
            file,
            reason: reason.to_string(),
        };
        if bytes.len() < 12 || &bytes[..4] != magic {
            return Err(bad("not this kind of file (wrong magic)"));
        }
        if u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) != version {
            return Err(bad("unsupported version"));
        }
        let count = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let mut sections = HashMap::new();
        let mut position = 12usize;
        for _ in 0..count {
            let header = bytes
                .get(position..position + 12)
                .ok_or_else(|| bad("truncated section header"))?;
            let id = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
            let size = u64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
            let size = usize::try_from(size).map_err(|_| bad("section too large"))?;
            position += 12;
            let end = position
                .checked_add(size)
                .filter(|end| *end <= bytes.len())
                .ok_or_else(|| bad("truncated section"))?;
            if sections.insert(id, &bytes[position..end]).is_some() {
                return Err(bad(&format!("section {id} appears twice")));
            }
            position = end;
        }
        Ok(Reader {
            file,
            sections,
            montgomery: Montgomery::new(),
        })
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> CeremonyError {
        CeremonyError::Format {
            file: self.file,
            reason: reason.into(),
        }
    }

    /// Whether the file has section `id`.
    pub(crate) fn has(&self, id: u32) -> bool {
        self.sections.contains_key(&id)
    }

    /// Section `id`, which must exist.
    pub(crate) fn section(&self, id: u32) -> Result<&'a [u8], CeremonyError> {
        self.sections
            .get(&id)
            .copied()
            .ok_or_else(|| self.error(format!("no section {id}")))
    }

    /// Section `id` as exactly `count` G1 points, decoded and checked in parallel.
    pub(crate) fn g1_section(&self, id: u32, count: usize) -> Result<Vec<G1Affine>, CeremonyError> {
        self.g1_points(self.section(id)?, count, &format!("section {id}"))
    }

    /// Section `id` as exactly `count` G2 points, decoded and checked in parallel.
    pub(crate) fn g2_section(&self, id: u32, count: usize) -> Result<Vec<G2Affine>, CeremonyError> {
        self.g2_points(self.section(id)?, count, &format!("section {id}"))
    }

    /// `count` G1 points from the start of `bytes`.
    pub(crate) fn g1_points(
        &self,
        bytes: &[u8],
        count: usize,
        what: &str,
    ) -> Result<Vec<G1Affine>, CeremonyError> {
        use rayon::prelude::*;
        if bytes.len() < 64 * count {
            return Err(self.error(format!(
                "{what}: {} bytes, {count} points need {}",
                bytes.len(),
                64 * count
            )));
        }
        bytes[..64 * count]
            .par_chunks_exact(64)
            .enumerate()
            .map(|(index, chunk)| {
                self.montgomery
                    .g1(chunk)
                    .ok_or_else(|| self.error(format!("{what}: point {index} is not on the curve")))
            })
            .collect()
    }

    /// `count` G2 points from the start of `bytes`.
    pub(crate) fn g2_points(
        &self,
        bytes: &[u8],
        count: usize,
        what: &str,
    ) -> Result<Vec<G2Affine>, CeremonyError> {
        use rayon::prelude::*;
        if bytes.len() < 128 * count {
            return Err(self.error(format!(
                "{what}: {} bytes, {count} points need {}",
                bytes.len(),
                128 * count
            )));
        }
        bytes[..128 * count]
            .par_chunks_exact(128)
            .enumerate()
            .map(|(index, chunk)| {
                self.montgomery.g2(chunk).ok_or_else(|| {
                    self.error(format!(
                        "{what}: point {index} is not on the curve or not in the prime-order subgroup"
                    ))
                })
            })
            .collect()
    }
}

/// A little-endian `u32` at `offset` of `bytes`.
pub(crate) fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}
