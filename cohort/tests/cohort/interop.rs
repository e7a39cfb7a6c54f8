//! The formats researchers already write: OHDSI Circe (ATLAS) cohort definitions in,
//! FHIR ResearchStudy and Group out.

use zkcohort_cohort::catalog::Catalog;
use zkcohort_cohort::query::circe::from_circe;
use zkcohort_cohort::query::export::{to_fhir, CATALOG_SYSTEM};
use zkcohort_cohort::{Day, Query};

fn catalog() -> &'static Catalog {
    Catalog::bundled()
}

fn day(text: &str) -> Day {
    text.parse().unwrap()
}

/// An ATLAS export, trimmed to the keys Circe writes for this cohort: adults with type 2
/// diabetes, an HbA1c above 7 % in the last year, on metformin at least twice, without
/// insulin, alive; one rule Circe has and the summary cannot say (an end window).
const ATLAS_T2DM: &str = r#"{
  "ConceptSets": [
    {"id": 0, "name": "Type 2 diabetes", "expression": {"items": [
      {"concept": {"CONCEPT_ID": 201826, "CONCEPT_NAME": "Type 2 diabetes mellitus", "CONCEPT_CODE": "44054006",
                   "DOMAIN_ID": "Condition", "VOCABULARY_ID": "SNOMED", "STANDARD_CONCEPT": "S"},
       "isExcluded": false, "includeDescendants": true, "includeMapped": false},
      {"concept": {"CONCEPT_ID": 45576876, "CONCEPT_NAME": "Type 2 diabetes mellitus", "CONCEPT_CODE": "E11",
                   "VOCABULARY_ID": "ICD10CM"}, "isExcluded": false, "includeDescendants": true}]}},
    {"id": 1, "name": "HbA1c", "expression": {"items": [
      {"concept": {"CONCEPT_ID": 3004410, "CONCEPT_NAME": "Hemoglobin A1c/Hemoglobin.total in Blood", "CONCEPT_CODE": "4548-4",
                   "VOCABULARY_ID": "LOINC"}, "isExcluded": false, "includeDescendants": false}]}},
    {"id": 2, "name": "Metformin", "expression": {"items": [
      {"concept": {"CONCEPT_ID": 1503297, "CONCEPT_NAME": "metformin", "CONCEPT_CODE": "6809",
                   "VOCABULARY_ID": "RxNorm"}, "isExcluded": false, "includeDescendants": true}]}},
    {"id": 3, "name": "Insulins", "expression": {"items": [
      {"concept": {"CONCEPT_ID": 21600713, "CONCEPT_NAME": "INSULINS AND ANALOGUES", "CONCEPT_CODE": "A10A",
                   "VOCABULARY_ID": "ATC"}, "isExcluded": false, "includeDescendants": true},
      {"concept": {"CONCEPT_ID": 1, "CONCEPT_NAME": "some local code", "CONCEPT_CODE": "X1",
                   "VOCABULARY_ID": "LocalVocab"}, "isExcluded": false}]}}
  ],
  "PrimaryCriteria": {
    "CriteriaList": [{"ConditionOccurrence": {"CodesetId": 0}}],
    "ObservationWindow": {"PriorDays": 0, "PostDays": 0},
    "PrimaryCriteriaLimit": {"Type": "First"}
  },
  "QualifiedLimit": {"Type": "First"},
  "ExpressionLimit": {"Type": "First"},
  "InclusionRules": [
    {"name": "Adults", "expression": {"Type": "ALL", "CriteriaList": [],
      "DemographicCriteriaList": [{"Age": {"Value": 18, "Op": "gte"}}], "Groups": []}},
    {"name": "HbA1c above 7 in the last year", "expression": {"Type": "ALL", "CriteriaList": [
      {"Criteria": {"Measurement": {"CodesetId": 1, "ValueAsNumber": {"Value": 7, "Op": "gt"}}},
       "StartWindow": {"Start": {"Days": 365, "Coeff": -1}, "End": {"Days": 0, "Coeff": 1}},
       "Occurrence": {"Type": 2, "Count": 1}}], "DemographicCriteriaList": [], "Groups": []}},
    {"name": "Metformin twice", "expression": {"Type": "ALL", "CriteriaList": [
      {"Criteria": {"DrugExposure": {"CodesetId": 2}},
       "StartWindow": {"Start": {"Coeff": -1}, "End": {"Days": 0, "Coeff": 1}},
       "Occurrence": {"Type": 2, "Count": 2}}], "DemographicCriteriaList": [], "Groups": []}},
    {"name": "No insulin", "expression": {"Type": "ALL", "CriteriaList": [
      {"Criteria": {"DrugExposure": {"CodesetId": 3}},
       "StartWindow": {"Start": {"Coeff": -1}, "End": {"Days": 0, "Coeff": 1}},
       "Occurrence": {"Type": 0, "Count": 0}}], "DemographicCriteriaList": [], "Groups": []}},
    {"name": "Alive", "expression": {"Type": "ALL", "CriteriaList": [
      {"Criteria": {"Death": {}}, "StartWindow": {"Start": {"Coeff": -1}, "End": {"Days": 0, "Coeff": 1}},
       "Occurrence": {"Type": 0, "Count": 0}}], "DemographicCriteriaList": [], "Groups": []}},
    {"name": "Women or men", "expression": {"Type": "ANY", "CriteriaList": [],
      "DemographicCriteriaList": [{"Gender": [{"CONCEPT_ID": 8532, "CONCEPT_NAME": "FEMALE"}]},
                                  {"Gender": [{"CONCEPT_ID": 8507, "CONCEPT_NAME": "MALE"}]}], "Groups": []}},
    {"name": "Visit", "expression": {"Type": "ALL", "CriteriaList": [
      {"Criteria": {"VisitOccurrence": {"CodesetId": 4}},
       "StartWindow": {"Start": {"Days": 30, "Coeff": -1}, "End": {"Days": 0, "Coeff": 1}},
       "Occurrence": {"Type": 2, "Count": 1}}], "DemographicCriteriaList": [], "Groups": []}}
  ],
  "CensoringCriteria": [],
  "CollapseSettings": {"CollapseType": "ERA", "EraPad": 0},
  "CensorWindow": {},
  "cdmVersionRange": ">=5.0.0"
}"#;

#[test]
fn an_atlas_definition_becomes_a_query_with_a_report() {
    let imported = from_circe(ATLAS_T2DM, catalog(), day("2021-01-01")).unwrap();
    let expected = Query::parse(
        "index date 2021-01-01
require condition type-2-diabetes
require age >= 18
require lab hba1c max > 7 within 365 days
require medication metformin count >= 2 first within 73050 days
exclude medication insulin first within 73050 days
require alive
require any of: sex female; sex male
",
        catalog(),
    )
    .unwrap();
    assert_eq!(imported.query, expected, "{}", imported.query);
    let report = imported.untranslated.join("\n");
    for expected in [
        "index date stands for each patient's entry date",
        "item some local code: vocabulary LocalVocab is not in the catalog",
        "the VisitOccurrence domain is not in the record summary",
    ] {
        assert!(report.contains(expected), "{expected}\n{report}");
    }
}

#[test]
fn untranslatable_occurrences_and_malformed_definitions_are_named() {
    let exactly_two = r#"{"ConceptSets": [{"id": 0, "name": "HTN", "expression": {"items": [
        {"concept": {"CONCEPT_CODE": "38341003", "VOCABULARY_ID": "SNOMED", "CONCEPT_NAME": "Hypertensive disorder"}}]}}],
      "InclusionRules": [{"name": "two", "expression": {"Type": "ALL", "CriteriaList": [
        {"Criteria": {"ConditionOccurrence": {"CodesetId": 0}}, "Occurrence": {"Type": 0, "Count": 2}}]}}]}"#;
    let imported = from_circe(exactly_two, catalog(), day("2021-01-01")).unwrap();
    assert!(imported.query.criteria.is_empty());
    assert!(
        imported.untranslated[0].contains("an occurrence of exactly 2 is not translated"),
        "{:?}",
        imported.untranslated
    );
    let error = from_circe(r#"{"ConceptSets": 3}"#, catalog(), day("2021-01-01")).unwrap_err();
    assert!(error.location.contains("ConceptSets"), "{error}");
}

#[test]
fn a_study_exports_as_research_study_and_definitional_group() {
    let query = Query::parse(
        "index date 2021-01-01
require age between 40 and 75
require condition diabetes
require lab hba1c latest >= 7 within 365 days
exclude medication insulin
require alive
require any of: sex female; sex male
",
        catalog(),
    )
    .unwrap();
    let study = to_fhir(
        &query,
        catalog(),
        "t2dm-2021",
        "Type 2 diabetes, uncontrolled",
    )
    .unwrap();
    let entries = study.bundle["entry"].as_array().unwrap();
    let research = &entries[0]["resource"];
    let group = &entries[1]["resource"];
    assert_eq!(research["resourceType"], "ResearchStudy");
    assert_eq!(
        research["enrollment"][0]["reference"],
        "Group/t2dm-2021-cohort"
    );
    assert_eq!(
        (group["type"].as_str(), group["actual"].as_bool()),
        (Some("person"), Some(false))
    );
    let characteristics = group["characteristic"].as_array().unwrap();
    assert_eq!(characteristics.len(), 5, "{characteristics:#?}");
    assert_eq!(characteristics[0]["valueRange"]["low"]["value"], 40.0);
    let diabetes = &characteristics[1];
    assert_eq!(diabetes["code"]["coding"][0]["system"], CATALOG_SYSTEM);
    assert_eq!(
        diabetes["code"]["coding"][0]["version"],
        catalog().version()
    );
    assert_eq!(diabetes["code"]["coding"][1]["code"], "73211009");
    assert_eq!(diabetes["exclude"], false);
    let hba1c = &characteristics[2];
    assert_eq!(hba1c["valueQuantity"]["comparator"], ">=");
    assert_eq!(hba1c["period"]["start"], "2020-01-02");
    assert_eq!(characteristics[3]["exclude"], true, "insulin is excluded");
    assert_eq!(characteristics[4]["code"]["coding"][0]["code"], "419099009");
    assert_eq!(characteristics[4]["exclude"], true, "the dead are excluded");
    let report = study.not_exported.join("\n");
    assert!(report.contains("criterion 6: `require any of`"), "{report}");
    assert!(
        report.contains("does not say it is the latest result"),
        "{report}"
    );
}
