//! Several files in one request: `/follow?file=a&file=b` prints like `tail -F a b` (a `==> a <==`
//! header when the file changes), `/sse` and `/poll` deliver every line of each file once and
//! resume exactly with the combined cursor `EPOCH-ID:SEQ,ID:SEQ`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt as _;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

/// A server following `a.log` and `b.log`, each with `n` lines, all read.
async fn two_files(n: usize) -> (tempfile::TempDir, LogFile, LogFile, Server) {
    let dir = temp_dir();
    let a = LogFile::new(&dir, "a.log");
    let b = LogFile::new(&dir, "b.log");
    let server = Server::start(&[a.path_str(), b.path_str()]);
    a.append_numbered("a", 0..n);
    b.append_numbered("b", 0..n);
    server.wait_last_seq("a.log", n as u64, LONG).await;
    server.wait_last_seq("b.log", n as u64, LONG).await;
    (dir, a, b, server)
}

/// What the real `tail -n +1 a.log b.log` prints in `dir`.
fn real_tail(dir: &tempfile::TempDir) -> String {
    let output = std::process::Command::new("tail")
        .args(["-n", "+1", "a.log", "b.log"])
        .current_dir(dir.path())
        .output()
        .expect("run tail");
    String::from_utf8(output.stdout).unwrap()
}

/// Reads a streaming response, handing each chunk's text to `done` until it says so.
struct Reader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    text: String,
}

impl Reader {
    async fn open(url: &str, headers: &[(&str, &str)]) -> Reader {
        let mut request = http_client().get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("stream request");
        assert_eq!(response.status(), 200, "{url}");
        Reader {
            body: Box::pin(response.bytes_stream().map(|r| r.map(|b| b.to_vec()))),
            text: String::new(),
        }
    }

    async fn until(&mut self, needle: &str) -> &str {
        let deadline = Instant::now() + LONG;
        while !self.text.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.body.next())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", self.text))
                .expect("stream open")
                .expect("chunk");
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
        &self.text
    }
}

#[tokio::test]
async fn follow_of_two_files_prints_like_tail_with_headers() {
    let (dir, a, b, server) = two_files(5).await;
    let url = server.url("/follow?file=a.log&file=b.log&backlog=100");
    let mut reader = Reader::open(&url, &[]).await;
    let backlog = reader.until("b-4\n").await.to_owned();
    assert_eq!(
        backlog,
        real_tail(&dir),
        "the backlog as tail -n +1 a.log b.log prints it"
    );
    // Live: a header each time the file changes, none while it does not.
    b.append_line("b-5");
    reader.until("b-5\n").await;
    a.append_line("a-5");
    reader.until("a-5\n").await;
    a.append_line("a-6");
    let text = reader.until("a-6\n").await;
    let live = &text[backlog.len()..];
    assert_eq!(live, "b-5\n\n==> a.log <==\na-5\na-6\n");
}

/// The (file, seq, line) of a many-file SSE stream's line events, and each event's id.
async fn sse_lines(text: &str) -> Vec<(String, u64, String, String)> {
    sse_events(text)
        .await
        .into_iter()
        .filter(|e| e.event == "line")
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            (
                data["file"].as_str().unwrap().to_owned(),
                data["seq"].as_u64().unwrap(),
                data["line"].as_str().unwrap().to_owned(),
                e.id,
            )
        })
        .collect()
}

/// The (file, seq, line) of a many-file SSE stream's line events.
async fn sse_lines_without_ids(text: &str) -> Vec<(String, u64, String)> {
    let lines = sse_lines(text).await;
    lines.into_iter().map(|(f, s, l, _)| (f, s, l)).collect()
}

/// The server's epoch.
async fn epoch(server: &Server) -> u64 {
    let answer = server.get_json("/poll?file=a.log&backlog=0").await;
    answer["epoch"].as_u64().expect("epoch")
}

fn expected(a: std::ops::Range<usize>, b: std::ops::Range<usize>) -> Vec<(String, u64, String)> {
    let mut all: Vec<_> = a
        .map(|i| ("a.log".to_owned(), i as u64 + 1, format!("a-{i}")))
        .collect();
    all.extend(b.map(|i| ("b.log".to_owned(), i as u64 + 1, format!("b-{i}"))));
    all
}

#[tokio::test]
async fn sse_of_two_files_names_each_line_s_file_and_resumes_with_the_combined_id() {
    let (_dir, a, b, server) = two_files(20).await;
    let epoch = epoch(&server).await;
    let url = server.url("/sse?file=a.log&file=b.log&backlog=100");
    let mut reader = Reader::open(&url, &[]).await;
    reader.until("\"line\":\"b-19\"").await;
    a.append_line("a-20");
    reader.until("\"line\":\"a-20\"").await;
    b.append_line("b-20");
    let text = reader.until("\"line\":\"b-20\"").await.to_owned();
    let events = sse_lines(&text).await;
    let got: Vec<_> = events
        .iter()
        .map(|(f, s, l, _)| (f.clone(), *s, l.clone()))
        .collect();
    let mut want = expected(0..20, 0..20);
    want.extend(expected(20..21, 20..21));
    assert_eq!(got, want);
    // Every line's id is where the client is in both files once it has that line.
    let mut at = [0u64, 0];
    for (file, seq, _, id) in &events {
        at[usize::from(file == "b.log")] = *seq;
        assert_eq!(id, &format!("{epoch}-a.log:{},b.log:{}", at[0], at[1]));
    }
    // The id after a-9 is where a reconnect resumes: a-10.. and all of b.
    let (_, _, _, mid) = &events[9];
    assert_eq!(mid, &format!("{epoch}-a.log:10,b.log:0"));
    drop(reader);
    let url = server.url("/sse?file=a.log&file=b.log");
    let mut reader = Reader::open(&url, &[("Last-Event-ID", mid)]).await;
    let text = reader.until("\"line\":\"b-20\"").await.to_owned();
    let got = sse_lines_without_ids(&text).await;
    assert_eq!(got, expected(10..21, 0..21));
}

#[tokio::test]
async fn sse_line_events_of_two_files_carry_the_time_each_line_was_read() {
    let (_dir, a, b, server) = two_files(1).await;
    let url = server.url("/sse?file=a.log&file=b.log&backlog=1");
    let mut reader = Reader::open(&url, &[]).await;
    reader.until("\"line\":\"b-0\"").await;
    let unix_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let before = unix_ms();
    a.append_line("a-1");
    reader.until("\"line\":\"a-1\"").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    b.append_line("b-1");
    let text = reader.until("\"line\":\"b-1\"").await.to_owned();
    let after = unix_ms();
    let times: Vec<(String, u64)> = sse_events(&text)
        .await
        .into_iter()
        .filter(|e| e.event == "line")
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            let time = data["time"]
                .as_u64()
                .unwrap_or_else(|| panic!("no time: {}", e.data));
            (data["line"].as_str().unwrap().to_owned(), time)
        })
        .collect();
    let time_of = |line: &str| times.iter().find(|(l, _)| l == line).map(|(_, t)| *t);
    let (a0, b0, a1, b1) = (
        time_of("a-0"),
        time_of("b-0"),
        time_of("a-1"),
        time_of("b-1"),
    );
    // The backlog has the time it was read at (before the stream was asked for); the live lines
    // theirs, in the order they were written.
    assert!(a0.unwrap() < before && b0.unwrap() < before, "{times:?}");
    assert!(
        before <= a1.unwrap() && a1 < b1 && b1.unwrap() <= after,
        "{before} {times:?} {after}"
    );
}

/// Polls `a.log` and `b.log` together from `after` (the combined cursor, or none) until
/// `want` lines came; returns them and the last cursor.
async fn poll_both(
    server: &Server,
    mut after: Option<String>,
    want: usize,
) -> (Vec<(String, u64, String)>, String) {
    let client = http_client();
    let mut got = Vec::new();
    let deadline = Instant::now() + LONG;
    loop {
        assert!(
            Instant::now() < deadline,
            "stuck at {after:?} with {}",
            got.len()
        );
        let mut url = server.url("/poll?file=a.log&file=b.log&max=7&timeout=5&backlog=0");
        if let Some(after) = &after {
            url.push_str(&format!("&after={after}"));
        }
        let answer: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        let files = answer["files"].as_array().expect("files");
        assert_eq!(files.len(), 2, "{answer}");
        for file in files {
            assert!(file["gap"].is_null(), "{answer}");
            let id = file["file"].as_str().unwrap();
            let first = file["first_seq"].as_u64();
            for (i, line) in file["lines"].as_array().unwrap().iter().enumerate() {
                let seq = first.unwrap() + i as u64;
                got.push((id.to_owned(), seq, line.as_str().unwrap().to_owned()));
            }
        }
        after = Some(answer["cursor"].as_str().unwrap().to_owned());
        if got.len() >= want {
            return (got, after.unwrap());
        }
    }
}

#[tokio::test]
async fn poll_of_two_files_answers_once_for_both_and_resumes_with_the_combined_cursor() {
    let (_dir, a, b, server) = two_files(10).await;
    let epoch = epoch(&server).await;
    let start = format!("{epoch}-a.log:0,b.log:0");
    let (mut got, cursor) = poll_both(&server, Some(start), 20).await;
    got.sort();
    assert_eq!(got, expected(0..10, 0..10));
    assert_eq!(cursor, format!("{epoch}-a.log:10,b.log:10"));

    // Held for both: a line in either answers it.
    let client = http_client();
    let url = server.url(&format!(
        "/poll?file=a.log&file=b.log&after={cursor}&timeout=30"
    ));
    let held = tokio::spawn(client.get(url).send());
    wait_polls_held(&server, 1, LONG).await;
    b.append_line("b-10");
    let answer: Value = held.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(answer["files"][1]["lines"][0], "b-10", "{answer}");
    assert_eq!(
        answer["files"][0]["lines"].as_array().unwrap().len(),
        0,
        "{answer}"
    );
    assert_eq!(
        answer["cursor"],
        format!("{epoch}-a.log:10,b.log:11"),
        "{answer}"
    );
    a.append_numbered("a", 10..15);
    let (got, _) = poll_both(
        &server,
        Some(answer["cursor"].as_str().unwrap().to_owned()),
        5,
    )
    .await;
    assert_eq!(got, expected(10..15, 0..0));

    // One request is one answered poll, however many files it names.
    let before = server.stats().await["polls_answered"].as_u64().unwrap();
    server
        .get_json("/poll?file=a.log&file=b.log&backlog=0")
        .await;
    let after = server.stats().await["polls_answered"].as_u64().unwrap();
    assert_eq!(after - before, 1);

    // Bounded, and a cursor that does not fit is refused, named.
    let many: String = (0..17).map(|i| format!("&file=f{i}")).collect();
    let response = client
        .get(server.url(&format!("/poll?{}", &many[1..])))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("at most 16 files"));
    let response = client
        .get(server.url("/poll?file=a.log&file=b.log&after=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("EPOCH-ID:SEQ,ID:SEQ"));
}

#[tokio::test]
async fn a_combined_cursor_from_another_epoch_resets_each_file() {
    let (_dir, _a, _b, server) = two_files(5).await;
    let epoch = epoch(&server).await;
    let old = "1-a.log:3,b.log:4";
    let answer = server
        .get_json(&format!(
            "/poll?file=a.log&file=b.log&backlog=2&after={old}"
        ))
        .await;
    for (i, id) in ["a.log", "b.log"].iter().enumerate() {
        let file = &answer["files"][i];
        assert_eq!(file["file"], *id, "{answer}");
        assert_eq!(file["reset"], true, "{answer}");
        assert_eq!(file["reset_reason"], "epoch", "{answer}");
        assert_eq!(file["first_seq"], 4, "the backlog of 2: {answer}");
    }
    assert_eq!(answer["cursor"], format!("{epoch}-a.log:5,b.log:5"));

    let url = server.url("/sse?file=a.log&file=b.log&backlog=1");
    let text = stream_until(LONG, &url, &[("Last-Event-ID", old)], "\"line\":\"b-4\"").await;
    let events = sse_events(&text).await;
    let resets: Vec<_> = events.iter().filter(|e| e.event == "reset").collect();
    assert_eq!(resets.len(), 2, "{text}");
    assert_eq!(resets[0].id, format!("{epoch}-a.log:4,b.log:4"), "{text}");
    let got = sse_lines_without_ids(&text).await;
    assert_eq!(got, expected(4..5, 4..5));
}
