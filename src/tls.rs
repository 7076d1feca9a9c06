//! TLS: the certificate chain and private key named by `--tls-cert` and `--tls-key`, read from
//! PEM files and checked into a rustls server configuration (ring provider, TLS 1.2 and 1.3).
//!
//! [`load`] runs at start-up, before the port is bound, so a missing, malformed or mismatched file
//! ends the program with one sentence naming the file ([`TlsError`]). The server configuration
//! takes its certificate from a slot that [`TlsReload::reload`] refills from the same files (the
//! binary does it on SIGHUP): a renewed certificate serves new connections without a restart,
//! and one that fails the same checks leaves the slot as it was. Serving https and wss on the
//! listener is [`crate::app`]'s job; the Host and Origin checks do not depend on the scheme.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

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

/// The certificate every handshake is answered with; [`TlsReload`] swaps it.
#[derive(Debug)]
struct CertSlot(RwLock<Arc<CertifiedKey>>);

impl CertSlot {
    fn get(&self) -> Arc<CertifiedKey> {
        // The lock guards a plain swap of an Arc: a panicked writer cannot have left it torn.
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, key: CertifiedKey) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// Re-reads the certificate and key files into the running server: new connections get the
/// new certificate, connections already open keep theirs.
#[derive(Debug, Clone)]
pub struct TlsReload {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    slot: Arc<CertSlot>,
}

impl TlsReload {
    /// Reads and checks the files as at start-up; on any error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.slot.set(certified_key(&self.files, &self.provider)?);
        Ok(())
    }

    /// The files it reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// Reads and checks `files` into the server configuration actix-web listens with, and the
/// handle that reloads them.
pub fn load(files: &TlsFiles) -> Result<(rustls::ServerConfig, TlsReload), TlsError> {
    let provider = Arc::new(ring::default_provider());
    let slot = Arc::new(CertSlot(RwLock::new(Arc::new(certified_key(
        files, &provider,
    )?))));
    let config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Setup(reason(error)))?
        .with_no_client_auth()
        .with_cert_resolver(slot.clone());
    let reload = TlsReload {
        files: files.clone(),
        provider,
        slot,
    };
    Ok((config, reload))
}

/// The chain and key of `files`, checked: the key is usable and belongs to the certificate.
fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(&files.cert)?;
    let key = read_key(&files.key)?;
    // The key on its own first, so an unusable key is told apart from a mismatch.
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::BadKey {
            path: files.key.clone(),
            reason: reason(error),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // A key type whose public half rustls cannot compare: as `with_single_cert` does, the
        // handshake is its test.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::Mismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            })
        }
        Err(other) => Err(TlsError::BadCertificate {
            path: files.cert.clone(),
            reason: reason(other),
        }),
    }
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
