//! Faults: each one is reported to clients as a file state or an error, is recovered
//! from without a restart of tailcast, and loses nothing that the file still holds. The real
//! binary, real files in temp dirs, waits with deadlines.
//!
//! - a watched file made unreadable and readable again (tailcast runs as `nobody` for this: root
//!   ignores file modes);
//! - the file's directory deleted and re-created (the inotify watch on it is gone for good: the
//!   stat timer must carry the file from then on);
//! - the file replaced by a directory, then by a file again;
//! - the file replaced by a FIFO (opening one would wait for a writer forever);
//! - a burst of 100 rename+create rotations in about a second under a busy writer;
//! - a writer that keeps writing to a file deleted under it (nlink 0);
//! - the server killed with SIGKILL and restarted on the same port: clients see the close, a new
//!   epoch, and stale cursors are refused out loud (`cursor_ahead`, `reset`), never a silent hole.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const LONG: Duration = Duration::from_secs(60);

/// Waits for a `file` state message of `file` on a WebSocket subscription; returns the
/// messages of other kinds seen before it (lines, gaps).
async fn expect_state(ws: &mut WsClient, file: &str, state: &str) -> Vec<Value> {
    let deadline = Instant::now() + LONG;
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = ws.next_non_ping(left).await.unwrap_or_else(|| {
            panic!("no `{state}` state message for {file}; saw before: {before:?}")
        });
        if msg["type"] == "file" && msg["file"] == file {
            assert_eq!(
                msg["state"], state,
                "expected state {state}, got {msg}; saw before: {before:?}"
            );
            return before;
        }
        before.push(msg);
    }
}

/// Creates a file that is mode 000 from its first instant (a create-then-chmod would leave a
/// window in which tailcast could open it).
fn create_unreadable(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(path)
        .unwrap();
    assert_eq!(
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
        0,
        "umask cannot add bits"
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Prefix that runs a command as `nobody` with no supplementary groups, or None when this
/// machine cannot drop privileges that way.
fn as_nobody() -> Option<Vec<&'static str>> {
    let prefix = vec![
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let ok = Command::new(prefix[0])
        .args(&prefix[1..])
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(prefix)
}

/// The command prefix that runs tailcast without root's rights (root reads files whatever their
/// mode): `setpriv` to `nobody` when root, nothing (`env`) otherwise.
fn unprivileged_prefix() -> Vec<&'static str> {
    if running_as_root() {
        as_nobody().expect("setpriv cannot drop to nobody: util-linux's setpriv is needed")
    } else {
        vec!["env"]
    }
}

fn running_as_root() -> bool {
    // The effective uid, from /proc/self/status (no libc call needed).
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        .unwrap_or(false)
}

#[tokio::test]
async fn unreadable_file_is_reported_retried_and_read_when_readable_again() {
    // Root reads files whatever their mode, so tailcast runs as `nobody` here; run as another
    // user, the test does the same with that user's own rights (chmod 000 binds every user but
    // root).
    let prefix = unprivileged_prefix();
    let dir = temp_dir();
    chmod(dir.path(), 0o755); // nobody may traverse and list it
    let log = LogFile::absent(&dir, "app.log");
    log.append_numbered("first", 0..3);
    chmod(log.path(), 0o644);
    let mut server = TestServer::new()
        .prefix(&prefix)
        .args(&["--stat-interval", "200ms", "--rotate-wait", "2s"])
        .args(&[log.path_str()])
        .start();
    let mut follower = PollFollower::new(&server, "app.log", 0);
    assert_lines_eq(
        follower.until_count(3, LONG).await,
        &numbered("first", 0..3),
    );
    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 0).await;

    // 1. Unreadable while held open: tailcast already holds a descriptor, which a mode change
    //    does not revoke. Lines appended meanwhile still arrive.
    chmod(log.path(), 0o000);
    log.append_numbered("held", 0..3);
    follower.until_count(6, LONG).await;
    assert_lines_eq(&follower.lines[3..], &numbered("held", 0..3));
    chmod(log.path(), 0o644);

    // 2. Unreadable when it must be opened: the path is rotated to a new file that tailcast
    //    cannot open. Clients are told `rotated`, the file is listed as not readable
    //    (`exists: false`) with the reason (`error`: unreadable is not absent), the error is
    //    logged and retried; lines written to it meanwhile are all read (from its start) once it
    //    is readable, announced by `created`, and the reason is gone.
    log.rotate_to("app.log.1");
    create_unreadable(log.path());
    log.append_numbered("locked", 0..5);
    expect_state(&mut ws, "app.log", "rotated").await;
    // The path may be seen missing for a moment (between the rename and the create): wait for
    // the reason.
    let unreadable = wait_for(LONG, || async {
        let info = server.file_info("app.log").await;
        info["error"].is_string().then_some(info)
    })
    .await;
    let Some(unreadable) = unreadable else {
        panic!(
            "an unreadable file must be listed with its reason, got {}",
            server.file_info("app.log").await
        )
    };
    assert_eq!(unreadable["exists"], false, "{unreadable}");
    assert_eq!(
        unreadable["error"], "permission denied: tailcast's user cannot read it",
        "{unreadable}"
    );
    server.wait_log("Permission denied", 1, LONG);
    // Several stat intervals pass while it stays unreadable: the server keeps serving.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(server.running(), "tailcast exited on an unreadable file");
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // (How often the error is logged meanwhile: see the test below.)

    chmod(log.path(), 0o644);
    let before_created = expect_state(&mut ws, "app.log", "created").await;
    assert!(
        before_created.iter().all(|m| m["type"] != "gap"),
        "no gap may be reported: {before_created:?}"
    );
    log.append_numbered("open", 0..2);
    follower.until_count(13, LONG).await;
    let mut expected = numbered("first", 0..3);
    expected.extend(numbered("held", 0..3));
    expected.extend(numbered("locked", 0..5));
    expected.extend(numbered("open", 0..2));
    assert_lines_eq(&follower.lines, &expected);
    assert!(follower.gaps.is_empty(), "gaps {:?}", follower.gaps);
    let readable = server.file_info("app.log").await;
    assert_eq!(readable["exists"], true, "{readable}");
    assert!(
        readable.get("error").is_none(),
        "the reason must go once the file is readable: {readable}"
    );
    assert!(server.running());
}

#[tokio::test]
async fn an_unreadable_file_is_logged_once_not_at_every_retry() {
    let prefix = unprivileged_prefix();
    let dir = temp_dir();
    chmod(dir.path(), 0o755);
    let log = LogFile::absent(&dir, "app.log");
    log.append_numbered("first", 0..1);
    chmod(log.path(), 0o644);
    let mut server = TestServer::new()
        .prefix(&prefix)
        .args(&["--stat-interval", "100ms", &log.path_str()])
        .start();
    log.rotate_to("app.log.1");
    create_unreadable(log.path());
    server.wait_log("Permission denied", 1, LONG);
    // Twenty stat intervals with the file still unreadable: the error stays logged once, and
    // nothing claims it recovered.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stderr = server.stderr_text();
    let errors = stderr.matches("Permission denied").count();
    let recovered = stderr.matches("recovered").count();
    assert!(
        errors == 1 && recovered == 0,
        "logged {errors} times, `recovered` {recovered} times while still unreadable; \
         expected once and never:\n{stderr}"
    );
}

/// tailcast on `log` (which holds three lines) with a fast stat timer, a WebSocket client
/// subscribed to its changes, and a long-poll follower that has read the three lines.
async fn watch_three_lines(log: &Path) -> (Server, WsClient, PollFollower) {
    let server = Server::start(&[
        "--stat-interval".to_owned(),
        "200ms".to_owned(),
        "--rotate-wait".to_owned(),
        "1s".to_owned(),
        path_str(log),
    ]);
    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 0).await;
    let mut follower = PollFollower::new(&server, "app.log", 0);
    follower.until_count(3, LONG).await;
    (server, ws, follower)
}

#[tokio::test]
async fn directory_deleted_and_recreated_is_followed_by_the_stat_timer() {
    let root = temp_dir();
    let dir = join(&root, "logs");
    std::fs::create_dir(&dir).unwrap();
    let log = dir.join("app.log");
    append_numbered(&log, "gen0", 0..3);
    let (_server, mut ws, mut follower) = watch_three_lines(&log).await;

    let mut expected = numbered("gen0", 0..3);
    // Twice: the first time the inotify watch on `logs/` is still there when it goes; the
    // second time there is no watch at all (it died with the first directory).
    for round in 1..=2 {
        std::fs::remove_dir_all(&dir).unwrap();
        expect_state(&mut ws, "app.log", "deleted").await;
        std::fs::create_dir(&dir).unwrap();
        let prefix = format!("gen{round}");
        append_numbered(&log, &prefix, 0..3);
        expect_state(&mut ws, "app.log", "created").await;
        // Lines appended later, once the file is open again, arrive too (no event will ever
        // announce them: only the stat timer sees them).
        let started = Instant::now();
        append_numbered(&log, &prefix, 3..5);
        expected.extend(numbered(&prefix, 0..5));
        follower.until_count(expected.len(), LONG).await;
        assert_lines_eq(&follower.lines, &expected);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "round {round}: lines took {took:?} with a 200ms stat interval"
        );
    }
    assert!(follower.gaps.is_empty(), "gaps {:?}", follower.gaps);
}

#[tokio::test]
async fn file_replaced_by_a_directory_then_by_a_file_again() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "before", 0..3);
    let (mut server, mut ws, mut follower) = watch_three_lines(&log).await;

    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    std::fs::write(log.join("inside.log"), "not a line of app.log\n").unwrap();
    expect_state(&mut ws, "app.log", "deleted").await;
    // A few stat intervals with a directory at the path: the server keeps running and serving,
    // lists the file as absent and reads nothing from the directory.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(server.running(), "tailcast exited");
    assert_eq!(server.file_info("app.log").await["exists"], false);
    assert_eq!(follower.poll_once(0.2).await, 0, "{:?}", follower.lines);

    std::fs::remove_dir_all(&log).unwrap();
    append_numbered(&log, "after", 0..4);
    expect_state(&mut ws, "app.log", "created").await;
    follower.until_count(7, LONG).await;
    let mut expected = numbered("before", 0..3);
    expected.extend(numbered("after", 0..4));
    assert_lines_eq(&follower.lines, &expected);
    assert_eq!(server.file_info("app.log").await["exists"], true);
    assert!(follower.gaps.is_empty(), "gaps {:?}", follower.gaps);
}

#[tokio::test]
async fn a_hundred_rotations_lose_and_repeat_nothing() {
    // The writer renames a generation away only once tailcast has read some of it, so the test
    // does not depend on how fast the follower reacts (see the next test for that).
    hundred_rotations(true).await;
}

#[tokio::test]
async fn a_hundred_rotations_in_a_second_lose_and_repeat_nothing() {
    hundred_rotations(false).await;
}

/// 100 rename+create rotations while a writer writes unique lines, reopening the path after
/// each one and writing to the renamed file before it does. With `in_step`, each generation is
/// renamed only after tailcast has read its first lines; without, as fast as the writer goes
/// (milliseconds in all: most generations are created and renamed away between two reads, and
/// are read only because the watcher opens each one as it is renamed).
async fn hundred_rotations(in_step: bool) {
    const GENERATIONS: usize = 100;
    const BEFORE: usize = 20; // lines per generation written before it is renamed away
    const AFTER: usize = 5; // lines written to the renamed file before the writer reopens
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[
        "--rotate-wait".to_owned(),
        "5s".to_owned(),
        "--history".to_owned(),
        "100000".to_owned(),
        path_str(&log),
    ]);
    let mut follower = PollFollower::new(&server, "app.log", 0);

    let writer_dir = dir.path().to_path_buf();
    let (wrote_tx, mut wrote_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let log = writer_dir.join("app.log");
        let started = Instant::now();
        for generation in 0..GENERATIONS {
            let mut file = open_append(&log);
            for i in 0..BEFORE {
                writeln!(file, "g{generation:03}-{i:02}").unwrap();
                if in_step && i == BEFORE / 2 {
                    std::thread::sleep(Duration::from_millis(8));
                }
            }
            if in_step {
                // Seq `generation * 25 + 1` exists only once a line of this generation was
                // read: all earlier generations together hold `generation * 25` lines.
                wrote_tx
                    .send((generation * (BEFORE + AFTER) + 1) as u64)
                    .unwrap();
                ack_rx.recv().unwrap();
            }
            std::fs::rename(&log, writer_dir.join(format!("app.log.{generation}"))).unwrap();
            // The application has not reopened its log yet.
            for i in BEFORE..BEFORE + AFTER {
                writeln!(file, "g{generation:03}-{i:02}").unwrap();
            }
        }
        started.elapsed()
    });
    let total = GENERATIONS * (BEFORE + AFTER);
    if in_step {
        while let Some(seq) = wrote_rx.recv().await {
            server.wait_last_seq("app.log", seq, LONG).await;
            if ack_tx.send(()).is_err() {
                break;
            }
        }
    }
    follower.until_count(total, Duration::from_secs(30)).await;
    let took = writer.join().unwrap();
    assert!(
        in_step || took < Duration::from_secs(5),
        "the writer needed {took:?} for {GENERATIONS} rotations (machine too slow for this test)"
    );
    follower.poll_once(0.5).await;

    // Exactly once: compare as multisets, naming what is missing or repeated.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for line in &follower.lines {
        *counts.entry(line.as_str()).or_default() += 1;
    }
    let expected: Vec<String> = (0..GENERATIONS)
        .flat_map(|g| (0..BEFORE + AFTER).map(move |i| format!("g{g:03}-{i:02}")))
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|l| !counts.contains_key(l.as_str()))
        .collect();
    let repeated: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let unknown: Vec<&&str> = counts
        .keys()
        .filter(|l| !expected.iter().any(|e| e == **l))
        .collect();
    assert!(
        missing.is_empty() && repeated.is_empty() && unknown.is_empty(),
        "written {total}, delivered {}: {} missing (first {:?}), repeated {:?}, unknown {:?}, \
         gaps {:?}",
        follower.lines.len(),
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>(),
        repeated.iter().take(10).collect::<Vec<_>>(),
        unknown.iter().take(10).collect::<Vec<_>>(),
        follower.gaps
    );
    // In order within each generation (one file). Across generations the order is not
    // guaranteed: a check reads the rotated files before the current one, but the writer may
    // finish generation N (writes to the renamed file) after that read and write generation N+1
    // before the current file is read; the rest of N then comes at the next check, after lines
    // of N+1. No line is lost or repeated, and seqs are still consecutive (checked by the
    // follower), but a generation's tail may be numbered after the next one's head.
    for g in 0..GENERATIONS {
        let prefix = format!("g{g:03}-");
        let got: Vec<String> = follower
            .lines
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .cloned()
            .collect();
        let want: Vec<String> = (0..BEFORE + AFTER)
            .map(|i| format!("{prefix}{i:02}"))
            .collect();
        assert_eq!(got, want, "generation {g} out of order");
    }
    assert!(follower.gaps.is_empty(), "gaps {:?}", follower.gaps);
    assert_eq!(follower.after, total as u64, "seqs are 1..={total}");
}

#[tokio::test]
async fn lines_written_to_a_deleted_file_still_held_by_its_writer_arrive() {
    // `rm app.log` while the application keeps writing to its descriptor (nlink 0): clients are
    // told `deleted`, and what the application writes during --rotate-wait is still read.
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    let mut writer = open_append(&log);
    let server = Server::start(&["--rotate-wait".to_owned(), "5s".to_owned(), path_str(&log)]);
    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 0).await;
    let mut follower = PollFollower::new(&server, "app.log", 0);
    for i in 0..3 {
        writeln!(writer, "line-{i}").unwrap();
    }
    follower.until_count(3, LONG).await;
    std::fs::remove_file(&log).unwrap();
    expect_state(&mut ws, "app.log", "deleted").await;
    for i in 3..6 {
        writeln!(writer, "line-{i}").unwrap();
    }
    follower.until_count(6, LONG).await;
    assert_lines_eq(&follower.lines, &numbered("line", 0..6));
    assert_eq!(server.file_info("app.log").await["exists"], false);
}

#[tokio::test]
async fn a_followed_file_replaced_by_a_fifo_blocks_nothing() {
    // Opening a FIFO waits for a writer: a follower that opened one would never read again, and
    // shutdown would wait for it forever.
    let dir = temp_dir();
    let log = LogFile::absent(&dir, "app.log");
    let other = LogFile::absent(&dir, "other.log");
    log.append_numbered("before", 0..3);
    other.append_numbered("other", 0..1);
    let mut server = Server::start(&[
        "--stat-interval",
        "100ms",
        &log.path_str(),
        &other.path_str(),
    ]);
    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_backlog("app.log", 0).await;

    // Replaced in one step, as a rotation would: a FIFO renamed over the file.
    let fifo = join(&dir, "app.log.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo");
    std::fs::rename(&fifo, log.path()).unwrap();
    expect_state(&mut ws, "app.log", "deleted").await;
    server.wait_log("is a FIFO (named pipe), not a regular file", 1, LONG);

    // The server answers, and the other file still streams.
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let mut poller = PollFollower::new(&server, "other.log", 0);
    other.append_numbered("other", 1..3);
    poller.until_count(3, LONG).await;
    assert_lines_eq(&poller.lines, &numbered("other", 0..3));
    assert!(poller.gaps.is_empty(), "gaps {:?}", poller.gaps);
    let fifo_info = server.file_info("app.log").await;
    assert_eq!(fifo_info["exists"], false, "{fifo_info}");
    assert_eq!(
        fifo_info["error"], "it is a FIFO (named pipe), not a regular file",
        "{fifo_info}"
    );
    // Ten stat intervals later the FIFO is still logged once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stderr = server.stderr_text();
    assert_eq!(
        stderr.matches("is a FIFO").count(),
        1,
        "logged once, not at every retry:\n{stderr}"
    );

    // A regular file at the path again is followed again.
    log.remove();
    log.append_numbered("after", 0..2);
    expect_state(&mut ws, "app.log", "created").await;
    let mut poller = PollFollower::new(&server, "app.log", 0);
    poller.until_count(5, LONG).await;
    let mut expected = numbered("before", 0..3);
    expected.extend(numbered("after", 0..2));
    assert_lines_eq(&poller.lines, &expected);
    assert!(poller.gaps.is_empty(), "gaps {:?}", poller.gaps);

    // And shutdown waits on no follower.
    server.terminate(Duration::from_secs(10));
}

/// Reads until the connection ends; panics if it is still open after `within`.
async fn expect_connection_end(ws: &mut WsClient, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.ws.next()).await {
            Err(_) => panic!("the WebSocket stayed open {within:?} after the server was killed"),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

#[tokio::test]
async fn server_killed_and_restarted_clients_see_a_new_epoch_and_stale_cursors_are_refused() {
    let dir = temp_dir();
    let log = LogFile::absent(&dir, "app.log");
    log.append_numbered("old", 0..20);
    let args = vec!["--rotate-wait".to_owned(), "1s".to_owned(), log.path_str()];
    let mut first = Server::start(&args);
    let addr = first.addr.clone();
    let mut ws = WsClient::connect(&first).await;
    let old_epoch = ws.hello["epoch"].as_u64().expect("hello.epoch");
    ws.subscribe_backlog("app.log", 100).await;
    let mut lines = Vec::new();
    ws.collect_lines("app.log", 20, LONG, &mut lines).await;
    // The file is truncated and rewritten: the first run numbers these 21..=25, but a new run
    // reads the file as it is now and numbers them 1..=5.
    log.truncate();
    log.append_numbered("new", 0..5);
    ws.collect_lines("app.log", 25, LONG, &mut lines).await;
    let cursor = lines.last().unwrap().0;
    assert_eq!(cursor, 25);
    let poll_cursor = cursor;

    // SIGKILL: no close frame, no drain.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    expect_connection_end(&mut ws, Duration::from_secs(10)).await;

    let second = TestServer::new().bind(&addr).args(&args).start();
    assert_eq!(second.addr, addr, "restarted on the same port");
    // The client reconnects to the same URL.
    let url = format!("ws://{addr}/ws");
    let mut ws = WsClient::connect_url(&url).await;
    let new_epoch = ws.hello["epoch"].as_u64().expect("hello.epoch");
    assert_ne!(new_epoch, old_epoch, "a restart must change the epoch");
    let listed = ws.hello["files"][0]["last_seq"].as_u64();
    assert_eq!(listed, Some(5), "hello: {}", ws.hello);

    // A client that (wrongly) resumes with its old cursor is refused, never given a hole.
    ws.subscribe_after("app.log", cursor).await;
    let msg = ws.next_non_ping(LONG).await.expect("an answer");
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["code"], "cursor_ahead", "{msg}");
    assert!(
        msg["message"].as_str().unwrap_or("").contains("after=5"),
        "the error names the usable cursor: {msg}"
    );
    // And nothing of that file is sent after the refusal.
    ws.send(json!({"type":"ping"})).await;
    let msg = ws.next_non_ping(LONG).await.expect("pong");
    assert_eq!(
        msg["type"], "pong",
        "nothing may come before the pong: {msg}"
    );

    // What the protocol says to do on a new epoch: subscribe with a backlog.
    ws.subscribe_backlog("app.log", 10).await;
    let mut fresh = Vec::new();
    ws.collect_lines("app.log", 5, LONG, &mut fresh).await;
    let seqs: Vec<u64> = fresh.iter().map(|(s, _)| *s).collect();
    let texts: Vec<String> = fresh.iter().map(|(_, l)| l.clone()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_lines_eq(&texts, &numbered("new", 0..5));
    log.append_numbered("live", 0..2);
    ws.collect_lines("app.log", 7, LONG, &mut fresh).await;
    assert_eq!(fresh[5], (6, "live-0".to_owned()));

    // Long-poll with the old cursor: answered at once with `reset` and the live edge.
    let started = Instant::now();
    let answer = second
        .get_json(&format!(
            "/poll?file=app.log&after={poll_cursor}&timeout=30"
        ))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a stale cursor must be answered at once, took {:?}",
        started.elapsed()
    );
    assert_eq!(answer["reset"], true, "{answer}");
    assert_eq!(answer["last_seq"], 7, "{answer}");
    assert_eq!(answer["lines"], json!([]), "{answer}");
    assert_eq!(answer["epoch"].as_u64(), Some(new_epoch), "{answer}");
    let text = reqwest::get(second.url(&format!(
        "/poll?file=app.log&after={poll_cursor}&format=text"
    )))
    .await
    .unwrap();
    assert_eq!(
        text.headers()
            .get("x-tailcast-reset")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let epoch = text
        .headers()
        .get("x-tailcast-epoch")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("an epoch header");
    assert_eq!(
        text.headers()
            .get("x-tailcast-cursor")
            .map(|v| v.to_str().unwrap()),
        Some(format!("{epoch}-7").as_str()),
        "the cursor names its epoch"
    );
    assert_eq!(text.text().await.unwrap(), "");
}
