//! The `issuer`, `patient` and `researcher` commands: argument types and printing
//! around the library's role modules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use zkcohort::client::MarketClient;
use zkcohort::issued::{Issuance, IssuedRecordFile};
use zkcohort::issuer::{self, PendingRecord};
use zkcohort::patient::{self, AnnouncedCircuit, RemoteMarketplace};
use zkcohort::researcher::{self, StudyPost};
use zkcohort::wallet::Wallet;
use zkcohort_circuits::identity::IdentityCommitment;
use zkcohort_circuits::statement::{fr_from_hex, fr_to_hex};
use zkcohort_cohort::Day;
use zkcohort_market::dp::{Mechanism, PostProcess, Statistic};
use zkcohort_market::{EnrollmentStatus, Study, StudyStatus};
use zkcohort_prover::keys::KeyedCircuit;
use zkcohort_prover::CircuitKeys;

use crate::records::issue_day;

/// Where the marketplace is, and the caller's API key (researchers and issuers).
#[derive(Args)]
pub(crate) struct Server {
    /// The marketplace's base URL.
    #[arg(long, env = "ZKCOHORT_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Your API key (`zkcohort account request-key`, bound by the operator).
    #[arg(long, env = "ZKCOHORT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

/// Where the marketplace is, for commands that need no API key (patients, anyone).
#[derive(Args)]
pub(crate) struct PublicServer {
    /// The marketplace's base URL.
    #[arg(long, env = "ZKCOHORT_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
}

impl PublicServer {
    fn client(&self) -> Result<MarketClient> {
        Ok(MarketClient::new(self.server.as_str())?)
    }
}

impl Server {
    fn client(&self) -> Result<MarketClient> {
        let client = MarketClient::new(self.server.as_str())?;
        Ok(match &self.api_key {
            Some(key) => client.with_token(key.as_str()),
            None => client,
        })
    }
}

/// `zkcohort marketplace`: prints what the marketplace announces, first the key to pin.
pub(crate) fn marketplace(server: &PublicServer, json: bool) -> Result<ExitCode> {
    let info = server.client()?.marketplace()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("marketplace key  {}", info.marketplace_key);
    println!(
        "                 pin it: zkcohort-verify BUNDLE --marketplace-key {}",
        info.marketplace_key
    );
    println!(
        "circuit          {} ({} clauses, slot depth {}, registry depth {}, issuer depth {})",
        info.circuit_id, info.clauses, info.slot_depth, info.registry_depth, info.issuer_depth
    );
    match info.setup {
        zkcohort_verifier::KeySetup::Ceremony { transcript_id } => {
            println!("setup            ceremony, transcript {transcript_id}")
        }
        zkcohort_verifier::KeySetup::Development => println!(
            "setup            DEVELOPMENT: a single party made the keys and could forge proofs"
        ),
    }
    println!(
        "root window      {} s (how long a replaced registry root stays acceptable)",
        info.root_window_ms / 1000
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub(crate) enum IssuerCommand {
    /// Import a patient's FHIR bundle, register its commitment, and write the record
    /// file the patient imports into their wallet.
    Issue {
        #[command(flatten)]
        server: Server,
        /// The FHIR R4 bundle.
        #[arg(long)]
        bundle: PathBuf,
        /// The patient's identity commitment (from `zkcohort patient init`).
        #[arg(long)]
        identity: String,
        /// The issue date (YYYY-MM-DD); today when absent.
        #[arg(long)]
        issued_at: Option<Day>,
        /// Where to write the record file for the patient.
        #[arg(long)]
        out: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a record you registered (its leaf becomes zero; proofs against newer
    /// roots fail).
    Revoke {
        #[command(flatten)]
        server: Server,
        /// The leaf index (in the record file).
        #[arg(long)]
        index: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum PatientCommand {
    /// Create a wallet: an identity, a note-spending key and an account key. Prints
    /// the identity commitment to give your issuer.
    Init {
        /// The wallet folder.
        #[arg(long)]
        wallet: PathBuf,
        /// Print JSON (`identity_commitment`, `account`).
        #[arg(long)]
        json: bool,
    },
    /// Show the identity commitment and the wallet's own account.
    Whoami {
        /// The wallet folder.
        #[arg(long)]
        wallet: PathBuf,
        /// Print JSON (`identity_commitment`, `account`).
        #[arg(long)]
        json: bool,
    },
    /// Import the record file an issuer gave you (checked against your identity).
    Import {
        /// The wallet folder.
        #[arg(long)]
        wallet: PathBuf,
        /// The record file.
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download every registry leaf and check them against its root (the whole range each
    /// time, so the requests say nothing of when this wallet last synced).
    Sync {
        /// The wallet folder.
        #[arg(long)]
        wallet: PathBuf,
        #[command(flatten)]
        server: PublicServer,
    },
    /// List open studies with a local eligibility check (nothing is sent).
    Studies {
        /// The wallet folder.
        #[arg(long)]
        wallet: PathBuf,
        #[command(flatten)]
        server: PublicServer,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Prove eligibility for a study and enroll; the reward is paid into a fresh note
    /// only this wallet can spend.
    Enroll {
        /// The wallet folder.
        #[arg(long)]
        wallet: PathBuf,
        #[command(flatten)]
        server: PublicServer,
        /// The study id.
        #[arg(long)]
        study: u64,
        /// A folder with the marketplace's proving key. Default: the key the
        /// marketplace serves, downloaded once into the wallet and checked (points,
        /// circuit id, ceremony transcript).
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Print the marketplace's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what your reward notes hold, computed here: the wallet downloads the whole
    /// note tree and spent list, so the marketplace learns nothing of which are yours.
    Balance {
        /// The wallet folder.
        #[arg(long)]
        wallet: PathBuf,
        #[command(flatten)]
        server: PublicServer,
        /// Print the balance as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw tokens from your reward notes to any account, with a note-transfer
    /// proof (notes are merged first when no two cover the amount). The ledger shows a
    /// withdrawal to that account, tied to no enrollment.
    Withdraw {
        /// The wallet folder.
        #[arg(long)]
        wallet: PathBuf,
        #[command(flatten)]
        server: PublicServer,
        /// The recipient's account (hex public key); `wallet` for this wallet's own.
        #[arg(long)]
        to: String,
        /// Tokens to withdraw.
        #[arg(long)]
        amount: u64,
        /// A folder with the marketplace's note-transfer proving key. Default: the key
        /// the marketplace serves, downloaded once into the wallet and checked.
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Print the transfers as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Transfer tokens from the wallet's own account (signed with its key).
    Transfer {
        /// The wallet folder.
        #[arg(long)]
        wallet: PathBuf,
        #[command(flatten)]
        server: PublicServer,
        /// The recipient's account (hex public key).
        #[arg(long)]
        to: String,
        /// Tokens to send.
        #[arg(long)]
        amount: u64,
        /// Print the marketplace's answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ResearcherCommand {
    /// Post a study from a query file (and fund it).
    Post {
        #[command(flatten)]
        server: Server,
        /// The query file (text form, or JSON).
        #[arg(long)]
        query: PathBuf,
        /// A short title.
        #[arg(long)]
        title: String,
        /// What the study is about.
        #[arg(long, default_value = "")]
        description: String,
        /// Tokens per enrollment.
        #[arg(long)]
        reward: u64,
        /// The most enrollments.
        #[arg(long)]
        max_enrollments: u64,
        /// The privacy budget (epsilon) for released counts.
        #[arg(long)]
        epsilon: f64,
        /// Tokens to move into the escrow now (default: reward x max enrollments; 0 to
        /// post without funding).
        #[arg(long)]
        fund: Option<u64>,
        /// The researcher's account key file (`zkcohort account new`), which signs the
        /// funding; needed unless `--fund 0`.
        #[arg(long, env = "ZKCOHORT_ACCOUNT_KEY")]
        account_key: Option<PathBuf>,
        /// An issuer account (hex) whose records the study accepts; repeat for more.
        /// Without it the study accepts every issuer the marketplace has now.
        #[arg(long = "issuer")]
        issuers: Vec<String>,
        /// Print the posted study and the funding as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move tokens into a study's escrow.
    Fund {
        #[command(flatten)]
        server: Server,
        /// The study id.
        #[arg(long)]
        study: u64,
        /// Tokens to move.
        #[arg(long)]
        amount: u64,
        /// The researcher's account key file (`zkcohort account new`): it signs the order.
        #[arg(long, env = "ZKCOHORT_ACCOUNT_KEY")]
        account_key: PathBuf,
        /// Print the marketplace's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a study: enrollment, escrow, query hash.
    Show {
        #[command(flatten)]
        server: PublicServer,
        /// The study id.
        #[arg(long)]
        study: u64,
        /// Print the study as the marketplace answers it (JSON).
        #[arg(long)]
        json: bool,
    },
    /// List the studies of your account, newest last.
    List {
        #[command(flatten)]
        server: PublicServer,
        /// Your account key file (`zkcohort account new`).
        #[arg(long, env = "ZKCOHORT_ACCOUNT_KEY")]
        account_key: PathBuf,
        /// Print one JSON study per line.
        #[arg(long)]
        json: bool,
    },
    /// Release the study's enrollment count with differential-privacy noise
    /// (charged to its epsilon budget; the same question again costs nothing).
    Release {
        #[command(flatten)]
        server: Server,
        /// The study id.
        #[arg(long)]
        study: u64,
        /// Count the settled enrollments per value of this measure (its name in the
        /// study's query, such as `age` or `sex`, or its position from 1).
        #[arg(long, group = "statistic", value_name = "MEASURE")]
        histogram: Option<String>,
        /// With --histogram: a two-way table, its rows by the histogram's measure and
        /// its columns by this one.
        #[arg(long, requires = "histogram", value_name = "MEASURE")]
        by: Option<String>,
        /// The noisy sum and mean of a bounded-sum measure (`measure lab X latest sum
        /// between L and H`).
        #[arg(long, group = "statistic", value_name = "MEASURE")]
        sum: Option<String>,
        /// The epsilon to spend, charged to the study and to your researcher budget.
        #[arg(long)]
        epsilon: f64,
        /// Discrete Gaussian noise ((epsilon, delta)-DP, delta 1e-9 charged too)
        /// instead of discrete Laplace.
        #[arg(long)]
        gaussian: bool,
        /// Show counts as i2b2 does: "<10" below 10, otherwise rounded to 5 (free).
        #[arg(long)]
        i2b2: bool,
        /// Also write the histogram or table as an SVG bar chart to this file.
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Close a study; the escrow remainder is refunded.
    Close {
        #[command(flatten)]
        server: Server,
        /// The study id.
        #[arg(long)]
        study: u64,
        /// Print the marketplace's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A study's cohort as FHIR R4: a collection Bundle of a ResearchStudy (id
    /// `study-ID`, the study's title) and its definitional Group; what a Group cannot say
    /// is listed on stderr (`zkcohort query to-fhir` does the same for a query file).
    ExportFhir {
        #[command(flatten)]
        server: PublicServer,
        /// The study id.
        #[arg(long)]
        study: u64,
        /// Write the Bundle to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print one JSON object on stdout: `bundle` and `not_exported` (the report).
        #[arg(long)]
        json: bool,
    },
    /// Export the study bundle a sponsor checks with `zkcohort-verify`.
    Bundle {
        #[command(flatten)]
        server: Server,
        /// The study id.
        #[arg(long)]
        study: u64,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

pub(crate) fn issuer(command: IssuerCommand) -> Result<ExitCode> {
    match command {
        IssuerCommand::Issue {
            server,
            bundle,
            identity,
            issued_at,
            out,
            json,
        } => {
            let client = server.client()?;
            let market = RemoteMarketplace::fetch(&client)?;
            let identity = IdentityCommitment(fr_from_hex(&identity).context(
                "--identity: expected the commitment `patient init` printed (64 hex digits)",
            )?);
            let text = std::fs::read_to_string(&bundle)
                .with_context(|| format!("reading {}", bundle.display()))?;
            let issuance = Issuance::from_bundle(
                &text,
                identity,
                issue_day(issued_at)?,
                market.info.slot_depth,
            )
            .with_context(|| format!("importing {}", bundle.display()))?;
            // Counted per FHIR entry, as `summarize` counts them (a blood pressure
            // observation is one entry, though it fills two slots).
            let coverage = issuance.report.total_coverage();
            let (mapped, skipped) = (coverage.mapped, coverage.total - coverage.mapped);
            if !json {
                println!(
                    "imported {}: {}",
                    bundle.display(),
                    crate::records::coverage_line(&issuance.report)
                );
            }
            let pending = [PendingRecord {
                source: zkcohort::sample::file_name(&bundle),
                identity,
                issuance,
            }];
            let files = issuer::register(&client, &pending)?;
            write_json(&out, &files[0])?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "record_file": out, "leaf_index": files[0].leaf_index,
                        "entries_mapped": mapped, "entries_skipped": skipped,
                    })
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "registered leaf {}; give {} to the patient (it holds no secret)",
                files[0].leaf_index,
                out.display()
            );
        }
        IssuerCommand::Revoke {
            server,
            index,
            json,
        } => {
            let root = issuer::revoke(&server.client()?, index)?;
            if json {
                println!("{}", serde_json::to_string(&root)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "revoked leaf {index}; registry root {} is now current",
                root.seq
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn patient(command: PatientCommand) -> Result<ExitCode> {
    match command {
        PatientCommand::Init { wallet, json } => {
            let created = Wallet::create(&wallet)?;
            if !json {
                println!("wallet created in {}", wallet.display());
            }
            print_identity(&created, json);
        }
        PatientCommand::Whoami { wallet, json } => print_identity(&Wallet::open(&wallet)?, json),
        PatientCommand::Import { wallet, file, json } => {
            let record: IssuedRecordFile = read_json(&file)?;
            let held = Wallet::open(&wallet)?.import_record(record)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "source": held.file.source, "issuer": held.file.issuer,
                        "issued_at": held.file.issued_at, "leaf_index": held.file.leaf_index,
                    })
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "imported the record from {} (issuer {}, issued {}, leaf {})",
                held.file.source, held.file.issuer, held.file.issued_at, held.file.leaf_index
            );
        }
        PatientCommand::Sync { wallet, server } => {
            let client = server.client()?;
            let wallet = Wallet::open(&wallet)?;
            let market = RemoteMarketplace::fetch(&client)?;
            let registry = patient::sync_registry(&client, &wallet, &market, true)?;
            println!("registry synced: {} leaves, root checked", registry.len());
        }
        PatientCommand::Studies {
            wallet,
            server,
            json,
        } => {
            let client = server.client()?;
            let wallet = Wallet::open(&wallet)?;
            let market = RemoteMarketplace::fetch(&client)?;
            let previews = patient::preview_studies(&client, &wallet, &market)?;
            if previews.is_empty() && !json {
                println!("no open studies on {}", client.base());
            }
            for preview in previews {
                let failed: Vec<String> = preview
                    .verdicts
                    .iter()
                    .flat_map(|verdict| verdict.failed.iter().map(|failed| failed.text.clone()))
                    .collect();
                let study = &preview.study;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "study": study.id, "title": study.title, "reward": study.reward,
                            "eligible": preview.record.is_some(), "enrolled": preview.enrolled,
                            "revoked": preview.revoked,
                            "failed": failed,
                        })
                    );
                } else {
                    let verdict = match (preview.enrolled, preview.record.is_some()) {
                        (true, _) => "enrolled".to_string(),
                        (false, false) if preview.revoked => {
                            "not eligible: the issuer revoked the record that matches".to_string()
                        }
                        (false, true) if study.escrow < study.reward => {
                            "eligible, but its escrow cannot pay a reward now".to_string()
                        }
                        (false, true) => "ELIGIBLE".to_string(),
                        (false, false) => format!("not eligible: {}", failed.join("; ")),
                    };
                    println!(
                        "{:>4}  {:<50} reward {:>5}  {verdict}",
                        study.id, study.title, study.reward
                    );
                }
            }
        }
        PatientCommand::Enroll {
            wallet,
            server,
            study,
            keys,
            json,
        } => enroll(&wallet, &server, study, keys.as_deref(), json)?,
        PatientCommand::Balance {
            wallet,
            server,
            json,
        } => {
            let client = server.client()?;
            let wallet = Wallet::open(&wallet)?;
            let market = RemoteMarketplace::fetch(&client)?;
            let enrollments = patient::check_enrollments(&client, &wallet, &market)?;
            let sync = patient::sync_notes(&client, &wallet, &market)?;
            let held = sync.spendable().count();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "balance": sync.balance(), "notes": held, "pending": sync.pending(),
                        "pending_studies": enrollments.pending,
                        "voided": enrollments.voided.iter().map(|(study, reason)| {
                            serde_json::json!({"study": study, "reason": reason})
                        }).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!(
                    "{} tokens in {held} note{}{}",
                    sync.balance(),
                    if held == 1 { "" } else { "s" },
                    match sync.pending() {
                        0 => String::new(),
                        pending => format!(
                            " ({pending} recorded notes are not in the note tree: refused or not yet settled)"
                        ),
                    }
                );
                for study in &enrollments.pending {
                    println!(
                        "study {study}: enrollment pending until the study's batch settles \
                         (the first once {} have enrolled)",
                        market.info.min_cohort
                    );
                }
                for (study, reason) in &enrollments.voided {
                    println!("study {study}: enrollment voided, no reward: {reason}");
                }
            }
        }
        PatientCommand::Withdraw {
            wallet,
            server,
            to,
            amount,
            keys,
            json,
        } => withdraw(&wallet, &server, &to, amount, keys.as_deref(), json)?,
        PatientCommand::Transfer {
            wallet,
            server,
            to,
            amount,
            json,
        } => {
            let mut recipient = [0u8; 32];
            hex::decode_to_slice(&to, &mut recipient)
                .context("--to: expected a 64-hex-digit account key")?;
            let wallet = Wallet::open(&wallet)?;
            let entry = patient::transfer(&server.client()?, &wallet, recipient, amount)?;
            if json {
                println!("{}", serde_json::to_string(&entry)?);
            } else {
                println!("sent {} tokens (ledger entry {})", entry.amount, entry.seq);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn enroll(
    wallet_dir: &Path,
    server: &PublicServer,
    study: u64,
    keys: Option<&Path>,
    json: bool,
) -> Result<()> {
    let client = server.client()?;
    let wallet = Wallet::open(wallet_dir)?;
    let market = RemoteMarketplace::fetch(&client)?;
    let keys = circuit_keys(&client, &market.eligibility_circuit(), keys, wallet_dir)?;
    let registry = patient::sync_registry(&client, &wallet, &market, true)?;
    let preview = patient::preview_studies(&client, &wallet, &market)?
        .into_iter()
        .find(|preview| preview.study.id == study)
        .with_context(|| format!("study {study} is not open"))?;
    if preview.enrolled {
        anyhow::bail!(
            "this wallet already enrolled in study {study}: a study pays each patient once"
        );
    }
    let request = patient::enrollment_request(&wallet, &registry, &market, &preview)?;
    eprintln!("proving eligibility for study {study} ...");
    let proof = keys.prove(&request)?;
    let disclosed = patient::disclosed_measures(&request.query, &proof.measure_opening);
    if !disclosed.is_empty() {
        eprintln!(
            "the marketplace learns, for its noisy aggregates only: {}",
            disclosed.join(", ")
        );
    }
    let status = patient::submit_enrollment(
        &client,
        &wallet,
        &market,
        &preview.study,
        &proof,
        request.reward_receiver,
    )?;
    if json {
        println!("{}", serde_json::to_string(&status)?);
        return Ok(());
    }
    let nullifier = fr_to_hex(&proof.statement.nullifier.0);
    match status {
        EnrollmentStatus::Settled(enrollment) => println!(
            "enrolled in study {study}: {} tokens paid into note {} of the note tree; nullifier {nullifier}",
            enrollment.reward, enrollment.note_index,
        ),
        EnrollmentStatus::Pending { min_cohort } => println!(
            "enrolled in study {study}, pending: nothing about it is public until the study's \
             batch settles (the first once {min_cohort} have enrolled); then {} tokens go into a \
             reward note `patient balance` finds. Nullifier {nullifier}",
            preview.study.reward
        ),
        EnrollmentStatus::Voided { reason } => println!("study {study} voided the enrollment: {reason}"),
    }
    Ok(())
}

/// The proving keys of `circuit`: from the folder `keys` when given (checked as a
/// download is), else the marketplace's, downloaded once into the wallet.
fn circuit_keys<S: KeyedCircuit>(
    client: &MarketClient,
    circuit: &AnnouncedCircuit<S>,
    keys: Option<&Path>,
    wallet_dir: &Path,
) -> Result<CircuitKeys<S>> {
    match keys {
        Some(folder) => CircuitKeys::load_checked(folder, circuit.shape, circuit.circuit_id)
            .with_context(|| {
                format!(
                    "loading the {} proving key from {} (or leave out --keys to download it)",
                    circuit.name,
                    folder.display()
                )
            }),
        None => zkcohort::keys::marketplace_keys(client, circuit, wallet_dir, true),
    }
}

fn withdraw(
    wallet_dir: &Path,
    server: &PublicServer,
    to: &str,
    amount: u64,
    keys: Option<&Path>,
    json: bool,
) -> Result<()> {
    let client = server.client()?;
    let wallet = Wallet::open(wallet_dir)?;
    let recipient = if to == "wallet" {
        wallet.payout_account()
    } else {
        let mut recipient = [0u8; 32];
        hex::decode_to_slice(to, &mut recipient)
            .context("--to: expected a 64-hex-digit account key, or `wallet`")?;
        recipient
    };
    let market = RemoteMarketplace::fetch(&client)?;
    let keys = circuit_keys(&client, &market.note_circuit(), keys, wallet_dir)?;
    let steps = patient::withdraw(
        &client,
        &wallet,
        &market,
        &keys,
        recipient,
        amount,
        |line| eprintln!("{line}"),
    )?;
    for step in &steps {
        if json {
            println!("{}", serde_json::to_string(&step.transfer)?);
        } else if step.withdrawn == 0 {
            println!(
                "merged notes of {} and {} into one of {}",
                step.spent[0], step.spent[1], step.change
            );
        } else {
            println!(
                "withdrew {} to {}; change {} kept in a new note",
                step.withdrawn,
                hex::encode(recipient),
                step.change
            );
        }
    }
    Ok(())
}

pub(crate) fn researcher(command: ResearcherCommand) -> Result<ExitCode> {
    match command {
        ResearcherCommand::Post {
            server,
            query,
            title,
            description,
            reward,
            max_enrollments,
            epsilon,
            issuers,
            fund,
            account_key,
            json,
        } => {
            let client = server.client()?;
            let amount = fund.unwrap_or(reward.saturating_mul(max_enrollments));
            let key = match (&account_key, amount) {
                (_, 0) => None,
                (Some(path), _) => Some(zkcohort::account::load(path)?),
                (None, _) => anyhow::bail!(
                    "funding the escrow needs the researcher's account key: pass --account-key FILE, or --fund 0 to post without funding"
                ),
            };
            let post = StudyPost {
                title,
                description,
                query: std::fs::read_to_string(&query)
                    .with_context(|| format!("reading {}", query.display()))?,
                reward,
                max_enrollments,
                epsilon_budget: epsilon,
                issuers,
            };
            if let Some(key) = &key {
                // All or nothing as far as the balance goes: no study left behind empty
                // because the account could not fund it.
                let balance = client.account(&key.verifying_key().to_bytes())?.balance;
                anyhow::ensure!(
                    balance >= amount,
                    "the account holds {balance} tokens, less than the {amount} this study's \
                     escrow needs (reward x maximum enrollments); nothing was posted. Ask the \
                     operator for tokens, or pass --fund N"
                );
            }
            let study = researcher::post_study(&client, &post)?;
            let mut funding = None;
            if let Some(key) = key {
                funding = Some(
                    researcher::fund(&client, &key, study.id, amount).with_context(|| {
                        format!(
                        "study {} is posted but its escrow is empty, so no one can enroll yet; \
                         fund it with `zkcohort researcher fund --study {} --amount N`",
                        study.id, study.id
                    )
                    })?,
                );
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"study": study, "funding": funding})
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "study {} posted, query hash {}, escrow {amount}",
                study.id,
                hex::encode(study.query_hash)
            );
        }
        ResearcherCommand::Fund {
            server,
            study,
            amount,
            account_key,
            json,
        } => {
            let key = zkcohort::account::load(&account_key)?;
            let entry = researcher::fund(&server.client()?, &key, study, amount)?;
            if json {
                println!("{}", serde_json::to_string(&entry)?);
            } else {
                println!("moved {} tokens into study {study}'s escrow", entry.amount);
            }
        }
        ResearcherCommand::Show {
            server,
            study,
            json,
        } => {
            let study = server.client()?.study(study)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&study)?);
            } else {
                print_study(&study)?;
            }
        }
        ResearcherCommand::List {
            server,
            account_key,
            json,
        } => {
            let account = zkcohort::account::load(&account_key)?
                .verifying_key()
                .to_bytes();
            let mine: Vec<_> = patient::all_studies(&server.client()?)?
                .into_iter()
                .filter(|study| study.researcher == account)
                .collect();
            if mine.is_empty() && !json {
                println!("account {} has posted no study", hex::encode(account));
            }
            for study in &mine {
                if json {
                    println!("{}", serde_json::to_string(study)?);
                } else {
                    println!(
                        "{:>4}  {:<40} {:<6}  {} of {} enrolled, escrow {}",
                        study.id,
                        study.title,
                        status_name(study.status),
                        study.public_count(),
                        study.max_enrollments,
                        study.escrow
                    );
                }
            }
        }
        ResearcherCommand::Release {
            server,
            study,
            histogram,
            by,
            sum,
            epsilon,
            gaussian,
            i2b2,
            plot,
            json,
        } => {
            let statistic = match (histogram, by, sum) {
                (Some(rows), Some(columns), None) => Statistic::Table(rows, columns),
                (Some(measure), None, None) => Statistic::Histogram(measure),
                (None, None, Some(measure)) => Statistic::Sum(measure),
                _ => anyhow::bail!(
                    "say what to release: --histogram MEASURE [--by MEASURE] or --sum MEASURE"
                ),
            };
            let mechanism = if gaussian {
                Mechanism::DiscreteGaussian
            } else {
                Mechanism::DiscreteLaplace
            };
            let post_process = if i2b2 {
                PostProcess::I2b2
            } else {
                PostProcess::None
            };
            let answer = researcher::release(
                &server.client()?,
                study,
                statistic,
                epsilon,
                mechanism,
                post_process,
            )?;
            if let Some(path) = &plot {
                zkcohort::plot::plot_release(&answer, path)?;
            }
            if json {
                println!("{}", serde_json::to_string(&answer)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("{}", researcher::render_release(&answer));
            if let Some(path) = &plot {
                println!("chart written to {}", path.display());
            }
        }
        ResearcherCommand::Close {
            server,
            study,
            json,
        } => {
            let closed = researcher::close(&server.client()?, study)?;
            if json {
                println!("{}", serde_json::to_string(&closed)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "study {study} closed; enrollments public: {}; {} tokens refunded",
                closed.study.public_count(),
                closed.refunded()
            );
        }
        ResearcherCommand::ExportFhir {
            server,
            study,
            out,
            json,
        } => {
            let study = server.client()?.study(study)?;
            let fhir = crate::interop::export_fhir(
                &study.query,
                &format!("study-{}", study.id),
                &study.title,
            )?;
            return crate::interop::print_fhir(&fhir, out.as_deref(), json);
        }
        ResearcherCommand::Bundle { server, study, out } => {
            let client = server.client()?;
            researcher::export_bundle(&client, study, &out)?;
            let key = client.marketplace()?.marketplace_key;
            println!(
                "wrote {}; a sponsor checks it with `zkcohort-verify {} --marketplace-key {key}`, \
                 having got that key from the marketplace by a channel of their own \
                 (`cargo install --path verifier` in a zkcohort checkout installs zkcohort-verify)",
                out.display(),
                out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status_name(status: StudyStatus) -> &'static str {
    match status {
        StudyStatus::Open => "open",
        StudyStatus::Closed => "closed",
    }
}

/// A study for people: what it pays, how full it is, what it asks.
fn print_study(study: &Study) -> Result<()> {
    let posted = chrono::DateTime::from_timestamp_millis(study.created_ms as i64).map_or_else(
        || study.created_ms.to_string(),
        |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    println!(
        "study {}: {} ({})",
        study.id,
        study.title,
        status_name(study.status)
    );
    if !study.description.is_empty() {
        println!("  {}", study.description);
    }
    println!("  researcher    {}", hex::encode(study.researcher));
    println!("  posted        {posted}");
    println!(
        "  enrolled      {} of {}, reward {} each, escrow {}",
        study.enrolled, study.max_enrollments, study.reward, study.escrow
    );
    println!("  epsilon       {}", study.epsilon_budget);
    println!(
        "  issuers       {}",
        study
            .issuers
            .iter()
            .map(hex::encode)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  query hash    {}", hex::encode(study.query_hash));
    println!("  query         {}", serde_json::to_string(&study.query)?);
    Ok(())
}

fn print_identity(wallet: &Wallet, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "identity_commitment": fr_to_hex(&wallet.identity_commitment().0),
                "account": hex::encode(wallet.payout_account()),
            })
        );
        return;
    }
    println!(
        "identity commitment (give it to your issuer): {}",
        fr_to_hex(&wallet.identity_commitment().0)
    );
    println!(
        "wallet account (withdraw to it with --to wallet): {}",
        hex::encode(wallet.payout_account())
    );
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid", path.display()))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))
}
