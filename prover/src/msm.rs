//! Multi-scalar multiplication for the proving key's queries: Pippenger's bucket method
//! with signed digits, the buckets kept in affine coordinates and filled by batched
//! affine additions (one field inversion per batch, shared by Montgomery's trick).
//!
//! Why not arkworks' MSM: it adds each point to an extended-Jacobian bucket (8
//! multiplications and 2 squarings per addition); a batched affine addition costs 5
//! multiplications and 1 squaring, and the bucket phase is most of an MSM's work. Zero
//! scalars and points at infinity (variables a query never reads) are skipped, and a
//! scalar closer to the modulus than to zero (−1, −s) is taken as its negation on the
//! negated base, so that its high digits are zero and cost nothing.

use ark_ec::short_weierstrass::{Affine, Bucket, Projective, SWCurveConfig};
use ark_ec::AffineRepr;
use ark_ff::{AdditiveGroup, BigInteger, Field, PrimeField, Zero};
use rayon::prelude::*;

/// The scalar field's integers, the form the MSM reads its scalars in.
pub type ScalarInt<P> = <<P as ark_ec::CurveConfig>::ScalarField as PrimeField>::BigInt;

/// `Σ scalars[i]·bases[i]` over the pairs both slices have.
pub fn msm<P: SWCurveConfig>(bases: &[Affine<P>], scalars: &[ScalarInt<P>]) -> Projective<P> {
    let modulus = P::ScalarField::MODULUS;
    let (terms, magnitudes): (Vec<Term>, Vec<ScalarInt<P>>) = bases
        .par_iter()
        .zip(scalars)
        .enumerate()
        .filter(|(_, (base, scalar))| !scalar.is_zero() && !base.is_zero())
        .map(|(index, (_, scalar))| {
            let mut negative = modulus;
            negative.sub_with_borrow(scalar);
            if negative.num_bits() < scalar.num_bits() {
                (Term::new(index, true), negative)
            } else {
                (Term::new(index, false), *scalar)
            }
        })
        .unzip();
    let bits = P::ScalarField::MODULUS_BIT_SIZE as usize;
    let limbs = |k: usize| magnitudes[k].as_ref();
    pippenger(bases, &terms, limbs, bits, rayon::current_num_threads())
}

/// A base by its index, negated or not: 31 bits of index and the sign.
#[derive(Clone, Copy)]
struct Term(u32);

impl Term {
    const NEGATED: u32 = 1 << 31;

    fn new(index: usize, negated: bool) -> Self {
        let index = u32::try_from(index)
            .ok()
            .filter(|index| index & Self::NEGATED == 0)
            .expect("fewer than 2^31 bases");
        Term(if negated {
            index | Self::NEGATED
        } else {
            index
        })
    }

    fn base<P: SWCurveConfig>(self, bases: &[Affine<P>]) -> Affine<P> {
        let base = bases[(self.0 & !Self::NEGATED) as usize];
        if self.0 & Self::NEGATED == 0 {
            base
        } else {
            -base
        }
    }
}

/// The denominator of the slope of `sum + point` (neither at infinity): `x₂ − x₁`, or
/// `2y` for a doubling, or 1 when the sum is the point at infinity.
fn denominator<P: SWCurveConfig>(sum: &Affine<P>, point: &Affine<P>) -> P::BaseField {
    if sum.x != point.x {
        point.x - sum.x
    } else if sum.y == point.y && !sum.y.is_zero() {
        sum.y.double()
    } else {
        P::BaseField::ONE
    }
}

/// `sum += point` (neither at infinity) given the inverse of [`denominator`]: `λ = Δy/Δx`
/// (or `(3x² + a)/2y` when the points are equal), `x₃ = λ² − x₁ − x₂`,
/// `y₃ = λ(x₁ − x₃) − y₁`; a point and its negation leave the point at infinity.
fn add_with_inverse<P: SWCurveConfig>(
    sum: &mut Affine<P>,
    point: &Affine<P>,
    denominator_inverse: P::BaseField,
) {
    let slope = if sum.x != point.x {
        (point.y - sum.y) * denominator_inverse
    } else if sum.y == point.y && !sum.y.is_zero() {
        let x_squared = sum.x.square();
        (x_squared.double() + x_squared + P::COEFF_A) * denominator_inverse
    } else {
        *sum = Affine::zero();
        return;
    };
    let x = slope.square() - sum.x - point.x;
    let y = slope * (sum.x - x) - sum.y;
    *sum = Affine::new_unchecked(x, y);
}

/// Pippenger over the terms, the `k`-th term's scalar (of at most `bits` bits) being
/// the little-endian limbs `limbs(k)`.
fn pippenger<'a, P: SWCurveConfig>(
    bases: &[Affine<P>],
    terms: &[Term],
    limbs: impl Fn(usize) -> &'a [u64] + Sync,
    bits: usize,
    threads: usize,
) -> Projective<P> {
    let count = terms.len();
    if count == 0 {
        return Projective::zero();
    }
    let window = window_bits(count, bits);
    // One window more than `bits / window` when the signed digits carry past the top.
    let windows = (bits + 1).div_ceil(window);
    let digits = signed_digits(count, limbs, window, windows);
    // Enough tasks for every thread to stay busy while the slowest one finishes.
    let chunks = (4 * threads)
        .div_ceil(windows)
        .min(count.div_ceil(256))
        .max(1);
    let chunk = count.div_ceil(chunks);
    let tasks: Vec<(usize, usize)> = (0..windows)
        .flat_map(|w| (0..count.div_ceil(chunk)).map(move |c| (w, c)))
        .collect();
    let partial: Vec<(usize, Projective<P>)> = tasks
        .into_par_iter()
        .map(|(w, c)| {
            let start = c * chunk;
            let end = (start + chunk).min(count);
            let mut buckets = AffineBuckets::new(1 << (window - 1));
            for k in start..end {
                let digit = digits[k * windows + w];
                if digit != 0 {
                    let base = terms[k].base(bases);
                    let bucket = digit.unsigned_abs() as usize - 1;
                    buckets.add(bucket, if digit > 0 { base } else { -base });
                }
            }
            buckets.finish();
            (w, buckets.weighted_sum())
        })
        .collect();
    let mut window_sums = vec![Projective::<P>::zero(); windows];
    for (w, sum) in partial {
        window_sums[w] += sum;
    }
    let mut total = Projective::<P>::zero();
    for sum in window_sums.iter().rev() {
        for _ in 0..window {
            total.double_in_place();
        }
        total += sum;
    }
    total
}

/// The window width that minimizes the work for `count` scalars of `bits` bits: each
/// window adds every point into a bucket (a batched affine addition, about 6
/// multiplications) and sums its `2^(w−1)` buckets by weight (two extended-Jacobian
/// additions, about 24). At most 15 bits, so that a digit fits an `i16`.
fn window_bits(count: usize, bits: usize) -> usize {
    (2..=15)
        .min_by_key(|&window: &usize| {
            let windows = (bits + 1).div_ceil(window);
            windows * (6 * count + 24 * (1 << (window - 1)))
        })
        .expect("a nonempty range")
}

/// Each scalar's digits in `[−2^(w−1), 2^(w−1)]`, lowest first, `windows` per scalar.
fn signed_digits<'a>(
    count: usize,
    limbs: impl Fn(usize) -> &'a [u64] + Sync,
    window: usize,
    windows: usize,
) -> Vec<i16> {
    let mut digits = vec![0i16; count * windows];
    let half = 1i32 << (window - 1);
    let full = 1i32 << window;
    digits
        .par_chunks_mut(windows)
        .enumerate()
        .for_each(|(k, digits)| {
            let limbs = limbs(k);
            let mut carry = 0;
            for (w, digit) in digits.iter_mut().enumerate() {
                let mut value = bits_at(limbs, w * window, window) as i32 + carry;
                carry = 0;
                if value > half {
                    value -= full;
                    carry = 1;
                }
                *digit = value as i16;
            }
        });
    digits
}

/// `count` bits of a little-endian limb array from bit `start` (zero past its end).
fn bits_at(limbs: &[u64], start: usize, count: usize) -> u64 {
    let limb = start / 64;
    let shift = start % 64;
    let Some(&low) = limbs.get(limb) else {
        return 0;
    };
    let mut value = low >> shift;
    if shift + count > 64 {
        if let Some(&high) = limbs.get(limb + 1) {
            value |= high << (64 - shift);
        }
    }
    value & ((1u64 << count) - 1)
}

/// The most additions sharing one inversion.
const MAX_BATCH: usize = 1024;

/// Buckets in affine coordinates (the point at infinity is an empty bucket), filled by
/// batched additions. A point for a bucket that already waits in the batch waits for
/// the next batch; one that finds its bucket waiting again goes to that bucket's
/// extended-Jacobian twin, the overflow: many equal scalars (a Merkle path's empty
/// subtrees, a count of 2) would otherwise wait batch after batch for their one bucket.
struct AffineBuckets<P: SWCurveConfig> {
    buckets: Vec<Affine<P>>,
    overflow: Vec<Bucket<P>>,
    queued: Vec<bool>,
    batch: Vec<(usize, Affine<P>)>,
    deferred: Vec<(usize, Affine<P>)>,
    /// The running products of the batch's denominators.
    products: Vec<P::BaseField>,
    batch_size: usize,
}

impl<P: SWCurveConfig> AffineBuckets<P> {
    fn new(count: usize) -> Self {
        // An inversion costs about 430 multiplications, shared by the batch; a point
        // sent to the overflow about 4 more than a batched addition, and a batch of `b`
        // defers `b/2n` of its points on average, some of them to the overflow:
        // `430/b + 2b/n` is least at `b = √(215n)`.
        let batch_size = ((215 * count) as f64).sqrt() as usize;
        let batch_size = batch_size.clamp(16, MAX_BATCH);
        AffineBuckets {
            buckets: vec![Affine::zero(); count],
            overflow: Vec::new(),
            queued: vec![false; count],
            batch: Vec::with_capacity(2 * batch_size),
            deferred: Vec::with_capacity(batch_size),
            products: Vec::with_capacity(2 * batch_size),
            batch_size,
        }
    }

    /// Adds a point (not the point at infinity) to a bucket.
    fn add(&mut self, bucket: usize, point: Affine<P>) {
        if self.queued[bucket] && self.deferred.len() < self.batch_size {
            self.deferred.push((bucket, point));
        } else {
            self.schedule(bucket, point);
        }
        if self.batch.len() >= self.batch_size {
            self.apply_batch();
            let mut deferred = std::mem::take(&mut self.deferred);
            for (bucket, point) in deferred.drain(..) {
                self.schedule(bucket, point);
            }
            self.deferred = deferred;
        }
    }

    fn schedule(&mut self, bucket: usize, point: Affine<P>) {
        if self.queued[bucket] {
            if self.overflow.is_empty() {
                self.overflow = vec![Bucket::default(); self.buckets.len()];
            }
            self.overflow[bucket] += point;
        } else if self.buckets[bucket].is_zero() {
            self.buckets[bucket] = point;
        } else {
            self.queued[bucket] = true;
            self.batch.push((bucket, point));
        }
    }

    /// Applies every addition still waiting.
    fn finish(&mut self) {
        self.apply_batch();
        let mut deferred = std::mem::take(&mut self.deferred);
        for (bucket, point) in deferred.drain(..) {
            self.schedule(bucket, point);
        }
        self.apply_batch();
    }

    /// `bucket += point` for the whole batch with one inversion shared by Montgomery's
    /// trick.
    fn apply_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.products.clear();
        let mut product = P::BaseField::ONE;
        for &(bucket, point) in &self.batch {
            self.products.push(product);
            product *= denominator(&self.buckets[bucket], &point);
        }
        let mut inverse = product
            .inverse()
            .expect("a product of nonzero denominators is nonzero");
        for (&(bucket, point), before) in self.batch.iter().zip(&self.products).rev() {
            let sum = &mut self.buckets[bucket];
            let denominator = denominator(sum, &point);
            add_with_inverse(sum, &point, inverse * before);
            inverse *= denominator;
            self.queued[bucket] = false;
        }
        self.batch.clear();
    }

    /// Each bucket with its overflow.
    fn totals(&self) -> impl DoubleEndedIterator<Item = Bucket<P>> + '_ {
        self.buckets.iter().enumerate().map(|(index, bucket)| {
            let mut total = self.overflow.get(index).copied().unwrap_or_default();
            total += bucket;
            total
        })
    }

    /// `Σ (i + 1)·buckets[i]`, as running sums from the top bucket down.
    fn weighted_sum(&self) -> Projective<P> {
        let mut running = Bucket::<P>::default();
        let mut sum = Bucket::<P>::default();
        if self.overflow.is_empty() {
            for bucket in self.buckets.iter().rev() {
                running += bucket;
                sum += &running;
            }
        } else {
            for total in self.totals().rev() {
                running += &total;
                sum += &running;
            }
        }
        bucket_to_projective(&sum)
    }
}

fn bucket_to_projective<P: SWCurveConfig>(bucket: &Bucket<P>) -> Projective<P> {
    let mut point = Projective::zero();
    point += bucket;
    point
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{Fr, G1Affine, G1Projective, G2Affine, G2Projective};
    use ark_ec::{CurveGroup, VariableBaseMSM};
    use ark_ff::{One, UniformRand};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Scalars as a witness has them: zeros, ±1, small and negated small values,
    /// full-size ones.
    fn witness_like(rng: &mut StdRng, count: usize) -> Vec<Fr> {
        (0..count)
            .map(|_| match rng.gen_range(0..7) {
                0 => Fr::zero(),
                1 => Fr::one(),
                2 => -Fr::one(),
                3 => Fr::from(rng.gen::<u64>()),
                4 => -Fr::from(rng.gen::<u32>()),
                5 => Fr::from(rng.gen_range(2u64..300)),
                _ => Fr::rand(rng),
            })
            .collect()
    }

    /// Bases with repeats, negations and points at infinity, so that batches meet
    /// doublings and cancellations.
    fn awkward_bases<G: AffineRepr>(rng: &mut StdRng, count: usize) -> Vec<G>
    where
        G::Group: UniformRand,
    {
        let distinct: Vec<G> = (0..8).map(|_| G::Group::rand(rng).into_affine()).collect();
        (0..count)
            .map(|_| {
                let point = distinct[rng.gen_range(0..distinct.len())];
                match rng.gen_range(0..4) {
                    0 => G::zero(),
                    1 => (-point.into_group()).into_affine(),
                    _ => point,
                }
            })
            .collect()
    }

    /// Our MSM against arkworks'.
    fn check<P: SWCurveConfig<ScalarField = Fr>>(bases: &[Affine<P>], scalars: &[Fr]) {
        let ints: Vec<_> = scalars.iter().map(|s| s.into_bigint()).collect();
        let expected = Projective::<P>::msm(bases, scalars).expect("same lengths");
        assert_eq!(msm(bases, &ints), expected, "{} terms", bases.len());
    }

    #[test]
    fn agrees_with_arkworks_on_random_points_and_witness_like_scalars() {
        let mut rng = StdRng::seed_from_u64(7);
        for count in [0, 1, 2, 3, 17, 300, 2_000, 9_000] {
            let bases: Vec<G1Affine> = (0..count)
                .map(|_| G1Projective::rand(&mut rng).into_affine())
                .collect();
            check(&bases, &witness_like(&mut rng, count));
        }
    }

    #[test]
    fn agrees_with_arkworks_on_repeated_negated_and_infinite_points() {
        let mut rng = StdRng::seed_from_u64(8);
        for count in [5, 64, 1_000, 5_000] {
            let bases: Vec<G1Affine> = awkward_bases(&mut rng, count);
            check(&bases, &witness_like(&mut rng, count));
            // Every scalar one: the unit sum alone, full of doublings and cancellations.
            check(&bases, &vec![Fr::one(); count]);
            let mut rng_scalars = StdRng::seed_from_u64(count as u64);
            let large: Vec<Fr> = (0..count).map(|_| Fr::rand(&mut rng_scalars)).collect();
            check(&bases, &large);
        }
    }

    #[test]
    fn agrees_with_arkworks_in_g2() {
        let mut rng = StdRng::seed_from_u64(9);
        for count in [1, 40, 1_500] {
            let mut bases: Vec<G2Affine> = (0..count)
                .map(|_| G2Projective::rand(&mut rng).into_affine())
                .collect();
            bases.extend(awkward_bases::<G2Affine>(&mut rng, count));
            let scalars = witness_like(&mut rng, bases.len());
            check(&bases, &scalars);
        }
    }

    #[test]
    fn a_dense_window_of_large_scalars_agrees() {
        let mut rng = StdRng::seed_from_u64(10);
        let count = 1 << 13;
        let bases: Vec<G1Affine> = (0..count)
            .map(|_| G1Projective::rand(&mut rng).into_affine())
            .collect();
        let scalars: Vec<Fr> = (0..count).map(|_| Fr::rand(&mut rng)).collect();
        check(&bases, &scalars);
    }

    #[test]
    fn signed_digits_recompose_the_scalar() {
        let mut rng = StdRng::seed_from_u64(11);
        for window in [2, 5, 11, 15] {
            let bits = 254;
            let windows = (bits + 1usize).div_ceil(window);
            let scalars: Vec<_> = (0..50).map(|_| Fr::rand(&mut rng).into_bigint()).collect();
            let digits = signed_digits(scalars.len(), |k| scalars[k].as_ref(), window, windows);
            for (scalar, digits) in scalars.iter().zip(digits.chunks(windows)) {
                let mut value = Fr::zero();
                for digit in digits.iter().rev() {
                    value *= Fr::from(1u64 << window);
                    assert!(digit.unsigned_abs() as u64 <= 1 << (window - 1));
                    value += if *digit < 0 {
                        -Fr::from(digit.unsigned_abs() as u64)
                    } else {
                        Fr::from(*digit as u64)
                    };
                }
                assert_eq!(value.into_bigint(), *scalar);
            }
        }
    }
}
