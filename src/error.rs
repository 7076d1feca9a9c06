//! Start-up errors: a bad command line or environment ([`ConfigError`]), one readable sentence
//! each, reported by `main`. Errors of HTTP requests live with the web side
//! (`http::error::ApiError`).

/// Start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An option or path that cannot work, with what to do about it.
    #[error("{0}")]
    Invalid(String),
    /// The listening address cannot be used.
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
        /// What to do.
        hint: &'static str,
    },
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}
