//! Keys are checked where they are trusted: a wallet refuses a proving key with a point
//! off the curve, one for another circuit, or one that does not match its verifying key,
//! even when the file's checksum was recomputed; the server's check refuses a verifying
//! key with `γ = δ` or another id. A tiny shape (one clause).

use crate::common::TINY as SHAPE;
use ark_ec::AffineRepr;
use rand::{rngs::StdRng, SeedableRng};
use sha2::{Digest, Sha256};
use zkcohort_prover::keys::check_verifying_key;
use zkcohort_prover::{CircuitId, CircuitKeys, ProverError};

/// The key file's header ends with the payload's checksum.
const PAYLOAD: usize = zkcohort_prover::keys::HEADER;
const CHECKSUM: std::ops::Range<usize> = PAYLOAD - 32..PAYLOAD;
// The payload starts with the verifying key's length (u64) and the verifying key
// (arkworks' uncompressed form), then beta_g1 and delta_g1 (a u64 count, 64 bytes each),
// then the A query (a u64 count, points).

/// Where beta_g1 starts in `payload`: after the verifying key, whose length the payload says.
fn beta_g1(payload: &[u8]) -> usize {
    let verifying_key = u64::from_le_bytes(payload[..8].try_into().unwrap());
    8 + verifying_key as usize + 8
}

/// Saves dev keys, lets `tamper` edit the payload, recomputes the checksum as an attacker
/// would, and returns the folder.
fn tampered_keys(keys: &CircuitKeys, tamper: impl Fn(&mut [u8])) -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    let path = keys.save(folder.path()).unwrap();
    let mut file = std::fs::read(&path).unwrap();
    tamper(&mut file[PAYLOAD..]);
    let checksum = Sha256::digest(&file[PAYLOAD..]);
    file[CHECKSUM].copy_from_slice(&checksum);
    std::fs::write(&path, file).unwrap();
    folder
}

fn refusal(result: Result<CircuitKeys, ProverError>) -> String {
    match result {
        Err(ProverError::KeyFile { reason, .. }) => reason,
        Err(other) => panic!("expected a key file error, got {other}"),
        Ok(_) => panic!("the key was accepted"),
    }
}

#[test]
fn a_wallet_refuses_bad_proving_keys() {
    let keys = CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(1)).unwrap();
    let id = keys.circuit_id();

    // The honest file passes every check.
    let honest = tampered_keys(&keys, |_| {});
    CircuitKeys::load_checked(honest.path(), SHAPE, id).unwrap();

    // Another circuit id than the announced one.
    let other = CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(2)).unwrap();
    let reason = refusal(CircuitKeys::load_checked(
        honest.path(),
        SHAPE,
        other.circuit_id(),
    ));
    assert!(reason.contains("announced circuit"), "{reason}");

    // A point of the A query moved off the curve: the unchecked load takes it, the
    // wallet's does not.
    let off_curve = tampered_keys(&keys, |payload| {
        // The second point of the A query: beta_g1, delta_g1, the length, one point.
        let a_query_1 = beta_g1(payload) + 2 * 64 + 8 + 64;
        payload[a_query_1] ^= 1;
    });
    CircuitKeys::load(off_curve.path(), SHAPE).unwrap();
    let reason = refusal(CircuitKeys::load_checked(off_curve.path(), SHAPE, id));
    assert!(reason.contains("unreadable key"), "{reason}");

    // delta·G1 replaced by beta·G1, a valid point: the proving key no longer matches the
    // verifying key.
    let mismatched = tampered_keys(&keys, |payload| {
        let beta = beta_g1(payload);
        let delta = beta + 64;
        let beta_point = payload[beta..delta].to_vec();
        payload[delta..delta + 64].copy_from_slice(&beta_point);
    });
    let reason = refusal(CircuitKeys::load_checked(mismatched.path(), SHAPE, id));
    assert!(
        reason.contains("beta and delta do not match the verifying key"),
        "{reason}"
    );
}

#[test]
fn the_server_refuses_a_verifying_key_with_gamma_equal_to_delta_or_another_id() {
    let keys = CircuitKeys::setup_with_rng(SHAPE, &mut StdRng::seed_from_u64(1)).unwrap();
    let vk = keys.verifying_key().clone();
    check_verifying_key(&vk, keys.circuit_id()).unwrap();
    let other = CircuitId([7; 32]);
    assert!(matches!(
        check_verifying_key(&vk, other),
        Err(ProverError::Key(reason)) if reason.contains("not the circuit's")
    ));
    let mut weak = vk.clone();
    weak.delta_g2 = weak.gamma_g2;
    assert!(matches!(
        check_verifying_key(&weak, CircuitId::of(&weak)),
        Err(ProverError::Key(reason)) if reason.contains("gamma equals delta")
    ));
    let mut off = vk;
    off.alpha_g1 = ark_bn254::G1Affine::new_unchecked(
        off.alpha_g1.x,
        off.alpha_g1.y + ark_bn254::Fq::from(1u64),
    );
    assert!(!off.alpha_g1.is_on_curve() || off.alpha_g1.is_zero());
    assert!(matches!(
        check_verifying_key(&off, CircuitId::of(&off)),
        Err(ProverError::Key(reason)) if reason.contains("not on the curve")
    ));
}
