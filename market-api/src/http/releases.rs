//! Differentially private release routes: a study's researcher asks for
//! noisy enrollment counts and lists what was released and what budget is
//! left. The store draws, charges, stores and audits
//! ([`Store::release`](crate::Store::release)); every answer is flushed first.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, ApiPath};
use super::{ApiError, AppState, ErrorBody};
use crate::dp::DpError;
use crate::releases::{NewRelease, ReleaseError, StudyRelease, StudyReleases};

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
            DpError::EmptyBreakdown => Self::unprocessable("unsupported_breakdown", message),
            // The store gives OpenDP counts that fit and the measure it asked
            // for: anything else is the server's failure.
            DpError::CountTooLarge(_) | DpError::MeasureMismatch | DpError::OpenDp(_) => {
                Self::internal(message)
            }
        }
    }
}

impl From<ReleaseError> for ApiError {
    fn from(error: ReleaseError) -> Self {
        match error {
            ReleaseError::Store(error) => error.into(),
            ReleaseError::Dp(error) => error.into(),
            ReleaseError::UnsupportedBreakdown { .. } => {
                Self::unprocessable("unsupported_breakdown", error.to_string())
            }
            ReleaseError::BelowMinimumCohort { .. } => Self::new(
                axum::http::StatusCode::CONFLICT,
                "below_minimum_cohort",
                error.to_string(),
            ),
        }
    }
}

/// `POST /studies/{id}/releases`: 201 with a new release, 200 with the cached
/// one for the same request and enrollment count.
#[utoipa::path(post, path = "/studies/{id}/releases", tag = "releases",
    params(("id" = u64, Path, description = "the study id")),
    request_body(content = Object, description = "`{\"measure\": \"count\", \"epsilon\": 0.5, \"mechanism\": \"discrete_laplace\"|\"discrete_gaussian\", \"post_process\": \"none\"|\"i2b2\"}`"),
    responses((status = 201, description = "a new release (StudyRelease), its epsilon charged", body = Object), (status = 200, description = "the cached release for the same request and enrollment count, charged nothing", body = Object), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)),
    security(("api_key" = [])))]
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<NewRelease>,
) -> Result<(StatusCode, Json<StudyRelease>), ApiError> {
    let researcher = state.researcher(&headers)?;
    let request = body.into_request(id)?;
    let (release, cached) = state
        .blocking(move |state| {
            let answer = state.store().release(researcher, &request)?;
            // Also when cached: the release may be a concurrent request's whose
            // charge is not on disk yet, and an answer shown must stay paid for.
            state.store().flush()?;
            Ok(answer)
        })
        .await?;
    let status = if cached {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(release)))
}

/// `GET /studies/{id}/releases`: the study's budget and releases, for its
/// researcher.
#[utoipa::path(get, path = "/studies/{id}/releases", tag = "releases",
    params(("id" = u64, Path, description = "the study id")),
    responses((status = 200, description = "the budget and every release (StudyReleases)", body = Object), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)),
    security(("api_key" = [])))]
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<StudyReleases>, ApiError> {
    let researcher = state.researcher(&headers)?;
    state
        .blocking(move |state| {
            state.store().study_of(id, &researcher)?;
            Ok(state.store().releases(id)?)
        })
        .await
        .map(Json)
}
