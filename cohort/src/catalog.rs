//! The versioned concept catalog: which concepts a record summary holds a slot for,
//! and the codes of every coding system that mean each concept.
//!
//! The catalog is data (`cohort/catalog.json`), compiled into the crate. Slot order
//! is part of every record commitment, so a catalog version only ever appends concepts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::CohortError;

/// The largest magnitude of a fixed-point value in a slot: values must fit the circuit's
/// signed 41-bit comparisons.
pub const VALUE_BOUND: i64 = 1 << 40;

/// The highest decimal scale a lab may keep.
const MAX_SCALE: u32 = 6;

const BUNDLED_CATALOG: &str = include_str!("../catalog.json");

/// A coding system whose codes the catalog lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeSystem {
    /// SNOMED CT (conditions, findings, answers), matched exactly.
    Snomed,
    /// ICD-10-CM, matched by category prefix (`E11` covers `E11.9`).
    Icd10,
    /// LOINC (labs and vitals), matched exactly.
    Loinc,
    /// RxNorm (clinical drugs), matched exactly.
    Rxnorm,
    /// WHO ATC classes, matched by prefix (`A10B` covers `A10BA02`).
    Atc,
    /// FHIR's administrative gender codes (`male`, `female`, …).
    FhirGender,
}

impl CodeSystem {
    const ALL: [CodeSystem; 6] = [
        CodeSystem::Snomed,
        CodeSystem::Icd10,
        CodeSystem::Loinc,
        CodeSystem::Rxnorm,
        CodeSystem::Atc,
        CodeSystem::FhirGender,
    ];

    /// The short name used in codes such as `icd10:E11`.
    pub fn prefix(self) -> &'static str {
        match self {
            CodeSystem::Snomed => "snomed",
            CodeSystem::Icd10 => "icd10",
            CodeSystem::Loinc => "loinc",
            CodeSystem::Rxnorm => "rxnorm",
            CodeSystem::Atc => "atc",
            CodeSystem::FhirGender => "fhir-gender",
        }
    }

    /// The system named by a FHIR `Coding.system` URI, if the catalog knows it.
    pub fn from_fhir_uri(uri: &str) -> Option<Self> {
        match uri.trim_end_matches('/') {
            "http://snomed.info/sct" => Some(CodeSystem::Snomed),
            "http://hl7.org/fhir/sid/icd-10-cm" | "http://hl7.org/fhir/sid/icd-10" => {
                Some(CodeSystem::Icd10)
            }
            "http://loinc.org" => Some(CodeSystem::Loinc),
            "http://www.nlm.nih.gov/research/umls/rxnorm" => Some(CodeSystem::Rxnorm),
            "http://www.whocc.no/atc" => Some(CodeSystem::Atc),
            "http://hl7.org/fhir/administrative-gender" => Some(CodeSystem::FhirGender),
            _ => None,
        }
    }

    fn is_hierarchical(self) -> bool {
        matches!(self, CodeSystem::Icd10 | CodeSystem::Atc)
    }
}

/// A code in one system, written `system:code` (`icd10:E11`, `loinc:4548-4`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code {
    /// The coding system.
    pub system: CodeSystem,
    /// The code within the system, normalized (ICD-10 and ATC: upper case, no dots).
    pub value: String,
}

impl Code {
    /// A code, normalized for matching.
    pub fn new(system: CodeSystem, value: &str) -> Self {
        let value = if system.is_hierarchical() {
            value.trim().replace('.', "").to_ascii_uppercase()
        } else {
            value.trim().to_string()
        };
        Code { system, value }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.system.prefix(), self.value)
    }
}

impl FromStr for Code {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (prefix, value) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?} is not a code: write system:code, e.g. icd10:E11"))?;
        let system = CodeSystem::ALL
            .into_iter()
            .find(|system| system.prefix() == prefix)
            .ok_or_else(|| {
                format!("unknown code system {prefix:?}: use snomed, icd10, loinc, rxnorm or atc")
            })?;
        if value.trim().is_empty() {
            return Err(format!("{text:?} has an empty code"));
        }
        Ok(Code::new(system, value))
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What a concept is, which decides how the importer fills its slot and which
/// query clauses may test it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConceptKind {
    /// The patient's birth date (slot dates).
    BirthDate,
    /// Administrative sex (slot value: an answer value).
    Sex,
    /// Tobacco smoking status observations (slot values: answer values).
    SmokingStatus,
    /// The day the issuer issued the record summary.
    RecordIssued,
    /// A condition group (SNOMED CT, ICD-10-CM).
    Condition,
    /// A lab test or vital sign with a unit and fixed-point scale (LOINC).
    Lab,
    /// A medication class (ATC, RxNorm).
    Medication,
    /// The patient's day of death, when the record has one (slot dates).
    Death,
}

impl ConceptKind {
    /// The word queries use for concepts of this kind.
    pub fn word(self) -> &'static str {
        match self {
            ConceptKind::BirthDate => "birth-date",
            ConceptKind::Sex => "sex",
            ConceptKind::SmokingStatus => "smoking",
            ConceptKind::RecordIssued => "record",
            ConceptKind::Condition => "condition",
            ConceptKind::Lab => "lab",
            ConceptKind::Medication => "medication",
            ConceptKind::Death => "death",
        }
    }
}

/// A named coded answer (a sex or a smoking status) and the value its slot stores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The name queries use (`female`, `current`).
    pub name: String,
    /// The integer stored in the slot's values.
    pub value: i64,
    /// The codes that mean this answer.
    pub codes: Vec<Code>,
}

/// A unit a lab value may arrive in, and how to convert it to the canonical unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitConversion {
    /// The UCUM unit as written in FHIR `valueQuantity.unit` or `code`.
    pub unit: String,
    /// Multiply a value in this unit by `factor` to get the canonical unit.
    pub factor: f64,
}

/// One concept of the catalog, as stored in `catalog.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concept {
    /// Stable kebab-case identifier (`hypertension`, `hba1c`, `statin`).
    pub id: String,
    /// What the concept is.
    pub kind: ConceptKind,
    /// Human-readable name.
    pub name: String,
    /// The value set: every code that means this concept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<Code>,
    /// Named answers, for sex and smoking status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
    /// Canonical UCUM unit of a lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Decimal places kept in fixed point for a lab (`6.5 %` at scale 1 is `65`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// Plausible values of a lab in its canonical unit; constants outside are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(f64, f64)>,
    /// Units a lab value is accepted in, the canonical one included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<UnitConversion>,
}

impl Concept {
    /// A lab's measurement details; `None` for other kinds.
    pub fn lab(&self) -> Option<LabSpec<'_>> {
        Some(LabSpec {
            unit: self.unit.as_deref()?,
            scale: self.scale?,
            range: self.range?,
            units: &self.units,
        })
    }

    /// The answer with the given name.
    pub fn answer_named(&self, name: &str) -> Option<&Answer> {
        self.answers.iter().find(|answer| answer.name == name)
    }

    /// The name of the answer stored as `value`.
    pub fn answer_name(&self, value: i64) -> Option<&str> {
        self.answers
            .iter()
            .find(|answer| answer.value == value)
            .map(|answer| answer.name.as_str())
    }
}

/// A lab concept's unit, fixed-point scale and plausible range.
#[derive(Clone, Copy, Debug)]
pub struct LabSpec<'a> {
    /// The canonical UCUM unit.
    pub unit: &'a str,
    /// Decimal places kept.
    pub scale: u32,
    /// Plausible values in the canonical unit.
    pub range: (f64, f64),
    /// Accepted units and their factors.
    pub units: &'a [UnitConversion],
}

impl LabSpec<'_> {
    /// The factor that converts `unit` to the canonical unit, if `unit` is accepted.
    pub fn factor(&self, unit: &str) -> Option<f64> {
        self.units
            .iter()
            .find(|conversion| conversion.unit == unit)
            .map(|conversion| conversion.factor)
    }

    /// `10^scale`: one canonical unit in fixed point.
    pub fn one(&self) -> i64 {
        10_i64.pow(self.scale)
    }

    /// A canonical-unit value in fixed point, or `None` outside the plausible range.
    pub fn to_fixed(&self, canonical: f64) -> Option<i64> {
        let (low, high) = self.range;
        (low..=high)
            .contains(&canonical)
            .then(|| (canonical * self.one() as f64).round() as i64)
    }

    /// A fixed-point value written in the canonical unit (`65` at scale 1 is `6.5`).
    pub fn format(&self, fixed: i64) -> String {
        format_fixed(fixed, self.scale)
    }
}

/// Writes a fixed-point integer with `scale` decimal places.
pub fn format_fixed(fixed: i64, scale: u32) -> String {
    if scale == 0 {
        return fixed.to_string();
    }
    let one = 10_i64.pow(scale);
    let sign = if fixed < 0 { "-" } else { "" };
    let magnitude = fixed.unsigned_abs();
    let one = one.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        magnitude / one,
        magnitude % one,
        width = scale as usize
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: String,
    description: String,
    sources: String,
    concepts: Vec<Concept>,
}

/// The index of a concept's slot in every record summary of one catalog version.
pub type SlotIndex = usize;

/// The concept catalog with its code indexes.
#[derive(Debug)]
pub struct Catalog {
    version: String,
    description: String,
    sources: String,
    concepts: Vec<Concept>,
    by_id: HashMap<String, SlotIndex>,
    by_code: HashMap<Code, Vec<SlotIndex>>,
}

/// Why a query's code or id named no single concept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No concept has this id.
    #[error("unknown concept {0:?}: run `zkcohort catalog` to list concepts")]
    UnknownId(String),
    /// No concept's value set holds this code.
    #[error("unknown code {0}: no catalog concept lists it (run `zkcohort catalog`)")]
    UnknownCode(String),
    /// The code belongs to several concepts.
    #[error("code {code} belongs to several concepts ({}): name one by its id", candidates.join(", "))]
    Ambiguous {
        /// The code.
        code: String,
        /// The concept ids that list it.
        candidates: Vec<String>,
    },
}

impl Catalog {
    /// The catalog shipped with this crate.
    pub fn bundled() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            Catalog::from_json(BUNDLED_CATALOG).expect("the bundled catalog.json is valid (tested)")
        })
    }

    /// Reads and validates a catalog file.
    ///
    /// # Errors
    /// [`CohortError::Catalog`] naming the first problem: malformed JSON, duplicate ids,
    /// missing special concepts, lab fields missing or out of bounds.
    pub fn from_json(text: &str) -> Result<Catalog, CohortError> {
        let file: CatalogFile = serde_json::from_str(text)
            .map_err(|error| CohortError::Catalog(format!("catalog.json: {error}")))?;
        let mut by_id = HashMap::new();
        let mut by_code: HashMap<Code, Vec<SlotIndex>> = HashMap::new();
        for (index, concept) in file.concepts.iter().enumerate() {
            validate_concept(concept)?;
            if by_id.insert(concept.id.clone(), index).is_some() {
                return Err(CohortError::Catalog(format!(
                    "concept id {:?} appears twice",
                    concept.id
                )));
            }
            let mut seen = HashSet::new();
            for code in &concept.codes {
                if !seen.insert(code) {
                    return Err(CohortError::Catalog(format!(
                        "{} lists {code} twice",
                        concept.id
                    )));
                }
                by_code.entry(code.clone()).or_default().push(index);
            }
        }
        for kind in [
            ConceptKind::BirthDate,
            ConceptKind::Sex,
            ConceptKind::SmokingStatus,
            ConceptKind::RecordIssued,
            ConceptKind::Death,
        ] {
            let count = file
                .concepts
                .iter()
                .filter(|concept| concept.kind == kind)
                .count();
            if count != 1 {
                return Err(CohortError::Catalog(format!(
                    "the catalog needs exactly one {} concept, found {count}",
                    kind.word()
                )));
            }
        }
        Ok(Catalog {
            version: file.version,
            description: file.description,
            sources: file.sources,
            concepts: file.concepts,
            by_id,
            by_code,
        })
    }

    /// The catalog version; summaries and queries name the version they were made with.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// What the catalog is, in a sentence.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Where the codes come from.
    pub fn sources(&self) -> &str {
        &self.sources
    }

    /// Every concept, in slot order.
    pub fn concepts(&self) -> &[Concept] {
        &self.concepts
    }

    /// The concept in slot `index`.
    pub fn concept(&self, index: SlotIndex) -> &Concept {
        &self.concepts[index]
    }

    /// The slot of the single concept of a special kind (birth date, sex, smoking,
    /// record issued, death).
    pub fn special(&self, kind: ConceptKind) -> SlotIndex {
        self.concepts
            .iter()
            .position(|concept| concept.kind == kind)
            .expect("validated: the catalog has each special concept once")
    }

    /// The slot of the concept with id `id`.
    pub fn index_of(&self, id: &str) -> Option<SlotIndex> {
        self.by_id.get(id).copied()
    }

    /// Every concept whose value set holds `code`; ICD-10 and ATC codes also match
    /// their parent categories (`icd10:E11.9` is in a concept listing `icd10:E11`).
    pub fn concepts_for_code(&self, code: &Code) -> Vec<SlotIndex> {
        let mut found: Vec<SlotIndex> = Vec::new();
        for candidate in ancestors(code) {
            if let Some(indexes) = self.by_code.get(&candidate) {
                found.extend(
                    indexes
                        .iter()
                        .filter(|index| !found.contains(index))
                        .collect::<Vec<_>>(),
                );
            }
        }
        found
    }

    /// The one concept a query names, by id (`hypertension`) or by code (`icd10:I10`).
    /// A code resolves to the concepts listing it exactly, else to those listing its
    /// nearest parent category; several at that level is an ambiguity error.
    ///
    /// # Errors
    /// [`ResolveError`] for an unknown id or code, or an ambiguous code.
    pub fn resolve(&self, reference: &str) -> Result<SlotIndex, ResolveError> {
        if !reference.contains(':') {
            return self
                .index_of(reference)
                .ok_or_else(|| ResolveError::UnknownId(reference.to_string()));
        }
        let code: Code = reference
            .parse()
            .map_err(|_| ResolveError::UnknownCode(reference.to_string()))?;
        for candidate in ancestors(&code) {
            match self.by_code.get(&candidate).map(Vec::as_slice) {
                Some([only]) => return Ok(*only),
                Some(several) if !several.is_empty() => {
                    return Err(ResolveError::Ambiguous {
                        code: code.to_string(),
                        candidates: several
                            .iter()
                            .map(|index| self.concepts[*index].id.clone())
                            .collect(),
                    })
                }
                _ => {}
            }
        }
        Err(ResolveError::UnknownCode(code.to_string()))
    }

    /// The number of concepts of each kind, for listings.
    pub fn kind_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for concept in &self.concepts {
            *counts.entry(concept.kind.word()).or_insert(0) += 1;
        }
        counts
    }
}

/// The code itself, then (for hierarchical systems) each shorter prefix down to 1 character.
fn ancestors(code: &Code) -> Vec<Code> {
    if !code.system.is_hierarchical() {
        return vec![code.clone()];
    }
    (1..=code.value.len())
        .rev()
        .filter(|length| code.value.is_char_boundary(*length))
        .map(|length| Code {
            system: code.system,
            value: code.value[..length].to_string(),
        })
        .collect()
}

fn validate_concept(concept: &Concept) -> Result<(), CohortError> {
    let fail = |reason: String| {
        Err(CohortError::Catalog(format!(
            "concept {:?}: {reason}",
            concept.id
        )))
    };
    let kebab = !concept.id.is_empty()
        && concept
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !kebab {
        return fail("ids are lowercase kebab-case".into());
    }
    let is_lab = concept.kind == ConceptKind::Lab;
    let has_lab_fields = concept.unit.is_some()
        || concept.scale.is_some()
        || concept.range.is_some()
        || !concept.units.is_empty();
    if is_lab != has_lab_fields {
        return fail("unit, scale, range and units belong to labs, and every lab has them".into());
    }
    let has_answers = matches!(concept.kind, ConceptKind::Sex | ConceptKind::SmokingStatus);
    if has_answers == concept.answers.is_empty() {
        return fail("sex and smoking status list answers; other kinds do not".into());
    }
    if let Some(lab) = concept.lab() {
        if lab.scale > MAX_SCALE {
            return fail(format!("scale {} is above {MAX_SCALE}", lab.scale));
        }
        let (low, high) = lab.range;
        let bound = VALUE_BOUND as f64 / lab.one() as f64;
        if !(low < high && low.abs() < bound && high.abs() < bound) {
            return fail(format!(
                "range [{low}, {high}] is empty or does not fit fixed point"
            ));
        }
        if lab.factor(lab.unit) != Some(1.0) {
            return fail(format!(
                "its canonical unit {:?} must be accepted with factor 1",
                lab.unit
            ));
        }
        if lab
            .units
            .iter()
            .any(|conversion| !(conversion.factor.is_finite() && conversion.factor > 0.0))
        {
            return fail("unit factors are positive".into());
        }
    }
    let mut answer_values = HashSet::new();
    for answer in &concept.answers {
        if answer.value < 1 || !answer_values.insert(answer.value) {
            return fail(format!(
                "answer {:?} needs a distinct value of at least 1",
                answer.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_catalog_loads_and_covers_the_required_kinds() {
        let catalog = Catalog::bundled();
        let counts = catalog.kind_counts();
        assert!(counts["condition"] >= 30, "{counts:?}");
        assert!(counts["lab"] >= 20, "{counts:?}");
        assert!(counts["medication"] >= 15, "{counts:?}");
        assert!(
            catalog.concepts().len() <= 1024,
            "the reference slot tree has 1024 leaves"
        );
    }

    #[test]
    fn codes_resolve_the_way_researchers_write_them() {
        let catalog = Catalog::bundled();
        let id_of = |reference: &str| {
            catalog
                .concept(catalog.resolve(reference).unwrap())
                .id
                .clone()
        };
        assert_eq!(id_of("icd10:E11"), "diabetes");
        assert_eq!(id_of("icd10:E11.9"), "diabetes");
        assert_eq!(id_of("snomed:44054006"), "diabetes");
        assert_eq!(id_of("loinc:4548-4"), "hba1c");
        assert_eq!(id_of("loinc:8480-6"), "systolic-bp");
        assert_eq!(id_of("atc:A10B"), "oral-antidiabetic");
        assert_eq!(id_of("hypertension"), "hypertension");
    }

    #[test]
    fn unknown_and_malformed_references_are_named() {
        let catalog = Catalog::bundled();
        assert_eq!(
            catalog.resolve("unicorn-flu"),
            Err(ResolveError::UnknownId("unicorn-flu".into()))
        );
        assert!(matches!(
            catalog.resolve("snomed:0000"),
            Err(ResolveError::UnknownCode(_))
        ));
        assert!(matches!(
            catalog.resolve("cpt:99213"),
            Err(ResolveError::UnknownCode(_))
        ));
    }

    #[test]
    fn hierarchical_codes_match_parent_categories_on_import() {
        let catalog = Catalog::bundled();
        let diabetes = catalog.index_of("diabetes").unwrap();
        assert!(catalog
            .concepts_for_code(&Code::new(CodeSystem::Icd10, "e11.65"))
            .contains(&diabetes));
        assert!(catalog
            .concepts_for_code(&Code::new(CodeSystem::Snomed, "44054"))
            .is_empty());
    }

    #[test]
    fn invalid_catalogs_are_refused_with_the_reason() {
        let special = r#"{"id":"birth-date","kind":"birth-date","name":"b"},
            {"id":"sex","kind":"sex","name":"s","answers":[{"name":"f","value":1,"codes":[]}]},
            {"id":"smoking-status","kind":"smoking-status","name":"s","codes":[],"answers":[{"name":"n","value":1,"codes":[]}]},
            {"id":"record-issued","kind":"record-issued","name":"r"},
            {"id":"death","kind":"death","name":"d"}"#;
        let wrap = |extra: &str| {
            format!(
                r#"{{"version":"t","description":"d","sources":"s","concepts":[{special}{extra}]}}"#
            )
        };
        assert!(Catalog::from_json(&wrap("")).is_ok());
        let duplicate = wrap(r#",{"id":"sex","kind":"condition","name":"x","codes":["snomed:1"]}"#);
        assert!(Catalog::from_json(&duplicate)
            .unwrap_err()
            .to_string()
            .contains("appears twice"));
        let lab_without_unit =
            wrap(r#",{"id":"hba1c","kind":"lab","name":"x","codes":["loinc:4548-4"]}"#);
        assert!(Catalog::from_json(&lab_without_unit)
            .unwrap_err()
            .to_string()
            .contains("every lab"));
        let huge_range = wrap(
            r#",{"id":"x","kind":"lab","name":"x","codes":[],"unit":"u","scale":6,"range":[0,1e9],"units":[{"unit":"u","factor":1}]}"#,
        );
        assert!(Catalog::from_json(&huge_range)
            .unwrap_err()
            .to_string()
            .contains("fixed point"));
        let bad_code = wrap(r#",{"id":"x","kind":"condition","name":"x","codes":["cpt:1"]}"#);
        assert!(Catalog::from_json(&bad_code)
            .unwrap_err()
            .to_string()
            .contains("unknown code system"));
    }
}
