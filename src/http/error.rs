//! Errors before a stream opens: the ErrorInfo's status with body `{"error": ErrorInfo}`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::wire::envelope::ErrorInfo;

#[derive(Debug)]
pub struct ApiError(pub ErrorInfo);

impl From<ErrorInfo> for ApiError {
    fn from(info: ErrorInfo) -> Self {
        ApiError(info)
    }
}

/// A route's path parameters, like axum's `Path`, but a path whose segments cannot be decoded
/// (most often: not UTF-8 once percent-decoded) gets an ErrorInfo, not axum's plain text.
pub struct Segments<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(segments) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Segments(segments))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ErrorInfo::bad_request(format!(
            "{}; a name in the path is its UTF-8 bytes, percent-encoded",
            rejection.body_text()
        ))
        .into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::debug!(code = self.0.code, message = %self.0.message, "request refused");
        let status =
            StatusCode::from_u16(self.0.status_code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(serde_json::json!({ "error": self.0 }))).into_response();
        // Unavailable for now (the bus is unreachable): worth trying again soon.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let again = axum::http::HeaderValue::from_static("1");
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, again);
        }
        response
    }
}
