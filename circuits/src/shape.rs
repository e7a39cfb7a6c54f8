//! A circuit's shape: the dimensions fixed at setup, which every party that compiles
//! queries, builds issuer sets or names key files needs (the marketplace and the
//! verifier too, without the constraint system).

use crate::issuers::{DEFAULT_ISSUER_DEPTH, MAX_ISSUER_DEPTH};
use crate::registry::{MembershipPath, DEFAULT_REGISTRY_DEPTH};
use crate::slots::levels;
use crate::CircuitError;

/// The fixed dimensions of a circuit, chosen at setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CircuitShape {
    /// Clauses per query (shorter queries are padded).
    pub clauses: usize,
    /// log2 of the slot tree's capacity (even: the tree is 4-ary).
    pub slot_depth: usize,
    /// Depth of the binary registry tree.
    pub registry_depth: usize,
    /// Depth of a study's issuer set ([`crate::issuers::IssuerSet`]): a study accepts up to
    /// `2^issuer_depth` issuers. Each level costs one Poseidon hash.
    pub issuer_depth: usize,
}

impl CircuitShape {
    /// The reference shape: 16 clauses, 1024 slots, 2^20 registry leaves, 64 issuers
    /// per study.
    pub const REFERENCE: CircuitShape = CircuitShape {
        clauses: 16,
        slot_depth: 10,
        registry_depth: DEFAULT_REGISTRY_DEPTH,
        issuer_depth: DEFAULT_ISSUER_DEPTH,
    };
    /// A small shape for tests and the demo: 6 clauses, 256 slots (the catalog has
    /// 155), 256 leaves, 2 issuers per study: 16,218 constraints, so its QAP domain
    /// (constraints plus public inputs) is 2^14.
    pub const SMALL: CircuitShape = CircuitShape {
        clauses: 6,
        slot_depth: 8,
        registry_depth: 8,
        issuer_depth: 1,
    };

    /// Checks the dimensions.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] for zero clauses, an odd or oversized slot depth, a
    /// registry depth outside 1..=32 or an issuer depth outside 1..=[`MAX_ISSUER_DEPTH`].
    pub fn validate(&self) -> Result<(), CircuitError> {
        levels(self.slot_depth)?;
        if self.clauses == 0 || self.clauses > 64 {
            return Err(CircuitError::Shape(format!(
                "{} clauses: a circuit takes 1 to 64",
                self.clauses
            )));
        }
        MembershipPath::placeholder(self.registry_depth)?;
        if !(1..=MAX_ISSUER_DEPTH).contains(&self.issuer_depth) {
            return Err(CircuitError::Shape(format!(
                "issuer depth {}: a circuit takes 1 to {MAX_ISSUER_DEPTH}",
                self.issuer_depth
            )));
        }
        Ok(())
    }
}

/// The fixed dimension of a note-transfer circuit ([`crate::note`]): the depth of the note
/// tree it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NoteShape {
    /// Depth of the binary note tree.
    pub tree_depth: usize,
}

impl NoteShape {
    /// The note circuit every marketplace uses: a tree of 2^20 notes.
    pub const STANDARD: NoteShape = NoteShape {
        tree_depth: crate::note::NOTE_TREE_DEPTH,
    };

    /// Checks the dimension.
    ///
    /// # Errors
    /// [`CircuitError::RegistryDepth`] for a depth outside 1..=32.
    pub fn validate(&self) -> Result<(), CircuitError> {
        MembershipPath::placeholder(self.tree_depth).map(|_| ())
    }
}
