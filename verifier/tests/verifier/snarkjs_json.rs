//! The snarkjs JSON formats: round trips through real keys and proofs, a key
//! written by snarkjs, and every kind of malformed input rejected with an error
//! that names the field.

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{BigInteger, Field, PrimeField, UniformRand};
use rand::{rngs::StdRng, SeedableRng};
use serde_json::{json, Value};
use zkcohort_verifier::snarkjs::{
    g1_to_json, g2_to_json, proof_from_json, proof_to_json, public_signals_from_json,
    statement_from_json, statement_to_json, verifying_key_from_json, verifying_key_to_json,
    SnarkjsProof, SnarkjsVerifyingKey,
};
use zkcohort_verifier::{prepare_verifying_key, verify_inputs, VerifierError, PUBLIC_INPUTS};

/// A `verification_key.json` written by snarkjs (nPublic 2), from the public
/// repository that vectors/README.md names.
const SNARKJS_KEY: &str = include_str!("../vectors/snarkjs_verification_key.json");

fn fixture() -> (
    ark_groth16::VerifyingKey<ark_bn254::Bn254>,
    zkcohort_verifier::Statement,
    zkcohort_verifier::Proof<ark_bn254::Bn254>,
) {
    let (proving_key, verifying_key) = crate::common::setup(1);
    let mut rng = StdRng::seed_from_u64(2);
    let (statement, proof) = crate::common::prove(&proving_key, 7, &mut rng);
    (verifying_key, statement, proof)
}

/// `value + q` in decimal: the same field element, not canonical.
fn plus_modulus(value: &Fq) -> String {
    let mut sum = value.into_bigint();
    assert!(!sum.add_with_carry(&Fq::MODULUS));
    sum.to_string()
}

fn edit(text: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(text).unwrap();
    change(&mut value);
    value.to_string()
}

#[test]
fn proofs_round_trip_in_the_snarkjs_layout() {
    let (_, _, proof) = fixture();
    let text = proof_to_json(&proof);
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["protocol"], "groth16");
    assert_eq!(value["curve"], "bn128");
    assert_eq!(value["pi_a"][2], "1");
    assert_eq!(value["pi_b"][2], json!(["1", "0"]));
    assert_eq!(value["pi_c"][2], "1");
    // Fq2 coordinates are [c0, c1].
    assert_eq!(
        value["pi_b"][0][1],
        proof.b.x().unwrap().c1.into_bigint().to_string()
    );
    assert_eq!(proof_from_json(&text).unwrap(), proof);
    assert_eq!(
        SnarkjsProof::from_json(&text).unwrap(),
        SnarkjsProof::from_proof(&proof)
    );
}

#[test]
fn keys_round_trip_with_alphabeta() {
    let (vk, _, _) = fixture();
    let text = verifying_key_to_json(&vk);
    let json = SnarkjsVerifyingKey::from_json(&text).unwrap();
    assert_eq!(json.n_public, PUBLIC_INPUTS);
    assert_eq!(json.ic.len(), PUBLIC_INPUTS + 1);
    assert!(json.vk_alphabeta_12.is_some());
    assert_eq!(verifying_key_from_json(&text).unwrap(), vk);
    // Without vk_alphabeta_12, or with the empty array some tools write.
    for alphabeta in [None, Some(json!([]))] {
        let text = edit(&text, |value| match alphabeta {
            None => {
                value.as_object_mut().unwrap().remove("vk_alphabeta_12");
            }
            Some(empty) => value["vk_alphabeta_12"] = empty,
        });
        assert_eq!(verifying_key_from_json(&text).unwrap(), vk);
    }
}

#[test]
fn a_key_written_by_snarkjs_reads_and_round_trips() {
    let vk = verifying_key_from_json(SNARKJS_KEY).unwrap();
    assert_eq!(vk.gamma_abc_g1.len(), 3);
    // Our writer reproduces snarkjs's file exactly, vk_alphabeta_12 included,
    // which pins the Fq2 [c0, c1] and Fq12 layouts and the pairing's value.
    let ours: Value = serde_json::from_str(&verifying_key_to_json(&vk)).unwrap();
    let theirs: Value = serde_json::from_str(SNARKJS_KEY).unwrap();
    assert_eq!(ours, theirs);
    // The coordinate order matters: [c1, c0] is not a point on the curve.
    let swapped = edit(SNARKJS_KEY, |value| {
        let x = value["vk_beta_2"][0].as_array_mut().unwrap();
        x.swap(0, 1);
    });
    assert_eq!(
        verifying_key_from_json(&swapped),
        Err(VerifierError::NotOnCurve {
            field: "vk_beta_2".into()
        })
    );
}

#[test]
fn public_signals_round_trip_and_must_be_canonical() {
    let (_, statement, _) = fixture();
    let text = statement_to_json(&statement);
    assert_eq!(
        serde_json::from_str::<Vec<String>>(&text).unwrap(),
        statement.to_decimal_strings()
    );
    assert_eq!(statement_from_json(&text).unwrap(), statement);

    // nullifier + r: the same field element, refused (Semaphore's double spend).
    let mut signals = statement.to_decimal_strings();
    let mut big = statement.nullifier.0.into_bigint();
    assert!(!big.add_with_carry(&Fr::MODULUS));
    signals[3] = big.to_string();
    let error = statement_from_json(&serde_json::to_string(&signals).unwrap()).unwrap_err();
    assert!(matches!(error, VerifierError::Statement(_)), "{error}");
    assert!(error.to_string().contains("nullifier"), "{error}");

    for bad in [
        json!(["1", "2", "3", "4", "5", "6"]),
        json!(["1", "2", "3", "4", "5", "6", "7", "8"]),
    ] {
        assert!(matches!(
            statement_from_json(&bad.to_string()),
            Err(VerifierError::Statement(_))
        ));
    }
    match public_signals_from_json(r#"["1", 2]"#) {
        Err(VerifierError::Json { path, .. }) => assert_eq!(path, "[1]"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        public_signals_from_json(r#"["1", "-2"]"#),
        Err(VerifierError::Statement(_))
    ));
}

#[test]
fn coordinates_must_be_canonical_decimals() {
    let (_, _, proof) = fixture();
    let text = proof_to_json(&proof);
    let x = proof.a.x().unwrap();
    let cases = [
        ("pi_a", 0, json!(plus_modulus(&x))),
        ("pi_a", 0, json!(Fq::MODULUS.to_string())),
        ("pi_a", 0, json!("9".repeat(80))),
        ("pi_a", 0, json!(format!("0{}", x.into_bigint()))),
        ("pi_a", 0, json!(format!("0x{}", x.into_bigint()))),
        ("pi_c", 1, json!("-1")),
        ("pi_c", 1, json!("")),
    ];
    for (point, index, replacement) in cases {
        let bad = edit(&text, |value| value[point][index] = replacement.clone());
        match proof_from_json(&bad) {
            Err(VerifierError::Coordinate { field, .. }) => {
                assert_eq!(field, format!("{point}[{index}]"))
            }
            other => panic!("{point}[{index}] = {replacement}: {other:?}"),
        }
    }
    let bad = edit(&text, |value| {
        value["pi_b"][1][1] = json!(plus_modulus(&proof.b.y().unwrap().c1))
    });
    match proof_from_json(&bad) {
        Err(VerifierError::Coordinate { field, reason }) => {
            assert_eq!(field, "pi_b[1][1]");
            assert!(reason.contains("modulus"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn projective_z_must_be_one_or_infinity() {
    let (_, _, proof) = fixture();
    let text = proof_to_json(&proof);
    // A valid Jacobian representation with z = 2 is still refused: snarkjs
    // writes affine points.
    let bad = edit(&text, |value| value["pi_a"][2] = json!("2"));
    assert!(
        matches!(proof_from_json(&bad), Err(VerifierError::Coordinate { field, .. }) if field == "pi_a")
    );
    let bad = edit(&text, |value| value["pi_b"][2] = json!(["1", "1"]));
    assert!(
        matches!(proof_from_json(&bad), Err(VerifierError::Coordinate { field, .. }) if field == "pi_b")
    );
    // Infinity in the snarkjs form is understood, but not allowed in a proof.
    let bad = edit(&text, |value| value["pi_c"] = json!(["0", "1", "0"]));
    assert_eq!(
        proof_from_json(&bad),
        Err(VerifierError::Infinity {
            field: "pi_c".into()
        })
    );
}

#[test]
fn points_off_the_curve_are_rejected() {
    let (vk, _, proof) = fixture();
    let mut a = proof.a;
    a.y += Fq::ONE;
    let mut json = SnarkjsProof::from_proof(&proof);
    json.pi_a = g1_to_json(&a);
    assert_eq!(
        json.to_proof(),
        Err(VerifierError::NotOnCurve {
            field: "pi_a".into()
        })
    );
    let mut b = proof.b;
    b.x.c1 += Fq::ONE;
    let mut json = SnarkjsProof::from_proof(&proof);
    json.pi_b = g2_to_json(&b);
    assert_eq!(
        json.to_proof(),
        Err(VerifierError::NotOnCurve {
            field: "pi_b".into()
        })
    );
    let mut key = SnarkjsVerifyingKey::from_verifying_key(&vk);
    let mut ic = vk.gamma_abc_g1[4];
    ic.x += Fq::ONE;
    key.ic[4] = g1_to_json(&ic);
    assert_eq!(
        key.to_verifying_key(),
        Err(VerifierError::NotOnCurve {
            field: "IC[4]".into()
        })
    );
}

/// A point on the twist curve but not in the prime-order subgroup: a random x
/// with a square root, not multiplied by the cofactor.
fn outside_subgroup() -> G2Affine {
    let mut rng = StdRng::seed_from_u64(3);
    loop {
        let x = Fq2::rand(&mut rng);
        if let Some(point) = G2Affine::get_point_from_x_unchecked(x, false) {
            assert!(point.is_on_curve());
            if !point.is_in_correct_subgroup_assuming_on_curve() {
                return point;
            }
        }
    }
}

#[test]
fn g2_points_outside_the_subgroup_are_rejected() {
    let (vk, _, proof) = fixture();
    let rogue = outside_subgroup();
    // Cleared by the cofactor it would be a fine point: the subgroup check is
    // what rejects it, not the curve equation.
    assert!(rogue
        .clear_cofactor()
        .is_in_correct_subgroup_assuming_on_curve());
    let mut json = SnarkjsProof::from_proof(&proof);
    json.pi_b = g2_to_json(&rogue);
    assert_eq!(
        json.to_proof(),
        Err(VerifierError::NotInSubgroup {
            field: "pi_b".into()
        })
    );
    let mut key = SnarkjsVerifyingKey::from_verifying_key(&vk);
    key.vk_delta_2 = g2_to_json(&rogue);
    key.vk_alphabeta_12 = None;
    assert_eq!(
        key.to_verifying_key(),
        Err(VerifierError::NotInSubgroup {
            field: "vk_delta_2".into()
        })
    );
}

#[test]
fn inconsistent_keys_are_rejected() {
    let (vk, statement, proof) = fixture();
    let key = SnarkjsVerifyingKey::from_verifying_key(&vk);

    let mut wrong = key.clone();
    wrong.n_public = 4;
    assert!(
        matches!(wrong.to_verifying_key(), Err(VerifierError::Key(message)) if message.contains("nPublic"))
    );

    let mut wrong = key.clone();
    wrong.vk_delta_2 = wrong.vk_gamma_2.clone();
    assert!(
        matches!(wrong.to_verifying_key(), Err(VerifierError::Key(message)) if message.contains("vk_gamma_2"))
    );

    let mut wrong = key.clone();
    wrong.vk_alpha_1 = g1_to_json(&(vk.alpha_g1 + G1Affine::generator()).into_affine());
    assert!(
        matches!(wrong.to_verifying_key(), Err(VerifierError::Key(message)) if message.contains("vk_alphabeta_12"))
    );

    let mut wrong = key.clone();
    wrong.vk_beta_2 = g2_to_json(&G2Affine::zero());
    wrong.vk_alphabeta_12 = None;
    assert_eq!(
        wrong.to_verifying_key(),
        Err(VerifierError::Infinity {
            field: "vk_beta_2".into()
        })
    );

    // An IC entry at infinity is a legitimate (if unusual) key.
    let mut odd = key.clone();
    odd.ic[0] = g1_to_json(&G1Affine::zero());
    assert_eq!(
        odd.to_verifying_key().unwrap().gamma_abc_g1[0],
        G1Affine::zero()
    );

    for (field, value) in [("protocol", "plonk"), ("curve", "bls12381")] {
        let text = edit(&key.to_json(), |json| json[field] = json!(value));
        assert!(matches!(
            verifying_key_from_json(&text),
            Err(VerifierError::Unsupported { field: found, .. }) if found == field
        ));
    }
    let text = edit(&proof_to_json(&proof), |json| {
        json["protocol"] = json!("fflonk")
    });
    assert!(matches!(
        proof_from_json(&text),
        Err(VerifierError::Unsupported {
            field: "protocol",
            ..
        })
    ));

    // A key for another number of inputs cannot check the statement.
    let wrong_count = verifying_key_from_json(SNARKJS_KEY).unwrap();
    assert_eq!(
        verify_inputs(
            &prepare_verifying_key(&wrong_count),
            &statement.to_public_inputs(),
            &proof
        ),
        Err(VerifierError::InputCount {
            expected: 2,
            got: PUBLIC_INPUTS
        })
    );
}

#[test]
fn malformed_json_names_the_path() {
    let (vk, _, proof) = fixture();
    let text = proof_to_json(&proof);
    let cases = [
        (edit(&text, |json| json["pi_a"] = json!(["1", "2"])), "pi_a"),
        (
            edit(&text, |json| json["pi_b"][1][0] = json!(5)),
            "pi_b[1][0]",
        ),
        (
            edit(&text, |json| {
                json.as_object_mut().unwrap().remove("pi_c");
            }),
            ".",
        ),
        (format!("{text} {{}}"), "."),
        ("{".to_owned(), "."),
    ];
    for (bad, path) in cases {
        match proof_from_json(&bad) {
            Err(VerifierError::Json { path: found, .. }) => assert_eq!(found, path, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    let key = verifying_key_to_json(&vk);
    let bad = edit(&key, |json| json["IC"][2] = json!("12"));
    assert!(
        matches!(verifying_key_from_json(&bad), Err(VerifierError::Json { path, .. }) if path == "IC[2]")
    );
    let bad = edit(&key, |json| json["nPublic"] = json!(-1));
    assert!(
        matches!(verifying_key_from_json(&bad), Err(VerifierError::Json { path, .. }) if path == "nPublic")
    );
}

#[test]
fn a_proof_made_by_snarkjs_verifies() {
    let vk = prepare_verifying_key(&verifying_key_from_json(SNARKJS_KEY).unwrap());
    let proof = proof_from_json(include_str!("../vectors/snarkjs_proof.json")).unwrap();
    let inputs = public_signals_from_json(include_str!("../vectors/snarkjs_public.json")).unwrap();
    assert_eq!(verify_inputs(&vk, &inputs, &proof), Ok(true));
    let mut swapped = inputs.clone();
    swapped.swap(0, 1);
    assert_eq!(verify_inputs(&vk, &swapped, &proof), Ok(false));
}
