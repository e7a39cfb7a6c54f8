//! `zkcohort`: the command line of the zkcohort marketplace. Thin: it parses
//! arguments, calls the libraries and prints.

mod ceremony;
mod compare;
mod interop;
mod operator;
mod proving;
mod records;
mod roles;

use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::filter::LevelFilter;

use anyhow::Result;
use clap::{Parser, Subcommand};
use zkcohort_cohort::Day;

/// zkcohort: privacy-preserving research cohorts from FHIR records.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the concept catalog: every concept a record summary holds, with its codes.
    Catalog {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only concepts of this kind (condition, lab, medication, ...).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Turn FHIR R4 bundles into record summaries and show what was mapped or skipped.
    Summarize {
        /// Bundle files, or folders of `*.json` bundles.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
        /// Print JSON (one object per bundle) instead of text.
        #[arg(long)]
        json: bool,
        /// The summary's issue date (YYYY-MM-DD); today when absent.
        #[arg(long)]
        issued_at: Option<Day>,
        /// List every skipped entry, not only the counts by reason.
        #[arg(long)]
        verbose: bool,
    },
    /// Check a cohort query against bundles: one line per bundle
    ///
    /// A query file is an index date and criteria, one per line; every one must hold:
    ///
    ///     index date 2020-01-01
    ///     require age between 40 and 75
    ///     require condition hypertension
    ///     require any of: lab systolic-bp latest >= 140 within 730 days; medication antihypertensive
    ///     exclude condition ckd
    ///
    /// A clause names a concept by catalog id (`zkcohort catalog` lists them) or by code
    /// (icd10:N18, snomed:44054006, loinc:4548-4, atc:A10B, rxnorm:6809):
    ///     age >= 18 | age between 40 and 75     sex female     smoking current
    ///     condition|medication|procedure|immunization|allergy ID   (at least one entry)
    ///     ... count >= 2     ... active     ... within 730 days     ... first before index
    ///     lab ID latest|min|max >= 6.5 [UNIT]     record issued within 365 days     alive
    /// `not` negates a clause; `require any of: A; B` needs one of them; `exclude` refuses
    /// all of its clauses. The README's "The query language" has the whole table and the
    /// JSON form. The first line on stderr says how many clauses the query takes and
    /// which circuit shapes fit it.
    #[command(verbatim_doc_comment)]
    Check {
        /// The query file (text form, or JSON when it starts with `{`).
        #[arg(long)]
        query: PathBuf,
        /// Bundle files, or folders of `*.json` bundles.
        #[arg(required = true)]
        bundles: Vec<PathBuf>,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// The summaries' issue date (YYYY-MM-DD); today when absent.
        #[arg(long)]
        issued_at: Option<Day>,
    },
    /// Queries from and to the formats researchers already use: OHDSI Circe (ATLAS)
    /// cohort definitions in, FHIR R4 ResearchStudy and Group out.
    #[command(subcommand)]
    Query(interop::QueryCommand),
    /// Create proving keys for a circuit shape and the note-transfer circuit (a
    /// single-party development setup).
    Setup {
        /// The circuit shape.
        #[arg(long, value_enum, default_value = "reference")]
        shape: proving::ShapeName,
        /// Folder for the key files.
        #[arg(long, default_value = "zkcohort-data/keys")]
        keys: PathBuf,
        /// Print JSON (`circuit_id`, `proving_key`, `note_circuit_id`, `note_proving_key`).
        #[arg(long)]
        json: bool,
    },
    /// The multi-party trusted setup: phase 1, phase 2 per circuit, verify, finalize.
    #[command(subcommand)]
    Ceremony(ceremony::CeremonyCommand),
    /// Export the constraint system, proving key and a sample witness for snarkjs/rapidsnark.
    CircomExport {
        /// The circuit shape.
        #[arg(long, value_enum, default_value = "reference")]
        shape: proving::ShapeName,
        /// Folder with the key files.
        #[arg(long, default_value = "zkcohort-data/keys")]
        keys: PathBuf,
        /// Folder for circuit.r1cs, circuit.zkey and witness.wtns.
        #[arg(long, default_value = "zkcohort-data/circom")]
        out: PathBuf,
    },
    /// Prover measurements.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print a shell completion script (`zkcohort completions bash >
    /// ~/.local/share/bash-completion/completions/zkcohort`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// What a marketplace announces: the key a sponsor pins when checking its bundles,
    /// its circuit, where the circuit's keys came from and its root window.
    Marketplace {
        #[command(flatten)]
        server: roles::PublicServer,
        /// Print `GET /marketplace` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the marketplace server over a data folder (keys, store, identity, operator token).
    Serve {
        /// The data folder; what is missing in it is created.
        #[arg(long, default_value = "zkcohort-data")]
        data: PathBuf,
        /// The address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// The circuit shape.
        #[arg(long, value_enum, default_value = "reference")]
        shape: proving::ShapeName,
        /// Serve keys without a ceremony transcript (and make them with a single-party
        /// setup when there are none). Whoever made such keys can forge proofs: for
        /// development only; the marketplace announces it and its bundles say so.
        #[arg(long)]
        dev_unsafe_setup: bool,
        /// How long a replaced registry root stays acceptable for enrollments: the
        /// longest a revocation takes to reach every study, and the time a patient
        /// has between syncing the registry and enrolling.
        #[arg(long, default_value_t = 24)]
        root_window_hours: u64,
        /// The minimum cohort k: a study's enrollments stay pending, with nothing public
        /// about them, until k are pending; a study that closes below k pays and shows
        /// none. 1 turns the protection off.
        #[arg(long, default_value_t = zkcohort_market::DEFAULT_MIN_COHORT,
              value_parser = clap::value_parser!(u64).range(1..))]
        min_cohort: u64,
        /// After a study's first k, its enrollments settle in batches of this many...
        #[arg(long, default_value_t = zkcohort_market::DEFAULT_MIN_COHORT,
              value_parser = clap::value_parser!(u64).range(1..))]
        batch_size: u64,
        /// ... or of whatever is pending once the oldest has waited this long.
        #[arg(long, default_value_t = 24 * 60)]
        batch_age_minutes: u64,
        /// Every public time (audit entries, ledger entries, roots, studies) is rounded
        /// down to a multiple of this many seconds.
        #[arg(long, default_value_t = 24 * 60 * 60,
              value_parser = clap::value_parser!(u64).range(1..))]
        public_time_unit_secs: u64,
        /// The most epsilon one study may spend on releases: a researcher chooses a
        /// study's budget at or below it.
        #[arg(long, default_value = "2")]
        max_study_epsilon: zkcohort_market::dp::Epsilon,
        /// The most epsilon one researcher may spend on releases across all their
        /// studies in any window of `--researcher-window-days`.
        #[arg(long, default_value = "5")]
        max_researcher_epsilon: zkcohort_market::dp::Epsilon,
        /// The researcher's rolling privacy window.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
        researcher_window_days: u64,
        /// Enrollment proofs that arrive together are verified as one batch (one final
        /// exponentiation) of at most this many; a bad proof is still named alone, and
        /// the others pass. 1 turns batching off: each proof is verified on its own.
        #[arg(long, default_value = "64")]
        proof_batch_size: std::num::NonZeroUsize,
        /// ... and the oldest proof of a batch waits at most this long for requests
        /// still on their way (a lone request never waits).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=1000))]
        proof_batch_wait_ms: u64,
        /// Serve https with this certificate chain (PEM, leaf first); use it anywhere
        /// but loopback.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// The operator's calls to a running server.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Account keys: the ed25519 key that signs every order moving an account's tokens
    /// (a researcher funding an escrow); the API key alone moves nothing.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Hospitals: register patients' record commitments, hand over record files, revoke.
    #[command(subcommand)]
    Issuer(roles::IssuerCommand),
    /// Patients: a local wallet that checks eligibility, proves, enrolls and gets paid.
    #[command(subcommand)]
    Patient(roles::PatientCommand),
    /// Researchers: post, fund and close studies, release noisy counts, export bundles.
    #[command(subcommand)]
    Researcher(roles::ResearcherCommand),
    /// The main job: every role end to end against a marketplace in this process.
    ///
    /// On 127.0.0.1: an issuer, three studies, patients' wallets proving in a batch,
    /// rewards, DP counts, a study bundle verified independently.
    Demo {
        /// The demo's folder (marketplace store, wallets, bundle); cleared at the
        /// start of each run.
        #[arg(long, default_value = "zkcohort-data/demo")]
        data: PathBuf,
        /// The folder of circuit keys and their transcript, made by a three-party
        /// ceremony on the first run and reused.
        #[arg(long, default_value = "zkcohort-data/keys")]
        keys: PathBuf,
        /// FHIR bundle files or folders (default: the 22 bundled Synthea patients).
        bundles: Vec<PathBuf>,
        /// The circuit shape.
        #[arg(long, value_enum, default_value = "reference")]
        shape: proving::ShapeName,
        /// Print the report as JSON (and no progress).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account key file (mode 0600, never overwritten) and print its account,
    /// the public key the operator binds an API key to.
    New {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the account of a key file.
    Show {
        /// The key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Draw an API key for this account and write the request that binds it, signed
    /// by the account key, for the operator (`zkcohort operator create-key
    /// --request`). Prints the API key: keep it, the marketplace never sees it.
    RequestKey {
        /// The server's base URL (its marketplace key is signed into the request).
        #[arg(long, env = "ZKCOHORT_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The account key file.
        #[arg(long, env = "ZKCOHORT_ACCOUNT_KEY")]
        key: PathBuf,
        /// What the key may do.
        #[arg(long, value_enum)]
        role: operator::RoleName,
        /// Where to write the request (JSON, nothing secret in it).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Bind a researcher's or an issuer's API key on its holder's signed request
    /// (`zkcohort account request-key`); the key itself is the holder's alone.
    CreateKey {
        /// The server's base URL.
        #[arg(long, env = "ZKCOHORT_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The file with the operator token.
        #[arg(long, default_value = "zkcohort-data/operator.token")]
        token_file: PathBuf,
        /// The holder's request file.
        #[arg(long)]
        request: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Suspend an issuer: its records are revoked in one new root (they stop enrolling
    /// in every study once the root window has passed), the marketplace takes no more
    /// from it, and studies posted from now on do not accept it (audited).
    SuspendIssuer {
        /// The server's base URL.
        #[arg(long, env = "ZKCOHORT_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The file with the operator token.
        #[arg(long, default_value = "zkcohort-data/operator.token")]
        token_file: PathBuf,
        /// The issuer's account: an ed25519 public key, hex.
        #[arg(long)]
        issuer: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mint tokens to an account.
    Mint {
        /// The server's base URL.
        #[arg(long, env = "ZKCOHORT_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The file with the operator token.
        #[arg(long, default_value = "zkcohort-data/operator.token")]
        token_file: PathBuf,
        /// The recipient: an ed25519 public key, hex.
        #[arg(long)]
        to: String,
        /// How many tokens.
        #[arg(long)]
        amount: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// One proof from this (cold) process: load the key, build the witness, prove, write.
    ColdProof {
        /// The circuit shape.
        #[arg(long, value_enum, default_value = "reference")]
        shape: proving::ShapeName,
        /// Folder with the key files.
        #[arg(long, default_value = "zkcohort-data/keys")]
        keys: PathBuf,
        /// Folder for proof.json, public.json and verification_key.json (snarkjs formats).
        #[arg(long, default_value = "zkcohort-data/proof")]
        out: PathBuf,
    },
    /// Our cold proof against snarkjs (and rapidsnark, given its binary) on the same
    /// exported circuit, key and witness, interleaved run by run, every proof verified;
    /// prints each prover's median wall time and peak memory and our time over theirs.
    Compare(compare::CompareOptions),
    /// Batch proving rate against the single-thread rate.
    Batch {
        /// The circuit shape.
        #[arg(long, value_enum, default_value = "reference")]
        shape: proving::ShapeName,
        /// Folder with the key files.
        #[arg(long, default_value = "zkcohort-data/keys")]
        keys: PathBuf,
        /// Proofs in the batch.
        #[arg(long, default_value_t = 32)]
        count: usize,
    },
}

/// The exit status of a Unix tool killed by SIGPIPE (128 + 13).
const CLOSED_STDOUT_STATUS: i32 = 141;

/// `zkcohort ... | head` closes our stdout early, and Rust's `println!` then panics;
/// this ends the process as a Unix tool killed by SIGPIPE would, quietly, instead of a
/// panic message and a backtrace.
fn end_quietly_when_stdout_closes() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // EPIPE, as std formats it (its text may be localized, the number is not).
        if message.starts_with("failed printing to stdout") && message.ends_with("(os error 32)") {
            std::process::exit(CLOSED_STDOUT_STATUS);
        }
        report(info);
    }));
}

fn main() -> ExitCode {
    end_quietly_when_stdout_closes();
    let cli = Cli::parse();
    // The server's log is its request log; elsewhere (the demo serves in process) only
    // warnings, so a command's own output is not buried under request lines.
    let default_level = match cli.command {
        // A ceremony's steps are its progress.
        Command::Serve { .. } | Command::Ceremony(_) => LevelFilter::INFO,
        _ => LevelFilter::WARN,
    };
    install_log(default_level);
    // The operator authenticates with its token file, everyone else with an API key.
    let operator = matches!(cli.command, Command::Operator(_));
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            let unauthorized = error.chain().any(|cause| {
                matches!(
                    cause.downcast_ref::<zkcohort::client::ClientError>(),
                    Some(zkcohort::client::ClientError::Api { status: 401, .. })
                )
            });
            if unauthorized && !operator {
                eprintln!(
                    "hint: pass your API key with --api-key KEY or ZKCOHORT_API_KEY (draw one with \
                     `zkcohort account request-key`; the operator binds it)"
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// The one `tracing` subscriber: timestamped lines on stderr (the server's request log,
/// its notices), at the level in `ZKCOHORT_LOG` (`error` … `trace`; `default_level` when
/// unset or unreadable). Only zkcohort's own events pass: arkworks instruments every gadget call
/// with a span (target `r1cs`), and recording those would slow a setup or a proof many
/// times over and hold gigabytes.
fn install_log(default_level: LevelFilter) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;

    let level = std::env::var("ZKCOHORT_LOG")
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok())
        .unwrap_or(default_level);
    let ours = Targets::new()
        .with_target("zkcohort", level)
        .with_target("zkcohort_market", level)
        .with_target("zkcohort_prover", level);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(ours),
        )
        .init();
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Catalog { json, kind } => records::catalog(json, kind.as_deref()),
        Command::Summarize {
            bundles,
            json,
            issued_at,
            verbose,
        } => records::summarize(&bundles, json, records::issue_day(issued_at)?, verbose),
        Command::Check {
            query,
            bundles,
            json,
            issued_at,
        } => records::check(&query, &bundles, json, records::issue_day(issued_at)?),
        Command::Query(command) => interop::run(command),
        Command::Demo {
            data,
            keys,
            bundles,
            shape,
            json,
        } => demo(data, keys, bundles, shape, json),
        Command::Setup { shape, keys, json } => {
            proving::setup(shape, &keys, json).map(|()| ExitCode::SUCCESS)
        }
        Command::Marketplace { server, json } => roles::marketplace(&server, json),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "zkcohort",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ceremony(command) => ceremony::run(command),
        Command::CircomExport { shape, keys, out } => {
            proving::export_circom(shape, &keys, &out).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Compare(options)) => {
            compare::compare(&options).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::ColdProof { shape, keys, out }) => {
            proving::cold_proof(shape, &keys, &out).map(|()| ExitCode::SUCCESS)
        }
        Command::Issuer(command) => roles::issuer(command),
        Command::Patient(command) => roles::patient(command),
        Command::Researcher(command) => roles::researcher(command),
        Command::Bench(BenchCommand::Batch { shape, keys, count }) => {
            proving::batch(shape, &keys, count).map(|()| ExitCode::SUCCESS)
        }
        Command::Serve {
            data,
            addr,
            shape,
            dev_unsafe_setup,
            root_window_hours,
            min_cohort,
            batch_size,
            batch_age_minutes,
            public_time_unit_secs,
            max_study_epsilon,
            max_researcher_epsilon,
            researcher_window_days,
            proof_batch_size,
            proof_batch_wait_ms,
            tls_cert,
            tls_key,
        } => {
            let policy = if dev_unsafe_setup {
                zkcohort::keys::SetupPolicy::DevelopmentUnsafe
            } else {
                zkcohort::keys::SetupPolicy::CeremonyOnly
            };
            let rules = zkcohort::serve::Rules {
                root_window_ms: root_window_hours.saturating_mul(60 * 60 * 1000),
                cohort: zkcohort_market::CohortPolicy {
                    min_cohort,
                    batch_size,
                    batch_age_ms: batch_age_minutes.saturating_mul(60 * 1000),
                    time_unit_ms: public_time_unit_secs.saturating_mul(1000),
                },
                privacy: {
                    let defaults = zkcohort_market::PrivacyCaps::default();
                    zkcohort_market::PrivacyCaps {
                        study: zkcohort_market::dp::Spend {
                            epsilon: max_study_epsilon,
                            ..defaults.study
                        },
                        researcher: zkcohort_market::dp::Spend {
                            epsilon: max_researcher_epsilon,
                            ..defaults.researcher
                        },
                        researcher_window_ms: researcher_window_days
                            .saturating_mul(zkcohort_market::DAY_MS),
                    }
                },
                proof_batching: zkcohort_market::http::ProofBatching {
                    max_proofs: proof_batch_size,
                    max_wait: std::time::Duration::from_millis(proof_batch_wait_ms),
                },
            };
            let tls = tls_cert
                .zip(tls_key)
                .map(|(certificate, key)| zkcohort::serve::TlsFiles { certificate, key });
            zkcohort::serve::run(&data, &addr, shape.shape(), policy, rules, tls)
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Operator(OperatorCommand::CreateKey {
            server,
            token_file,
            request,
            json,
        }) => operator::create_key(&server, &token_file, &request, json),
        Command::Account(AccountCommand::New { out }) => {
            let key = zkcohort::account::create(&out)?;
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
            eprintln!(
                "account key written to {}: keep it secret, it signs every order that moves \
                 this account's tokens (a researcher's fundings, transfers)",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Account(AccountCommand::Show { key }) => {
            let key = zkcohort::account::load(&key)?;
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Account(AccountCommand::RequestKey {
            server,
            key,
            role,
            out,
        }) => {
            let client = zkcohort::client::MarketClient::new(server)?;
            let api_key = zkcohort::account::request_api_key(&client, &key, role.into(), &out)?;
            println!("{api_key}");
            eprintln!(
                "request written to {}: give it to the operator (`zkcohort operator create-key \
                 --request`). The API key above works once it is bound; keep it secret, it is \
                 shown only here",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Operator(OperatorCommand::SuspendIssuer {
            server,
            token_file,
            issuer,
            json,
        }) => operator::suspend_issuer(&server, &token_file, &issuer, json),
        Command::Operator(OperatorCommand::Mint {
            server,
            token_file,
            to,
            amount,
            json,
        }) => operator::mint(&server, &token_file, &to, amount, json),
    }
}

fn demo(
    data: PathBuf,
    keys: PathBuf,
    bundles: Vec<PathBuf>,
    shape: proving::ShapeName,
    json: bool,
) -> Result<ExitCode> {
    let bundles = if bundles.is_empty() {
        zkcohort::sample::demo_bundles()?
    } else {
        records::bundle_paths(&bundles)?
    };
    let report = zkcohort::demo::run(&zkcohort::demo::DemoOptions {
        data,
        keys,
        bundles,
        shape: shape.shape(),
        progress: !json,
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        zkcohort::demo::print_report(&report);
    }
    Ok(if report.bundle_verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
