//! Server-side filtering (`grep=`) on every transport, compared with the real `grep -E` over the
//! same file: the same lines, with their real seqs, and a resume that neither loses nor repeats a
//! line; and the refusals of what a client gets wrong: an unknown or repeated parameter, a bad or
//! too long pattern.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(60);

/// Lines numbered 1..=LINES; about one in six matches [`PATTERN`].
const LINES: usize = 3000;
const PATTERN: &str = "ERROR|user1[0-9] took [0-9]*5ms$";

fn line(i: usize) -> String {
    let level = ["INFO", "DEBUG", "WARN", "INFO", "ERROR", "INFO", "DEBUG"][i * 7 % 13 % 7];
    format!(
        "{i:05} {level} user{} took {}ms é",
        i * 31 % 23,
        i * 17 % 101
    )
}

/// A server following `app.log`, which holds [`LINES`] lines, all read.
async fn server_with_lines(extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf, Server) {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let mut args = vec![path_str(&log)];
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Server::start(&args);
    let mut text = String::new();
    for i in 1..=LINES {
        text.push_str(&line(i));
        text.push('\n');
    }
    append(&log, text.as_bytes());
    server.wait_last_seq("app.log", LINES as u64, LONG).await;
    (dir, log, server)
}

/// What `grep -E -n PATTERN FILE` prints, as (line number, line): line numbers are seqs here.
fn real_grep(pattern: &str, invert: bool, path: &std::path::Path) -> Vec<(u64, String)> {
    let mut command = std::process::Command::new("grep");
    command.args(["-E", "-n"]);
    if invert {
        command.arg("-v");
    }
    let output = command.arg(pattern).arg(path).output().expect("run grep");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, text) = l.split_once(':').unwrap();
            (n.parse().unwrap(), text.to_owned())
        })
        .collect()
}

/// The lines of `lines` after the seq `seq`.
fn lines_after(lines: &[(u64, String)], seq: u64) -> Vec<(u64, String)> {
    lines.iter().filter(|(s, _)| *s > seq).cloned().collect()
}

fn query_pattern(pattern: &str) -> String {
    pattern
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `/poll?file=app.log&grep=...` from `after` until the cursor reaches `until`; returns
/// the (seq, line) pairs and the last cursor.
async fn poll_filtered(
    server: &Server,
    extra: &str,
    mut after: u64,
    until: u64,
) -> (Vec<(u64, String)>, u64) {
    let client = http_client();
    let mut got = Vec::new();
    let deadline = Instant::now() + LONG;
    while after < until {
        assert!(Instant::now() < deadline, "poll stuck at {after}");
        let url = server.url(&format!(
            "/poll?file=app.log&after={after}&timeout=5&max=50{extra}"
        ));
        let answer: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        let lines = answer["lines"].as_array().expect("lines");
        let seqs = answer["seqs"]
            .as_array()
            .expect("a filtered answer has seqs");
        assert_eq!(seqs.len(), lines.len(), "{answer}");
        assert!(answer["gap"].is_null(), "{answer}");
        for (seq, line) in seqs.iter().zip(lines) {
            got.push((seq.as_u64().unwrap(), line.as_str().unwrap().to_owned()));
        }
        let last = answer["last_seq"].as_u64().unwrap();
        assert!(last > after || lines.is_empty(), "{answer}");
        assert!(
            seqs.last().map_or(true, |s| s.as_u64().unwrap() <= last),
            "{answer}"
        );
        after = last;
    }
    (got, after)
}

#[tokio::test]
async fn poll_with_grep_returns_what_grep_e_returns_with_the_real_seqs_and_resumes_exactly() {
    let (_dir, log, server) = server_with_lines(&[]).await;
    let expected = real_grep(PATTERN, false, &log);
    assert!(
        expected.len() > 100 && expected.len() < LINES / 2,
        "{}",
        expected.len()
    );
    let grep = format!("&grep={}", query_pattern(PATTERN));
    let (got, cursor) = poll_filtered(&server, &grep, 0, LINES as u64).await;
    assert_eq!(got, expected);
    assert_eq!(cursor, LINES as u64);

    // Resumed from the middle, the rest, once.
    let middle = expected[expected.len() / 2].0;
    let (rest, _) = poll_filtered(&server, &grep, middle, LINES as u64).await;
    let want = lines_after(&expected, middle);
    assert_eq!(rest, want);

    // grep_invert is `grep -v`.
    let inverted = format!("{grep}&grep_invert=1");
    let (got, _) = poll_filtered(&server, &inverted, 0, LINES as u64).await;
    assert_eq!(got, real_grep(PATTERN, true, &log));

    // Live: lines the filter drops move the cursor without an answer; a kept line answers.
    let client = http_client();
    let url = server.url(&format!(
        "/poll?file=app.log&after={LINES}&timeout=30&grep=needle"
    ));
    let held = tokio::spawn(client.get(url).send());
    wait_polls_held(&server, 1, LONG).await;
    append(&log, b"hay 1\nhay 2\n");
    server
        .wait_last_seq("app.log", LINES as u64 + 2, LONG)
        .await;
    append(&log, b"a needle here\nhay 3\n");
    let answer: Value = held.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(answer["lines"], json!(["a needle here"]), "{answer}");
    assert_eq!(answer["seqs"], json!([LINES + 3]), "{answer}");
    assert_eq!(answer["first_seq"], LINES + 3, "{answer}");
    assert!(
        answer["last_seq"].as_u64().unwrap() >= LINES as u64 + 3,
        "{answer}"
    );
}

#[tokio::test]
async fn a_filter_that_matches_nothing_holds_the_poll_and_still_moves_the_cursor() {
    let (_dir, log, server) = server_with_lines(&[]).await;
    let client = http_client();
    // Over the whole history, nothing matches: answered at its timeout, past every line.
    let started = Instant::now();
    let url = server.url("/poll?file=app.log&after=0&timeout=1&grep=%5Enothing%24");
    let answer: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "{answer}");
    assert_eq!(answer["lines"], json!([]), "{answer}");
    assert_eq!(answer["seqs"], json!([]), "{answer}");
    assert_eq!(
        answer["last_seq"], LINES,
        "a filtered stretch is read past: {answer}"
    );
    assert!(
        answer["gap"].is_null(),
        "filtered lines are no gap: {answer}"
    );
    // Many lines that do not match arrive during a held poll: still held, then the cursor moves
    // past them (over as many polls as the server took to read them all), never a line or gap.
    let held = |after: u64| {
        let url = server.url(&format!(
            "/poll?file=app.log&after={after}&timeout=1&grep=%5Enothing%24&format=text"
        ));
        client.get(url).send()
    };
    let first = tokio::spawn(held(LINES as u64));
    wait_polls_held(&server, 1, LONG).await;
    append_numbered(&log, "noise", 0..20_000);
    let total = LINES as u64 + 20_000;
    let mut response = first.await.unwrap().unwrap();
    let deadline = Instant::now() + LONG;
    loop {
        assert!(response.headers().get("x-tailcast-gap").is_none());
        let cursor = response.headers()["x-tailcast-cursor"].to_str().unwrap();
        let seq: u64 = cursor.split_once('-').unwrap().1.parse().unwrap();
        assert_eq!(response.text().await.unwrap(), "");
        if seq == total {
            break;
        }
        assert!(seq < total && Instant::now() < deadline, "cursor {seq}");
        response = held(seq).await.unwrap();
    }
}

/// The (seq, data) of the SSE line events in `text`, checking their ids' epoch.
async fn sse_lines(text: &str, epoch: u64) -> Vec<(u64, String)> {
    sse_events(text)
        .await
        .into_iter()
        .filter(|e| e.event == "message" && !e.data.is_empty())
        .map(|e| {
            let (e_epoch, seq) = e.id.split_once('-').expect("qualified id");
            assert_eq!(e_epoch, epoch.to_string());
            (seq.parse().unwrap(), e.data)
        })
        .collect()
}

async fn epoch(server: &Server) -> u64 {
    let answer = server.get_json("/poll?file=app.log&backlog=0").await;
    answer["epoch"].as_u64().unwrap()
}

#[tokio::test]
async fn sse_and_follow_with_grep_send_what_grep_e_returns_and_sse_resumes_exactly() {
    // A short heartbeat: the resume point moves past dropped lines on it.
    let (_dir, log, server) = server_with_lines(&["--heartbeat", "200ms"]).await;
    let expected = real_grep(PATTERN, false, &log);
    let epoch = epoch(&server).await;
    let grep = query_pattern(PATTERN);
    let last = expected.last().unwrap().0;
    let url = server.url(&format!("/sse?file=app.log&after=0&grep={grep}"));
    let text = stream_until(LONG, &url, &[], &format!("id: {epoch}-{last}\n")).await;
    assert_eq!(sse_lines(&text, epoch).await, expected);

    // Last-Event-ID resumes after it: the rest, once.
    let middle = expected[expected.len() / 2].0;
    let id = format!("{epoch}-{middle}");
    let url = server.url(&format!("/sse?file=app.log&grep={grep}"));
    let text = stream_until(
        LONG,
        &url,
        &[("Last-Event-ID", &id)],
        &format!("id: {epoch}-{last}\n"),
    )
    .await;
    let want = lines_after(&expected, middle);
    assert_eq!(sse_lines(&text, epoch).await, want);

    // Lines the filter drops move the resume point (an id without data) on the heartbeat.
    append(&log, b"hay 1\nhay 2\n");
    let after_hay = format!("id: {epoch}-{}\n\n: ping", LINES + 2);
    let url = server.url(&format!("/sse?file=app.log&after={LINES}&grep=needle"));
    let text = stream_until(LONG, &url, &[], &after_hay).await;
    assert!(!text.contains("data: hay"), "{text}");

    // /follow prints what `grep -E` prints.
    let last_line = &expected.last().unwrap().1;
    let url = server.url(&format!("/follow?file=app.log&after=0&grep={grep}"));
    let text = stream_until(LONG, &url, &[], &format!("{last_line}\n")).await;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let want: Vec<String> = expected.iter().map(|(_, l)| l.clone()).collect();
    assert_lines_eq(&lines, &want);
}

/// Collects a WebSocket's filtered `lines` messages for `file` until the seq `last`.
async fn ws_filtered(ws: &mut WsClient, last: u64) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    while got.last().map(|(s, _)| *s) != Some(last) {
        let msg = ws.next_json(LONG).await.expect("a message");
        if msg["type"] != "lines" {
            assert_eq!(msg["type"], "pong", "{msg}");
            continue;
        }
        let lines = msg["lines"].as_array().unwrap();
        let seqs = msg["seqs"].as_array().expect("filtered lines carry seqs");
        assert_eq!(lines.len(), seqs.len(), "{msg}");
        assert_eq!(msg["seq"], seqs[0], "{msg}");
        for (seq, line) in seqs.iter().zip(lines) {
            got.push((seq.as_u64().unwrap(), line.as_str().unwrap().to_owned()));
        }
    }
    got
}

#[tokio::test]
async fn websocket_subscribe_with_grep_sends_what_grep_e_returns_with_seqs_and_resumes_exactly() {
    let (_dir, log, server) = server_with_lines(&[]).await;
    let expected = real_grep(PATTERN, false, &log);
    let last = expected.last().unwrap().0;
    let mut ws = WsClient::connect(&server).await;
    let epoch = ws.hello["epoch"].clone();
    ws.send(json!({"type":"subscribe","file":"app.log","after":0,"epoch":epoch,"grep":PATTERN}))
        .await;
    assert_eq!(ws_filtered(&mut ws, last).await, expected);
    // Live lines: only those kept, with their seqs.
    append(&log, b"hay\nERROR live one\nhay\nERROR live two\n");
    let live = ws_filtered(&mut ws, LINES as u64 + 4).await;
    let live_lines = [
        (LINES as u64 + 2, "ERROR live one".to_owned()),
        (LINES as u64 + 4, "ERROR live two".to_owned()),
    ];
    assert_eq!(live, live_lines);
    drop(ws);
    let mut expected = expected;
    expected.extend(live_lines);
    assert_eq!(expected, real_grep(PATTERN, false, &log));

    // A new connection resumes after a seq it had: the rest, once.
    let middle = expected[expected.len() / 2].0;
    let mut ws = WsClient::connect(&server).await;
    ws.send(json!({"type":"subscribe","file":"app.log","after":middle,"grep":PATTERN}))
        .await;
    let rest = ws_filtered(&mut ws, LINES as u64 + 4).await;
    let want = lines_after(&expected, middle);
    assert_eq!(rest, want);

    // Without grep, lines messages are as before: no seqs.
    ws.subscribe_backlog("app.log", 3).await;
    let msg = ws.next_json(LONG).await.unwrap();
    assert_eq!(msg["type"], "lines", "{msg}");
    assert!(msg.get("seqs").is_none(), "{msg}");

    // A bad pattern is an error that says why; the connection stays.
    ws.send(json!({"type":"subscribe","file":"app.log","grep":"a(b"}))
        .await;
    let msg = ws.next_json(LONG).await.unwrap();
    assert_eq!(msg["code"], "bad_grep", "{msg}");
    assert!(
        msg["message"].as_str().unwrap().contains("unclosed group"),
        "{msg}"
    );
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.next_json(LONG).await.unwrap()["type"], "pong");
}

/// The status and JSON body of a GET.
async fn get(server: &Server, path_and_query: &str) -> (u16, Value) {
    let response = http_client()
        .get(server.url(path_and_query))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn unknown_and_repeated_parameters_and_bad_patterns_are_refused_naming_them() {
    let (_dir, _log, server) = server_with_lines(&["--max-grep-bytes", "64"]).await;
    for path in [
        "/poll?file=app.log&grpe=x",
        "/sse?file=app.log&grpe=x",
        "/follow?file=app.log&grpe=x",
        "/api/files?grpe=x",
        "/api/stats?grpe=x",
    ] {
        let (status, body) = get(&server, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "unknown_parameter", "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("unknown parameter `grpe`; known: "),
            "{path}: {message}"
        );
        assert!(message.contains("token"), "{path}: {message}");
        if !path.starts_with("/api") {
            assert!(
                message.contains("file, after, backlog"),
                "{path}: {message}"
            );
        }
    }
    let (_, body) = get(&server, "/poll?file=app.log&grpe=x").await;
    assert!(
        body["message"].as_str().unwrap().contains("timeout"),
        "{body}"
    );
    assert_eq!(upgrade_status(&server.ws_url("/ws?grpe=x"), &[]).await, 400);
    assert_eq!(upgrade_status(&server.ws_url("/ws"), &[]).await, 101);

    let long = "a".repeat(65);
    for endpoint in ["/poll", "/sse", "/follow"] {
        for (query, needles) in [
            ("file=app.log&file=app.log", &["`file`", "given twice"][..]),
            ("file=app.log&grep=a(b", &["`grep`", "unclosed group"][..]),
            (
                &format!("file=app.log&grep={long}"),
                &["`grep`", "--max-grep-bytes"][..],
            ),
        ] {
            let (status, body) = get(&server, &format!("{endpoint}?{query}")).await;
            assert_eq!(status, 400, "{endpoint}?{query}: {body}");
            assert_eq!(body["error"], "bad_parameter", "{endpoint}?{query}: {body}");
            let message = body["message"].as_str().unwrap();
            for needle in needles {
                assert!(message.contains(needle), "{endpoint}?{query}: {message}");
            }
        }
    }
    // Known parameters still work, the token among them.
    let (status, body) = get(&server, "/poll?file=app.log&backlog=1&token=&grep=ERROR").await;
    assert_eq!(status, 200, "{body}");
}
