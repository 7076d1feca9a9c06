//! Commands as sources (`--exec`), on the real binary: a command that fails is restarted and
//! every run's lines arrive once, between its `started` and `exited` states; `--exec-restart
//! never` runs it once; an exit by a signal says which; the token stays tailcast's; stderr joins with `--exec-stderr`; `--exec-shell` runs a pipeline; what a
//! command leaves running when it exits is stopped (SIGKILL after `--exec-grace` for what ignores
//! SIGTERM), and SIGTERM to tailcast leaves no process of
//! any command's group behind (one that ignores SIGTERM gets SIGKILL after `--exec-grace`); a
//! program that does not exist or may not run is a clear error at start.
//!
//! Scripts run as `/bin/sh SCRIPT` rather than being executed themselves: a script file just
//! written may still be open in a process another test forks ("text file busy").

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt as _;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

/// Writes a shell script into `dir` and returns the `--exec` value that runs it with `args`.
fn script(dir: &tempfile::TempDir, name: &str, body: &str, args: &str) -> String {
    let path = join(dir, &format!("{name}.sh"));
    std::fs::write(&path, body).expect("write script");
    format!("{name}=/bin/sh '{}' {args}", path_str(&path))
}

/// A server running the script `body` (given `dir` as `$1`) as the source `name`, once
/// (`--exec-restart never`), with `extra` options.
fn run_once(dir: &tempfile::TempDir, name: &str, body: &str, extra: &[&str]) -> Server {
    let exec = script(dir, name, body, &path_str(dir.path()));
    TestServer::new()
        .args(&["--exec", &exec, "--exec-restart", "never"])
        .args(extra)
        .start()
}

/// A process that is gone: no /proc entry, or a zombie waiting for whoever reaps orphans.
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// The pid a script wrote into `path`, waiting for it (the script writes it before its marker
/// line, so this only waits when called early).
fn read_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn wait_gone(pids: &[u32], within: Duration) {
    let left = wait_for(within, || async {
        pids.iter().all(|&pid| gone(pid)).then_some(())
    })
    .await;
    let alive: Vec<u32> = pids.iter().copied().filter(|&pid| !gone(pid)).collect();
    assert!(
        left.is_some(),
        "processes {alive:?} still alive {within:?} later"
    );
}

/// What a WebSocket client subscribed from the first line sees of `file`, as text: `started`,
/// each line, `exited CODE` or `exited signal N`; collected until `exits` exits were seen. (The
/// states since the cursor come with the lines, where they happened.)
async fn transcript(server: &Server, file: &str, exits: usize) -> Vec<String> {
    let mut ws = WsClient::connect(server).await;
    ws.subscribe_after(file, 0).await;
    let deadline = Instant::now() + LONG;
    let mut seen = Vec::new();
    let mut next_seq = 1;
    while seen
        .iter()
        .filter(|e: &&String| e.starts_with("exited"))
        .count()
        < exits
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = ws
            .next_non_ping(left)
            .await
            .unwrap_or_else(|| panic!("only {seen:?} within {LONG:?}"));
        assert_eq!(msg["file"], file, "{msg}");
        match msg["type"].as_str() {
            Some("lines") => {
                assert_eq!(msg["seq"], next_seq, "lines follow each other: {msg}");
                for line in msg["lines"].as_array().expect("lines") {
                    seen.push(line.as_str().expect("a line").to_owned());
                    next_seq += 1;
                }
            }
            Some("file") => seen.push(state_text(&msg)),
            _ => panic!("unexpected {msg}"),
        }
    }
    seen
}

fn state_text(msg: &Value) -> String {
    match (msg["state"].as_str(), &msg["code"], &msg["signal"]) {
        (Some("exited"), Value::Number(code), _) => format!("exited {code}"),
        (Some("exited"), _, Value::Number(signal)) => format!("exited signal {signal}"),
        (Some(state), _, _) => state.to_owned(),
        _ => panic!("a state without a name: {msg}"),
    }
}

/// Fails twice (status 1), then succeeds: `on-failure` restarts it twice, then no more.
const FAILING: &str = r#"
n=$(cat "$1/runs" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$1/runs"
seq 1 "$2" | sed "s/^/run $n line /"
[ "$n" -ge 3 ]
"#;

#[tokio::test]
async fn a_failing_command_is_restarted_and_each_run_arrives_once_between_its_states() {
    const LINES: usize = 3000;
    let dir = temp_dir();
    let exec = script(
        &dir,
        "job",
        FAILING,
        &format!("{} {LINES}", path_str(dir.path())),
    );
    let mut server = TestServer::new()
        .args(&[
            "--exec",
            &exec,
            "--exec-backoff",
            "50ms",
            "--exec-backoff-max",
            "400ms",
        ])
        .start();
    let seen = transcript(&server, "job", 3).await;
    let mut expected = Vec::new();
    for run in 1..=3 {
        expected.push("started".to_owned());
        expected.extend((1..=LINES).map(|i| format!("run {run} line {i}")));
        expected.push(format!("exited {}", if run < 3 { 1 } else { 0 }));
    }
    assert_lines_eq(&seen, &expected);
    server.wait_log("not restarted (--exec-restart on-failure)", 1, LONG);
    let info = server.file_info("job").await;
    assert_eq!(info["last_seq"], 3 * LINES, "{info}");
    assert_eq!(info["exists"], false, "{info}");
    assert!(info.get("error").is_none(), "a success is no error: {info}");
    assert!(
        info["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("!/bin/sh ")),
        "{info}"
    );
}

#[tokio::test]
async fn restart_never_runs_once_and_stderr_joins_on_request() {
    let dir = temp_dir();
    let body = r#"
n=$(cat "$1/runs" 2>/dev/null || echo 0)
echo "$((n + 1))" > "$1/runs"
echo out
echo err >&2
exit 3
"#;
    let mut server = run_once(&dir, "once", body, &["--exec-stderr"]);
    let seen = transcript(&server, "once", 1).await;
    // The two pipes are read apart: their lines may come in either order.
    let mut middle = seen[1..seen.len() - 1].to_vec();
    middle.sort();
    assert_eq!(
        (seen[0].as_str(), middle, seen[seen.len() - 1].as_str()),
        (
            "started",
            vec!["err".to_owned(), "out".to_owned()],
            "exited 3"
        ),
        "{seen:?}"
    );
    // The supervisor has decided, and says so; then no second run comes.
    server.wait_log("not restarted (--exec-restart never)", 1, LONG);
    let info = server.file_info("once").await;
    assert_eq!(info["exists"], false, "{info}");
    assert_eq!(info["last_seq"], 2, "{info}");
    assert!(
        info["error"]
            .as_str()
            .is_some_and(|e| e.contains("exited with status 3")),
        "{info}"
    );
    let runs = std::fs::read_to_string(join(&dir, "runs")).expect("runs");
    assert_eq!(runs.trim(), "1");
    assert_eq!(server.stderr_text().matches("state=\"started\"").count(), 1);
}

#[tokio::test]
async fn an_exit_by_a_signal_is_told_on_follow() {
    // Without a shell: `$$` reaches sh as it is, inside its quotes.
    let server = TestServer::new()
        .args(&[
            "--exec",
            "k=/bin/sh -c 'echo bye; kill -9 $$'",
            "--exec-restart",
            "never",
        ])
        .start();
    let response = http_client()
        .get(server.url("/follow?file=k&after=0"))
        .send()
        .await
        .expect("follow");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let read = async {
        while !text.contains("exited with signal 9 <==") {
            let chunk = body.next().await.expect("stream open").expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(LONG, read)
        .await
        .unwrap_or_else(|_| panic!("no exit on /follow; got {text:?}"));
    assert_eq!(
        text,
        "==> tailcast: k started <==\nbye\n==> tailcast: k exited with signal 9 <==\n"
    );
}

#[tokio::test]
async fn exec_shell_runs_a_pipeline_and_polls_see_its_lines() {
    let server = TestServer::new()
        .args(&[
            "--exec-shell",
            "--exec",
            "pipe=printf 'a\\nb\\n' | tr ab xy",
            "--exec-restart",
            "never",
        ])
        .start();
    let mut poll = PollFollower::new(&server, "pipe", 0);
    poll.until_count(2, LONG).await;
    assert_eq!(poll.lines, ["x", "y"]);
}

#[tokio::test]
async fn a_command_does_not_inherit_the_token() {
    let server = TestServer::new()
        .env("TAILCAST_TOKEN", "s3cret")
        .args(&[
            "--exec",
            "e=/bin/sh -c 'echo \"token=${TAILCAST_TOKEN:-none}\"'",
            "--exec-restart",
            "never",
        ])
        .start();
    let answer: Value = http_client()
        .get(server.url("/poll?file=e&after=0&timeout=30&token=s3cret"))
        .send()
        .await
        .expect("poll")
        .json()
        .await
        .expect("poll JSON");
    assert_eq!(
        answer["lines"],
        serde_json::json!(["token=none"]),
        "{answer}"
    );
}

#[tokio::test]
async fn what_a_command_leaves_running_is_stopped_when_it_exits() {
    let dir = temp_dir();
    // One holds the command's stdout open; the other does not, and ignores SIGTERM.
    let body = r#"
sleep 1000 &
echo "$!" > "$1/left"
(trap '' TERM; exec sleep 1000) > /dev/null &
echo "$!" > "$1/stubborn"
exit 0
"#;
    let mut server = run_once(&dir, "leaves", body, &["--exec-grace", "500ms"]);
    let pids = [
        read_pid(&join(&dir, "left")),
        read_pid(&join(&dir, "stubborn")),
    ];
    server.wait_log("not restarted", 1, LONG);
    wait_gone(&pids, Duration::from_secs(5)).await;
    assert!(server.running(), "tailcast runs on");
}

const WAITS: &str = r#"
echo "$$" > "$1/leader"
sleep 1000 &
echo "$!" > "$1/child"
echo ready
wait
"#;

#[tokio::test]
async fn sigterm_to_tailcast_leaves_no_process_of_any_command_group() {
    let (plain, stubborn) = (temp_dir(), temp_dir());
    let plain_exec = script(&plain, "plain", WAITS, &path_str(plain.path()));
    // Ignoring SIGTERM is inherited by its sleep too: only SIGKILL ends this group.
    let stubborn_body = format!("trap '' TERM\n{WAITS}");
    let stubborn_exec = script(
        &stubborn,
        "stubborn",
        &stubborn_body,
        &path_str(stubborn.path()),
    );
    let mut server = TestServer::new()
        .args(&[
            "--exec",
            &plain_exec,
            "--exec",
            &stubborn_exec,
            "--exec-grace",
            "1s",
        ])
        .start();
    for id in ["plain", "stubborn"] {
        let mut poll = PollFollower::new(&server, id, 0);
        assert!(poll.until_line("ready", LONG).await, "{id} not ready");
    }
    let pids: Vec<u32> = [&plain, &stubborn]
        .iter()
        .flat_map(|dir| ["leader", "child"].map(|name| read_pid(&join(dir, name))))
        .collect();
    assert!(pids.iter().all(|&pid| !gone(pid)), "all running: {pids:?}");

    let took = server.terminate(Duration::from_secs(10));
    wait_gone(&pids, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    let log = server.stderr_text();
    assert!(
        log.contains("SIGKILL"),
        "the stubborn group was killed: {log}"
    );
}

#[tokio::test]
async fn a_command_that_cannot_run_is_a_clear_error_at_start() {
    let (code, _, stderr) = run_to_exit(
        &[
            "--bind",
            "127.0.0.1:0",
            "--exec",
            "no-such-program-for-tailcast --flag",
        ],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot start `no-such-program-for-tailcast`")
            && stderr.contains("no such program on PATH")
            && stderr.contains("give its full path"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let dir = temp_dir();
    let path = join(&dir, "not-executable");
    std::fs::write(&path, "echo hi\n").expect("write");
    let (code, _, stderr) =
        run_to_exit(&["--bind", "127.0.0.1:0", "--exec", &path_str(&path)], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("chmod +x"), "{stderr}");

    let (code, _, stderr) = run_to_exit(
        &["--bind", "127.0.0.1:0", "--exec", "a=x", "--exec", "a=y"],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("two sources would be named `a`"),
        "{stderr}"
    );
}
