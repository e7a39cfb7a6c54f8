//! `zkcohort query from-circe` (an ATLAS cohort definition in), `query to-fhir` and
//! `researcher export-fhir` (a ResearchStudy and its Group out), through the real binary.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use zkcohort_cohort::{Catalog, Query};

use crate::common::{request_key, run_ok, stderr, stdout, zkcohort, ServerProcess};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The ATLAS definition `tests/fixtures/circe/README.md` describes.
fn circe_fixture() -> PathBuf {
    root().join("tests/fixtures/circe/uncontrolled-hypertension.json")
}

/// What the fixture translates to on 2020-01-01: its primary criterion, age, the
/// measurement, the drug count and the exclusion; the visit rule is left out.
const TRANSLATED: &str = "index date 2020-01-01
require condition hypertension
require age between 40 and 75
require lab systolic-bp max >= 140 within 730 days
require medication beta-blocker count >= 2 first within 73050 days
exclude condition ckd first within 73050 days
";

fn parse(text: &str) -> Query {
    Query::parse(text, Catalog::bundled()).unwrap_or_else(|error| panic!("{error}\n{text}"))
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn an_atlas_definition_prints_a_query_check_reads_and_a_report_of_what_was_left_out() {
    let output = zkcohort(&[
        "query",
        "from-circe",
        path(&circe_fixture()),
        "--index-date",
        "2020-01-01",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert_eq!(parse(&printed), parse(TRANSLATED), "{printed}");
    let report = stderr(&output);
    for expected in [
        "query: 5 clauses; fits small (6 clauses), reference (16 clauses)",
        "not translated or approximated (",
        "inclusion rule 5 (An outpatient visit in the last year), criterion 1: the \
         VisitOccurrence domain is not in the record summary",
        "the end strategy is not translated",
        "the study's index date stands for each patient's entry date",
        "concept set Hypertensive disorder: item Essential (primary) hypertension: icd10:I10 \
         is narrower than hypertension",
    ] {
        assert!(report.contains(expected), "{expected:?} not in\n{report}");
    }

    // `check` takes the written query as it takes a hand-written one.
    let work = tempfile::tempdir().unwrap();
    let written = work.path().join("htn.query");
    let output = zkcohort(&[
        "query",
        "from-circe",
        path(&circe_fixture()),
        "--index-date",
        "2020-01-01",
        "--out",
        path(&written),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "", "the query went to --out");
    assert!(stderr(&output).contains(&format!("query written to {}", written.display())));
    assert_eq!(std::fs::read_to_string(&written).unwrap(), printed);
    let bundle = zkcohort_testkit::fixtures_dir()
        .join("Ali_Harris_eed1d00b-7665-4da3-88b7-c37cfb2ed245.json");
    let output = zkcohort(&["check", "--query", path(&written), path(&bundle)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Ali_Harris") && stderr(&output).contains("query: 5 clauses"),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
}

#[test]
fn from_circe_json_holds_the_query_in_both_forms_and_the_report() {
    let printed = run_ok(&[
        "query",
        "from-circe",
        path(&circe_fixture()),
        "--index-date",
        "2020-01-01",
        "--json",
    ]);
    let value: Value = serde_json::from_str(&printed).unwrap();
    let from_json =
        Query::from_json(&value["query"].to_string(), Catalog::bundled()).expect("the JSON form");
    assert_eq!(from_json, parse(TRANSLATED));
    assert_eq!(parse(value["text"].as_str().unwrap()), parse(TRANSLATED));
    let untranslated: Vec<&str> = value["untranslated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|note| note.as_str().unwrap())
        .collect();
    assert!(
        untranslated
            .iter()
            .any(|note| note.contains("the VisitOccurrence domain is not in the record summary")),
        "{untranslated:#?}"
    );
    // A `.json` --out is the JSON form, which every query command reads.
    let work = tempfile::tempdir().unwrap();
    let written = work.path().join("htn.json");
    run_ok(&[
        "query",
        "from-circe",
        path(&circe_fixture()),
        "--index-date",
        "2020-01-01",
        "--out",
        path(&written),
    ]);
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.starts_with('{'), "{text}");
    assert_eq!(
        Query::parse_any(&text, Catalog::bundled()).unwrap(),
        parse(TRANSLATED)
    );
}

#[test]
fn a_malformed_circe_definition_is_refused_naming_where() {
    let work = tempfile::tempdir().unwrap();
    let wrong_shape = work.path().join("wrong-shape.json");
    std::fs::write(
        &wrong_shape,
        r#"{"ConceptSets": [{"id": 0, "name": "HTN", "expression": {"items": "all"}}]}"#,
    )
    .unwrap();
    let output = zkcohort(&[
        "query",
        "from-circe",
        path(&wrong_shape),
        "--index-date",
        "2020-01-01",
    ]);
    assert!(!output.status.success());
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert!(
        message.contains(&format!("in Circe definition {}", wrong_shape.display()))
            && message.contains("Circe JSON at ConceptSets[0].expression.items")
            && message.contains("expected a sequence"),
        "{message}"
    );

    let not_json = work.path().join("truncated.json");
    std::fs::write(&not_json, "{\"ConceptSets\": [\n  {\"id\": 0,\n").unwrap();
    let output = zkcohort(&[
        "query",
        "from-circe",
        path(&not_json),
        "--index-date",
        "2020-01-01",
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("not JSON") && message.contains("line 3"),
        "{message}"
    );

    let output = zkcohort(&[
        "query",
        "from-circe",
        path(&circe_fixture()),
        "--index-date",
        "2020-13-01",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--index-date"),
        "{}",
        stderr(&output)
    );
}

/// The Group's characteristic whose first coding is the catalog concept `id`.
fn characteristic<'a>(characteristics: &'a [Value], id: &str) -> &'a Value {
    characteristics
        .iter()
        .find(|characteristic| characteristic["code"]["coding"][0]["code"] == id)
        .unwrap_or_else(|| panic!("no {id} in {characteristics:#?}"))
}

/// Checks the Bundle `to-fhir` makes of [`TRANSLATED`], and returns its Group's
/// characteristics.
fn check_bundle(bundle: &Value, id: &str, title: &str) -> Vec<Value> {
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().unwrap();
    let study = &entries[0]["resource"];
    let group = &entries[1]["resource"];
    assert_eq!(study["resourceType"], "ResearchStudy");
    assert_eq!(
        (study["id"].as_str(), study["title"].as_str()),
        (Some(id), Some(title))
    );
    assert_eq!(study["period"]["start"], "2020-01-01");
    assert_eq!(
        study["enrollment"][0]["reference"],
        format!("Group/{id}-cohort")
    );
    assert_eq!(group["resourceType"], "Group");
    assert_eq!(group["actual"], false, "a definitional Group");
    group["characteristic"].as_array().unwrap().clone()
}

#[test]
fn to_fhir_prints_a_research_study_and_a_group_of_the_query_s_criteria() {
    let work = tempfile::tempdir().unwrap();
    let query_file = work.path().join("uncontrolled htn.query");
    std::fs::write(&query_file, TRANSLATED).unwrap();
    let output = zkcohort(&[
        "query",
        "to-fhir",
        path(&query_file),
        "--title",
        "Uncontrolled hypertension",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let bundle: Value = serde_json::from_str(&stdout(&output)).unwrap();
    // The id comes from the file name, made a FHIR id.
    let characteristics = check_bundle(&bundle, "uncontrolled-htn", "Uncontrolled hypertension");
    assert_eq!(characteristics.len(), 5, "{characteristics:#?}");
    let hypertension = characteristic(&characteristics, "hypertension");
    assert_eq!(hypertension["exclude"], false);
    assert_eq!(hypertension["code"]["coding"][1]["code"], "38341003");
    let age = characteristics
        .iter()
        .find(|characteristic| characteristic["code"]["coding"][0]["code"] == "30525-0")
        .expect("the age characteristic");
    assert_eq!(age["valueRange"]["low"]["value"], 40.0);
    assert_eq!(age["valueRange"]["high"]["value"], 75.0);
    let systolic = characteristic(&characteristics, "systolic-bp");
    assert_eq!(systolic["valueQuantity"]["comparator"], ">=");
    assert_eq!(systolic["valueQuantity"]["value"], 140.0);
    assert_eq!(systolic["period"]["start"], "2018-01-01");
    assert_eq!(
        characteristic(&characteristics, "beta-blocker")["exclude"],
        false
    );
    assert_eq!(characteristic(&characteristics, "ckd")["exclude"], true);
    let report = stderr(&output);
    assert!(
        report.contains("not exported (2):")
            && report.contains("criterion 4: `count >= n` has no Group form")
            && report.contains("does not say it is the max result"),
        "{report}"
    );

    // The JSON form of the query, an id and --json: the Bundle and the report together.
    let json_query = work.path().join("htn.json");
    std::fs::write(
        &json_query,
        serde_json::to_string(&parse(TRANSLATED)).unwrap(),
    )
    .unwrap();
    let value: Value = serde_json::from_str(&run_ok(&[
        "query",
        "to-fhir",
        path(&json_query),
        "--title",
        "Uncontrolled hypertension",
        "--id",
        "htn-2020",
        "--json",
    ]))
    .unwrap();
    let from_json = check_bundle(&value["bundle"], "htn-2020", "Uncontrolled hypertension");
    assert_eq!(from_json, characteristics, "both forms export alike");
    assert_eq!(
        value["not_exported"],
        json!([
            "criterion 3: the Group value does not say it is the max result",
            "criterion 4: `count >= n` has no Group form"
        ])
    );

    // `any of` has no Group form: reported, and the rest exported.
    let output = zkcohort(&[
        "query",
        "to-fhir",
        path(&root().join("queries/hypertension.query")),
        "--title",
        "Hypertension 40-75",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("criterion 3: `require any of`"),
        "{}",
        stderr(&output)
    );
    let output = zkcohort(&[
        "query",
        "to-fhir",
        path(&json_query),
        "--title",
        "x",
        "--id",
        "no spaces",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("is not a FHIR id"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_posted_study_exports_as_fhir_from_the_marketplace() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path());
    let holder = request_key(work.path(), "researcher", &server.url, "researcher");
    run_ok(&[
        "operator",
        "create-key",
        "--server",
        &server.url,
        "--token-file",
        path(&data.path().join("operator.token")),
        "--request",
        path(&holder.request),
    ]);
    let study = json!({
        "title": "Uncontrolled hypertension",
        "query": parse(TRANSLATED),
        "reward": 10,
        "max_enrollments": 5,
        "epsilon_budget": 1.0,
        "issuers": [hex::encode([9u8; 32])],
    });
    let posted: Value = server
        .client()
        .with_token(&holder.api_key)
        .post("/studies", &study)
        .unwrap();
    let id = posted["id"].as_u64().unwrap();
    let output = zkcohort(&[
        "researcher",
        "export-fhir",
        "--server",
        &server.url,
        "--study",
        &id.to_string(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let bundle: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let characteristics =
        check_bundle(&bundle, &format!("study-{id}"), "Uncontrolled hypertension");
    assert_eq!(characteristics.len(), 5, "{characteristics:#?}");
    assert_eq!(characteristic(&characteristics, "ckd")["exclude"], true);
    assert!(
        stderr(&output).contains("`count >= n` has no Group form"),
        "{}",
        stderr(&output)
    );
    let missing = zkcohort(&[
        "researcher",
        "export-fhir",
        "--server",
        &server.url,
        "--study",
        "99",
    ]);
    assert!(!missing.status.success());
    let (status, log) = server.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
}
