//! The snarkjs Groth16 JSON formats for BN254, read and written: `proof.json`,
//! `verification_key.json` and the public signals (`public.json`).
//!
//! The formats, as snarkjs and ffjavascript write them (checked against
//! `snarkjs/src/groth16_verify.js` and `ffjavascript/src/wasm_curve.js`,
//! `wasm_field2.js`):
//!
//! - a base-field element (Fq) is a decimal string;
//! - a G1 point is `[x, y, z]` in projective form, written affine with `z = "1"`;
//!   the point at infinity is `["0", "1", "0"]` (`WasmCurve.toObject`);
//! - an Fq2 element `c0 + c1·u` is `[c0, c1]` (`WasmField2.toObject`), so a G2
//!   point is `[[x.c0, x.c1], [y.c0, y.c1], ["1", "0"]]`, infinity
//!   `[["0", "0"], ["1", "0"], ["0", "0"]]`;
//! - `proof.json` is `{"pi_a": G1, "pi_b": G2, "pi_c": G1, "protocol": "groth16",
//!   "curve": "bn128"}`;
//! - `verification_key.json` is `{"protocol", "curve", "nPublic", "vk_alpha_1": G1,
//!   "vk_beta_2": G2, "vk_gamma_2": G2, "vk_delta_2": G2, "vk_alphabeta_12": Fq12,
//!   "IC": [G1; nPublic + 1]}`, where the Fq12 `e(alpha, beta)` is
//!   `[[c0.c0, c0.c1, c0.c2], [c1.c0, c1.c1, c1.c2]]` of Fq2 elements;
//! - public signals are a JSON array of decimal strings of scalar-field (Fr)
//!   elements, in circuit order.
//!
//! Reading is stricter than snarkjs, which reduces any integer modulo the field
//! and accepts any projective `z`: here every coordinate must be a canonical
//! decimal below the modulus, `z` must be 1 or the exact point-at-infinity form,
//! every point must be on the curve and in the prime-order subgroup, `nPublic`
//! must match `IC`, and `vk_alphabeta_12`, when present, must equal
//! `e(vk_alpha_1, vk_beta_2)`. The point at infinity is refused in a proof (an
//! honest prover never produces it) and for the key's `alpha`, `beta`, `gamma`
//! and `delta` (a degenerate key), and allowed in `IC`. Like snarkjs, a key with
//! `vk_gamma_2 == vk_delta_2` is refused: its proofs can be forged.

use ark_bn254::{Bn254, Fq, Fq12, Fq2, Fq6, Fr, G1Affine, G2Affine};
use ark_ec::pairing::Pairing;
use ark_ec::AffineRepr;
use ark_ff::{One, PrimeField, Zero};
use ark_groth16::{Proof, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zkcohort_circuits::statement::{
    field_from_decimal, fr_from_decimal, fr_to_decimal, Statement, PUBLIC_INPUT_NAMES,
};

use crate::VerifierError;

/// The `protocol` value of snarkjs Groth16 files.
pub const PROTOCOL: &str = "groth16";

/// The `curve` value snarkjs writes for BN254.
pub const CURVE: &str = "bn128";

/// A G1 point as snarkjs writes it: `[x, y, z]`, decimal strings.
pub type G1Json = [String; 3];

/// A G2 point as snarkjs writes it: `[[x.c0, x.c1], [y.c0, y.c1], [z.c0, z.c1]]`.
pub type G2Json = [[String; 2]; 3];

/// An Fq12 element as snarkjs writes it: two Fq6 of three Fq2 (`[c0, c1]`) each.
pub type Fq12Json = Vec<Vec<[String; 2]>>;

/// `proof.json`: a Groth16 proof in the snarkjs format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnarkjsProof {
    /// `A`, in G1.
    pub pi_a: G1Json,
    /// `B`, in G2.
    pub pi_b: G2Json,
    /// `C`, in G1.
    pub pi_c: G1Json,
    /// Always `"groth16"`.
    pub protocol: String,
    /// `"bn128"`; some tools (rapidsnark) leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
}

/// `verification_key.json`: a Groth16 verifying key in the snarkjs format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnarkjsVerifyingKey {
    /// Always `"groth16"`.
    pub protocol: String,
    /// `"bn128"`.
    pub curve: String,
    /// The number of public inputs; `IC` has one more entry.
    #[serde(rename = "nPublic")]
    pub n_public: usize,
    /// `alpha`, in G1.
    pub vk_alpha_1: G1Json,
    /// `beta`, in G2.
    pub vk_beta_2: G2Json,
    /// `gamma`, in G2.
    pub vk_gamma_2: G2Json,
    /// `delta`, in G2.
    pub vk_delta_2: G2Json,
    /// `e(alpha, beta)`, which snarkjs writes for its older verifiers; checked
    /// when present and not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vk_alphabeta_12: Option<Fq12Json>,
    /// The input commitments: `IC[0]` plus one per public input.
    #[serde(rename = "IC")]
    pub ic: Vec<G1Json>,
}

impl SnarkjsProof {
    /// The snarkjs form of a proof.
    pub fn from_proof(proof: &Proof<Bn254>) -> Self {
        SnarkjsProof {
            pi_a: g1_to_json(&proof.a),
            pi_b: g2_to_json(&proof.b),
            pi_c: g1_to_json(&proof.c),
            protocol: PROTOCOL.to_owned(),
            curve: Some(CURVE.to_owned()),
        }
    }

    /// The proof, with every coordinate and point checked.
    ///
    /// # Errors
    /// [`VerifierError::Unsupported`] for another protocol or curve; [`VerifierError::Coordinate`],
    /// [`VerifierError::NotOnCurve`], [`VerifierError::NotInSubgroup`] or [`VerifierError::Infinity`]
    /// naming the bad point.
    pub fn to_proof(&self) -> Result<Proof<Bn254>, VerifierError> {
        check_protocol(&self.protocol)?;
        if let Some(curve) = &self.curve {
            check_curve(curve)?;
        }
        Ok(Proof {
            a: g1_from_json(&self.pi_a, "pi_a", false)?,
            b: g2_from_json(&self.pi_b, "pi_b", false)?,
            c: g1_from_json(&self.pi_c, "pi_c", false)?,
        })
    }

    /// Parses `proof.json` (shape only; [`SnarkjsProof::to_proof`] checks the
    /// values).
    ///
    /// # Errors
    /// [`VerifierError::Json`] with the path of the first problem.
    pub fn from_json(text: &str) -> Result<Self, VerifierError> {
        from_json(text)
    }

    /// `proof.json`, pretty-printed like snarkjs.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

impl SnarkjsVerifyingKey {
    /// The snarkjs form of a verifying key, `vk_alphabeta_12` included.
    pub fn from_verifying_key(vk: &VerifyingKey<Bn254>) -> Self {
        SnarkjsVerifyingKey {
            protocol: PROTOCOL.to_owned(),
            curve: CURVE.to_owned(),
            n_public: vk.gamma_abc_g1.len().saturating_sub(1),
            vk_alpha_1: g1_to_json(&vk.alpha_g1),
            vk_beta_2: g2_to_json(&vk.beta_g2),
            vk_gamma_2: g2_to_json(&vk.gamma_g2),
            vk_delta_2: g2_to_json(&vk.delta_g2),
            vk_alphabeta_12: Some(fq12_to_json(&Bn254::pairing(vk.alpha_g1, vk.beta_g2).0)),
            ic: vk.gamma_abc_g1.iter().map(g1_to_json).collect(),
        }
    }

    /// The verifying key, with every coordinate, point and count checked.
    ///
    /// # Errors
    /// [`VerifierError::Unsupported`] for another protocol or curve; [`VerifierError::Key`] when
    /// `nPublic` does not match `IC`, `vk_gamma_2 == vk_delta_2` or
    /// `vk_alphabeta_12` is wrong; the point errors naming the bad point.
    pub fn to_verifying_key(&self) -> Result<VerifyingKey<Bn254>, VerifierError> {
        check_protocol(&self.protocol)?;
        check_curve(&self.curve)?;
        if self.ic.len() != self.n_public.saturating_add(1) {
            return Err(VerifierError::Key(format!(
                "nPublic is {} but IC has {} entries (expected nPublic + 1)",
                self.n_public,
                self.ic.len()
            )));
        }
        let alpha_g1 = g1_from_json(&self.vk_alpha_1, "vk_alpha_1", false)?;
        let beta_g2 = g2_from_json(&self.vk_beta_2, "vk_beta_2", false)?;
        let gamma_g2 = g2_from_json(&self.vk_gamma_2, "vk_gamma_2", false)?;
        let delta_g2 = g2_from_json(&self.vk_delta_2, "vk_delta_2", false)?;
        if gamma_g2 == delta_g2 {
            return Err(VerifierError::Key(
                "vk_gamma_2 equals vk_delta_2: the setup had no phase-2 contribution \
                 and proofs can be forged"
                    .into(),
            ));
        }
        let gamma_abc_g1 = self
            .ic
            .iter()
            .enumerate()
            .map(|(index, point)| g1_from_json(point, &format!("IC[{index}]"), true))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(json) = self
            .vk_alphabeta_12
            .as_ref()
            .filter(|json| !json.is_empty())
        {
            let written = fq12_from_json(json, "vk_alphabeta_12")?;
            if written != Bn254::pairing(alpha_g1, beta_g2).0 {
                return Err(VerifierError::Key(
                    "vk_alphabeta_12 is not e(vk_alpha_1, vk_beta_2)".into(),
                ));
            }
        }
        Ok(VerifyingKey {
            alpha_g1,
            beta_g2,
            gamma_g2,
            delta_g2,
            gamma_abc_g1,
        })
    }

    /// Parses `verification_key.json` (shape only;
    /// [`SnarkjsVerifyingKey::to_verifying_key`] checks the values).
    ///
    /// # Errors
    /// [`VerifierError::Json`] with the path of the first problem.
    pub fn from_json(text: &str) -> Result<Self, VerifierError> {
        from_json(text)
    }

    /// `verification_key.json`, pretty-printed like snarkjs.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// Reads and checks `proof.json`.
///
/// # Errors
/// As [`SnarkjsProof::from_json`] and [`SnarkjsProof::to_proof`].
pub fn proof_from_json(text: &str) -> Result<Proof<Bn254>, VerifierError> {
    SnarkjsProof::from_json(text)?.to_proof()
}

/// Writes `proof.json`.
pub fn proof_to_json(proof: &Proof<Bn254>) -> String {
    SnarkjsProof::from_proof(proof).to_json()
}

/// Reads and checks `verification_key.json`.
///
/// # Errors
/// As [`SnarkjsVerifyingKey::from_json`] and
/// [`SnarkjsVerifyingKey::to_verifying_key`].
pub fn verifying_key_from_json(text: &str) -> Result<VerifyingKey<Bn254>, VerifierError> {
    SnarkjsVerifyingKey::from_json(text)?.to_verifying_key()
}

/// Writes `verification_key.json`.
pub fn verifying_key_to_json(vk: &VerifyingKey<Bn254>) -> String {
    SnarkjsVerifyingKey::from_verifying_key(vk).to_json()
}

/// Reads public signals (`public.json`, any number of them) as canonical
/// scalar-field elements.
///
/// # Errors
/// [`VerifierError::Json`] unless the text is an array of strings;
/// [`VerifierError::Statement`] naming the first signal that is not a canonical
/// decimal below the scalar-field modulus.
pub fn public_signals_from_json(text: &str) -> Result<Vec<Fr>, VerifierError> {
    let signals: Vec<String> = from_json(text)?;
    signals
        .iter()
        .enumerate()
        .map(|(index, signal)| {
            fr_from_decimal(signal).map_err(|error| {
                let name = PUBLIC_INPUT_NAMES
                    .get(index)
                    .map_or(String::new(), |name| format!(" ({name})"));
                VerifierError::Statement(zkcohort_circuits::CircuitError::NonCanonical(format!(
                    "public signal {index}{name}: {error}"
                )))
            })
        })
        .collect()
}

/// Writes public signals as snarkjs does: a JSON array of decimal strings.
pub fn public_signals_to_json(inputs: &[Fr]) -> String {
    to_json(&inputs.iter().map(fr_to_decimal).collect::<Vec<_>>())
}

/// Reads the eligibility statement from public signals: exactly seven, in the
/// order `registry_root, query_hash, study_scope, nullifier, signal_hash, issuers_root,
/// measure_commitment`.
///
/// # Errors
/// As [`public_signals_from_json`], and [`VerifierError::Statement`] for a count other
/// than five.
pub fn statement_from_json(text: &str) -> Result<Statement, VerifierError> {
    Ok(Statement::from_public_inputs(&public_signals_from_json(
        text,
    )?)?)
}

/// Writes the eligibility statement as public signals.
pub fn statement_to_json(statement: &Statement) -> String {
    public_signals_to_json(&statement.to_public_inputs())
}

fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, VerifierError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        // serde_path_to_error writes `?` where the input ends before any value.
        let path = match error.path().to_string() {
            unknown if unknown == "?" => ".".to_owned(),
            path => path,
        };
        VerifierError::Json {
            path,
            message: error.inner().to_string(),
        }
    })?;
    deserializer.end().map_err(|error| VerifierError::Json {
        path: ".".into(),
        message: error.to_string(),
    })?;
    Ok(value)
}

fn to_json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("plain structs serialize");
    text.push('\n');
    text
}

fn check_protocol(protocol: &str) -> Result<(), VerifierError> {
    if protocol == PROTOCOL {
        Ok(())
    } else {
        Err(VerifierError::Unsupported {
            field: "protocol",
            expected: PROTOCOL,
            found: protocol.to_owned(),
        })
    }
}

/// Accepts the names snarkjs accepts for BN254 (`getCurveFromName`: `bn128`,
/// `bn254`, `alt_bn128`, any case and punctuation).
fn check_curve(curve: &str) -> Result<(), VerifierError> {
    let normalized: String = curve
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if ["BN128", "BN254", "ALTBN128"].contains(&normalized.as_str()) {
        Ok(())
    } else {
        Err(VerifierError::Unsupported {
            field: "curve",
            expected: CURVE,
            found: curve.to_owned(),
        })
    }
}

/// A canonical base-field element from plain decimal digits: no sign, no
/// leading zeros except `0` itself, below the modulus `q`.
pub(crate) fn fq_from_decimal(text: &str, field: &str) -> Result<Fq, VerifierError> {
    field_from_decimal(text).map_err(|why| VerifierError::Coordinate {
        field: field.to_owned(),
        reason: format!("{text:?}: {why}"),
    })
}

fn fq_to_decimal(value: &Fq) -> String {
    value.into_bigint().to_string()
}

fn fq2_from_json(json: &[String; 2], field: &str) -> Result<Fq2, VerifierError> {
    Ok(Fq2::new(
        fq_from_decimal(&json[0], &format!("{field}[0]"))?,
        fq_from_decimal(&json[1], &format!("{field}[1]"))?,
    ))
}

fn fq2_to_json(value: &Fq2) -> [String; 2] {
    [fq_to_decimal(&value.c0), fq_to_decimal(&value.c1)]
}

/// A G1 point: affine with `z = 1`, or infinity as `[0, 1, 0]` where allowed.
fn g1_from_json(
    json: &G1Json,
    field: &str,
    infinity_allowed: bool,
) -> Result<G1Affine, VerifierError> {
    let x = fq_from_decimal(&json[0], &format!("{field}[0]"))?;
    let y = fq_from_decimal(&json[1], &format!("{field}[1]"))?;
    let z = fq_from_decimal(&json[2], &format!("{field}[2]"))?;
    if z.is_zero() {
        return infinity(
            x.is_zero() && y.is_one(),
            field,
            infinity_allowed,
            "[\"0\", \"1\", \"0\"]",
        );
    }
    if !z.is_one() {
        return Err(not_normalized(field));
    }
    checked(G1Affine::new_unchecked(x, y), field)
}

/// A G2 point: affine with `z = [1, 0]`, or infinity as `[[0, 0], [1, 0], [0, 0]]`
/// where allowed.
fn g2_from_json(
    json: &G2Json,
    field: &str,
    infinity_allowed: bool,
) -> Result<G2Affine, VerifierError> {
    let x = fq2_from_json(&json[0], &format!("{field}[0]"))?;
    let y = fq2_from_json(&json[1], &format!("{field}[1]"))?;
    let z = fq2_from_json(&json[2], &format!("{field}[2]"))?;
    if z.is_zero() {
        return infinity(
            x.is_zero() && y.is_one(),
            field,
            infinity_allowed,
            "[[\"0\", \"0\"], [\"1\", \"0\"], [\"0\", \"0\"]]",
        );
    }
    if !z.is_one() {
        return Err(not_normalized(field));
    }
    checked(G2Affine::new_unchecked(x, y), field)
}

fn infinity<P: AffineRepr>(
    canonical: bool,
    field: &str,
    allowed: bool,
    form: &str,
) -> Result<P, VerifierError> {
    if !canonical {
        Err(VerifierError::Coordinate {
            field: field.to_owned(),
            reason: format!("z is zero but the point is not written as infinity {form}"),
        })
    } else if !allowed {
        Err(VerifierError::Infinity {
            field: field.to_owned(),
        })
    } else {
        Ok(P::zero())
    }
}

fn not_normalized(field: &str) -> VerifierError {
    VerifierError::Coordinate {
        field: field.to_owned(),
        reason: "z must be 1 (an affine point) or 0 (the point at infinity)".into(),
    }
}

/// Checks a point made from untrusted coordinates. For G1 (cofactor 1) the
/// subgroup check is trivially true; for G2 it is what keeps small-order
/// components out of the pairing.
fn checked<P: ark_ec::short_weierstrass::SWCurveConfig>(
    point: ark_ec::short_weierstrass::Affine<P>,
    field: &str,
) -> Result<ark_ec::short_weierstrass::Affine<P>, VerifierError> {
    if !point.is_on_curve() {
        return Err(VerifierError::NotOnCurve {
            field: field.to_owned(),
        });
    }
    if !point.is_in_correct_subgroup_assuming_on_curve() {
        return Err(VerifierError::NotInSubgroup {
            field: field.to_owned(),
        });
    }
    Ok(point)
}

/// A G1 point in snarkjs form (infinity as `["0", "1", "0"]`).
pub fn g1_to_json(point: &G1Affine) -> G1Json {
    match point.xy() {
        Some((x, y)) => [fq_to_decimal(&x), fq_to_decimal(&y), "1".into()],
        None => ["0".into(), "1".into(), "0".into()],
    }
}

/// A G2 point in snarkjs form (infinity as `[["0", "0"], ["1", "0"], ["0", "0"]]`).
pub fn g2_to_json(point: &G2Affine) -> G2Json {
    match point.xy() {
        Some((x, y)) => [fq2_to_json(&x), fq2_to_json(&y), fq2_to_json(&Fq2::one())],
        None => [
            fq2_to_json(&Fq2::zero()),
            fq2_to_json(&Fq2::one()),
            fq2_to_json(&Fq2::zero()),
        ],
    }
}

fn fq12_to_json(value: &Fq12) -> Fq12Json {
    [value.c0, value.c1]
        .iter()
        .map(|half| {
            [half.c0, half.c1, half.c2]
                .iter()
                .map(fq2_to_json)
                .collect()
        })
        .collect()
}

fn fq12_from_json(json: &Fq12Json, field: &str) -> Result<Fq12, VerifierError> {
    let shape = || VerifierError::Key(format!("{field} must be 2 x 3 pairs of decimal strings"));
    let [c0, c1]: &[Vec<[String; 2]>; 2] = json.as_slice().try_into().map_err(|_| shape())?;
    let half = |coefficients: &Vec<[String; 2]>, index: usize| -> Result<Fq6, VerifierError> {
        let [a, b, c]: &[[String; 2]; 3] =
            coefficients.as_slice().try_into().map_err(|_| shape())?;
        Ok(Fq6::new(
            fq2_from_json(a, &format!("{field}[{index}][0]"))?,
            fq2_from_json(b, &format!("{field}[{index}][1]"))?,
            fq2_from_json(c, &format!("{field}[{index}][2]"))?,
        ))
    };
    Ok(Fq12::new(half(c0, 0)?, half(c1, 1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "21888242871839275222246405745257275088696311157297823662689037894645226208583";

    #[test]
    fn base_field_decimals_must_be_canonical() {
        assert_eq!(fq_from_decimal("0", "x").unwrap(), Fq::zero());
        let below = "21888242871839275222246405745257275088696311157297823662689037894645226208582";
        assert_eq!(fq_from_decimal(below, "x").unwrap(), -Fq::one());
        for bad in [
            Q,
            "",
            "-1",
            "+1",
            "1e3",
            "0x10",
            "01",
            " 1",
            "1 ",
            &"9".repeat(80),
        ] {
            match fq_from_decimal(bad, "pi_a[0]") {
                Err(VerifierError::Coordinate { field, .. }) => assert_eq!(field, "pi_a[0]"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn curve_names_follow_snarkjs() {
        for good in ["bn128", "BN254", "alt_bn128"] {
            assert!(check_curve(good).is_ok(), "{good}");
        }
        for bad in ["bls12381", "bn", ""] {
            assert!(
                matches!(check_curve(bad), Err(VerifierError::Unsupported { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn infinity_round_trips_in_the_snarkjs_form() {
        let json = g1_to_json(&G1Affine::zero());
        assert_eq!(json, ["0", "1", "0"]);
        assert_eq!(
            g1_from_json(&json, "IC[0]", true).unwrap(),
            G1Affine::zero()
        );
        assert!(matches!(
            g1_from_json(&json, "pi_a", false),
            Err(VerifierError::Infinity { .. })
        ));
        let json = g2_to_json(&G2Affine::zero());
        assert_eq!(g2_from_json(&json, "x", true).unwrap(), G2Affine::zero());
        assert!(matches!(
            g2_from_json(&json, "pi_b", false),
            Err(VerifierError::Infinity { .. })
        ));
        // z = 0 with other coordinates is not the form snarkjs writes.
        let odd = ["5".to_owned(), "1".to_owned(), "0".to_owned()];
        assert!(matches!(
            g1_from_json(&odd, "IC[0]", true),
            Err(VerifierError::Coordinate { .. })
        ));
    }
}
