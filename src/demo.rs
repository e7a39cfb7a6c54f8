//! The end-to-end demo: every role of zkcohort against a marketplace served on
//! 127.0.0.1 in this process, through the same HTTP API and library calls the
//! `zkcohort issuer|patient|researcher` commands use.
//!
//! 1. The operator creates an issuer key and two researcher keys and mints tokens.
//! 2. Each patient's wallet makes an identity; the issuer imports the patient's FHIR
//!    bundle, salts the summary for that identity and registers all leaves at once.
//! 3. The researchers post three studies (the queries in `queries/`) and fund them.
//! 4. Every wallet syncs the registry and previews every study locally; the eligible
//!    (wallet, study) pairs are proven in one rayon batch and enrolled as each proof
//!    is ready; they stay pending, with nothing public, until a study has the
//!    minimum cohort, then settle together: rewards paid from escrow into notes.
//! 5. The researchers close the studies: a study at least the minimum cohort joined
//!    settles what is pending, one below it voids it and shows nothing; the escrow
//!    remainder is refunded, and a study bundle is exported and checked independently
//!    with the verifier crate.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use zkcohort_circuits::circuit::CircuitShape;
use zkcohort_circuits::shape::NoteShape;
use zkcohort_cohort::Day;
use zkcohort_market::api::CreateApiKey;
use zkcohort_market::api_keys::{draw_api_key, ApiKeyRole};
use zkcohort_market::CohortPolicy;
use zkcohort_prover::{CircuitKeys, ProofRequest, ProverError};
use zkcohort_verifier::{CeremonyTranscript, KeySetup};

use crate::client::MarketClient;
use crate::issued::Issuance;
use crate::issuer::{register, PendingRecord};
use crate::keys::{
    load_served_circuits, run_local_ceremony, transcript_paths, ServedCircuits, SetupPolicy,
    DEMO_PARTICIPANTS,
};
use crate::patient::{self, RemoteMarketplace};
use crate::progress::{Progress, Unit};
use crate::researcher::{self, StudyPost};
use crate::serve::{Marketplace, Rules};
use crate::wallet::Wallet;
use zkcohort_market::dp::{Mechanism, PostProcess, Statistic};

/// A study the demo's researchers post.
struct DemoStudy {
    title: &'static str,
    /// The query, text form (the files in `queries/`).
    query: &'static str,
    reward: u64,
    max_enrollments: u64,
    epsilon_budget: f64,
}

/// The demo's three studies.
const STUDIES: [DemoStudy; 3] = [
    DemoStudy {
        title: "Uncontrolled or treated hypertension, 40-75",
        query: include_str!("../queries/hypertension.query"),
        reward: 50,
        max_enrollments: 100,
        epsilon_budget: 1.0,
    },
    DemoStudy {
        title: "Cardiometabolic risk markers, 30-80",
        query: include_str!("../queries/cardiometabolic.query"),
        reward: 20,
        max_enrollments: 100,
        epsilon_budget: 2.0,
    },
    DemoStudy {
        title: "Recurrent sinusitis or pharyngitis treated with antibiotics",
        query: include_str!("../queries/respiratory.query"),
        reward: 30,
        max_enrollments: 100,
        epsilon_budget: 1.0,
    },
];

/// The demo marketplace's minimum cohort: its world is 22 patients, so it uses 3 where
/// the default is 10; a study fewer than 3 patients join closes with nothing public.
const DEMO_MIN_COHORT: u64 = 3;

/// Tokens the operator mints for each researcher.
const RESEARCHER_GRANT: u64 = 10_000;

/// How the demo runs.
pub struct DemoOptions {
    /// The folder for the marketplace, the wallets and the exported bundle.
    pub data: PathBuf,
    /// The folder of the ceremony's keys and transcript (made on the first run, reused).
    pub keys: PathBuf,
    /// The patients' FHIR bundles.
    pub bundles: Vec<PathBuf>,
    /// The circuit shape.
    pub shape: CircuitShape,
    /// Whether to draw progress bars and step lines.
    pub progress: bool,
}

/// The epsilon each study's breakdown spends (of budgets of 1 and 2).
const DEMO_RELEASE_EPSILON: f64 = 0.5;

/// What happened to one study.
#[derive(Debug, Serialize)]
pub struct StudyOutcome {
    /// Its id.
    pub id: u64,
    /// Its title.
    pub title: String,
    /// Patients whose wallet found them eligible.
    pub eligible: usize,
    /// Enrollments the marketplace accepted (pending until the study reached its
    /// minimum cohort).
    pub accepted: usize,
    /// Enrollments made public and paid (0, or at least the minimum cohort).
    pub enrolled: u64,
    /// What the public sees of the cohort: its size, or "fewer than k".
    pub public_count: String,
    /// Tokens paid to patients.
    pub paid: u64,
    /// Tokens refunded to the researcher on closing.
    pub refunded: u64,
    /// The DP table of its first two measures, as `researcher release` prints it (none
    /// for a study below the minimum cohort: nothing about it is released).
    pub breakdown: Option<String>,
}

/// The demo's results.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// The marketplace's address.
    pub server: String,
    /// Where the circuit's keys came from (the demo's ceremony).
    pub setup: KeySetup,
    /// Seconds this run's ceremony took; `None` when an earlier run's was reused.
    pub ceremony_seconds: Option<f64>,
    /// Patients imported.
    pub patients: usize,
    /// What the issuer's import of the bundles kept and left out.
    pub import: ImportTotals,
    /// Per study.
    pub studies: Vec<StudyOutcome>,
    /// Proofs made.
    pub proofs: usize,
    /// Seconds the proof batch took (proving and enrolling as proofs were ready).
    pub proving_seconds: f64,
    /// Proofs per second over the batch.
    pub proofs_per_second: f64,
    /// Tokens paid to patients in all (into reward notes).
    pub tokens_paid: u64,
    /// The patient with the most enrollments withdrawing all its notes.
    pub withdrawal: WithdrawalOutcome,
    /// The exported bundle.
    pub bundle: PathBuf,
    /// Whether the verifier accepted it.
    pub bundle_verified: bool,
    /// What the verifier said.
    pub bundle_report: String,
    /// Whole-demo wall time in seconds.
    pub wall_seconds: f64,
}

/// One patient's withdrawal of every reward note to its own account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WithdrawalOutcome {
    /// The notes it held (one per enrollment).
    pub notes: usize,
    /// What they held, all withdrawn.
    pub amount: u64,
    /// Note transfers it took (merges and the withdrawal).
    pub transfers: usize,
    /// The wallet account's balance afterwards.
    pub account_balance: u64,
}

/// What importing the bundles kept and left out, over all of them (counted per FHIR
/// entry, as `zkcohort summarize` counts one bundle).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportTotals {
    /// Entries of the resource types the importer reads.
    pub entries_read: usize,
    /// Of those, entries that filled a slot of the summary.
    pub entries_mapped: usize,
    /// Entries of resource types the importer does not read.
    pub entries_not_read: usize,
    /// Patients whose record says they died (their summaries hold the day; `alive`
    /// queries leave them out).
    pub deceased: usize,
}

impl ImportTotals {
    fn add(&mut self, report: &zkcohort_cohort::fhir::ImportReport) {
        let coverage = report.total_coverage();
        self.entries_read += coverage.total;
        self.entries_mapped += coverage.mapped;
        self.entries_not_read += report.not_read.values().sum::<usize>();
        self.deceased += usize::from(
            report
                .patient
                .as_ref()
                .is_some_and(|patient| patient.is_deceased),
        );
    }
}

/// The file that marks a folder as the demo's own, which a later run may clear.
const DEMO_MARKER: &str = "zkcohort-demo";

/// Runs the whole demo: keys (from a three-party ceremony run once into
/// [`DemoOptions::keys`]), a fresh
/// marketplace served on 127.0.0.1 in this process, every role, and the report.
///
/// # Errors
/// A data folder that holds something else than an earlier demo, or any step that
/// fails, with what was being done.
pub fn run(options: &DemoOptions) -> Result<DemoReport> {
    let started = Instant::now();
    fresh_demo_folder(&options.data)?;
    let (circuits, ceremony_seconds) = demo_circuit(options)?;
    let keys = &circuits.eligibility.keys;
    let marketplace = Marketplace::open_with_circuit(
        &options.data.join("marketplace"),
        &circuits,
        Rules {
            cohort: CohortPolicy {
                min_cohort: DEMO_MIN_COHORT,
                batch_size: DEMO_MIN_COHORT,
                ..CohortPolicy::default()
            },
            ..Rules::default()
        },
    )?;
    let running = marketplace.spawn("127.0.0.1:0")?;
    if options.progress {
        eprintln!(
            "marketplace: serving {} on {} (sled store in {})",
            keys.circuit_id(),
            running.url(),
            options.data.join("marketplace").display()
        );
    }
    let report = run_roles(
        options,
        (keys, &circuits.note.keys),
        &running.url(),
        running.operator_token(),
        started,
    )
    .map(|report| DemoReport {
        ceremony_seconds,
        ..report
    });
    running.stop()?;
    report
}

/// The demo's circuits: the keys and transcripts of an earlier run's ceremony, or a new
/// three-party ceremony (and how long it took) when the folder has none for the shape.
fn demo_circuit(options: &DemoOptions) -> Result<(ServedCircuits, Option<f64>)> {
    let (phase1, zkey) = transcript_paths(&options.keys, options.shape);
    let key = CircuitKeys::proving_key_path(&options.keys, options.shape);
    let (note_phase1, note_zkey) = transcript_paths(&options.keys, NoteShape::STANDARD);
    if [key, phase1, zkey, note_phase1, note_zkey]
        .iter()
        .all(|path| path.exists())
    {
        match load_served_circuits(options.shape, &options.keys, SetupPolicy::CeremonyOnly) {
            Ok(circuit) => return Ok((circuit, None)),
            // Keys an earlier version of the demo made, for an earlier circuit.
            Err(error)
                if matches!(
                    error.downcast_ref::<ProverError>(),
                    Some(ProverError::KeyFormat { .. })
                ) =>
            {
                eprintln!("keys: {error:#}; the demo makes them again");
            }
            Err(error) => return Err(error),
        }
    }
    if options.progress {
        eprintln!(
            "keys: no ceremony keys for this shape in {}: running a {}-party ceremony (one time)",
            options.keys.display(),
            DEMO_PARTICIPANTS.len()
        );
    }
    let started = Instant::now();
    let circuit = run_local_ceremony(options.shape, &options.keys, &DEMO_PARTICIPANTS)?;
    Ok((circuit, Some(started.elapsed().as_secs_f64())))
}

/// Empties `folder` when an earlier demo made it, creates it otherwise; refuses a
/// folder with anything else in it.
fn fresh_demo_folder(folder: &Path) -> Result<()> {
    if folder.join(DEMO_MARKER).exists() {
        std::fs::remove_dir_all(folder)
            .with_context(|| format!("clearing the earlier demo in {}", folder.display()))?;
    } else if folder
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!(
            "{} is not empty and was not made by the demo: choose another --data folder",
            folder.display()
        );
    }
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    std::fs::write(
        folder.join(DEMO_MARKER),
        "made by `zkcohort demo`; the next run clears this folder\n",
    )
    .with_context(|| format!("writing in {}", folder.display()))
}

/// Every role, against the marketplace at `base` whose operator token is
/// `operator_token`.
fn run_roles(
    options: &DemoOptions,
    (keys, note_keys): (&CircuitKeys, &CircuitKeys<NoteShape>),
    base: &str,
    operator_token: &str,
    started: Instant,
) -> Result<DemoReport> {
    let say = |line: &str| {
        if options.progress {
            eprintln!("{line}");
        }
    };
    let operator = MarketClient::new(base)?.with_token(operator_token);
    let public = MarketClient::new(base)?;
    let market = RemoteMarketplace::fetch(&public)?;
    market.eligibility_circuit().check_keys(keys)?;
    // The sponsor's pin: the transcript as the marketplace serves it.
    let transcript = match market.info.setup {
        KeySetup::Ceremony { .. } => {
            let path = format!("/circuits/{}/transcript", market.info.circuit_id);
            let file = public.download(&path, |_, _| {})?;
            Some(CeremonyTranscript::read(&file.bytes).context("the served transcript")?)
        }
        KeySetup::Development => None,
    };

    say("operator: API keys for one issuer and two researchers, tokens for the researchers");
    let issuer =
        MarketClient::new(base)?.with_token(create_key(&operator, &market, ApiKeyRole::Issuer)?.0);
    let mut researchers = Vec::new();
    for _ in 0..2 {
        let (token, account_key) = create_key(&operator, &market, ApiKeyRole::Researcher)?;
        operator.mint(
            &hex::encode(account_key.verifying_key().to_bytes()),
            RESEARCHER_GRANT,
        )?;
        researchers.push((MarketClient::new(base)?.with_token(token), account_key));
    }

    say(&format!(
        "issuer: importing {} FHIR bundles, registering one leaf per patient",
        options.bundles.len()
    ));
    let (wallets, import) = issue_records(options, &issuer)?;
    say(&format!(
        "issuer: {} of {} entries mapped, {} skipped ({} of resource types not read); {} deceased \
         patients (`zkcohort summarize --verbose BUNDLE` lists what one bundle left out)",
        import.entries_mapped,
        import.entries_read,
        import.entries_read - import.entries_mapped,
        import.entries_not_read,
        import.deceased
    ));

    say("researchers: posting and funding three studies");
    let mut studies = Vec::new();
    for (position, demo) in STUDIES.iter().enumerate() {
        let (client, account_key) = &researchers[position % researchers.len()];
        let study = researcher::post_study(
            client,
            &StudyPost {
                title: demo.title.to_string(),
                description: demo
                    .query
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("# ")
                    .to_string(),
                query: demo.query.to_string(),
                reward: demo.reward,
                max_enrollments: demo.max_enrollments,
                epsilon_budget: demo.epsilon_budget,
                issuers: Vec::new(),
            },
        )?;
        researcher::fund(
            client,
            account_key,
            study.id,
            demo.reward * demo.max_enrollments,
        )?;
        studies.push((study, client));
    }

    say("patients: syncing the registry and checking every study locally");
    let mut targets = Vec::new();
    let mut requests: Vec<ProofRequest> = Vec::new();
    let mut eligible = vec![0usize; studies.len()];
    for (wallet_index, wallet) in wallets.iter().enumerate() {
        let registry = patient::sync_registry(&public, wallet, &market, false)?;
        for preview in patient::preview_studies(&public, wallet, &market)? {
            if preview.record.is_none() {
                continue;
            }
            let position = studies
                .iter()
                .position(|(study, _)| study.id == preview.study.id)
                .context("a study the demo did not post")?;
            eligible[position] += 1;
            requests.push(patient::enrollment_request(
                wallet, &registry, &market, &preview,
            )?);
            targets.push((wallet_index, preview.study.id));
        }
    }

    say(&format!(
        "patients: proving {} enrollments in one batch",
        requests.len()
    ));
    let bar = Progress::new(
        options.progress,
        "proving",
        Unit::Items("proof", "proofs"),
        requests.len() as u64,
        "  proving {bar:40} {pos}/{len} proofs, {per_sec}, eta {eta}",
    );
    let failures = Mutex::new(Vec::new());
    let proving = Instant::now();
    let receivers: Vec<_> = requests
        .iter()
        .map(|request| request.reward_receiver)
        .collect();
    keys.prove_batch(requests, |progress, result| {
        let (wallet_index, study_id) = targets[progress.index];
        let outcome = result.map_err(anyhow::Error::from).and_then(|proof| {
            let (study, _) = studies
                .iter()
                .find(|(study, _)| study.id == study_id)
                .context("a study the demo did not post")?;
            patient::submit_enrollment(
                &public,
                &wallets[wallet_index],
                &market,
                study,
                &proof,
                receivers[progress.index],
            )
        });
        if let Err(error) = outcome {
            failures
                .lock()
                .expect("not poisoned")
                .push(format!("{error:#}"));
        }
        bar.inc();
    });
    bar.finish();
    let proving_seconds = proving.elapsed().as_secs_f64();
    let failures = failures.into_inner().expect("not poisoned");
    ensure!(
        failures.is_empty(),
        "enrollments failed: {}",
        failures.join("; ")
    );
    let proofs = targets.len();

    say(&format!(
        "researchers: closing the studies (each settles what is pending if at least {} \
         joined, voids it otherwise and refunds its whole escrow), releasing a DP table of \
         each settled study's first two measures, exporting a bundle",
        market.info.min_cohort
    ));
    let mut outcomes = Vec::new();
    for ((study, client), eligible) in studies.iter().zip(eligible) {
        let closed = researcher::close(client, study.id)?;
        let breakdown = if closed.study.enrolled > 0 {
            let answer = researcher::release(
                client,
                study.id,
                Statistic::Table("1".into(), "2".into()),
                DEMO_RELEASE_EPSILON,
                Mechanism::DiscreteLaplace,
                PostProcess::None,
            )?;
            Some(researcher::render_release(&answer))
        } else {
            None
        };
        outcomes.push(StudyOutcome {
            breakdown,
            id: study.id,
            title: study.title.clone(),
            eligible,
            accepted: targets.iter().filter(|(_, id)| *id == study.id).count(),
            enrolled: closed.study.enrolled,
            public_count: closed.study.public_count(),
            paid: closed.study.enrolled * study.reward,
            refunded: closed.refunded(),
        });
    }
    let bundle_study = outcomes
        .iter()
        .max_by_key(|outcome| outcome.enrolled)
        .map_or(1, |outcome| outcome.id);
    let bundle = options
        .data
        .join(format!("study-{bundle_study}.bundle.json"));
    researcher::export_bundle(&public, bundle_study, &bundle)?;
    let verdict = researcher::verify_bundle_file(&bundle, Some(&market.key), transcript.as_ref())?;

    // Only the enrollments of studies that reached the minimum cohort were paid.
    let paid: Vec<(usize, u64)> = targets
        .iter()
        .copied()
        .filter(|(_, study)| {
            outcomes
                .iter()
                .any(|outcome| outcome.id == *study && outcome.enrolled > 0)
        })
        .collect();
    let withdrawal = withdraw_most_enrolled(&public, &market, &wallets, &paid, note_keys, &say)?;
    let tokens_paid = outcomes.iter().map(|outcome| outcome.paid).sum();
    Ok(DemoReport {
        server: base.to_string(),
        setup: market.info.setup,
        ceremony_seconds: None,
        patients: wallets.len(),
        import,
        studies: outcomes,
        proofs,
        proving_seconds,
        proofs_per_second: proofs as f64 / proving_seconds.max(f64::EPSILON),
        tokens_paid,
        withdrawal,
        bundle,
        bundle_verified: verdict.valid,
        bundle_report: verdict.summary,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The patient with the most paid enrollments (`paid`: wallet index and study) withdraws
/// everything its reward notes hold to its wallet's own account: merges, then one
/// withdrawal, each a note-transfer proof.
fn withdraw_most_enrolled(
    public: &MarketClient,
    market: &RemoteMarketplace,
    wallets: &[Wallet],
    paid: &[(usize, u64)],
    note_keys: &CircuitKeys<NoteShape>,
    say: &dyn Fn(&str),
) -> Result<WithdrawalOutcome> {
    let Some(most) = (0..wallets.len())
        .max_by_key(|index| paid.iter().filter(|(wallet, _)| wallet == index).count())
    else {
        return Ok(WithdrawalOutcome::default());
    };
    let wallet = &wallets[most];
    let sync = patient::sync_notes(public, wallet, market)?;
    let (notes, amount) = (sync.spendable().count(), sync.balance());
    if amount == 0 {
        return Ok(WithdrawalOutcome::default());
    }
    say(&format!(
        "a patient: withdrawing its {notes} reward notes ({amount} tokens) to its own account"
    ));
    let account = wallet.payout_account();
    let steps = patient::withdraw(public, wallet, market, note_keys, account, amount, |line| {
        say(&format!("  {line}"))
    })?;
    Ok(WithdrawalOutcome {
        notes,
        amount,
        transfers: steps.len(),
        account_balance: patient::account(public, &account)?.balance,
    })
}

/// A new account with an API key bound to it on the account's signed request: the
/// key, and the account's signing key.
fn create_key(
    operator: &MarketClient,
    market: &RemoteMarketplace,
    role: ApiKeyRole,
) -> Result<(String, SigningKey)> {
    let account_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let api_key = draw_api_key();
    operator.create_api_key(&CreateApiKey::sign(
        &account_key,
        &market.key,
        role,
        &api_key,
    ))?;
    Ok((api_key, account_key))
}

/// One wallet per bundle; the issuer imports each bundle for the wallet's identity,
/// registers every leaf in one request, and each wallet imports its record file.
fn issue_records(
    options: &DemoOptions,
    issuer: &MarketClient,
) -> Result<(Vec<Wallet>, ImportTotals)> {
    let issued_at = Day::from_date(chrono::Local::now().date_naive())?;
    let mut wallets = Vec::new();
    let mut pending = Vec::new();
    let mut totals = ImportTotals::default();
    for path in &options.bundles {
        let name = path.file_stem().map_or_else(
            || "patient".to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        );
        let wallet = Wallet::create(&options.data.join("wallets").join(&name))?;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let issuance = Issuance::from_bundle(
            &text,
            wallet.identity_commitment(),
            issued_at,
            options.shape.slot_depth,
        )
        .with_context(|| format!("importing {}", path.display()))?;
        totals.add(&issuance.report);
        pending.push(PendingRecord {
            source: crate::sample::file_name(path),
            identity: wallet.identity_commitment(),
            issuance,
        });
        wallets.push(wallet);
    }
    for (wallet, file) in wallets.iter().zip(register(issuer, &pending)?) {
        wallet.import_record(file)?;
    }
    Ok((wallets, totals))
}

/// The report as a table.
pub fn print_report(report: &DemoReport) {
    println!();
    println!(
        "{:<4} {:<58} {:>8} {:>8} {:>14} {:>7} {:>8}",
        "id", "study", "eligible", "accepted", "public count", "paid", "refunded"
    );
    for study in &report.studies {
        println!(
            "{:<4} {:<58} {:>8} {:>8} {:>14} {:>7} {:>8}",
            study.id,
            study.title,
            study.eligible,
            study.accepted,
            study.public_count,
            study.paid,
            study.refunded
        );
    }
    for breakdown in report
        .studies
        .iter()
        .filter_map(|study| study.breakdown.as_ref())
    {
        println!();
        println!("{breakdown}");
    }
    println!();
    match (report.setup.transcript_id(), report.ceremony_seconds) {
        (Some(id), Some(seconds)) => println!(
            "keys                ceremony {id} ({} participants, {seconds:.1} s)",
            DEMO_PARTICIPANTS.len()
        ),
        (Some(id), None) => println!("keys                ceremony {id} (an earlier run's)"),
        (None, _) => println!("keys                DEVELOPMENT SETUP"),
    }
    println!("patients            {}", report.patients);
    println!(
        "entries             {} of {} mapped; {} of types not read; {} deceased",
        report.import.entries_mapped,
        report.import.entries_read,
        report.import.entries_not_read,
        report.import.deceased
    );
    println!(
        "proofs              {} in {:.1} s = {:.2} proofs/s (proved and accepted)",
        report.proofs, report.proving_seconds, report.proofs_per_second
    );
    println!(
        "tokens paid         {} (into reward notes)",
        report.tokens_paid
    );
    let withdrawal = &report.withdrawal;
    println!(
        "withdrawal          {} notes, {} tokens, in {} note transfers; the account holds {}",
        withdrawal.notes, withdrawal.amount, withdrawal.transfers, withdrawal.account_balance
    );
    println!(
        "bundle              {} {}",
        report.bundle.display(),
        if report.bundle_verified {
            "VERIFIED"
        } else {
            "REJECTED"
        }
    );
    println!("                    {}", report.bundle_report);
    println!("wall time           {:.1} s", report.wall_seconds);
}
