//! Live globs and directories: a glob or a directory on the command line is a standing rule.
//! Files that come to match it later are followed from their first line, listed in
//! `/api/files` and announced to WebSocket clients (`files`); rotated generations are left out;
//! `--max-files` bounds how many are followed (the rest: one warning and a metric).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(30);

fn ids(files: &Value) -> Vec<String> {
    let mut ids: Vec<String> = files
        .as_array()
        .expect("file list")
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Waits until `/api/files` lists `n` files.
async fn wait_file_count(server: &Server, n: usize) -> Value {
    let files = wait_for(LONG, || async {
        let files = server.get_json("/api/files").await;
        (files.as_array()?.len() >= n).then_some(files)
    })
    .await;
    files.unwrap_or_else(|| panic!("/api/files never listed {n} files"))
}

#[tokio::test]
async fn a_glob_follows_files_that_appear_later_from_their_first_line() {
    let dir = temp_dir();
    let first = LogFile::new(&dir, "a.log");
    first.append_line("a1");
    let pattern = join(&dir, "*.log").to_string_lossy().into_owned();
    let server = TestServer::new().args(&[pattern]).start();
    let mut ws = WsClient::connect(&server).await;
    assert_eq!(ids(&ws.hello["files"]), ["a.log"]);

    // Not logs of this rule: another suffix, and a rotated generation.
    LogFile::new(&dir, "notes.txt").append_line("no");
    LogFile::new(&dir, "a.log.1").append_line("old");
    let later = LogFile::new(&dir, "b.log");
    later.append_numbered("b", 0..50);
    let announced = loop {
        let msg = ws.next_non_ping(LONG).await.expect("a files message");
        if msg["type"] == "files" {
            break msg;
        }
    };
    assert_eq!(ids(&announced["files"]), ["a.log", "b.log"]);
    let mut follower = PollFollower::new(&server, "b.log", 0);
    follower.until_count(50, LONG).await;
    assert_lines_eq(&follower.lines, &numbered("b", 0..50));
    later.append_line("live");
    assert!(follower.until_line("live", LONG).await);
    // Only the two: the other names appeared before b.log, so discovery saw them first.
    assert_eq!(
        ids(&server.get_json("/api/files").await),
        ["a.log", "b.log"]
    );
}

#[tokio::test]
async fn a_directory_takes_its_logs_but_not_their_rotated_generations() {
    let dir = temp_dir();
    let logs = join(&dir, "logs");
    std::fs::create_dir(&logs).unwrap();
    let arg = format!("{}/", logs.display());
    let mut server = TestServer::new().args(&[arg]).start();
    server.wait_log("matches no file yet", 1, LONG);
    for name in ["app.log.1", "app.log.2.gz", "app.log-20261201", "syslog"] {
        std::fs::write(logs.join(name), "line\n").unwrap();
    }
    std::fs::write(logs.join("app.log"), "first\nsecond\n").unwrap();
    let files = wait_file_count(&server, 2).await;
    assert_eq!(ids(&files), ["app.log", "syslog"]);
    let answer = server.get_json("/poll?file=app.log&after=0").await;
    assert_eq!(answer["lines"], serde_json::json!(["first", "second"]));
    assert_eq!(answer["first_seq"], 1);
}

#[tokio::test]
async fn past_max_files_new_files_are_refused_with_one_warning_and_a_metric() {
    const CREATED: usize = 2_000;
    const MAX: usize = 1_024;
    let dir = temp_dir();
    let pattern = join(&dir, "*.log").to_string_lossy().into_owned();
    let mut server = TestServer::new()
        .args(&["--max-files".to_owned(), MAX.to_string(), pattern])
        .start();
    let rss_before = server.rss_kib();
    for i in 0..CREATED {
        std::fs::write(
            join(&dir, &format!("f{i:04}.log")),
            format!("line of {i}\n"),
        )
        .unwrap();
    }
    wait_file_count(&server, MAX).await;
    let refused = wait_for(LONG, || async {
        let metrics = http_client()
            .get(server.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let line = metrics
            .lines()
            .find(|l| l.starts_with("tailcast_files_refused"))?
            .to_owned();
        let n: usize = line.rsplit(' ').next()?.parse().ok()?;
        (n == CREATED - MAX).then_some(line)
    })
    .await;
    assert!(
        refused.is_some(),
        "tailcast_files_refused never reached {}",
        CREATED - MAX
    );
    assert_eq!(
        server
            .get_json("/api/files")
            .await
            .as_array()
            .unwrap()
            .len(),
        MAX
    );
    let log = server.wait_log("--max-files", 1, LONG);
    assert_eq!(
        log.matches("is not followed: --max-files").count(),
        1,
        "{log}"
    );
    // Bounded: 1 024 followers, not 2 000, and no growth with what is refused.
    let growth_mib = server.rss_kib().saturating_sub(rss_before) / 1024;
    assert!(
        growth_mib < 256,
        "RSS grew {growth_mib} MiB for {MAX} files"
    );
    // A followed one reads from its first line.
    let answer = server.get_json("/poll?file=f0000.log&after=0").await;
    assert_eq!(answer["lines"], serde_json::json!(["line of 0"]));
}
