//! The record commands: catalog listing, FHIR summaries and query checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use zkcohort_cohort::eval::describe_slot;
use zkcohort_cohort::fhir::ImportReport;
use zkcohort_cohort::{eligible, import_bundle, Catalog, CompiledQuery, Day, Query, RecordSummary};

use crate::proving::ShapeName;

/// The issue date to stamp on summaries: the given day, or today.
pub(crate) fn issue_day(given: Option<Day>) -> Result<Day> {
    match given {
        Some(day) => Ok(day),
        None => Day::from_date(chrono::Local::now().date_naive()).context("today's date"),
    }
}

/// Expands folders to the `*.json` files inside them, sorted, and keeps files as given.
pub(crate) fn bundle_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let found = zkcohort::sample::bundles_in(input)?;
            paths.extend(found);
        } else if input.exists() {
            paths.push(input.clone());
        } else {
            bail!("{} does not exist", input.display());
        }
    }
    Ok(paths)
}

fn load_bundle(
    catalog: &Catalog,
    path: &Path,
    issued_at: Day,
) -> Result<(RecordSummary, ImportReport)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    import_bundle(catalog, &text, issued_at)
        .with_context(|| format!("importing {}", path.display()))
}

pub(crate) fn load_query(catalog: &Catalog, path: &Path) -> Result<Query> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading query {}", path.display()))?;
    Query::parse_any(&text, catalog).with_context(|| format!("in query {}", path.display()))
}

pub(crate) fn catalog(json: bool, kind: Option<&str>) -> Result<ExitCode> {
    let catalog = Catalog::bundled();
    let concepts: Vec<_> = catalog
        .concepts()
        .iter()
        .enumerate()
        .filter(|(_, concept)| kind.is_none_or(|kind| concept.kind.word() == kind))
        .collect();
    if concepts.is_empty() {
        let kinds: Vec<_> = catalog.kind_counts().into_keys().collect();
        bail!(
            "no concepts of kind {:?}: kinds are {}",
            kind.unwrap_or_default(),
            kinds.join(", ")
        );
    }
    if json {
        let listed: Vec<_> = concepts.iter().map(|(_, concept)| concept).collect();
        let value = serde_json::json!({"version": catalog.version(), "concepts": listed});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "catalog {}: {} concepts ({})",
        catalog.version(),
        catalog.concepts().len(),
        catalog.sources()
    );
    for (slot, concept) in concepts {
        let mut details = concept
            .codes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(lab) = concept.lab() {
            // The grid a value is kept on: 10^-scale of the unit.
            let step = match lab.scale {
                0 => "1".to_string(),
                scale => format!("0.{}1", "0".repeat(scale as usize - 1)),
            };
            details = format!("[{}, in steps of {step}] {details}", lab.unit);
        }
        if !concept.answers.is_empty() {
            let answers: Vec<_> = concept
                .answers
                .iter()
                .map(|answer| answer.name.as_str())
                .collect();
            details = format!("answers: {} {details}", answers.join("|"));
        }
        println!(
            "{slot:>4}  {:<28} {:<11} {}\n      {details}",
            concept.id,
            concept.kind.word(),
            concept.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn summarize(
    inputs: &[PathBuf],
    json: bool,
    issued_at: Day,
    verbose: bool,
) -> Result<ExitCode> {
    let catalog = Catalog::bundled();
    let mut failures = 0;
    let paths = bundle_paths(inputs)?;
    let mut totals: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for path in &paths {
        let (summary, report) = match load_bundle(catalog, path, issued_at) {
            Ok(imported) => imported,
            Err(error) => {
                failures += 1;
                eprintln!("error: {error:#}");
                continue;
            }
        };
        if json {
            let value = serde_json::json!({
                "file": path.display().to_string(),
                "summary": summary.to_json(catalog),
                "report": report,
                "coverage": report.coverage(),
            });
            println!("{}", serde_json::to_string(&value)?);
        } else {
            print_summary(catalog, path, &summary, &report, issued_at, verbose);
        }
        add_coverage(&mut totals, &report);
    }
    if !json && paths.len() > 1 {
        print_coverage(&totals);
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_summary(
    catalog: &Catalog,
    path: &Path,
    summary: &RecordSummary,
    report: &ImportReport,
    issued_at: Day,
    verbose: bool,
) {
    println!("== {}", zkcohort::sample::file_name(path));
    match &report.patient {
        Some(patient) => println!(
            "patient {}: born {}, {}",
            patient.id.as_deref().unwrap_or("(no id)"),
            patient
                .birth_date
                .map_or_else(|| "unknown".to_string(), |day| day.to_string()),
            patient.sex.as_deref().unwrap_or("sex unknown")
        ),
        None => println!("no patient in this bundle"),
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    println!("read: {}", coverage_line(report));
    let not_read: Vec<String> = report
        .not_read
        .iter()
        .map(|(resource, count)| format!("{resource} {count}"))
        .collect();
    if !not_read.is_empty() {
        println!("not read: {}", not_read.join(", "));
    }
    println!("slots:");
    for (index, slot) in summary.slots().iter().enumerate() {
        if !slot.is_empty() {
            let concept = catalog.concept(index);
            println!(
                "  {:<24} {}",
                concept.id,
                describe_slot(concept, slot, issued_at)
            );
        }
    }
    if report.skipped.is_empty() {
        return;
    }
    if verbose {
        println!("skipped:");
        for skipped in &report.skipped {
            println!(
                "  entry[{}] {} {} {}: {}",
                skipped.entry,
                skipped.resource,
                skipped.code.as_deref().unwrap_or("(no known code)"),
                skipped.display.as_deref().unwrap_or(""),
                skipped.reason
            );
        }
    } else {
        let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
        for skipped in &report.skipped {
            *by_reason.entry(skipped.reason.as_str()).or_insert(0) += 1;
        }
        println!(
            "skipped ({} entries; --verbose lists them):",
            report.skipped.len()
        );
        for (reason, count) in by_reason {
            println!("  {count:>4} × {reason}");
        }
    }
}

/// How many entries of each resource type filled a slot, as `summarize` and `issuer
/// issue` both print it: `Condition 10/10 mapped, Procedure 0/3 mapped`.
pub(crate) fn coverage_line(report: &ImportReport) -> String {
    let coverage: Vec<String> = report
        .coverage()
        .iter()
        .map(|(resource, coverage)| {
            format!("{resource} {}/{} mapped", coverage.mapped, coverage.total)
        })
        .collect();
    if coverage.is_empty() {
        "nothing".to_string()
    } else {
        coverage.join(", ")
    }
}

pub(crate) fn check(
    query_path: &Path,
    inputs: &[PathBuf],
    json: bool,
    issued_at: Day,
) -> Result<ExitCode> {
    let catalog = Catalog::bundled();
    let query = load_query(catalog, query_path)?;
    // On stderr, so the per-bundle lines (and --json) stay as they were.
    eprintln!("{}", shape_fit(&query.compile(catalog)?));
    let mut failures = 0;
    for path in bundle_paths(inputs)? {
        let name = path.display().to_string();
        let verdict = load_bundle(catalog, &path, issued_at).and_then(|(summary, _)| {
            eligible(catalog, &summary, &query).map_err(anyhow::Error::from)
        });
        match (verdict, json) {
            (Ok(verdict), true) => {
                let failed: Vec<_> = verdict
                    .failed
                    .iter()
                    .map(|failed| serde_json::json!({"criterion": failed.text, "reasons": failed.reasons}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"file": name, "eligible": verdict.eligible, "failed": failed})
                );
            }
            (Ok(verdict), false) if verdict.eligible => println!("{name}: eligible"),
            (Ok(verdict), false) => {
                let failed: Vec<String> = verdict
                    .failed
                    .iter()
                    .map(|failed| format!("{} ({})", failed.text, failed.reasons.join("; ")))
                    .collect();
                println!("{name}: not eligible: {}", failed.join(" | "));
            }
            (Err(error), true) => {
                failures += 1;
                println!(
                    "{}",
                    serde_json::json!({"file": name, "error": format!("{error:#}")})
                );
            }
            (Err(error), false) => {
                failures += 1;
                println!("{name}: error: {error:#}");
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How many clauses a query compiles to and which circuit shapes take it.
pub(crate) fn shape_fit(compiled: &CompiledQuery) -> String {
    let fits: Vec<String> = ShapeName::value_variants()
        .iter()
        .filter_map(|name| {
            let shape = name.shape();
            let slots_fit = compiled
                .clauses
                .iter()
                .all(|clause| clause.slot < 1 << shape.slot_depth);
            (compiled.clauses.len() <= shape.clauses && slots_fit).then(|| {
                let name = name.to_possible_value().expect("no variant is skipped");
                format!("{} ({} clauses)", name.get_name(), shape.clauses)
            })
        })
        .collect();
    let fits = if fits.is_empty() {
        "fits no circuit shape: split it or drop criteria".to_string()
    } else {
        format!("fits {}", fits.join(", "))
    };
    format!("query: {} clauses; {fits}", compiled.clauses.len())
}

fn add_coverage(totals: &mut BTreeMap<String, (usize, usize)>, report: &ImportReport) {
    for (resource, coverage) in report.coverage() {
        let total = totals.entry(resource).or_default();
        total.0 += coverage.mapped;
        total.1 += coverage.total;
    }
}

fn print_coverage(totals: &BTreeMap<String, (usize, usize)>) {
    for (resource, (mapped, total)) in totals {
        let share = if *total == 0 {
            0.0
        } else {
            100.0 * *mapped as f64 / *total as f64
        };
        println!(
            "{resource}: {mapped} of {total} entries mapped to catalog concepts ({share:.1}%)"
        );
    }
}
