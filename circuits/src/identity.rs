//! A patient's identity: a secret only the wallet knows, the commitment an issuer
//! puts in the registry leaf, and the per-study nullifier.
//!
//! `identity_commitment = Poseidon(secret)`; `nullifier = Poseidon(secret, study_scope)`:
//! one nullifier per identity per study, unlinkable across studies without the secret.
//! `signal_hash = Poseidon(tag, reward_receiver, study_scope)` binds the one-time receiver of
//! the reward note ([`crate::note::Note::receiver`]) so a copied proof pays no one else, and
//! names no account: a wallet draws a fresh receiver for every enrollment.

use ark_ff::UniformRand;

use crate::poseidon::{poseidon_hash2, poseidon_hash_fixed};
use crate::Fr;

/// The wallet's identity secret. Never leaves the wallet.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentitySecret(pub Fr);

impl std::fmt::Debug for IdentitySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentitySecret(…)")
    }
}

/// The public face of an identity, placed in registry leaves by issuers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityCommitment(pub Fr);

/// A study's scope: the field element that separates nullifiers between studies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StudyScope(pub Fr);

/// The domain tag of [`StudyScope::for_study`] ("zkscope" in ASCII), which keeps
/// scopes apart from every other Poseidon hash over a 32-byte key.
const STUDY_SCOPE_TAG: u64 = 0x007a_6b73_636f_7065;

impl StudyScope {
    /// The scope of study `study_id` on the marketplace whose audit-signing key is
    /// `marketplace_key`: `Poseidon(tag, key_high128, key_low128, study_id)`. Binding the
    /// marketplace in keeps one identity's nullifiers for "study 1" of two marketplaces
    /// unlinkable, and lets a wallet or a sponsor recompute the scope from public data.
    pub fn for_study(marketplace_key: &[u8; 32], study_id: u64) -> Self {
        let [high, low] = key_halves(marketplace_key);
        StudyScope(poseidon_hash_fixed(&[
            Fr::from(STUDY_SCOPE_TAG),
            high,
            low,
            Fr::from(study_id),
        ]))
    }
}

/// The tag that marks one identity's enrollment in one study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Nullifier(pub Fr);

impl IdentitySecret {
    /// A fresh secret from the OS RNG.
    pub fn random() -> Self {
        Self::random_with_rng(&mut rand::rngs::OsRng)
    }

    /// A secret from the given RNG (tests and benches use a seeded one).
    pub fn random_with_rng<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> Self {
        IdentitySecret(Fr::rand(rng))
    }

    /// The identity commitment.
    pub fn commitment(&self) -> IdentityCommitment {
        IdentityCommitment(poseidon_hash_fixed(&[self.0]))
    }

    /// The nullifier for a study.
    pub fn nullifier(&self, scope: StudyScope) -> Nullifier {
        Nullifier(poseidon_hash2(self.0, scope.0))
    }
}

/// The domain tag of [`signal_hash`] ("zksignal" in ASCII).
const SIGNAL_TAG: u64 = 0x7a6b_7369_676e_616c;

/// The signal hash that binds a reward note's receiver and a study into a proof.
pub fn signal_hash(reward_receiver: Fr, scope: StudyScope) -> Fr {
    poseidon_hash_fixed(&[Fr::from(SIGNAL_TAG), reward_receiver, scope.0])
}

/// A 32-byte key as two field elements: its big-endian high and low 128 bits.
pub(crate) fn key_halves(key: &[u8; 32]) -> [Fr; 2] {
    let (high, low) = key.split_at(16);
    let half = |bytes: &[u8]| Fr::from(u128::from_be_bytes(bytes.try_into().expect("16 bytes")));
    [half(high), half(low)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn nullifiers_separate_studies_and_identities() {
        let mut rng = StdRng::seed_from_u64(1);
        let (alice, bob) = (
            IdentitySecret::random_with_rng(&mut rng),
            IdentitySecret::random_with_rng(&mut rng),
        );
        let (first, second) = (StudyScope(Fr::from(1u64)), StudyScope(Fr::from(2u64)));
        assert_eq!(alice.nullifier(first), alice.nullifier(first));
        assert_ne!(alice.nullifier(first), alice.nullifier(second));
        assert_ne!(alice.nullifier(first), bob.nullifier(first));
        assert_ne!(alice.commitment(), bob.commitment());
        assert_eq!(
            format!("{alice:?}"),
            "IdentitySecret(…)",
            "secrets never print"
        );
    }

    #[test]
    fn signal_hash_binds_the_receiver_and_the_study_apart_from_other_hashes() {
        let scope = StudyScope(Fr::from(9u64));
        let receiver = Fr::from(7u64);
        let base = signal_hash(receiver, scope);
        assert_ne!(signal_hash(Fr::from(8u64), scope), base);
        assert_ne!(signal_hash(receiver, StudyScope(Fr::from(10u64))), base);
        assert_ne!(
            poseidon_hash_fixed(&[receiver, scope.0]),
            base,
            "the tag separates it from an untagged hash of the same inputs"
        );
    }

    #[test]
    fn study_scopes_bind_the_marketplace_and_the_study() {
        let key = [3u8; 32];
        let scope = StudyScope::for_study(&key, 1);
        assert_eq!(StudyScope::for_study(&key, 1), scope);
        assert_ne!(StudyScope::for_study(&key, 2), scope);
        for byte in [0, 15, 16, 31] {
            let mut other = key;
            other[byte] ^= 1;
            assert_ne!(StudyScope::for_study(&other, 1), scope, "byte {byte}");
        }
        assert_ne!(scope, StudyScope(Fr::from(1u64)));
    }
}
