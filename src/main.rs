//! `zkcohort`: the command line of the zkcohort marketplace. Thin: it parses
//! arguments, calls the libraries and prints.

mod records;

use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Check a cohort query against bundles: one line per bundle.
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
    /// The main job: summarize the bundled sample records and check the sample query.
    Demo {
        /// Folder of FHIR bundles to use instead of the bundled samples.
        #[arg(long)]
        bundles: Option<PathBuf>,
        /// Query file to use instead of the sample query.
        #[arg(long)]
        query: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
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
        Command::Demo { bundles, query } => records::demo(bundles, query),
    }
}
