//! A finished ceremony: its two files verified together, the keys they give, and the
//! transcript id that names the ceremony.
//!
//! The transcript is the phase 1 file (`.ptau`) and the final phase-2 state (`.zkey`);
//! anyone holding both re-checks every contribution with [`verify`]. Its id
//! ([`TranscriptId`], in `zkcohort-circuits` beside the circuit id, since the marketplace
//! and the verifier name it too) is `SHA-256(SHA-256(phase 1 file) | SHA-256(zkey file))`, so a sponsor or wallet that
//! pins the id pins every contribution, the circuit hash and the final keys.

use super::{Circuit, Phase1, Phase2};
pub use zkcohort_circuits::TranscriptId;

use crate::keys::KeyedCircuit;
use crate::{CircuitKeys, ProverError};

/// Reads and verifies a whole transcript: phase 1, then phase 2 of `circuit` over it.
///
/// # Errors
/// [`ProverError::Ceremony`]: a malformed file, or the first step that fails and why.
pub fn verify<S: KeyedCircuit>(
    circuit: &Circuit<S>,
    phase1: &[u8],
    zkey: &[u8],
) -> Result<(Phase1, Phase2), ProverError> {
    let phase1 = Phase1::read(phase1)?;
    phase1.verify().map_err(super::CeremonyError::from)?;
    let phase2 = Phase2::from_zkey(circuit, zkey)?;
    phase2.verify(circuit, &phase1)?;
    Ok((phase1, phase2))
}

/// Verifies a transcript and returns the keys it gives with its id.
///
/// # Errors
/// As [`verify`].
pub fn finalize<S: KeyedCircuit>(
    circuit: Circuit<S>,
    phase1: &[u8],
    zkey: &[u8],
) -> Result<(CircuitKeys<S>, TranscriptId), ProverError> {
    let (_, phase2) = verify(&circuit, phase1, zkey)?;
    Ok((phase2.into_keys(circuit)?, TranscriptId::of(phase1, zkey)))
}

/// Checks that `keys` are exactly the keys a verified transcript gives (a wallet given
/// keys and the ceremony's files), and returns the transcript's id to compare with the
/// announced one.
///
/// # Errors
/// As [`verify`]; [`ProverError::Key`] when the keys differ from the transcript's.
pub fn check_keys<S: KeyedCircuit>(
    keys: &CircuitKeys<S>,
    circuit: &Circuit<S>,
    phase1: &[u8],
    zkey: &[u8],
) -> Result<TranscriptId, ProverError> {
    let (_, phase2) = verify(circuit, phase1, zkey)?;
    if phase2.proving_key() != keys.proving_key() {
        return Err(ProverError::Key(
            "the proving key is not the one the ceremony transcript gives".into(),
        ));
    }
    Ok(TranscriptId::of(phase1, zkey))
}
