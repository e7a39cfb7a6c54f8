//! Serde helpers for byte arrays as lowercase hex strings, the form the
//! marketplace writes keys, hashes and signatures in (`#[serde(with =
//! "zkcohort_verifier::hex_serde")]`); the marketplace uses them too.

use serde::{Deserialize, Deserializer, Serializer};

/// Serializes bytes as lowercase hex.
pub fn serialize<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}

/// Reads exactly `N` bytes from hex.
pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text.as_bytes(), &mut bytes).map_err(serde::de::Error::custom)?;
    Ok(bytes)
}

/// A list of 32-byte values as hex strings.
pub mod vec32 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes each value as lowercase hex.
    pub fn serialize<S: Serializer>(values: &[[u8; 32]], serializer: S) -> Result<S::Ok, S::Error> {
        values
            .iter()
            .map(hex::encode)
            .collect::<Vec<_>>()
            .serialize(serializer)
    }

    /// Reads a list of 32-byte hex values.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<[u8; 32]>, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts
            .iter()
            .map(|text| {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text.as_bytes(), &mut bytes)
                    .map(|()| bytes)
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}
