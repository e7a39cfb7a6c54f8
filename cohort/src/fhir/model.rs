//! Serde models of the few FHIR R4 resources the importer reads. Unknown fields are
//! ignored (real bundles carry many); fields we read must have the right shape.

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Bundle {
    pub(super) resource_type: String,
    #[serde(default)]
    pub(super) entry: Vec<Entry>,
}

#[derive(Deserialize)]
pub(super) struct Entry {
    pub(super) resource: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
pub(super) struct CodeableConcept {
    #[serde(default)]
    pub(super) coding: Vec<Coding>,
    pub(super) text: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Coding {
    pub(super) system: Option<String>,
    pub(super) code: Option<String>,
    pub(super) display: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Period {
    pub(super) start: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Quantity {
    pub(super) value: Option<f64>,
    pub(super) unit: Option<String>,
    pub(super) code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Patient {
    pub(super) id: Option<String>,
    pub(super) birth_date: Option<String>,
    pub(super) gender: Option<String>,
    pub(super) deceased_date_time: Option<String>,
    pub(super) deceased_boolean: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Condition {
    pub(super) code: CodeableConcept,
    pub(super) clinical_status: Option<CodeableConcept>,
    pub(super) verification_status: Option<CodeableConcept>,
    pub(super) onset_date_time: Option<String>,
    pub(super) onset_period: Option<Period>,
    pub(super) recorded_date: Option<String>,
    pub(super) abatement_date_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Observation {
    pub(super) status: Option<String>,
    pub(super) code: CodeableConcept,
    pub(super) effective_date_time: Option<String>,
    pub(super) effective_period: Option<Period>,
    pub(super) issued: Option<String>,
    pub(super) value_quantity: Option<Quantity>,
    pub(super) value_codeable_concept: Option<CodeableConcept>,
    #[serde(default)]
    pub(super) component: Vec<ObservationComponent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ObservationComponent {
    pub(super) code: CodeableConcept,
    pub(super) value_quantity: Option<Quantity>,
    pub(super) value_codeable_concept: Option<CodeableConcept>,
}

/// MedicationRequest and MedicationStatement share what we read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Medication {
    pub(super) status: Option<String>,
    pub(super) medication_codeable_concept: Option<CodeableConcept>,
    pub(super) authored_on: Option<String>,
    pub(super) effective_date_time: Option<String>,
    pub(super) effective_period: Option<Period>,
    pub(super) date_asserted: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Procedure {
    pub(super) status: Option<String>,
    pub(super) code: CodeableConcept,
    pub(super) performed_date_time: Option<String>,
    pub(super) performed_period: Option<Period>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Immunization {
    pub(super) status: Option<String>,
    pub(super) vaccine_code: CodeableConcept,
    pub(super) occurrence_date_time: Option<String>,
    pub(super) recorded: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AllergyIntolerance {
    pub(super) code: CodeableConcept,
    pub(super) clinical_status: Option<CodeableConcept>,
    pub(super) verification_status: Option<CodeableConcept>,
    pub(super) onset_date_time: Option<String>,
    pub(super) recorded_date: Option<String>,
}
