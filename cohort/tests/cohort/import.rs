//! FHIR import on real Synthea R4 bundles. Expected values were read by hand from the
//! fixture files (entry numbers given), not produced by the importer.

use std::path::Path;

use zkcohort_cohort::catalog::Catalog;
use zkcohort_cohort::summary::{Entry, Slot};
use zkcohort_cohort::{import_bundle, CohortError, ImportReport, RecordSummary};
use zkcohort_testkit::day;

fn import_fixture(prefix: &str) -> (RecordSummary, ImportReport) {
    zkcohort_testkit::import_with_report(&zkcohort_testkit::fixture_path(prefix))
}

fn slot<'s>(summary: &'s RecordSummary, id: &str) -> &'s Slot {
    summary.slot(Catalog::bundled().index_of(id).unwrap())
}

#[test]
fn ali_harris_summary_matches_the_bundle() {
    let (summary, report) = import_fixture("Ali_Harris");
    // Patient: birthDate 1963-10-29, gender male.
    assert_eq!(slot(&summary, "birth-date").first_date, day("1963-10-29"));
    assert_eq!(slot(&summary, "sex").last_value, 1);
    // entry[11] Condition 38341003 Hypertension, onset 1981-12-22, no abatement.
    assert_eq!(
        *slot(&summary, "hypertension"),
        Slot {
            count: 1,
            first_date: day("1981-12-22"),
            last_date: day("1981-12-22"),
            last_value: 1,
            min_value: 1,
            max_value: 1,
            recent: [
                None,
                None,
                None,
                Some(Entry {
                    day: day("1981-12-22"),
                    value: 1
                })
            ],
        }
    );
    // entry[12] MedicationRequest 316049 Hydrochlorothiazide 25 MG, authored 1981-12-22, active.
    for class in ["thiazide", "antihypertensive"] {
        assert_eq!(slot(&summary, class).count, 1, "{class}");
        assert_eq!(slot(&summary, class).last_value, 1, "{class}");
    }
    // Nine blood pressure panels (55284-4); systolic component 8480-6: latest 185.822… on
    // 2020-12-08, lowest 146.064…, highest 185.822… mm[Hg]. Slots count half steps of the
    // lab's scale (0 here): 2k + 1 is strictly between k and k + 1, so 185.82 is not 186.
    let systolic = slot(&summary, "systolic-bp");
    assert_eq!((systolic.count, systolic.last_date), (9, day("2020-12-08")));
    assert_eq!(
        (systolic.last_value, systolic.min_value, systolic.max_value),
        (2 * 185 + 1, 2 * 146 + 1, 2 * 185 + 1)
    );
    // HbA1c (4548-4) nine results 2012-10-23 … 2020-12-08, latest 5.802… %, max 6.270… %
    // (scale 1: strictly between 5.8 and 5.9, and between 6.2 and 6.3).
    let hba1c = slot(&summary, "hba1c");
    assert_eq!(
        (
            hba1c.count,
            hba1c.first_date,
            hba1c.last_value,
            hba1c.max_value
        ),
        (9, day("2012-10-23"), 2 * 58 + 1, 2 * 62 + 1)
    );
    // Ibuprofen (entry[118]) was stopped.
    assert_eq!(slot(&summary, "nsaid").last_value, 0);
    assert!(slot(&summary, "ckd").is_empty());
    assert_eq!(slot(&summary, "record-issued").last_date, day("2021-06-01"));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn estrella_daugherty_has_diabetes_from_two_codes() {
    let (summary, _) = import_fixture("Estrella_Daugherty");
    // entry[16] Diabetes 44054006 (2009-06-27) and entry[66] diabetic retinopathy
    // 422034002 (2011-06-04) both mean diabetes.
    let diabetes = slot(&summary, "diabetes");
    assert_eq!(
        (diabetes.count, diabetes.first_date, diabetes.last_date),
        (2, day("2009-06-27"), day("2011-06-04"))
    );
    assert_eq!(slot(&summary, "diabetic-retinopathy").count, 1);
    // entry[194] 24 HR Metformin 500 MG, 2017-06-17, active.
    assert_eq!(
        slot(&summary, "oral-antidiabetic").first_date,
        day("2017-06-17")
    );
    // HbA1c six results; highest 7.618… % (entry[192]), latest 6.118… % (2020-06-20).
    let hba1c = slot(&summary, "hba1c");
    assert_eq!(
        (hba1c.count, hba1c.max_value, hba1c.last_value),
        (6, 2 * 76 + 1, 2 * 61 + 1)
    );
}

#[test]
fn fixtures_map_nearly_every_clinical_entry() {
    let mut totals = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for prefix in [
        "Ali_Harris",
        "Clemente_Kreiger",
        "Estrella_Daugherty",
        "Geoffrey_Abbott",
        "Lemuel_Hodkiewicz",
        "Renato_Dare",
    ] {
        let (_, report) = import_fixture(prefix);
        assert!(report.patient.is_some(), "{prefix}");
        for (resource, coverage) in report.coverage() {
            let total = totals.entry(resource).or_default();
            total.0 += coverage.mapped;
            total.1 += coverage.total;
        }
        assert!(
            report.not_read.contains_key("Encounter"),
            "{prefix}: other resource types are counted"
        );
    }
    assert_eq!(
        totals.keys().collect::<Vec<_>>(),
        [
            "Condition",
            "Immunization",
            "MedicationRequest",
            "Observation",
            "Procedure"
        ]
    );
    // Procedures are mostly encounter routine (documentation, screening tests) that no
    // concept is kept for; the other types map nearly whole.
    for (resource, (mapped, total)) in totals {
        if resource == "Procedure" {
            assert!(mapped > 0, "{resource}: {mapped} of {total} mapped");
            continue;
        }
        assert!(
            mapped * 20 >= total * 19,
            "{resource}: {mapped} of {total} mapped"
        );
    }
}

fn bundle_with(resources: &[serde_json::Value]) -> String {
    let entries: Vec<_> = resources
        .iter()
        .map(|resource| serde_json::json!({"resource": resource}))
        .collect();
    serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
        .to_string()
}

fn lab(loinc: &str, value: f64, unit: &str, date: &str) -> serde_json::Value {
    serde_json::json!({
        "resourceType": "Observation", "id": format!("{loinc}-{date}"), "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "effectiveDateTime": date,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    })
}

#[test]
fn units_are_converted_or_reported_never_mixed() {
    let text = bundle_with(&[
        lab("2339-0", 100.0, "mg/dL", "2020-01-01"),
        lab("2339-0", 7.0, "mmol/L", "2020-02-01"),
        lab("2339-0", 5.0, "furlong", "2020-03-01"),
        lab("33914-3", 80.0, "mL/min/{1.73_m2}", "2020-01-01"),
        lab("33914-3", 95.0, "mL/min", "2020-02-01"),
        lab("4548-4", 250.0, "%", "2020-01-01"),
    ]);
    let (summary, report) = import_bundle(Catalog::bundled(), &text, day("2021-01-01")).unwrap();
    let glucose = slot(&summary, "glucose");
    // 7 mmol/L × 18.016 = 126.112 mg/dL: strictly between 126 and 127 (2 × 126 + 1);
    // 100 mg/dL is exactly 100 (2 × 100).
    assert_eq!(
        (glucose.count, glucose.last_value, glucose.min_value),
        (2, 2 * 126 + 1, 200)
    );
    let egfr = slot(&summary, "egfr");
    assert_eq!(
        (egfr.count, egfr.last_value),
        (2, 190),
        "LOINC 33914-3 is per 1.73 m2 whatever the unit is spelled"
    );
    assert!(
        slot(&summary, "hba1c").is_empty(),
        "250 % is not a plausible HbA1c"
    );
    let reasons: Vec<&str> = report
        .skipped
        .iter()
        .map(|skipped| skipped.reason.as_str())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("unit furlong cannot be converted to mg/dL"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("outside the plausible range"),
        "{reasons:?}"
    );
    assert_eq!(
        report.warnings,
        [
            "entry[4] loinc:33914-3: unit mL/min read as mL/min/{1.73_m2}, the unit the code implies",
            "no Patient resource: birth date and sex stay empty"
        ]
    );
}

#[test]
fn raw_values_are_compared_as_reported() {
    let catalog = Catalog::bundled();
    let text = bundle_with(&[
        lab("4548-4", 6.97, "%", "2020-01-01"),
        lab("39156-5", 29.996, "kg/m2", "2020-01-01"),
        lab("2339-0", 126.0, "mg/dL", "2020-01-01"),
    ]);
    let (summary, _) = import_bundle(catalog, &text, day("2021-01-01")).unwrap();
    let holds = |clause: &str| {
        let query =
            zkcohort_cohort::Query::parse(&format!("index date 2021-01-01\n{clause}"), catalog)
                .unwrap();
        zkcohort_cohort::eligible(catalog, &summary, &query)
            .unwrap()
            .eligible
    };
    assert!(
        !holds("require lab hba1c latest >= 7"),
        "6.97 % is below 7 %"
    );
    assert!(holds("require lab hba1c latest < 7"));
    assert!(holds("require lab hba1c latest > 6.9"));
    assert!(!holds("require lab hba1c latest = 7"));
    assert!(
        !holds("require lab bmi latest >= 30"),
        "a BMI of 29.996 is below 30"
    );
    assert!(holds("require lab bmi latest between 29.9 and 30"));
    assert!(
        holds("require lab glucose latest = 126"),
        "an exact value stays exact"
    );
    assert!(
        holds("require lab glucose latest >= 126") && !holds("require lab glucose latest > 126")
    );
}

#[test]
fn hba1c_in_ifcc_units_converts_through_the_master_equation() {
    let catalog = Catalog::bundled();
    // NGSP % = 0.09148 × IFCC mmol/mol + 2.152: 53 mmol/mol is 7.00044 %, 42 is 5.99416 %.
    let ifcc = |value: f64, date: &str| {
        let mut observation = lab("59261-8", value, "mmol/mol", date);
        observation["id"] = format!("ifcc-{date}").into();
        observation
    };
    let text = bundle_with(&[ifcc(42.0, "2019-01-01"), ifcc(53.0, "2020-01-01")]);
    let (summary, report) = import_bundle(catalog, &text, day("2021-01-01")).unwrap();
    let hba1c = slot(&summary, "hba1c");
    assert_eq!(
        (hba1c.count, hba1c.last_value, hba1c.min_value),
        (2, 2 * 70 + 1, 2 * 59 + 1)
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let holds = |clause: &str| {
        let query =
            zkcohort_cohort::Query::parse(&format!("index date 2021-01-01\n{clause}"), catalog)
                .unwrap();
        zkcohort_cohort::eligible(catalog, &summary, &query)
            .unwrap()
            .eligible
    };
    assert!(holds("require lab hba1c latest >= 7"));
    assert!(holds("require lab hba1c latest >= 53 mmol/mol"));
    assert!(!holds("require lab hba1c min >= 6"), "5.99 % is below 6 %");
    // A value without a unit under the IFCC code means mmol/mol, and says so.
    let mut bare = ifcc(53.0, "2020-06-01");
    bare["valueQuantity"] = serde_json::json!({"value": 53.0});
    let (summary, report) =
        import_bundle(catalog, &bundle_with(&[bare]), day("2021-01-01")).unwrap();
    assert_eq!(slot(&summary, "hba1c").last_value, 2 * 70 + 1);
    assert!(
        report.warnings[0].contains("no unit; read in mmol/mol"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn blood_pressure_components_without_a_unit_take_the_loinc_unit() {
    // A Synthea blood pressure panel whose components lost their unit.
    let panel = serde_json::json!({
        "resourceType": "Observation", "id": "bp", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel with all children optional"}]},
        "effectiveDateTime": "2020-12-08T12:00:00-05:00",
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic Blood Pressure"}]},
             "valueQuantity": {"value": 88.0}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic Blood Pressure"}]},
             "valueQuantity": {"value": 141.0, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]
    });
    let (summary, report) = import_bundle(
        Catalog::bundled(),
        &bundle_with(&[panel]),
        day("2021-01-01"),
    )
    .unwrap();
    assert_eq!(slot(&summary, "diastolic-bp").last_value, 2 * 88);
    assert_eq!(slot(&summary, "systolic-bp").last_value, 2 * 141);
    assert_eq!(
        report.warnings[0],
        "entry[0] loinc:8462-4: no unit; read in mm[Hg], the unit the code implies"
    );
}

#[test]
fn codes_outside_the_catalog_and_retracted_entries_are_reported() {
    let condition = |code: &str, verification: &str| {
        serde_json::json!({
            "resourceType": "Condition", "id": code,
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": "x"}]},
            "verificationStatus": {"coding": [{"code": verification}]},
            "onsetDateTime": "2019-01-01T00:00:00Z"
        })
    };
    let icd = serde_json::json!({
        "resourceType": "Condition", "id": "icd",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "N18.3"}]},
        "onsetDateTime": "2018-05-05", "abatementDateTime": "2019-05-05"
    });
    let text = bundle_with(&[
        condition("38341003", "entered-in-error"),
        condition("999999", "confirmed"),
        icd,
    ]);
    let (summary, report) = import_bundle(Catalog::bundled(), &text, day("2021-01-01")).unwrap();
    assert!(slot(&summary, "hypertension").is_empty());
    let ckd = slot(&summary, "ckd");
    assert_eq!(
        (ckd.count, ckd.first_date, ckd.last_value),
        (1, day("2018-05-05"), 0),
        "N18.3 is CKD, resolved"
    );
    assert_eq!(
        report.skipped[0].reason,
        "verification status entered-in-error"
    );
    assert_eq!(report.skipped[1].reason, "no catalog concept for this code");
    assert_eq!(report.skipped[1].code.as_deref(), Some("snomed:999999"));
}

#[test]
fn malformed_bundles_name_where_they_are_malformed() {
    let catalog = Catalog::bundled();
    let issued = day("2021-01-01");
    let error = |text: &str| match import_bundle(catalog, text, issued) {
        Err(CohortError::Fhir(message)) => message,
        other => panic!("expected a FHIR error, got {other:?}"),
    };
    assert!(error("{\"resourceType\": \"Bundle\", \"entry\": [").contains("line 1"));
    assert!(error("{\"resourceType\": \"Patient\"}").contains("expected \"Bundle\""));
    let bad_date = bundle_with(&[lab("2339-0", 1.0, "mg/dL", "2020-02-31")]);
    let message = error(&bad_date);
    assert!(
        message.contains("entry[0] (Observation/2339-0-2020-02-31) at effective"),
        "{message}"
    );
    let wrong_shape = bundle_with(&[
        serde_json::json!({"resourceType": "Condition", "id": "c1", "code": {"coding": "snomed"}}),
    ]);
    let message = error(&wrong_shape);
    assert!(
        message.contains("entry[0] (Condition/c1) at code.coding"),
        "{message}"
    );
    let value_text = bundle_with(&[serde_json::json!({
        "resourceType": "Observation", "id": "o1", "code": {"coding": []},
        "valueQuantity": {"value": "high"}
    })]);
    assert!(error(&value_text).contains("at valueQuantity.value"));
    let patient = serde_json::json!({"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01", "gender": "female"});
    assert!(error(&bundle_with(&[patient.clone(), patient])).contains("a second Patient"));
    let no_type = bundle_with(&[serde_json::json!({"id": "x"})]);
    assert!(error(&no_type).contains("entry[0].resource has no resourceType"));
}

/// The full set of 40 bundles in ../shared/fhir, when this checkout has it beside it.
#[test]
fn every_shared_bundle_imports_without_error() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fhir");
    let Ok(entries) = std::fs::read_dir(&shared) else {
        eprintln!("skipping: {} is not present", shared.display());
        return;
    };
    let mut bundles = 0;
    let mut egfr_unit_mismatches = 0;
    let mut totals = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for path in entries.map(|entry| entry.unwrap().path()) {
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let (_, report) = import_bundle(Catalog::bundled(), &text, day("2021-06-01"))
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert!(
            !report
                .skipped
                .iter()
                .any(|skipped| skipped.reason.starts_with("unit mL/min cannot")),
            "{}: eGFR in plain mL/min is read under its LOINC code",
            path.display()
        );
        egfr_unit_mismatches += report
            .warnings
            .iter()
            .filter(|warning| warning.contains("unit mL/min read as"))
            .count();
        for (resource, coverage) in report.coverage() {
            let total = totals.entry(resource).or_default();
            total.0 += coverage.mapped;
            total.1 += coverage.total;
        }
        bundles += 1;
    }
    for (resource, (mapped, total)) in &totals {
        eprintln!(
            "{resource}: {mapped} of {total} mapped ({:.1}%)",
            100.0 * *mapped as f64 / *total as f64
        );
    }
    assert_eq!(bundles, 40);
    assert!(
        egfr_unit_mismatches > 0,
        "the set holds eGFR results in plain mL/min, which are read with a warning"
    );
}

#[test]
fn demographics_and_death_are_reported() {
    let patient = serde_json::json!({
        "resourceType": "Patient", "id": "p1", "birthDate": "1950-03-01", "gender": "female",
        "deceasedDateTime": "2017-01-13T08:00:00-05:00"
    });
    let (summary, report) = import_bundle(
        Catalog::bundled(),
        &bundle_with(&[patient]),
        day("2021-01-01"),
    )
    .unwrap();
    let facts = report.patient.unwrap();
    assert_eq!(
        (facts.birth_date, facts.deceased),
        (Some(day("1950-03-01")), Some(day("2017-01-13")))
    );
    assert_eq!(report.warnings, ["the patient died on 2017-01-13"]);
    assert_eq!(slot(&summary, "sex").last_value, 2);
    let unknown_gender = serde_json::json!({"resourceType": "Patient", "gender": "robot"});
    let (summary, report) = import_bundle(
        Catalog::bundled(),
        &bundle_with(&[unknown_gender]),
        day("2021-01-01"),
    )
    .unwrap();
    assert!(slot(&summary, "sex").is_empty());
    assert!(
        report
            .warnings
            .iter()
            .any(|warning| warning.contains("unknown gender \"robot\"")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn the_report_names_the_code_that_mapped() {
    let condition = serde_json::json!({
        "resourceType": "Condition", "id": "two-codings",
        "code": {"coding": [
            {"system": "http://snomed.info/sct", "code": "999999"},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}
        ]},
        "onsetDateTime": "2019-01-01"
    });
    let (summary, report) = import_bundle(
        Catalog::bundled(),
        &bundle_with(&[condition]),
        day("2021-01-01"),
    )
    .unwrap();
    assert_eq!(slot(&summary, "hypertension").count, 1);
    assert_eq!(
        report.mapped[0].code, "icd10:I10",
        "not the unmapped SNOMED coding listed first"
    );
    assert_eq!(report.mapped[0].concepts, ["hypertension"]);
}

fn synthea_patient(extra: serde_json::Value) -> serde_json::Value {
    let mut patient = serde_json::json!({
        "resourceType": "Patient", "id": "0d1c5a9e", "birthDate": "1948-07-14", "gender": "male",
        "name": [{"use": "official", "family": "Kris249", "given": ["Jerold208"]}]
    });
    patient
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    patient
}

fn hydrochlorothiazide(status: &str) -> serde_json::Value {
    serde_json::json!({
        "resourceType": "MedicationRequest", "id": "b5d3", "status": status, "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "316049", "display": "Hydrochlorothiazide 25 MG"}], "text": "Hydrochlorothiazide 25 MG"},
        "subject": {"reference": "urn:uuid:0d1c5a9e"},
        "authoredOn": "2012-03-02T10:21:12-05:00"
    })
}

#[test]
fn death_fills_the_death_slot_and_stops_prescriptions() {
    let catalog = Catalog::bundled();
    // The Patient after the prescription, as bundles may order entries.
    let text = bundle_with(&[
        hydrochlorothiazide("active"),
        synthea_patient(serde_json::json!({"deceasedDateTime": "2019-05-01T04:11:02-04:00"})),
    ]);
    let (summary, report) = import_bundle(catalog, &text, day("2021-01-01")).unwrap();
    let death = slot(&summary, "death");
    assert_eq!((death.count, death.first_date), (1, day("2019-05-01")));
    assert_eq!(
        slot(&summary, "thiazide").last_value,
        0,
        "a dead patient's prescription is not active"
    );
    assert!(report.patient.unwrap().is_deceased);
    let verdict = |query: &str| {
        let query = zkcohort_cohort::Query::parse(query, catalog).unwrap();
        zkcohort_cohort::eligible(catalog, &summary, &query)
            .unwrap()
            .eligible
    };
    assert!(!verdict("index date 2020-01-01\nrequire alive"));
    assert!(
        !verdict("index date 2019-05-01\nrequire alive"),
        "died on the index date"
    );
    assert!(verdict("index date 2019-04-30\nrequire alive"));
    assert!(verdict("index date 2020-01-01\nrequire not alive"));
    assert!(!verdict(
        "index date 2020-01-01\nrequire medication thiazide active"
    ));

    let living = bundle_with(&[
        synthea_patient(serde_json::json!({})),
        hydrochlorothiazide("active"),
    ]);
    let (summary, _) = import_bundle(catalog, &living, day("2021-01-01")).unwrap();
    assert!(slot(&summary, "death").is_empty());
    assert_eq!(slot(&summary, "thiazide").last_value, 1);
}

#[test]
fn death_without_a_day_fails_alive_for_every_index_date() {
    let catalog = Catalog::bundled();
    let text = bundle_with(&[synthea_patient(
        serde_json::json!({"deceasedBoolean": true}),
    )]);
    let (summary, report) = import_bundle(catalog, &text, day("2021-01-01")).unwrap();
    assert!(
        report.warnings.iter().any(|w| w.contains("unrecorded day")),
        "{:?}",
        report.warnings
    );
    let query =
        zkcohort_cohort::Query::parse("index date 1950-01-01\nrequire alive", catalog).unwrap();
    assert!(
        !zkcohort_cohort::eligible(catalog, &summary, &query)
            .unwrap()
            .eligible
    );
}

/// A MedicationRequest shaped like Synthea's, for a product this project's bundles
/// never use (the codes 9990000xx are placeholders no table lists, so only the text maps).
fn prescription(id: &str, code: &str, display: &str) -> serde_json::Value {
    serde_json::json!({
        "resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": code, "display": display}], "text": display},
        "authoredOn": "2020-03-02T10:21:12-05:00"
    })
}

#[test]
fn unseen_products_map_through_their_ingredients() {
    let catalog = Catalog::bundled();
    let text = bundle_with(&[
        synthea_patient(serde_json::json!({"gender": "female"})),
        prescription("m1", "999000001", "Meloxicam 15 MG Oral Tablet"),
        prescription("m2", "999000002", "Cephalexin 500 MG Oral Capsule"),
        prescription(
            "m3",
            "999000003",
            "nitrofurantoin, macrocrystals 50 MG Oral Capsule",
        ),
        prescription("m4", "999000004", "LORazepam 1 MG Oral Tablet"),
        prescription("m5", "999000005", "Nexplanon 68 MG Drug Implant"),
        prescription("m6", "999000006", "Loratadine 10 MG Oral Tablet"),
        // Coded at the ingredient itself: enalapril's RxCUI.
        prescription("m7", "3827", "enalapril"),
        prescription("m8", "999000008", "Unobtainium 5 MG Oral Tablet"),
    ]);
    let (summary, report) = import_bundle(catalog, &text, day("2021-01-01")).unwrap();
    for class in [
        "nsaid",
        "cephalosporin",
        "nitrofurantoin",
        "benzodiazepine",
        "hormonal-contraceptive",
        "antihistamine",
        "ace-inhibitor",
        "antihypertensive",
    ] {
        assert_eq!(slot(&summary, class).count, 1, "{class}");
    }
    assert_eq!(
        slot(&summary, "antibiotic").count,
        1,
        "cephalexin and nitrofurantoin, prescribed on one day: one day"
    );
    assert_eq!(report.mapped[4].ingredients, ["etonogestrel"], "by brand");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(
        report.skipped[0].reason,
        "Unobtainium 5 MG Oral Tablet: no catalog ingredient or class for this drug"
    );
    let query = zkcohort_cohort::Query::parse(
        "index date 2021-01-01\nexclude medication hormonal-contraceptive",
        catalog,
    )
    .unwrap();
    assert!(
        !zkcohort_cohort::eligible(catalog, &summary, &query)
            .unwrap()
            .eligible,
        "a woman with an implant is on hormonal contraception"
    );
}

#[test]
fn procedures_immunizations_and_allergies_are_read() {
    let catalog = Catalog::bundled();
    // Shaped like Synthea's entries (Procedure performedPeriod, Immunization CVX with
    // occurrenceDateTime, AllergyIntolerance with clinical and verification status).
    let colonoscopy = serde_json::json!({
        "resourceType": "Procedure", "id": "p1", "status": "completed",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "73761001", "display": "Colonoscopy"}], "text": "Colonoscopy"},
        "performedPeriod": {"start": "2019-04-02T09:00:00-04:00", "end": "2019-04-02T09:45:00-04:00"}
    });
    let flu = |id: &str, code: &str, date: &str| {
        serde_json::json!({
            "resourceType": "Immunization", "id": id, "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": code,
                "display": "Influenza, seasonal, injectable, preservative free"}]},
            "occurrenceDateTime": date, "primarySource": true
        })
    };
    let hep_b = serde_json::json!({
        "resourceType": "Immunization", "id": "i4", "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "08", "display": "Hep B, adolescent or pediatric"}]},
        "occurrenceDateTime": "1990-01-01"
    });
    let not_given = serde_json::json!({
        "resourceType": "Immunization", "id": "i5", "status": "not-done",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
        "occurrenceDateTime": "2020-11-01"
    });
    let allergy = serde_json::json!({
        "resourceType": "AllergyIntolerance", "id": "a1",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed"}]},
        "type": "allergy", "category": ["medication"], "criticality": "high",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005", "display": "Allergy to penicillin"}]},
        "recordedDate": "2005-07-01T10:00:00-04:00"
    });
    let text = bundle_with(&[
        colonoscopy,
        flu("i1", "140", "2018-10-01T10:00:00-04:00"),
        flu("i2", "140", "2019-10-03T10:00:00-04:00"),
        // The same vaccination entered twice on one day is one occurrence.
        flu("i3", "140", "2019-10-03T15:00:00-04:00"),
        hep_b,
        not_given,
        allergy,
    ]);
    let (summary, report) = import_bundle(catalog, &text, day("2021-01-01")).unwrap();
    assert_eq!(slot(&summary, "colonoscopy").first_date, day("2019-04-02"));
    let influenza = slot(&summary, "influenza-vaccination");
    assert_eq!(
        (influenza.count, influenza.last_date),
        (2, day("2019-10-03"))
    );
    assert_eq!(
        slot(&summary, "hepatitis-b-vaccination").count,
        1,
        "CVX 08 is 8"
    );
    assert_eq!(slot(&summary, "penicillin-allergy").last_value, 1);
    assert_eq!(report.skipped[0].reason, "status not-done");
    let holds = |clause: &str| {
        let query =
            zkcohort_cohort::Query::parse(&format!("index date 2021-01-01\n{clause}"), catalog)
                .unwrap();
        zkcohort_cohort::eligible(catalog, &summary, &query)
            .unwrap()
            .eligible
    };
    assert!(holds(
        "require immunization influenza-vaccination count >= 2"
    ));
    assert!(!holds(
        "require immunization influenza-vaccination count >= 3"
    ));
    let narrower = zkcohort_cohort::Query::parse(
        "index date 2021-01-01\nrequire immunization cvx:140",
        catalog,
    )
    .unwrap_err();
    assert!(
        narrower
            .message
            .contains("narrower than influenza-vaccination"),
        "CVX 140 is one formulation: {narrower}"
    );
    assert!(holds("require procedure colonoscopy within 3650 days"));
    assert!(holds("require procedure snomed:73761001"));
    assert!(!holds("exclude allergy penicillin-allergy"));
    assert!(holds("require allergy penicillin-allergy active"));
    let error = zkcohort_cohort::Query::parse(
        "index date 2021-01-01\nrequire procedure colonoscopy active",
        catalog,
    )
    .unwrap_err();
    assert!(error.message.contains("not procedures"), "{error}");
}

#[test]
fn a_condition_and_its_history_of_entry_on_one_day_count_once() {
    let condition = |id: &str, code: &str, display: &str| {
        serde_json::json!({
            "resourceType": "Condition", "id": id,
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "verificationStatus": {"coding": [{"code": "confirmed"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
            "onsetDateTime": "2014-02-11T04:11:02-05:00", "recordedDate": "2014-02-11T04:11:02-05:00"
        })
    };
    let text = bundle_with(&[
        condition("c1", "22298006", "Myocardial infarction"),
        condition(
            "c2",
            "399211009",
            "History of myocardial infarction (situation)",
        ),
    ]);
    let (summary, _) = import_bundle(Catalog::bundled(), &text, day("2021-01-01")).unwrap();
    assert_eq!(slot(&summary, "myocardial-infarction").count, 1);
    assert_eq!(slot(&summary, "coronary-heart-disease").count, 1);
}
