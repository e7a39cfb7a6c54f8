//! zkcohort-prover: circuit setup and proving keys, witness building from a
//! patient's wallet, and rayon-parallel Groth16 proving. Filled by the prover issue;
//! the crate exists now so the workspace layout is complete.
