//! zkcohort-market: the marketplace server (axum over sled): studies, registry,
//! anonymous enrollment, token ledger, DP releases and the audit log. Filled by the
//! marketplace issue; the crate exists now so the workspace layout is complete.
