//! The key file's raw encoding: field elements as their Montgomery limbs, points as their
//! coordinates, little-endian, as they sit in memory. Reading them back is a copy, not a
//! conversion: arkworks' canonical form costs a Montgomery multiplication per
//! coordinate, a million of them for the reference shape's key.
//!
//! Nothing here checks that a coordinate is below the modulus or a point on its curve:
//! [`crate::keys::CircuitKeys::load_checked`] does, for keys from elsewhere.

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ff::{BigInt, Fp, PrimeField};
use rayon::prelude::*;

pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_limbs<const N: usize>(out: &mut Vec<u8>, limbs: &BigInt<N>) {
    for limb in limbs.0 {
        put_u64(out, limb);
    }
}

pub(crate) fn put_fr(out: &mut Vec<u8>, value: &Fr) {
    put_limbs(out, &value.0);
}

fn put_fq(out: &mut Vec<u8>, value: &Fq) {
    put_limbs(out, &value.0);
}

/// The point at infinity is (0, 0), as arkworks keeps BN254 points.
pub(crate) fn put_g1s(out: &mut Vec<u8>, points: &[G1Affine]) {
    put_u64(out, points.len() as u64);
    for point in points {
        put_fq(out, &point.x);
        put_fq(out, &point.y);
    }
}

pub(crate) fn put_g2s(out: &mut Vec<u8>, points: &[G2Affine]) {
    put_u64(out, points.len() as u64);
    for point in points {
        for coordinate in [&point.x.c0, &point.x.c1, &point.y.c0, &point.y.c1] {
            put_fq(out, coordinate);
        }
    }
}

/// Whether every coordinate is below the modulus (the Montgomery form of a field
/// element is).
pub(crate) fn g1_canonical(point: &G1Affine) -> bool {
    [point.x, point.y].iter().all(|c| c.0 < Fq::MODULUS)
}

/// As [`g1_canonical`], in G2.
pub(crate) fn g2_canonical(point: &G2Affine) -> bool {
    [point.x.c0, point.x.c1, point.y.c0, point.y.c1]
        .iter()
        .all(|c| c.0 < Fq::MODULUS)
}

/// Reads the raw encoding front to back; every read says `None` past the end.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// The next `count` bytes.
    pub(crate) fn bytes(&mut self, count: usize) -> Option<&'a [u8]> {
        if count > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Some(taken)
    }

    /// Whether everything was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }

    /// A count of items of `item_bytes` each that the rest of the input can hold.
    fn count(&mut self, item_bytes: usize) -> Option<usize> {
        let count = usize::try_from(self.u64()?).ok()?;
        (count.checked_mul(item_bytes)? <= self.bytes.len()).then_some(count)
    }

    pub(crate) fn u32s(&mut self, count: usize) -> Option<Vec<u32>> {
        let bytes = self.bytes(count.checked_mul(4)?)?;
        Some(
            bytes
                .par_chunks_exact(4)
                .map(|word| u32::from_le_bytes(word.try_into().expect("4 bytes")))
                .collect(),
        )
    }

    pub(crate) fn frs(&mut self, count: usize) -> Option<Vec<Fr>> {
        let bytes = self.bytes(count.checked_mul(32)?)?;
        Some(
            bytes
                .par_chunks_exact(32)
                .map(|b| Fp(limbs(b), Default::default()))
                .collect(),
        )
    }

    /// Points written by [`put_g1s`].
    pub(crate) fn g1s(&mut self) -> Option<Vec<G1Affine>> {
        let count = self.count(64)?;
        let bytes = self.bytes(count * 64)?;
        Some(
            bytes
                .par_chunks_exact(64)
                .map(|b| G1Affine::new_unchecked(fq(&b[..32]), fq(&b[32..])))
                .collect(),
        )
    }

    /// Points written by [`put_g2s`].
    pub(crate) fn g2s(&mut self) -> Option<Vec<G2Affine>> {
        let count = self.count(128)?;
        let bytes = self.bytes(count * 128)?;
        Some(
            bytes
                .par_chunks_exact(128)
                .map(|b| {
                    G2Affine::new_unchecked(
                        Fq2::new(fq(&b[..32]), fq(&b[32..64])),
                        Fq2::new(fq(&b[64..96]), fq(&b[96..])),
                    )
                })
                .collect(),
        )
    }
}

fn limbs(bytes: &[u8]) -> BigInt<4> {
    BigInt(std::array::from_fn(|i| {
        u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"))
    }))
}

fn fq(bytes: &[u8]) -> Fq {
    Fp(limbs(bytes), Default::default())
}
