//! The `query` commands: queries from and to the formats researchers already use, OHDSI
//! Circe (ATLAS) cohort definitions in and FHIR R4 ResearchStudy + Group out, around
//! `zkcohort_cohort::query::{circe, export}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use zkcohort_cohort::query::circe::from_circe;
use zkcohort_cohort::query::export::{to_fhir, FhirStudy};
use zkcohort_cohort::{Catalog, Day, Query};

use crate::records::{load_query, shape_fit};

#[derive(Subcommand)]
pub(crate) enum QueryCommand {
    /// Translate an OHDSI Circe (ATLAS) cohort definition into a query
    ///
    /// Prints the query in the text form (or writes it to --out) and lists on stderr
    /// what was left out or only approximated: other domains, end windows, exactly-n
    /// occurrences, nested groups, censoring, codes outside the catalog. ATLAS dates
    /// everything from each patient's entry event; the query dates it from --index-date.
    #[command(verbatim_doc_comment)]
    FromCirce {
        /// The cohort definition (the JSON ATLAS exports).
        circe: PathBuf,
        /// The study's index date (YYYY-MM-DD), standing for each patient's entry event.
        #[arg(long)]
        index_date: Day,
        /// Write the query to this file instead of stdout: the JSON form when the name
        /// ends in `.json`, else the text form.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print one JSON object on stdout: `query` (the JSON form), `text` (the text
        /// form) and `untranslated` (the report).
        #[arg(long)]
        json: bool,
    },
    /// Export a query as FHIR R4: a ResearchStudy and its definitional Group in a Bundle
    ///
    /// Prints a collection Bundle (or writes it to --out): a ResearchStudy whose
    /// enrollment is a definitional Group, one characteristic per clause, and lists on
    /// stderr what a Group cannot say (`any of`, counts, `active`, which result a value
    /// is).
    #[command(verbatim_doc_comment)]
    ToFhir {
        /// The query file (text form, or JSON when it starts with `{`).
        query: PathBuf,
        /// The ResearchStudy's title (and the Group's name).
        #[arg(long)]
        title: String,
        /// The ResearchStudy's id (the Group's is `ID-cohort`): letters, digits, `-`
        /// and `.`, at most 64. Default: the query file's name without its extension.
        #[arg(long)]
        id: Option<String>,
        /// Write the Bundle to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print one JSON object on stdout: `bundle` and `not_exported` (the report).
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: QueryCommand) -> Result<ExitCode> {
    match command {
        QueryCommand::FromCirce {
            circe,
            index_date,
            out,
            json,
        } => import_circe(&circe, index_date, out.as_deref(), json),
        QueryCommand::ToFhir {
            query,
            title,
            id,
            out,
            json,
        } => {
            let catalog = Catalog::bundled();
            let parsed = load_query(catalog, &query)?;
            let id = match id {
                Some(id) => id,
                None => default_fhir_id(&query),
            };
            let study = export_fhir(&parsed, &id, &title)?;
            print_fhir(&study, out.as_deref(), json)
        }
    }
}

fn import_circe(path: &Path, index_date: Day, out: Option<&Path>, json: bool) -> Result<ExitCode> {
    let catalog = Catalog::bundled();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading Circe definition {}", path.display()))?;
    // A syntax error is named by line and column; from_circe names a wrong shape by
    // its JSON path.
    serde_json::from_str::<serde_json::Value>(&text)
        .with_context(|| format!("in Circe definition {}: not JSON", path.display()))?;
    let imported = from_circe(&text, catalog, index_date)
        .with_context(|| format!("in Circe definition {}", path.display()))?;
    let query = imported.query;
    let mut query_text = query.to_string();
    if !query_text.ends_with('\n') {
        query_text.push('\n');
    }
    if let Some(out) = out {
        let written = if out.extension().is_some_and(|extension| extension == "json") {
            serde_json::to_string_pretty(&query)? + "\n"
        } else {
            query_text.clone()
        };
        std::fs::write(out, written).with_context(|| format!("writing {}", out.display()))?;
    }
    if json {
        let value = serde_json::json!({
            "query": query,
            "text": query_text,
            "untranslated": imported.untranslated,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if out.is_none() {
        print!("{query_text}");
    }
    if let Some(out) = out {
        eprintln!("query written to {}", out.display());
    }
    eprintln!("{}", shape_fit(&query.compile(catalog)?));
    if query.criteria.is_empty() {
        eprintln!("warning: no criterion was translated: this query admits every record");
    }
    if !json {
        print_report(
            "not translated or approximated",
            &imported.untranslated,
            "everything was translated",
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A query as FHIR, its study id checked against FHIR's id rule first.
pub(crate) fn export_fhir(query: &Query, id: &str, title: &str) -> Result<FhirStudy> {
    let valid = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !valid {
        bail!("study id {id:?} is not a FHIR id (letters, digits, `-` and `.`, at most 64)");
    }
    Ok(to_fhir(query, Catalog::bundled(), id, title)?)
}

/// The query file's name without its extension, as a FHIR id: other characters become
/// `-`, and it is cut to 64.
fn default_fhir_id(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() {
        "study".to_string()
    } else {
        id
    }
}

/// Prints (or writes) a study's FHIR Bundle, and its report on stderr; with `json`, both
/// as one object on stdout.
pub(crate) fn print_fhir(study: &FhirStudy, out: Option<&Path>, json: bool) -> Result<ExitCode> {
    let bundle = serde_json::to_string_pretty(&study.bundle)? + "\n";
    if let Some(out) = out {
        std::fs::write(out, &bundle).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("FHIR Bundle written to {}", out.display());
    }
    if json {
        let value = serde_json::json!({
            "bundle": study.bundle,
            "not_exported": study.not_exported,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        if out.is_none() {
            print!("{bundle}");
        }
        print_report(
            "not exported",
            &study.not_exported,
            "every criterion is in the Group",
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(heading: &str, notes: &[String], nothing: &str) {
    if notes.is_empty() {
        eprintln!("{nothing}");
        return;
    }
    eprintln!("{heading} ({}):", notes.len());
    for note in notes {
        eprintln!("  - {note}");
    }
}
