//! Small JSON endpoints: the file list, the counters, the health check.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;

use super::{access, AppState};

/// `GET /api/files`: every configured file.
pub async fn files(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    access::check_token(&req, &state)?;
    Ok(HttpResponse::Ok().json(state.hub.files()))
}

/// `GET /api/stats`: the counters.
pub async fn stats(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    access::check_token(&req, &state)?;
    Ok(HttpResponse::Ok().json(state.stats.snapshot()))
}

/// `GET /healthz`: 200 while the server runs (no token needed).
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok\n")
}
