//! A circuit's shape: the dimensions fixed at setup, which every party that compiles
//! queries, builds issuer sets or names key files needs (the marketplace and the
//! verifier too, without the constraint system).

use zkcohort_cohort::query::measure::MAX_MEASURE_BINS;

use crate::issuers::{DEFAULT_ISSUER_DEPTH, MAX_ISSUER_DEPTH};
use crate::measure::MAX_MEASURES;
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
    /// Measure slots ([`crate::measure`]): a study declares at most this many measures
    /// (0: the circuit still commits, to no values).
    pub measures: usize,
    /// Bins per measure (a clamped sum takes 3).
    pub measure_bins: usize,
}

impl CircuitShape {
    /// The reference shape: 16 clauses, 1024 slots, 2^20 registry leaves, 64 issuers
    /// per study, 8 measures of up to 8 bins.
    pub const REFERENCE: CircuitShape = CircuitShape {
        clauses: 16,
        slot_depth: 10,
        registry_depth: DEFAULT_REGISTRY_DEPTH,
        issuer_depth: DEFAULT_ISSUER_DEPTH,
        measures: 8,
        measure_bins: 8,
    };
    /// A small shape for tests and the demo: 6 clauses, 256 slots (the catalog has
    /// 155), 256 leaves, 2 issuers per study, 4 measures of up to 8 bins.
    pub const SMALL: CircuitShape = CircuitShape {
        clauses: 6,
        slot_depth: 8,
        registry_depth: 8,
        issuer_depth: 1,
        measures: 4,
        measure_bins: 8,
    };

    /// Checks the dimensions.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] for zero clauses, an odd or oversized slot depth, a
    /// registry depth outside 1..=32, an issuer depth outside 1..=[`MAX_ISSUER_DEPTH`],
    /// more than [`MAX_MEASURES`] measures or bins outside 3..=[`MAX_MEASURE_BINS`].
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
        if self.measures > MAX_MEASURES {
            return Err(CircuitError::Shape(format!(
                "{} measures: a circuit takes 0 to {MAX_MEASURES}",
                self.measures
            )));
        }
        if !(3..=MAX_MEASURE_BINS).contains(&self.measure_bins) {
            return Err(CircuitError::Shape(format!(
                "{} bins per measure: a circuit takes 3 to {MAX_MEASURE_BINS}",
                self.measure_bins
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
