//! The registry membership check as an R1CS gadget: the in-circuit twin of
//! [`MembershipPath::root_for`].
//!
//! Same index convention as the native tree (see the [parent module](super)):
//! bit `i` of the index, little-endian, is `1` when the path's node at level
//! `i` is a right child. Each level costs:
//!
//! - **1 constraint** for the conditional swap: with `b` the index bit, `cur`
//!   the node and `sib` its sibling, `left = cur + b * (sib - cur)` (one
//!   product) and `right = cur + sib - left` (linear, free);
//! - **240 constraints** for `Poseidon(left, right)`
//!   ([`poseidon_hash2_gadget`]).
//!
//! So the root of a depth-`d` path costs `241 * d` constraints
//! ([`constraint_count`]; 4820 at depth 20), plus `d` booleanity constraints
//! when the index bits are allocated as witnesses ([`MembershipPathVar`];
//! 4840 at depth 20 in all).
//!
//! The index bits **must** be constrained to `{0, 1}`: with a field element
//! `b` outside `{0, 1}` the swap becomes an affine map in which a prover can
//! choose `b` and a sibling so that any leaf at all hashes to the real
//! parent (the tests build that forgery). [`registry_root_gadget`] takes
//! [`Boolean`]s, which are constrained by construction;
//! [`MembershipPathVar`] allocates each bit with a booleanity constraint
//! (`b * b = b`).

use std::borrow::Borrow;

use ark_bn254::Fr;
use ark_ff::{One, Zero};
use ark_r1cs_std::{
    alloc::{AllocVar, AllocationMode},
    boolean::Boolean,
    fields::{fp::FpVar, FieldVar},
};
use ark_relations::gr1cs::{ConstraintSystemRef, Namespace, SynthesisError};

use super::{MembershipPath, MAX_REGISTRY_DEPTH, MIN_REGISTRY_DEPTH};
use crate::poseidon::gadget::{
    constraint_count as poseidon_constraint_count, poseidon_hash2_gadget,
};

/// The number of constraints [`registry_root_gadget`] (or
/// [`MembershipPathVar::root`]) adds for a path of this depth with an
/// allocated leaf and allocated siblings: `depth * (1 + 240)`. Allocating the
/// path with [`MembershipPathVar`] adds `depth` booleanity constraints on
/// top. `None` for a depth outside `MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH`.
pub fn constraint_count(depth: usize) -> Option<usize> {
    if !(MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH).contains(&depth) {
        return None;
    }
    Some(depth * (1 + poseidon_constraint_count(2)?))
}

/// The registry root of a tree holding `leaf` at the position given by
/// `index_bits` (little-endian, `index_bits[i]` is true when the level-`i`
/// node is a right child) with the given siblings (bottom-up): the twin of
/// [`MembershipPath::root_for`]. Enforce the result equal to the public
/// `registry_root` to prove membership.
///
/// # Errors
///
/// [`SynthesisError::ArityMismatch`] if `index_bits` and `siblings` differ in
/// length or their length is not a registry depth
/// (`MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH`); otherwise the constraint
/// system's errors.
pub fn registry_root_gadget(
    leaf: &FpVar<Fr>,
    index_bits: &[Boolean<Fr>],
    siblings: &[FpVar<Fr>],
) -> Result<FpVar<Fr>, SynthesisError> {
    // A Boolean is a 0/1 variable already; as a field element it is a free
    // linear combination.
    let selectors: Vec<FpVar<Fr>> = index_bits.iter().cloned().map(FpVar::from).collect();
    root_from_selectors(leaf, &selectors, siblings)
}

/// The root computation over index bits given as field elements, which the
/// caller must have constrained to `{0, 1}`.
fn root_from_selectors(
    leaf: &FpVar<Fr>,
    selectors: &[FpVar<Fr>],
    siblings: &[FpVar<Fr>],
) -> Result<FpVar<Fr>, SynthesisError> {
    let depth = siblings.len();
    if selectors.len() != depth || !(MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH).contains(&depth) {
        return Err(SynthesisError::ArityMismatch);
    }
    let mut node = leaf.clone();
    for (bit, sibling) in selectors.iter().zip(siblings) {
        // bit = 0: (node, sibling); bit = 1: (sibling, node). One product.
        let left = &node + bit * (sibling - &node);
        let right = &node + sibling - &left;
        node = poseidon_hash2_gadget(&left, &right)?;
    }
    Ok(node)
}

/// Constrains `bit` to `{0, 1}` with `bit * bit = bit` (1 constraint; none
/// for a constant, which is checked directly).
fn enforce_boolean(bit: &FpVar<Fr>) -> Result<(), SynthesisError> {
    match bit {
        FpVar::Constant(b) if b.is_zero() || b.is_one() => Ok(()),
        FpVar::Constant(_) => Err(SynthesisError::Unsatisfiable),
        FpVar::Var(_) => bit.square_equals(bit),
    }
}

/// Allocates one index bit with its booleanity constraint.
fn new_index_bit(
    cs: ConstraintSystemRef<Fr>,
    value: impl FnOnce() -> Result<Fr, SynthesisError>,
    mode: AllocationMode,
) -> Result<FpVar<Fr>, SynthesisError> {
    let bit = FpVar::new_variable(cs, value, mode)?;
    enforce_boolean(&bit)?;
    Ok(bit)
}

/// A [`MembershipPath`] in the constraint system: the index bits
/// (little-endian, each constrained to `{0, 1}`) and the siblings
/// (bottom-up).
///
/// Allocate it with [`AllocVar`] (`MembershipPathVar::new_witness(cs, ||
/// Ok(&path))`), which needs a path even at key generation to know the depth
/// (pass [`MembershipPath::placeholder`]), or with
/// [`new_witness_with_depth`](Self::new_witness_with_depth), which takes the
/// depth separately and calls for the path only when proving. Either way a
/// depth-`d` path allocates `2 * d` witnesses and adds `d` booleanity
/// constraints.
#[derive(Debug, Clone)]
pub struct MembershipPathVar {
    index_bits: Vec<FpVar<Fr>>,
    siblings: Vec<FpVar<Fr>>,
}

impl MembershipPathVar {
    /// Allocates a depth-`depth` path as witnesses. `path` is called once; in
    /// setup mode (key generation) it may fail, and the variables are then
    /// allocated without values.
    ///
    /// # Errors
    ///
    /// [`SynthesisError::ArityMismatch`] if `depth` is not a registry depth
    /// or the path has another depth; outside setup mode, the error of
    /// `path`; otherwise the constraint system's errors.
    pub fn new_witness_with_depth(
        cs: impl Into<Namespace<Fr>>,
        depth: usize,
        path: impl FnOnce() -> Result<MembershipPath, SynthesisError>,
    ) -> Result<Self, SynthesisError> {
        let cs = cs.into().cs();
        if !(MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH).contains(&depth) {
            return Err(SynthesisError::ArityMismatch);
        }
        match path() {
            Ok(path) if path.depth() == depth => {
                Self::allocate(cs, Some(&path), depth, AllocationMode::Witness)
            }
            Ok(_) => Err(SynthesisError::ArityMismatch),
            Err(_) if cs.is_in_setup_mode() => {
                Self::allocate(cs, None, depth, AllocationMode::Witness)
            }
            Err(error) => Err(error),
        }
    }

    /// Allocates `depth` bits and siblings with the values of `path`, or
    /// none.
    fn allocate(
        cs: ConstraintSystemRef<Fr>,
        path: Option<&MembershipPath>,
        depth: usize,
        mode: AllocationMode,
    ) -> Result<Self, SynthesisError> {
        let bits = path.map(MembershipPath::index_bits);
        let index_bits = (0..depth)
            .map(|level| {
                new_index_bit(
                    cs.clone(),
                    || {
                        let bit = bits.as_ref().ok_or(SynthesisError::AssignmentMissing)?[level];
                        Ok(Fr::from(u64::from(bit)))
                    },
                    mode,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let siblings = (0..depth)
            .map(|level| {
                FpVar::new_variable(
                    cs.clone(),
                    || {
                        path.map(|p| p.siblings()[level])
                            .ok_or(SynthesisError::AssignmentMissing)
                    },
                    mode,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            index_bits,
            siblings,
        })
    }

    /// The depth: the number of siblings.
    pub fn depth(&self) -> usize {
        self.siblings.len()
    }

    /// The index bits, little-endian, each constrained to `{0, 1}`.
    pub fn index_bits(&self) -> &[FpVar<Fr>] {
        &self.index_bits
    }

    /// The siblings, bottom-up.
    pub fn siblings(&self) -> &[FpVar<Fr>] {
        &self.siblings
    }

    /// The root of a tree holding `leaf` on this path, in
    /// [`constraint_count`]`(depth)` constraints; the twin of
    /// [`MembershipPath::root_for`].
    ///
    /// # Errors
    ///
    /// The constraint system's errors.
    pub fn root(&self, leaf: &FpVar<Fr>) -> Result<FpVar<Fr>, SynthesisError> {
        root_from_selectors(leaf, &self.index_bits, &self.siblings)
    }
}

impl AllocVar<MembershipPath, Fr> for MembershipPathVar {
    /// Allocates the path's index bits (with booleanity constraints) and
    /// siblings in `mode`. `f` is called in every mode, setup included: the
    /// depth of the path it returns is the shape of the variable.
    fn new_variable<T: Borrow<MembershipPath>>(
        cs: impl Into<Namespace<Fr>>,
        f: impl FnOnce() -> Result<T, SynthesisError>,
        mode: AllocationMode,
    ) -> Result<Self, SynthesisError> {
        let cs = cs.into().cs();
        let path = f()?;
        let path = path.borrow();
        Self::allocate(cs, Some(path), path.depth(), mode)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{tests::random_leaves, RegistryTree, DEFAULT_REGISTRY_DEPTH};
    use super::*;
    use ark_ff::{Field, UniformRand};
    use ark_r1cs_std::{eq::EqGadget, GR1CSVar};
    use ark_relations::gr1cs::{ConstraintSystem, SynthesisMode};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Constraints for a depth-20 root with an allocated leaf and path:
    /// 20 booleanity + 20 * (1 swap + 240 Poseidon). Pinned so that growth
    /// is seen in review.
    const PINNED_DEPTH_20: usize = 4840;

    /// Allocates `leaf` and `path` as witnesses, computes the root in the
    /// circuit and enforces it equal to `root` as a public input.
    fn membership_cs(leaf: Fr, path: &MembershipPath, root: Fr) -> ConstraintSystemRef<Fr> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf_var = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
        let path_var = MembershipPathVar::new_witness(cs.clone(), || Ok(path)).unwrap();
        let computed = path_var.root(&leaf_var).unwrap();
        assert_eq!(computed.value().unwrap(), path.root_for(leaf));
        let root_var = FpVar::new_input(cs.clone(), || Ok(root)).unwrap();
        computed.enforce_equal(&root_var).unwrap();
        cs
    }

    /// The same check through [`registry_root_gadget`] with `Boolean` bits.
    fn membership_cs_booleans(
        leaf: Fr,
        path: &MembershipPath,
        root: Fr,
    ) -> ConstraintSystemRef<Fr> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf_var = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
        let bits = path
            .index_bits()
            .into_iter()
            .map(|b| Boolean::new_witness(cs.clone(), || Ok(b)).unwrap())
            .collect::<Vec<_>>();
        let siblings = path
            .siblings()
            .iter()
            .map(|s| FpVar::new_witness(cs.clone(), || Ok(*s)).unwrap())
            .collect::<Vec<_>>();
        let computed = registry_root_gadget(&leaf_var, &bits, &siblings).unwrap();
        assert_eq!(computed.value().unwrap(), path.root_for(leaf));
        let root_var = FpVar::new_input(cs.clone(), || Ok(root)).unwrap();
        computed.enforce_equal(&root_var).unwrap();
        cs
    }

    fn random_path(rng: &mut impl Rng, depth: usize) -> MembershipPath {
        let index = rng.gen_range(0..1u64 << depth);
        let siblings = (0..depth).map(|_| Fr::rand(rng)).collect();
        MembershipPath::new(index, siblings).unwrap()
    }

    #[test]
    fn gadget_matches_native_for_every_leaf_at_depth_4() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0201);
        let mut tree = RegistryTree::from_leaves(4, &random_leaves(&mut rng, 13)).unwrap();
        tree.revoke(5).unwrap();
        for index in 0..tree.len() {
            let leaf = tree.leaf(index).unwrap();
            let path = tree.path(index).unwrap();
            for cs in [
                membership_cs(leaf, &path, tree.root()),
                membership_cs_booleans(leaf, &path, tree.root()),
            ] {
                assert!(cs.is_satisfied().unwrap(), "leaf {index}");
                // Booleanity, swaps and hashes, and the root equality.
                assert_eq!(cs.num_constraints(), 4 + 4 * 241 + 1);
            }
        }
    }

    #[test]
    fn gadget_matches_native_on_random_paths() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0202);
        for depth in [1, 4, DEFAULT_REGISTRY_DEPTH] {
            for _ in 0..3 {
                let path = random_path(&mut rng, depth);
                let leaf = Fr::rand(&mut rng);
                let root = path.root_for(leaf);
                let cs = membership_cs(leaf, &path, root);
                assert!(cs.is_satisfied().unwrap(), "depth {depth}");
                let cs = membership_cs_booleans(leaf, &path, root);
                assert!(cs.is_satisfied().unwrap(), "depth {depth}");
            }
        }
    }

    #[test]
    fn gadget_matches_a_depth_20_tree() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0203);
        let leaves = random_leaves(&mut rng, 5);
        let tree = RegistryTree::from_leaves(DEFAULT_REGISTRY_DEPTH, &leaves).unwrap();
        for index in [0, 3, 4] {
            let path = tree.path(index).unwrap();
            let cs = membership_cs(leaves[index as usize], &path, tree.root());
            assert!(cs.is_satisfied().unwrap(), "leaf {index}");
        }
    }

    #[test]
    fn constraint_count_is_pinned() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0204);
        let path = random_path(&mut rng, DEFAULT_REGISTRY_DEPTH);
        let leaf = Fr::rand(&mut rng);

        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf_var = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
        let path_var = MembershipPathVar::new_witness(cs.clone(), || Ok(&path)).unwrap();
        assert_eq!(path_var.depth(), 20);
        assert_eq!(path_var.index_bits().len(), 20);
        assert_eq!(path_var.siblings().len(), 20);
        assert_eq!(cs.num_constraints(), 20, "booleanity");
        assert_eq!(cs.num_witness_variables(), 1 + 40);
        let _ = path_var.root(&leaf_var).unwrap();
        assert_eq!(cs.num_constraints(), PINNED_DEPTH_20);
        assert_eq!(constraint_count(20), Some(PINNED_DEPTH_20 - 20));
        assert_eq!(constraint_count(20), Some(20 * (240 + 1)));
        assert!(cs.is_satisfied().unwrap());

        // The Boolean route costs the same (plus the root equality here).
        let cs = membership_cs_booleans(leaf, &path, path.root_for(leaf));
        assert_eq!(cs.num_constraints(), PINNED_DEPTH_20 + 1);

        assert_eq!(constraint_count(0), None);
        assert_eq!(constraint_count(33), None);
        assert_eq!(constraint_count(1), Some(241));
    }

    #[test]
    fn setup_mode_has_the_same_shape() {
        // Key generation: no path values, only the depth.
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(SynthesisMode::Setup);
        let leaf = FpVar::new_witness(cs.clone(), || -> Result<Fr, _> { unreachable!() }).unwrap();
        let path = MembershipPathVar::new_witness_with_depth(cs.clone(), 20, || {
            Err(SynthesisError::AssignmentMissing)
        })
        .unwrap();
        let root = path.root(&leaf).unwrap();
        assert!(root.value().is_err());
        assert_eq!(cs.num_constraints(), PINNED_DEPTH_20);

        // With a placeholder path through AllocVar: the same shape again.
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_mode(SynthesisMode::Setup);
        let leaf = FpVar::new_witness(cs.clone(), || -> Result<Fr, _> { unreachable!() }).unwrap();
        let placeholder = MembershipPath::placeholder(20).unwrap();
        let path = MembershipPathVar::new_witness(cs.clone(), || Ok(placeholder)).unwrap();
        let _ = path.root(&leaf).unwrap();
        assert_eq!(cs.num_constraints(), PINNED_DEPTH_20);
    }

    #[test]
    fn new_witness_with_depth_checks_the_path() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0205);
        let path = random_path(&mut rng, 4);
        let leaf = Fr::rand(&mut rng);
        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf_var = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
        let path_var =
            MembershipPathVar::new_witness_with_depth(cs.clone(), 4, || Ok(path.clone())).unwrap();
        assert_eq!(
            path_var.root(&leaf_var).unwrap().value().unwrap(),
            path.root_for(leaf)
        );
        assert!(cs.is_satisfied().unwrap());
        // Wrong depth, bad depth, missing values when proving.
        let err = |depth, p: Result<MembershipPath, SynthesisError>| {
            MembershipPathVar::new_witness_with_depth(cs.clone(), depth, || p).unwrap_err()
        };
        assert_eq!(err(5, Ok(path.clone())), SynthesisError::ArityMismatch);
        assert_eq!(err(0, Ok(path.clone())), SynthesisError::ArityMismatch);
        assert_eq!(err(33, Ok(path.clone())), SynthesisError::ArityMismatch);
        assert_eq!(
            err(4, Err(SynthesisError::AssignmentMissing)),
            SynthesisError::AssignmentMissing
        );
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf = FpVar::new_witness(cs.clone(), || Ok(Fr::from(1u64))).unwrap();
        let bits = |n| {
            (0..n)
                .map(|_| Boolean::new_witness(cs.clone(), || Ok(true)).unwrap())
                .collect::<Vec<_>>()
        };
        let siblings = |n| {
            (0..n)
                .map(|_| FpVar::new_witness(cs.clone(), || Ok(Fr::from(2u64))).unwrap())
                .collect::<Vec<_>>()
        };
        let before = cs.num_constraints();
        for (b, s) in [(3, 4), (4, 3), (0, 0), (33, 33)] {
            assert_eq!(
                registry_root_gadget(&leaf, &bits(b), &siblings(s)).unwrap_err(),
                SynthesisError::ArityMismatch,
                "{b} bits, {s} siblings"
            );
        }
        // Only the booleanity constraints of the allocated bits were added.
        assert_eq!(cs.num_constraints(), before + 3 + 4 + 33);
    }

    #[test]
    fn constant_path_matches_native() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0206);
        let path = random_path(&mut rng, 4);
        let leaf = Fr::rand(&mut rng);
        let path_var = MembershipPathVar::new_constant(ConstraintSystemRef::None, &path).unwrap();
        let root = path_var.root(&FpVar::Constant(leaf)).unwrap();
        assert!(root.is_constant());
        assert_eq!(root.value().unwrap(), path.root_for(leaf));
    }

    /// A depth-4 tree, a leaf in it, its path and the root.
    fn fixture(seed: u64) -> (RegistryTree, u64, Fr, MembershipPath) {
        let mut rng = StdRng::seed_from_u64(seed);
        let tree = RegistryTree::from_leaves(4, &random_leaves(&mut rng, 11)).unwrap();
        let index = 6;
        let leaf = tree.leaf(index).unwrap();
        let path = tree.path(index).unwrap();
        (tree, index, leaf, path)
    }

    #[test]
    fn wrong_sibling_is_unsatisfied() {
        let (tree, index, leaf, path) = fixture(0x5eed_0207);
        for level in 0..path.depth() {
            let mut siblings = path.siblings().to_vec();
            siblings[level] += Fr::from(1u64);
            let bad = MembershipPath::new(index, siblings).unwrap();
            for cs in [
                membership_cs(leaf, &bad, tree.root()),
                membership_cs_booleans(leaf, &bad, tree.root()),
            ] {
                assert!(!cs.is_satisfied().unwrap(), "level {level}");
            }
        }
    }

    #[test]
    fn wrong_leaf_is_unsatisfied() {
        let (tree, _, leaf, path) = fixture(0x5eed_0208);
        // Another leaf of the tree, a tweaked leaf, and the zero leaf of a
        // revoked position.
        for bad in [tree.leaf(7).unwrap(), leaf + Fr::from(1u64), Fr::zero()] {
            for cs in [
                membership_cs(bad, &path, tree.root()),
                membership_cs_booleans(bad, &path, tree.root()),
            ] {
                assert!(!cs.is_satisfied().unwrap());
            }
        }
        // A revoked leaf no longer proves membership in the new root.
        let mut revoked = tree.clone();
        revoked.revoke(6).unwrap();
        assert!(!membership_cs(leaf, &path, revoked.root())
            .is_satisfied()
            .unwrap());
        assert!(
            !membership_cs(leaf, &revoked.path(6).unwrap(), revoked.root())
                .is_satisfied()
                .unwrap()
        );
    }

    #[test]
    fn flipped_index_bit_is_unsatisfied() {
        let (tree, index, leaf, path) = fixture(0x5eed_0209);
        for level in 0..path.depth() {
            let flipped =
                MembershipPath::new(index ^ (1 << level), path.siblings().to_vec()).unwrap();
            for cs in [
                membership_cs(leaf, &flipped, tree.root()),
                membership_cs_booleans(leaf, &flipped, tree.root()),
            ] {
                assert!(!cs.is_satisfied().unwrap(), "level {level}");
            }
        }
    }

    /// Builds the membership system with raw field-element index "bits",
    /// through the same root computation as [`MembershipPathVar::root`], and
    /// with or without the booleanity constraint that
    /// [`MembershipPathVar`] puts on each bit ([`new_index_bit`]).
    fn raw_bits_cs(
        leaf: Fr,
        bits: &[Fr],
        siblings: &[Fr],
        root: Fr,
        booleanity: bool,
    ) -> ConstraintSystemRef<Fr> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf_var = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
        let bit_vars: Vec<FpVar<Fr>> = bits
            .iter()
            .map(|b| {
                if booleanity {
                    new_index_bit(cs.clone(), || Ok(*b), AllocationMode::Witness).unwrap()
                } else {
                    FpVar::new_witness(cs.clone(), || Ok(*b)).unwrap()
                }
            })
            .collect();
        let sibling_vars: Vec<FpVar<Fr>> = siblings
            .iter()
            .map(|s| FpVar::new_witness(cs.clone(), || Ok(*s)).unwrap())
            .collect();
        let computed = root_from_selectors(&leaf_var, &bit_vars, &sibling_vars).unwrap();
        let root_var = FpVar::new_input(cs.clone(), || Ok(root)).unwrap();
        computed.enforce_equal(&root_var).unwrap();
        cs
    }

    fn bits_of(path: &MembershipPath) -> Vec<Fr> {
        path.index_bits()
            .into_iter()
            .map(|b| Fr::from(u64::from(b)))
            .collect()
    }

    #[test]
    fn non_boolean_index_bit_is_rejected() {
        // Leaves 0 and 1 equal: at level 0 the sibling equals the node, so an
        // index "bit" of 2 leaves the swap (and so the root) unchanged and
        // every constraint but booleanity holds.
        let leaf = Fr::from(42u64);
        let tree = RegistryTree::from_leaves(4, &[leaf, leaf, Fr::from(7u64)]).unwrap();
        let path = tree.path(0).unwrap();
        let mut bits = bits_of(&path);
        assert_eq!(bits, vec![Fr::zero(); 4]);
        assert!(raw_bits_cs(leaf, &bits, path.siblings(), tree.root(), true)
            .is_satisfied()
            .unwrap());

        bits[0] = Fr::from(2u64);
        let unchecked = raw_bits_cs(leaf, &bits, path.siblings(), tree.root(), false);
        assert!(
            unchecked.is_satisfied().unwrap(),
            "only booleanity can catch it"
        );
        let checked = raw_bits_cs(leaf, &bits, path.siblings(), tree.root(), true);
        assert!(!checked.is_satisfied().unwrap());
        assert!(checked.which_is_unsatisfied().unwrap().is_some());
        // A constant non-boolean bit is refused at synthesis.
        assert_eq!(
            enforce_boolean(&FpVar::Constant(Fr::from(2u64))).unwrap_err(),
            SynthesisError::Unsatisfiable
        );
        for b in [Fr::zero(), Fr::one()] {
            enforce_boolean(&FpVar::Constant(b)).unwrap();
        }
    }

    #[test]
    fn non_boolean_index_bit_would_forge_membership() {
        // Why booleanity matters: with a field-element "bit" b, the swap is
        // left = x + b (s - x), right = x + s - left. For any fake leaf x,
        // take s = L + S - x and b = (L - x) / (s - x), where (L, S) are the
        // real children at level 0: then (left, right) = (L, S) and the fake
        // leaf hashes to the real root.
        let (tree, index, real_leaf, path) = fixture(0x5eed_020a);
        assert_eq!(index & 1, 0, "the real leaf is a left child");
        let (l, s) = (real_leaf, path.siblings()[0]);
        let fake = Fr::from(1234u64);
        assert!(!path.verify(fake, tree.root()));
        let forged_sibling = l + s - fake;
        let forged_bit = (l - fake) * (forged_sibling - fake).inverse().unwrap();
        let mut siblings = path.siblings().to_vec();
        siblings[0] = forged_sibling;
        let mut bits = bits_of(&path);
        bits[0] = forged_bit;

        let unchecked = raw_bits_cs(fake, &bits, &siblings, tree.root(), false);
        assert!(
            unchecked.is_satisfied().unwrap(),
            "the forgery works without booleanity"
        );
        let checked = raw_bits_cs(fake, &bits, &siblings, tree.root(), true);
        assert!(!checked.is_satisfied().unwrap(), "booleanity stops it");
    }
}
