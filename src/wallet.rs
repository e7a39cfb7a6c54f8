//! The patient's wallet: a folder that holds the identity secret, the note-spending
//! key, the wallet's own account key, the records issuers handed over, a copy of the
//! public registry, the enrollments made and the reward notes held. Nothing in it leaves
//! the machine: the marketplace only ever receives proofs, nullifiers, one-time note
//! receivers and note commitments.
//!
//! Notes are written before the request that creates them is sent (a pending note has
//! no index yet), so a reward or change whose answer is lost is found in the note tree by
//! the next sync, never lost.
//!
//! | file | what |
//! |---|---|
//! | `wallet.json` | identity secret, spending key and account key (mode 0600 on Unix) |
//! | `records/leaf-N.json` | [`IssuedRecordFile`]s, one per registry leaf |
//! | `registry.json` | the registry's leaves as last synced, and their root |
//! | `enrollments.json` | the studies this wallet enrolled in |
//! | `notes.json` | the reward notes, pending, held and spent |

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zkcohort_circuits::identity::{IdentityCommitment, IdentitySecret, StudyScope};
use zkcohort_circuits::issuers::IssuerSet;
use zkcohort_circuits::note::{Note, SpendingKey};
use zkcohort_circuits::record::IssuedRecord;
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::statement::{fr_from_bytes, fr_from_hex, fr_to_bytes, fr_to_hex};
use zkcohort_circuits::Fr;
use zkcohort_cohort::{eligible, Catalog, Eligibility, Query};
use zkcohort_market::Study;
use zkcohort_prover::ProofRequest;

use crate::issued::IssuedRecordFile;

/// The format tag of `wallet.json`.
const WALLET_FORMAT: &str = "zkcohort-wallet-v3";
/// The format before note-spending keys; opening such a wallet adds one.
const WALLET_FORMAT_V2: &str = "zkcohort-wallet-v2";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletSecrets {
    format: String,
    /// The identity secret, a field element in hex.
    identity_secret: String,
    /// The wallet account's ed25519 secret key, hex (the account `patient transfer`
    /// sends from; rewards never go to it).
    payout_key: String,
    /// The note-spending key, a field element in hex (absent in a v2 wallet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spending_key: Option<String>,
}

/// One record the wallet holds, checked against its leaf.
#[derive(Debug, Clone)]
pub struct HeldRecord {
    /// The file as the issuer wrote it.
    pub file: IssuedRecordFile,
    /// The record, ready for proving.
    pub record: IssuedRecord,
    /// Its registry leaf.
    pub leaf: Fr,
}

/// The registry as the wallet last saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RegistryCopy {
    /// Every leaf, hex (zero for a revoked one).
    leaves: Vec<String>,
}

/// An enrollment the wallet made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletEnrollment {
    /// The marketplace's key, hex.
    pub marketplace_key: String,
    /// The study.
    pub study: u64,
    /// The nullifier, a field element in hex.
    pub nullifier: String,
    /// The reward it pays once settled.
    pub reward: u64,
    /// Why the marketplace voided it, once the wallet learnt it did (the study closed
    /// below its minimum cohort, or the proof's root expired while it was pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voided: Option<String>,
}

/// A reward note the wallet holds, will hold once its request lands, or spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletNote {
    /// The marketplace's key, hex.
    pub marketplace_key: String,
    /// The value in tokens.
    pub value: u64,
    /// The blinding, a field element in hex (with the spending key, it opens the note).
    pub blinding: String,
    /// The commitment, hex: the note-tree leaf.
    pub commitment: String,
    /// Its index in the note tree, once a sync or an answer placed it.
    pub index: Option<u64>,
    /// Whether it is spent, as of the last sync or transfer.
    pub spent: bool,
    /// Where it came from: `study N`, or `change`.
    pub origin: String,
}

impl WalletNote {
    /// Whether it can be spent: placed in the tree and not spent.
    pub fn is_spendable(&self) -> bool {
        self.index.is_some() && !self.spent
    }
}

/// A patient's wallet folder.
pub struct Wallet {
    dir: PathBuf,
    secret: IdentitySecret,
    spending_key: SpendingKey,
    payout_key: SigningKey,
    /// Serializes this process's read-modify-write of `enrollments.json` and
    /// `notes.json` (a batch may enroll one wallet in two studies at once).
    files_lock: Mutex<()>,
}

impl Wallet {
    /// Creates a wallet in `dir` (which must not hold one) with a fresh identity and
    /// payout key.
    ///
    /// # Errors
    /// A wallet already there, or the folder cannot be written.
    pub fn create(dir: &Path) -> Result<Self> {
        let secrets_path = dir.join("wallet.json");
        if secrets_path.exists() {
            bail!(
                "{} already holds a wallet; use it, or choose another folder",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir.join("records"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let wallet = Self {
            dir: dir.to_path_buf(),
            secret: IdentitySecret::random(),
            spending_key: SpendingKey::random(),
            payout_key: SigningKey::generate(&mut rand::rngs::OsRng),
            files_lock: Mutex::new(()),
        };
        write_private(
            &secrets_path,
            &serde_json::to_vec_pretty(&wallet.secrets())?,
        )?;
        Ok(wallet)
    }

    /// What `wallet.json` holds.
    fn secrets(&self) -> WalletSecrets {
        WalletSecrets {
            format: WALLET_FORMAT.to_string(),
            identity_secret: fr_to_hex(&self.secret.0),
            payout_key: hex::encode(self.payout_key.to_bytes()),
            spending_key: Some(fr_to_hex(&self.spending_key.0)),
        }
    }

    /// Opens the wallet in `dir`.
    ///
    /// # Errors
    /// No wallet there, or a damaged `wallet.json`.
    pub fn open(dir: &Path) -> Result<Self> {
        let secrets_path = dir.join("wallet.json");
        if !secrets_path.exists() {
            bail!(
                "{} holds no wallet: create one with `zkcohort patient init --wallet {}`",
                dir.display(),
                dir.display()
            );
        }
        let secrets: WalletSecrets = read_json(&secrets_path)?;
        let spending_key = match (secrets.format.as_str(), &secrets.spending_key) {
            (WALLET_FORMAT, Some(key)) => Some(SpendingKey(
                fr_from_hex(key)
                    .context("wallet.json: spending_key is not a canonical field element")?,
            )),
            (WALLET_FORMAT_V2, None) => None,
            _ => bail!(
                "{}: unknown wallet format {:?}",
                secrets_path.display(),
                secrets.format
            ),
        };
        let secret = fr_from_hex(&secrets.identity_secret)
            .context("wallet.json: identity_secret is not a canonical field element")?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&secrets.payout_key, &mut key)
            .context("wallet.json: payout_key is not 32 bytes of hex")?;
        let wallet = Self {
            dir: dir.to_path_buf(),
            secret: IdentitySecret(secret),
            spending_key: spending_key.clone().unwrap_or_else(SpendingKey::random),
            payout_key: SigningKey::from_bytes(&key),
            files_lock: Mutex::new(()),
        };
        if spending_key.is_none() {
            // A v2 wallet gets its spending key now, written before any note names it.
            write_replacing(
                &secrets_path,
                &serde_json::to_vec_pretty(&wallet.secrets())?,
            )?;
        }
        Ok(wallet)
    }

    /// The identity commitment, which the patient gives an issuer.
    pub fn identity_commitment(&self) -> IdentityCommitment {
        self.secret.commitment()
    }

    /// The wallet's own account: an ed25519 public key the patient may withdraw to and
    /// send from. Rewards never go to it (they go into notes), so it names no enrollment.
    pub fn payout_account(&self) -> [u8; 32] {
        self.payout_key.verifying_key().to_bytes()
    }

    /// The account key, which signs transfers out of [`Wallet::payout_account`].
    pub fn payout_key(&self) -> &SigningKey {
        &self.payout_key
    }

    /// The note-spending key.
    pub fn spending_key(&self) -> &SpendingKey {
        &self.spending_key
    }

    /// Draws a fresh note of `value` on the marketplace `marketplace_key` (hex) and
    /// records it pending before anything is sent, so its reward or change cannot be
    /// lost: the next sync finds it in the note tree.
    ///
    /// # Errors
    /// `notes.json` cannot be read or written.
    pub fn new_note(&self, marketplace_key: &str, value: u64, origin: &str) -> Result<Note> {
        let note = self.spending_key.note(value, &mut rand::rngs::OsRng);
        self.update_notes(|notes| {
            notes.push(WalletNote {
                marketplace_key: marketplace_key.to_string(),
                value,
                blinding: fr_to_hex(&note.blinding),
                commitment: hex::encode(fr_to_bytes(&note.commitment())),
                index: None,
                spent: false,
                origin: origin.to_string(),
            });
            Ok(())
        })?;
        Ok(note)
    }

    /// The note a [`WalletNote`] records, opened with this wallet's key.
    ///
    /// # Errors
    /// A damaged record, or one that does not open to its commitment.
    pub fn open_note(&self, held: &WalletNote) -> Result<Note> {
        let note = Note {
            value: held.value,
            owner: self.spending_key.owner(),
            blinding: fr_from_hex(&held.blinding).context("notes.json: a blinding")?,
        };
        if hex::encode(fr_to_bytes(&note.commitment())) != held.commitment {
            bail!(
                "notes.json: note {}.. does not open with this wallet's key",
                &held.commitment[..12]
            );
        }
        Ok(note)
    }

    /// The notes recorded so far, every marketplace's.
    ///
    /// # Errors
    /// A damaged `notes.json`.
    pub fn notes(&self) -> Result<Vec<WalletNote>> {
        let path = self.dir.join("notes.json");
        if path.exists() {
            read_json(&path)
        } else {
            Ok(Vec::new())
        }
    }

    /// Changes the recorded notes under the wallet's lock, written atomically and
    /// synced to disk before this returns.
    ///
    /// # Errors
    /// `notes.json` cannot be read or written, or `change` fails (nothing is written).
    pub fn update_notes<T>(
        &self,
        change: impl FnOnce(&mut Vec<WalletNote>) -> Result<T>,
    ) -> Result<T> {
        let _only_writer = self
            .files_lock
            .lock()
            .map_err(|_| anyhow::anyhow!("an earlier wallet write panicked"))?;
        let mut notes = self.notes()?;
        let result = change(&mut notes)?;
        write_replacing(
            &self.dir.join("notes.json"),
            &serde_json::to_vec_pretty(&notes)?,
        )?;
        Ok(result)
    }

    /// Checks an issuer's record file against this wallet's identity and keeps it.
    ///
    /// # Errors
    /// A file for another identity, a leaf that does not match, or a write failure.
    pub fn import_record(&self, file: IssuedRecordFile) -> Result<HeldRecord> {
        let (record, leaf) = file.open(self.identity_commitment())?;
        write_replacing(
            &self.record_path(file.leaf_index),
            &serde_json::to_vec_pretty(&file)?,
        )?;
        Ok(HeldRecord { file, record, leaf })
    }

    /// Every record the wallet holds, by leaf index.
    ///
    /// # Errors
    /// An unreadable or inconsistent record file.
    pub fn records(&self) -> Result<Vec<HeldRecord>> {
        let paths = crate::sample::json_files_in(&self.dir.join("records"))?;
        paths
            .iter()
            .map(|path| {
                let file: IssuedRecordFile = read_json(path)?;
                let (record, leaf) = file
                    .open(self.identity_commitment())
                    .with_context(|| format!("{}", path.display()))?;
                Ok(HeldRecord { file, record, leaf })
            })
            .collect()
    }

    fn record_path(&self, leaf_index: u64) -> PathBuf {
        self.dir
            .join("records")
            .join(format!("leaf-{leaf_index}.json"))
    }

    /// The registry tree rebuilt from the last synced leaves.
    ///
    /// # Errors
    /// A damaged `registry.json`, or more leaves than the depth holds.
    pub fn registry(&self, depth: usize) -> Result<RegistryTree> {
        let copy = self.registry_copy()?;
        let leaves = copy
            .leaves
            .iter()
            .map(|text| leaf_from_hex(text))
            .collect::<Result<Vec<_>>>()?;
        Ok(RegistryTree::from_leaves(depth, &leaves)?)
    }

    /// The indices of the leaves revoked in the last synced registry copy.
    ///
    /// # Errors
    /// A damaged `registry.json`.
    pub fn revoked_leaves(&self) -> Result<std::collections::BTreeSet<u64>> {
        let zero = hex::encode([0u8; 32]);
        Ok(self
            .registry_copy()?
            .leaves
            .iter()
            .enumerate()
            .filter(|(_, leaf)| **leaf == zero)
            .map(|(index, _)| index as u64)
            .collect())
    }

    fn registry_copy(&self) -> Result<RegistryCopy> {
        let path = self.dir.join("registry.json");
        if path.exists() {
            read_json(&path)
        } else {
            Ok(RegistryCopy::default())
        }
    }

    /// Replaces the registry copy with every leaf, fetched in pages from index 0
    /// (`fetch(start)` returns the next page, empty at the end), if they rebuild
    /// `current_root`. Returns the number of leaves. The whole range every time: a sync
    /// that started where the last one ended would tell the marketplace when this wallet
    /// last synced, and so narrow its next enrollment to the records issued since;
    /// every wallet asks for the same pages of a registry of a given size.
    ///
    /// # Errors
    /// A fetch failure, or leaves that do not rebuild `current_root`.
    pub fn sync_registry(
        &self,
        depth: usize,
        current_root: Fr,
        mut fetch: impl FnMut(u64) -> Result<Vec<[u8; 32]>>,
    ) -> Result<u64> {
        let mut copy = RegistryCopy::default();
        loop {
            let page = fetch(copy.leaves.len() as u64)?;
            if page.is_empty() {
                break;
            }
            copy.leaves.extend(page.iter().map(hex::encode));
        }
        let leaves = copy
            .leaves
            .iter()
            .map(|text| leaf_from_hex(text))
            .collect::<Result<Vec<_>>>()?;
        if RegistryTree::from_leaves(depth, &leaves)?.root() != current_root {
            bail!("the registry's leaves do not rebuild its current root: the marketplace served inconsistent data");
        }
        write_replacing(&self.dir.join("registry.json"), &serde_json::to_vec(&copy)?)?;
        Ok(leaves.len() as u64)
    }

    /// Whether `held` may enroll in a study with `query`: the native evaluator's
    /// verdict, with the failed criteria.
    ///
    /// # Errors
    /// A query that does not compile against the bundled catalog.
    pub fn preview(held: &HeldRecord, query: &Query) -> Result<Eligibility> {
        Ok(eligible(Catalog::bundled(), &held.record.summary, query)?)
    }

    /// The proof request for enrolling `held` in `study`: the wallet's secret, the
    /// record, its path in `registry`, the study's issuer set (a tree of the circuit's
    /// `issuer_depth`), its compiled query and its scope.
    ///
    /// # Errors
    /// A leaf missing from the registry copy (sync first) or revoked, a study that does
    /// not accept the record's issuer or whose issuers do not give its issuers root, or a
    /// query that does not compile.
    pub fn proof_request(
        &self,
        held: &HeldRecord,
        registry: &RegistryTree,
        study: &Study,
        scope: StudyScope,
        issuer_depth: usize,
        reward_receiver: Fr,
    ) -> Result<ProofRequest> {
        let issuers = IssuerSet::new(&study.issuers, issuer_depth)?;
        if fr_to_bytes(&issuers.root()) != study.issuers_root {
            bail!(
                "study {}'s issuers do not give its issuers root: the marketplace served an inconsistent study",
                study.id
            );
        }
        let index = held.file.leaf_index;
        match registry.leaf(index) {
            Some(leaf) if leaf == held.leaf => {}
            Some(_) if registry.is_revoked(index) => {
                bail!("the issuer revoked this record (leaf {index})")
            }
            Some(_) => bail!("registry leaf {index} is not this record's leaf"),
            None => bail!("the registry copy has no leaf {index} yet: sync the registry"),
        }
        Ok(ProofRequest {
            secret: self.secret.clone(),
            record: held.record.clone(),
            registry_path: registry.path(index)?,
            issuers,
            query: study.query.compile(Catalog::bundled())?,
            study_scope: scope,
            reward_receiver,
        })
    }

    /// The nullifier this wallet would enroll with in a study of this scope.
    pub fn nullifier(&self, scope: StudyScope) -> Fr {
        self.secret.nullifier(scope).0
    }

    /// The enrollments made so far.
    ///
    /// # Errors
    /// A damaged `enrollments.json`.
    pub fn enrollments(&self) -> Result<Vec<WalletEnrollment>> {
        let path = self.dir.join("enrollments.json");
        if path.exists() {
            read_json(&path)
        } else {
            Ok(Vec::new())
        }
    }

    /// Records an enrollment the marketplace accepted, in place of a voided one in the
    /// same study (a patient enrolls again after its pending proof's root expired).
    ///
    /// # Errors
    /// The file cannot be read or written.
    pub fn record_enrollment(&self, enrollment: WalletEnrollment) -> Result<()> {
        self.update_enrollments(|all| {
            all.retain(|made| {
                !(made.marketplace_key == enrollment.marketplace_key
                    && made.study == enrollment.study
                    && made.voided.is_some())
            });
            if !all.contains(&enrollment) {
                all.push(enrollment);
            }
            Ok(())
        })
    }

    /// Changes the recorded enrollments, one writer at a time.
    ///
    /// # Errors
    /// The file cannot be read or written, or `change` fails (nothing is written).
    pub fn update_enrollments<T>(
        &self,
        change: impl FnOnce(&mut Vec<WalletEnrollment>) -> Result<T>,
    ) -> Result<T> {
        let _only_writer = self
            .files_lock
            .lock()
            .map_err(|_| anyhow::anyhow!("an earlier wallet write panicked"))?;
        let mut all = self.enrollments()?;
        let result = change(&mut all)?;
        write_replacing(
            &self.dir.join("enrollments.json"),
            &serde_json::to_vec_pretty(&all)?,
        )?;
        Ok(result)
    }
}

fn leaf_from_hex(text: &str) -> Result<Fr> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).context("a registry leaf is not 32 bytes of hex")?;
    Ok(fr_from_bytes(&bytes)?)
}

/// A leaf as the marketplace's registry routes carry it.
pub fn leaf_to_hex(leaf: &Fr) -> String {
    hex::encode(fr_to_bytes(leaf))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// Replaces `path` with `bytes` through a temporary file (owner-only on Unix, synced to
/// disk) and a rename, so a crash leaves the old file or the new one, never a torn one.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("json.partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))
}

/// Writes a file only its owner may read.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrollment(study: u64) -> WalletEnrollment {
        WalletEnrollment {
            marketplace_key: "ab".repeat(32),
            study,
            nullifier: study.to_string(),
            reward: 1,
            voided: None,
        }
    }

    #[test]
    fn a_wallet_reopens_with_the_same_identity_and_is_not_created_twice() {
        let folder = tempfile::tempdir().unwrap();
        let created = Wallet::create(folder.path()).unwrap();
        let opened = Wallet::open(folder.path()).unwrap();
        assert_eq!(opened.identity_commitment(), created.identity_commitment());
        assert_eq!(opened.payout_account(), created.payout_account());
        assert!(Wallet::create(folder.path()).is_err());
        assert!(Wallet::open(&folder.path().join("elsewhere")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(folder.path().join("wallet.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn concurrent_enrollments_of_one_wallet_are_all_kept() {
        let folder = tempfile::tempdir().unwrap();
        let wallet = Wallet::create(folder.path()).unwrap();
        std::thread::scope(|scope| {
            for study in 0..8 {
                let wallet = &wallet;
                scope.spawn(move || wallet.record_enrollment(enrollment(study)).unwrap());
            }
        });
        let mut studies: Vec<u64> = wallet
            .enrollments()
            .unwrap()
            .iter()
            .map(|made| made.study)
            .collect();
        studies.sort_unstable();
        assert_eq!(studies, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn registry_sync_asks_for_the_same_pages_whatever_the_wallet_held() {
        let depth = 4;
        let folder = tempfile::tempdir().unwrap();
        let wallet = Wallet::create(folder.path()).unwrap();
        let mut served = RegistryTree::new(depth).unwrap();
        for value in 1..=5u64 {
            served.append(Fr::from(value)).unwrap();
        }
        fn pages<'a>(
            tree: &RegistryTree,
            fetched: &'a mut Vec<u64>,
        ) -> impl FnMut(u64) -> Result<Vec<[u8; 32]>> + 'a {
            let leaves: Vec<[u8; 32]> = tree.leaves().iter().map(fr_to_bytes).collect();
            move |start| {
                fetched.push(start);
                Ok(leaves
                    .iter()
                    .skip(start as usize)
                    .take(2)
                    .copied()
                    .collect())
            }
        }
        let mut starts = Vec::new();
        let count = wallet
            .sync_registry(depth, served.root(), pages(&served, &mut starts))
            .unwrap();
        assert_eq!((count, starts.clone()), (5, vec![0, 2, 4, 5]));

        // A wallet that synced before asks for exactly what a new one asks for.
        served.append(Fr::from(6u64)).unwrap();
        let mut starts = Vec::new();
        wallet
            .sync_registry(depth, served.root(), pages(&served, &mut starts))
            .unwrap();
        let fresh = Wallet::create(&folder.path().join("fresh")).unwrap();
        let mut fresh_starts = Vec::new();
        fresh
            .sync_registry(depth, served.root(), pages(&served, &mut fresh_starts))
            .unwrap();
        assert_eq!(starts, vec![0, 2, 4, 6]);
        assert_eq!(
            starts, fresh_starts,
            "the requests say nothing of the last sync"
        );

        served.revoke(1).unwrap();
        let mut starts = Vec::new();
        wallet
            .sync_registry(depth, served.root(), pages(&served, &mut starts))
            .unwrap();
        assert_eq!(wallet.registry(depth).unwrap().root(), served.root());
        assert_eq!(wallet.revoked_leaves().unwrap(), [1].into());

        // Leaves that do not give the served root are refused, and the copy is kept.
        let mut starts = Vec::new();
        let wrong_root = Fr::from(99u64);
        assert!(wallet
            .sync_registry(depth, wrong_root, pages(&served, &mut starts))
            .is_err());
        assert_eq!(wallet.registry(depth).unwrap().root(), served.root());
    }
}
