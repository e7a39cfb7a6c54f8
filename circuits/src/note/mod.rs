//! Shielded reward notes: what an enrollment pays into, and what the note-transfer
//! circuit spends.
//!
//! A patient's wallet holds a [`SpendingKey`]; its public face, the owner
//! `Poseidon(OWNER_TAG, key)`, never leaves the wallet either. A note is a value and a
//! one-time **receiver** `Poseidon(owner, blinding)`; its **commitment**
//! `Poseidon(value, receiver)` is a leaf of the marketplace's public note tree (a binary
//! Poseidon tree of depth [`NOTE_TREE_DEPTH`], the registry's tree type, with its own root
//! history). Since the blinding is fresh for every note, nothing public ties two notes of
//! one wallet together:
//! - at enrollment the wallet sends a fresh receiver (bound into the eligibility proof's
//!   `signal_hash`) and the marketplace, once the enrollment settles, appends
//!   `Poseidon(reward, receiver)`: the value is the study's public reward, but the
//!   receiver says nothing about the wallet;
//! - the note transfer ([`circuit`], feature `r1cs`) spends two notes (a real one and a
//!   zero-value dummy, or two real ones) and creates two, revealing only a nullifier per
//!   spent note, the two new commitments (value hidden behind a fresh receiver) and a
//!   public withdrawal to an ed25519 account, so a withdrawal points to no enrollment.
//!
//! The **nullifier** of the note at leaf `index` is
//! `Poseidon(NULLIFIER_TAG, key, commitment, index)`: only the owner can compute it,
//! and a note spent twice shows the same nullifier twice. Binding the index makes two
//! leaves with one commitment two notes, each spendable once (each was paid for once).
//!
//! The transfer's public inputs, in order ([`TransferStatement`]):
//! `note_root, nullifier_0, nullifier_1, output_0, output_1, withdrawal,
//! withdrawal_binding`. `withdrawal_binding` hashes the recipient account with the
//! marketplace's key, so a copied proof pays no one else and nowhere else.

#[cfg(feature = "r1cs")]
pub mod circuit;

use ark_ff::UniformRand;

use crate::identity::key_halves;
use crate::poseidon::{poseidon_hash2, poseidon_hash_fixed};
use crate::registry::MembershipPath;
use crate::statement::{fr_from_decimal, fr_to_decimal};
use crate::{CircuitError, Fr};

/// The depth of the note tree: room for 2^20 (about a million) notes.
pub const NOTE_TREE_DEPTH: usize = 20;

/// The width of every note value and withdrawal: token amounts are `u64`, and three
/// of them sum far below the field's modulus, so conservation cannot wrap.
pub const VALUE_BITS: usize = 64;

/// The number of notes a transfer spends and the number it creates.
pub const NOTES_PER_TRANSFER: usize = 2;

/// The number of public inputs of a transfer.
pub const TRANSFER_PUBLIC_INPUTS: usize = 7;

/// The names of a transfer's public inputs, in order.
pub const TRANSFER_PUBLIC_INPUT_NAMES: [&str; TRANSFER_PUBLIC_INPUTS] = [
    "note_root",
    "nullifier_0",
    "nullifier_1",
    "output_0",
    "output_1",
    "withdrawal",
    "withdrawal_binding",
];

/// "zknoteown" in ASCII: the domain of [`SpendingKey::owner`].
pub(crate) const OWNER_TAG: u64 = 0x7a6b_6e6f_7465_6f77;
/// "zknotenul" in ASCII: the domain of [`note_nullifier`].
pub(crate) const NULLIFIER_TAG: u64 = 0x7a6b_6e6f_7465_6e75;
/// "zkwithdr" in ASCII: the domain of [`withdrawal_binding`].
const WITHDRAWAL_TAG: u64 = 0x7a6b_7769_7468_6472;

/// The wallet's note-spending key. Never leaves the wallet.
#[derive(Clone, PartialEq, Eq)]
pub struct SpendingKey(pub Fr);

impl std::fmt::Debug for SpendingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpendingKey(…)")
    }
}

impl SpendingKey {
    /// A fresh key from the OS RNG.
    pub fn random() -> Self {
        Self::random_with_rng(&mut rand::rngs::OsRng)
    }

    /// A key from the given RNG (tests and benches use a seeded one).
    pub fn random_with_rng<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> Self {
        SpendingKey(Fr::rand(rng))
    }

    /// The owner every note of this key names inside its receiver.
    pub fn owner(&self) -> Fr {
        poseidon_hash2(Fr::from(OWNER_TAG), self.0)
    }

    /// A fresh note of `value` to this key.
    pub fn note<R: rand::RngCore + rand::CryptoRng>(&self, value: u64, rng: &mut R) -> Note {
        Note {
            value,
            owner: self.owner(),
            blinding: Fr::rand(rng),
        }
    }
}

/// A note: a value, its owner and the blinding that hides both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note {
    /// The value in tokens.
    pub value: u64,
    /// The owner ([`SpendingKey::owner`]).
    pub owner: Fr,
    /// The note's fresh randomness.
    pub blinding: Fr,
}

impl Note {
    /// The one-time receiver `Poseidon(owner, blinding)`.
    pub fn receiver(&self) -> Fr {
        poseidon_hash2(self.owner, self.blinding)
    }

    /// The commitment `Poseidon(value, receiver)`: the note-tree leaf.
    pub fn commitment(&self) -> Fr {
        note_commitment(self.value, self.receiver())
    }
}

/// The commitment of a note of `value` to `receiver`: what the marketplace appends for
/// a settled enrollment (the study's reward to the receiver the proof bound).
pub fn note_commitment(value: u64, receiver: Fr) -> Fr {
    poseidon_hash2(Fr::from(value), receiver)
}

/// The nullifier of the note `commitment` at leaf `index` of the note tree, spent with `key`.
pub fn note_nullifier(key: &SpendingKey, commitment: Fr, index: u64) -> Fr {
    poseidon_hash_fixed(&[Fr::from(NULLIFIER_TAG), key.0, commitment, Fr::from(index)])
}

/// What a transfer's proof binds its withdrawal to: the recipient ed25519 account and the
/// marketplace that pays it.
pub fn withdrawal_binding(recipient: &[u8; 32], marketplace_key: &[u8; 32]) -> Fr {
    let [recipient_high, recipient_low] = key_halves(recipient);
    let [market_high, market_low] = key_halves(marketplace_key);
    poseidon_hash_fixed(&[
        Fr::from(WITHDRAWAL_TAG),
        recipient_high,
        recipient_low,
        market_high,
        market_low,
    ])
}

/// The public inputs of a note transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferStatement {
    /// A note-tree root the spent notes are under.
    pub note_root: Fr,
    /// One nullifier per spent note (dummies included).
    pub nullifiers: [Fr; NOTES_PER_TRANSFER],
    /// The commitments of the created notes.
    pub outputs: [Fr; NOTES_PER_TRANSFER],
    /// The amount paid out of the shielded pool to the recipient.
    pub withdrawal: u64,
    /// [`withdrawal_binding`] of the recipient and the marketplace.
    pub withdrawal_binding: Fr,
}

impl TransferStatement {
    /// The public inputs in circuit order.
    pub fn to_public_inputs(&self) -> [Fr; TRANSFER_PUBLIC_INPUTS] {
        [
            self.note_root,
            self.nullifiers[0],
            self.nullifiers[1],
            self.outputs[0],
            self.outputs[1],
            Fr::from(self.withdrawal),
            self.withdrawal_binding,
        ]
    }

    /// The statement from public inputs in circuit order.
    ///
    /// # Errors
    /// [`CircuitError::PublicInputs`] for a wrong count, [`CircuitError::OutOfRange`] for a
    /// withdrawal that is not a `u64`.
    pub fn from_public_inputs(inputs: &[Fr]) -> Result<Self, CircuitError> {
        let [note_root, nullifier_0, nullifier_1, output_0, output_1, withdrawal, withdrawal_binding]: [Fr;
            TRANSFER_PUBLIC_INPUTS] = inputs.try_into().map_err(|_| {
            CircuitError::PublicInputs(format!(
                "expected {TRANSFER_PUBLIC_INPUTS} public inputs, got {}",
                inputs.len()
            ))
        })?;
        let withdrawal =
            crate::encoding::fr_to_u64(&withdrawal).ok_or_else(|| CircuitError::OutOfRange {
                what: "withdrawal",
                value: fr_to_decimal(&withdrawal),
            })?;
        Ok(TransferStatement {
            note_root,
            nullifiers: [nullifier_0, nullifier_1],
            outputs: [output_0, output_1],
            withdrawal,
            withdrawal_binding,
        })
    }

    /// The public inputs as decimal strings (snarkjs `public.json`).
    pub fn to_decimal_strings(&self) -> Vec<String> {
        self.to_public_inputs().iter().map(fr_to_decimal).collect()
    }

    /// Reads public inputs from decimal strings.
    ///
    /// # Errors
    /// As [`TransferStatement::from_public_inputs`]; [`CircuitError::NonCanonical`] for a
    /// value that is not a canonical field element in plain decimal.
    pub fn from_decimal_strings<S: AsRef<str>>(inputs: &[S]) -> Result<Self, CircuitError> {
        let values = inputs
            .iter()
            .map(|input| fr_from_decimal(input.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_public_inputs(&values)
    }
}

/// A note the transfer spends: the note, its key and its path in the note tree (whose
/// index is the leaf's). A dummy has value 0 and any path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpentNote {
    /// The spending key of the note's owner.
    pub key: SpendingKey,
    /// The note.
    pub note: Note,
    /// The note's path in the tree.
    pub path: MembershipPath,
}

impl SpentNote {
    /// A zero-value note that fills an unused input: it needs no place in the tree (the
    /// circuit checks membership only for non-zero values) and its nullifier is random.
    ///
    /// # Errors
    /// [`CircuitError::RegistryDepth`] for a bad depth.
    pub fn dummy<R: rand::RngCore + rand::CryptoRng>(
        depth: usize,
        rng: &mut R,
    ) -> Result<Self, CircuitError> {
        let key = SpendingKey::random_with_rng(rng);
        Ok(SpentNote {
            note: key.note(0, rng),
            key,
            path: MembershipPath::placeholder(depth)?,
        })
    }

    /// The note's nullifier.
    pub fn nullifier(&self) -> Fr {
        note_nullifier(&self.key, self.note.commitment(), self.path.index())
    }
}

/// A note the transfer creates: its value and the receiver it goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreatedNote {
    /// The value.
    pub value: u64,
    /// The receiver ([`Note::receiver`] of the note its owner will hold).
    pub receiver: Fr,
}

impl CreatedNote {
    /// The created note of `note`.
    pub fn of(note: &Note) -> Self {
        CreatedNote {
            value: note.value,
            receiver: note.receiver(),
        }
    }

    /// A zero-value output to a random receiver, for an output nobody needs (it
    /// looks like any other commitment).
    pub fn zero<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> Self {
        CreatedNote {
            value: 0,
            receiver: Fr::rand(rng),
        }
    }

    /// The commitment the transfer publishes.
    pub fn commitment(&self) -> Fr {
        note_commitment(self.value, self.receiver)
    }
}

/// Everything the prover of a transfer knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferWitness {
    /// The notes spent.
    pub inputs: [SpentNote; NOTES_PER_TRANSFER],
    /// The notes created.
    pub outputs: [CreatedNote; NOTES_PER_TRANSFER],
}

impl TransferWitness {
    /// The witness of a transfer, checked natively first so a wallet gets a clear answer
    /// instead of an unsatisfiable circuit.
    ///
    /// # Errors
    /// [`CircuitError::Shape`] when a path has another depth than `depth`, two inputs share a
    /// nullifier, a non-zero input is not under `root`, or the values do not balance with the
    /// withdrawal.
    pub fn new(
        depth: usize,
        root: Fr,
        inputs: [SpentNote; NOTES_PER_TRANSFER],
        outputs: [CreatedNote; NOTES_PER_TRANSFER],
        withdrawal: u64,
    ) -> Result<Self, CircuitError> {
        let bad = |why: String| Err(CircuitError::Shape(why));
        for (position, input) in inputs.iter().enumerate() {
            if input.path.depth() != depth {
                return bad(format!(
                    "input {position}'s path has depth {}, the note tree {depth}",
                    input.path.depth()
                ));
            }
            if input.note.value != 0 && !input.path.verify(input.note.commitment(), root) {
                return bad(format!("input {position} is not under the note root"));
            }
            if input.note.owner != input.key.owner() {
                return bad(format!("input {position} belongs to another key"));
            }
        }
        if inputs[0].nullifier() == inputs[1].nullifier() {
            return bad("both inputs are the same note".into());
        }
        let spent: u128 = inputs
            .iter()
            .map(|input| u128::from(input.note.value))
            .sum();
        let created: u128 = outputs.iter().map(|output| u128::from(output.value)).sum();
        if spent != created + u128::from(withdrawal) {
            return bad(format!(
                "the inputs hold {spent}, the outputs and the withdrawal {}",
                created + u128::from(withdrawal)
            ));
        }
        Ok(TransferWitness { inputs, outputs })
    }

    /// The public statement this witness proves under `root` for a withdrawal bound to
    /// `withdrawal_binding`.
    pub fn statement(
        &self,
        root: Fr,
        withdrawal: u64,
        withdrawal_binding: Fr,
    ) -> TransferStatement {
        TransferStatement {
            note_root: root,
            nullifiers: [self.inputs[0].nullifier(), self.inputs[1].nullifier()],
            outputs: [self.outputs[0].commitment(), self.outputs[1].commitment()],
            withdrawal,
            withdrawal_binding,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryTree;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn notes_of_one_key_share_nothing_public() {
        let mut rng = StdRng::seed_from_u64(1);
        let key = SpendingKey::random_with_rng(&mut rng);
        let (first, second) = (key.note(5, &mut rng), key.note(5, &mut rng));
        assert_eq!(first.owner, second.owner);
        assert_ne!(first.receiver(), second.receiver());
        assert_ne!(first.commitment(), second.commitment());
        assert_ne!(
            note_nullifier(&key, first.commitment(), 0),
            note_nullifier(&key, first.commitment(), 1),
            "the index separates two leaves of one commitment"
        );
        assert_eq!(format!("{key:?}"), "SpendingKey(…)", "keys never print");
    }

    #[test]
    fn the_withdrawal_binding_covers_every_byte_of_recipient_and_marketplace() {
        let base = withdrawal_binding(&[1; 32], &[2; 32]);
        for byte in [0, 15, 16, 31] {
            let mut other = [1u8; 32];
            other[byte] ^= 1;
            assert_ne!(
                withdrawal_binding(&other, &[2; 32]),
                base,
                "recipient {byte}"
            );
            assert_ne!(
                withdrawal_binding(&[1; 32], &other),
                base,
                "marketplace {byte}"
            );
        }
    }

    #[test]
    fn a_witness_that_does_not_balance_or_is_not_in_the_tree_is_refused() {
        let mut rng = StdRng::seed_from_u64(2);
        let key = SpendingKey::random_with_rng(&mut rng);
        let note = key.note(10, &mut rng);
        let mut tree = RegistryTree::new(NOTE_TREE_DEPTH).unwrap();
        let index = tree.append(note.commitment()).unwrap();
        let spent = SpentNote {
            key: key.clone(),
            note,
            path: tree.path(index).unwrap(),
        };
        let dummy = SpentNote::dummy(NOTE_TREE_DEPTH, &mut rng).unwrap();
        let change = CreatedNote::of(&key.note(4, &mut rng));
        let zero = CreatedNote::zero(&mut rng);
        let inputs = [spent.clone(), dummy.clone()];
        let witness = TransferWitness::new(
            NOTE_TREE_DEPTH,
            tree.root(),
            inputs.clone(),
            [change, zero],
            6,
        )
        .unwrap();
        let statement = witness.statement(tree.root(), 6, withdrawal_binding(&[1; 32], &[2; 32]));
        assert_eq!(
            TransferStatement::from_decimal_strings(&statement.to_decimal_strings()).unwrap(),
            statement
        );
        let refused = |inputs: [SpentNote; 2], withdrawal| {
            TransferWitness::new(
                NOTE_TREE_DEPTH,
                tree.root(),
                inputs,
                [change, zero],
                withdrawal,
            )
            .is_err()
        };
        assert!(refused(inputs.clone(), 7), "more out than in");
        assert!(refused(inputs.clone(), 5), "less out than in");
        assert!(
            refused([spent.clone(), spent.clone()], 16),
            "one note twice"
        );
        let mut stranger = spent.clone();
        stranger.key = SpendingKey::random_with_rng(&mut rng);
        assert!(refused([stranger, dummy.clone()], 6), "another key");
        let mut elsewhere = spent.clone();
        elsewhere.path = MembershipPath::new(1, spent.path.siblings().to_vec()).unwrap();
        assert!(refused([elsewhere, dummy], 6), "not under the root");
    }

    #[test]
    fn a_withdrawal_wider_than_a_u64_is_refused() {
        let mut inputs = [Fr::from(1u64); TRANSFER_PUBLIC_INPUTS];
        inputs[5] = Fr::from(u128::from(u64::MAX) + 1);
        assert!(matches!(
            TransferStatement::from_public_inputs(&inputs),
            Err(CircuitError::OutOfRange { .. })
        ));
        assert!(TransferStatement::from_public_inputs(&inputs[..6]).is_err());
    }
}
