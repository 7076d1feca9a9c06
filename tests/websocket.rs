//! The WebSocket endpoint, through a real WebSocket client: backlog then live, many clients and
//! files, resume by seq, heartbeat and dead-client timeout, slow consumers, bad input, access
//! checks, graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn backlog_then_ten_thousand_live_lines_in_far_fewer_frames() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "line", 0..20);
    let server = Server::start(&[path_str(&log)]);
    let mut ws = WsClient::connect(&server).await;
    assert_eq!(ws.hello["version"], 1);
    assert_eq!(ws.hello["files"][0]["id"], "app.log");
    ws.subscribe_backlog("app.log", 5).await;
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 5, LONG, &mut lines).await;
    assert_eq!(
        lines.first().unwrap().0,
        16,
        "backlog 5 of 20 starts at seq 16"
    );
    let texts: Vec<String> = lines.iter().map(|(_, l)| l.clone()).collect();
    assert_lines_eq(&texts, &numbered("line", 15..20));

    let writer = write_in_bursts(&log, "line", 20..10_020, 100, Duration::ZERO);
    let (frames, others) = ws.collect_lines("app.log", 10_005, LONG, &mut lines).await;
    writer.join().unwrap();
    let texts: Vec<String> = lines.iter().map(|(_, l)| l.clone()).collect();
    assert_lines_eq(&texts, &numbered("line", 15..10_020));
    assert!(others.is_empty(), "unexpected messages: {others:?}");
    assert!(
        frames <= 1000,
        "10 000 lines came in {frames} frames: lines are not batched"
    );
    println!("10 000 lines in {frames} frames");
}

#[tokio::test]
async fn three_clients_on_two_files_get_exactly_their_lines_until_they_unsubscribe() {
    let dir = temp_dir();
    let a = join(&dir, "a.log");
    let b = join(&dir, "b.log");
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    let server = Server::start(&[path_str(&a), path_str(&b)]);
    let mut only_a = WsClient::connect(&server).await;
    let mut only_b = WsClient::connect(&server).await;
    let mut both = WsClient::connect(&server).await;
    only_a.subscribe_backlog("a.log", 0).await;
    only_b.subscribe_backlog("b.log", 0).await;
    both.subscribe_backlog("a.log", 0).await;
    both.subscribe_backlog("b.log", 0).await;

    append_numbered(&a, "a", 0..50);
    append_numbered(&b, "b", 0..50);
    let mut got = Vec::new();
    let (_, others) = only_a.collect_lines("a.log", 50, LONG, &mut got).await;
    assert!(others.is_empty(), "a-only client got {others:?}");
    let mut got = Vec::new();
    let (_, others) = only_b.collect_lines("b.log", 50, LONG, &mut got).await;
    assert!(others.is_empty(), "b-only client got {others:?}");
    // The client on both files: collect everything until 100 lines.
    let mut count = std::collections::HashMap::new();
    while count.values().sum::<usize>() < 100 {
        let msg = both.next_non_ping(LONG).await.expect("lines");
        assert_eq!(msg["type"], "lines", "{msg}");
        *count
            .entry(msg["file"].as_str().unwrap().to_owned())
            .or_insert(0) += msg["lines"].as_array().unwrap().len();
    }
    assert_eq!(count["a.log"], 50);
    assert_eq!(count["b.log"], 50);

    // Unsubscribe stops delivery: after a ping round trip (so the unsubscribe was handled),
    // new lines of a.log do not come, lines of b.log still do.
    both.send(json!({"type":"unsubscribe","file":"a.log"}))
        .await;
    both.send(json!({"type":"ping"})).await;
    assert_eq!(both.next_non_ping(LONG).await.unwrap()["type"], "pong");
    append_numbered(&a, "a", 50..60);
    append_numbered(&b, "b", 50..51);
    let msg = both.next_non_ping(LONG).await.unwrap();
    assert_eq!(
        msg["file"], "b.log",
        "only b.log after unsubscribing a.log: {msg}"
    );
    let mut got = Vec::new();
    only_a.collect_lines("a.log", 10, LONG, &mut got).await;
    assert_eq!(got[0].1, "a-50", "a-only client still receives");
}

#[tokio::test]
async fn reconnect_with_after_loses_and_repeats_nothing_while_lines_keep_coming() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[path_str(&log)]);
    let total = 20_000;
    let writer = write_in_bursts(&log, "line", 0..total, 100, Duration::from_millis(2));
    let mut lines: Vec<(u64, String)> = Vec::new();
    let mut reconnects = 0;
    while lines.len() < total {
        let mut ws = WsClient::connect(&server).await;
        let after = lines.last().map(|(seq, _)| *seq).unwrap_or(0);
        ws.subscribe_after("app.log", after).await;
        // Take a few frames, then drop the connection abruptly.
        for _ in 0..5 {
            let Some(msg) = ws.next_non_ping(LONG).await else {
                break;
            };
            assert_eq!(msg["type"], "lines", "{msg}");
            let seq = msg["seq"].as_u64().unwrap();
            assert_eq!(
                seq,
                lines.last().map(|(s, _)| s + 1).unwrap_or(1),
                "no loss, no repeat"
            );
            for (i, l) in msg["lines"].as_array().unwrap().iter().enumerate() {
                lines.push((seq + i as u64, l.as_str().unwrap().to_owned()));
            }
            if lines.len() >= total {
                break;
            }
        }
        drop(ws);
        reconnects += 1;
    }
    writer.join().unwrap();
    let texts: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
    assert_lines_eq(&texts, &numbered("line", 0..total));
    assert!(reconnects > 3, "the test reconnected {reconnects} times");
}

#[tokio::test]
async fn heartbeat_keeps_live_clients_and_drops_silent_ones() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    // Defaults first: 30 s and 35 s.
    {
        let server = Server::start(&[path_str(&log)]);
        let ws = WsClient::connect(&server).await;
        assert_eq!(ws.hello["heartbeat_ms"], 30_000);
        assert_eq!(ws.hello["timeout_ms"], 35_000);
    }
    let server = Server::start(&[
        "--heartbeat",
        "200ms",
        "--client-timeout",
        "500ms",
        &path_str(&log),
    ]);

    // A client that answers every ping is kept for 5 s (and keeps answering in the background
    // while the silent one is watched).
    let mut live = WsClient::connect(&server).await;
    live.subscribe_backlog("app.log", 0).await;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let answering = tokio::spawn(async move {
        let started = Instant::now();
        let mut pings = 0;
        loop {
            tokio::select! {
                _ = &mut stop_rx => return (live, pings, started.elapsed()),
                msg = live.next_json(Duration::from_secs(2)) => {
                    let msg = msg.expect("the answering client was closed");
                    if msg["type"] == "ping" {
                        pings += 1;
                        live.send(json!({"type":"pong"})).await;
                    }
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;

    // A client that goes silent (TCP left open, nothing read or written) is closed.
    let silent = WsClient::connect(&server).await;
    let silent_since = Instant::now();
    wait_for(LONG, || async {
        (server.stats().await["drops"] == 1).then_some(())
    })
    .await
    .expect("the silent client is dropped");
    let took = silent_since.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took <= Duration::from_millis(1500),
        "silent client closed after {took:?}, expected about 0.5 s"
    );
    let stats = server.stats().await;
    assert_eq!(
        stats["ws_clients"], 1,
        "only the live client is left: {stats}"
    );
    assert_eq!(
        stats["subscriptions"], 1,
        "only the live client's subscription is left"
    );
    drop(silent);

    stop_tx.send(()).unwrap();
    let (mut live, pings, kept) = answering.await.unwrap();
    assert!(kept >= Duration::from_secs(5));
    assert!(
        pings >= 25,
        "expected a ping every 200 ms, got {pings} in {kept:?}"
    );
    // The live client is still served.
    live.send(json!({"type":"ping"})).await;
    let msg = live
        .next_non_ping(Duration::from_secs(2))
        .await
        .expect("pong");
    assert_eq!(msg["type"], "pong");
}

#[tokio::test]
async fn a_burst_far_larger_than_the_history_reaches_a_slower_reading_client_without_a_gap() {
    // 100 000 lines of ~75 bytes (7.5 MB) land in the file at once; the history keeps at most
    // 512 KiB. The client has a 4 KiB receive buffer and pauses 20 ms after each frame, so it is
    // slower than the server and the kernel cannot hide that. Reading the file is paced to the
    // client (the file is the buffer, not memory), so it loses nothing; without pacing it gets
    // gaps. The generous pace timeout keeps a debug build on a loaded machine from looking
    // stalled.
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[
        "--history",
        "5000",
        "--history-bytes",
        "512KiB",
        "--pace-timeout",
        "10s",
        &path_str(&log),
    ]);
    let mut ws = WsClient::connect_small_buffer(&server).await;
    ws.pause_per_frame = Duration::from_millis(20);
    ws.subscribe_backlog("app.log", 0).await;
    let total = 100_000;
    let prefix = "a-padded-line-of-about-seventy-five-bytes-written-in-one-burst-number";
    append_numbered(&log, prefix, 0..total);
    let mut lines = Vec::new();
    let (_, others) = ws.collect_lines("app.log", total, LONG, &mut lines).await;
    assert!(others.is_empty(), "the client was sent {others:?}");
    let texts: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
    assert_lines_eq(&texts, &numbered(prefix, 0..total));
    assert_eq!(server.stats().await["gaps"], 0);
}

#[tokio::test]
async fn lines_that_follow_each_other_closely_share_a_frame() {
    // With --coalesce 1s: a line after a quiet spell goes out alone and at once; the nine that
    // follow it within the interval wait for it to pass and go out together. Each of the nine is
    // written only once the server has read the one before (its read offset says so), so without
    // coalescing they would be nine batches and nine frames.
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&["--coalesce", "1s", &path_str(&log)]);
    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 0).await;
    append_numbered(&log, "first", 0..1);
    let mut lines = Vec::new();
    let (frames, _) = ws.collect_lines("app.log", 1, LONG, &mut lines).await;
    assert_eq!(frames, 1);
    let sent_at = Instant::now();
    for i in 0..9 {
        append_numbered(&log, "next", i..i + 1);
        let written = std::fs::metadata(&log).unwrap().len();
        let read = wait_for(LONG, || async {
            (server.file_info("app.log").await["size"].as_u64() == Some(written)).then_some(())
        })
        .await;
        assert!(read.is_some(), "the server never read line {i}");
    }
    let (frames, others) = ws.collect_lines("app.log", 10, LONG, &mut lines).await;
    assert!(others.is_empty(), "{others:?}");
    assert_eq!(frames, 1, "nine close lines came in {frames} frames");
    let texts: Vec<String> = lines.iter().map(|(_, l)| l.clone()).collect();
    let mut expected = numbered("first", 0..1);
    expected.extend(numbered("next", 0..9));
    assert_lines_eq(&texts, &expected);
    println!("the nine waited {:?}", sent_at.elapsed());
}

#[tokio::test]
async fn a_client_that_never_reads_cannot_hurt_the_server_or_a_fast_client() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&["--send-timeout", "2s", &path_str(&log)]);
    let rss_start = server.rss_kib();

    let mut stalled = WsClient::connect(&server).await;
    stalled.subscribe_backlog("app.log", 0).await;
    let mut fast = WsClient::connect(&server).await;
    fast.subscribe_backlog("app.log", 0).await;

    let total = 500_000;
    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        let pad = "p".repeat(60);
        let mut written = 0;
        while written < total {
            let mut text = String::with_capacity(5000 * 90);
            for i in written..written + 5000 {
                text.push_str(&format!("line-{i:07} {pad}\n"));
            }
            append(&writer_log, text.as_bytes());
            written += 5000;
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let pid = server.pid();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        let end = Instant::now() + Duration::from_secs(120);
        while Instant::now() < end {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                break;
            };
            let rss: u64 = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            peak = peak.max(rss);
            if std::fs::metadata("/proc/self").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            if peak > 0 && STOP_SAMPLER.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
        }
        peak
    });
    let mut lines = Vec::new();
    let (_, others) = fast
        .collect_lines("app.log", total, LONG * 2, &mut lines)
        .await;
    writer.join().unwrap();
    STOP_SAMPLER.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    assert!(others.is_empty(), "the fast client got {others:?}");
    assert_eq!(lines.len(), total);
    assert_eq!(
        lines.last().unwrap().1,
        format!("line-{:07} {}", total - 1, "p".repeat(60))
    );

    // The stalled client is told of a gap or closed (its send times out after 2 s); either way
    // the server lets go of it.
    let let_go = wait_for(Duration::from_secs(15), || async {
        let stats = server.stats().await;
        let dropped = stats["drops"].as_u64().unwrap();
        let gaps = stats["gaps"].as_u64().unwrap();
        (dropped + gaps >= 1).then_some(stats)
    })
    .await;
    let stats = let_go
        .unwrap_or_else(|| panic!("the stalled client was neither told of a gap nor dropped"));
    let grown_mib = peak.saturating_sub(rss_start) / 1024;
    println!("RSS start {rss_start} KiB, peak {peak} KiB, growth {grown_mib} MiB; stats {stats}");
    assert!(
        grown_mib < 64,
        "server RSS grew by {grown_mib} MiB while 45 MB went to a client that never reads (bound: 64 MiB)"
    );
    drop(stalled);
}

static STOP_SAMPLER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[tokio::test]
async fn bad_input_gets_the_documented_answer_and_the_server_keeps_serving() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "line", 0..3);
    let server = Server::start(&[path_str(&log)]);
    let mut ws = WsClient::connect(&server).await;

    let cases = [
        ("{not json", "invalid_json"),
        (r#"{"type":"dance"}"#, "bad_message"),
        (
            r#"{"type":"subscribe","file":"../../etc/passwd","backlog":1}"#,
            "unknown_file",
        ),
        (
            r#"{"type":"subscribe","file":"app.log","after":999999}"#,
            "cursor_ahead",
        ),
        (
            r#"{"type":"subscribe","file":"app.log","after":1,"backlog":2}"#,
            "bad_message",
        ),
    ];
    for (text, code) in cases {
        ws.ws.send(Message::Text(text.into())).await.unwrap();
        let msg = ws.next_non_ping(LONG).await.expect("an answer");
        assert_eq!(msg["type"], "error", "{text} -> {msg}");
        assert_eq!(msg["code"], code, "{text} -> {msg}");
        assert!(!msg["message"].as_str().unwrap().is_empty());
    }
    ws.ws
        .send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    let msg = ws.next_non_ping(LONG).await.expect("an answer");
    assert_eq!(msg["code"], "binary_not_supported", "{msg}");
    // Still open and working.
    ws.subscribe_backlog("app.log", 3).await;
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 3, LONG, &mut lines).await;

    // An oversized message closes that connection with 1009; others are unaffected.
    let mut other = WsClient::connect(&server).await;
    let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70 * 1024));
    ws.ws.send(Message::Text(huge.into())).await.unwrap();
    assert_eq!(ws.expect_close(LONG).await, CloseCode::Size);
    other.send(json!({"type":"ping"})).await;
    assert_eq!(other.next_non_ping(LONG).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn origin_and_token_are_checked_before_the_upgrade() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[
        "--token",
        "s3cret",
        "--allow-origin",
        "https://logs.example.com",
        &path_str(&log),
    ]);
    let ws = server.ws_url("/ws");
    let with_token = server.ws_url("/ws?token=s3cret");
    assert_eq!(upgrade_status(&ws, &[]).await, 401, "no token");
    assert_eq!(
        upgrade_status(&server.ws_url("/ws?token=nope"), &[]).await,
        401
    );
    assert_eq!(upgrade_status(&with_token, &[]).await, 101);
    assert_eq!(
        upgrade_status(&ws, &[("Authorization", "Bearer s3cret")]).await,
        101
    );
    assert_eq!(
        upgrade_status(&with_token, &[("Origin", "https://evil.example")]).await,
        403
    );
    let own = format!("http://{}", server.addr);
    assert_eq!(upgrade_status(&with_token, &[("Origin", &own)]).await, 101);
    assert_eq!(
        upgrade_status(&with_token, &[("Origin", "https://logs.example.com")]).await,
        101
    );
    // Data routes need the token too; the health check does not.
    let status = reqwest::get(server.url("/api/files"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let status = reqwest::get(server.url("/healthz")).await.unwrap().status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001_and_exits_within_a_second() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let mut server = Server::start(&[path_str(&log)]);
    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 0).await;
    let reader = tokio::spawn(async move {
        loop {
            match ws.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    });
    let took = server.terminate(Duration::from_secs(5));
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
    let code = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("close in time")
        .unwrap();
    assert_eq!(code, Some(CloseCode::Away));
}

/// Unix milliseconds on this machine's clock, the one the server stamps lines with.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn lines_carry_the_time_the_server_read_them_live_in_a_backlog_and_filtered() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[path_str(&log)]);
    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 0).await;
    let mut times = Vec::new();
    for (i, text) in ["one", "two"].into_iter().enumerate() {
        // Two reads some milliseconds apart, so that they cannot share a time.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let before = unix_ms();
        append(&log, format!("{text}\n").as_bytes());
        let msg = ws.next_non_ping(LONG).await.expect("a lines message");
        let after = unix_ms();
        assert_eq!(
            (msg["type"].as_str(), msg["seq"].as_u64()),
            (Some("lines"), Some(i as u64 + 1)),
            "{msg}"
        );
        let time = msg["time"]
            .as_u64()
            .unwrap_or_else(|| panic!("no time in {msg}"));
        assert!(
            (before..=after).contains(&time),
            "line {text} read at {time}, written at {before}, received at {after}"
        );
        assert!(msg.get("times").is_none(), "{msg}");
        times.push(time);
    }
    assert!(times[0] < times[1], "{times:?}");

    // A backlog says when its lines were read, not when it was asked for.
    let mut late = WsClient::connect(&server).await;
    late.subscribe_backlog("app.log", 2).await;
    for (seq, time) in [(1, times[0]), (2, times[1])] {
        let msg = late.next_non_ping(LONG).await.expect("backlog");
        assert_eq!(
            (msg["seq"].as_u64(), msg["time"].as_u64()),
            (Some(seq), Some(time)),
            "{msg}"
        );
    }

    // A filtered message gathers lines of both reads: each run's time.
    late.send(json!({"type":"subscribe","file":"app.log","backlog":2,"grep":"o"}))
        .await;
    let msg = late.next_non_ping(LONG).await.expect("filtered backlog");
    assert_eq!(msg["seqs"], json!([1, 2]), "{msg}");
    assert_eq!(msg["time"].as_u64(), Some(times[0]), "{msg}");
    assert_eq!(msg["times"], json!([[1, times[0]], [2, times[1]]]), "{msg}");
}
