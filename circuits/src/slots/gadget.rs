//! The slot tree in the circuit: open one slot of the record's 4-ary tree.

use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::prelude::*;
use ark_relations::gr1cs::SynthesisError;

use crate::poseidon::gadget::poseidon_hash_gadget;
use crate::Fr;

/// The root reached from `leaf` with the slot index's bits (little-endian, two per
/// level) and three siblings per level. Each level costs a 4-input Poseidon (297
/// constraints) and 8 constraints to place the node among its siblings.
///
/// # Errors
/// [`SynthesisError::ArityMismatch`] when there are not two bits per level of siblings.
pub fn slot_root_gadget(
    leaf: &FpVar<Fr>,
    index_bits: &[Boolean<Fr>],
    siblings: &[[FpVar<Fr>; 3]],
) -> Result<FpVar<Fr>, SynthesisError> {
    if index_bits.len() != 2 * siblings.len() {
        return Err(SynthesisError::ArityMismatch);
    }
    let mut node = leaf.clone();
    for (digit, [s0, s1, s2]) in index_bits.chunks(2).zip(siblings) {
        let (b0, b1) = (FpVar::from(digit[0].clone()), FpVar::from(digit[1].clone()));
        // One-hot position selectors: e3 = b0·b1 costs a constraint, the rest are linear.
        let e3 = &b0 * &b1;
        let e1 = &b0 - &e3;
        let e2 = &b1 - &e3;
        let e0 = FpVar::one() - &b0 - &b1 + &e3;
        let b1_s1 = &b1 * s1;
        let child0 = s0 + &e0 * (&node - s0);
        let child1 = &e0 * s0 + &e1 * &node + &b1_s1;
        let child2 = s1 - &b1_s1 + &e2 * &node + &e3 * s2;
        let child3 = s2 + &e3 * (&node - s2);
        node = poseidon_hash_gadget(&[child0, child1, child2, child3])?;
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::SlotTree;
    use ark_relations::gr1cs::ConstraintSystem;
    use zkcohort_cohort::{Catalog, Day, RecordSummary};

    fn allocate(
        cs: &ark_relations::gr1cs::ConstraintSystemRef<Fr>,
        index: usize,
        levels: usize,
        siblings: &[[Fr; 3]],
    ) -> (Vec<Boolean<Fr>>, Vec<[FpVar<Fr>; 3]>) {
        let bits = (0..2 * levels)
            .map(|bit| Boolean::new_witness(cs.clone(), || Ok((index >> bit) & 1 == 1)).unwrap())
            .collect();
        let siblings = siblings
            .iter()
            .map(|level| {
                level.map(|sibling| FpVar::new_witness(cs.clone(), || Ok(sibling)).unwrap())
            })
            .collect();
        (bits, siblings)
    }

    #[test]
    fn every_position_matches_the_native_tree_and_cost_is_pinned() {
        let catalog = Catalog::bundled();
        let mut summary = RecordSummary::empty(catalog);
        summary.slot_mut(7).record(Day(100), 5);
        let tree = SlotTree::new(&summary, 10).unwrap();
        // Slots whose base-4 digits cover every position at every level.
        for index in [0, 1, 2, 3, 7, 27, 228, 1023] {
            let opening = tree.open(index).unwrap();
            let cs = ConstraintSystem::<Fr>::new_ref();
            let leaf = FpVar::new_witness(cs.clone(), || Ok(tree.leaf(index))).unwrap();
            let (bits, siblings) = allocate(&cs, index, 5, &opening.siblings);
            let before = cs.num_constraints();
            let root = slot_root_gadget(&leaf, &bits, &siblings).unwrap();
            assert_eq!(cs.num_constraints() - before, 5 * (297 + 8), "slot {index}");
            assert_eq!(root.value().unwrap(), tree.root(), "slot {index}");
            let expected = FpVar::new_input(cs.clone(), || Ok(tree.root())).unwrap();
            root.enforce_equal(&expected).unwrap();
            assert!(cs.is_satisfied().unwrap(), "slot {index}");
        }
    }

    #[test]
    fn wrong_leaf_sibling_or_position_is_unsatisfied() {
        let mut summary = RecordSummary::empty(Catalog::bundled());
        for (slot, day) in [(36, 10), (37, 20), (38, 30)] {
            summary.slot_mut(slot).record(Day(day), 1);
        }
        let tree = SlotTree::new(&summary, 8).unwrap();
        let index = 37;
        let opening = tree.open(index).unwrap();
        let check = |leaf: Fr, position: usize, siblings: &[[Fr; 3]]| {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let leaf = FpVar::new_witness(cs.clone(), || Ok(leaf)).unwrap();
            let (bits, siblings) = allocate(&cs, position, 4, siblings);
            let root = slot_root_gadget(&leaf, &bits, &siblings).unwrap();
            let expected = FpVar::new_input(cs.clone(), || Ok(tree.root())).unwrap();
            root.enforce_equal(&expected).unwrap();
            cs.is_satisfied().unwrap()
        };
        assert!(check(tree.leaf(index), index, &opening.siblings));
        assert!(
            !check(tree.leaf(index) + Fr::from(1u64), index, &opening.siblings),
            "tampered leaf"
        );
        let mut wrong = opening.siblings.clone();
        wrong[2][1] += Fr::from(1u64);
        assert!(!check(tree.leaf(index), index, &wrong), "tampered sibling");
        assert!(
            !check(tree.leaf(index), index ^ 2, &opening.siblings),
            "another position"
        );
        let cs = ConstraintSystem::<Fr>::new_ref();
        let leaf = FpVar::new_witness(cs.clone(), || Ok(Fr::from(0u64))).unwrap();
        let (bits, siblings) = allocate(&cs, 0, 4, &opening.siblings);
        assert!(matches!(
            slot_root_gadget(&leaf, &bits[1..], &siblings),
            Err(SynthesisError::ArityMismatch)
        ));
    }
}
