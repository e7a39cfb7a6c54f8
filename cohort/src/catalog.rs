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

use crate::ingredient::{Ingredient, IngredientTable};
use crate::query::Decimal;
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
    /// CDC's CVX vaccine codes, matched exactly (leading zeros dropped: `08` is `8`).
    Cvx,
}

impl CodeSystem {
    const ALL: [CodeSystem; 7] = [
        CodeSystem::Snomed,
        CodeSystem::Icd10,
        CodeSystem::Loinc,
        CodeSystem::Rxnorm,
        CodeSystem::Atc,
        CodeSystem::FhirGender,
        CodeSystem::Cvx,
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
            CodeSystem::Cvx => "cvx",
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
            "http://hl7.org/fhir/sid/cvx" => Some(CodeSystem::Cvx),
            _ => None,
        }
    }

    /// The FHIR `Coding.system` URI of the system.
    pub fn fhir_uri(self) -> &'static str {
        match self {
            CodeSystem::Snomed => "http://snomed.info/sct",
            CodeSystem::Icd10 => "http://hl7.org/fhir/sid/icd-10-cm",
            CodeSystem::Loinc => "http://loinc.org",
            CodeSystem::Rxnorm => "http://www.nlm.nih.gov/research/umls/rxnorm",
            CodeSystem::Atc => "http://www.whocc.no/atc",
            CodeSystem::FhirGender => "http://hl7.org/fhir/administrative-gender",
            CodeSystem::Cvx => "http://hl7.org/fhir/sid/cvx",
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
        } else if system == CodeSystem::Cvx {
            // CVX codes are numbers that EHRs pad differently ("08", "8").
            match value.trim().trim_start_matches('0') {
                "" => "0".to_string(),
                digits => digits.to_string(),
            }
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
                format!(
                    "unknown code system {prefix:?}: use snomed, icd10, loinc, rxnorm, atc or cvx"
                )
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
    /// A procedure (SNOMED CT), from FHIR Procedure.
    Procedure,
    /// A vaccination (CVX), from FHIR Immunization.
    Immunization,
    /// An allergy or intolerance (SNOMED CT), from FHIR AllergyIntolerance; the value is
    /// 1 while the latest entry is active.
    Allergy,
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
            ConceptKind::Procedure => "procedure",
            ConceptKind::Immunization => "immunization",
            ConceptKind::Allergy => "allergy",
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

/// A unit a lab value may arrive in, and how to convert it to the canonical unit:
/// `canonical = value × factor + offset` (an offset for affine scales such as HbA1c
/// IFCC mmol/mol to NGSP %).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitConversion {
    /// The UCUM unit as written in FHIR `valueQuantity.unit` or `code`.
    pub unit: String,
    /// Multiply a value in this unit by `factor` …
    pub factor: Decimal,
    /// … then add `offset` to get the canonical unit.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub offset: Decimal,
    /// A non-UCUM spelling that the lab's LOINC codes fix the meaning of (eGFR written
    /// `mL/min` under a code whose property is per 1.73 m2): accepted with a warning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub variant_spelling: bool,
}

impl UnitConversion {
    /// `value` in the canonical unit, exactly; `None` on overflow.
    pub fn apply(&self, value: Exact) -> Option<Exact> {
        value
            .checked_mul(Exact::from(self.factor))?
            .checked_add(Exact::from(self.offset))
    }
}

/// An exact decimal value, `digits / 10^decimals`: a reported measurement as written,
/// converted without binary rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exact {
    digits: i128,
    decimals: u32,
}

/// Decimals past this are rounded away when a reported number is read (only values
/// below 10^-24 in magnitude have them).
const MAX_EXACT_DECIMALS: u32 = 24;

impl Exact {
    /// The decimal a JSON number was written as: the shortest decimal that reads back
    /// as `value`. `None` for non-finite or huge values.
    pub fn from_f64(value: f64) -> Option<Exact> {
        if !value.is_finite() {
            return None;
        }
        // Rust writes an f64 as its shortest round-trip decimal, never in exponent form.
        let text = value.to_string();
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let kept = &fraction[..fraction.len().min(MAX_EXACT_DECIMALS as usize)];
        let mut digits: i128 = format!("{whole}{kept}").parse().ok()?;
        if fraction[kept.len()..].starts_with(|c: char| ('5'..='9').contains(&c)) {
            digits = digits.checked_add(1)?;
        }
        Some(Exact {
            digits: if negative { -digits } else { digits },
            decimals: kept.len() as u32,
        })
    }

    fn checked_mul(self, other: Exact) -> Option<Exact> {
        Some(Exact {
            digits: self.digits.checked_mul(other.digits)?,
            decimals: self.decimals.checked_add(other.decimals)?,
        })
    }

    fn checked_add(self, other: Exact) -> Option<Exact> {
        let decimals = self.decimals.max(other.decimals);
        let scaled = |value: Exact| {
            value
                .digits
                .checked_mul(10_i128.checked_pow(decimals - value.decimals)?)
        };
        Some(Exact {
            digits: scaled(self)?.checked_add(scaled(other)?)?,
            decimals,
        })
    }

    /// `floor(value × 10^scale)` and whether that dropped a non-zero remainder.
    fn floor_at(self, scale: u32) -> Option<(i128, bool)> {
        if self.decimals <= scale {
            let multiplier = 10_i128.checked_pow(scale - self.decimals)?;
            return Some((self.digits.checked_mul(multiplier)?, false));
        }
        let divisor = 10_i128.checked_pow(self.decimals - scale)?;
        Some((
            self.digits.div_euclid(divisor),
            self.digits.rem_euclid(divisor) != 0,
        ))
    }

    /// The value as a float, for plausibility checks and messages.
    pub fn to_f64(self) -> f64 {
        self.digits as f64 / 10_f64.powi(self.decimals as i32)
    }
}

impl From<Decimal> for Exact {
    fn from(value: Decimal) -> Self {
        Exact {
            digits: i128::from(value.digits()),
            decimals: value.decimals(),
        }
    }
}

impl fmt::Display for Exact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.digits.unsigned_abs().to_string();
        let decimals = self.decimals as usize;
        let padded = format!("{text:0>width$}", width = decimals + 1);
        let (whole, fraction) = padded.split_at(padded.len() - decimals);
        let fraction = fraction.trim_end_matches('0');
        let sign = if self.digits < 0 { "-" } else { "" };
        if fraction.is_empty() {
            write!(f, "{sign}{whole}")
        } else {
            write!(f, "{sign}{whole}.{fraction}")
        }
    }
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
    /// Codes of the value set that name the whole concept (SNOMED CT's concept for
    /// the group, whose listed siblings are its descendants), so a query may use them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defined_by: Vec<Code>,
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
    /// A medication's ingredients, by name in the catalog's ingredient table: any
    /// product of one of them maps to the concept. Their RxCUIs join `codes` on load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingredients: Vec<String>,
    /// The unit a lab's LOINC code implies where it is not the canonical one (a
    /// [Moles/volume] code of a lab kept in mg/dL), for values reported without a unit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub implied_units: BTreeMap<String, String>,
}

impl Concept {
    /// A lab's measurement details; `None` for other kinds.
    pub fn lab(&self) -> Option<LabSpec<'_>> {
        Some(LabSpec {
            unit: self.unit.as_deref()?,
            scale: self.scale?,
            range: self.range?,
            units: &self.units,
            implied_units: &self.implied_units,
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
    /// Units implied by codes whose property is not the canonical unit's.
    pub implied_units: &'a BTreeMap<String, String>,
}

impl<'a> LabSpec<'a> {
    /// How `unit` converts to the canonical unit, if `unit` is accepted.
    pub fn conversion(&self, unit: &str) -> Option<&'a UnitConversion> {
        self.units.iter().find(|conversion| conversion.unit == unit)
    }

    /// The unit a value coded `code` means when it is reported without one: what its
    /// LOINC code implies, the canonical unit unless the catalog says otherwise.
    pub fn implied_unit(&self, code: &Code) -> &str {
        self.implied_units
            .get(&code.to_string())
            .map_or(self.unit, String::as_str)
    }

    /// `10^scale`: grid steps per canonical unit.
    pub fn one(&self) -> i64 {
        10_i64.pow(self.scale)
    }

    /// A reported value (canonical unit) as a slot stores it, or `None` outside the
    /// plausible range. Slots count half grid steps: `2k` is exactly `k / 10^scale`,
    /// `2k + 1` lies strictly between `k` and `k + 1` grid steps, so a value with more
    /// decimals than the scale keeps is never rounded across a query's bound (a raw
    /// 6.97 % is below 7.0, not equal to it).
    pub fn to_stored(&self, canonical: Exact) -> Option<i64> {
        let (low, high) = self.range;
        if !(low..=high).contains(&canonical.to_f64()) {
            return None;
        }
        let (steps, inexact) = canonical.floor_at(self.scale)?;
        i64::try_from(steps.checked_mul(2)? + i128::from(inexact)).ok()
    }

    /// A query constant (canonical unit) as the stored value of a grid point: exact
    /// when it has at most `scale` decimals, else rounded to the nearest grid point
    /// (halves up), which only converted constants need.
    pub fn constant_to_stored(&self, canonical: Exact) -> Option<i64> {
        // floor(x + 1/2) at the scale, from floor(10x) one decimal finer.
        let (finer, _) = canonical.floor_at(self.scale + 1)?;
        let steps = finer.checked_add(5)?.div_euclid(10);
        i64::try_from(steps.checked_mul(2)?).ok()
    }

    /// A stored value written in the canonical unit: `6.5`, or `(6.9, 7.0)` for a value
    /// strictly between two grid points.
    pub fn format(&self, stored: i64) -> String {
        let steps = stored.div_euclid(2);
        if stored.rem_euclid(2) == 0 {
            format_fixed(steps, self.scale)
        } else {
            format!(
                "({}, {})",
                format_fixed(steps, self.scale),
                format_fixed(steps + 1, self.scale)
            )
        }
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
    ingredient_source: String,
    ingredients: Vec<Ingredient>,
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
    ingredient_source: String,
    ingredients: IngredientTable,
    concepts: Vec<Concept>,
    by_id: HashMap<String, SlotIndex>,
    by_code: HashMap<Code, Vec<SlotIndex>>,
    by_ingredient: HashMap<String, Vec<SlotIndex>>,
}

/// Why a query's code or id named no single concept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No concept has this id.
    #[error("unknown concept {id:?}: {}", match suggestion {
        Some(suggestion) => format!("did you mean `{suggestion}`? (`zkcohort catalog` lists concepts)"),
        None => "run `zkcohort catalog` to list concepts".to_string(),
    })]
    UnknownId {
        /// The id as written.
        id: String,
        /// The nearest concept id, case-insensitively, when one is near.
        suggestion: Option<String>,
    },
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
    /// The code means less than every concept that holds it: a clause on it would
    /// silently widen to the group.
    #[error(
        "{code} is narrower than {}: a clause on it would admit every entry of that group; \
         name the group by its id to mean all of it (no concept is kept at this code's level)",
        groups.join(" and ")
    )]
    Narrower {
        /// The code.
        code: String,
        /// The concepts it would widen to, narrowest first.
        groups: Vec<String>,
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
        let mut file: CatalogFile = serde_json::from_str(text)
            .map_err(|error| CohortError::Catalog(format!("catalog.json: {error}")))?;
        let ingredients = IngredientTable::new(std::mem::take(&mut file.ingredients))?;
        let mut by_id = HashMap::new();
        let mut by_code: HashMap<Code, Vec<SlotIndex>> = HashMap::new();
        let mut by_ingredient: HashMap<String, Vec<SlotIndex>> = HashMap::new();
        for (index, concept) in file.concepts.iter_mut().enumerate() {
            validate_concept(concept)?;
            if !concept.ingredients.is_empty() && concept.kind != ConceptKind::Medication {
                return Err(CohortError::Catalog(format!(
                    "{} lists ingredients; only medications do",
                    concept.id
                )));
            }
            for name in &concept.ingredients {
                let ingredient = ingredients.named(name).ok_or_else(|| {
                    CohortError::Catalog(format!(
                        "{} lists ingredient {name:?}, which the ingredient table lacks",
                        concept.id
                    ))
                })?;
                by_ingredient.entry(name.clone()).or_default().push(index);
                // The ingredient's RxCUI joins the value set, so it maps and resolves.
                if let Some(code) = ingredient.code() {
                    if !concept.codes.contains(&code) {
                        concept.codes.push(code);
                    }
                }
            }
            if by_id.insert(concept.id.clone(), index).is_some() {
                return Err(CohortError::Catalog(format!(
                    "concept id {:?} appears twice",
                    concept.id
                )));
            }
            if let Some(stray) = concept
                .defined_by
                .iter()
                .find(|code| !concept.codes.contains(code))
            {
                return Err(CohortError::Catalog(format!(
                    "{} is defined by {stray}, which it does not list",
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
            ingredient_source: file.ingredient_source,
            ingredients,
            concepts: file.concepts,
            by_id,
            by_code,
            by_ingredient,
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

    /// Where the ingredient table comes from.
    pub fn ingredient_source(&self) -> &str {
        &self.ingredient_source
    }

    /// The drug ingredient table medication concepts draw on.
    pub fn ingredients(&self) -> &IngredientTable {
        &self.ingredients
    }

    /// Every medication concept that lists one of `ingredients`.
    pub fn concepts_for_ingredients(&self, ingredients: &[&Ingredient]) -> Vec<SlotIndex> {
        let mut found: Vec<SlotIndex> = ingredients
            .iter()
            .filter_map(|ingredient| self.by_ingredient.get(&ingredient.name))
            .flatten()
            .copied()
            .collect();
        found.sort_unstable();
        found.dedup();
        found
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

    /// The one concept a query names, by id (`hypertension`) or by a code that means
    /// the whole concept (`icd10:E11` for type 2 diabetes). A code names a concept when
    /// it heads the concept's codes of its system (ICD-10 and ATC: every listed code of
    /// that system lies under it), when it is the concept's only code of that system
    /// (not RxNorm, where only the RxCUI of a concept's single ingredient names it:
    /// products are narrower than any class), when the catalog lists it in
    /// `defined_by`, or for labs, whose LOINC codes are one analyte.
    ///
    /// # Errors
    /// [`ResolveError`] for an unknown id or code, a code that names several concepts,
    /// or a code narrower than every concept holding it ([`ResolveError::Narrower`]:
    /// never widened silently).
    pub fn resolve(&self, reference: &str) -> Result<SlotIndex, ResolveError> {
        if !reference.contains(':') {
            return self
                .index_of(reference)
                .ok_or_else(|| ResolveError::UnknownId {
                    id: reference.to_string(),
                    suggestion: nearest(reference, self.concepts.iter().map(|c| c.id.as_str()))
                        .map(str::to_string),
                });
        }
        let code: Code = reference
            .parse()
            .map_err(|_| ResolveError::UnknownCode(reference.to_string()))?;
        let mut holders = self.concepts_for_code(&code);
        if self.ingredients.is_listed_product(&code) {
            // A product means less than its ingredients' classes: found, then refused.
            let ingredients = self.ingredients.of_drug(std::slice::from_ref(&code), []);
            holders.extend(self.concepts_for_ingredients(&ingredients));
            holders.dedup();
        }
        let named: Vec<SlotIndex> = holders
            .iter()
            .copied()
            .filter(|index| self.is_named_by(*index, &code))
            .collect();
        match (named.as_slice(), holders.is_empty()) {
            ([only], _) => Ok(*only),
            ([], true) => Err(ResolveError::UnknownCode(code.to_string())),
            ([], false) => {
                let mut groups: Vec<SlotIndex> = holders;
                groups.sort_by_key(|index| self.concepts[*index].codes.len());
                Err(ResolveError::Narrower {
                    code: code.to_string(),
                    groups: groups
                        .iter()
                        .map(|index| self.concepts[*index].id.clone())
                        .collect(),
                })
            }
            (several, _) => Err(ResolveError::Ambiguous {
                code: code.to_string(),
                candidates: several
                    .iter()
                    .map(|index| self.concepts[*index].id.clone())
                    .collect(),
            }),
        }
    }

    /// Whether `code` means the whole concept in slot `index` (see [`Catalog::resolve`]).
    fn is_named_by(&self, index: SlotIndex, code: &Code) -> bool {
        let concept = &self.concepts[index];
        if !concept.codes.contains(code) {
            return false;
        }
        if concept.defined_by.contains(code) || concept.kind == ConceptKind::Lab {
            return true;
        }
        let mut same_system = concept
            .codes
            .iter()
            .filter(|listed| listed.system == code.system);
        match code.system {
            system if system.is_hierarchical() => {
                same_system.all(|listed| listed.value.starts_with(&code.value))
            }
            CodeSystem::Rxnorm => match concept.ingredients.as_slice() {
                [only] => {
                    self.ingredients
                        .named(only)
                        .and_then(Ingredient::code)
                        .as_ref()
                        == Some(code)
                }
                _ => false,
            },
            _ => same_system.count() == 1,
        }
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

/// The candidate nearest to `written`, compared case-insensitively, when it is near
/// enough to be a slip: an edit distance of at most a third of the word (at least 1).
pub fn nearest<'c>(
    written: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let written = written.to_lowercase();
    let limit = (written.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let distance = edit_distance(&written, &candidate.to_lowercase());
            (distance <= limit).then_some((distance, candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
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
        || !concept.units.is_empty()
        || !concept.implied_units.is_empty();
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
        // Stored values count half grid steps (see `LabSpec::to_stored`).
        let bound = VALUE_BOUND as f64 / (2 * lab.one()) as f64;
        if !(low < high && low.abs() < bound && high.abs() < bound) {
            return fail(format!(
                "range [{low}, {high}] is empty or does not fit fixed point"
            ));
        }
        let identity = lab.conversion(lab.unit).is_some_and(|conversion| {
            conversion.factor == Decimal::new(1, 0) && conversion.offset.is_zero()
        });
        if !identity {
            return fail(format!(
                "its canonical unit {:?} must be accepted with factor 1 and no offset",
                lab.unit
            ));
        }
        if lab
            .units
            .iter()
            .any(|conversion| conversion.factor <= Decimal::new(0, 0))
        {
            return fail("unit factors are positive".into());
        }
        for (code, unit) in lab.implied_units {
            if !concept
                .codes
                .iter()
                .any(|listed| listed.to_string() == *code)
            {
                return fail(format!("implied unit for {code}, which it does not list"));
            }
            if lab.conversion(unit).is_none() {
                return fail(format!("implied unit {unit} is not an accepted unit"));
            }
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
        assert_eq!(id_of("icd10:E11"), "type-2-diabetes");
        assert_eq!(id_of("snomed:44054006"), "type-2-diabetes");
        assert_eq!(id_of("snomed:46635009"), "type-1-diabetes");
        assert_eq!(id_of("snomed:73211009"), "diabetes");
        assert_eq!(id_of("snomed:43878008"), "strep-throat");
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
            Err(ResolveError::UnknownId {
                id: "unicorn-flu".into(),
                suggestion: None
            })
        );
        let slip = catalog.resolve("HbA1C").unwrap_err();
        assert_eq!(
            slip.to_string(),
            "unknown concept \"HbA1C\": did you mean `hba1c`? (`zkcohort catalog` lists concepts)"
        );
        assert!(catalog
            .resolve("hypertenson")
            .unwrap_err()
            .to_string()
            .contains("did you mean `hypertension`"));
        assert!(matches!(
            catalog.resolve("snomed:0000"),
            Err(ResolveError::UnknownCode(_))
        ));
        assert!(matches!(
            catalog.resolve("cpt:99213"),
            Err(ResolveError::UnknownCode(_))
        ));
        assert_eq!(
            catalog.resolve("icd10:E11.9"),
            Err(ResolveError::Narrower {
                code: "icd10:E119".into(),
                groups: vec!["type-2-diabetes".into(), "diabetes".into()]
            }),
            "a specific code never widens to its group"
        );
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
    fn values_are_stored_in_half_steps_without_rounding_across_bounds() {
        let catalog = Catalog::bundled();
        let hba1c = catalog
            .concept(catalog.index_of("hba1c").unwrap())
            .lab()
            .unwrap();
        let exact = |value: f64| Exact::from_f64(value).unwrap();
        assert_eq!(exact(6.97).to_string(), "6.97");
        assert_eq!(exact(5.802205953710533).to_string(), "5.802205953710533");
        assert_eq!(hba1c.to_stored(exact(7.0)), Some(140));
        assert_eq!(hba1c.to_stored(exact(6.97)), Some(139));
        assert_eq!(hba1c.to_stored(exact(6.9)), Some(138));
        assert_eq!(
            hba1c.to_stored(exact(26.0)),
            None,
            "outside the plausible range"
        );
        assert_eq!(hba1c.format(139), "(6.9, 7.0)");
        assert_eq!(hba1c.format(140), "7.0");
        let ifcc = hba1c.conversion("mmol/mol").unwrap();
        let ngsp = ifcc.apply(exact(53.0)).unwrap();
        assert_eq!(ngsp.to_string(), "7.00044");
        assert_eq!(hba1c.constant_to_stored(ngsp), Some(140));
        assert_eq!(
            hba1c.constant_to_stored(exact(6.95)),
            Some(140),
            "halves up"
        );
        assert_eq!(hba1c.constant_to_stored(exact(6.9499)), Some(138));
        assert_eq!(Exact::from_f64(f64::NAN), None);
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
                r#"{{"version":"t","description":"d","sources":"s","ingredient_source":"i","ingredients":[],"concepts":[{special}{extra}]}}"#
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
