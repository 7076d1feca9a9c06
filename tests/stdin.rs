//! Standard input as a source (`tailcast -`), on the real binary: a large pipe arrives whole, in
//! order, once, and ends with the `ended` state while the server keeps serving; a slow writer's
//! lines arrive as they are written (an unfinished one after the partial-line timeout) and the
//! server answers while stdin is idle; `- -` is refused and `--name` renames the source; an
//! input that never ends does not hold up the exit.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt as _;

const LONG: Duration = Duration::from_secs(60);

async fn healthz(server: &Server) -> u16 {
    http_client()
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("healthz")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_large_pipe_arrives_whole_once_then_ends_and_the_server_still_serves() {
    const N: usize = 100_000;
    let mut server = TestServer::new()
        .stdin_piped()
        .args(&["--history", "200000", "--history-bytes", "64MiB", "-"])
        .start();
    let info = server.file_info("stdin").await;
    assert_eq!(info["path"], "-", "{info}");
    assert_eq!(info["exists"], true, "{info}");

    let mut ws = WsClient::connect(&server).await;
    ws.subscribe_after("stdin", 0).await;

    let mut stdin = server.child.stdin.take().expect("stdin piped");
    let expected = numbered("line", 1..N + 1);
    let text = expected.join("\n");
    // The last line has no newline: the end of input completes it.
    let writer = std::thread::spawn(move || {
        stdin.write_all(text.as_bytes()).expect("write stdin");
        // Dropping stdin closes the pipe: the end of input.
    });

    let mut lines = Vec::new();
    let (_, others) = ws.collect_lines("stdin", N, LONG, &mut lines).await;
    writer.join().expect("writer");
    let got: Vec<String> = lines.iter().map(|(_, l)| l.clone()).collect();
    assert_lines_eq(&got, &expected);
    assert_eq!(lines.last().map(|l| l.0), Some(N as u64));

    // The end of input comes after the last line, as a file state.
    let mut ended = others.iter().any(|m| m["type"] == "file");
    let deadline = Instant::now() + LONG;
    while !ended {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = ws.next_non_ping(left).await.expect("the ended state");
        assert_ne!(msg["type"], "lines", "no line after the end: {msg}");
        ended = msg["type"] == "file";
        if ended {
            assert_eq!(msg["state"], "ended", "{msg}");
            assert_eq!(msg["file"], "stdin", "{msg}");
        }
    }
    for msg in others.iter().filter(|m| m["type"] == "file") {
        assert_eq!(msg["state"], "ended", "{msg}");
    }

    // The history stays readable: a poll from the start gets every line once, in order.
    let mut poll = PollFollower::new(&server, "stdin", 0);
    poll.until_count(N, LONG).await;
    assert!(poll.gaps.is_empty(), "gaps {:?}", poll.gaps);
    assert_lines_eq(&poll.lines, &expected);

    assert_eq!(healthz(&server).await, 200);
    let info = server.file_info("stdin").await;
    assert_eq!(info["exists"], false, "ended: {info}");
    assert_eq!(info["last_seq"], N as u64, "{info}");
    assert_eq!(info["size"], (text_len(&expected)) as u64, "{info}");
    assert!(
        server.running(),
        "the server serves on after the end of input"
    );
    server.wait_log("state=\"ended\"", 1, LONG);

    // A pipe that ended does not keep the server from stopping promptly.
    server.terminate(Duration::from_secs(10));
}

fn text_len(lines: &[String]) -> usize {
    lines.iter().map(|l| l.len() + 1).sum::<usize>() - 1
}

#[tokio::test]
async fn a_slow_writer_is_followed_as_it_writes_and_idle_stdin_blocks_nothing() {
    let mut server = TestServer::new()
        .stdin_piped()
        .args(&["--partial-line-timeout", "300ms", "-"])
        .start();
    let mut stdin = server.child.stdin.take().expect("stdin piped");

    let response = http_client()
        .get(server.url("/follow?file=stdin"))
        .send()
        .await
        .expect("follow");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::new();

    for i in 1..=3 {
        let line = format!("slow {i}\n");
        stdin.write_all(line.as_bytes()).expect("write");
        stdin.flush().expect("flush");
        let read = async {
            while !text.contains(&line) {
                let chunk = body.next().await.expect("stream open").expect("chunk");
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .unwrap_or_else(|_| panic!("{line:?} not followed within 10 s; got {text:?}"));
        // Nothing comes on stdin meanwhile: the server answers all the same.
        let started = Instant::now();
        assert_eq!(healthz(&server).await, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "healthz slow while stdin idles"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An unfinished line goes out after the partial-line timeout, the pipe still open.
    stdin.write_all(b"no newline yet").expect("write");
    stdin.flush().expect("flush");
    let read = async {
        while !text.contains("no newline yet\n") {
            let chunk = body.next().await.expect("stream open").expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("the unfinished line not flushed; got {text:?}"));

    drop(stdin);
    let read = async {
        while !text.contains("==> tailcast: stdin ended <==") {
            let chunk = body.next().await.expect("stream open").expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("no end of input on /follow; got {text:?}"));
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("==>")).collect();
    assert_eq!(lines, ["slow 1", "slow 2", "slow 3", "no newline yet"]);
    assert_eq!(healthz(&server).await, 200);
}

#[tokio::test]
async fn stdin_twice_is_refused_and_name_renames_it() {
    let (code, _, stderr) = run_to_exit(&["--bind", "127.0.0.1:0", "-", "-"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("`-` (standard input) is named more than once"),
        "{stderr}"
    );

    let (code, _, stderr) = run_to_exit(&["--bind", "127.0.0.1:0", "--name", "app"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("needs a `-` PATH"), "{stderr}");

    let dir = temp_dir();
    let log = LogFile::new(&dir, "other.log");
    let mut server = TestServer::new()
        .stdin_piped()
        .args(&["--name", "app", "-", &log.path_str()])
        .start();
    let files = server.get_json("/api/files").await;
    let ids: Vec<&str> = files
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert_eq!(ids, ["app", "other.log"], "{files}");

    let mut stdin = server.child.stdin.take().expect("stdin piped");
    stdin.write_all(b"hello\n").expect("write");
    stdin.flush().expect("flush");
    let mut poll = PollFollower::new(&server, "app", 0);
    poll.until_count(1, LONG).await;
    assert_eq!(poll.lines, ["hello"]);

    // The input never ends (the pipe stays open): its blocked read does not hold up the exit.
    let took = server.terminate(Duration::from_secs(5));
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    drop(stdin);
}
