//! What a patient's wallet does against a marketplace: learn its key and circuits,
//! sync the registry, list open studies with a local eligibility preview, prove and
//! enroll, sync its reward notes, read their balance, merge and withdraw them. Only
//! proofs, nullifiers, one-time note receivers and note commitments are sent; the record
//! never leaves the wallet, and nothing sent names the wallet or ties two of its
//! enrollments together.
//!
//! The wallet downloads the note tree and the spent note nullifiers whole at every sync,
//! so no request tells the marketplace which notes are the wallet's.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, ensure, Context, Result};
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::identity::StudyScope;
use zkcohort_circuits::measure::MeasureOpening;
use zkcohort_circuits::note::{
    note_nullifier, withdrawal_binding, CreatedNote, SpentNote, TransferWitness,
};
use zkcohort_circuits::registry::RegistryTree;
use zkcohort_circuits::shape::NoteShape;
use zkcohort_circuits::statement::{fr_from_bytes, fr_to_bytes, fr_to_hex};
use zkcohort_circuits::CircuitId;
use zkcohort_cohort::query::CompiledQuery;
use zkcohort_cohort::Eligibility;
use zkcohort_market::api::{AccountView, EnrollRequest, MarketplaceInfo, NoteTransferRequest};
use zkcohort_market::{
    EnrollmentStatus, LedgerEntry, NoteTransfer, SignedTransfer, Study, StudyStatus,
};
use zkcohort_prover::keys::KeyedCircuit;
use zkcohort_prover::{CircuitKeys, EligibilityProof, ProofRequest};
use zkcohort_verifier::snarkjs::SnarkjsProof;
use zkcohort_verifier::KeySetup;

use crate::client::MarketClient;
use crate::progress::{Progress, Unit};
use crate::wallet::{HeldRecord, Wallet, WalletEnrollment, WalletNote};

/// Leaves fetched per registry or note-tree page.
const LEAF_PAGE: usize = 1000;

/// A circuit a marketplace announces: its shape, id and setup.
pub struct AnnouncedCircuit<S> {
    /// What it is called in messages (`eligibility`, `note-transfer`).
    pub name: &'static str,
    /// Its shape.
    pub shape: S,
    /// Its id.
    pub circuit_id: CircuitId,
    /// Where its keys came from.
    pub setup: KeySetup,
}

impl<S: KeyedCircuit> AnnouncedCircuit<S> {
    /// Fails unless `keys` are this circuit's.
    ///
    /// # Errors
    /// Keys of another circuit.
    pub fn check_keys(&self, keys: &CircuitKeys<S>) -> Result<()> {
        let ours = keys.circuit_id();
        if ours != self.circuit_id {
            bail!(
                "the {} proving key is for circuit {ours}, the marketplace verifies circuit {}: \
                 get the marketplace's keys (same shape, same setup)",
                self.name,
                self.circuit_id
            );
        }
        Ok(())
    }
}

/// The marketplace's public facts, with its key decoded.
pub struct RemoteMarketplace {
    /// What `GET /marketplace` says.
    pub info: MarketplaceInfo,
    /// The marketplace key (signs audit heads, part of every study scope).
    pub key: [u8; 32],
}

impl RemoteMarketplace {
    /// Reads `GET /marketplace`.
    ///
    /// # Errors
    /// The server cannot be reached or answers something else.
    pub fn fetch(client: &MarketClient) -> Result<Self> {
        let info = client.marketplace()?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&info.marketplace_key, &mut key)
            .context("the marketplace key is not 32 bytes of hex")?;
        Ok(Self { info, key })
    }

    /// The scope of a study on this marketplace.
    pub fn scope(&self, study: u64) -> StudyScope {
        StudyScope::for_study(&self.key, study)
    }

    /// The circuit shape the marketplace announces.
    pub fn shape(&self) -> CircuitShape {
        CircuitShape {
            clauses: self.info.clauses,
            slot_depth: self.info.slot_depth,
            registry_depth: self.info.registry_depth,
            issuer_depth: self.info.issuer_depth,
            measures: self.info.measures,
            measure_bins: self.info.measure_bins,
        }
    }

    /// The eligibility circuit it announces.
    pub fn eligibility_circuit(&self) -> AnnouncedCircuit<CircuitShape> {
        AnnouncedCircuit {
            name: "eligibility",
            shape: self.shape(),
            circuit_id: self.info.circuit_id,
            setup: self.info.setup,
        }
    }

    /// The note-transfer circuit it announces.
    pub fn note_circuit(&self) -> AnnouncedCircuit<NoteShape> {
        AnnouncedCircuit {
            name: "note-transfer",
            shape: NoteShape {
                tree_depth: self.info.note_tree_depth,
            },
            circuit_id: self.info.note_circuit_id,
            setup: self.info.note_setup,
        }
    }
}

/// Syncs the wallet's registry copy with the marketplace (every leaf, see
/// [`Wallet::sync_registry`]) and returns the tree; with `progress`, a bar (or, piped,
/// lines) on stderr counts the leaves.
///
/// # Errors
/// Network errors, or leaves that do not rebuild the served root.
pub fn sync_registry(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
    progress: bool,
) -> Result<RegistryTree> {
    let root = client.registry_root()?;
    let bar = Progress::new(
        progress,
        "syncing the registry",
        Unit::Items("leaf", "leaves"),
        root.leaf_count,
        "  registry {bar:40} {pos}/{len} leaves, eta {eta}",
    );
    let current = fr_from_bytes(&root.root).context("the registry root")?;
    wallet.sync_registry(market.info.registry_depth, current, |start| {
        let page = client.registry_leaves(start, LEAF_PAGE)?;
        bar.set_position(start + page.len() as u64);
        page.iter()
            .map(|text| {
                let mut leaf = [0u8; 32];
                hex::decode_to_slice(text, &mut leaf).context("a registry leaf")?;
                Ok(leaf)
            })
            .collect()
    })?;
    bar.finish();
    wallet.registry(market.info.registry_depth)
}

/// Every study, in pages.
///
/// # Errors
/// Network errors.
pub fn all_studies(client: &MarketClient) -> Result<Vec<Study>> {
    let mut studies = Vec::new();
    loop {
        let start = studies.last().map_or(0, |study: &Study| study.id + 1);
        let page = client.studies(start, 100)?;
        if page.is_empty() {
            return Ok(studies);
        }
        studies.extend(page);
    }
}

/// An open study and what the wallet's records say about it.
pub struct StudyPreview {
    /// The study.
    pub study: Study,
    /// The first record that makes the wallet eligible, if one does.
    pub record: Option<HeldRecord>,
    /// The verdict for each record, in the wallet's order.
    pub verdicts: Vec<Eligibility>,
    /// Whether this wallet already enrolled.
    pub enrolled: bool,
    /// Whether a record that satisfies the query was revoked by its issuer (as of the
    /// last registry sync), so it cannot enroll.
    pub revoked: bool,
}

/// The open studies, each with the wallet's local eligibility preview.
///
/// # Errors
/// Network errors, or a study query the bundled catalog does not compile.
pub fn preview_studies(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
) -> Result<Vec<StudyPreview>> {
    let records = wallet.records()?;
    let enrolled = wallet.enrollments()?;
    let revoked = wallet.revoked_leaves()?;
    let mut previews = Vec::new();
    for study in all_studies(client)? {
        if study.status != StudyStatus::Open {
            continue;
        }
        let verdicts = records
            .iter()
            .map(|held| Wallet::preview(held, &study.query))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("study {}", study.id))?;
        let matching: Vec<&HeldRecord> = records
            .iter()
            .zip(&verdicts)
            .filter(|(held, verdict)| {
                verdict.eligible && study.issuers.contains(&held.record.issuer)
            })
            .map(|(held, _)| held)
            .collect();
        let record = matching
            .iter()
            .find(|held| !revoked.contains(&held.file.leaf_index))
            .map(|held| (*held).clone());
        let revoked = record.is_none() && !matching.is_empty();
        let is_enrolled = enrolled.iter().any(|made| {
            made.study == study.id
                && made.marketplace_key == market.info.marketplace_key
                && made.voided.is_none()
        });
        previews.push(StudyPreview {
            study,
            record,
            verdicts,
            enrolled: is_enrolled,
            revoked,
        });
    }
    Ok(previews)
}

/// The proof request for enrolling in `preview`'s study with its eligible record, bound
/// to a fresh reward note the wallet records (pending) first.
///
/// # Errors
/// No eligible record, one missing from the registry copy, or a wallet write failure.
pub fn enrollment_request(
    wallet: &Wallet,
    registry: &RegistryTree,
    market: &RemoteMarketplace,
    preview: &StudyPreview,
) -> Result<ProofRequest> {
    let Some(held) = &preview.record else {
        bail!(
            "no record in this wallet satisfies study {}'s query",
            preview.study.id
        );
    };
    let study = &preview.study;
    let note = wallet.new_note(
        &market.info.marketplace_key,
        study.reward,
        &format!("study {}", study.id),
    )?;
    wallet.proof_request(
        held,
        registry,
        study,
        market.scope(study.id),
        market.shape().issuer_depth,
        note.receiver(),
    )
}

/// What an enrollment tells the marketplace of the record beyond eligibility: each of the
/// study's measures with the value the proof commits to (`age: 50-64`). The marketplace
/// keeps them private and releases only noisy aggregates.
pub fn disclosed_measures(query: &CompiledQuery, opening: &MeasureOpening) -> Vec<String> {
    query
        .measures
        .iter()
        .zip(&opening.values)
        .map(|(measure, value)| format!("{}: {}", measure.name, measure.describe(*value)))
        .collect()
}

/// Submits a proof for `study`, bound to `reward_receiver` (its request's), and records
/// the enrollment in the wallet, and its reward note's place in the note tree when it
/// settled at once. A pending enrollment's note is placed by a later [`sync_notes`].
///
/// # Errors
/// The marketplace refuses it (its error code and message), or the wallet cannot be
/// written.
pub fn submit_enrollment(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
    study: &Study,
    proof: &EligibilityProof,
    reward_receiver: zkcohort_circuits::Fr,
) -> Result<EnrollmentStatus> {
    let statement = &proof.statement;
    let body = EnrollRequest {
        proof: serde_json::to_value(SnarkjsProof::from_proof(&proof.proof))?,
        registry_root: fr_to_hex(&statement.registry_root),
        nullifier: fr_to_hex(&statement.nullifier.0),
        reward_receiver: fr_to_hex(&reward_receiver),
        measure_opening: proof.measure_opening.clone(),
    };
    let status = client
        .enroll(study.id, &body)
        .with_context(|| format!("enrolling in study {}", study.id))?;
    if let EnrollmentStatus::Settled(enrollment) = &status {
        let commitment = hex::encode(enrollment.note_commitment);
        wallet.update_notes(|notes| {
            if let Some(note) = notes.iter_mut().find(|note| note.commitment == commitment) {
                note.index = Some(enrollment.note_index);
            }
            Ok(())
        })?;
    }
    wallet.record_enrollment(WalletEnrollment {
        marketplace_key: market.info.marketplace_key.clone(),
        study: study.id,
        nullifier: body.nullifier,
        reward: study.reward,
        voided: None,
    })?;
    Ok(status)
}

/// The wallet's enrollments on a marketplace that are not settled, after
/// [`check_enrollments`].
#[derive(Debug, Default)]
pub struct EnrollmentCheck {
    /// Studies whose enrollment is still pending (below its minimum cohort, or waiting
    /// for its batch).
    pub pending: Vec<u64>,
    /// Studies whose enrollment was voided, and why.
    pub voided: Vec<(u64, String)>,
}

/// Asks the marketplace where each of the wallet's enrollments that is neither settled
/// nor known voided stands (by its nullifier, which only this wallet knows), and records
/// the voided ones, dropping the note each would have paid.
///
/// # Errors
/// Network errors, or a wallet write failure.
pub fn check_enrollments(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
) -> Result<EnrollmentCheck> {
    let key = &market.info.marketplace_key;
    let placed: HashSet<String> = wallet
        .notes()?
        .into_iter()
        .filter(|note| note.index.is_some())
        .map(|note| note.origin)
        .collect();
    let mut check = EnrollmentCheck::default();
    for made in wallet.enrollments()? {
        let origin = format!("study {}", made.study);
        if &made.marketplace_key != key || made.voided.is_some() || placed.contains(&origin) {
            continue;
        }
        match client.enrollment_status(made.study, &made.nullifier)? {
            EnrollmentStatus::Pending { .. } => check.pending.push(made.study),
            EnrollmentStatus::Settled(_) => {}
            EnrollmentStatus::Voided { reason } => check.voided.push((made.study, reason)),
        }
    }
    if !check.voided.is_empty() {
        wallet.update_enrollments(|all| {
            for made in all.iter_mut().filter(|made| &made.marketplace_key == key) {
                if let Some((_, reason)) =
                    check.voided.iter().find(|(study, _)| *study == made.study)
                {
                    made.voided = Some(reason.clone());
                }
            }
            Ok(())
        })?;
        wallet.update_notes(|notes| {
            notes.retain(|note| {
                &note.marketplace_key != key
                    || note.index.is_some()
                    || !check
                        .voided
                        .iter()
                        .any(|(study, _)| note.origin == format!("study {study}"))
            });
            Ok(())
        })?;
    }
    Ok(check)
}

/// What the wallet knows of its notes on a marketplace after [`sync_notes`].
pub struct NoteSync {
    /// The note tree, rebuilt from every leaf and checked against the served root.
    pub tree: RegistryTree,
    /// The wallet's notes of this marketplace, as recorded after the sync.
    pub notes: Vec<WalletNote>,
}

impl NoteSync {
    /// The notes that can be spent.
    pub fn spendable(&self) -> impl Iterator<Item = &WalletNote> {
        self.notes.iter().filter(|note| note.is_spendable())
    }

    /// What the spendable notes hold.
    pub fn balance(&self) -> u64 {
        self.spendable().map(|note| note.value).sum()
    }

    /// Notes recorded but not (yet) in the tree: an enrollment or transfer refused, or
    /// not yet accepted.
    pub fn pending(&self) -> usize {
        self.notes
            .iter()
            .filter(|note| note.index.is_none())
            .count()
    }
}

/// Downloads the whole note tree and every spent note nullifier, checks the tree against
/// the served root, and records in the wallet where each of its notes is and whether it
/// is spent: a note whose enrollment or transfer answer was lost is found here.
///
/// # Errors
/// Network errors, leaves that do not give the served root, or a wallet write failure.
pub fn sync_notes(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
) -> Result<NoteSync> {
    let state = client.note_tree()?;
    let leaves = all_pages(|start| client.note_leaves(start, LEAF_PAGE))?;
    let spent: HashSet<String> = all_pages(|start| client.spent_notes(start, LEAF_PAGE))?
        .into_iter()
        .collect();
    let values = leaves
        .iter()
        .map(|text| {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(text, &mut bytes).context("a note commitment")?;
            Ok(fr_from_bytes(&bytes)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let tree = RegistryTree::from_leaves(state.depth, &values)?;
    let served = state.root.map(|root| root.root);
    let rebuilt = (!tree.is_empty()).then(|| fr_to_bytes(&tree.root()));
    ensure!(
        served == rebuilt,
        "the note tree's leaves do not give the root the marketplace serves"
    );
    let positions: HashMap<&str, u64> = leaves
        .iter()
        .enumerate()
        .map(|(index, leaf)| (leaf.as_str(), index as u64))
        .collect();
    let key = &market.info.marketplace_key;
    let notes = wallet.update_notes(|notes| {
        for note in notes.iter_mut().filter(|note| &note.marketplace_key == key) {
            if note.index.is_none() {
                note.index = positions.get(note.commitment.as_str()).copied();
            }
            if let Some(index) = note.index {
                let commitment = wallet.open_note(note)?.commitment();
                let nullifier = note_nullifier(wallet.spending_key(), commitment, index);
                note.spent = spent.contains(&hex::encode(fr_to_bytes(&nullifier)));
            }
        }
        Ok(notes
            .iter()
            .filter(|note| &note.marketplace_key == key)
            .cloned()
            .collect())
    })?;
    Ok(NoteSync { tree, notes })
}

/// Every page of a listing, from position 0 until a short page.
fn all_pages(
    page: impl Fn(u64) -> Result<Vec<String>, crate::client::ClientError>,
) -> Result<Vec<String>> {
    let mut all = Vec::new();
    loop {
        let next = page(all.len() as u64)?;
        let short = next.len() < LEAF_PAGE;
        all.extend(next);
        if short {
            return Ok(all);
        }
    }
}

/// One note transfer a withdrawal made.
pub struct TransferStep {
    /// The values of the notes spent (a dummy spends 0).
    pub spent: [u64; 2],
    /// The amount withdrawn by this step (0 for a merge).
    pub withdrawn: u64,
    /// The change note's value.
    pub change: u64,
    /// The marketplace's answer.
    pub transfer: NoteTransfer,
}

/// Withdraws `amount` from the wallet's notes to the account `to`: while no two notes
/// cover it, merges the two smallest into one (a transfer with no withdrawal), then spends
/// the smallest one or two that cover it, the change in a new note to the wallet. Each
/// output note is recorded (pending) before its transfer is sent, and each spent note is
/// marked spent when the answer arrives; an answer lost on the way is recovered by the
/// next [`sync_notes`]. `on_step` hears of each transfer before it is proved.
///
/// # Errors
/// The notes hold less than `amount`, a zero amount, the marketplace refuses a transfer
/// (its code and message), network or wallet errors.
pub fn withdraw(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
    keys: &CircuitKeys<NoteShape>,
    to: [u8; 32],
    amount: u64,
    mut on_step: impl FnMut(&str),
) -> Result<Vec<TransferStep>> {
    ensure!(amount > 0, "the amount must be positive");
    let mut steps = Vec::new();
    loop {
        let sync = sync_notes(client, wallet, market)?;
        let mut spendable: Vec<&WalletNote> = sync.spendable().collect();
        spendable.sort_by_key(|note| note.value);
        let held = sync.balance();
        ensure!(
            held >= amount,
            "the wallet's notes hold {held} tokens, less than {amount}{}",
            if sync.pending() > 0 {
                format!(" ({} notes still pending)", sync.pending())
            } else {
                String::new()
            }
        );
        // The smallest note that covers the amount alone, else the smallest pair that
        // does, else (no pair covers it) a merge of the two smallest.
        let single = spendable.iter().find(|note| note.value >= amount);
        let pair = (0..spendable.len()).find_map(|first| {
            (first + 1..spendable.len())
                .find(|&second| spendable[first].value + spendable[second].value >= amount)
                .map(|second| [spendable[first], spendable[second]])
        });
        let (inputs, withdrawal): (Vec<&WalletNote>, u64) = match (single, pair) {
            (Some(note), _) => (vec![*note], amount),
            (None, Some(pair)) => (pair.to_vec(), amount),
            (None, None) => (spendable[..2].to_vec(), 0),
        };
        let spent_value: u64 = inputs.iter().map(|note| note.value).sum();
        on_step(&if withdrawal == 0 {
            format!("merging two notes ({spent_value} tokens) ...")
        } else {
            format!("withdrawing {withdrawal} from {} note(s) ...", inputs.len())
        });
        // A merge names no recipient: nothing ties it to the withdrawal that follows.
        let recipient = if withdrawal == 0 { [0u8; 32] } else { to };
        let step = transfer_step(
            client, wallet, market, keys, &sync.tree, &inputs, recipient, withdrawal,
        )?;
        let done = step.withdrawn > 0;
        steps.push(step);
        if done {
            return Ok(steps);
        }
    }
}

/// Proves and sends one transfer of `inputs` (one or two notes), withdrawing
/// `withdrawal` to `to` and keeping the change in a new note.
#[allow(clippy::too_many_arguments)]
fn transfer_step(
    client: &MarketClient,
    wallet: &Wallet,
    market: &RemoteMarketplace,
    keys: &CircuitKeys<NoteShape>,
    tree: &RegistryTree,
    inputs: &[&WalletNote],
    to: [u8; 32],
    withdrawal: u64,
) -> Result<TransferStep> {
    let mut rng = rand::rngs::OsRng;
    let depth = tree.depth();
    let mut spent = Vec::with_capacity(2);
    for held in inputs {
        let index = held.index.context("a spendable note has an index")?;
        spent.push(SpentNote {
            key: wallet.spending_key().clone(),
            note: wallet.open_note(held)?,
            path: tree.path(index)?,
        });
    }
    if spent.len() < 2 {
        spent.push(SpentNote::dummy(depth, &mut rng)?);
    }
    let spent_values = [spent[0].note.value, spent[1].note.value];
    let change_value = spent_values[0] + spent_values[1] - withdrawal;
    // The change note is recorded before the transfer is sent; zero-valued outputs are
    // throwaways (nothing to recover).
    let change = (change_value > 0)
        .then(|| wallet.new_note(&market.info.marketplace_key, change_value, "change"))
        .transpose()?;
    let outputs = [
        change
            .as_ref()
            .map_or_else(|| CreatedNote::zero(&mut rng), CreatedNote::of),
        CreatedNote::zero(&mut rng),
    ];
    let inputs: [SpentNote; 2] = spent.try_into().expect("two inputs");
    let root = tree.root();
    let witness = TransferWitness::new(depth, root, inputs, outputs, withdrawal)?;
    let proof = keys.prove_transfer(
        &witness,
        root,
        withdrawal,
        withdrawal_binding(&to, &market.key),
        &mut rng,
    )?;
    let statement = &proof.statement;
    let hex_of = |value: &zkcohort_circuits::Fr| fr_to_hex(value);
    let body = NoteTransferRequest {
        proof: serde_json::to_value(SnarkjsProof::from_proof(&proof.proof))?,
        note_root: hex_of(&statement.note_root),
        nullifiers: statement.nullifiers.iter().map(hex_of).collect(),
        outputs: statement.outputs.iter().map(hex_of).collect(),
        withdrawal,
        recipient: hex::encode(to),
    };
    let transfer = client
        .transfer_notes(&body)
        .context("the note transfer was refused")?;
    let spent_commitments: Vec<String> = witness
        .inputs
        .iter()
        .map(|input| hex::encode(fr_to_bytes(&input.note.commitment())))
        .collect();
    let change_commitment = change.map(|note| hex::encode(fr_to_bytes(&note.commitment())));
    wallet.update_notes(|notes| {
        for note in notes.iter_mut() {
            if spent_commitments.contains(&note.commitment) {
                note.spent = true;
            }
            if Some(&note.commitment) == change_commitment.as_ref() {
                note.index = Some(transfer.first_index);
            }
        }
        Ok(())
    })?;
    Ok(TransferStep {
        spent: spent_values,
        withdrawn: withdrawal,
        change: change_value,
        transfer,
    })
}

/// The wallet's own account.
///
/// # Errors
/// Network errors.
pub fn account(client: &MarketClient, key: &[u8; 32]) -> Result<AccountView> {
    Ok(client.account(key)?)
}

/// Transfers `amount` from the wallet's payout account to `to`, signed with its key for
/// this marketplace only.
///
/// # Errors
/// The marketplace refuses it (balance, nonce), or network errors.
pub fn transfer(
    client: &MarketClient,
    wallet: &Wallet,
    to: [u8; 32],
    amount: u64,
) -> Result<LedgerEntry> {
    let market = RemoteMarketplace::fetch(client)?;
    let nonce = account(client, &wallet.payout_account())?.nonce;
    let transfer = SignedTransfer::sign(wallet.payout_key(), &market.key, to, amount, nonce);
    Ok(client.transfer(&transfer)?)
}
