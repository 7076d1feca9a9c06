//! Running tailcast as a service: `curl -N` on `/follow`, SSE with `Last-Event-ID`, Prometheus
//! metrics parsed by a real parser, `--base-path`, and the documented nginx config with Debian's
//! real nginx in front (page, `/ws`, `/poll`, `/sse` through the proxy).

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn curl_n_on_follow_prints_appended_lines_at_once() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "old", 0..20);
    let server = Server::start(&[path_str(&log)]);
    let mut curl = Command::new("curl")
        .args(["-sN", &server.url("/follow?file=app.log&backlog=2")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl (Debian: apt-get install curl)");
    let lines = stdout_lines(&mut curl);
    for expected in ["old-18", "old-19"] {
        let (_, line) = lines.recv_timeout(LONG).expect("backlog line");
        assert_eq!(line, expected);
    }
    let mut latencies = Vec::new();
    for i in 0..20 {
        let written = Instant::now();
        append(&log, format!("new-{i}\n").as_bytes());
        let (at, line) = lines.recv_timeout(LONG).expect("live line");
        assert_eq!(line, format!("new-{i}"));
        latencies.push(at.duration_since(written));
    }
    let _ = curl.kill();
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    println!(
        "curl -N /follow: append-to-print median {median:?}, max {:?}",
        latencies.last().unwrap()
    );
    assert!(median < Duration::from_millis(500), "median {median:?}");
}

#[tokio::test]
async fn curl_n_on_follow_gets_a_burst_far_larger_than_the_history_without_a_gap() {
    // As for WebSocket clients (tests/websocket.rs): a streaming client that keeps reading is
    // paced for, so a burst far larger than the history reaches it whole, even when the client
    // is slower than the server: 7.5 MB (more than the socket buffers hold) read by curl at
    // 3 MB/s.
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "ready\n").unwrap();
    let server = Server::start(&[
        "--history-bytes",
        "512KiB",
        "--pace-timeout",
        "10s",
        &path_str(&log),
    ]);
    let mut curl = Command::new("curl")
        .args(["-sN", "--limit-rate", "3M"])
        .arg(server.url("/follow?file=app.log&backlog=1"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl (Debian: apt-get install curl)");
    let lines = stdout_lines(&mut curl);
    // The backlog line printed: the stream is open, what comes next is live.
    let (_, first) = lines.recv_timeout(LONG).expect("the backlog line");
    assert_eq!(first, "ready");
    let total = 100_000;
    let prefix = "a-padded-line-of-about-seventy-five-bytes-written-in-one-burst-number";
    append_numbered(&log, prefix, 0..total);
    let mut got = Vec::with_capacity(total);
    while got.len() < total {
        let (_, line) = lines
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("only {} of {total} lines", got.len()));
        got.push(line);
    }
    let _ = curl.kill();
    assert_lines_eq(&got, &numbered(prefix, 0..total));
    assert_eq!(server.stats().await["gaps"], 0);
}

/// Reads SSE events (with a real SSE parser) until `n` line events came; returns (id, data).
async fn sse_lines(url: &str, last_event_id: Option<&str>, n: usize) -> Vec<(u64, String)> {
    let mut request = reqwest::Client::new().get(url);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.send().await.expect("SSE request");
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let mut events = response.bytes_stream().eventsource();
    let mut lines = Vec::new();
    while lines.len() < n {
        let event = tokio::time::timeout(LONG, events.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("valid SSE");
        assert_eq!(event.event, "message", "unexpected event {event:?}");
        // `id: EPOCH-SEQ`.
        let (epoch, seq) = event.id.split_once('-').expect("a qualified id");
        assert!(epoch.parse::<u64>().is_ok(), "{event:?}");
        lines.push((seq.parse().expect("numeric seq"), event.data));
    }
    lines
}

#[tokio::test]
async fn sse_reconnecting_with_last_event_id_loses_and_repeats_nothing() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[path_str(&log)]);
    let writer = write_in_bursts(&log, "line", 0..2000, 40, Duration::from_millis(5));
    let url = server.url("/sse?file=app.log&after=0");
    let mut got: Vec<(u64, String)> = Vec::new();
    let mut connections = 0;
    while got.len() < 2000 {
        // A browser's EventSource reconnects with the id of the last event it saw.
        let last = got.last().map(|(id, _)| id.to_string());
        let want = (2000 - got.len()).min(300);
        got.extend(sse_lines(&url, last.as_deref(), want).await);
        connections += 1;
    }
    writer.join().unwrap();
    let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (1..=2000).collect::<Vec<u64>>(),
        "ids are consecutive seqs"
    );
    let texts: Vec<String> = got.into_iter().map(|(_, l)| l).collect();
    assert_lines_eq(&texts, &numbered("line", 0..2000));
    assert!(connections >= 7, "reconnected {connections} times");
}

/// Parses an OpenMetrics/Prometheus text exposition with the Prometheus project's own Python
/// parser and returns {sample name with labels: value}.
fn parse_metrics(text: &str) -> std::collections::HashMap<String, f64> {
    let script = r#"
import sys, json
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser rejected /metrics (or is missing: pip install prometheus-client): {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn metrics_parse_and_move_as_things_happen() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[path_str(&log)]);
    let scrape = || async {
        let response = reqwest::get(server.url("/metrics")).await.unwrap();
        assert_eq!(response.status(), 200);
        parse_metrics(&response.text().await.unwrap())
    };
    let before = scrape().await;
    assert_eq!(before["tailcast_files_watched"], 1.0);
    assert_eq!(before["tailcast_lines_read_total"], 0.0);

    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 0).await;
    append_numbered(&log, "line", 0..10);
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 10, LONG, &mut lines).await;
    std::fs::rename(&log, join(&dir, "app.log.1")).unwrap();
    append_numbered(&log, "next", 0..1);
    server.wait_last_seq("app.log", 11, LONG).await;

    let after = scrape().await;
    assert_eq!(after["tailcast_lines_read_total"], 11.0);
    assert_eq!(after["tailcast_bytes_read_total"], (10 * 7 + 7) as f64);
    assert_eq!(after["tailcast_clients{transport=websocket}"], 1.0);
    assert_eq!(after["tailcast_file_last_seq{file=app.log}"], 11.0);
    assert!(after["tailcast_frames_sent_total"] > before["tailcast_frames_sent_total"]);
    assert!(after["tailcast_bytes_sent_total"] > 0.0);
    assert_eq!(after["tailcast_rotations_total"], 1.0);
    drop(ws);
}

#[tokio::test]
async fn base_path_prefixes_every_route() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "line", 0..3);
    let server = Server::start(&["--base-path", "/logs/", &path_str(&log)]);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| client.get(server.url(path)).send();
    let redirect = get("/logs").await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/logs/");
    let page = get("/logs/").await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("src=\"/") && !html.contains("href=\"/"),
        "the page must use relative URLs only"
    );
    for path in [
        "/logs/app.js",
        "/logs/style.css",
        "/logs/api/files",
        "/logs/api/stats",
        "/logs/healthz",
        "/logs/metrics",
        "/logs/poll?file=app.log",
    ] {
        assert_eq!(get(path).await.unwrap().status(), 200, "{path}");
    }
    for path in ["/", "/api/files", "/poll?file=app.log", "/healthz"] {
        assert_eq!(
            get(path).await.unwrap().status(),
            404,
            "{path} outside the prefix"
        );
    }
    let mut ws = WsClient::connect_url(&server.ws_url("/logs/ws")).await;
    ws.subscribe_backlog("app.log", 3).await;
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 3, LONG, &mut lines).await;
}

/// Debian's nginx with `docs/nginx.conf`, listening on a free port and proxying to `upstream`.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(upstream: &str) -> Nginx {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nginx is needed for this test: apt-get install nginx (scripts/test-all.sh does it)");
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let dir = temp_dir();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let documented =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/nginx.conf"))
                .unwrap();
        assert!(documented.contains("listen 80;") && documented.contains("127.0.0.1:7070"));
        let site = documented
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
            .replace("127.0.0.1:7070", upstream);
        let prefix = dir.path().display();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log stderr warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {prefix}/body;\n  \
             proxy_temp_path {prefix}/proxy;\n  fastcgi_temp_path {prefix}/fastcgi;\n  \
             uwsgi_temp_path {prefix}/uwsgi;\n  scgi_temp_path {prefix}/scgi;\n{site}\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, main).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would leave them running).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_documented_nginx_config_proxies_page_websocket_poll_and_sse() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "line", 0..5);
    let server = Server::start(&["--base-path", "/logs", &path_str(&log)]);
    let nginx = Nginx::start(&server.addr);
    let base = format!("http://127.0.0.1:{}", nginx.port);

    let page = reqwest::get(format!("{base}/logs/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("tailcast"));
    let asset = reqwest::get(format!("{base}/logs/app.js")).await.unwrap();
    assert_eq!(asset.status(), 200);

    // WebSocket through the proxy, with the browser-style Origin of the proxy's own host.
    let mut ws = WsClient::connect_url(&format!("ws://127.0.0.1:{}/logs/ws", nginx.port)).await;
    ws.subscribe_backlog("app.log", 5).await;
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 5, LONG, &mut lines).await;

    // A held poll through the proxy is answered by an append (no proxy buffering).
    let poll = tokio::spawn(reqwest::get(format!(
        "{base}/logs/poll?file=app.log&after=5&timeout=30"
    )));
    wait_for(LONG, || async {
        (server.get_json("/logs/api/stats").await["polls_waiting"] == 1).then_some(())
    })
    .await
    .expect("poll held through nginx");
    append(&log, b"through nginx\n");
    let answer: Value = poll.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(answer["lines"][0], "through nginx");
    ws.collect_lines("app.log", 6, LONG, &mut lines).await;
    assert_eq!(lines[5].1, "through nginx");

    // SSE through the proxy streams as lines come.
    let sse = tokio::spawn(sse_lines_owned(
        format!("{base}/logs/sse?file=app.log&after=6"),
        1,
    ));
    wait_for(LONG, || async {
        (server.get_json("/logs/api/stats").await["stream_clients"] == 1).then_some(())
    })
    .await
    .expect("SSE open through nginx");
    append(&log, b"sse through nginx\n");
    let got = tokio::time::timeout(LONG, sse)
        .await
        .expect("SSE in time")
        .unwrap();
    assert_eq!(got, vec![(7, "sse through nginx".to_owned())]);

    // Origin as a browser on the proxy would send it is accepted; another site is refused.
    let ws_url = format!("ws://127.0.0.1:{}/logs/ws", nginx.port);
    let own = format!("http://127.0.0.1:{}", nginx.port);
    let origin_ok = upgrade_status(&ws_url, &[("Origin", &own)]).await;
    assert_eq!(origin_ok, 101);
    let origin_bad = upgrade_status(&ws_url, &[("Origin", "https://evil.example")]).await;
    assert_eq!(origin_bad, 403);

    // The dashboard in headless Chromium through nginx under /logs/: page, assets, WebSocket,
    // and a live line (the browser suite's `load` check against this server).
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new("node")
        .arg("tests/browser/dashboard.mjs")
        .current_dir(root)
        .env("TAILCAST_URL", format!("{base}/logs/"))
        .env("TAILCAST_FILES", path_str(&log))
        .env("TAILCAST_ONLY", "load")
        .output()
        .expect("node (needed for the browser check; scripts/test-all.sh installs what it needs)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("1 passed, 0 failed, 0 skipped"),
        "the dashboard under nginx's /logs/ failed ({}):\n{text}",
        output.status
    );
    println!("{text}");
}

async fn sse_lines_owned(url: String, n: usize) -> Vec<(u64, String)> {
    sse_lines(&url, None, n).await
}
