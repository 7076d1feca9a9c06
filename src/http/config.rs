//! The settings of the web side: transports, limits, access. Built from the command line by
//! `cli`, read by every handler through `AppState`.

use std::time::Duration;

use crate::net::IpRange;

/// Settings of the HTTP side.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Client silence limit.
    pub client_timeout: Duration,
    /// Send stall limit.
    pub send_timeout: Duration,
    /// Largest inbound message.
    pub max_message_bytes: usize,
    /// Most WebSocket connections.
    pub max_connections: usize,
    /// Most held polls.
    pub max_polls: usize,
    /// Longest poll hold.
    pub max_poll_timeout: Duration,
    /// Bytes that may wait to go out to one connection.
    pub client_buffer: usize,
    /// Bytes that may wait to go out to all connections.
    pub total_buffer: usize,
    /// Required token, if any.
    pub token: Option<String>,
    /// Extra allowed origins.
    pub allow_origins: Vec<String>,
    /// Peers whose forwarded host headers are believed.
    pub trust_proxies: Vec<IpRange>,
    /// WebSocket endpoint off.
    pub no_websocket: bool,
    /// Default backlog.
    pub default_backlog: usize,
    /// Most lines in one answer or frame of backlog.
    pub max_backlog: usize,
    /// Longest `grep` pattern a client may give.
    pub max_grep_bytes: usize,
    /// Worker threads.
    pub workers: Option<usize>,
    /// Path prefix of every route ("" or "/something", no trailing slash).
    pub base_path: String,
    /// The server listens on a loopback address only (then the Host check applies).
    pub loopback_only: bool,
}
