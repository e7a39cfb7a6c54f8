//! Differentially private release routes: a study's researcher asks for
//! noisy statistics of the measures its enrollments proved and lists what was released and what budget is
//! left. The store draws, charges, stores and audits
//! ([`Store::release`](crate::Store::release)); every answer is flushed first.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath, Researcher};
use super::{ApiError, AppState, ErrorBody};
use crate::dp::DpError;
use crate::releases::{NewRelease, ReleaseAnswer, ReleaseError, StudyReleases};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create, list))
}

impl From<DpError> for ApiError {
    fn from(error: DpError) -> Self {
        let message = error.to_string();
        match error {
            DpError::InvalidEpsilon(_) | DpError::ChargeBelowLoss { .. } => {
                Self::unprocessable("invalid_epsilon", message)
            }
            DpError::BudgetExceeded { .. } => {
                Self::new(StatusCode::CONFLICT, "budget_exhausted", message)
            }
            // The store gives OpenDP data it built: anything else is the server's
            // failure.
            DpError::OpenDp(_) => Self::internal(message),
        }
    }
}

impl From<ReleaseError> for ApiError {
    fn from(error: ReleaseError) -> Self {
        match error {
            ReleaseError::Store(error) => error.into(),
            ReleaseError::Dp(error) => error.into(),
            ReleaseError::UnknownMeasure { .. } => {
                Self::unprocessable("unknown_measure", error.to_string())
            }
            ReleaseError::UnsuitableMeasure(_) => {
                Self::unprocessable("unsuitable_measure", error.to_string())
            }
            ReleaseError::BelowMinimumCohort { .. } => Self::new(
                StatusCode::CONFLICT,
                "below_minimum_cohort",
                error.to_string(),
            ),
        }
    }
}

/// `POST /studies/{id}/releases`: 200 with the release, fresh (charged) or the
/// cached one for the same request and settled enrollment count (free); the
/// answer looks the same either way.
#[utoipa::path(post, path = "/studies/{id}/releases", tag = "releases",
    params(("id" = u64, Path, description = "the study id")),
    request_body(content = Object, description = "`{\"statistic\": {\"histogram\": \"age\"} | {\"table\": [\"age\", \"sex\"]} | {\"sum\": \"lab hba1c latest\"}, \"epsilon\": 0.5, \"mechanism\": \"discrete_laplace\"|\"discrete_gaussian\", \"post_process\": \"none\"|\"i2b2\"}`"),
    responses((status = 200, description = "the release (ReleaseAnswer): fresh and charged to the study and the researcher, or cached for the same request and settled enrollment count and free", body = Object), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)),
    security(("api_key" = [])))]
async fn create(
    State(state): State<AppState>,
    Researcher(researcher): Researcher,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<NewRelease>,
) -> Result<Json<ReleaseAnswer>, ApiError> {
    let post_process = body.post_process;
    let request = body.into_request(id)?;
    state
        .blocking(move |state| {
            let answer = state.store().release(researcher, &request, post_process)?;
            // Also when cached: the release may be a concurrent request's whose
            // charge is not on disk yet, and an answer shown must stay paid for.
            state.store().flush()?;
            Ok(answer)
        })
        .await
        .map(Json)
}

/// `GET /studies/{id}/releases`: the study's budget and releases, for its
/// researcher.
#[utoipa::path(get, path = "/studies/{id}/releases", tag = "releases",
    params(("id" = u64, Path, description = "the study id")),
    responses((status = 200, description = "the budget and every release (StudyReleases)", body = Object), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)),
    security(("api_key" = [])))]
async fn list(
    State(state): State<AppState>,
    Researcher(researcher): Researcher,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<StudyReleases>, ApiError> {
    state
        .blocking(move |state| {
            state.store().study_of(id, &researcher)?;
            Ok(state.store().releases(id)?)
        })
        .await
        .map(Json)
}
