//! The web side: routes, WebSocket sessions, long-poll, the embedded dashboard, access checks.
//!
//! Every handler gets [`AppState`] (the hub handle, settings, counters, shutdown) and reaches
//! files only through the hub, by id. Routes:
//! `GET /` and assets (dashboard), `GET /ws` (WebSocket), `GET /poll` (long-poll),
//! `GET /sse` (Server-Sent Events), `GET /follow` (plain text stream),
//! `GET /api/files`, `GET /api/stats`, `GET /healthz`, `GET /metrics`. All of them live under
//! `--base-path` when one is given.

mod access;
mod api;
mod assets;
mod metrics;
mod poll;
mod stream;
mod terminal;
mod ws;

use std::sync::Arc;

use actix_web::web;

use crate::cli::ServerConfig;
use crate::hub::Hub;
use crate::shutdown::Shutdown;
use crate::stats::Stats;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The hub handle.
    pub hub: Hub,
    /// Transport settings.
    pub config: Arc<ServerConfig>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Fired at shutdown.
    pub shutdown: Shutdown,
}

/// GET, and HEAD for the documents (`curl -I`, load balancers' HEAD checks).
pub fn get_or_head() -> actix_web::Route {
    web::route().guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(ws::connect))
        .route("/poll", web::get().to(poll::poll))
        .route("/sse", web::get().to(stream::sse))
        .route("/follow", web::get().to(stream::follow))
        .route("/api/files", get_or_head().to(api::files))
        .route("/api/stats", get_or_head().to(api::stats))
        .route("/healthz", get_or_head().to(api::healthz))
        .route("/metrics", get_or_head().to(metrics::metrics))
        .route("/{path:.*}", get_or_head().to(assets::serve));
}

/// `GET /BASE` (no slash): redirect to `/BASE/`, so the page's relative URLs resolve under it.
pub async fn redirect_to_slash(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    let mut location = format!("{}/", req.path());
    if !req.query_string().is_empty() {
        location.push('?');
        location.push_str(req.query_string());
    }
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}
