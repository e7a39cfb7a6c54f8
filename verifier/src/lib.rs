//! zkcohort-verifier: the trial sponsor's standalone check of eligibility proofs and
//! study bundles, with few dependencies. Filled by the prover/verifier issue; the
//! crate exists now so the workspace layout is complete.
