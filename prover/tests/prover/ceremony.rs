//! The multi-party ceremony: keys from three contributors prove and verify, a setup whose
//! trapdoor is known forges proofs that ceremony keys refuse, and every tampering of a
//! transcript fails verification with the step and reason named. A tiny shape (one clause).

use std::sync::OnceLock;

use crate::common::{request_for, section, TINY as SHAPE, TINY_QUERY};
use ark_bn254::{Bn254, Fr, G1Affine, G1Projective, G2Affine};
use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::{Field, UniformRand};
use ark_groth16::{Groth16, Proof, VerifyingKey};
use rand::{rngs::StdRng, SeedableRng};
use zkcohort_circuits::circuit::{CircuitShape, EligibilityCircuit};
use zkcohort_circuits::identity::Nullifier;
use zkcohort_circuits::statement::Statement;
use zkcohort_prover::ceremony::{
    transcript, CeremonyError, Circuit, Fault, InvalidTranscript, Phase1, Phase2, Step,
};
use zkcohort_prover::reduction::CircomReduction;
use zkcohort_prover::ProverError;

/// Contributor names of equal length, so that their records can be swapped in place.
const NAMES: [&str; 3] = ["alice", "bobby", "carol"];

fn circuit() -> &'static Circuit {
    static CIRCUIT: OnceLock<Circuit> = OnceLock::new();
    CIRCUIT.get_or_init(|| Circuit::of(SHAPE).unwrap())
}

/// Every test ceremony's cost doubles with its domain: the shapes the suites set up stay
/// under their powers of two (the tiny one here, the small one of the market and CLI
/// suites and the demo).
#[test]
fn the_test_shapes_fit_their_power_of_two_domains() {
    assert_eq!(circuit().domain_power(), 13, "the tiny shape");
    let small = Circuit::of(CircuitShape::SMALL).unwrap();
    assert_eq!(small.domain_power(), 15, "the small shape");
}

/// A prepared phase 1 with two contributions, and a phase 2 over it with three: the files.
fn ceremony() -> &'static (Vec<u8>, Vec<u8>) {
    static FILES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(11);
        let mut phase1 = Phase1::new(circuit().domain_power()).unwrap();
        phase1.contribute("one", &mut rng).unwrap();
        phase1.contribute("two", &mut rng).unwrap();
        phase1.prepare();
        let mut phase2 = Phase2::new(circuit(), &phase1).unwrap();
        for name in NAMES {
            phase2.contribute(name, &mut rng).unwrap();
        }
        (phase1.to_bytes(), phase2.to_zkey(circuit()))
    })
}

/// Copies `length` bytes from `from` to `to` (both offsets in the file).
fn copy_within(bytes: &mut [u8], from: usize, to: usize, length: usize) {
    let source = bytes[from..from + length].to_vec();
    bytes[to..to + length].copy_from_slice(&source);
}

fn verify(phase1: &[u8], zkey: &[u8]) -> Result<(), InvalidTranscript> {
    match transcript::verify(circuit(), phase1, zkey) {
        Ok(_) => Ok(()),
        Err(ProverError::Ceremony(CeremonyError::Invalid(invalid))) => Err(invalid),
        Err(other) => panic!("expected a transcript fault, got {other}"),
    }
}

fn phase2_step(index: usize) -> Step {
    Step::Phase2Contribution {
        index,
        name: NAMES[index - 1].to_string(),
    }
}

// Offsets in the zkey's header section (2): n8q, q, n8r, r, nVars, nPublic, domainSize,
// then alpha1 (64), beta1 (64), beta2 (128), gamma2 (128), delta1 (64), delta2 (128).
const ALPHA1: usize = 4 + 32 + 4 + 32 + 12;
const DELTA1: usize = ALPHA1 + 64 + 64 + 128 + 128;
const DELTA2: usize = DELTA1 + 64;
// A contribution record in section 10: deltaAfter, g1_s, g1_sx (64 each), g2_spx (128),
// transcript (64), type, parameter length, parameters (name: 1 | 5 | "alice").
const RECORD: usize = 3 * 64 + 128 + 64 + 4 + 4 + 7;
const G2_SPX: usize = 3 * 64;

#[test]
fn three_party_ceremony_keys_prove_and_verify() {
    let (phase1, zkey) = ceremony();
    let (keys, id) = transcript::finalize(Circuit::of(SHAPE).unwrap(), phase1, zkey).unwrap();
    assert_eq!(id, transcript::TranscriptId::of(phase1, zkey));
    let proof = keys
        .prove_with_rng(
            &request_for(SHAPE, TINY_QUERY),
            &mut StdRng::seed_from_u64(5),
        )
        .unwrap();
    let prepared = zkcohort_verifier::prepare_verifying_key(keys.verifying_key());
    assert!(zkcohort_verifier::verify(&prepared, &proof.statement, &proof.proof).unwrap());
    let other = Statement {
        nullifier: Nullifier(proof.statement.nullifier.0 + Fr::from(1u64)),
        ..proof.statement
    };
    assert!(!zkcohort_verifier::verify(&prepared, &other, &proof.proof).unwrap());
    // Contributions change delta: the keys are not the initial ones.
    assert_ne!(keys.verifying_key().delta_g2, G2Affine::generator());

    // The files read back to the same state.
    let state = Phase2::from_zkey(circuit(), zkey).unwrap();
    assert_eq!(state.contributions().len(), 3);
    assert_eq!(state.to_zkey(circuit()), *zkey);
    assert_eq!(Phase1::read(phase1).unwrap().to_bytes(), *phase1);
}

/// A forged proof for any statement from a trapdoor: `A = α`, `B = β`, `C = −(γ/δ)·IC(x)`
/// satisfies `e(A, B) = e(α, β)·e(IC(x), γ)·e(C, δ)`.
fn forge(vk: &VerifyingKey<Bn254>, statement: &Statement, gamma_over_delta: Fr) -> Proof<Bn254> {
    let inputs = statement.to_public_inputs();
    let ic = vk.gamma_abc_g1[0].into_group()
        + G1Projective::msm_unchecked(&vk.gamma_abc_g1[1..], &inputs);
    Proof {
        a: vk.alpha_g1,
        b: vk.beta_g2,
        c: (-(ic * gamma_over_delta)).into_affine(),
    }
}

#[test]
fn a_known_trapdoor_forges_proofs_that_ceremony_keys_refuse() {
    // A test-only setup whose trapdoor the test knows.
    let mut rng = StdRng::seed_from_u64(21);
    let [alpha, beta, gamma, delta] = [(); 4].map(|_| Fr::rand(&mut rng));
    let known = Groth16::<Bn254, CircomReduction>::generate_parameters_with_qap(
        EligibilityCircuit::blank(SHAPE),
        alpha,
        beta,
        gamma,
        delta,
        G1Affine::generator().into_group(),
        G2Affine::generator().into_group(),
        &mut rng,
    )
    .unwrap()
    .vk;
    // A statement no witness backs: a nullifier nobody derived.
    let statement = Statement {
        nullifier: Nullifier(Fr::from(123_456_789u64)),
        ..request_for(SHAPE, TINY_QUERY)
            .build(SHAPE, Fr::from(7u64))
            .unwrap()
            .0
    };
    let ratio = gamma * delta.inverse().unwrap();
    let forged = forge(&known, &statement, ratio);
    let verify = |vk: &VerifyingKey<Bn254>, proof: &Proof<Bn254>| {
        zkcohort_verifier::verify(
            &zkcohort_verifier::prepare_verifying_key(vk),
            &statement,
            proof,
        )
        .unwrap()
    };
    assert!(verify(&known, &forged), "the trapdoor forges");

    let (phase1, zkey) = ceremony();
    let (keys, _) = transcript::finalize(Circuit::of(SHAPE).unwrap(), phase1, zkey).unwrap();
    let ceremony_vk = keys.verifying_key();
    assert!(
        !verify(ceremony_vk, &forged),
        "a forged proof of other keys"
    );
    // The same recipe on the ceremony's keys with the known setup's trapdoor, and with
    // gamma/delta = 1 (the values before any contribution), fails too.
    assert!(!verify(ceremony_vk, &forge(ceremony_vk, &statement, ratio)));
    assert!(!verify(
        ceremony_vk,
        &forge(ceremony_vk, &statement, Fr::from(1u64))
    ));
}

#[test]
fn the_untampered_transcript_verifies() {
    let (phase1, zkey) = ceremony();
    verify(phase1, zkey).unwrap();
}

#[test]
fn a_changed_delta_fails() {
    let (phase1, zkey) = ceremony();
    let mut tampered = zkey.clone();
    let header = section(&tampered, 2).start;
    // delta1 replaced by alpha1, a valid point.
    copy_within(&mut tampered, header + ALPHA1, header + DELTA1, 64);
    assert_eq!(
        verify(phase1, &tampered).unwrap_err(),
        InvalidTranscript {
            step: Step::Phase2Keys,
            fault: Fault::FinalValue("delta·G1"),
        }
    );
    // delta2 replaced by beta2: delta in G2 no longer matches delta in G1.
    let mut tampered = zkey.clone();
    copy_within(&mut tampered, header + ALPHA1 + 128, header + DELTA2, 128);
    assert_eq!(
        verify(phase1, &tampered).unwrap_err().fault,
        Fault::G2Mismatch("delta")
    );
}

#[test]
fn a_wrong_proof_of_knowledge_fails() {
    let (phase1, zkey) = ceremony();
    let mut tampered = zkey.clone();
    let records = section(&tampered, 10).start + 64 + 4;
    // The second contribution's g2_spx replaced by the first's.
    copy_within(
        &mut tampered,
        records + G2_SPX,
        records + RECORD + G2_SPX,
        128,
    );
    assert_eq!(
        verify(phase1, &tampered).unwrap_err(),
        InvalidTranscript {
            step: phase2_step(2),
            fault: Fault::ProofOfKnowledge("delta"),
        }
    );
    // The third contribution's deltaAfter replaced by the second's: its key no longer
    // explains the step.
    let mut tampered = zkey.clone();
    copy_within(&mut tampered, records + RECORD, records + 2 * RECORD, 64);
    assert_eq!(
        verify(phase1, &tampered).unwrap_err(),
        InvalidTranscript {
            step: phase2_step(3),
            fault: Fault::Update("delta·G1"),
        }
    );
}

#[test]
fn a_changed_l_or_h_element_fails() {
    let (phase1, zkey) = ceremony();
    for (id, name) in [(8, "L"), (9, "H")] {
        let mut tampered = zkey.clone();
        let points = section(&tampered, id).start;
        copy_within(&mut tampered, points + 64, points, 64);
        assert_eq!(
            verify(phase1, &tampered).unwrap_err(),
            InvalidTranscript {
                step: Step::Phase2Keys,
                fault: Fault::Query(name),
            },
            "section {id}"
        );
    }
}

#[test]
fn reordered_contributions_fail() {
    let (phase1, zkey) = ceremony();
    let mut tampered = zkey.clone();
    let records = section(&tampered, 10).start + 64 + 4;
    let first = tampered[records..records + RECORD].to_vec();
    copy_within(&mut tampered, records + RECORD, records, RECORD);
    tampered[records + RECORD..records + 2 * RECORD].copy_from_slice(&first);
    assert_eq!(
        verify(phase1, &tampered).unwrap_err(),
        InvalidTranscript {
            step: Step::Phase2Contribution {
                index: 1,
                name: "bobby".into(),
            },
            fault: Fault::TranscriptHash,
        }
    );
}

#[test]
fn a_changed_phase1_power_fails() {
    let (phase1, zkey) = ceremony();
    let mut tampered = phase1.clone();
    let powers = section(&tampered, 2).start;
    copy_within(&mut tampered, powers + 6 * 64, powers + 5 * 64, 64);
    assert_eq!(
        verify(&tampered, zkey).unwrap_err(),
        InvalidTranscript {
            step: Step::Phase1Powers,
            fault: Fault::Powers("the tau·G1 powers"),
        }
    );
    // A Lagrange basis point changed.
    let mut tampered = phase1.clone();
    let bases = section(&tampered, 14).start;
    copy_within(&mut tampered, bases + 4 * 64, bases + 5 * 64, 64);
    assert!(matches!(
        verify(&tampered, zkey).unwrap_err().fault,
        Fault::Lagrange("alpha·tau·G1", _)
    ));
}

#[test]
fn a_wrong_phase1_proof_of_knowledge_fails() {
    let (phase1, zkey) = ceremony();
    // Our section (100): origin, count, then per contribution: name, five first values
    // (G1, G2, G1, G1, G2), three keys (G1, G1, G2), the response.
    let mut tampered = phase1.clone();
    let ours = section(&tampered, 100).start + 4 + 4;
    let record = 1 + 3 + 3 * 64 + 2 * 128 + 3 * (2 * 64 + 128) + 64;
    let alpha_key = 1 + 3 + 3 * 64 + 2 * 128 + (2 * 64 + 128);
    // The second contribution's alpha g1_sx replaced by its g1_s.
    copy_within(
        &mut tampered,
        ours + record + alpha_key,
        ours + record + alpha_key + 64,
        64,
    );
    assert_eq!(
        verify(&tampered, zkey).unwrap_err(),
        InvalidTranscript {
            step: Step::Phase1Contribution {
                index: 2,
                name: "two".into(),
            },
            fault: Fault::ProofOfKnowledge("alpha"),
        }
    );
}

#[test]
fn a_point_off_the_curve_is_refused_when_read() {
    let (_, zkey) = ceremony();
    let mut tampered = zkey.clone();
    let points = section(&tampered, 5).start;
    tampered[points + 70] ^= 1;
    assert!(matches!(
        Phase2::from_zkey(circuit(), &tampered),
        Err(CeremonyError::Format { file: "zkey", .. })
    ));
}

#[test]
fn no_contribution_is_refused() {
    let (phase1, _) = ceremony();
    let phase1_state = Phase1::read(phase1).unwrap();
    let initial = Phase2::new(circuit(), &phase1_state).unwrap();
    assert_eq!(
        verify(phase1, &initial.to_zkey(circuit())).unwrap_err(),
        InvalidTranscript {
            step: Step::Phase2Keys,
            fault: Fault::NoContribution,
        }
    );
    let fresh = Phase1::new(3).unwrap();
    assert_eq!(fresh.verify().unwrap_err().fault, Fault::NoContribution);
}

#[test]
fn a_beacon_contribution_verifies_and_a_forged_one_fails() {
    let (phase1_bytes, zkey) = ceremony();
    let phase1 = Phase1::read(phase1_bytes).unwrap();
    let mut state = Phase2::from_zkey(circuit(), zkey).unwrap();
    state.beacon("beacon", &[0xab; 32], 10).unwrap();
    state.verify(circuit(), &phase1).unwrap();
    // The same record claiming another beacon hash.
    let mut bytes = state.to_zkey(circuit());
    let end = section(&bytes, 10).end;
    bytes[end - 1] ^= 1;
    assert_eq!(
        verify(phase1_bytes, &bytes).unwrap_err(),
        InvalidTranscript {
            step: Step::Phase2Contribution {
                index: 4,
                name: "beacon".into(),
            },
            fault: Fault::Beacon,
        }
    );
}
