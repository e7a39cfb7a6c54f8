//! The issuers' registry: an append-only binary Poseidon Merkle tree of record
//! leaves, whose root is the public `registry_root` of every proof.
//!
//! Each leaf is `Poseidon(record_commitment, issuer_id, issued_at)`
//! ([`crate::record::registry_leaf`]), computed by the marketplace over the
//! authenticated issuer's id; this module takes leaves as field elements. Nodes are hashed as in Semaphore and LeanIMT:
//! `node = Poseidon(left, right)` ([`poseidon_hash2`]), the circomlib
//! `Poseidon(2)`.
//!
//! # Shape
//!
//! A tree has a fixed depth `d` ([`MIN_REGISTRY_DEPTH`]`..=`[`MAX_REGISTRY_DEPTH`],
//! [`DEFAULT_REGISTRY_DEPTH`] by default) and room for `2^d` leaves, filled
//! left to right. An empty position holds the **zero leaf** `0`, so an empty
//! subtree of height `h` hashes to the zero hash `zero[h]`, with `zero[0] = 0`
//! and `zero[h + 1] = Poseidon(zero[h], zero[h])` ([`zero_hashes`]).
//!
//! **Revocation** sets a leaf back to the zero leaf. Since zero means
//! "empty or revoked", the zero leaf cannot be appended
//! ([`CircuitError::RegistryZeroLeaf`]); a real leaf is a Poseidon output, so a
//! prover cannot exhibit a preimage of a revoked (zero) position.
//!
//! # Index convention
//!
//! Bit `i` of a leaf's index, counted little-endian (bit 0 is the least
//! significant), says whether the node on the leaf's path at level `i` (level
//! 0 is the leaf itself) is the **right** child (`1`) or the **left** child
//! (`0`) of its parent. A [`MembershipPath`] lists the siblings bottom-up:
//! `siblings[i]` is the other child of the parent of the level-`i` node. The
//! gadget (`gadget`, feature `r1cs`) uses the same convention.
//!
//! # Storage and cost
//!
//! [`RegistryTree`] keeps, for each level, the nodes that have at least one
//! appended leaf below them, in a `Vec` that grows as leaves are appended;
//! every other node is the zero hash of its level. So memory is about two
//! field elements per leaf, [`RegistryTree::append`] and
//! [`RegistryTree::revoke`] cost `d` hashes, [`RegistryTree::path`] reads
//! `d` nodes, and [`RegistryTree::from_leaves`] builds a tree of `n` leaves
//! with about `n + d` hashes (wallets download the leaves page by page and
//! rebuild their path locally, so no request reveals which leaf is theirs).
//! [`RegistryTree::extend`] appends `k` leaves at once in about `k + 2d`
//! hashes.

#[cfg(feature = "r1cs")]
pub mod gadget;

use std::ops::Range;
use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::Zero;

use crate::poseidon::poseidon_hash2;
use crate::CircuitError;

/// The registry depth of the reference circuit shape: room for 2^20
/// (about a million) record leaves.
pub const DEFAULT_REGISTRY_DEPTH: usize = 20;
/// The smallest registry depth.
pub const MIN_REGISTRY_DEPTH: usize = 1;
/// The largest registry depth (leaf indices fit in 32 bits).
pub const MAX_REGISTRY_DEPTH: usize = 32;

/// Checks that `depth` is in `MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH`.
fn check_depth(depth: usize) -> Result<(), CircuitError> {
    if (MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH).contains(&depth) {
        Ok(())
    } else {
        Err(CircuitError::RegistryDepth {
            got: depth,
            min: MIN_REGISTRY_DEPTH,
            max: MAX_REGISTRY_DEPTH,
        })
    }
}

/// The zero hashes `zero[0..=depth]`: `zero[0] = 0` (the zero leaf) and
/// `zero[h + 1] = Poseidon(zero[h], zero[h])`, the root of an empty subtree of
/// height `h + 1`. `zero[depth]` is the root of an empty tree.
///
/// Computed once per process (32 hashes) and shared by every depth.
///
/// # Errors
///
/// [`CircuitError::RegistryDepth`] if `depth` is not in
/// `MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH`.
pub fn zero_hashes(depth: usize) -> Result<&'static [Fr], CircuitError> {
    check_depth(depth)?;
    Ok(&all_zero_hashes()[..=depth])
}

/// The root of an empty tree of this depth, `zero_hashes(depth)?[depth]`.
///
/// # Errors
///
/// [`CircuitError::RegistryDepth`] if `depth` is not in
/// `MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH`.
pub fn empty_root(depth: usize) -> Result<Fr, CircuitError> {
    Ok(zero_hashes(depth)?[depth])
}

/// `zero[0..=MAX_REGISTRY_DEPTH]`, cached.
fn all_zero_hashes() -> &'static [Fr; MAX_REGISTRY_DEPTH + 1] {
    static ZERO_HASHES: OnceLock<[Fr; MAX_REGISTRY_DEPTH + 1]> = OnceLock::new();
    ZERO_HASHES.get_or_init(|| {
        let mut zeros = [Fr::zero(); MAX_REGISTRY_DEPTH + 1];
        for level in 0..MAX_REGISTRY_DEPTH {
            zeros[level + 1] = poseidon_hash2(zeros[level], zeros[level]);
        }
        zeros
    })
}

/// The number of leaves a tree of this (valid) depth holds, `2^depth`.
fn capacity_of(depth: usize) -> u64 {
    1u64 << depth
}

/// The issuers' registry tree: an append-only Poseidon Merkle tree of record
/// leaves with revocation. See the [module documentation](self) for the
/// shape, the index convention and the costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTree {
    depth: usize,
    /// `levels[0]` holds the leaves, `levels[h]` the nodes of height `h` that
    /// have an appended leaf below them (`ceil(len / 2^h)` nodes), and
    /// `levels[depth]` at most the root. A node past the end of its level is
    /// the zero hash of that level.
    levels: Vec<Vec<Fr>>,
    zeros: &'static [Fr],
}

impl RegistryTree {
    /// An empty tree of the given depth.
    ///
    /// # Errors
    ///
    /// [`CircuitError::RegistryDepth`] if `depth` is not in
    /// `MIN_REGISTRY_DEPTH..=MAX_REGISTRY_DEPTH`.
    pub fn new(depth: usize) -> Result<Self, CircuitError> {
        let zeros = zero_hashes(depth)?;
        Ok(Self {
            depth,
            levels: vec![Vec::new(); depth + 1],
            zeros,
        })
    }

    /// A tree holding `leaves` at indices `0..leaves.len()`, as if they had
    /// been appended one by one (and the zero ones revoked), in about
    /// `leaves.len() + depth` hashes.
    ///
    /// Zero leaves are accepted here: they are revoked positions, as a wallet
    /// finds them in the leaf pages it downloads.
    ///
    /// # Errors
    ///
    /// [`CircuitError::RegistryDepth`] for a bad depth; [`CircuitError::RegistryFull`] if
    /// there are more than `2^depth` leaves.
    pub fn from_leaves(depth: usize, leaves: &[Fr]) -> Result<Self, CircuitError> {
        let mut tree = Self::new(depth)?;
        let capacity = capacity_of(depth);
        if leaves.len() as u64 > capacity {
            return Err(CircuitError::RegistryFull { depth, capacity });
        }
        tree.levels[0] = leaves.to_vec();
        for level in 1..=depth {
            tree.levels[level].reserve_exact(leaves.len().div_ceil(1 << level));
        }
        tree.rehash(0, leaves.len());
        Ok(tree)
    }

    /// The depth `d`: every path has `d` siblings.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The number of leaves the tree can hold, `2^depth`.
    pub fn capacity(&self) -> u64 {
        capacity_of(self.depth)
    }

    /// The number of leaves appended so far, revoked ones included; the next
    /// [`append`](Self::append) gets this index.
    pub fn len(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Whether no leaf has been appended yet.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The root: the public `registry_root` that proofs against this state of
    /// the registry use.
    pub fn root(&self) -> Fr {
        self.levels[self.depth]
            .first()
            .copied()
            .unwrap_or(self.zeros[self.depth])
    }

    /// The leaves appended so far in index order, revoked ones as zero (what
    /// the marketplace serves in pages).
    pub fn leaves(&self) -> &[Fr] {
        &self.levels[0]
    }

    /// The leaf at `index`: `Some(0)` if it was revoked, `None` if nothing
    /// was appended there.
    pub fn leaf(&self, index: u64) -> Option<Fr> {
        let index = usize::try_from(index).ok()?;
        self.levels[0].get(index).copied()
    }

    /// Whether the leaf at `index` was appended and then revoked (or was
    /// zero in [`from_leaves`](Self::from_leaves)).
    pub fn is_revoked(&self, index: u64) -> bool {
        self.leaf(index).is_some_and(|leaf| leaf.is_zero())
    }

    /// Appends `leaf` at index [`len`](Self::len) and returns that index, in
    /// `depth` hashes.
    ///
    /// # Errors
    ///
    /// [`CircuitError::RegistryZeroLeaf`] if `leaf` is zero (it would read as
    /// revoked); [`CircuitError::RegistryFull`] if the tree holds `2^depth` leaves.
    pub fn append(&mut self, leaf: Fr) -> Result<u64, CircuitError> {
        if leaf.is_zero() {
            return Err(CircuitError::RegistryZeroLeaf);
        }
        let index = self.len();
        if index >= self.capacity() {
            return Err(CircuitError::RegistryFull {
                depth: self.depth,
                capacity: self.capacity(),
            });
        }
        self.levels[0].push(leaf);
        self.rehash(self.levels[0].len() - 1, self.levels[0].len());
        Ok(index)
    }

    /// Appends `leaves` in order and returns their index range, in about
    /// `leaves.len() + 2 * depth` hashes rather than the
    /// `depth * leaves.len()` of appending them one by one (each touched
    /// node is rehashed once). All or nothing: on error the tree is
    /// unchanged.
    ///
    /// # Errors
    ///
    /// [`CircuitError::RegistryZeroLeaf`] if any leaf is zero;
    /// [`CircuitError::RegistryFull`] if they do not all fit.
    pub fn extend(&mut self, leaves: &[Fr]) -> Result<Range<u64>, CircuitError> {
        if leaves.iter().any(Zero::is_zero) {
            return Err(CircuitError::RegistryZeroLeaf);
        }
        let first = self.len();
        if leaves.len() as u64 > self.capacity() - first {
            return Err(CircuitError::RegistryFull {
                depth: self.depth,
                capacity: self.capacity(),
            });
        }
        let start = self.levels[0].len();
        self.levels[0].extend_from_slice(leaves);
        self.rehash(start, self.levels[0].len());
        Ok(first..self.len())
    }

    /// Revokes the leaf at `index`: sets it to the zero leaf and updates its
    /// path, in `depth` hashes. The index stays taken: appends continue after
    /// [`len`](Self::len).
    ///
    /// Revoking is not idempotent: a second revocation of the same index is
    /// an error, so that a caller (the marketplace's audit log) never records
    /// a revocation that changed nothing.
    ///
    /// # Errors
    ///
    /// [`CircuitError::RegistryLeafIndex`] if no leaf was appended at `index`;
    /// [`CircuitError::RegistryLeafRevoked`] if it is already revoked.
    pub fn revoke(&mut self, index: u64) -> Result<(), CircuitError> {
        let position = self.position(index)?;
        if self.levels[0][position].is_zero() {
            return Err(CircuitError::RegistryLeafRevoked { index });
        }
        self.levels[0][position] = Fr::zero();
        self.rehash(position, position + 1);
        Ok(())
    }

    /// The membership path of the leaf at `index` (revoked or not), in
    /// `depth` reads and no hashing.
    ///
    /// # Errors
    ///
    /// [`CircuitError::RegistryLeafIndex`] if no leaf was appended at `index`.
    pub fn path(&self, index: u64) -> Result<MembershipPath, CircuitError> {
        let mut position = self.position(index)?;
        let siblings = (0..self.depth)
            .map(|level| {
                let sibling = self.node(level, position ^ 1);
                position >>= 1;
                sibling
            })
            .collect();
        Ok(MembershipPath { index, siblings })
    }

    /// The vector position of an appended leaf.
    fn position(&self, index: u64) -> Result<usize, CircuitError> {
        usize::try_from(index)
            .ok()
            .filter(|&position| position < self.levels[0].len())
            .ok_or(CircuitError::RegistryLeafIndex {
                index,
                len: self.len(),
            })
    }

    /// The node at `level` and `position`, the zero hash past the end.
    fn node(&self, level: usize, position: usize) -> Fr {
        self.levels[level]
            .get(position)
            .copied()
            .unwrap_or(self.zeros[level])
    }

    /// Rehashes every ancestor of the leaves at positions `start..end`, each
    /// once, pushing a node onto its level when it is the first one with a
    /// leaf below it. Every leaf before `start` must have its ancestors
    /// stored already.
    fn rehash(&mut self, mut start: usize, mut end: usize) {
        if start >= end {
            return;
        }
        for level in 0..self.depth {
            // The parents of positions start..end at this level.
            let (first, last) = (start >> 1, (end - 1) >> 1);
            for position in first..=last {
                let parent = poseidon_hash2(
                    self.node(level, 2 * position),
                    self.node(level, 2 * position + 1),
                );
                let parents = &mut self.levels[level + 1];
                if position == parents.len() {
                    parents.push(parent);
                } else {
                    parents[position] = parent;
                }
            }
            (start, end) = (first, last + 1);
        }
    }
}

/// A leaf's membership path in a [`RegistryTree`]: its index and its
/// siblings bottom-up. With the leaf, it recomputes the root; in the circuit
/// it is the private witness of statement 1 ("the leaf is in the registry").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipPath {
    index: u64,
    /// `siblings[i]` is the sibling of the path's node at level `i`.
    siblings: Vec<Fr>,
}

impl MembershipPath {
    /// A path from its parts: the leaf index and the siblings bottom-up (their
    /// number is the depth).
    ///
    /// # Errors
    ///
    /// [`CircuitError::RegistryDepth`] if the number of siblings is not a valid
    /// depth; [`CircuitError::RegistryPathIndex`] if `index >= 2^depth`.
    pub fn new(index: u64, siblings: Vec<Fr>) -> Result<Self, CircuitError> {
        let depth = siblings.len();
        check_depth(depth)?;
        if index >= capacity_of(depth) {
            return Err(CircuitError::RegistryPathIndex { index, depth });
        }
        Ok(Self { index, siblings })
    }

    /// A path of the given depth with index 0 and zero siblings: a
    /// placeholder for circuit synthesis when only the shape matters (key
    /// generation).
    ///
    /// # Errors
    ///
    /// [`CircuitError::RegistryDepth`] for a bad depth.
    pub fn placeholder(depth: usize) -> Result<Self, CircuitError> {
        Self::new(0, vec![Fr::zero(); depth])
    }

    /// The leaf index.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The depth: the number of siblings.
    pub fn depth(&self) -> usize {
        self.siblings.len()
    }

    /// The siblings, bottom-up: `siblings()[i]` sits at level `i`.
    pub fn siblings(&self) -> &[Fr] {
        &self.siblings
    }

    /// The `depth` bits of the index, little-endian: `index_bits()[i]` is
    /// `true` when the path's node at level `i` is a right child.
    pub fn index_bits(&self) -> Vec<bool> {
        (0..self.depth())
            .map(|level| (self.index >> level) & 1 == 1)
            .collect()
    }

    /// The root of a tree holding `leaf` at this path's position, computed
    /// natively in `depth` hashes.
    pub fn root_for(&self, leaf: Fr) -> Fr {
        self.siblings
            .iter()
            .enumerate()
            .fold(leaf, |node, (level, &sibling)| {
                if (self.index >> level) & 1 == 1 {
                    poseidon_hash2(sibling, node)
                } else {
                    poseidon_hash2(node, sibling)
                }
            })
    }

    /// Whether this path proves that `leaf` is in the tree with root `root`.
    pub fn verify(&self, leaf: Fr, root: Fr) -> bool {
        self.root_for(leaf) == root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Non-zero random leaves.
    pub(crate) fn random_leaves(rng: &mut impl Rng, n: usize) -> Vec<Fr> {
        (0..n)
            .map(|_| loop {
                let leaf = Fr::rand(rng);
                if !leaf.is_zero() {
                    break leaf;
                }
            })
            .collect()
    }

    /// The root of a depth-`depth` tree by the definition: pad the leaves to
    /// `2^depth` with zeros and hash level by level. Exponential: small
    /// depths only.
    fn dense_root(depth: usize, leaves: &[Fr]) -> Fr {
        let mut level = leaves.to_vec();
        level.resize(1 << depth, Fr::zero());
        for _ in 0..depth {
            level = level
                .chunks(2)
                .map(|pair| poseidon_hash2(pair[0], pair[1]))
                .collect();
        }
        level[0]
    }

    /// The root by recursion over subtrees, with empty subtrees hashed from
    /// scratch (no cache, no stored levels): an independent oracle for large
    /// depths and few leaves.
    fn recursive_root(depth: usize, leaves: &[Fr]) -> Fr {
        fn empty(height: usize) -> Fr {
            (0..height).fold(Fr::zero(), |z, _| poseidon_hash2(z, z))
        }
        fn node(height: usize, first: usize, leaves: &[Fr]) -> Fr {
            if height == 0 {
                return leaves.get(first).copied().unwrap_or(Fr::zero());
            }
            if first >= leaves.len() {
                return empty(height);
            }
            let half = 1usize << (height - 1);
            poseidon_hash2(
                node(height - 1, first, leaves),
                node(height - 1, first + half, leaves),
            )
        }
        node(depth, 0, leaves)
    }

    #[test]
    fn zero_hashes_follow_the_definition() {
        let zeros = zero_hashes(DEFAULT_REGISTRY_DEPTH).unwrap();
        assert_eq!(zeros.len(), DEFAULT_REGISTRY_DEPTH + 1);
        assert_eq!(zeros[0], Fr::zero());
        for h in 0..DEFAULT_REGISTRY_DEPTH {
            assert_eq!(zeros[h + 1], poseidon_hash2(zeros[h], zeros[h]));
        }
        // A prefix of one shared cache.
        let max = zero_hashes(MAX_REGISTRY_DEPTH).unwrap();
        assert_eq!(&max[..=DEFAULT_REGISTRY_DEPTH], zeros);
        assert!(std::ptr::eq(zeros.as_ptr(), max.as_ptr()));
        for depth in 1..=4 {
            assert_eq!(empty_root(depth).unwrap(), dense_root(depth, &[]));
        }
    }

    #[test]
    fn empty_tree() {
        let tree = RegistryTree::new(DEFAULT_REGISTRY_DEPTH).unwrap();
        assert!(tree.is_empty());
        assert_eq!(tree.len(), 0);
        assert_eq!(tree.depth(), 20);
        assert_eq!(tree.capacity(), 1 << 20);
        assert_eq!(tree.root(), empty_root(20).unwrap());
        assert_eq!(tree.root(), recursive_root(20, &[]));
        assert_eq!(tree.leaf(0), None);
        assert_eq!(
            tree.path(0),
            Err(CircuitError::RegistryLeafIndex { index: 0, len: 0 })
        );
    }

    #[test]
    fn depth_is_checked() {
        let expected = |got| CircuitError::RegistryDepth {
            got,
            min: MIN_REGISTRY_DEPTH,
            max: MAX_REGISTRY_DEPTH,
        };
        assert_eq!(RegistryTree::new(0), Err(expected(0)));
        assert_eq!(RegistryTree::new(33), Err(expected(33)));
        assert_eq!(RegistryTree::from_leaves(0, &[]), Err(expected(0)));
        assert_eq!(zero_hashes(33), Err(expected(33)));
        assert_eq!(empty_root(0), Err(expected(0)));
        assert_eq!(MembershipPath::new(0, vec![]), Err(expected(0)));
        assert_eq!(MembershipPath::placeholder(40), Err(expected(40)));
        assert!(!expected(0).to_string().is_empty());
        for depth in [MIN_REGISTRY_DEPTH, MAX_REGISTRY_DEPTH] {
            let mut tree = RegistryTree::new(depth).unwrap();
            tree.append(Fr::from(7u64)).unwrap();
            assert!(tree.path(0).unwrap().verify(Fr::from(7u64), tree.root()));
        }
        assert_eq!(
            RegistryTree::new(MAX_REGISTRY_DEPTH).unwrap().capacity(),
            1 << 32
        );
    }

    #[test]
    fn incremental_root_matches_dense_recomputation() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0101);
        let depth = 4;
        let leaves = random_leaves(&mut rng, 16);
        let mut tree = RegistryTree::new(depth).unwrap();
        for (i, leaf) in leaves.iter().enumerate() {
            assert_eq!(tree.append(*leaf).unwrap(), i as u64);
            assert_eq!(tree.root(), dense_root(depth, &leaves[..=i]), "{i}");
            assert_eq!(tree.len(), i as u64 + 1);
            assert_eq!(tree.leaf(i as u64), Some(*leaf));
        }
    }

    #[test]
    fn depth_20_matches_recursive_recomputation() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0102);
        let depth = DEFAULT_REGISTRY_DEPTH;
        let leaves = random_leaves(&mut rng, 5);
        let mut tree = RegistryTree::new(depth).unwrap();
        for (i, leaf) in leaves.iter().enumerate() {
            tree.append(*leaf).unwrap();
            assert_eq!(tree.root(), recursive_root(depth, &leaves[..=i]), "{i}");
        }
        for (i, leaf) in leaves.iter().enumerate() {
            let path = tree.path(i as u64).unwrap();
            assert_eq!(path.depth(), depth);
            assert!(path.verify(*leaf, tree.root()), "{i}");
        }
        assert_eq!(RegistryTree::from_leaves(depth, &leaves).unwrap(), tree);
    }

    #[test]
    fn index_convention_is_little_endian_right_child() {
        // Leaf 6 = 0b110 at depth 3: left child at level 0, right at 1 and 2.
        let leaves: Vec<Fr> = (1..=7u64).map(Fr::from).collect();
        let tree = RegistryTree::from_leaves(3, &leaves).unwrap();
        let path = tree.path(6).unwrap();
        assert_eq!(path.index_bits(), vec![false, true, true]);
        let l = |i: usize| leaves[i];
        let h = poseidon_hash2;
        let zeros = zero_hashes(3).unwrap();
        assert_eq!(path.siblings()[0], zeros[0]);
        assert_eq!(path.siblings()[1], h(l(4), l(5)));
        assert_eq!(path.siblings()[2], h(h(l(0), l(1)), h(l(2), l(3))));
        let n1 = h(l(6), zeros[0]);
        let n2 = h(path.siblings()[1], n1);
        let root = h(path.siblings()[2], n2);
        assert_eq!(tree.root(), root);
        assert_eq!(path.root_for(l(6)), root);
    }

    #[test]
    fn revoke_zeroes_the_leaf() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0103);
        let depth = 4;
        let mut leaves = random_leaves(&mut rng, 11);
        let mut tree = RegistryTree::from_leaves(depth, &leaves).unwrap();
        for index in [3usize, 10, 0] {
            let old_root = tree.root();
            let old_path = tree.path(index as u64).unwrap();
            let old_leaf = leaves[index];
            assert!(old_path.verify(old_leaf, old_root));

            tree.revoke(index as u64).unwrap();
            leaves[index] = Fr::zero();
            assert_eq!(tree.root(), dense_root(depth, &leaves));
            assert_ne!(tree.root(), old_root);
            assert!(!old_path.verify(old_leaf, tree.root()));
            assert!(tree.is_revoked(index as u64));
            assert_eq!(tree.leaf(index as u64), Some(Fr::zero()));
            // Only the zero leaf is at that position now.
            let new_path = tree.path(index as u64).unwrap();
            assert!(new_path.verify(Fr::zero(), tree.root()));
            assert!(!new_path.verify(old_leaf, tree.root()));
            // Every other leaf still verifies.
            for (i, leaf) in leaves.iter().enumerate() {
                assert!(tree.path(i as u64).unwrap().verify(*leaf, tree.root()));
            }
            // Not idempotent: a second revocation is refused and changes nothing.
            let root = tree.root();
            assert_eq!(
                tree.revoke(index as u64),
                Err(CircuitError::RegistryLeafRevoked {
                    index: index as u64
                })
            );
            assert_eq!(tree.root(), root);
        }
        // The index stays taken; appends continue after it.
        assert_eq!(tree.len(), 11);
        assert_eq!(tree.append(Fr::from(5u64)).unwrap(), 11);
        leaves.push(Fr::from(5u64));
        assert_eq!(tree.root(), dense_root(depth, &leaves));
        assert_eq!(RegistryTree::from_leaves(depth, &leaves).unwrap(), tree);
    }

    #[test]
    fn revoke_unknown_index_is_an_error() {
        let mut tree = RegistryTree::new(4).unwrap();
        tree.append(Fr::from(1u64)).unwrap();
        let expected = |index| CircuitError::RegistryLeafIndex { index, len: 1 };
        assert_eq!(tree.revoke(1), Err(expected(1)));
        assert_eq!(tree.revoke(16), Err(expected(16)));
        assert_eq!(tree.revoke(u64::MAX), Err(expected(u64::MAX)));
        assert_eq!(tree.path(1), Err(expected(1)));
        assert_eq!(tree.leaf(u64::MAX), None);
        assert!(!tree.is_revoked(0));
        assert!(!tree.is_revoked(1));
        assert!(!expected(1).to_string().is_empty());
    }

    #[test]
    fn zero_leaf_cannot_be_appended() {
        let mut tree = RegistryTree::new(4).unwrap();
        let root = tree.root();
        assert_eq!(tree.append(Fr::zero()), Err(CircuitError::RegistryZeroLeaf));
        assert!(tree.is_empty());
        assert_eq!(tree.root(), root);
        assert!(!CircuitError::RegistryZeroLeaf.to_string().is_empty());
    }

    #[test]
    fn full_tree_is_an_error() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0104);
        let leaves = random_leaves(&mut rng, 9);
        let full = CircuitError::RegistryFull {
            depth: 3,
            capacity: 8,
        };
        let mut tree = RegistryTree::new(3).unwrap();
        for leaf in &leaves[..8] {
            tree.append(*leaf).unwrap();
        }
        let root = tree.root();
        assert_eq!(tree.append(leaves[8]), Err(full.clone()));
        assert_eq!(tree.len(), 8);
        assert_eq!(tree.root(), root);
        assert_eq!(tree.root(), dense_root(3, &leaves[..8]));
        // Revocation does not free a position.
        tree.revoke(2).unwrap();
        assert_eq!(tree.append(leaves[8]), Err(full.clone()));
        assert_eq!(RegistryTree::from_leaves(3, &leaves), Err(full.clone()));
        assert!(!full.to_string().is_empty());

        let mut tiny = RegistryTree::new(1).unwrap();
        tiny.append(leaves[0]).unwrap();
        tiny.append(leaves[1]).unwrap();
        assert_eq!(tiny.root(), poseidon_hash2(leaves[0], leaves[1]));
        assert!(matches!(
            tiny.append(leaves[2]),
            Err(CircuitError::RegistryFull { .. })
        ));
    }

    #[test]
    fn path_parts_are_checked() {
        assert_eq!(
            MembershipPath::new(16, vec![Fr::zero(); 4]),
            Err(CircuitError::RegistryPathIndex {
                index: 16,
                depth: 4
            })
        );
        let path = MembershipPath::new(15, vec![Fr::from(1u64); 4]).unwrap();
        assert_eq!(path.index(), 15);
        assert_eq!(path.index_bits(), vec![true; 4]);
        let placeholder = MembershipPath::placeholder(20).unwrap();
        assert_eq!(placeholder.depth(), 20);
        assert_eq!(placeholder.index(), 0);
        assert!(MembershipPath::new(u64::MAX, vec![Fr::zero(); 32]).is_err());
        assert!(MembershipPath::new((1 << 32) - 1, vec![Fr::zero(); 32]).is_ok());
    }

    #[test]
    fn extend_is_all_or_nothing() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0106);
        let leaves = random_leaves(&mut rng, 9);
        let mut tree = RegistryTree::new(3).unwrap();
        assert_eq!(tree.extend(&[]).unwrap(), 0..0);
        assert_eq!(tree, RegistryTree::new(3).unwrap());
        assert_eq!(tree.extend(&leaves[..3]).unwrap(), 0..3);
        let before = tree.clone();
        let with_zero = [leaves[3], Fr::zero(), leaves[4]];
        assert_eq!(tree.extend(&with_zero), Err(CircuitError::RegistryZeroLeaf));
        assert_eq!(tree, before);
        assert_eq!(
            tree.extend(&leaves[3..]),
            Err(CircuitError::RegistryFull {
                depth: 3,
                capacity: 8
            })
        );
        assert_eq!(tree, before);
        assert_eq!(tree.extend(&leaves[3..8]).unwrap(), 3..8);
        assert_eq!(tree.root(), dense_root(3, &leaves[..8]));
        assert_eq!(tree.extend(&[]).unwrap(), 8..8);
        assert!(tree.extend(&leaves[8..]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Extending in chunks of any sizes equals appending one by one.
        #[test]
        fn extend_matches_append(seed in any::<u64>(), chunks in proptest::collection::vec(0usize..7, 0..6), depth in 3usize..=6) {
            let mut rng = StdRng::seed_from_u64(seed);
            let total: usize = chunks.iter().sum::<usize>().min(1 << depth);
            let leaves = random_leaves(&mut rng, total);
            let mut one_by_one = RegistryTree::new(depth).unwrap();
            for leaf in &leaves {
                one_by_one.append(*leaf).unwrap();
            }
            let mut extended = RegistryTree::new(depth).unwrap();
            let mut next = 0;
            for size in chunks {
                let size = size.min(total - next);
                let range = extended.extend(&leaves[next..next + size]).unwrap();
                prop_assert_eq!(range, next as u64..(next + size) as u64);
                next += size;
            }
            prop_assert_eq!(&extended, &one_by_one);
            prop_assert_eq!(extended.root(), recursive_root(depth, &leaves));
        }

        /// Appending one by one, building from the list and the dense
        /// definition agree, and every leaf's path verifies (and no other
        /// leaf's does at its position).
        #[test]
        fn append_from_leaves_and_paths_agree(seed in any::<u64>(), n in 0usize..=16, revoked in proptest::collection::vec(0usize..16, 0..4)) {
            let depth = 4;
            let mut rng = StdRng::seed_from_u64(seed);
            let mut leaves = random_leaves(&mut rng, n);
            let mut tree = RegistryTree::new(depth).unwrap();
            for leaf in &leaves {
                tree.append(*leaf).unwrap();
            }
            for index in revoked.into_iter().filter(|&i| i < n) {
                if !leaves[index].is_zero() {
                    tree.revoke(index as u64).unwrap();
                    leaves[index] = Fr::zero();
                }
            }
            prop_assert_eq!(tree.root(), dense_root(depth, &leaves));
            let built = RegistryTree::from_leaves(depth, &leaves).unwrap();
            prop_assert_eq!(&built, &tree);
            prop_assert_eq!(tree.leaves(), &leaves[..]);
            for (i, leaf) in leaves.iter().enumerate() {
                let path = tree.path(i as u64).unwrap();
                prop_assert_eq!(path.index(), i as u64);
                prop_assert!(path.verify(*leaf, tree.root()));
                prop_assert!(!path.verify(*leaf + Fr::from(1u64), tree.root()));
                if n > 1 {
                    let other = leaves[(i + 1) % n];
                    prop_assert_eq!(path.verify(other, tree.root()), other == *leaf);
                }
            }
        }
    }

    /// One-off measurement, not a regression test:
    /// `cargo test -p zkcohort-circuits --release --lib registry::tests::append_benchmark -- --ignored --nocapture`.
    #[test]
    #[ignore = "benchmark; run in release with --ignored --nocapture"]
    fn append_benchmark() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0105);
        let leaves = random_leaves(&mut rng, 100_000);
        let start = std::time::Instant::now();
        for pair in leaves.chunks(2) {
            std::hint::black_box(poseidon_hash2(pair[0], pair[1]));
        }
        let independent = start.elapsed();
        let mut tree = RegistryTree::new(DEFAULT_REGISTRY_DEPTH).unwrap();
        let start = std::time::Instant::now();
        for leaf in &leaves {
            tree.append(*leaf).unwrap();
        }
        let appended = start.elapsed();
        let start = std::time::Instant::now();
        let built = RegistryTree::from_leaves(DEFAULT_REGISTRY_DEPTH, &leaves).unwrap();
        let rebuilt = start.elapsed();
        assert_eq!(built.root(), tree.root());
        let mut extended = RegistryTree::new(DEFAULT_REGISTRY_DEPTH).unwrap();
        let start = std::time::Instant::now();
        for page in leaves.chunks(1000) {
            extended.extend(page).unwrap();
        }
        let paged = start.elapsed();
        assert_eq!(extended.root(), tree.root());
        let start = std::time::Instant::now();
        let mut acc = leaves[0];
        for leaf in &leaves {
            acc = poseidon_hash2(acc, *leaf);
        }
        std::hint::black_box(acc);
        let hashes = start.elapsed();
        let start = std::time::Instant::now();
        for i in 0..1000u64 {
            std::hint::black_box(tree.path(i * 97).unwrap());
        }
        let paths = start.elapsed();
        println!(
            "depth 20, 100000 leaves: append one by one {appended:?} ({:?}/leaf); \
             from_leaves {rebuilt:?}; extend in pages of 1000 {paged:?}; \
             1000 paths {paths:?}; 100000 chained Poseidon(2) {hashes:?}; \
             50000 independent Poseidon(2) {independent:?}",
            appended / 100_000
        );
    }
}
