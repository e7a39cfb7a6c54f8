//! FHIR R4 import: a Bundle (Patient, Condition, Observation with `component`
//! values, MedicationRequest, MedicationStatement, Procedure, Immunization,
//! AllergyIntolerance) becomes a [`RecordSummary`] plus an [`ImportReport`] of what
//! was mapped, what was skipped and why. A slot counts days: entries of one concept
//! on one day are one occurrence.
//!
//! Lab values are converted to the concept's canonical unit or skipped with the
//! reason; units are never mixed. A malformed bundle is an error naming the entry
//! and the JSON path inside it.

mod model;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::catalog::{Catalog, Code, CodeSystem, ConceptKind, Exact, SlotIndex};
use crate::day::{Day, DAY_MIN};
use crate::summary::RecordSummary;
use crate::CohortError;
use model::{
    AllergyIntolerance, Bundle, CodeableConcept, Condition, Immunization, Medication, Observation,
    Patient, Period, Procedure, Quantity,
};

/// What the importer did with a bundle.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// The patient, if the bundle has one.
    pub patient: Option<PatientFacts>,
    /// Measurements and entries that filled slots.
    pub mapped: Vec<MappedEntry>,
    /// Measurements and entries left out, with the reason.
    pub skipped: Vec<SkippedEntry>,
    /// How many entries of each clinical resource type read (all but Patient) the bundle holds.
    pub read: BTreeMap<String, usize>,
    /// Resource types the importer does not read, with their counts.
    pub not_read: BTreeMap<String, usize>,
    /// Problems with the bundle as a whole.
    pub warnings: Vec<String>,
}

/// The patient's demographics as imported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatientFacts {
    /// The Patient resource id.
    pub id: Option<String>,
    /// The birth date.
    pub birth_date: Option<Day>,
    /// The administrative gender.
    pub sex: Option<String>,
    /// The day of death, when the record says the patient died.
    pub deceased: Option<Day>,
    /// Whether the record says the patient died (with or without a day).
    pub is_deceased: bool,
}

/// One entry (or observation component) that filled slots.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MappedEntry {
    /// The entry's position in the bundle.
    pub entry: usize,
    /// The resource type.
    pub resource: &'static str,
    /// The code that mapped (`snomed:38341003`).
    pub code: String,
    /// The concepts whose slots it filled.
    pub concepts: Vec<String>,
    /// For a medication, the ingredients it mapped through (empty when its code
    /// itself is in a concept's value set, such as an ATC code).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ingredients: Vec<String>,
    /// The day recorded.
    pub day: Day,
}

/// One entry (or observation component) left out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SkippedEntry {
    /// The entry's position in the bundle.
    pub entry: usize,
    /// The resource type.
    pub resource: &'static str,
    /// The code, if it had one in a known system.
    pub code: Option<String>,
    /// The code's display text.
    pub display: Option<String>,
    /// Why it was left out.
    pub reason: String,
}

/// Mapped and total entries of one resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Entries that filled at least one slot.
    pub mapped: usize,
    /// Entries of the type.
    pub total: usize,
}

impl ImportReport {
    /// Over every read resource type, how many entries filled at least one slot.
    pub fn total_coverage(&self) -> Coverage {
        self.coverage().values().fold(
            Coverage {
                mapped: 0,
                total: 0,
            },
            |sum, coverage| Coverage {
                mapped: sum.mapped + coverage.mapped,
                total: sum.total + coverage.total,
            },
        )
    }

    /// For each read resource type, how many entries filled at least one slot.
    pub fn coverage(&self) -> BTreeMap<String, Coverage> {
        let mut mapped: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
        for entry in &self.mapped {
            mapped
                .entry(entry.resource)
                .or_default()
                .insert(entry.entry);
        }
        self.read
            .iter()
            .map(|(resource, total)| {
                let count = mapped.get(resource.as_str()).map_or(0, BTreeSet::len);
                (
                    resource.clone(),
                    Coverage {
                        mapped: count,
                        total: *total,
                    },
                )
            })
            .collect()
    }
}

struct Importer<'a> {
    catalog: &'a Catalog,
    summary: RecordSummary,
    report: ImportReport,
    /// The (slot, day) pairs already counted: one event coded twice on a day (a
    /// condition and its "history of" entry) is one occurrence.
    counted: HashSet<(SlotIndex, Day)>,
}

/// Where a procedure, immunization or allergy entry sits and what it says.
struct Event<'s> {
    entry: usize,
    resource: &'static str,
    kind: ConceptKind,
    status: Option<&'s str>,
    day: Option<Day>,
}

/// The codes of a CodeableConcept in systems the catalog knows, and the first display.
fn known_codes(concept: &CodeableConcept) -> (Vec<Code>, Option<String>) {
    let codes = concept
        .coding
        .iter()
        .filter_map(|coding| {
            let system = CodeSystem::from_fhir_uri(coding.system.as_deref()?)?;
            Some(Code::new(system, coding.code.as_deref()?))
        })
        .collect();
    let display = concept
        .coding
        .iter()
        .find_map(|coding| coding.display.clone());
    (codes, display)
}

fn status_code(concept: Option<&CodeableConcept>) -> Option<&str> {
    concept?
        .coding
        .iter()
        .find_map(|coding| coding.code.as_deref())
}

fn first_date<'t>(candidates: &[Option<&'t String>]) -> Option<&'t String> {
    candidates.iter().flatten().next().copied()
}

fn period_start(period: Option<&Period>) -> Option<&String> {
    period?.start.as_ref()
}

/// Imports one bundle (the JSON text of a FHIR R4 Bundle) into a summary whose
/// record-issued slot is `issued_at`.
///
/// # Errors
/// [`CohortError::Fhir`] naming where the bundle is malformed: invalid JSON (line and
/// column), not a Bundle, several Patients, a field of the wrong shape or an
/// unreadable date (entry, resource and JSON path).
pub fn import_bundle(
    catalog: &Catalog,
    json: &str,
    issued_at: Day,
) -> Result<(RecordSummary, ImportReport), CohortError> {
    let deserializer = &mut serde_json::Deserializer::from_str(json);
    let bundle: Bundle = serde_path_to_error::deserialize(deserializer)
        .map_err(|error| CohortError::Fhir(format!("at {}: {}", error.path(), error.inner())))?;
    if bundle.resource_type != "Bundle" {
        return Err(CohortError::Fhir(format!(
            "resourceType is {:?}, expected \"Bundle\"",
            bundle.resource_type
        )));
    }
    let mut importer = Importer {
        catalog,
        summary: RecordSummary::empty(catalog),
        report: ImportReport::default(),
        counted: HashSet::new(),
    };
    let mut resources = Vec::with_capacity(bundle.entry.len());
    for (index, entry) in bundle.entry.into_iter().enumerate() {
        match entry.resource {
            Some(resource) => resources.push((index, resource)),
            None => importer
                .report
                .warnings
                .push(format!("entry[{index}] has no resource")),
        }
    }
    // The Patient first, wherever the bundle puts it: whether the patient died decides
    // whether a prescription is still active.
    let (patients, others): (Vec<_>, Vec<_>) = resources
        .into_iter()
        .partition(|(_, resource)| resource.get("resourceType") == Some(&"Patient".into()));
    for (index, resource) in patients.into_iter().chain(others) {
        importer.import_resource(index, resource)?;
    }
    if importer.report.patient.is_none() {
        importer
            .report
            .warnings
            .push("no Patient resource: birth date and sex stay empty".into());
    }
    let record_issued = catalog.special(ConceptKind::RecordIssued);
    importer
        .summary
        .slot_mut(record_issued)
        .record(issued_at, 0);
    Ok((importer.summary, importer.report))
}

impl Importer<'_> {
    fn import_resource(
        &mut self,
        index: usize,
        resource: serde_json::Value,
    ) -> Result<(), CohortError> {
        let resource_type = resource
            .get("resourceType")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        let id = resource
            .get("id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_string();
        let Some(resource_type) = resource_type else {
            return Err(CohortError::Fhir(format!(
                "entry[{index}].resource has no resourceType"
            )));
        };
        let kind: &'static str = match resource_type.as_str() {
            "Patient" => "Patient",
            "Condition" => "Condition",
            "Observation" => "Observation",
            "MedicationRequest" => "MedicationRequest",
            "MedicationStatement" => "MedicationStatement",
            "Procedure" => "Procedure",
            "Immunization" => "Immunization",
            "AllergyIntolerance" => "AllergyIntolerance",
            other => {
                *self.report.not_read.entry(other.to_string()).or_insert(0) += 1;
                return Ok(());
            }
        };
        if kind != "Patient" {
            *self.report.read.entry(kind.to_string()).or_insert(0) += 1;
        }
        let place = format!("entry[{index}] ({resource_type}/{id})");
        let malformed = |error: serde_path_to_error::Error<serde_json::Error>| {
            CohortError::Fhir(format!("{place} at {}: {}", error.path(), error.inner()))
        };
        let date = |text: &String, field: &str| {
            Day::parse_fhir(text)
                .map_err(|error| CohortError::Fhir(format!("{place} at {field}: {error}")))
        };
        match kind {
            "Patient" => {
                let patient: Patient =
                    serde_path_to_error::deserialize(resource).map_err(malformed)?;
                if self.report.patient.is_some() {
                    return Err(CohortError::Fhir(format!(
                        "{place}: a second Patient; a record summary is for one patient"
                    )));
                }
                let birth_date = patient
                    .birth_date
                    .as_ref()
                    .map(|text| date(text, "birthDate"))
                    .transpose()?;
                let deceased = patient
                    .deceased_date_time
                    .as_ref()
                    .map(|text| date(text, "deceasedDateTime"))
                    .transpose()?;
                self.import_patient(&patient, birth_date, deceased);
            }
            "Condition" => {
                let condition: Condition =
                    serde_path_to_error::deserialize(resource).map_err(malformed)?;
                let onset = first_date(&[
                    condition.onset_date_time.as_ref(),
                    period_start(condition.onset_period.as_ref()),
                    condition.recorded_date.as_ref(),
                ]);
                let day = onset.map(|text| date(text, "onset")).transpose()?;
                self.import_condition(index, &condition, day);
            }
            "Observation" => {
                let observation: Observation =
                    serde_path_to_error::deserialize(resource).map_err(malformed)?;
                let effective = first_date(&[
                    observation.effective_date_time.as_ref(),
                    period_start(observation.effective_period.as_ref()),
                    observation.issued.as_ref(),
                ]);
                let day = effective.map(|text| date(text, "effective")).transpose()?;
                self.import_observation(index, &observation, day);
            }
            "Procedure" => {
                let procedure: Procedure =
                    serde_path_to_error::deserialize(resource).map_err(malformed)?;
                let performed = first_date(&[
                    procedure.performed_date_time.as_ref(),
                    period_start(procedure.performed_period.as_ref()),
                ]);
                let day = performed.map(|text| date(text, "performed")).transpose()?;
                let (codes, display) = known_codes(&procedure.code);
                let event = Event {
                    entry: index,
                    resource: kind,
                    kind: ConceptKind::Procedure,
                    status: procedure.status.as_deref(),
                    day,
                };
                self.import_event(event, codes, display, 0);
            }
            "Immunization" => {
                let immunization: Immunization =
                    serde_path_to_error::deserialize(resource).map_err(malformed)?;
                let given = first_date(&[
                    immunization.occurrence_date_time.as_ref(),
                    immunization.recorded.as_ref(),
                ]);
                let day = given.map(|text| date(text, "occurrence")).transpose()?;
                let (codes, display) = known_codes(&immunization.vaccine_code);
                let event = Event {
                    entry: index,
                    resource: kind,
                    kind: ConceptKind::Immunization,
                    status: immunization.status.as_deref(),
                    day,
                };
                self.import_event(event, codes, display, 0);
            }
            "AllergyIntolerance" => {
                let allergy: AllergyIntolerance =
                    serde_path_to_error::deserialize(resource).map_err(malformed)?;
                let noted = first_date(&[
                    allergy.onset_date_time.as_ref(),
                    allergy.recorded_date.as_ref(),
                ]);
                let day = noted.map(|text| date(text, "onset")).transpose()?;
                let (codes, display) = known_codes(&allergy.code);
                let active = !matches!(
                    status_code(allergy.clinical_status.as_ref()),
                    Some("inactive" | "resolved")
                );
                let event = Event {
                    entry: index,
                    resource: kind,
                    kind: ConceptKind::Allergy,
                    status: status_code(allergy.verification_status.as_ref()),
                    day,
                };
                self.import_event(event, codes, display, i64::from(active));
            }
            _ => {
                let medication: Medication =
                    serde_path_to_error::deserialize(resource).map_err(malformed)?;
                let when = first_date(&[
                    medication.authored_on.as_ref(),
                    medication.effective_date_time.as_ref(),
                    period_start(medication.effective_period.as_ref()),
                    medication.date_asserted.as_ref(),
                ]);
                let day = when
                    .map(|text| date(text, "authoredOn/effective"))
                    .transpose()?;
                self.import_medication(index, kind, &medication, day);
            }
        }
        Ok(())
    }

    fn skip(
        &mut self,
        entry: usize,
        resource: &'static str,
        codes: &[Code],
        display: Option<String>,
        reason: String,
    ) {
        let code = codes.first().map(Code::to_string);
        self.report.skipped.push(SkippedEntry {
            entry,
            resource,
            code,
            display,
            reason,
        });
    }

    fn concepts_of_kind(&self, codes: &[Code], kinds: &[ConceptKind]) -> Vec<SlotIndex> {
        let mut found: Vec<SlotIndex> = Vec::new();
        for code in codes {
            for index in self.catalog.concepts_for_code(code) {
                if kinds.contains(&self.catalog.concept(index).kind) && !found.contains(&index) {
                    found.push(index);
                }
            }
        }
        found
    }

    /// Records `value` on `day` in `slots`; the report names the first of `codes`
    /// that maps to one of them.
    fn record(
        &mut self,
        entry: usize,
        resource: &'static str,
        codes: &[Code],
        slots: &[SlotIndex],
        day: Day,
        value: i64,
    ) {
        let catalog = self.catalog;
        let code = codes
            .iter()
            .find(|code| {
                catalog
                    .concepts_for_code(code)
                    .iter()
                    .any(|slot| slots.contains(slot))
            })
            .or(codes.first())
            .map(Code::to_string)
            .unwrap_or_default();
        for slot in slots {
            if self.counted.insert((*slot, day)) {
                self.summary.slot_mut(*slot).record(day, value);
            } else {
                self.summary.slot_mut(*slot).record_same_day(day, value);
            }
        }
        let concepts = slots
            .iter()
            .map(|slot| self.catalog.concept(*slot).id.clone())
            .collect();
        self.report.mapped.push(MappedEntry {
            entry,
            resource,
            code,
            concepts,
            ingredients: Vec::new(),
            day,
        });
    }

    fn import_patient(
        &mut self,
        patient: &Patient,
        birth_date: Option<Day>,
        deceased: Option<Day>,
    ) {
        let death_slot = self.catalog.special(ConceptKind::Death);
        let is_deceased = deceased.is_some() || patient.deceased_boolean == Some(true);
        match deceased {
            Some(died) => {
                self.summary.slot_mut(death_slot).record(died, 0);
                self.report
                    .warnings
                    .push(format!("the patient died on {died}"));
            }
            None if is_deceased => {
                // Dead on an unknown day: the earliest day, so no index date finds the
                // patient alive.
                self.summary.slot_mut(death_slot).record(DAY_MIN, 0);
                self.report.warnings.push(
                    "the patient died on an unrecorded day: `alive` fails for every index date"
                        .into(),
                );
            }
            None => {}
        }
        if let Some(born) = birth_date {
            let slot = self.catalog.special(ConceptKind::BirthDate);
            self.summary.slot_mut(slot).record(born, 0);
        } else {
            self.report
                .warnings
                .push("the Patient has no birthDate: age clauses cannot hold".into());
        }
        let sex_slot = self.catalog.special(ConceptKind::Sex);
        let sex_concept = self.catalog.concept(sex_slot);
        match patient.gender.as_deref() {
            Some(gender) => {
                let code = Code::new(CodeSystem::FhirGender, gender);
                match sex_concept
                    .answers
                    .iter()
                    .find(|answer| answer.codes.contains(&code))
                {
                    Some(answer) => {
                        let value = answer.value;
                        self.summary.slot_mut(sex_slot).record(Day(0), value);
                    }
                    None => self
                        .report
                        .warnings
                        .push(format!("unknown gender {gender:?}: sex stays empty")),
                }
            }
            None => self
                .report
                .warnings
                .push("the Patient has no gender: sex stays empty".into()),
        }
        self.report.patient = Some(PatientFacts {
            id: patient.id.clone(),
            birth_date,
            sex: patient.gender.clone(),
            deceased,
            is_deceased,
        });
    }

    /// A procedure, immunization or allergy: one dated, coded entry.
    fn import_event(
        &mut self,
        event: Event<'_>,
        codes: Vec<Code>,
        display: Option<String>,
        value: i64,
    ) {
        let Event {
            entry,
            resource,
            kind,
            status,
            day,
        } = event;
        if let Some(status @ ("entered-in-error" | "not-done" | "refuted")) = status {
            return self.skip(entry, resource, &codes, display, format!("status {status}"));
        }
        let Some(day) = day else {
            return self.skip(entry, resource, &codes, display, "no date".into());
        };
        let slots = self.concepts_of_kind(&codes, &[kind]);
        if slots.is_empty() {
            return self.skip(
                entry,
                resource,
                &codes,
                display,
                "no catalog concept for this code".into(),
            );
        }
        self.record(entry, resource, &codes, &slots, day, value);
    }

    fn import_condition(&mut self, entry: usize, condition: &Condition, day: Option<Day>) {
        let (codes, display) = known_codes(&condition.code);
        let verification = status_code(condition.verification_status.as_ref());
        if let Some(status @ ("entered-in-error" | "refuted")) = verification {
            return self.skip(
                entry,
                "Condition",
                &codes,
                display,
                format!("verification status {status}"),
            );
        }
        let slots = self.concepts_of_kind(&codes, &[ConceptKind::Condition]);
        let Some(day) = day else {
            return self.skip(
                entry,
                "Condition",
                &codes,
                display,
                "no onset or recorded date".into(),
            );
        };
        if slots.is_empty() {
            return self.skip(
                entry,
                "Condition",
                &codes,
                display,
                "no catalog concept for this code".into(),
            );
        }
        let clinical = status_code(condition.clinical_status.as_ref());
        let resolved = condition.abatement_date_time.is_some()
            || matches!(clinical, Some("resolved" | "inactive" | "remission"));
        self.record(
            entry,
            "Condition",
            &codes,
            &slots,
            day,
            i64::from(!resolved),
        );
    }

    fn import_observation(&mut self, entry: usize, observation: &Observation, day: Option<Day>) {
        let (codes, display) = known_codes(&observation.code);
        if let Some(status @ ("entered-in-error" | "cancelled")) = observation.status.as_deref() {
            return self.skip(
                entry,
                "Observation",
                &codes,
                display,
                format!("status {status}"),
            );
        }
        let Some(day) = day else {
            return self.skip(
                entry,
                "Observation",
                &codes,
                display,
                "no effective date".into(),
            );
        };
        let has_components = !observation.component.is_empty();
        let own_value =
            observation.value_quantity.is_some() || observation.value_codeable_concept.is_some();
        if own_value || !has_components {
            self.import_measurement(
                entry,
                codes,
                display,
                observation.value_quantity.as_ref(),
                observation.value_codeable_concept.as_ref(),
                day,
            );
        }
        for component in &observation.component {
            let (codes, display) = known_codes(&component.code);
            self.import_measurement(
                entry,
                codes,
                display,
                component.value_quantity.as_ref(),
                component.value_codeable_concept.as_ref(),
                day,
            );
        }
    }

    fn import_measurement(
        &mut self,
        entry: usize,
        codes: Vec<Code>,
        display: Option<String>,
        quantity: Option<&Quantity>,
        coded: Option<&CodeableConcept>,
        day: Day,
    ) {
        const OBSERVATION: &str = "Observation";
        let smoking = self.concepts_of_kind(&codes, &[ConceptKind::SmokingStatus]);
        if let Some(&slot) = smoking.first() {
            let answer_codes = coded
                .map(known_codes)
                .map(|(answer_codes, _)| answer_codes)
                .unwrap_or_default();
            let concept = self.catalog.concept(slot);
            let answer = concept
                .answers
                .iter()
                .find(|answer| answer_codes.iter().any(|code| answer.codes.contains(code)));
            return match answer {
                Some(answer) => {
                    let value = answer.value;
                    self.record(entry, OBSERVATION, &codes, &[slot], day, value);
                }
                None => self.skip(
                    entry,
                    OBSERVATION,
                    &codes,
                    display,
                    "smoking status answer not in the catalog".into(),
                ),
            };
        }
        let labs = self.concepts_of_kind(&codes, &[ConceptKind::Lab]);
        let Some(&slot) = labs.first() else {
            return self.skip(
                entry,
                OBSERVATION,
                &codes,
                display,
                "no catalog concept for this code".into(),
            );
        };
        let concept = self.catalog.concept(slot);
        let lab = concept.lab().expect("lab concepts have lab fields");
        let Some(quantity) = quantity else {
            return self.skip(
                entry,
                OBSERVATION,
                &codes,
                display,
                "no valueQuantity".into(),
            );
        };
        let Some(value) = quantity.value else {
            return self.skip(
                entry,
                OBSERVATION,
                &codes,
                display,
                "valueQuantity has no value".into(),
            );
        };
        let Some(reported) = Exact::from_f64(value) else {
            let reason = format!("value {value} is not a finite number");
            return self.skip(entry, OBSERVATION, &codes, display, reason);
        };
        let code = codes
            .iter()
            .find(|code| self.catalog.concepts_for_code(code).contains(&slot))
            .expect("the slot was found from one of the codes");
        let written = [quantity.code.as_deref(), quantity.unit.as_deref()];
        let written = written.iter().flatten().next().copied();
        let conversion = match written {
            Some(_) => [quantity.code.as_deref(), quantity.unit.as_deref()]
                .iter()
                .flatten()
                .find_map(|unit| lab.conversion(unit)),
            None => {
                // The LOINC code fixes the property, and so the unit, of its values.
                let unit = lab.implied_unit(code);
                self.report.warnings.push(format!(
                    "entry[{entry}] {code}: no unit; read in {unit}, the unit the code implies"
                ));
                lab.conversion(unit)
            }
        };
        let Some(conversion) = conversion else {
            let reason = format!(
                "unit {} cannot be converted to {} for {}",
                written.unwrap_or("none"),
                lab.unit,
                concept.id
            );
            return self.skip(entry, OBSERVATION, &codes, display, reason);
        };
        if conversion.variant_spelling {
            self.report.warnings.push(format!(
                "entry[{entry}] {code}: unit {} read as {}, the unit the code implies",
                conversion.unit, lab.unit
            ));
        }
        let canonical = conversion.apply(reported);
        let Some(fixed) = canonical.and_then(|canonical| lab.to_stored(canonical)) else {
            let reason = format!(
                "value {} {} is outside the plausible range for {}",
                canonical.map_or_else(|| value.to_string(), |canonical| canonical.to_string()),
                lab.unit,
                concept.id
            );
            return self.skip(entry, OBSERVATION, &codes, display, reason);
        };
        self.record(entry, OBSERVATION, &codes, &[slot], day, fixed);
    }

    fn import_medication(
        &mut self,
        entry: usize,
        resource: &'static str,
        medication: &Medication,
        day: Option<Day>,
    ) {
        let Some(concept) = &medication.medication_codeable_concept else {
            let reason = "no medicationCodeableConcept (references to Medication resources are not followed)".into();
            return self.skip(entry, resource, &[], None, reason);
        };
        let (codes, display) = known_codes(concept);
        if let Some(status @ ("entered-in-error" | "cancelled" | "draft")) =
            medication.status.as_deref()
        {
            return self.skip(entry, resource, &codes, display, format!("status {status}"));
        }
        let Some(day) = day else {
            return self.skip(
                entry,
                resource,
                &codes,
                display,
                "no authored or effective date".into(),
            );
        };
        let catalog = self.catalog;
        let texts = [display.as_deref(), concept.text.as_deref()];
        let ingredients = catalog
            .ingredients()
            .of_drug(&codes, texts.into_iter().flatten());
        let mut slots = self.concepts_of_kind(&codes, &[ConceptKind::Medication]);
        for slot in catalog.concepts_for_ingredients(&ingredients) {
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
        if slots.is_empty() {
            let name = display
                .as_deref()
                .or(concept.text.as_deref())
                .unwrap_or("a drug with no name");
            let reason = if ingredients.is_empty() {
                format!("{name}: no catalog ingredient or class for this drug")
            } else {
                let names: Vec<&str> = ingredients.iter().map(|i| i.name.as_str()).collect();
                format!(
                    "{name}: its ingredients ({}) are in no catalog class",
                    names.join(", ")
                )
            };
            return self.skip(entry, resource, &codes, display, reason);
        }
        // A dead patient takes nothing, whatever status the prescription was left in.
        let deceased = self
            .report
            .patient
            .as_ref()
            .is_some_and(|patient| patient.is_deceased);
        let active = medication.status.as_deref() == Some("active") && !deceased;
        self.record(entry, resource, &codes, &slots, day, i64::from(active));
        if let Some(mapped) = self.report.mapped.last_mut() {
            mapped.ingredients = ingredients.iter().map(|i| i.name.clone()).collect();
        }
    }
}
