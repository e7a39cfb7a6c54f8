//! `GET /studies/{id}/bundle`: a study's bundle for offline verification
//! (`zkcohort-verify BUNDLE`). Anyone may fetch it: it holds nothing the
//! audit log and the study listing do not already publish.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkcohort_verifier::StudyBundle;

use super::extract::ApiPath;
use super::{ApiError, AppState, ErrorBody};
use crate::bundle::BundleContext;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(bundle))
}

#[utoipa::path(get, path = "/studies/{id}/bundle", tag = "studies",
    params(("id" = u64, Path, description = "the study id")),
    responses((status = 200, description = "the study bundle (zkcohort_verifier::StudyBundle, format 3: the study's whole audit chain under a head signed with the study's latest entry)", body = Object), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn bundle(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<StudyBundle>, ApiError> {
    state
        .blocking(move |state| {
            let config = state.config();
            let context = BundleContext {
                audit_key: &config.audit_key,
                shape: config.shape,
                verifying_key: &config.verifying_key.vk,
                setup: config.setup,
            };
            Ok(state.store().study_bundle(id, &context)?)
        })
        .await
        .map(Json)
}
