//! Import of an OHDSI Circe (ATLAS) cohort definition into the query language, for the
//! subset the record summary can answer, with a report of everything left out or only
//! approximated.
//!
//! Read: concept sets (items by vocabulary and concept code, resolved through the
//! catalog), primary criteria, inclusion rules of type `ALL` or `ANY` with criteria on
//! condition, drug, measurement, procedure, observation and death domains, occurrence
//! counts (at least n; exactly or at most 0 as an exclusion), start windows ending on the
//! index date, measurement values, and demographic criteria (age, gender).
//!
//! Meaning: ATLAS dates everything from each patient's entry event; here the study's
//! fixed index date stands for it. A count is over the window's days. A
//! measurement value `> x` asks whether any result exceeded x, which is the slot's
//! `max`; `< x` is its `min`.

use serde::Deserialize;
use serde_json::Value;

use super::{
    Clause, Comparison, ConceptTest, ConceptWord, Criterion, DateWord, Decimal, Query, QueryError,
    Span, Test, ValueTest, ValueWord, Window,
};
use crate::catalog::Catalog;
use crate::day::Day;

/// A Circe cohort definition translated into a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CirceImport {
    /// The query, checked against the catalog.
    pub query: Query,
    /// What could not be translated, or was translated only approximately, and why.
    pub untranslated: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Definition {
    #[serde(default)]
    concept_sets: Vec<ConceptSet>,
    primary_criteria: Option<PrimaryCriteria>,
    #[serde(default)]
    inclusion_rules: Vec<InclusionRule>,
    #[serde(default)]
    additional_criteria: Option<Value>,
    #[serde(default)]
    censoring_criteria: Vec<Value>,
    #[serde(default)]
    end_strategy: Option<Value>,
}

#[derive(Deserialize)]
struct ConceptSet {
    id: i64,
    name: Option<String>,
    expression: ConceptSetExpression,
}

#[derive(Deserialize)]
struct ConceptSetExpression {
    #[serde(default)]
    items: Vec<ConceptSetItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConceptSetItem {
    concept: OmopConcept,
    #[serde(default)]
    is_excluded: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct OmopConcept {
    concept_code: Option<String>,
    vocabulary_id: Option<String>,
    concept_name: Option<String>,
    concept_id: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PrimaryCriteria {
    #[serde(default)]
    criteria_list: Vec<Value>,
}

#[derive(Deserialize)]
struct InclusionRule {
    name: Option<String>,
    expression: CriteriaGroup,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CriteriaGroup {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    criteria_list: Vec<CorrelatedCriteria>,
    #[serde(default)]
    demographic_criteria_list: Vec<Demographic>,
    #[serde(default)]
    groups: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CorrelatedCriteria {
    criteria: Value,
    start_window: Option<WindowJson>,
    end_window: Option<Value>,
    occurrence: Option<Occurrence>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WindowJson {
    start: Endpoint,
    end: Endpoint,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Endpoint {
    days: Option<i64>,
    coeff: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Occurrence {
    #[serde(rename = "Type")]
    kind: i64,
    count: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Demographic {
    age: Option<NumericRange>,
    #[serde(default)]
    gender: Vec<OmopConcept>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NumericRange {
    value: f64,
    op: String,
    extent: Option<f64>,
}

/// OMOP's standard gender concepts.
const OMOP_MALE: i64 = 8507;
const OMOP_FEMALE: i64 = 8532;

struct Translator<'a> {
    catalog: &'a Catalog,
    sets: &'a [ConceptSet],
    untranslated: Vec<String>,
}

/// Which clause word each Circe domain criterion becomes.
fn domain_word(domain: &str) -> Option<ConceptWord> {
    match domain {
        "ConditionOccurrence" | "ConditionEra" => Some(ConceptWord::Condition),
        "DrugExposure" | "DrugEra" => Some(ConceptWord::Medication),
        "Measurement" => Some(ConceptWord::Lab),
        "ProcedureOccurrence" => Some(ConceptWord::Procedure),
        _ => None,
    }
}

fn vocabulary_prefix(vocabulary: &str) -> Option<&'static str> {
    match vocabulary {
        "SNOMED" => Some("snomed"),
        "ICD10CM" | "ICD10" => Some("icd10"),
        "LOINC" => Some("loinc"),
        "RxNorm" | "RxNorm Extension" => Some("rxnorm"),
        "ATC" => Some("atc"),
        "CVX" => Some("cvx"),
        _ => None,
    }
}

fn decimal(value: f64) -> Option<Decimal> {
    value.to_string().parse().ok()
}

impl Translator<'_> {
    fn note(&mut self, text: String) {
        self.untranslated.push(text);
    }

    /// The catalog concepts a concept set names: each item resolved by its code.
    fn concepts_of_set(&mut self, id: i64, word: ConceptWord) -> Vec<String> {
        let Some(set) = self.sets.iter().find(|set| set.id == id) else {
            self.note(format!("concept set {id} is referenced but not defined"));
            return Vec::new();
        };
        let label = set.name.clone().unwrap_or_else(|| format!("#{id}"));
        let mut concepts: Vec<String> = Vec::new();
        for item in &set.expression.items {
            let concept = &item.concept;
            let name = concept
                .concept_name
                .clone()
                .or_else(|| concept.concept_id.map(|id| id.to_string()))
                .unwrap_or_default();
            if item.is_excluded {
                self.note(format!(
                    "concept set {label}: excluded item {name} (a catalog concept is counted whole)"
                ));
                continue;
            }
            let code = match (&concept.vocabulary_id, &concept.concept_code) {
                (Some(vocabulary), Some(code)) => vocabulary_prefix(vocabulary)
                    .map(|prefix| format!("{prefix}:{code}"))
                    .ok_or(format!("vocabulary {vocabulary} is not in the catalog")),
                _ => Err(
                    "no vocabulary and concept code (OMOP concept ids alone cannot be resolved)"
                        .into(),
                ),
            };
            let resolved = code.and_then(|code| {
                let index = self
                    .catalog
                    .resolve(&code)
                    .map_err(|error| error.to_string())?;
                let found = self.catalog.concept(index);
                if found.kind.word() != word.word() {
                    return Err(format!(
                        "{code} is a {} concept, not a {}",
                        found.kind.word(),
                        word.word()
                    ));
                }
                Ok(found.id.clone())
            });
            match resolved {
                Ok(id) if !concepts.contains(&id) => concepts.push(id),
                Ok(_) => {}
                Err(reason) => self.note(format!("concept set {label}: item {name}: {reason}")),
            }
        }
        concepts
    }

    /// One domain criterion (`{"ConditionOccurrence": {...}}`) as clauses over its
    /// concepts (any of them), before occurrence and window.
    fn domain_clauses(&mut self, criteria: &Value, context: &str) -> Option<Vec<ConceptTest>> {
        let (domain, body) = criteria.as_object()?.iter().next()?;
        if domain == "Death" {
            self.note(format!(
                "{context}: Death is read as `not alive` on the index date"
            ));
            return Some(Vec::new());
        }
        let Some(word) = domain_word(domain) else {
            self.note(format!(
                "{context}: the {domain} domain is not in the record summary"
            ));
            return None;
        };
        let Some(set) = body.get("CodesetId").and_then(Value::as_i64) else {
            self.note(format!(
                "{context}: a {domain} criterion without a concept set"
            ));
            return None;
        };
        let value = body
            .get("ValueAsNumber")
            .and_then(|range| serde_json::from_value::<NumericRange>(range.clone()).ok());
        let known = [
            "CodesetId",
            "ValueAsNumber",
            "First",
            "Unit",
            "OccurrenceStartDate",
        ];
        for key in body
            .as_object()?
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
        {
            self.note(format!(
                "{context}: {domain} attribute {key} is not translated"
            ));
        }
        let value_test = match (word, value) {
            (ConceptWord::Lab, Some(range)) => self.value_test(&range, context),
            (_, Some(_)) => {
                self.note(format!("{context}: a value on a {domain} criterion"));
                None
            }
            _ => None,
        };
        let concepts = self.concepts_of_set(set, word);
        if concepts.is_empty() {
            self.note(format!(
                "{context}: no catalog concept for concept set {set}: criterion dropped"
            ));
            return None;
        }
        Some(
            concepts
                .into_iter()
                .map(|concept| ConceptTest {
                    kind: word,
                    concept,
                    min_count: None,
                    active: false,
                    value: value_test.clone(),
                    window: None,
                })
                .collect(),
        )
    }

    /// Any result above a bound is the largest result above it; any below, the smallest.
    fn value_test(&mut self, range: &NumericRange, context: &str) -> Option<ValueTest> {
        let x = decimal(range.value)?;
        let (field, compare) = match range.op.as_str() {
            "gt" => (ValueWord::Max, Comparison::Above(x)),
            "gte" => (ValueWord::Max, Comparison::AtLeast(x)),
            "lt" => (ValueWord::Min, Comparison::Below(x)),
            "lte" => (ValueWord::Min, Comparison::AtMost(x)),
            op => {
                self.note(format!(
                    "{context}: value operator {op} (\"some result in a range\") has no slot equivalent"
                ));
                return None;
            }
        };
        Some(ValueTest {
            field,
            compare,
            unit: None,
        })
    }

    /// A start window ending on the index date. "Any time before" is the first entry
    /// at most 200 years back; "the last n days" counts the entries of those days.
    fn window(&mut self, window: &WindowJson, context: &str) -> Option<Window> {
        let start = match (window.start.days, window.start.coeff) {
            (None, -1) => Some((73_050, DateWord::First)),
            (Some(days), -1) | (Some(days @ 0), _) => {
                u32::try_from(days).ok().map(|days| (days, DateWord::Last))
            }
            _ => None,
        };
        match (start, window.end.days) {
            (Some((days, date)), Some(0)) => Some(Window {
                date,
                span: Span::WithinDays(days),
            }),
            _ => {
                self.note(format!(
                    "{context}: a window that does not run from before the index date to it is not translated"
                ));
                None
            }
        }
    }

    /// A correlated criterion as a criterion of the query.
    fn criterion(&mut self, criteria: &CorrelatedCriteria, context: &str) -> Option<Criterion> {
        if criteria.criteria.get("Death").is_some() {
            let alive = Clause {
                negated: false,
                test: Test::Alive,
            };
            let excluded = criteria
                .occurrence
                .as_ref()
                .is_some_and(|occurrence| occurrence.count == 0);
            return Some(if excluded {
                Criterion::Require(vec![alive])
            } else {
                Criterion::Exclude(vec![alive])
            });
        }
        let mut tests = self.domain_clauses(&criteria.criteria, context)?;
        if criteria.end_window.is_some() {
            self.note(format!("{context}: an end window is not translated"));
        }
        let window = match &criteria.start_window {
            Some(window) => self.window(window, context),
            None => None,
        };
        let (exclude, min_count) = match &criteria.occurrence {
            None => (false, None),
            Some(Occurrence { kind: 2, count }) if *count >= 1 => {
                (false, u32::try_from(*count).ok().filter(|count| *count > 1))
            }
            Some(Occurrence {
                kind: 0 | 1,
                count: 0,
            }) => (true, None),
            Some(Occurrence { kind, count }) => {
                let how = match kind {
                    0 => "exactly",
                    1 => "at most",
                    _ => "at least",
                };
                self.note(format!(
                    "{context}: an occurrence of {how} {count} is not translated (at least n, or none, are)"
                ));
                return None;
            }
        };
        if tests.len() > 1 && min_count.is_some() {
            self.note(format!(
                "{context}: the count applies to each concept of the set, not to their sum"
            ));
        }
        for test in &mut tests {
            test.min_count = min_count;
            test.window = window;
        }
        let clauses = tests
            .into_iter()
            .map(|test| Clause {
                negated: false,
                test: Test::Concept(test),
            })
            .collect();
        Some(if exclude {
            Criterion::Exclude(clauses)
        } else {
            Criterion::Require(clauses)
        })
    }

    fn demographics(&mut self, demographic: &Demographic, context: &str) -> Vec<Criterion> {
        let mut criteria = Vec::new();
        if let Some(age) = &demographic.age {
            let whole = |value: f64| (value.fract() == 0.0).then_some(value as i64);
            let comparison = match (
                age.op.as_str(),
                whole(age.value),
                age.extent.and_then(whole),
            ) {
                ("gt", Some(x), _) => Some(Comparison::Above(x)),
                ("gte", Some(x), _) => Some(Comparison::AtLeast(x)),
                ("lt", Some(x), _) => Some(Comparison::Below(x)),
                ("lte", Some(x), _) => Some(Comparison::AtMost(x)),
                ("eq", Some(x), _) => Some(Comparison::Equal(x)),
                ("bt", Some(x), Some(y)) => Some(Comparison::Between(x, y)),
                _ => None,
            };
            match comparison {
                Some(comparison) => criteria.push(Criterion::Require(vec![Clause {
                    negated: false,
                    test: Test::Age(comparison),
                }])),
                None => self.note(format!("{context}: age criterion {} {}", age.op, age.value)),
            }
        }
        let sexes: Vec<Clause> = demographic
            .gender
            .iter()
            .filter_map(|gender| {
                let by_id = match gender.concept_id {
                    Some(OMOP_MALE) => Some("male"),
                    Some(OMOP_FEMALE) => Some("female"),
                    _ => None,
                };
                let name = by_id
                    .map(str::to_string)
                    .or_else(|| gender.concept_name.as_ref().map(|name| name.to_lowercase()));
                name.filter(|name| name == "male" || name == "female")
            })
            .map(|name| Clause {
                negated: false,
                test: Test::Sex(name),
            })
            .collect();
        if sexes.len() < demographic.gender.len() {
            self.note(format!(
                "{context}: a gender other than OMOP male (8507) or female (8532)"
            ));
        }
        if !sexes.is_empty() {
            criteria.push(Criterion::Require(sexes));
        }
        criteria
    }

    fn rule(&mut self, rule: &InclusionRule, number: usize) -> Vec<Criterion> {
        let context = format!(
            "inclusion rule {number} ({})",
            rule.name.as_deref().unwrap_or("unnamed")
        );
        let group = &rule.expression;
        if !group.groups.is_empty() {
            self.note(format!("{context}: nested groups are not translated"));
        }
        let mut criteria: Vec<Criterion> = Vec::new();
        for (index, criteria_json) in group.criteria_list.iter().enumerate() {
            let item = format!("{context}, criterion {}", index + 1);
            criteria.extend(self.criterion(criteria_json, &item));
        }
        for demographic in &group.demographic_criteria_list {
            criteria.extend(self.demographics(demographic, &context));
        }
        match group.kind.as_str() {
            "ALL" => criteria,
            "ANY" => {
                // Any of several criteria is one `require any of:`, when each is a
                // plain requirement (an exclusion inside "any" is a negated clause).
                let mut clauses = Vec::new();
                for criterion in criteria {
                    match criterion {
                        Criterion::Require(several) => clauses.extend(several),
                        Criterion::Exclude(mut one) if one.len() == 1 => {
                            let mut clause = one.remove(0);
                            clause.negated = !clause.negated;
                            clauses.push(clause);
                        }
                        Criterion::Exclude(_) => {
                            self.note(format!(
                                "{context}: an exclusion of several concepts inside ANY"
                            ));
                        }
                    }
                }
                if clauses.is_empty() {
                    Vec::new()
                } else {
                    vec![Criterion::Require(clauses)]
                }
            }
            other => {
                self.note(format!(
                    "{context}: a group of type {other} is not translated"
                ));
                Vec::new()
            }
        }
    }
}

/// Translates a Circe cohort definition (the JSON ATLAS exports) into a query on
/// `index_date`, the study's index date standing for each patient's entry event.
///
/// # Errors
/// [`QueryError`] when the JSON is not a cohort definition, or when the translated
/// query does not compile against the catalog.
pub fn from_circe(
    json: &str,
    catalog: &Catalog,
    index_date: Day,
) -> Result<CirceImport, QueryError> {
    let deserializer = &mut serde_json::Deserializer::from_str(json);
    let definition: Definition =
        serde_path_to_error::deserialize(deserializer).map_err(|error| QueryError {
            location: format!("Circe JSON at {}", error.path()),
            message: error.inner().to_string(),
        })?;
    let mut translator = Translator {
        catalog,
        sets: &definition.concept_sets,
        untranslated: Vec::new(),
    };
    let mut criteria = Vec::new();
    if let Some(primary) = &definition.primary_criteria {
        translator.note(
            "primary criteria: the entry event becomes a requirement; the study's index date stands for each patient's entry date".into(),
        );
        let mut clauses = Vec::new();
        for (index, entry) in primary.criteria_list.iter().enumerate() {
            let context = format!("primary criterion {}", index + 1);
            if let Some(tests) = translator.domain_clauses(entry, &context) {
                clauses.extend(tests.into_iter().map(|test| Clause {
                    negated: false,
                    test: Test::Concept(test),
                }));
            }
        }
        if !clauses.is_empty() {
            criteria.push(Criterion::Require(clauses));
        }
    }
    for (index, rule) in definition.inclusion_rules.iter().enumerate() {
        criteria.extend(translator.rule(rule, index + 1));
    }
    if definition
        .additional_criteria
        .as_ref()
        .is_some_and(|value| !value.is_null())
    {
        translator.note("additional criteria are not translated".into());
    }
    if !definition.censoring_criteria.is_empty() {
        translator.note("censoring criteria are not translated (no cohort exit)".into());
    }
    if definition
        .end_strategy
        .as_ref()
        .is_some_and(|value| !value.is_null())
    {
        translator.note("the end strategy is not translated (no cohort exit)".into());
    }
    let query = Query {
        index_date,
        criteria,
        measures: Vec::new(),
    };
    query.compile(catalog)?;
    Ok(CirceImport {
        query,
        untranslated: translator.untranslated,
    })
}
