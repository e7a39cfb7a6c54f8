//! `GET /studies/{id}/bundle`: a study's bundle for offline verification
//! (`zkcohort-verify BUNDLE`). Anyone may fetch it: it holds nothing the
//! audit log and the study listing do not already publish.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use zkcohort_verifier::StudyBundle;

use super::extract::ApiPath;
use super::{ApiError, AppState};
use crate::bundle::BundleContext;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/studies/{id}/bundle", get(bundle))
}

async fn bundle(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<StudyBundle>, ApiError> {
    state
        .blocking(move |state| {
            let config = state.config();
            let context = BundleContext {
                audit_key: &config.audit_key,
                clauses: config.clauses,
                slot_depth: config.slot_depth,
                verifying_key: &config.verifying_key.vk,
            };
            Ok(state.store().study_bundle(id, &context)?)
        })
        .await
        .map(Json)
}
