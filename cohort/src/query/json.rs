//! The JSON form of a clause: one object naming its subject by key
//! (`{"lab": "hba1c", "value": {"field": "latest", "compare": {">=": 6.5}}}`),
//! checked into the AST so a malformed clause fails at deserialization.

use serde::{Deserialize, Serialize};

use super::{Clause, Comparison, ConceptTest, ConceptWord, Test, ValueTest, Window};

/// A clause as JSON. Exactly one subject key (`age`, `sex`, `smoking`,
/// `record_issued_within_days`, `alive`, `condition`, `lab`, `medication`,
/// `procedure`, `immunization`, `allergy`) is set;
/// `alive` is `true` (write `"not": true` for "died on or before the index date").
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ClauseJson {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    not: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    age: Option<Comparison<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    smoking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record_issued_within_days: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    alive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lab: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    medication: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    procedure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    immunization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allergy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count_at_least: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<ValueTest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<Window>,
}

impl TryFrom<ClauseJson> for Clause {
    type Error = String;

    fn try_from(json: ClauseJson) -> Result<Self, Self::Error> {
        let concept_subjects = [
            (ConceptWord::Condition, json.condition),
            (ConceptWord::Lab, json.lab),
            (ConceptWord::Medication, json.medication),
            (ConceptWord::Procedure, json.procedure),
            (ConceptWord::Immunization, json.immunization),
            (ConceptWord::Allergy, json.allergy),
        ];
        let mut subjects: Vec<Test> = concept_subjects
            .into_iter()
            .filter_map(|(kind, concept)| {
                concept.map(|concept| {
                    Test::Concept(ConceptTest {
                        kind,
                        concept,
                        min_count: json.count_at_least,
                        active: json.active,
                        value: json.value.clone(),
                        window: json.window,
                    })
                })
            })
            .collect();
        let has_modifiers = json.count_at_least.is_some()
            || json.active
            || json.value.is_some()
            || json.window.is_some();
        if subjects.is_empty() && has_modifiers {
            return Err("count_at_least, active, value and window belong to a condition, lab, medication, procedure, immunization or allergy clause".into());
        }
        subjects.extend(json.age.map(Test::Age));
        subjects.extend(json.sex.map(Test::Sex));
        subjects.extend(json.smoking.map(Test::Smoking));
        subjects.extend(json.record_issued_within_days.map(Test::RecordIssuedWithin));
        subjects.extend(json.alive.then_some(Test::Alive));
        match <[Test; 1]>::try_from(subjects) {
            Ok([test]) => Ok(Clause { negated: json.not, test }),
            Err(_) => Err(
                "a clause names exactly one of: age, sex, smoking, record_issued_within_days, alive, condition, lab, medication, procedure, immunization, allergy"
                    .into(),
            ),
        }
    }
}

impl From<Clause> for ClauseJson {
    fn from(clause: Clause) -> Self {
        let mut json = ClauseJson {
            not: clause.negated,
            ..ClauseJson::default()
        };
        match clause.test {
            Test::Age(comparison) => json.age = Some(comparison),
            Test::Sex(name) => json.sex = Some(name),
            Test::Smoking(name) => json.smoking = Some(name),
            Test::RecordIssuedWithin(days) => json.record_issued_within_days = Some(days),
            Test::Alive => json.alive = true,
            Test::Concept(test) => {
                let concept = Some(test.concept);
                match test.kind {
                    ConceptWord::Condition => json.condition = concept,
                    ConceptWord::Lab => json.lab = concept,
                    ConceptWord::Medication => json.medication = concept,
                    ConceptWord::Procedure => json.procedure = concept,
                    ConceptWord::Immunization => json.immunization = concept,
                    ConceptWord::Allergy => json.allergy = concept,
                }
                json.count_at_least = test.min_count;
                json.active = test.active;
                json.value = test.value;
                json.window = test.window;
            }
        }
        json
    }
}
