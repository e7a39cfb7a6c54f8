//! Reward-note routes: anyone reads the note tree (its state, leaves, roots and spent
//! nullifiers, which wallets download whole so no request singles out a note), and
//! `POST /notes/transfer` spends two notes into two with a withdrawal, on a note-transfer
//! proof.
//!
//! The server never trusts the client's statement: it rebuilds it from the body's root,
//! nullifiers, outputs and withdrawal and from the recipient and its own key (the
//! withdrawal binding), verifies the proof against the note circuit's key on the blocking
//! pool, then spends, appends and pays in one store transaction, flushed before the answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zkcohort_circuits::note::{withdrawal_binding, TransferStatement, NOTE_TREE_DEPTH};
use zkcohort_circuits::statement::fr_to_bytes;
use zkcohort_circuits::Fr;

use super::extract::{field, key_from_hex, ApiJson, ApiQuery};
use super::{ApiError, AppState, ErrorBody, Page};
use crate::api::NoteTransferRequest;
use crate::{NoteTransfer, NoteTransferOrder, RootRecord};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tree))
        .routes(routes!(leaves))
        .routes(routes!(roots))
        .routes(routes!(spent))
        .routes(routes!(transfer))
}

/// The answer of `GET /notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoteTreeState {
    /// The tree depth.
    pub depth: usize,
    /// The number of notes appended.
    pub leaf_count: u64,
    /// The current root, `null` while the tree is empty.
    pub root: Option<RootRecord>,
    /// The number of note nullifiers spent.
    pub spent: u64,
}

#[utoipa::path(get, path = "/notes", operation_id = "note_tree", tag = "notes",
    responses((status = 200, description = "the note tree's size, current root and spent count", body = NoteTreeState), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn tree(State(state): State<AppState>) -> Result<Json<NoteTreeState>, ApiError> {
    state
        .blocking(|state| {
            let store = state.store();
            let root = store.note_root()?;
            Ok(NoteTreeState {
                depth: NOTE_TREE_DEPTH,
                leaf_count: root.map_or(0, |root| root.leaf_count),
                root,
                spent: store.spent_note_count()?,
            })
        })
        .await
        .map(Json)
}

#[utoipa::path(get, path = "/notes/leaves", operation_id = "list_note_leaves", tag = "notes", params(Page),
    responses((status = 200, description = "note commitments, hex, from index `start`", body = Vec<String>), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn leaves(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<String>>, ApiError> {
    let leaves = state
        .blocking(move |state| Ok(state.store().note_leaves(page.start, page.limit())?))
        .await?;
    Ok(Json(leaves.iter().map(hex::encode).collect()))
}

#[utoipa::path(get, path = "/notes/roots", operation_id = "list_note_roots", tag = "notes", params(Page),
    responses((status = 200, description = "the note tree's root history (every root stays acceptable)", body = Vec<RootRecord>), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn roots(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<RootRecord>>, ApiError> {
    state
        .blocking(move |state| Ok(state.store().note_root_history(page.start, page.limit())?))
        .await
        .map(Json)
}

#[utoipa::path(get, path = "/notes/spent", operation_id = "list_spent_note_nullifiers", tag = "notes", params(Page),
    responses((status = 200, description = "spent note nullifiers, hex, in the order they were spent", body = Vec<String>), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn spent(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<String>>, ApiError> {
    let spent = state
        .blocking(move |state| {
            Ok(state
                .store()
                .spent_note_nullifiers(page.start, page.limit())?)
        })
        .await?;
    Ok(Json(spent.iter().map(hex::encode).collect()))
}

/// Two field elements, or a 422 naming the field.
fn pair(texts: &[String], what: &str) -> Result<[Fr; 2], ApiError> {
    match texts {
        [first, second] => Ok([field(first, what)?, field(second, what)?]),
        _ => Err(ApiError::unprocessable(
            "invalid_transfer",
            format!("{what}: expected exactly two values, got {}", texts.len()),
        )),
    }
}

#[utoipa::path(post, path = "/notes/transfer", operation_id = "transfer_notes", tag = "notes",
    request_body = NoteTransferRequest,
    responses((status = 201, description = "the notes were spent, the outputs appended and the withdrawal paid", body = NoteTransfer), (status = "4XX", description = "refused: the API error shape", body = ErrorBody)))]
async fn transfer(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NoteTransferRequest>,
) -> Result<(StatusCode, Json<NoteTransfer>), ApiError> {
    let note_root = field(&body.note_root, "note_root")?;
    let nullifiers = pair(&body.nullifiers, "nullifiers")?;
    let outputs = pair(&body.outputs, "outputs")?;
    let recipient = key_from_hex(&body.recipient, "recipient")?;
    let root_bytes = fr_to_bytes(&note_root);
    let nullifier_bytes = nullifiers.map(|nullifier| fr_to_bytes(&nullifier));

    // Cheap checks first, so a replay or an unknown root costs no pairing. The store
    // checks them again inside the transaction.
    state
        .blocking(move |state| {
            let store = state.store();
            if store.note_root_record(&root_bytes)?.is_none() {
                return Err(crate::StoreError::UnknownNoteRoot.into());
            }
            for nullifier in &nullifier_bytes {
                if store.is_note_spent(nullifier)? {
                    return Err(crate::StoreError::NoteSpent {
                        nullifier: hex::encode(nullifier)[..12].to_string(),
                    }
                    .into());
                }
            }
            Ok(())
        })
        .await?;

    let statement = TransferStatement {
        note_root,
        nullifiers,
        outputs,
        withdrawal: body.withdrawal,
        withdrawal_binding: withdrawal_binding(&recipient, &state.marketplace_key()),
    };
    let canonical_proof = AppState::verified_proof(body.proof, "this transfer", |proof| {
        state.blocking(move |state| {
            zkcohort_verifier::verify::verify_transfer(
                &state.config().note_verifying_key,
                &statement,
                &proof,
            )
            .map_err(ApiError::internal)
        })
    })
    .await?;
    let order = NoteTransferOrder {
        note_root: root_bytes,
        nullifiers: nullifier_bytes,
        outputs: outputs.map(|output| fr_to_bytes(&output)),
        withdrawal: body.withdrawal,
        recipient,
        proof: canonical_proof,
        public_inputs: statement.to_decimal_strings(),
    };
    let transfer = state
        .blocking(move |state| {
            let transfer = state.store().transfer_notes(&order)?;
            state.store().flush()?;
            Ok(transfer)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(transfer)))
}
