//! TLS: the certificate chain and private key named by `--tls-cert` and `--tls-key`, read from
//! PEM files and checked into a rustls server configuration (ring provider, TLS 1.2 and 1.3).
//!
//! [`load`] runs at start-up, before the port is bound, so a missing, malformed or mismatched file
//! ends the program with one sentence naming the file ([`TlsError`]). Serving https and wss on the
//! listener is [`crate::app`]'s job; the Host and Origin checks do not depend on the scheme.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The two files TLS is configured with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, PEM, server certificate first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, RSA or SEC1).
    pub key: PathBuf,
}

/// Why the certificate or key cannot be used; each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read at all.
    #[error(
        "cannot read the TLS {what} {}: {error}; check the path given with {option}",
        path.display()
    )]
    Read {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The option that named it.
        option: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// No certificate in the file (not PEM, or PEM without a CERTIFICATE section).
    #[error(
        "{} holds no PEM certificate{detail}; --tls-cert needs the certificate chain in PEM form \
         (-----BEGIN CERTIFICATE-----), the server certificate first",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said, if anything.
        detail: String,
    },
    /// No private key in the file.
    #[error(
        "{} holds no PEM private key{detail}; --tls-key needs the certificate's private key in PEM \
         form (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said, if anything.
        detail: String,
    },
    /// The key is PEM but not a key rustls can sign with.
    #[error(
        "the private key in {} cannot be used ({reason}); --tls-key needs an RSA, ECDSA (P-256, \
         P-384) or Ed25519 key",
        path.display()
    )]
    BadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error(
        "the private key {} does not match the certificate {}; give --tls-key the key the \
         certificate was issued for",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate is PEM but not a usable X.509 certificate.
    #[error(
        "the certificate in {} cannot be used ({reason}); --tls-cert needs X.509 certificates in \
         PEM form",
        path.display()
    )]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The crypto provider refuses the protocol versions (not expected with ring).
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// Reads and checks `files` into the server configuration actix-web listens with.
pub fn load(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let chain = read_chain(&files.cert)?;
    let key = read_key(&files.key)?;
    let provider = Arc::new(ring::default_provider());
    // Load the key on its own first, so an unusable key is told apart from a mismatch.
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|error| TlsError::BadKey {
            path: files.key.clone(),
            reason: reason(error),
        })?;
    let bad_certificate = |error| TlsError::BadCertificate {
        path: files.cert.clone(),
        reason: reason(error),
    };
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Setup(reason(error)))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::Mismatch {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                }
            }
            other => bad_certificate(other),
        })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path, "certificate", "--tls-cert")?;
    let no_certificate = |detail: String| TlsError::NoCertificate {
        path: path.to_owned(),
        detail,
    };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| no_certificate(pem_detail(&error)))?;
    if chain.is_empty() {
        return Err(no_certificate(String::new()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path, "private key", "--tls-key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| TlsError::NoKey {
        path: path.to_owned(),
        detail: pem_detail(&error),
    })
}

fn read(path: &Path, what: &'static str, option: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        what,
        path: path.to_owned(),
        option,
        error,
    })
}

/// rustls's complaint, without its wording for the peer-facing side ("invalid peer certificate").
fn reason(error: rustls::Error) -> String {
    match error {
        rustls::Error::General(text) => text,
        rustls::Error::InvalidCertificate(error) => format!("invalid certificate: {error:?}"),
        other => other.to_string(),
    }
}

/// The PEM parser's complaint, as a parenthesis for the message.
fn pem_detail(error: &pem::Error) -> String {
    match error {
        pem::Error::NoItemsFound => String::new(),
        pem::Error::MissingSectionEnd { .. } => " (a PEM section has no END line)".into(),
        pem::Error::IllegalSectionStart { .. } => " (a malformed BEGIN line)".into(),
        other => format!(" ({other})"),
    }
}
