//! `POST /admin/import/asyncapi`: the relays of an AsyncAPI document (JSON, 2.x or 3.0;
//! see `config::asyncapi_import`), added to the catalog as one change, validated as a
//! whole: all of them, or none (a relay of the same name is a conflict). The answer lists
//! the relays as the admin API shows them, and what was skipped and why.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Admitted, Kind, add};
use crate::config::asyncapi_import;
use crate::http::{ApiError, AppState};
use crate::wire::envelope::ErrorInfo;

pub async fn asyncapi(
    State(state): State<AppState>,
    _: Admitted,
    body: Bytes,
) -> Result<Response, ApiError> {
    let document: Value = serde_json::from_slice(&body).map_err(|e| {
        ErrorInfo::bad_request(format!(
            "the body is not JSON ({e}): send the AsyncAPI document as JSON"
        ))
    })?;
    let imported = asyncapi_import::relays(&document).map_err(ErrorInfo::bad_request)?;
    if imported.relays.is_empty() {
        return Err(ErrorInfo::bad_request(format!(
            "nothing in the document maps to a relay: {}",
            imported.skipped.join("; ")
        ))
        .into());
    }
    let entries: Vec<Value> = imported
        .relays
        .iter()
        .map(|relay| serde_json::to_value(relay).expect("a relay always serializes"))
        .collect();
    add(&state, Kind::Relays, entries.clone()).await?;
    let shown: Vec<Value> = entries
        .into_iter()
        .map(|e| Kind::Relays.redact(e))
        .collect();
    let answer = json!({ "relays": shown, "skipped": imported.skipped });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}
