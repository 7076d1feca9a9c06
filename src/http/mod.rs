//! The web side: routes, WebSocket sessions, long-poll, the embedded dashboard, access checks.
//!
//! Every handler gets [`AppState`] (the hub handle, settings, counters, shutdown) and reaches
//! files only through the hub, by id. Routes:
//! `GET /` and assets (dashboard), `GET /ws` (WebSocket), `GET /poll` (long-poll),
//! `GET /api/files`, `GET /api/stats`, `GET /healthz`.

mod access;
mod api;
mod assets;
mod poll;
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

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(ws::connect))
        .route("/poll", web::get().to(poll::poll))
        .route("/api/files", web::get().to(api::files))
        .route("/api/stats", web::get().to(api::stats))
        .route("/healthz", web::get().to(api::healthz))
        .default_service(web::get().to(assets::serve));
}
