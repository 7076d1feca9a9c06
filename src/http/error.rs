//! A refused HTTP request ([`ApiError`]), mapped to a status and a JSON body
//! `{"error": CODE, "message": TEXT}`. Internal details are logged, never sent to clients.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::archive::ArchiveError;
use crate::protocol::ErrorBody;

/// A refused HTTP request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or wrong token.
    #[error("a valid token is required: pass ?token=... or an `Authorization: Bearer` header")]
    Unauthorized,
    /// A browser page from another site.
    #[error("origin {0} is not allowed; start tailcast with --allow-origin {0} to permit it")]
    ForbiddenOrigin(String),
    /// A loopback-only server was asked for another host (DNS rebinding).
    #[error(
        "this server listens on loopback and does not answer to host {0}; behind a reverse proxy \
         with that name, start tailcast with --allow-origin https://NAME"
    )]
    ForbiddenHost(String),
    /// The file id names no configured file.
    #[error("no file with id `{0}`; GET api/files lists the ids")]
    UnknownFile(String),
    /// A query parameter is missing or malformed.
    #[error("bad parameter `{name}`: {message}")]
    BadParam {
        /// Parameter name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A query parameter the endpoint does not know.
    #[error("unknown parameter `{name}`; known: {known}")]
    UnknownParam {
        /// The parameter as given (shortened).
        name: String,
        /// The parameters the endpoint knows, comma-separated.
        known: String,
    },
    /// A limit is reached.
    #[error("{0}")]
    Busy(String),
    /// A read of a file's past on disk failed.
    #[error(transparent)]
    Past(#[from] crate::archive::ArchiveError),
    /// The endpoint is switched off.
    #[error("{0}")]
    Disabled(&'static str),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::ForbiddenOrigin(_) => "forbidden_origin",
            ApiError::ForbiddenHost(_) => "forbidden_host",
            ApiError::UnknownFile(_) => "unknown_file",
            ApiError::BadParam { .. } => "bad_parameter",
            ApiError::UnknownParam { .. } => "unknown_parameter",
            ApiError::Busy(_) => "busy",
            ApiError::Disabled(_) => "disabled",
            ApiError::Past(e) => match e {
                ArchiveError::NotAFile(_) => "not_a_file",
                ArchiveError::Remote { .. } => "remote_file",
                ArchiveError::UnknownGeneration { .. } => "unknown_generation",
                ArchiveError::UnknownSeq { .. } => "unknown_seq",
                ArchiveError::Read { .. } => "read_failed",
                ArchiveError::Gone { .. } => "generation_gone",
                ArchiveError::Truncated { .. } => "generation_truncated",
                ArchiveError::TooSlow { .. } => "too_slow",
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::ForbiddenOrigin(_) | ApiError::ForbiddenHost(_) => StatusCode::FORBIDDEN,
            ApiError::UnknownFile(_) => StatusCode::NOT_FOUND,
            ApiError::BadParam { .. } | ApiError::UnknownParam { .. } => StatusCode::BAD_REQUEST,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Disabled(_) => StatusCode::NOT_FOUND,
            ApiError::Past(e) => match e {
                ArchiveError::NotAFile(_) | ArchiveError::Remote { .. } => StatusCode::BAD_REQUEST,
                ArchiveError::UnknownGeneration { .. }
                | ArchiveError::UnknownSeq { .. }
                | ArchiveError::Gone { .. } => StatusCode::NOT_FOUND,
                ArchiveError::Read { .. } => StatusCode::INTERNAL_SERVER_ERROR,
                ArchiveError::Truncated { .. } => StatusCode::CONFLICT,
                ArchiveError::TooSlow { .. } => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = self.to_string();
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, ApiError::Busy(_)) {
            response.insert_header(("Retry-After", "1"));
        }
        response.json(ErrorBody {
            error: self.code(),
            message: &message,
        })
    }
}
