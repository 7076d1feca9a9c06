//! The web side: routes, WebSocket sessions, long-poll, the embedded dashboard, access checks.
//!
//! Every handler gets [`AppState`] (the hub handle, settings, counters, shutdown) and reaches
//! files only through the hub, by id. Routes:
//! `GET /` and assets (dashboard), `GET /ws` (WebSocket), `GET /poll` (long-poll),
//! `GET /sse` (Server-Sent Events), `GET /follow` (plain text stream),
//! `GET /api/files`, `GET /api/stats`, `GET /api/generations`, `GET /api/page` and
//! `GET /api/search` (a file's past on disk), `GET /healthz`, `GET /metrics`. All of them live under
//! `--base-path` when one is given.

mod access;
mod api;
mod archive;
mod assets;
mod config;
pub mod conn;
pub mod encode;
pub mod error;
mod filter;
mod json;
mod metrics;
mod poll;
mod query;
mod stream;
mod terminal;
mod ws;
mod ws_guard;
pub mod ws_out;

use std::future::Future;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, ResponseError};
use futures_util::future::Either;

use error::ApiError;

use crate::hub::Hub;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
pub use config::ServerConfig;

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
    /// Every connection's output budget.
    pub conns: conn::Connections,
    /// The files' past on disk.
    pub archive: crate::archive::Archive,
}

impl AppState {
    /// A place among the connections a gauge counts, or 503 naming the option to raise.
    pub fn take_slot(&self, gauge: crate::stats::Gauge) -> Result<crate::stats::Slot, ApiError> {
        use crate::stats::Gauge;
        let (limit, what, option) = match gauge {
            Gauge::WsClients | Gauge::StreamClients => (
                self.config.max_connections,
                "streaming clients (WebSocket, SSE, /follow)",
                "--max-connections",
            ),
            Gauge::PollsWaiting => (self.config.max_polls, "held polls", "--max-polls"),
        };
        crate::stats::Slot::acquire(&self.stats, gauge, limit).ok_or_else(|| {
            ApiError::Busy(format!(
                "too many {what} ({limit}); try again shortly, or raise {option}"
            ))
        })
    }

    /// The connection a request came on (its output budget and reset switch).
    pub fn conn(&self, req: &actix_web::HttpRequest) -> conn::Conn {
        req.conn_data::<conn::Conn>()
            .cloned()
            .unwrap_or_else(|| self.conns.detached())
    }
}

/// Middleware of every route: counts each response against its connection's output budget (see
/// [`conn`]), and refuses new requests with 503 while the server-wide budget is full.
pub fn meter_response<S>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Either::Left(service.call(req));
    };
    // The health check, the metrics and the counters stay reachable: they are small, and they
    // are how an operator sees the saturation.
    let path = req.path();
    let small = ["/healthz", "/metrics", "/api/stats"]
        .iter()
        .any(|p| path.ends_with(p));
    if state.conns.saturated() && !small {
        let busy = ApiError::Busy(
            "the server's output budget (--total-buffer) is full: too many slow clients; retry              shortly"
                .into(),
        );
        let response = req.into_response(busy.error_response());
        return Either::Right(Either::Left(std::future::ready(Ok(response))));
    }
    let conn = state.conn(req.request());
    let answer = service.call(req);
    Either::Right(Either::Right(async move {
        let response = answer.await?;
        let on_demand = response
            .response()
            .extensions()
            .get::<conn::MadeOnDemand>()
            .is_some();
        Ok(response.map_body(|_, body| conn::MeteredBody::new(body, conn, on_demand).boxed()))
    }))
}

/// The client's address for the log (`127.0.0.1:50312`, or `unknown`).
pub fn peer_name(req: &actix_web::HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".to_owned(), |addr| addr.to_string())
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
        .route("/api/generations", get_or_head().to(archive::generations))
        .route("/api/page", get_or_head().to(archive::page))
        .route("/api/search", web::get().to(archive::search))
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
