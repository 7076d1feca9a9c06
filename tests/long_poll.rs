//! HTTP long-poll: following a file by cursor, held requests, many waiters on one append,
//! gaps, bad parameters, text format, and the README's curl loops run for real.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_poll_loop_receives_every_line_of_a_hundred_thousand_once_in_order() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[path_str(&log)]);
    let writer = write_in_bursts(&log, "line", 0..100_000, 1000, Duration::from_millis(5));
    let mut follower = PollFollower::new(&server, "app.log", 0);
    follower.until_count(100_000, LONG).await;
    writer.join().unwrap();
    assert_eq!(follower.poll_once(0.2).await, 0, "nothing more");
    assert!(follower.gaps.is_empty(), "gaps: {:?}", follower.gaps);
    assert_lines_eq(&follower.lines, &numbered("line", 0..100_000));
}

#[tokio::test]
async fn a_held_poll_answers_an_append_at_once_and_times_out_empty() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[path_str(&log)]);
    let client = reqwest::Client::new();

    // Empty at its timeout, with the cursor unchanged.
    let started = Instant::now();
    let answer: Value = client
        .get(server.url("/poll?file=app.log&after=0&timeout=0.4"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(390),
        "returned after {took:?}"
    );
    assert_eq!(answer["lines"], serde_json::json!([]));
    assert_eq!(answer["first_seq"], Value::Null);
    assert_eq!(answer["last_seq"], 0);
    assert_eq!(answer["gap"], Value::Null);
    assert!(answer["epoch"].as_u64().unwrap() > 0);

    // Latency from append to answer, 100 tries: measured and printed, not a timing assertion.
    let mut latencies = Vec::new();
    for i in 0..100u64 {
        let url = server.url(&format!("/poll?file=app.log&after={i}&timeout=10"));
        let request = tokio::spawn(client.get(url).send());
        // The poll must be held before the append for the measure to mean anything.
        wait_for(LONG, || async {
            (server.stats().await["polls_waiting"] == 1).then_some(())
        })
        .await
        .expect("poll held");
        let appended = Instant::now();
        append(&log, format!("line-{i}\n").as_bytes());
        let answer: Value = request.await.unwrap().unwrap().json().await.unwrap();
        latencies.push(appended.elapsed());
        assert_eq!(answer["lines"][0], format!("line-{i}"));
        assert_eq!(answer["last_seq"], i + 1);
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    println!(
        "append-to-answer latency over 100 held polls: median {median:?}, max {:?}",
        latencies.last().unwrap()
    );
    assert!(median < Duration::from_secs(1), "median {median:?}");
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the comm.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test]
async fn a_thousand_held_polls_are_all_answered_by_one_append_and_cost_no_cpu_while_waiting() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[path_str(&log)]);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = server.url("/poll?file=app.log&after=0&timeout=30");
    let mut requests = Vec::new();
    for _ in 0..1000 {
        requests.push(tokio::spawn(client.get(&url).send()));
    }
    wait_for(LONG, || async {
        (server.stats().await["polls_waiting"] == 1000).then_some(())
    })
    .await
    .expect("1000 polls held");
    let ticks_before = cpu_ticks(server.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_ticks = cpu_ticks(server.pid()) - ticks_before;
    println!(
        "server CPU while 1000 polls wait: {} ms in 2 s ({:.1}% of a core)",
        idle_ticks * 10,
        idle_ticks as f64 / 2.0
    );
    assert!(
        idle_ticks <= 10,
        "{idle_ticks} ticks of CPU in 2 s of waiting"
    );

    let appended = Instant::now();
    append(&log, b"the one line\n");
    for request in requests {
        let answer: Value = request.await.unwrap().unwrap().json().await.unwrap();
        assert_eq!(answer["lines"][0], "the one line");
    }
    println!(
        "1000 held polls answered {:?} after the append",
        appended.elapsed()
    );
}

#[tokio::test]
async fn gaps_unknown_files_bad_parameters_and_clamped_timeouts() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let server = Server::start(&[
        "--history",
        "50",
        "--max-poll-timeout",
        "700ms",
        &path_str(&log),
    ]);
    append_numbered(&log, "line", 0..120);
    server.wait_last_seq("app.log", 120, LONG).await;

    // A cursor older than the history: the exact gap, then the oldest retained lines.
    let answer = server.get_json("/poll?file=app.log&after=10&max=5").await;
    assert_eq!(answer["gap"], serde_json::json!({"from": 11, "to": 70}));
    assert_eq!(answer["first_seq"], 71);
    assert_eq!(answer["last_seq"], 75);
    assert_eq!(answer["lines"][0], "line-70");
    let text = reqwest::get(server.url("/poll?file=app.log&after=10&max=2&format=text"))
        .await
        .unwrap();
    assert_eq!(text.headers()["x-tailcast-gap"], "11-70");
    let epoch = answer["epoch"].as_u64().unwrap();
    assert_eq!(
        text.headers()["x-tailcast-cursor"],
        format!("{epoch}-72").as_str()
    );
    assert_eq!(text.text().await.unwrap(), "line-70\nline-71\n");

    // Unknown file: 404 with a JSON error; bad parameter: 400 naming it.
    let response = reqwest::get(server.url("/poll?file=nope.log"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unknown_file");
    let response = reqwest::get(server.url("/poll?file=app.log&after=abc"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("`after`"),
        "{body}"
    );
    let response = reqwest::get(server.url("/poll?file=app.log&timeout=-1"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = reqwest::get(server.url("/poll?file=%2E%2E%2Fetc%2Fpasswd"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "ids are names, never paths");

    // timeout=99999 is clamped to --max-poll-timeout (700 ms).
    let started = Instant::now();
    let answer = server
        .get_json("/poll?file=app.log&after=120&timeout=99999")
        .await;
    let took = started.elapsed();
    assert_eq!(answer["lines"], serde_json::json!([]));
    assert!(
        took >= Duration::from_millis(650) && took < Duration::from_secs(5),
        "clamped poll took {took:?}"
    );

    // A cursor ahead of the file (another server run): answered at once with the live edge.
    let started = Instant::now();
    let answer = server
        .get_json("/poll?file=app.log&after=5000&timeout=30")
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(answer["reset"], true);
    assert_eq!(answer["last_seq"], 120);
}

#[tokio::test]
async fn backlog_without_a_cursor_is_like_tail() {
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    append_numbered(&log, "line", 0..30);
    let server = Server::start(&[path_str(&log)]);
    let answer = server.get_json("/poll?file=app.log").await;
    let lines: Vec<&str> = answer["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        numbered("line", 20..30),
        "default backlog is 10, like tail"
    );
    assert_eq!(answer["first_seq"], 21);
    assert_eq!(answer["last_seq"], 30);
    let answer = server.get_json("/poll?file=app.log&backlog=3").await;
    assert_eq!(answer["first_seq"], 28);
    let text = reqwest::Client::new()
        .get(server.url("/poll?file=app.log&backlog=2"))
        .header("Accept", "text/plain")
        .send()
        .await
        .unwrap();
    let epoch = answer["epoch"].as_u64().unwrap();
    assert_eq!(
        text.headers()["x-tailcast-cursor"],
        format!("{epoch}-30").as_str()
    );
    assert_eq!(text.text().await.unwrap(), "line-28\nline-29\n");
}

/// A child process killed when the test ends, a failing one too: the README loops never end
/// by themselves.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a README loop against the server, restarts the server on the same port in the middle
/// of the stream (as an upgrade would), and checks the loop prints every appended line exactly
/// once, the restarted server having answered its old cursor with a reset.
async fn readme_loop_prints_every_line(snippet: &str) {
    for tool in ["curl", "bash"] {
        assert!(
            Command::new("which")
                .arg(tool)
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success(),
            "{tool} is needed by this test: install it (Debian: apt-get install {tool})"
        );
    }
    let dir = temp_dir();
    let log = join(&dir, "app.log");
    std::fs::write(&log, "").unwrap();
    let mut server = Server::start(&[path_str(&log)]);
    // The restarted server listens where the first did: the loop has one URL.
    let addr = server.addr.clone();
    let script = snippet.replace("127.0.0.1:7070", &addr);
    let mut shell = KillOnDrop(
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let rx = stdout_lines(&mut shell.0);
    let deadline = Instant::now() + LONG;
    let mut printed = Vec::new();
    let take_until = |n: usize, printed: &mut Vec<String>| {
        while printed.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((_, line)) => printed.push(line),
                Err(_) => break,
            }
        }
    };
    let writer = write_in_bursts(&log, "line", 0..500, 50, Duration::from_millis(20));
    take_until(500, &mut printed);
    writer.join().unwrap();
    assert_lines_eq(&printed, &numbered("line", 0..500));

    server.terminate(LONG);
    let mut server = TestServer::new()
        .bind(&addr)
        .args(&[path_str(&log)])
        .start();
    // The new server numbers the file's 500 lines anew; the loop's first request there carries
    // the old epoch's cursor and is told of the reset.
    server.wait_log("cursor from another epoch, reset", 1, LONG);
    // Its next request is held: from now on every appended line is news to it.
    let held = wait_for(LONG, || async {
        (server.stats().await["polls_waiting"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    assert!(
        held.is_some(),
        "the loop did not come back to the restarted server"
    );
    let writer = write_in_bursts(&log, "line", 500..1000, 50, Duration::from_millis(20));
    take_until(1000, &mut printed);
    writer.join().unwrap();
    drop(shell);
    assert_lines_eq(&printed, &numbered("line", 0..1000));
    // Nothing printed twice after the last line either.
    let extra: Vec<String> = rx.try_iter().map(|(_, line)| line).collect();
    assert!(extra.is_empty(), "printed more: {extra:?}");
}

#[tokio::test]
async fn the_readme_curl_loop_prints_every_appended_line() {
    readme_loop_prints_every_line(&readme_snippet("curl-loop")).await;
}

#[tokio::test]
async fn the_readme_jq_loop_prints_every_appended_line() {
    assert!(
        Command::new("which")
            .arg("jq")
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success(),
        "jq is needed by this test: install it (Debian: apt-get install jq)"
    );
    readme_loop_prints_every_line(&readme_snippet("jq-loop")).await;
}

/// Unix milliseconds on this machine's clock, the one the server stamps lines with.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn an_answer_says_when_each_run_of_its_lines_was_read_and_text_is_unchanged() {
    let dir = temp_dir();
    let a = join(&dir, "a.log");
    let b = join(&dir, "b.log");
    std::fs::write(&b, "").unwrap();
    let before = unix_ms();
    append(&a, b"a1\na2\n");
    let server = Server::start(&[path_str(&a), path_str(&b)]);
    server.wait_last_seq("a.log", 2, LONG).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    append(&a, b"a3\n");
    server.wait_last_seq("a.log", 3, LONG).await;
    let after = unix_ms();

    let answer = server.get_json("/poll?file=a.log&after=0").await;
    assert_eq!(answer["lines"], serde_json::json!(["a1", "a2", "a3"]));
    let times = answer["times"].as_array().expect("times").clone();
    assert_eq!(times.len(), 2, "two reads, two runs: {answer}");
    assert_eq!(
        (times[0][0].as_u64(), times[1][0].as_u64()),
        (Some(1), Some(3)),
        "{answer}"
    );
    let (t1, t3) = (times[0][1].as_u64().unwrap(), times[1][1].as_u64().unwrap());
    assert!(
        before <= t1 && t1 < t3 && t3 <= after,
        "{before} {t1} {t3} {after}"
    );

    // Part of the history: the runs start at the first line sent.
    let answer = server.get_json("/poll?file=a.log&after=1&max=1").await;
    assert_eq!(answer["times"], serde_json::json!([[2, t1]]), "{answer}");
    // An empty answer has none.
    let answer = server.get_json("/poll?file=a.log&after=3&timeout=0").await;
    assert!(answer.get("times").is_none(), "{answer}");
    // Several files: each file's entry has its own.
    let answer = server
        .get_json("/poll?file=a.log&file=b.log&backlog=1")
        .await;
    assert_eq!(
        answer["files"][0]["times"],
        serde_json::json!([[3, t3]]),
        "{answer}"
    );
    assert!(answer["files"][1].get("times").is_none(), "{answer}");
    // The text form is the lines and nothing else.
    let text = reqwest::Client::new()
        .get(server.url("/poll?file=a.log&after=0&format=text"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "a1\na2\na3\n");
}
