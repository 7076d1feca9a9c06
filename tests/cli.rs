//! The command line as a user meets it: `--help`, and bad arguments that end with one readable
//! sentence and a non-zero exit (never a panic).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(60);

/// Asserts a clean failure: non-zero exit, no panic, a message containing `needle`.
fn assert_fails_with(args: &[&str], needle: &str) -> String {
    let (code, _, stderr) = run_to_exit(args, &[]);
    assert_ne!(code, 0, "tailcast {args:?} should fail; stderr: {stderr}");
    assert!(
        !stderr.contains("panicked"),
        "tailcast {args:?} panicked: {stderr}"
    );
    assert!(
        stderr.contains(needle),
        "tailcast {args:?}: expected {needle:?} in: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() <= 4,
        "one readable message expected, got: {stderr}"
    );
    stderr
}

#[test]
fn help_documents_every_option_and_the_default_heartbeat() {
    let (code, stdout, _) = run_to_exit(&["--help"], &[]);
    assert_eq!(code, 0);
    for needle in [
        "--bind",
        "--lines",
        "--history",
        "--max-line-bytes",
        "--heartbeat",
        "--client-timeout",
        "[default: 30s]",
        "[default: 35s]",
        "[default: 127.0.0.1:7070]",
        "TAILCAST_TOKEN",
        "--tls-cert",
        "TAILCAST_TLS_KEY",
    ] {
        assert!(stdout.contains(needle), "--help lacks {needle}:\n{stdout}");
    }
}

#[test]
fn a_missing_directory_is_one_sentence() {
    assert_fails_with(
        &["/definitely/not/here/app.log"],
        "the directory /definitely/not/here does not exist",
    );
}

#[test]
fn a_bad_duration_is_one_sentence() {
    assert_fails_with(&["--heartbeat", "soon", "/tmp/x.log"], "500ms, 30s or 2m");
}

#[test]
fn a_port_in_use_is_one_sentence() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = temp_dir();
    let log = path_str(&join(&dir, "a.log"));
    assert_fails_with(&["--bind", &addr, &log], "another program uses this port");
}

/// A directory or a glob is a live rule (tests/sources.rs), but its fixed directory must exist,
/// and a glob with wildcards in its directories is expanded once, so it must match.
#[test]
fn a_glob_or_directory_whose_directory_is_missing_is_refused_with_advice() {
    let dir = temp_dir();
    let dir_arg = path_str(dir.path());
    assert_fails_with(&[&format!("{dir_arg}/nodir/*.log")], "does not exist");
    assert_fails_with(&[&format!("{dir_arg}/nodir/")], "does not exist");
    assert_fails_with(&[&format!("{dir_arg}/*/x.nothing")], "matches no file");
}

#[test]
fn an_unreadable_file_is_refused_at_start() {
    // Root reads any file whatever its mode, so use a path whose open fails for everyone:
    // a dangling symlink loop.
    let dir = temp_dir();
    let looped = join(&dir, "loop.log");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    assert_fails_with(&[&path_str(&looped)], "cannot read");
}

#[test]
fn completions_and_man_page_come_from_the_clap_definition() {
    let (code, stdout, _) = run_to_exit(&["--completions", "bash"], &[]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("complete") && stdout.contains("--heartbeat"),
        "{stdout}"
    );
    let (code, stdout, _) = run_to_exit(&["--man"], &[]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(".TH") && stdout.contains("client\\-timeout"),
        "{stdout}"
    );
}

#[tokio::test]
async fn options_are_read_from_tailcast_environment_variables() {
    let dir = temp_dir();
    let log = join(&dir, "a.log");
    append_numbered(&log, "line", 0..30);
    let server = TestServer::new()
        .no_bind()
        .env("TAILCAST_BIND", "127.0.0.1:0")
        .env("TAILCAST_LINES", "3")
        .env("TAILCAST_HEARTBEAT", "7s")
        .args(&[path_str(&log)])
        .start();
    let answer = server.get_json("/poll?file=a.log").await;
    assert_eq!(
        answer["lines"].as_array().unwrap().len(),
        3,
        "TAILCAST_LINES=3"
    );
    let ws = WsClient::connect(&server).await;
    assert_eq!(ws.hello["heartbeat_ms"], 7000, "TAILCAST_HEARTBEAT=7s");
}

#[test]
fn a_fifo_or_a_device_is_refused_at_start_instead_of_blocking() {
    let dir = temp_dir();
    let fifo = join(&dir, "app.log");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let fifo = path_str(&fifo);
    // run_to_exit fails the test if tailcast is still running after 20 s (blocked in open()).
    let stderr = assert_fails_with(&[&fifo], "is a FIFO (named pipe), not a regular file");
    assert!(stderr.contains(&fifo), "the path is named: {stderr}");
    let (code, _, _) = run_to_exit(&[&fifo], &[]);
    assert_eq!(code, 1);
    // Through a symlink, the file it points to is what counts.
    let link = join(&dir, "link.log");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    assert_fails_with(&[&path_str(&link)], "is a FIFO (named pipe)");
    assert_fails_with(
        &["/dev/null"],
        "/dev/null is a character device, not a regular file",
    );
}

#[tokio::test]
async fn sighup_without_tls_is_logged_and_does_not_end_the_server() {
    let dir = temp_dir();
    let log = join(&dir, "a.log");
    append_numbered(&log, "line", 0..1);
    let mut server = Server::start(&[path_str(&log)]);
    for times in 1..=2 {
        server.signal("HUP");
        let log_text = server.wait_log("SIGHUP: nothing to reload without TLS", times, LONG);
        assert!(
            log_text.contains("globs are expanded once, at start"),
            "the line says what is not reloaded: {log_text}"
        );
    }
    assert!(server.running(), "SIGHUP ended tailcast");
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // SIGTERM still ends it.
    server.terminate(LONG);
}
