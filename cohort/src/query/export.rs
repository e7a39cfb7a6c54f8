//! Export of a study as FHIR R4 resources: a ResearchStudy whose enrollment is a
//! definitional Group (`actual: false`), one characteristic per clause, with a report of
//! what an R4 Group cannot say.
//!
//! R4 Group characteristics all hold together, each possibly excluded; so `require`
//! criteria of one clause and every clause of an `exclude` export exactly, while `any
//! of` criteria, counts, `active` and the choice of latest, smallest or largest value
//! are reported as not exported. Concepts are coded by catalog id (`urn:zkcohort:catalog`
//! with the catalog version) and, where the catalog has one, by the code that names the
//! whole concept.

use serde_json::{json, Value};

use super::{Clause, Comparison, Criterion, Decimal, Query, QueryError, Span, Test};
use crate::catalog::{Catalog, ConceptKind};
use crate::day::Day;

/// The coding system of catalog concept ids in exported resources.
pub const CATALOG_SYSTEM: &str = "urn:zkcohort:catalog";

/// A study as FHIR resources.
#[derive(Clone, Debug, PartialEq)]
pub struct FhirStudy {
    /// A collection Bundle holding the ResearchStudy and its Group.
    pub bundle: Value,
    /// What the Group could not express, criterion by criterion.
    pub not_exported: Vec<String>,
}

fn quantity(value: Decimal, comparator: Option<&str>, unit: &str) -> Value {
    let mut quantity = json!({
        "value": value.to_f64(), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit
    });
    if let Some(comparator) = comparator {
        quantity["comparator"] = comparator.into();
    }
    quantity
}

/// A comparison as the `value[x]` of a characteristic.
fn comparison_value(comparison: Comparison<Decimal>, unit: &str) -> (&'static str, Value) {
    match comparison {
        Comparison::AtLeast(x) => ("valueQuantity", quantity(x, Some(">="), unit)),
        Comparison::Above(x) => ("valueQuantity", quantity(x, Some(">"), unit)),
        Comparison::AtMost(x) => ("valueQuantity", quantity(x, Some("<="), unit)),
        Comparison::Below(x) => ("valueQuantity", quantity(x, Some("<"), unit)),
        Comparison::Equal(x) => ("valueQuantity", quantity(x, None, unit)),
        Comparison::Between(low, high) => (
            "valueRange",
            json!({"low": quantity(low, None, unit), "high": quantity(high, None, unit)}),
        ),
    }
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": "http://loinc.org", "code": code, "display": display}]})
}

struct Exporter<'a> {
    catalog: &'a Catalog,
    index_date: Day,
    not_exported: Vec<String>,
}

impl Exporter<'_> {
    /// One clause as a characteristic; `excluded` when the criterion excludes it.
    fn characteristic(&mut self, clause: &Clause, excluded: bool, context: &str) -> Option<Value> {
        let exclude = excluded != clause.negated;
        let (code, value_key, value, period) = match &clause.test {
            Test::Age(comparison) => {
                let comparison = match *comparison {
                    Comparison::AtLeast(x) => Comparison::AtLeast(Decimal::new(x, 0)),
                    Comparison::Above(x) => Comparison::Above(Decimal::new(x, 0)),
                    Comparison::AtMost(x) => Comparison::AtMost(Decimal::new(x, 0)),
                    Comparison::Below(x) => Comparison::Below(Decimal::new(x, 0)),
                    Comparison::Equal(x) => Comparison::Equal(Decimal::new(x, 0)),
                    Comparison::Between(x, y) => {
                        Comparison::Between(Decimal::new(x, 0), Decimal::new(y, 0))
                    }
                };
                let (key, value) = comparison_value(comparison, "a");
                (loinc("30525-0", "Age"), key, value, None)
            }
            Test::Sex(name) => (
                loinc("46098-0", "Sex"),
                "valueCodeableConcept",
                json!({"coding": [{"system": "http://hl7.org/fhir/administrative-gender", "code": name}]}),
                None,
            ),
            Test::Smoking(name) => {
                let concept = self
                    .catalog
                    .concept(self.catalog.special(ConceptKind::SmokingStatus));
                let answer = concept.answer_named(name)?;
                let codings: Vec<Value> = answer
                    .codes
                    .iter()
                    .map(|code| json!({"system": code.system.fhir_uri(), "code": code.value}))
                    .collect();
                (
                    loinc("72166-2", "Tobacco smoking status"),
                    "valueCodeableConcept",
                    json!({"coding": codings}),
                    None,
                )
            }
            Test::RecordIssuedWithin(_) => {
                self.not_exported.push(format!(
                    "{context}: record freshness is not a patient characteristic"
                ));
                return None;
            }
            Test::Alive => {
                // Alive on the index date: dead (SNOMED CT 419099009) up to it is excluded.
                return Some(json!({
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "419099009", "display": "Dead"}]},
                    "valueBoolean": true,
                    "exclude": !exclude,
                    "period": {"end": self.index_date.to_string()}
                }));
            }
            Test::Concept(test) => {
                let index = self.catalog.resolve(&test.concept).ok()?;
                let concept = self.catalog.concept(index);
                let mut codings = vec![json!({
                    "system": CATALOG_SYSTEM, "version": self.catalog.version(),
                    "code": concept.id, "display": concept.name
                })];
                codings.extend(
                    concept
                        .defined_by
                        .iter()
                        .map(|code| json!({"system": code.system.fhir_uri(), "code": code.value})),
                );
                if test.min_count.is_some() {
                    self.not_exported
                        .push(format!("{context}: `count >= n` has no Group form"));
                }
                if test.active {
                    self.not_exported
                        .push(format!("{context}: `active` has no Group form"));
                }
                let (key, value) = match (&test.value, concept.lab()) {
                    (Some(value), Some(lab)) => {
                        self.not_exported.push(format!(
                            "{context}: the Group value does not say it is the {} result",
                            value.field.word()
                        ));
                        comparison_value(value.compare, value.unit.as_deref().unwrap_or(lab.unit))
                    }
                    _ => ("valueBoolean", Value::Bool(true)),
                };
                let period = test.window.map(|window| match window.span {
                    Span::WithinDays(days) => json!({
                        "start": self.index_date.offset(-i64::from(days)).to_string(),
                        "end": self.index_date.to_string()
                    }),
                    Span::BeforeIndex => json!({"end": self.index_date.offset(-1).to_string()}),
                    Span::AfterIndex => json!({"start": self.index_date.offset(1).to_string()}),
                });
                (
                    json!({"coding": codings, "text": concept.name}),
                    key,
                    value,
                    period,
                )
            }
        };
        let mut characteristic = json!({"code": code, "exclude": exclude});
        characteristic[value_key] = value;
        if let Some(period) = period {
            characteristic["period"] = period;
        }
        Some(characteristic)
    }
}

/// The study `id` titled `title` with `query` as its cohort: a ResearchStudy and its
/// definitional Group in a collection Bundle. The index date is the study period's start.
///
/// # Errors
/// [`QueryError`] when the query does not compile against the catalog.
pub fn to_fhir(
    query: &Query,
    catalog: &Catalog,
    id: &str,
    title: &str,
) -> Result<FhirStudy, QueryError> {
    query.compile(catalog)?;
    let mut exporter = Exporter {
        catalog,
        index_date: query.index_date,
        not_exported: Vec::new(),
    };
    let mut characteristics = Vec::new();
    for (number, criterion) in query.criteria.iter().enumerate() {
        let context = format!("criterion {}", number + 1);
        match criterion {
            Criterion::Require(clauses) if clauses.len() > 1 => exporter.not_exported.push(
                format!("{context}: `require any of` (R4 Group characteristics all hold together)"),
            ),
            Criterion::Require(clauses) | Criterion::Exclude(clauses) => {
                for clause in clauses {
                    characteristics.extend(exporter.characteristic(
                        clause,
                        criterion.is_exclusion(),
                        &context,
                    ));
                }
            }
        }
    }
    let group_id = format!("{id}-cohort");
    let group = json!({
        "resourceType": "Group", "id": group_id, "type": "person", "actual": false,
        "name": title, "characteristic": characteristics
    });
    let study = json!({
        "resourceType": "ResearchStudy", "id": id, "title": title, "status": "active",
        "period": {"start": query.index_date.to_string()},
        "enrollment": [{"reference": format!("Group/{group_id}")}]
    });
    let bundle = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": format!("ResearchStudy/{id}"), "resource": study},
            {"fullUrl": format!("Group/{group_id}"), "resource": group}
        ]
    });
    Ok(FhirStudy {
        bundle,
        not_exported: exporter.not_exported,
    })
}
