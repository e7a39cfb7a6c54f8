//! `POST /studies/{id}/enroll`: anonymous enrollment with an eligibility proof, and
//! `GET /studies/{id}/enrollments/{nullifier}`: where one stands, for its wallet.
//!
//! The server never trusts the client's statement: it rebuilds it from the
//! study (`query_hash`, `issuers_root`), the marketplace key and study id (the
//! scope), the reward note's receiver (`signal_hash`), the client's registry root and
//! nullifier, and the hash of the measure opening (`measure_commitment`)
//! ([`Statement::for_enrollment`]),
//! verifies the Groth16 proof against it together with the proofs of the enrollments
//! that arrive at the same time ([`ProofBatcher`](super::ProofBatcher)), then holds the
//! enrollment pending (settling its study's batch if it completes one) in one store
//! transaction, flushed before the answer: 202 while it is pending, 201 once settled.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkcohort_circuits::statement::{fr_from_bytes, fr_to_bytes, EnrollmentInputs, Statement};

use super::extract::{field, ApiJson, ApiPath};
use super::{ApiError, AppState, ErrorBody};
use crate::api::EnrollRequest;
use crate::{EnrollmentStatus, ProofRecord, RootStatus, StudyStatus};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll))
        .routes(routes!(enrollment_status))
}

#[utoipa::path(post, path = "/studies/{id}/enroll", tag = "studies",
    params(("id" = u64, Path, description = "the study id")), request_body = EnrollRequest,
    responses((status = 201, description = "settled: the enrollment and its reward note", body = EnrollmentStatus), (status = 202, description = "pending until the study's batch settles", body = EnrollmentStatus), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn enroll(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<EnrollRequest>,
) -> Result<(StatusCode, Json<EnrollmentStatus>), ApiError> {
    // From here until its proof is parsed, a batch of proofs being collected waits for
    // this one; a refusal before then drops it, and no batch waits.
    let incoming = state.proof_batcher().incoming();
    let registry_root = field(&body.registry_root, "registry_root")?;
    let nullifier = field(&body.nullifier, "nullifier")?;
    let reward_receiver = field(&body.reward_receiver, "reward_receiver")?;
    let measures = state.config().shape.measures;
    if body.measure_opening.values.len() != measures {
        return Err(ApiError::unprocessable(
            "bad_measure_opening",
            format!(
                "the measure opening has {} values; the circuit has {measures} measure slots",
                body.measure_opening.values.len()
            ),
        ));
    }
    let measure_commitment = body
        .measure_opening
        .commitment()
        .map_err(|error| ApiError::unprocessable("bad_measure_opening", error.to_string()))?;
    let root_bytes = fr_to_bytes(&registry_root);
    let nullifier_bytes = fr_to_bytes(&nullifier);

    // Cheap checks first, so a replay or a stale root costs no pairing. The
    // store checks all of them again inside the transaction.
    let study = state
        .blocking(move |state| {
            let store = state.store();
            let study = store.study(id)?;
            if study.status != StudyStatus::Open {
                return Err(crate::StoreError::StudyClosed(id).into());
            }
            if study.circuit_id != state.config().circuit_id {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "circuit_mismatch",
                    "the study was posted for another circuit",
                ));
            }
            match store.root_status(&root_bytes)? {
                RootStatus::Current(_) | RootStatus::Acceptable { .. } => {}
                RootStatus::Unknown => return Err(crate::StoreError::UnknownRoot.into()),
                RootStatus::Expired(record) => {
                    return Err(ApiError::unprocessable(
                        "root_expired",
                        format!("registry root {} expired", record.seq),
                    ))
                }
            }
            if matches!(
                store.enrollment_status(id, &nullifier_bytes)?,
                Some(EnrollmentStatus::Pending { .. } | EnrollmentStatus::Settled(_))
            ) {
                return Err(crate::StoreError::DuplicateNullifier { study: id }.into());
            }
            Ok(study)
        })
        .await?;

    let statement = Statement::for_enrollment(EnrollmentInputs {
        marketplace_key: &state.marketplace_key(),
        study_id: id,
        query_hash: fr_from_bytes(&study.query_hash).map_err(ApiError::internal)?,
        issuers_root: fr_from_bytes(&study.issuers_root).map_err(ApiError::internal)?,
        registry_root,
        nullifier,
        reward_receiver,
        measure_commitment,
    });
    let public_inputs = statement.to_decimal_strings();
    let canonical_proof = AppState::verified_proof(body.proof, "this study", |proof| {
        incoming.verify(statement, proof)
    })
    .await?;

    let record = ProofRecord {
        registry_root: root_bytes,
        proof: canonical_proof,
        public_inputs,
    };
    let measure_values = body.measure_opening.values;
    let enrollment = state
        .blocking(move |state| {
            let enrollment = state.store().enroll(
                id,
                nullifier_bytes,
                fr_to_bytes(&reward_receiver),
                record,
                measure_values,
            )?;
            state.store().flush()?;
            Ok(enrollment)
        })
        .await?;
    let status = match enrollment {
        EnrollmentStatus::Settled(_) => StatusCode::CREATED,
        _ => StatusCode::ACCEPTED,
    };
    Ok((status, Json(enrollment)))
}

/// Only the nullifier's holder can ask: nothing public names a pending nullifier.
#[utoipa::path(get, path = "/studies/{id}/enrollments/{nullifier}", tag = "studies",
    params(("id" = u64, Path, description = "the study id"), ("nullifier" = String, Path, description = "the nullifier, 64 hex digits")),
    responses((status = 200, description = "pending, settled (with the enrollment) or voided (with why)", body = EnrollmentStatus), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn enrollment_status(
    State(state): State<AppState>,
    ApiPath((id, nullifier)): ApiPath<(u64, String)>,
) -> Result<Json<EnrollmentStatus>, ApiError> {
    let nullifier = fr_to_bytes(&field(&nullifier, "nullifier")?);
    state
        .blocking(move |state| {
            state
                .store()
                .enrollment_status(id, &nullifier)?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "unknown_enrollment",
                        format!("study {id} holds no enrollment with this nullifier"),
                    )
                })
        })
        .await
        .map(Json)
}
