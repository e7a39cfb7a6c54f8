//! The record commitment: a 4-ary Poseidon Merkle tree over a summary's slots,
//! salted at the top so a low-entropy record cannot be guessed from its root.
//!
//! Leaf `i` is `Poseidon(encode_slot(slot_i))` (6 inputs); positions past the catalog
//! hold the empty slot's leaf. A node is `Poseidon(c0, c1, c2, c3)`. The record root
//! is `Poseidon(slots_root, salt)`.
//!
//! Why 4-ary: a clause opens one slot, and 16 clauses each open a path, so the path
//! dominates the circuit. A binary path over 1024 slots costs 10 × 240 constraints;
//! a 4-ary one costs 5 × (297 + 8) — about 900 fewer per clause. The capacity is
//! still `2^slot_depth` slots (`slot_depth` even): 1024 slots are 5 levels.
//!
//! Position convention: a slot index's base-4 digits, least significant first, give
//! the position among its siblings at each level, bottom-up.

#[cfg(feature = "r1cs")]
pub mod gadget;

use std::sync::OnceLock;

use ark_ff::UniformRand;
use zkcohort_cohort::{RecordSummary, Slot};

use crate::encoding::encode_slot;
use crate::poseidon::poseidon_hash_fixed;
use crate::{CircuitError, Fr};

/// Children per node.
pub const ARITY: usize = 4;

/// A record summary's salt: a random field element the patient keeps with the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordSalt(pub Fr);

impl RecordSalt {
    /// A fresh salt from the OS RNG.
    pub fn random() -> Self {
        Self::random_with_rng(&mut rand::rngs::OsRng)
    }

    /// A salt from the given RNG (tests and benches use a seeded one).
    pub fn random_with_rng<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> Self {
        RecordSalt(Fr::rand(rng))
    }
}

/// The leaf of one slot.
///
/// # Errors
/// When the slot holds a date or value outside the circuit's widths.
pub fn slot_leaf(slot: &Slot) -> Result<Fr, CircuitError> {
    Ok(poseidon_hash_fixed(&encode_slot(slot)?))
}

/// The leaf of an empty slot, computed once.
pub fn empty_slot_leaf() -> Fr {
    static EMPTY: OnceLock<Fr> = OnceLock::new();
    *EMPTY.get_or_init(|| slot_leaf(&Slot::default()).expect("the empty slot encodes"))
}

/// The record root: the slots root salted and bound to the catalog version its
/// slots follow (`Poseidon(slots_root, salt, catalog_tag)`).
pub fn record_root(slots_root: Fr, salt: RecordSalt, catalog_tag: Fr) -> Fr {
    poseidon_hash_fixed(&[slots_root, salt.0, catalog_tag])
}

/// The number of 4-ary levels for a slot depth (log2 of the capacity).
///
/// # Errors
/// [`CircuitError::Shape`] when the depth is odd, zero or above 16.
pub fn levels(slot_depth: usize) -> Result<usize, CircuitError> {
    if slot_depth == 0 || slot_depth % 2 != 0 || slot_depth > 16 {
        return Err(CircuitError::Shape(format!(
            "slot depth {slot_depth} must be even, from 2 to 16"
        )));
    }
    Ok(slot_depth / 2)
}

/// A summary's slot tree, every level kept so any slot can be opened.
#[derive(Clone, Debug)]
pub struct SlotTree {
    /// `nodes[0]` are the leaves (only the catalog's slots; the rest are empty),
    /// `nodes[levels]` is `[root]`.
    nodes: Vec<Vec<Fr>>,
    /// The hash of an empty subtree at each level.
    empty: Vec<Fr>,
}

/// The siblings that open one slot: three per level, bottom-up, in position order
/// with the opened node left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotOpening {
    /// The slot's index in the catalog.
    pub index: usize,
    /// Per level, the other three children.
    pub siblings: Vec<[Fr; 3]>,
}

impl SlotOpening {
    /// The root this opening gives for `leaf`.
    pub fn root_for(&self, leaf: Fr) -> Fr {
        let mut node = leaf;
        let mut index = self.index;
        for siblings in &self.siblings {
            node = hash_children(&insert(node, index % ARITY, siblings));
            index /= ARITY;
        }
        node
    }
}

/// The four children with `node` at `position` and the siblings around it.
fn insert(node: Fr, position: usize, siblings: &[Fr; 3]) -> [Fr; ARITY] {
    let mut children = [Fr::from(0u64); ARITY];
    let mut others = siblings.iter();
    for (slot, child) in children.iter_mut().enumerate() {
        *child = if slot == position {
            node
        } else {
            *others.next().expect("three siblings")
        };
    }
    children
}

fn hash_children(children: &[Fr; ARITY]) -> Fr {
    poseidon_hash_fixed(children)
}

impl SlotTree {
    /// The tree of `summary` for a circuit with the given slot depth.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] when the catalog does not fit the depth; [`CircuitError::OutOfRange`]
    /// for a slot the circuit cannot encode.
    pub fn new(summary: &RecordSummary, slot_depth: usize) -> Result<Self, CircuitError> {
        levels(slot_depth)?;
        let capacity = 1_usize << slot_depth;
        if summary.slots().len() > capacity {
            return Err(CircuitError::Shape(format!(
                "the catalog has {} slots; slot depth {slot_depth} holds {capacity}",
                summary.slots().len()
            )));
        }
        let leaves = summary
            .slots()
            .iter()
            .map(slot_leaf)
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_leaves(leaves, slot_depth)
    }

    /// The tree over the given leaves (the rest empty). A wallet may keep leaves
    /// instead of the summary; tests use it to commit to slots no summary could hold.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] for an invalid depth or more leaves than it holds.
    pub fn from_leaves(leaves: Vec<Fr>, slot_depth: usize) -> Result<Self, CircuitError> {
        let levels = levels(slot_depth)?;
        if leaves.len() > 1 << slot_depth {
            return Err(CircuitError::Shape(format!(
                "{} leaves do not fit slot depth {slot_depth}",
                leaves.len()
            )));
        }
        let mut empty = vec![empty_slot_leaf()];
        for level in 0..levels {
            empty.push(hash_children(&[empty[level]; ARITY]));
        }
        let mut nodes = vec![leaves];
        for level in 0..levels {
            let below = &nodes[level];
            let parents = below
                .chunks(ARITY)
                .map(|chunk| {
                    let mut children = [empty[level]; ARITY];
                    children[..chunk.len()].copy_from_slice(chunk);
                    hash_children(&children)
                })
                .collect();
            nodes.push(parents);
        }
        Ok(SlotTree { nodes, empty })
    }

    /// The slots root (before salting).
    pub fn root(&self) -> Fr {
        self.nodes
            .last()
            .and_then(|top| top.first())
            .copied()
            .unwrap_or(*self.empty.last().expect("levels > 0"))
    }

    /// The leaf at `index`.
    pub fn leaf(&self, index: usize) -> Fr {
        self.node(0, index)
    }

    fn node(&self, level: usize, index: usize) -> Fr {
        self.nodes[level]
            .get(index)
            .copied()
            .unwrap_or(self.empty[level])
    }

    /// The opening of slot `index`.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] when the index is past the tree's capacity.
    pub fn open(&self, index: usize) -> Result<SlotOpening, CircuitError> {
        let levels = self.nodes.len() - 1;
        if index >= ARITY.pow(levels as u32) {
            return Err(CircuitError::Shape(format!(
                "slot {index} is past the tree's capacity"
            )));
        }
        let mut siblings = Vec::with_capacity(levels);
        let mut position = index;
        for level in 0..levels {
            let first = position - position % ARITY;
            let others: Vec<Fr> = (first..first + ARITY)
                .filter(|child| *child != position)
                .map(|child| self.node(level, child))
                .collect();
            siblings.push([others[0], others[1], others[2]]);
            position /= ARITY;
        }
        Ok(SlotOpening { index, siblings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};
    use zkcohort_cohort::{Catalog, Day};

    fn sample_summary() -> RecordSummary {
        let catalog = Catalog::bundled();
        let mut summary = RecordSummary::empty(catalog);
        summary
            .slot_mut(catalog.index_of("hypertension").unwrap())
            .record(Day(15_000), 1);
        summary
            .slot_mut(catalog.index_of("hba1c").unwrap())
            .record(Day(17_000), 65);
        summary
            .slot_mut(catalog.index_of("hba1c").unwrap())
            .record(Day(18_000), -3);
        summary
    }

    /// The root from all 4^levels leaves, hashed level by level with no shortcuts.
    fn naive_root(summary: &RecordSummary, slot_depth: usize) -> Fr {
        let mut level: Vec<Fr> = (0..1 << slot_depth)
            .map(|index| {
                summary
                    .slots()
                    .get(index)
                    .map_or(empty_slot_leaf(), |slot| slot_leaf(slot).unwrap())
            })
            .collect();
        while level.len() > 1 {
            level = level
                .chunks(4)
                .map(|chunk| poseidon_hash_fixed(&[chunk[0], chunk[1], chunk[2], chunk[3]]))
                .collect();
        }
        level[0]
    }

    #[test]
    fn root_matches_the_naive_tree_and_openings_verify() {
        let summary = sample_summary();
        for depth in [8, 10] {
            let tree = SlotTree::new(&summary, depth).unwrap();
            assert_eq!(tree.root(), naive_root(&summary, depth), "depth {depth}");
            for index in [0, 3, 4, 17, 154, 155, 255] {
                let opening = tree.open(index).unwrap();
                assert_eq!(opening.siblings.len(), depth / 2);
                assert_eq!(
                    opening.root_for(tree.leaf(index)),
                    tree.root(),
                    "slot {index}"
                );
            }
        }
    }

    #[test]
    fn a_tampered_slot_or_index_gives_another_root() {
        let summary = sample_summary();
        let tree = SlotTree::new(&summary, 10).unwrap();
        let hba1c = Catalog::bundled().index_of("hba1c").unwrap();
        let opening = tree.open(hba1c).unwrap();
        let honest = *summary.slot(hba1c);
        let edits: [fn(&mut Slot); 4] = [
            |slot| slot.count += 1,
            |slot| slot.max_value += 1,
            |slot| slot.recent[3].as_mut().unwrap().value += 1,
            |slot| slot.recent[3].as_mut().unwrap().day.0 += 1,
        ];
        for edit in edits {
            let mut tampered = honest;
            edit(&mut tampered);
            assert_ne!(opening.root_for(slot_leaf(&tampered).unwrap()), tree.root());
        }
        let moved = SlotOpening {
            index: hba1c ^ 1,
            ..opening
        };
        assert_ne!(moved.root_for(tree.leaf(hba1c)), tree.root());
    }

    #[test]
    fn shapes_that_cannot_hold_the_catalog_are_refused() {
        let summary = sample_summary();
        assert!(
            matches!(SlotTree::new(&summary, 6), Err(CircuitError::Shape(_))),
            "155 slots do not fit 64"
        );
        assert!(
            matches!(SlotTree::new(&summary, 9), Err(CircuitError::Shape(_))),
            "odd depth"
        );
        assert!(SlotTree::new(&summary, 8).unwrap().open(256).is_err());
        let mut out_of_range = summary.clone();
        out_of_range.slot_mut(0).min_value = i64::MAX;
        assert!(matches!(
            SlotTree::new(&out_of_range, 8),
            Err(CircuitError::OutOfRange { .. })
        ));
    }

    #[test]
    fn salt_changes_the_record_root() {
        let tree = SlotTree::new(&sample_summary(), 8).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let (a, b) = (
            RecordSalt::random_with_rng(&mut rng),
            RecordSalt::random_with_rng(&mut rng),
        );
        let tag = crate::encoding::catalog_tag("test");
        assert_ne!(
            record_root(tree.root(), a, tag),
            record_root(tree.root(), b, tag)
        );
        assert_ne!(
            record_root(tree.root(), a, tag),
            record_root(tree.root(), a, crate::encoding::catalog_tag("other"))
        );
    }
}
