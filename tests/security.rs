//! Security: only configured files are ever read, static assets cannot escape their
//! folder, pages carry a strict CSP, every limit holds at its bound, the token guards every data
//! route (and never shows in the logs), and a non-loopback bind without a token is warned about.
//! The real binary, real files, requests sent as raw bytes where an HTTP client would normalize
//! the path.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const LONG: Duration = Duration::from_secs(60);

/// A marker that appears in the secret file and must never appear in an answer.
const SECRET: &str = "TOP-SECRET-5f1c0a9e";

/// What `/etc/passwd` always holds.
const PASSWD_MARK: &str = "root:";

/// Sends one raw HTTP/1.1 GET (the target exactly as given: no client-side `..` removal or
/// re-encoding) with these header lines; returns (status, 0 if none; headers lowercased; body).
fn raw_request(addr: &str, target: &str, headers: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// A raw GET with the server's own Host; returns (status, headers lowercased, body).
fn raw_get(addr: &str, target: &str) -> (u16, String, String) {
    let answer = raw_request(addr, target, &format!("Host: {addr}\r\n"));
    assert_ne!(answer.0, 0, "no status line for {target}: {answer:?}");
    answer
}

fn assert_no_leak(what: &str, body: &str) {
    for mark in [SECRET, PASSWD_MARK, "[package]", "fn main", "x:0:0"] {
        assert!(
            !body.contains(mark),
            "{what}: the answer contains `{mark}`: {body:?}"
        );
    }
}

/// Ids a hostile client may try instead of a configured id, as they go in a query string.
fn hostile_ids(dir: &std::path::Path) -> Vec<String> {
    let secret = dir.join("secret.txt").display().to_string();
    vec![
        "../secret.txt".into(),
        "..%2Fsecret.txt".into(),
        "%2e%2e%2fsecret.txt".into(),
        "%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd".into(),
        "../../../../../../etc/passwd".into(),
        "/etc/passwd".into(),
        "%2Fetc%2Fpasswd".into(),
        secret.replace('/', "%2F"),
        secret,
        "secret.txt".into(),
        "app.log%00".into(),
        "app.log%00../../etc/passwd".into(),
        "%00".into(),
        "app.log/../secret.txt".into(),
        "./app.log".into(),
        "APP.LOG".into(),
        "evil.log".into(),
        "passwd".into(),
        ".".into(),
        "".into(),
    ]
}

#[tokio::test]
async fn only_configured_files_can_be_read_by_any_id() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append_numbered("app", 0..3);
    std::fs::write(join(&dir, "secret.txt"), format!("{SECRET}\n")).unwrap();
    // A live glob: the directory is watched and files that appear in it are followed, but a
    // symlink planted there (to a file outside, or to one the glob does not name) never is.
    let server = Server::start(&[format!("{}/*.log", dir.path().display())]);
    // Planted after start, in the watched directory, with a name the glob matches.
    std::os::unix::fs::symlink("/etc/passwd", join(&dir, "evil.log")).unwrap();
    std::os::unix::fs::symlink(join(&dir, "secret.txt"), join(&dir, "secret.log")).unwrap();
    // A real log created after them: once it is listed, discovery has seen the links too.
    std::fs::write(join(&dir, "real.log"), "real\n").unwrap();
    let files = wait_for(Duration::from_secs(30), || async {
        let files = server.get_json("/api/files").await;
        let listed = files.as_array()?.iter().any(|f| f["id"] == "real.log");
        listed.then_some(files)
    })
    .await
    .expect("real.log is followed");
    let ids: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["app.log", "real.log"], "no planted link is listed");
    // A found file swapped for a link (`ln -s secret t; mv -T t real.log`) is not read through
    // it: the follower refuses the link, and says so.
    let link = join(&dir, "swap.tmp");
    std::os::unix::fs::symlink(join(&dir, "secret.txt"), &link).unwrap();
    std::fs::rename(&link, join(&dir, "real.log")).unwrap();
    let refused = wait_for(Duration::from_secs(30), || async {
        let info = server.file_info("real.log").await;
        info["error"].is_string().then_some(info)
    })
    .await
    .expect("the swapped link is refused with a reason");
    assert_eq!(refused["exists"], false, "{refused}");
    let text = http_client()
        .get(server.url("/poll?file=real.log&after=0&format=text"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains(SECRET),
        "the link's target was served: {text}"
    );

    let mut ids = hostile_ids(dir.path());
    ids.push("secret.log".into());
    for id in &ids {
        for extra in ["", "&format=text", "&after=0", "&backlog=100000"] {
            let target = format!("/poll?file={id}{extra}");
            let (status, _, body) = raw_get(&server.addr, &target);
            assert_no_leak(&target, &body);
            if id.is_empty() {
                // `file=` names nothing: a bad parameter or an unknown file, never a read.
                assert!(
                    status == 404 || status == 400,
                    "{target}: expected 404 or 400, got {status}: {body}"
                );
                continue;
            }
            assert_eq!(status, 404, "{target}: expected 404, got {status}: {body}");
            let answer: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{target}: not JSON ({e}): {body}"));
            assert_eq!(answer["error"], "unknown_file", "{target}: {answer}");
        }
    }

    // The same ids over WebSocket (decoded: a WebSocket message carries the id as it is).
    let mut ws = WsClient::connect(&server).await;
    let hello = ws.hello.to_string();
    assert_no_leak("hello", &hello);
    let decoded: Vec<String> = ids
        .iter()
        .map(|id| {
            id.replace("%2F", "/")
                .replace("%2f", "/")
                .replace("%2e", ".")
                .replace("%2E", ".")
                .replace("%00", "\0")
        })
        .chain(["app.log\0".to_owned(), "app.log\n".to_owned()])
        .collect();
    for id in &decoded {
        for request in [
            json!({"type":"subscribe","file":id,"backlog":100000}),
            json!({"type":"subscribe","file":id,"after":0}),
            json!({"type":"unsubscribe","file":id}),
        ] {
            ws.send(request.clone()).await;
            let msg = ws.next_non_ping(LONG).await.expect("an answer");
            assert_no_leak(&request.to_string(), &msg.to_string());
            assert_eq!(msg["type"], "error", "{request} -> {msg}");
            assert_eq!(msg["code"], "unknown_file", "{request} -> {msg}");
        }
    }
    // The connection still works, and serves exactly the configured file.
    ws.subscribe_backlog("app.log", 10).await;
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 3, LONG, &mut lines).await;
    let texts: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
    assert_lines_eq(&texts, &numbered("app", 0..3));
    let stats = raw_get(&server.addr, "/api/stats").2;
    assert_no_leak("/api/stats", &stats);
}

#[tokio::test]
async fn static_assets_cannot_escape_their_folder() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    let server = Server::start(&[log.path_str()]);
    // Sanity: the dashboard itself is served.
    let (status, _, body) = raw_get(&server.addr, "/");
    assert_eq!(status, 200);
    assert!(
        body.contains("<html") || body.contains("<!doctype"),
        "{body}"
    );

    // Debug builds (these tests) read assets from disk at run time, the riskier case: a
    // traversal here would read src/, Cargo.toml or /etc/passwd.
    let targets = [
        "/../../etc/passwd",
        "/../../../../../../../../etc/passwd",
        "/%2e%2e/Cargo.toml",
        "/%2e%2e%2fCargo.toml",
        "/..%2fCargo.toml",
        "/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
        "/static/../src/main.rs",
        "/../src/main.rs",
        "/../Cargo.toml",
        "/..%5cCargo.toml",
        "/index.html/../../Cargo.toml",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/etc/passwd",
        "/.%2e/.%2e/etc/passwd",
        "/%252e%252e/Cargo.toml",
        "/app.js%00.html",
        "/src/main.rs",
        "/Cargo.toml",
    ];
    for target in targets {
        let (status, _, body) = raw_get(&server.addr, target);
        assert_no_leak(target, &body);
        assert!(
            status == 404 || status == 400,
            "{target}: expected 404 (or 400 for a malformed target), got {status}: {body:?}"
        );
    }
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_nosniff() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    let server = Server::start(&[log.path_str()]);
    // `curl -I` (HEAD) sees the same status and headers as GET.
    let head = reqwest::Client::new()
        .head(server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200, "HEAD /");
    assert!(
        head.headers().contains_key("content-security-policy"),
        "HEAD / has the CSP"
    );
    for path in ["/", "/index.html", "/app.js", "/style.css"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_else(|| panic!("{path}: no {name} header"))
        };
        let csp = header("content-security-policy");
        for forbidden in ["'unsafe-inline'", "'unsafe-eval'", "*"] {
            assert!(
                !csp.contains(forbidden),
                "{path}: CSP allows {forbidden}: {csp}"
            );
        }
        for needed in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(needed), "{path}: CSP lacks {needed}: {csp}");
        }
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    // The page loads no inline script (the CSP would block it anyway).
    let html = reqwest::get(server.url("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (i, _) in html.match_indices("<script") {
        let tag = &html[i..html[i..].find('>').map_or(html.len(), |e| i + e + 1)];
        assert!(tag.contains("src="), "inline script in index.html: {tag}");
    }
    assert!(!html.contains(" onclick="), "inline handler in index.html");
}

async fn ping_pong(ws: &mut WsClient, what: &str) {
    ws.send(json!({"type":"ping"})).await;
    let msg = ws.next_non_ping(LONG).await;
    assert_eq!(
        msg.as_ref().map(|m| m["type"].clone()),
        Some(json!("pong")),
        "{what}: {msg:?}"
    );
}

#[tokio::test]
async fn max_connections_refuses_the_fourth_websocket_with_503_and_keeps_the_first_three() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    let server = Server::start(&["--max-connections".to_owned(), "3".into(), log.path_str()]);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut ws = WsClient::connect(&server).await;
        ws.subscribe_backlog("app.log", 0).await;
        clients.push(ws);
    }
    for attempt in 0..3 {
        let refused = ws_upgrade(&server.ws_url("/ws"), &[]).await;
        match refused {
            Err((503, retry)) => assert_eq!(retry.as_deref(), Some("1"), "Retry-After"),
            Err((status, _)) => panic!("attempt {attempt}: expected 503, got {status}"),
            Ok(_) => panic!("attempt {attempt}: a 4th WebSocket was accepted"),
        }
    }
    log.append_numbered("line", 0..2);
    for (i, ws) in clients.iter_mut().enumerate() {
        let mut lines = Vec::new();
        ws.collect_lines("app.log", 2, LONG, &mut lines).await;
        ping_pong(ws, &format!("client {i}")).await;
    }
    // Long-poll is not counted against WebSocket connections.
    let answer = server.get_json("/poll?file=app.log").await;
    assert_eq!(answer["last_seq"], 2, "{answer}");
    // A freed slot is usable again.
    let mut gone = clients.pop().unwrap();
    gone.ws.close(None).await.unwrap();
    drop(gone);
    let reconnected = wait_for(LONG, || async {
        ws_upgrade(&server.ws_url("/ws"), &[]).await.ok()
    })
    .await;
    assert!(reconnected.is_some(), "the freed slot was never reusable");
}

#[tokio::test]
async fn max_polls_refuses_a_third_held_poll_with_503_and_retry_after() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append_numbered("old", 0..2);
    let server = Server::start(&["--max-polls".to_owned(), "2".into(), log.path_str()]);
    let held_url = server.url("/poll?file=app.log&after=2&timeout=30");
    let mut held = Vec::new();
    for _ in 0..2 {
        let url = held_url.clone();
        held.push(tokio::spawn(async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    let waiting = wait_for(LONG, || async {
        (server.stats().await["polls_waiting"] == 2).then_some(())
    })
    .await;
    assert!(waiting.is_some(), "stats: {}", server.stats().await);

    let third = reqwest::get(&held_url).await.unwrap();
    assert_eq!(third.status(), 503);
    assert_eq!(
        third
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"], "busy", "{body}");
    // Answers that do not wait take no slot.
    let now = server.get_json("/poll?file=app.log&backlog=1").await;
    assert_eq!(now["lines"], json!(["old-1"]), "{now}");

    // The held ones are still served.
    log.append_numbered("new", 0..1);
    for h in held {
        let answer = tokio::time::timeout(LONG, h).await.unwrap().unwrap();
        assert_eq!(answer["lines"], json!(["new-0"]), "{answer}");
    }
    let freed = wait_for(LONG, || async {
        (server.stats().await["polls_waiting"] == 0).then_some(())
    })
    .await;
    assert!(freed.is_some());
    let again = reqwest::get(server.url("/poll?file=app.log&after=3&timeout=0.2"))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn a_message_over_max_message_bytes_closes_with_1009() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    let server = Server::start(&[
        "--max-message-bytes".to_owned(),
        "1024".into(),
        log.path_str(),
    ]);
    let mut ws = WsClient::connect(&server).await;
    // Just under the bound: fine.
    let small = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(900));
    assert!(small.len() < 1024);
    ws.ws.send(Message::Text(small.into())).await.unwrap();
    assert_eq!(ws.next_non_ping(LONG).await.unwrap()["type"], "pong");
    // Over the bound: the socket is closed with 1009 (Message Too Big).
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(1100));
    ws.ws.send(Message::Text(big.into())).await.unwrap();
    assert_eq!(ws.expect_close(LONG).await, CloseCode::Size);
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn more_than_1024_subscriptions_on_one_socket_are_refused() {
    // 1025 files, given as paths that do not exist yet (allowed: they are followed when they
    // appear), so the server needs no descriptor for them.
    let dir = temp_dir();
    let paths: Vec<String> = (0..1025)
        .map(|i| path_str(&join(&dir, &format!("f{i:04}.log"))))
        .collect();
    let server = Server::start(&paths);
    let mut ws = WsClient::connect(&server).await;
    assert_eq!(ws.hello["files"].as_array().unwrap().len(), 1025);
    for i in 0..1024 {
        ws.subscribe_backlog(&format!("f{i:04}.log"), 0).await;
    }
    // All 1024 taken without complaint: the next answer is the pong.
    ping_pong(&mut ws, "after 1024 subscriptions").await;
    // Subscribing again to one already held is a restart, not a new subscription.
    ws.subscribe_backlog("f0000.log", 0).await;
    ping_pong(&mut ws, "re-subscribe").await;
    ws.subscribe_backlog("f1024.log", 0).await;
    let msg = ws.next_non_ping(LONG).await.expect("an answer");
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["code"], "too_many_subscriptions", "{msg}");
    assert_eq!(server.stats().await["subscriptions"], 1024);
    // Still open; after an unsubscribe the 1025th file can be had.
    ws.send(json!({"type":"unsubscribe","file":"f0000.log"}))
        .await;
    ws.subscribe_backlog("f1024.log", 0).await;
    ping_pong(&mut ws, "after unsubscribe").await;
    append_numbered(&join(&dir, "f1024.log"), "late", 0..1);
    let mut lines = Vec::new();
    ws.collect_lines("f1024.log", 1, LONG, &mut lines).await;
    assert_eq!(lines, [(1, "late-0".to_owned())]);
}

#[tokio::test]
async fn the_token_from_the_environment_guards_data_routes_and_is_never_logged() {
    let token = format!(
        "tok{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append_numbered("line", 0..3);
    // Everything tailcast can log, and its stdout: the token must show in none of it.
    let mut server = TestServer::new()
        .env("RUST_LOG", "tailcast=trace,debug")
        .env("TAILCAST_TOKEN", &token)
        .args(&["--heartbeat", "1s", &log.path_str()])
        .start();
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let get = |path: String, bearer: Option<&str>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some(t) = bearer {
            request = request.header("Authorization", format!("Bearer {t}"));
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            (status, body)
        }
    };
    let mut bodies = Vec::new();
    for path in [
        "/api/files",
        "/api/stats",
        "/poll?file=app.log",
        "/poll?file=app.log&after=0&timeout=1",
        "/api/generations?file=app.log",
        "/api/page?file=app.log",
        "/api/search?file=app.log&q=line",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, body) = get(path.to_owned(), None).await;
        assert_eq!(status, 401, "{path} without a token: {body}");
        let (status, body) = get(format!("{path}{sep}token=wrong{token}"), None).await;
        assert_eq!(status, 401, "{path} with a wrong token: {body}");
        let (status, body) = get(path.to_owned(), Some("nope")).await;
        assert_eq!(status, 401, "{path} with a wrong bearer: {body}");
        let (status, body) = get(format!("{path}{sep}token={token}"), None).await;
        assert_eq!(status, 200, "{path} with ?token=: {body}");
        bodies.push(body);
        let (status, body) = get(path.to_owned(), Some(&token)).await;
        assert_eq!(status, 200, "{path} with a bearer: {body}");
        bodies.push(body);
    }
    // Refusals after the token was accepted (the token is in the request) echo nothing of it.
    for path in [
        format!("/poll?file=nope&token={token}"),
        format!("/poll?file=app.log&after=x&token={token}"),
    ] {
        let (status, body) = get(path.clone(), None).await;
        assert!(status == 404 || status == 400, "{path}: {status}");
        bodies.push(body);
    }
    let (status, body) = get("/healthz".into(), None).await;
    assert_eq!((status, body.trim()), (200, "ok"), "healthz needs no token");
    let (status, _) = get("/".into(), None).await;
    assert_eq!(
        status, 200,
        "the dashboard page holds no data and needs no token"
    );

    let ws = format!("ws://{}/ws", server.addr);
    assert_eq!(ws_upgrade(&ws, &[]).await.err().map(|e| e.0), Some(401));
    assert_eq!(
        ws_upgrade(&format!("{ws}?token=wrong"), &[])
            .await
            .err()
            .map(|e| e.0),
        Some(401)
    );
    let bearer = format!("Bearer {token}");
    for (url, headers) in [
        (format!("{ws}?token={token}"), vec![]),
        (ws.clone(), vec![("Authorization", bearer.as_str())]),
    ] {
        let stream = ws_upgrade(&url, &headers)
            .await
            .expect("101 with the token");
        let mut client = WsClient::from_stream(stream).await;
        bodies.push(client.hello.to_string());
        client.subscribe_backlog("no-such-file", 1).await;
        bodies.push(client.next_non_ping(LONG).await.unwrap().to_string());
        client.ws.close(None).await.unwrap();
    }
    for body in &bodies {
        assert!(
            !body.contains(&token),
            "an answer contains the token: {body}"
        );
    }
    let output = server.stop(Duration::from_secs(10));
    assert!(
        output.contains("listening on"),
        "the capture works: {output}"
    );
    assert!(
        !output.contains(&token),
        "the token appears in tailcast's output:\n{output}"
    );
}

#[tokio::test]
async fn binding_beyond_loopback_without_a_token_warns() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    let file = log.path_str();
    let start = |bind: &str, token: Option<&str>| {
        let mut server = TestServer::new()
            .env("RUST_LOG", "tailcast=trace,debug")
            .bind(bind)
            .args(&[&file]);
        if let Some(token) = token {
            server = server.env("TAILCAST_TOKEN", token);
        }
        server.start().stop(Duration::from_secs(10))
    };
    let output = start("0.0.0.0:0", None).to_ascii_lowercase();
    assert!(
        output.contains("warning") && output.contains("token"),
        "--bind 0.0.0.0 without a token must warn (mentioning the token); output:\n{output}"
    );
    // No false alarm: loopback, or a token set.
    let output = start("127.0.0.1:0", None).to_ascii_lowercase();
    assert!(!output.contains("warning"), "loopback: {output}");
    let output = start("0.0.0.0:0", Some("s3cret-token-value")).to_ascii_lowercase();
    assert!(!output.contains("warning"), "with a token: {output}");
}

#[tokio::test]
async fn a_foreign_browser_origin_is_refused_on_data_routes() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append_numbered("line", 0..2);
    let server = Server::start(&[log.path_str()]);
    let client = reqwest::Client::new();
    let response = client
        .get(server.url("/poll?file=app.log"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "forbidden_origin", "{body}");
    assert_eq!(
        ws_upgrade(&server.ws_url("/ws"), &[("Origin", "https://evil.example")])
            .await
            .err()
            .map(|e| e.0),
        Some(403)
    );
    // The server's own origin is fine.
    let own = format!("http://{}", server.addr);
    let response = client
        .get(server.url("/poll?file=app.log"))
        .header("Origin", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Sends a raw GET with the given Host and Origin headers; returns (status, body).
fn raw_get_as(addr: &str, target: &str, host: &str, origin: &str) -> (u16, String) {
    let (status, _, body) = raw_request(
        addr,
        target,
        &format!("Host: {host}\r\nOrigin: {origin}\r\n"),
    );
    (status, body)
}

#[tokio::test]
async fn a_dns_rebinding_page_cannot_read_a_loopback_server() {
    // A page on http://evil.example:PORT whose name is re-pointed at 127.0.0.1 is same-origin
    // with itself: the browser sends `Host: evil.example:PORT` and `Origin:
    // http://evil.example:PORT`, which the Origin check takes as "the server's own host". A
    // loopback-bound server should only answer to loopback host names (and --allow-origin).
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append_line(SECRET);
    let server = Server::start(&[log.path_str()]);
    let port = server.addr.rsplit(':').next().unwrap();
    let host = format!("evil.example:{port}");
    let origin = format!("http://{host}");
    for target in [
        "/poll?file=app.log",
        "/api/files",
        "/api/page?file=app.log",
        "/api/search?file=app.log&q=line",
    ] {
        let (status, body) = raw_get_as(&server.addr, target, &host, &origin);
        assert!(
            status == 403 || status == 421 || status == 400,
            "{target} with Host {host}: expected a refusal, got {status}: {body}"
        );
        assert_no_leak(target, &body);
    }
    // Loopback names keep working.
    for host in [server.addr.clone(), format!("localhost:{port}")] {
        let (status, body) = raw_get_as(
            &server.addr,
            "/poll?file=app.log",
            &host,
            &format!("http://{host}"),
        );
        assert_eq!(status, 200, "Host {host}: {body}");
    }
}

/// A line from a hostile writer: OSC 52 (clipboard write), OSC 0 (title), a screen clear, a
/// bell, a carriage return and a C1 CSI, around an SGR colour and a tab that are harmless.
const HOSTILE: &str =
    "\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\tcol\u{9b}2J a\rb";
/// The same line as text transports send it.
const SHOWN: &str = "^[]52;c;ZXZpbA==^G^[]0;pwned^G^[[2J\x1b[31mred\x1b[0m\tcol\\u009b2J a^Mb";

/// Reads a streaming answer until it holds `needle`; returns what was read.
async fn stream_until(url: &str, needle: &str) -> String {
    let response = http_client().get(url).send().await.expect("stream request");
    assert_eq!(response.status(), 200, "{url}");
    let mut body = response.bytes_stream();
    let mut text = Vec::new();
    let deadline = tokio::time::Instant::now() + LONG;
    while !String::from_utf8_lossy(&text).contains(needle) {
        match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut body)).await {
            Ok(Some(Ok(chunk))) => text.extend_from_slice(&chunk),
            other => panic!(
                "{url}: no {needle:?} before {other:?}; got {:?}",
                String::from_utf8_lossy(&text)
            ),
        }
    }
    String::from_utf8(text).expect("UTF-8")
}

#[tokio::test]
async fn text_transports_show_terminal_escapes_instead_of_sending_them() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append(format!("{HOSTILE}\nafter\n").as_bytes());
    let server = Server::start(&[log.path_str()]);

    let text = |query: &str| {
        let url = server.url(&format!("/poll?file=app.log&format=text&backlog=2{query}"));
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    assert_eq!(text("").await, format!("{SHOWN}\nafter\n"), "poll text");
    assert_eq!(text("&raw=1").await, format!("{HOSTILE}\nafter\n"), "raw=1");

    let follow = stream_until(&server.url("/follow?file=app.log&backlog=2"), "after\n").await;
    assert_eq!(follow, format!("{SHOWN}\nafter\n"), "/follow");
    let url = server.url("/follow?file=app.log&backlog=2&raw=1");
    let follow = stream_until(&url, "after\n").await;
    assert_eq!(follow, format!("{HOSTILE}\nafter\n"), "/follow raw=1");

    let epoch = server.get_json("/poll?file=app.log&backlog=0").await["epoch"].clone();
    let sse = stream_until(&server.url("/sse?file=app.log&backlog=2"), "data: after").await;
    assert!(
        sse.contains(&format!("id: {epoch}-1\ndata: {SHOWN}\n\n")),
        "/sse: {sse:?}"
    );
    // Raw: the `\r` would end an SSE field, so it splits the data into two fields.
    let sse = stream_until(
        &server.url("/sse?file=app.log&backlog=2&raw=1"),
        "data: after",
    )
    .await;
    let (before_cr, after_cr) = HOSTILE.split_once('\r').unwrap();
    assert!(
        sse.contains(&format!(
            "id: {epoch}-1\ndata: {before_cr}\ndata: {after_cr}\n\n"
        )),
        "/sse raw=1: {sse:?}"
    );

    // JSON transports carry the line as it is (JSON escapes control characters itself).
    let answer = server.get_json("/poll?file=app.log&backlog=2").await;
    assert_eq!(answer["lines"][0], HOSTILE, "poll JSON");
    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 2).await;
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 2, LONG, &mut lines).await;
    assert_eq!(lines[0].1, HOSTILE, "WebSocket");

    let (status, _, body) = raw_get(&server.addr, "/follow?file=app.log&raw=maybe");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`raw`"), "{body}");
}

#[tokio::test]
async fn forwarded_host_headers_count_only_from_a_trusted_proxy() {
    // A page on evil.example sends its Origin, and adds the forwarded headers that would make it
    // look like the server's own host.
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append_line(SECRET);
    let forged = |addr: &str, forwarded: &str| {
        raw_request(
            addr,
            "/poll?file=app.log",
            &format!("Host: {addr}\r\nOrigin: http://evil.example\r\n{forwarded}"),
        )
    };
    let headers = [
        "X-Forwarded-Host: evil.example\r\n",
        "Forwarded: for=192.0.2.1;host=evil.example\r\n",
    ];
    // Trusting nobody, or a range the test's own connection is not in.
    for args in [
        vec![],
        vec!["--trust-proxy".to_owned(), "10.0.0.0/8,::1".to_owned()],
    ] {
        let mut args = args;
        args.push(log.path_str());
        let server = Server::start(&args);
        for forwarded in headers {
            let (status, _, body) = forged(&server.addr, forwarded);
            assert_eq!(status, 403, "{args:?} {forwarded:?}: {body}");
            assert!(body.contains("forbidden_origin"), "{body}");
            assert_no_leak(forwarded, &body);
        }
    }
    // The connection comes from 127.0.0.1: with it trusted, the forwarded host is believed.
    let server = Server::start(&[
        "--trust-proxy",
        "192.0.2.0/24",
        "--trust-proxy",
        "127.0.0.1",
        &log.path_str(),
    ]);
    for forwarded in headers {
        let (status, _, body) = forged(&server.addr, forwarded);
        assert_eq!(status, 200, "trusted {forwarded:?}: {body}");
        assert!(body.contains(SECRET), "{body}");
        // A forwarded host that is not the Origin's is still refused.
        let other = forwarded.replace("evil.example", "logs.example.com");
        assert_eq!(forged(&server.addr, &other).0, 403, "{other:?}");
    }
    // A malformed address (here from the environment) is one sentence at start.
    let (code, _, stderr) = run_to_exit(
        &[&log.path_str()],
        &[("TAILCAST_TRUST_PROXY", "127.0.0.1,localhost")],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("10.0.0.0/8"), "{stderr}");
}
