//! The one place where failures become FusionAuth statuses and bodies.

use http::StatusCode;

use super::form::FormError;
use super::wire::Errors;
use super::{empty_response, json_response, HttpResponse};
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::flows::FlowError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request")]
    BadRequest(ValidationErrors),
    #[error("unauthorized")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("user expired")]
    Gone,
    #[error("user locked")]
    Locked,
    #[error("too many requests")]
    TooManyRequests,
    /// FusionAuth's 403 for a feature that is turned off, with an empty body.
    #[error("forbidden")]
    Forbidden,
    /// FusionAuth's 421 for a wrong two-factor code, with an empty body.
    #[error("invalid two-factor code")]
    TwoFactorCodeWrong,
    /// Logged with the request id and the chain of errors behind it; the caller learns
    /// nothing internal.
    #[error("internal error: {0}")]
    Internal(#[source] Internal),
}

/// What went wrong on our side: a message, and the error behind it when there is one, kept so
/// that the log shows the whole chain (a store's SDK error under the flow's).
#[derive(Debug)]
pub struct Internal {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Internal {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn caused_by(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// The message and each error below it, joined by ": ", once each (a wrapper that shows
    /// its source in its own message is not repeated).
    pub fn chain(&self) -> String {
        let mut chain = self.message.clone();
        let mut next = std::error::Error::source(self);
        while let Some(error) = next {
            let text = error.to_string();
            if !chain.ends_with(&text) {
                chain.push_str(": ");
                chain.push_str(&text);
            }
            next = error.source();
        }
        chain
    }
}

impl std::fmt::Display for Internal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Internal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A query string an API endpoint could not read: each field's problem in FusionAuth's shape.
impl From<FormError> for ApiError {
    fn from(error: FormError) -> Self {
        let field = match error {
            FormError::Repeated(name) => {
                FieldError::invalid(&name, format!("[{name}] appears more than once."))
            }
            FormError::Missing(name) => FieldError::missing(name),
            FormError::Invalid { field, expected } => {
                FieldError::invalid(&field, format!("[{field}] must be {expected}."))
            }
            FormError::Unknown(name) => FieldError::invalid(
                &name,
                format!("[{name}] is not a parameter of this request."),
            ),
            FormError::Malformed(detail) => FieldError::invalid("query", detail),
        };
        ApiError::field(field)
    }
}

impl ApiError {
    pub fn field(error: FieldError) -> Self {
        ApiError::BadRequest(ValidationErrors::field(error))
    }

    /// A server error with no error behind it.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal(Internal::new(message))
    }

    pub fn body_too_large() -> Self {
        ApiError::field(FieldError::new(
            "tooLarge",
            "body",
            format!(
                "The request body is larger than {} bytes.",
                super::MAX_BODY_BYTES
            ),
        ))
    }

    pub fn into_response(self, request_id: &str) -> HttpResponse {
        match self {
            ApiError::BadRequest(errors) => {
                json_response(StatusCode::BAD_REQUEST, &Errors::of(&errors))
            }
            ApiError::Unauthorized => empty_response(StatusCode::UNAUTHORIZED),
            ApiError::Forbidden => empty_response(StatusCode::FORBIDDEN),
            ApiError::TwoFactorCodeWrong => {
                empty_response(StatusCode::from_u16(421).unwrap_or(StatusCode::BAD_REQUEST))
            }
            ApiError::NotFound => empty_response(StatusCode::NOT_FOUND),
            ApiError::MethodNotAllowed => empty_response(StatusCode::METHOD_NOT_ALLOWED),
            ApiError::Gone => empty_response(StatusCode::GONE),
            ApiError::Locked => empty_response(StatusCode::LOCKED),
            ApiError::TooManyRequests => json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &Errors::general("[RateLimited]", "Too many requests. Try again later."),
            ),
            ApiError::Internal(_) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &Errors::general(
                    "[Exception]",
                    &format!("An unexpected error occurred. Request id {request_id}."),
                ),
            ),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::BadRequest(errors)
    }
}

impl From<FlowError> for ApiError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::Invalid(errors) => ApiError::BadRequest(errors),
            FlowError::NotFound => ApiError::NotFound,
            FlowError::WrongOneTimeCode { missing: true } => {
                ApiError::field(FieldError::blank("oneTimeCode"))
            }
            FlowError::WrongOneTimeCode { missing: false } => ApiError::field(FieldError::invalid(
                "oneTimeCode",
                "The one-time code is not the one sent with this code.",
            )),
            FlowError::Unauthorized => ApiError::Unauthorized,
            FlowError::UserLocked => ApiError::Locked,
            FlowError::UserExpired => ApiError::Gone,
            FlowError::RateLimited => ApiError::TooManyRequests,
            FlowError::Disabled => ApiError::Forbidden,
            FlowError::TwoFactorCodeWrong => ApiError::TwoFactorCodeWrong,
            other => ApiError::Internal(Internal::caused_by(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::StoreError;

    #[test]
    fn a_server_error_keeps_the_errors_behind_it_for_the_log() {
        let error = ApiError::from(FlowError::Store(StoreError::Unavailable(
            "ConditionalCheckFailed on codes".into(),
        )));
        let ApiError::Internal(internal) = &error else {
            panic!("a store failure is a server error: {error:?}");
        };
        assert!(
            internal.chain().contains("ConditionalCheckFailed on codes"),
            "{}",
            internal.chain()
        );
        assert!(std::error::Error::source(&error).is_some());
    }
}
