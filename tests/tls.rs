//! TLS: with `--tls-cert` and `--tls-key` the server speaks https and wss on its one port. Each
//! test makes its own self-signed certificate (rcgen, for `localhost` and `127.0.0.1`) and trusts
//! only that one. Plain http to a TLS port is not served, the server's own `https://` origin is
//! same-origin, and a missing, non-PEM or mismatched file ends the program with one sentence that
//! names the file (exit 1), before the port is bound.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::Connector;

const LONG: Duration = Duration::from_secs(60);

/// A self-signed certificate and its key, written as PEM files into `dir`.
struct TestCert {
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

impl TestCert {
    fn new(dir: &tempfile::TempDir, name: &str) -> TestCert {
        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("make a self-signed certificate");
        let cert_path = join(dir, &format!("{name}.crt"));
        let key_path = join(dir, &format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
        TestCert {
            cert: cert_path,
            key: key_path,
            der: cert.der().clone(),
        }
    }

    /// `--tls-cert CERT --tls-key KEY`
    fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            path_str(&self.cert),
            "--tls-key".into(),
            path_str(&self.key),
        ]
    }

    /// A client configuration that trusts this certificate and nothing else.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.der.clone())
            .expect("trust the test certificate");
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        Arc::new(config)
    }
}

/// Starts tailcast with TLS on `log`.
fn start_tls(cert: &TestCert, log: &std::path::Path) -> Server {
    let mut args = cert.args();
    args.push(path_str(log));
    let server = Server::start(&args);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "the listening line should say https://, got base {}",
        server.base
    );
    server
}

/// A GET over https (rustls, blocking) with the given extra headers; returns (status, body).
/// `Connection: close` lets the answer end with the connection.
fn https_get(
    server: &Server,
    config: Arc<rustls::ClientConfig>,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(config, name).expect("TLS client");
    let tcp = TcpStream::connect(&server.addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        server.addr
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes())
        .expect("TLS handshake and request");
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        // A peer that closes without a TLS close_notify: the answer is complete all the same.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("reading the https answer to {target}: {e}"),
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

#[test]
fn https_serves_the_api_to_a_client_that_trusts_the_certificate() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "line", 0..3);
    let cert = TestCert::new(&dir, "server");
    let server = start_tls(&cert, &log);

    let (status, body) = https_get(&server, cert.client_config(), "/api/files", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""id":"app.log""#), "{body}");

    // A browser page served by this server sends its https:// origin: same-origin.
    let own = format!("https://{}", server.addr);
    let (status, body) = https_get(
        &server,
        cert.client_config(),
        "/poll?file=app.log",
        &[("Origin", &own)],
    );
    assert_eq!(status, 200, "Origin {own}: {body}");
    assert!(body.contains("line-2"), "{body}");
    // Another site's page is still refused.
    let (status, body) = https_get(
        &server,
        cert.client_config(),
        "/poll?file=app.log",
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn a_wss_client_gets_live_lines() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "before", 0..1);
    let cert = TestCert::new(&dir, "server");
    let server = start_tls(&cert, &log);

    let url = server.ws_url("/ws");
    assert!(url.starts_with("wss://"), "{url}");
    // As a browser on the dashboard would: with the page's https:// origin.
    let mut request = url.into_client_request().unwrap();
    let origin = format!("https://{}", server.addr);
    request
        .headers_mut()
        .insert("Origin", origin.parse().unwrap());
    let connector = Connector::Rustls(cert.client_config());
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector))
            .await
            .expect("wss connect");
    let mut ws = WsClient::from_stream(ws).await;

    // The backlog line arriving shows the subscription is live; lines after it follow by seq.
    ws.subscribe_backlog("app.log", 1).await;
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 1, LONG, &mut lines).await;
    append(&log, b"over-tls\n");
    ws.collect_lines("app.log", 2, LONG, &mut lines).await;
    let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(texts, ["before-0", "over-tls"]);
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_not_served() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "secret-line\n").unwrap();
    let cert = TestCert::new(&dir, "server");
    let server = start_tls(&cert, &log);

    let mut tcp = TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        tcp,
        "GET /poll?file=app.log HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut answer = Vec::new();
    // The server drops the connection (after a TLS alert at most): read_to_end returns.
    let _ = tcp.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.starts_with("HTTP/") && !text.contains("secret-line"),
        "plain http was answered: {text:?}"
    );

    let plain_ws = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await;
    assert!(
        plain_ws.is_err(),
        "a ws:// upgrade on the TLS port succeeded"
    );

    // The server is unharmed.
    let (status, body) = https_get(&server, cert.client_config(), "/api/files", &[]);
    assert_eq!(status, 200, "{body}");
}

/// Asserts that tailcast refuses to start: exit 1, one line on stderr containing every needle.
fn assert_config_error(args: &[&str], envs: &[(&str, &str)], needles: &[&str]) {
    let (code, _, stderr) = run_to_exit(args, envs);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(code, 1, "tailcast {args:?} should exit 1; stderr: {stderr}");
    assert!(
        lines.len() == 1 && lines[0].starts_with("tailcast: error: "),
        "tailcast {args:?}: one error sentence expected, got: {stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "tailcast {args:?}: expected {needle:?} in: {stderr}"
        );
    }
}

#[test]
fn a_certificate_without_its_key_is_refused() {
    let dir = temp_dir();
    let log = path_str(&join(&dir, "app.log"));
    let cert = TestCert::new(&dir, "server");
    let cert_path = path_str(&cert.cert);
    assert_config_error(
        &["--tls-cert", &cert_path, &log],
        &[],
        &["--tls-cert needs --tls-key"],
    );
    // The same through the environment.
    let key_path = path_str(&cert.key);
    assert_config_error(
        &[&log],
        &[("TAILCAST_TLS_KEY", key_path.as_str())],
        &["--tls-key needs --tls-cert"],
    );
}

#[test]
fn a_certificate_file_that_is_not_pem_is_refused_by_name() {
    let dir = temp_dir();
    let log = path_str(&join(&dir, "app.log"));
    let cert = TestCert::new(&dir, "server");
    let not_pem = join(&dir, "not-a-cert.txt");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let not_pem = path_str(&not_pem);
    let key = path_str(&cert.key);
    // The error comes before the port is bound: a taken port does not hide it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    assert_config_error(
        &[
            "--bind",
            &bind,
            "--tls-cert",
            &not_pem,
            "--tls-key",
            &key,
            &log,
        ],
        &[],
        &[&not_pem, "no PEM certificate"],
    );
    let missing = path_str(&join(&dir, "missing.crt"));
    assert_config_error(
        &["--tls-cert", &missing, "--tls-key", &key, &log],
        &[],
        &[&missing, "cannot read"],
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused_by_name() {
    let dir = temp_dir();
    let log = path_str(&join(&dir, "app.log"));
    let ours = TestCert::new(&dir, "ours");
    let other = TestCert::new(&dir, "other");
    let cert = path_str(&ours.cert);
    let wrong_key = path_str(&other.key);
    assert_config_error(
        &["--tls-cert", &cert, "--tls-key", &wrong_key, &log],
        &[],
        &[&wrong_key, &cert, "does not match"],
    );
}

/// The certificate the server presents to a new connection (DER); the client trusts `certs`.
fn served_certificate(server: &Server, certs: &[&TestCert]) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert.der.clone()).expect("trust the certificate");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(&server.addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    while connection.is_handshaking() {
        connection
            .complete_io(&mut tcp)
            .expect("TLS handshake with a trusted certificate");
    }
    connection.peer_certificates().expect("a certificate")[0].clone()
}

/// Copies `from`'s certificate and key over the files `to` was made with, as a renewal does.
fn install(from: &TestCert, to: &TestCert) {
    std::fs::copy(&from.cert, &to.cert).unwrap();
    std::fs::copy(&from.key, &to.key).unwrap();
}

#[test]
fn sighup_serves_a_renewed_certificate_and_keeps_it_when_the_next_one_is_broken() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "line", 0..1);
    let live = TestCert::new(&dir, "live");
    let first = TestCert::new(&dir, "first");
    install(&first, &live);
    let renewed = TestCert::new(&dir, "renewed");
    let mut args = live.args();
    args.push(path_str(&log));
    let mut server = Server::start(&args);
    let both = [&first, &renewed];
    assert_eq!(served_certificate(&server, &both), first.der);

    install(&renewed, &live);
    server.signal("HUP");
    let reloaded = "SIGHUP: reloaded the TLS certificate";
    let log_text = server.wait_log(reloaded, 1, LONG);
    assert!(log_text.contains(&path_str(&live.cert)), "{log_text}");
    assert_eq!(
        served_certificate(&server, &both),
        renewed.der,
        "a new connection after SIGHUP gets the renewed certificate"
    );

    // Broken replacements: not PEM, then a key that is not the certificate's. Each is one error
    // naming the file, and the renewed certificate stays in use.
    let not_reloaded = "SIGHUP: TLS not reloaded, still serving the previous certificate";
    std::fs::write(&live.cert, "not a certificate\n").unwrap();
    server.signal("HUP");
    let log_text = server.wait_log(not_reloaded, 1, LONG);
    assert!(
        log_text.contains(&format!("{} holds no PEM certificate", live.cert.display())),
        "{log_text}"
    );
    assert_eq!(served_certificate(&server, &both), renewed.der);
    std::fs::copy(&first.cert, &live.cert).unwrap();
    server.signal("HUP");
    let log_text = server.wait_log(not_reloaded, 2, LONG);
    assert!(log_text.contains("does not match"), "{log_text}");
    assert_eq!(served_certificate(&server, &both), renewed.der);
    assert_eq!(log_text.matches(reloaded).count(), 1, "{log_text}");

    // Still serving, over the renewed certificate.
    assert!(server.running(), "SIGHUP ended tailcast");
    let (status, body) = https_get(&server, renewed.client_config(), "/api/files", &[]);
    assert_eq!(status, 200, "{body}");
}
