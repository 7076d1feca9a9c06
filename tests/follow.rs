//! Following files like `tail -F`: appends, partial lines, CRLF, invalid UTF-8, long lines,
//! truncation, rotation (by hand and by the real logrotate), delete and re-create, late files,
//! globs, history bounds. Every scenario runs with file-system events (each follower's own watch
//! of its files, notify's of their directories), with the directory's events alone (what a
//! follower falls back on past the inotify instance limit), with forced polling, and with events
//! dropped on purpose (the stat timer must carry it alone).

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use futures_util::StreamExt as _;
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Mode {
    Events,
    DirectoryEvents,
    Polling,
    DroppedEvents,
}

const MODES: [Mode; 4] = [
    Mode::Events,
    Mode::DirectoryEvents,
    Mode::Polling,
    Mode::DroppedEvents,
];

fn mode_args(mode: Mode) -> Vec<String> {
    let mut args: Vec<String> = vec!["--rotate-wait".into(), "2s".into()];
    match mode {
        // Events alone must carry these two: the safety net is made too slow to hide a lost one.
        Mode::Events => args.extend(["--stat-interval".into(), "60s".into()]),
        Mode::DirectoryEvents => args.extend([
            "--directory-fs-events".into(),
            "--stat-interval".into(),
            "60s".into(),
        ]),
        Mode::Polling => args.extend([
            "--no-watch".into(),
            "--stat-interval".into(),
            "200ms".into(),
        ]),
        Mode::DroppedEvents => args.extend([
            "--drop-fs-events".into(),
            "--stat-interval".into(),
            "200ms".into(),
        ]),
    }
    args
}

fn start(mode: Mode, extra: &[&str], files: &[&std::path::Path]) -> Server {
    let mut args = mode_args(mode);
    if extra.contains(&"--stat-interval") {
        // The test's own interval replaces the mode's.
        if let Some(i) = args.iter().position(|a| a == "--stat-interval") {
            args.drain(i..i + 2);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|p| path_str(p)));
    Server::start(&args)
}

async fn appended_lines_arrive_once_in_order(mode: Mode, count: usize, burst: usize) {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let history = (count + 10).to_string();
    let server = start(
        mode,
        &["--history", &history, "--history-bytes", "512MiB"],
        &[&log],
    );
    let mut follower = PollFollower::new(&server, "app.log", 0);
    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&writer_log)
            .unwrap();
        let mut start = 0;
        while start < count {
            let end = (start + burst).min(count);
            let mut text = String::with_capacity((end - start) * 24);
            for i in start..end {
                text.push_str(&format!("line-{i:07} payload\n"));
            }
            file.write_all(text.as_bytes()).unwrap();
            start = end;
        }
    });
    follower.until_count(count, LONG).await;
    writer.join().unwrap();
    // Nothing more may come: a short poll must be empty.
    assert_eq!(
        follower.poll_once(0.3).await,
        0,
        "extra lines after {count}"
    );
    let expected: Vec<String> = (0..count).map(|i| format!("line-{i:07} payload")).collect();
    assert_lines_eq(&follower.lines, &expected);
    assert!(
        follower.gaps.is_empty(),
        "unexpected gaps {:?}",
        follower.gaps
    );
    assert_eq!(follower.after, count as u64, "seqs are 1..=count");
}

#[tokio::test]
async fn one_line_arrives() {
    for mode in MODES {
        appended_lines_arrive_once_in_order(mode, 1, 1).await;
    }
}

#[tokio::test]
async fn a_thousand_lines_arrive_once_in_order() {
    for mode in MODES {
        appended_lines_arrive_once_in_order(mode, 1000, 7).await;
    }
}

#[tokio::test]
async fn a_million_lines_in_bursts_arrive_once_in_order() {
    appended_lines_arrive_once_in_order(Mode::Events, 1_000_000, 10_000).await;
    appended_lines_arrive_once_in_order(Mode::Polling, 1_000_000, 50_000).await;
}

#[tokio::test]
async fn partial_lines_crlf_utf8_and_long_lines() {
    for mode in MODES {
        let dir = temp_dir();
        let log = join(&dir, "app.log");
        std::fs::write(&log, "").unwrap();
        let server = start(
            mode,
            &[
                "--partial-line-timeout",
                "700ms",
                "--max-line-bytes",
                "65536",
            ],
            &[&log],
        );
        let mut follower = PollFollower::new(&server, "app.log", 0);

        // A line written in three pieces with pauses arrives once, whole.
        append(&log, b"three ");
        tokio::time::sleep(Duration::from_millis(150)).await;
        append(&log, b"piece ");
        tokio::time::sleep(Duration::from_millis(150)).await;
        append(&log, b"line\n");
        assert!(follower.until_line("three piece line", LONG).await);
        assert_eq!(follower.lines, ["three piece line"], "{mode:?}");

        // CRLF loses the \r, also when \r and \n come in different writes.
        append(&log, b"crlf one\r\ncrlf two\r");
        tokio::time::sleep(Duration::from_millis(100)).await;
        append(&log, b"\n");
        assert!(follower.until_line("crlf two", LONG).await);

        // Invalid UTF-8 arrives with U+FFFD.
        append(&log, b"bad \xff\xfe bytes\n");
        assert!(
            follower
                .until_line("bad \u{FFFD}\u{FFFD} bytes", LONG)
                .await
        );

        // A 1 MiB line arrives capped at 64 KiB and marked.
        let mut big = vec![b'x'; 1 << 20];
        big.push(b'\n');
        append(&log, &big);
        append(&log, b"after big\n");
        assert!(follower.until_line("after big", LONG).await);
        let capped = &follower.lines[follower.lines.len() - 2];
        assert_eq!(capped.len(), 65536, "{mode:?}: capped length");
        assert_eq!(follower.truncated, [follower.after - 1], "{mode:?}: marked");

        // A last line without its newline is not a line yet (it gets no seq), however long it
        // waits: when the rest comes, the file's one line is one line.
        append(&log, b"no newline ");
        assert_eq!(
            follower.poll_once(1.0).await,
            0,
            "{mode:?}: a partial line is not numbered"
        );
        append(&log, b"at the end\n");
        assert!(follower.until_line("no newline at the end", LONG).await);
        let expected = [
            "three piece line",
            "crlf one",
            "crlf two",
            "bad \u{FFFD}\u{FFFD} bytes",
        ];
        assert_eq!(&follower.lines[..4], expected, "{mode:?}");
        assert_eq!(
            follower.lines.len(),
            7,
            "{mode:?}: {:?}",
            &follower.lines[4..]
                .iter()
                .map(|l| l.len())
                .collect::<Vec<_>>()
        );
    }
}

/// Waits for a `file` state message on a WebSocket subscription.
async fn expect_state(ws: &mut WsClient, state: &str) {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let msg = ws
            .next_non_ping(left)
            .await
            .unwrap_or_else(|| panic!("no `{state}` state message"));
        if msg["type"] == "file" {
            assert_eq!(msg["state"], state, "{msg}");
            return;
        }
    }
}

#[tokio::test]
async fn truncation_is_reported_and_new_lines_follow() {
    for mode in MODES {
        let dir = temp_dir();
        let log = join(&dir, "app.log");
        append_numbered(&log, "before", 0..5);
        let server = start(mode, &[], &[&log]);
        let mut ws = WsClient::connect(&server).await;
        ws.subscribe_backlog("app.log", 0).await;
        let mut follower = PollFollower::new(&server, "app.log", 0);
        follower.until_count(5, LONG).await;

        truncate_in_place(&log);
        expect_state(&mut ws, "truncated").await;
        append_numbered(&log, "after", 0..3);
        follower.until_count(8, LONG).await;
        let mut expected = numbered("before", 0..5);
        expected.extend(numbered("after", 0..3));
        assert_lines_eq(&follower.lines, &expected);
    }
}

#[tokio::test]
async fn truncation_followed_by_a_larger_rewrite_is_still_seen() {
    // copytruncate's worst case: the file is truncated and the writer fills it past the old
    // offset before tailcast looks. The first bytes changed, so it is a truncation.
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "old", 0..3);
    let server = start(Mode::Polling, &["--stat-interval", "1s"], &[&log]);
    let mut follower = PollFollower::new(&server, "app.log", 0);
    follower.until_count(3, LONG).await;
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&format!("rewritten-{i}\n"));
    }
    std::fs::write(&log, text).unwrap();
    follower.until_count(13, LONG).await;
    let mut expected = numbered("old", 0..3);
    expected.extend(numbered("rewritten", 0..10));
    assert_lines_eq(&follower.lines, &expected);
}

#[tokio::test]
async fn rename_rotation_reads_the_old_file_to_its_end_first() {
    for mode in MODES {
        let dir = temp_dir();
        let log = join(&dir, "app.log");
        let rotated = join(&dir, "app.log.1");
        let mut writer = open_append(&log);
        let server = start(mode, &[], &[&log]);
        let mut ws = WsClient::connect(&server).await;
        ws.subscribe_backlog("app.log", 0).await;
        let mut follower = PollFollower::new(&server, "app.log", 0);
        for i in 0..10 {
            writeln!(writer, "line-{i}").unwrap();
        }
        follower.until_count(10, LONG).await;
        std::fs::rename(&log, &rotated).unwrap();
        // The application has not reopened yet: these go to the renamed file.
        for i in 10..15 {
            writeln!(writer, "line-{i}").unwrap();
        }
        expect_state(&mut ws, "rotated").await;
        let mut writer = open_append(&log);
        for i in 15..20 {
            writeln!(writer, "line-{i}").unwrap();
        }
        follower.until_count(20, LONG).await;
        assert_eq!(follower.poll_once(0.3).await, 0, "{mode:?}: nothing twice");
        assert_lines_eq(&follower.lines, &numbered("line", 0..20));
    }
}

fn logrotate(conf_dir: &tempfile::TempDir, log: &std::path::Path, directive: &str) {
    let conf = join(conf_dir, "logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{} {{\n  {directive}\n  rotate 3\n  missingok\n  nocompress\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    run_logrotate(&conf, &join(conf_dir, "logrotate.state"));
}

/// The start of each logrotate test: an application's log (kept open, like a daemon's), tailcast
/// following it in `mode` (its server is returned to keep it running), a long-poll follower, and
/// lines `line-0..100` written.
fn app_log_with_100_lines(
    mode: Mode,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::fs::File,
    Server,
    PollFollower,
) {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    let mut writer = open_append(&log);
    let server = start(mode, &[], &[&log]);
    let follower = PollFollower::new(&server, "app.log", 0);
    for i in 0..100 {
        writeln!(writer, "line-{i}").unwrap();
    }
    (dir, log, writer, server, follower)
}

/// The end of each logrotate test: `line-0..200`, each once, in order.
async fn expect_200_lines_once(follower: &mut PollFollower, mode: Mode) {
    follower.until_count(200, LONG).await;
    assert_eq!(follower.poll_once(0.3).await, 0, "{mode:?}: nothing twice");
    assert_lines_eq(&follower.lines, &numbered("line", 0..200));
}

#[tokio::test]
async fn real_logrotate_with_create() {
    for mode in MODES {
        let (dir, log, mut writer, _server, mut follower) = app_log_with_100_lines(mode);
        logrotate(&dir, &log, "create");
        assert!(join(&dir, "app.log.1").exists(), "logrotate rotated");
        // Until the application reopens its log (postrotate), lines go to the rotated file.
        for i in 100..110 {
            writeln!(writer, "line-{i}").unwrap();
        }
        let mut writer = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for i in 110..200 {
            writeln!(writer, "line-{i}").unwrap();
        }
        expect_200_lines_once(&mut follower, mode).await;
    }
}

#[tokio::test]
async fn real_logrotate_with_copytruncate() {
    for mode in MODES {
        let (dir, log, mut writer, _server, mut follower) = app_log_with_100_lines(mode);
        // copytruncate's documented race: bytes written between logrotate's copy and its
        // truncate are lost from the file, and bytes not yet read when it truncates are gone for
        // every reader. So the test waits until the lines were read before rotating.
        follower.until_count(100, LONG).await;
        logrotate(&dir, &log, "copytruncate");
        assert!(
            std::fs::metadata(join(&dir, "app.log.1")).unwrap().len() > 0,
            "logrotate copied"
        );
        // The writer keeps its descriptor (O_APPEND writes land at the new end).
        for i in 100..200 {
            writeln!(writer, "line-{i}").unwrap();
        }
        expect_200_lines_once(&mut follower, mode).await;
    }
}

#[tokio::test]
async fn delete_then_recreate_and_a_file_that_appears_later() {
    for mode in MODES {
        let dir = temp_dir();
        let log = join(&dir, "app.log");
        let late = join(&dir, "late.log");
        append_numbered(&log, "first", 0..3);
        let server = start(mode, &[], &[&log, &late]);
        assert_eq!(server.file_info("late.log").await["exists"], false);
        let mut ws = WsClient::connect(&server).await;
        ws.subscribe_backlog("app.log", 0).await;
        let mut follower = PollFollower::new(&server, "app.log", 0);
        follower.until_count(3, LONG).await;

        std::fs::remove_file(&log).unwrap();
        expect_state(&mut ws, "deleted").await;
        append_numbered(&log, "second", 0..3);
        expect_state(&mut ws, "created").await;
        follower.until_count(6, LONG).await;
        let mut expected = numbered("first", 0..3);
        expected.extend(numbered("second", 0..3));
        assert_lines_eq(&follower.lines, &expected);

        let mut late_follower = PollFollower::new(&server, "late.log", 0);
        append_numbered(&late, "late", 0..4);
        late_follower.until_count(4, LONG).await;
        assert_lines_eq(&late_follower.lines, &numbered("late", 0..4));
        assert_eq!(server.file_info("late.log").await["exists"], true);
    }
}

#[tokio::test]
async fn a_glob_matching_two_files_follows_both() {
    let dir = temp_dir();
    append_numbered(&join(&dir, "a.log"), "a", 0..2);
    append_numbered(&join(&dir, "b.log"), "b", 0..2);
    std::fs::write(join(&dir, "other.txt"), "not matched\n").unwrap();
    let pattern = format!("{}/*.log", dir.path().display());
    let server = Server::start(&[pattern]);
    let files = server.get_json("/api/files").await;
    let ids: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a.log", "b.log"]);
    for (id, prefix) in [("a.log", "a"), ("b.log", "b")] {
        append_numbered(&join(&dir, id), prefix, 2..4);
        let mut follower = PollFollower::new(&server, id, 0);
        follower.until_count(4, LONG).await;
        assert_lines_eq(&follower.lines, &numbered(prefix, 0..4));
    }
}

#[tokio::test]
async fn dropped_events_still_deliver_within_the_stat_interval() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = start(Mode::DroppedEvents, &["--stat-interval", "300ms"], &[&log]);
    let mut follower = PollFollower::new(&server, "app.log", 0);
    for round in 0..5 {
        let line = format!("round-{round}");
        let started = std::time::Instant::now();
        append(&log, format!("{line}\n").as_bytes());
        assert!(follower.until_line(&line, LONG).await);
        let took = started.elapsed();
        // One stat interval, plus scheduling slack on a loaded machine.
        assert!(
            took < Duration::from_millis(300 + 700),
            "line arrived after {took:?}, stat interval is 300ms"
        );
    }
}

#[tokio::test]
async fn history_gap_names_the_exact_evicted_range() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&["--history", "100", &path_str(&log)]);
    append_numbered(&log, "line", 0..300);
    server.wait_last_seq("app.log", 300, LONG).await;
    let answer: Value = server.get_json("/poll?file=app.log&after=0&max=1000").await;
    assert_eq!(answer["gap"]["from"], 1, "{answer}");
    assert_eq!(answer["gap"]["to"], 200, "{answer}");
    assert_eq!(answer["first_seq"], 201);
    assert_eq!(answer["last_seq"], 300);
    let lines: Vec<String> = answer["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert_lines_eq(&lines, &numbered("line", 200..300));
    // A cursor inside the retained range has no gap.
    let answer = server.get_json("/poll?file=app.log&after=250").await;
    assert_eq!(answer["gap"], Value::Null);
    assert_eq!(answer["first_seq"], 251);
}

#[tokio::test]
async fn history_respects_its_byte_bound_with_64_kib_lines() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&["--history-bytes", "2MiB", &path_str(&log)]);
    let rss_before = server.rss_kib();
    let line = "y".repeat(64 * 1024 - 1);
    for _ in 0..8 {
        let mut text = String::new();
        for _ in 0..32 {
            text.push_str(&line);
            text.push('\n');
        }
        append(&log, text.as_bytes());
    }
    server.wait_last_seq("app.log", 256, LONG).await;
    let stats = server.stats().await;
    let usage = &stats["files"][0];
    let bytes = usage["history_bytes"].as_u64().unwrap();
    let lines = usage["history_lines"].as_u64().unwrap();
    assert!(
        bytes <= 2 << 20,
        "history holds {bytes} bytes, bound is 2 MiB"
    );
    assert!(
        (8..=32).contains(&lines),
        "history keeps {lines} lines of 64 KiB"
    );
    // 16 MiB went through; the process must not have kept it.
    let grown = server.rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 12 * 1024,
        "RSS grew by {grown} KiB while reading 16 MiB"
    );
}

/// The issue's `printf partial- ; sleep 2; printf 'rest\n'`: the unfinished line is shown at once
/// (WebSocket `partial`, SSE `event: partial`) without a seq of its own, and the file's one line
/// is one line, numbered when its newline comes.
#[tokio::test]
async fn a_partial_line_is_shown_at_once_and_numbered_only_when_whole() {
    let dir = temp_dir();
    let log = LogFile::new(&dir, "app.log");
    log.append_line("before");
    let server = TestServer::new()
        .args(&["--partial-line-timeout", "100ms", &log.path_str()])
        .start();
    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 0).await;
    log.append(b"partial-");
    let shown = ws.next_non_ping(LONG).await.expect("a message");
    assert_eq!(
        shown,
        json!({"type":"partial","file":"app.log","seq":2,"text":"partial-"})
    );
    // A stream opened now shows it too, after the whole lines.
    let sse = http_client()
        .get(server.url("/sse?file=app.log&backlog=5"))
        .send()
        .await
        .unwrap();
    let mut body = sse.bytes_stream();
    let mut text = String::new();
    let needle = "event: partial\ndata: {\"file\":\"app.log\",\"seq\":2,\"text\":\"partial-\"}\n\n";
    while !text.contains(needle) {
        let chunk = tokio::time::timeout(LONG, body.next())
            .await
            .expect("SSE in time")
            .expect("SSE open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("id: "), "{text}");
    assert!(text.contains("data: before\n"), "{text}");
    assert!(!text.contains("data: partial-"), "not a line: {text}");
    log.append(b"rest\n");
    let mut lines = ws.next_non_ping(LONG).await.expect("lines");
    // (When it was read is tests/websocket.rs's to check.)
    let time = lines.as_object_mut().and_then(|m| m.remove("time"));
    assert!(time.is_some_and(|t| t.is_u64()), "{lines}");
    assert_eq!(
        lines,
        json!({"type":"lines","file":"app.log","seq":2,"lines":["partial-rest"]})
    );
    let cleared = ws.next_non_ping(LONG).await.expect("partial cleared");
    assert_eq!(
        cleared,
        json!({"type":"partial","file":"app.log","seq":3,"text":null})
    );
    let answer = server.get_json("/poll?file=app.log&backlog=10").await;
    assert_eq!(answer["lines"], json!(["before", "partial-rest"]));
}
