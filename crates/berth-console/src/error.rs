//! What a page can fail with, shown as a page (or a JSON error for script calls).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::html;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// berth refused or failed the call the page made.
    #[error(transparent)]
    Api(#[from] berth_client::ClientError),
    /// A change without a valid CSRF token or from another origin.
    #[error("this change did not come from the console's own page (CSRF check failed); reload the page and retry")]
    Csrf,
    /// A form value that cannot be used.
    #[error("{0}")]
    BadInput(String),
    /// Something the page asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The console itself failed (no randomness, a bad certificate).
    #[error("{0}")]
    Internal(String),
}

impl ConsoleError {
    /// The HTTP status the page answers with: 403 for AccessDenied, else what berth said.
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::Api(berth_client::ClientError::Api { code, status, .. }) => {
                if is_access_denied(code) {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::from_u16(*status)
                        .ok()
                        .filter(|s| s.is_client_error() || s.is_server_error())
                        .unwrap_or(StatusCode::BAD_GATEWAY)
                }
            }
            ConsoleError::Api(berth_client::ClientError::Transport { .. }) => StatusCode::BAD_GATEWAY,
            ConsoleError::Api(_) => StatusCode::BAD_GATEWAY,
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::BadInput(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The AWS error code, for an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ConsoleError::Api(e) => e.code(),
            _ => None,
        }
    }

    /// A JSON answer for the page's script (`{"error": {"code", "message"}}`).
    pub fn into_json(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({"error": {"code": self.code(), "message": self.message()}});
        (status, Json(body)).into_response()
    }

    /// What the user reads.
    pub fn message(&self) -> String {
        match self {
            ConsoleError::Api(berth_client::ClientError::Api { message, .. }) => message.clone(),
            other => other.to_string(),
        }
    }
}

/// AWS's denial codes.
pub fn is_access_denied(code: &str) -> bool {
    matches!(code, "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "UnauthorizedAccess")
}

/// The alert box showing an error (the code when berth gave one, and its message).
pub fn alert(error: &ConsoleError) -> maud::Markup {
    html! {
        div.error role="alert" {
            @if let Some(code) = error.code() { strong.error-code { (code) } ": " }
            (error.message())
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "console page failed");
        }
        let title = match &self {
            ConsoleError::Csrf => "Request refused",
            ConsoleError::NotFound(_) => "Not found",
            _ if status == StatusCode::FORBIDDEN => "Access denied",
            _ => "Something went wrong",
        };
        let body = html! {
            h1 { (title) }
            (alert(&self))
            p { a href="/" { "Back to services" } }
        };
        (status, crate::layout::page(None, title, body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_client::ClientError;

    fn api(code: &str, status: u16) -> ConsoleError {
        ConsoleError::Api(ClientError::Api { code: code.into(), message: "m".into(), status, request_id: None })
    }

    #[test]
    fn statuses() {
        assert_eq!(api("AccessDenied", 403).status(), StatusCode::FORBIDDEN);
        assert_eq!(api("AccessDeniedException", 400).status(), StatusCode::FORBIDDEN);
        assert_eq!(api("InvalidParameterException", 400).status(), StatusCode::BAD_REQUEST);
        assert_eq!(api("ServiceNotFoundException", 400).status(), StatusCode::BAD_REQUEST);
        assert_eq!(api("Weird", 200).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(ConsoleError::Csrf.status(), StatusCode::FORBIDDEN);
        assert_eq!(ConsoleError::BadInput("x".into()).status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn alert_shows_code_and_message() {
        let html = alert(&api("AccessDenied", 403)).into_string();
        assert!(html.contains(r#"role="alert""#) && html.contains(r#"class="error""#), "{html}");
        assert!(html.contains("AccessDenied") && html.contains(">m<") || html.contains(": m"), "{html}");
    }
}
