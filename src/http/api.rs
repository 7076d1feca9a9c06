//! Small JSON endpoints: the file list, the counters, the health check.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::ApiError;

use super::{access, AppState};

/// `GET /api/files`: every configured file.
pub async fn files(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    access::check(&req, &state)?;
    super::query::only(req.query_string(), &[])?;
    Ok(HttpResponse::Ok().json(super::encode::file_infos(&state.hub)))
}

/// Memory use of one file's history.
#[derive(Serialize)]
struct HistoryUsage<'a> {
    id: &'a str,
    history_lines: usize,
    history_bytes: usize,
}

/// `GET /api/stats`: the counters, and each file's history size.
pub async fn stats(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    access::check(&req, &state)?;
    super::query::only(req.query_string(), &[])?;
    let hub = &state.hub;
    let files: Vec<_> = (0..hub.file_count())
        .map(|ix| {
            let (history_lines, history_bytes) = hub.history_usage(ix);
            HistoryUsage {
                id: hub.id(ix),
                history_lines,
                history_bytes,
            }
        })
        .collect();
    let mut body = serde_json::to_value(state.stats.snapshot()).unwrap_or_default();
    body["output_waiting_bytes"] = state.conns.unsent_total().into();
    body["connections_reset"] = state.conns.stalled_resets().into();
    body["files"] = serde_json::to_value(files).unwrap_or_default();
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /healthz`: 200 while the server runs (no token needed): `ok`, or in a cluster whose
/// Redis cannot be reached `degraded: WHY` (still 200: the node serves its own files and what it
/// holds; a load balancer should not take it out for that).
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let body = match state.stats.cluster_trouble() {
        Some(why) => format!("degraded: {why}\n"),
        None => "ok\n".to_owned(),
    };
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}
