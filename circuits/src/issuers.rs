//! Issuers as the circuit sees them: an issuer's id, fixed by the account the
//! marketplace authenticated it as, and a study's set of accepted issuers, whose
//! root is the public `issuers_root` of every proof.
//!
//! `issuer_id = Poseidon(tag, account_high128, account_low128)`. The marketplace
//! computes every registry leaf over the id of the issuer whose API key appended
//! it ([`crate::record::registry_leaf`]), so no issuer, and no operator, can put a
//! record under another issuer's id; a sponsor recomputes a study's issuer ids
//! from the accounts the study names.
//!
//! An [`IssuerSet`] is a binary Poseidon Merkle tree of the circuit shape's issuer
//! depth (the registry's tree, [`RegistryTree`]) over the ids of the accepted accounts
//! in ascending account order, the zero leaf filling the rest. The circuit shows
//! that the issuer id of the proven leaf is non-zero and a leaf of the set, so an
//! empty position proves nothing.

use crate::poseidon::poseidon_hash_fixed;
use crate::registry::{MembershipPath, RegistryTree};
use crate::{CircuitError, Fr};

/// The reference shape's issuer depth: up to 64 accepted issuers per study.
pub const DEFAULT_ISSUER_DEPTH: usize = 6;

/// The deepest issuer set a circuit may open (65,536 issuers).
pub const MAX_ISSUER_DEPTH: usize = 16;

/// The domain tag of [`IssuerId::for_account`] ("zkissuer" in ASCII).
const ISSUER_ID_TAG: u64 = 0x7a6b_6973_7375_6572;

/// An issuer's id in registry leaves and issuer sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IssuerId(pub Fr);

impl IssuerId {
    /// The id of the issuer that acts as the ed25519 `account`.
    pub fn for_account(account: &[u8; 32]) -> Self {
        let [high, low] = crate::identity::key_halves(account);
        IssuerId(poseidon_hash_fixed(&[Fr::from(ISSUER_ID_TAG), high, low]))
    }
}

/// The issuers a study accepts, as a tree the circuit opens.
#[derive(Clone, Debug)]
pub struct IssuerSet {
    accounts: Vec<[u8; 32]>,
    tree: RegistryTree,
}

impl IssuerSet {
    /// The set of these issuer accounts (sorted, duplicates dropped) in a tree of
    /// `depth` levels, the circuit shape's `issuer_depth`.
    ///
    /// # Errors
    /// [`CircuitError::Issuers`] for no account or more than `2^depth`;
    /// [`CircuitError::Shape`] for a depth outside 1..=[`MAX_ISSUER_DEPTH`].
    pub fn new(accounts: &[[u8; 32]], depth: usize) -> Result<Self, CircuitError> {
        if !(1..=MAX_ISSUER_DEPTH).contains(&depth) {
            return Err(CircuitError::Shape(format!(
                "issuer depth {depth}: a circuit takes 1 to {MAX_ISSUER_DEPTH}"
            )));
        }
        let mut accounts = accounts.to_vec();
        accounts.sort_unstable();
        accounts.dedup();
        let capacity = 1usize << depth;
        if accounts.is_empty() || accounts.len() > capacity {
            return Err(CircuitError::Issuers(format!(
                "a study of this circuit accepts 1 to {capacity} issuers, {} were named",
                accounts.len()
            )));
        }
        let ids: Vec<Fr> = accounts
            .iter()
            .map(|account| IssuerId::for_account(account).0)
            .collect();
        let tree = RegistryTree::from_leaves(depth, &ids)?;
        Ok(IssuerSet { accounts, tree })
    }

    /// The accepted accounts, ascending.
    pub fn accounts(&self) -> &[[u8; 32]] {
        &self.accounts
    }

    /// The root a proof names as `issuers_root`.
    pub fn root(&self) -> Fr {
        self.tree.root()
    }

    /// The path of `account`'s id in the set.
    ///
    /// # Errors
    /// [`CircuitError::Issuers`] when the study does not accept the account.
    pub fn path(&self, account: &[u8; 32]) -> Result<MembershipPath, CircuitError> {
        let index = self.accounts.binary_search(account).map_err(|_| {
            CircuitError::Issuers(format!(
                "the study does not accept issuer {}",
                hex::encode(account)
            ))
        })?;
        self.tree.path(index as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPTH: usize = 3;

    #[test]
    fn issuer_ids_bind_every_account_byte() {
        let account = [5u8; 32];
        let id = IssuerId::for_account(&account);
        for byte in [0, 15, 16, 31] {
            let mut other = account;
            other[byte] ^= 1;
            assert_ne!(IssuerId::for_account(&other), id, "byte {byte}");
        }
        assert_ne!(id.0, Fr::from(0u64));
    }

    #[test]
    fn a_set_is_the_same_for_any_order_and_opens_only_its_members() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let set = IssuerSet::new(&[b, a, b], DEPTH).unwrap();
        assert_eq!(set.accounts(), &[a, b]);
        assert_eq!(set.root(), IssuerSet::new(&[a, b], DEPTH).unwrap().root());
        assert_ne!(set.root(), IssuerSet::new(&[a, c], DEPTH).unwrap().root());
        let path = set.path(&b).unwrap();
        assert_eq!(path.root_for(IssuerId::for_account(&b).0), set.root());
        assert_ne!(path.root_for(IssuerId::for_account(&c).0), set.root());
        assert!(matches!(set.path(&c), Err(CircuitError::Issuers(_))));
        assert!(IssuerSet::new(&[], DEPTH).is_err());
        assert!(matches!(
            IssuerSet::new(&[a], 0),
            Err(CircuitError::Shape(_))
        ));
        let too_many: Vec<[u8; 32]> = (0..=1 << DEPTH)
            .map(|n| {
                let mut account = [0u8; 32];
                account[..8].copy_from_slice(&(n as u64).to_be_bytes());
                account
            })
            .collect();
        assert!(IssuerSet::new(&too_many, DEPTH).is_err());
        assert!(IssuerSet::new(&too_many[1..], DEPTH).is_ok());
    }
}
