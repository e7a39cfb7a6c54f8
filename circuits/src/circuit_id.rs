//! The circuit id: SHA-256 of a verifying key's compressed arkworks
//! serialization. It names a circuit (a shape and the keys of one setup)
//! everywhere: key files, studies, bundles, the marketplace's announcements.
//!
//! The transcript id names the multi-party ceremony the keys came from:
//! `SHA-256(SHA-256(phase 1 file) | SHA-256(final phase-2 .zkey))`. It lives here,
//! beside the circuit id, because the prover (which runs ceremonies), the marketplace
//! (which announces it) and the verifier (which pins it) all name it.

use std::fmt;
use std::str::FromStr;

use ark_bn254::Bn254;
use ark_groth16::VerifyingKey;
use ark_serialize::CanonicalSerialize;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::CircuitError;

/// The SHA-256 of a compressed verifying key, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CircuitId(pub [u8; 32]);

impl CircuitId {
    /// The id of a verifying key.
    pub fn of(verifying_key: &VerifyingKey<Bn254>) -> Self {
        let mut bytes = Vec::new();
        verifying_key
            .serialize_compressed(&mut bytes)
            .expect("writing to a Vec cannot fail");
        CircuitId(Sha256::digest(&bytes).into())
    }
}

impl fmt::Display for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CircuitId({self})")
    }
}

impl FromStr for CircuitId {
    type Err = CircuitError;

    fn from_str(text: &str) -> Result<Self, CircuitError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| CircuitError::CircuitId(format!("{text:?} is not 64 hex digits")))?;
        Ok(CircuitId(bytes))
    }
}

impl Serialize for CircuitId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CircuitId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The id of a ceremony transcript, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TranscriptId(pub [u8; 32]);

impl TranscriptId {
    /// The id of a phase 1 file and a phase-2 `.zkey`.
    pub fn of(phase1: &[u8], zkey: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(Sha256::digest(phase1));
        hasher.update(Sha256::digest(zkey));
        TranscriptId(hasher.finalize().into())
    }
}

impl fmt::Display for TranscriptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TranscriptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TranscriptId({self})")
    }
}

impl FromStr for TranscriptId {
    type Err = CircuitError;

    fn from_str(text: &str) -> Result<Self, CircuitError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| CircuitError::CircuitId(format!("{text:?} is not 64 hex digits")))?;
        Ok(TranscriptId(bytes))
    }
}

impl Serialize for TranscriptId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TranscriptId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        let id = CircuitId([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text, "ab".repeat(32));
        assert_eq!(text.parse::<CircuitId>().unwrap(), id);
        assert_eq!(
            serde_json::from_str::<CircuitId>(&serde_json::to_string(&id).unwrap()).unwrap(),
            id
        );
        assert!("ab".parse::<CircuitId>().is_err());
        assert!("zz".repeat(32).parse::<CircuitId>().is_err());
    }
}
