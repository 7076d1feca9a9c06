//! `--state-dir`: numbering and read positions survive a crash. tailcast is killed with SIGKILL
//! in the middle of a burst, lines are appended and the file rotated while it is down, and a
//! WebSocket client and an SSE client that resume with their cursors from before the crash end
//! with every line exactly once, in file order, with the seq a tailcast that never stopped would
//! have given it (line N of the file is seq N). Also: an unusable state file gives a warning and a
//! fresh epoch (clients reset), and a state directory serves one server at a time.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use tokio::sync::watch;

const LONG: Duration = Duration::from_secs(60);
/// How long a test's clients follow at most.
const CLIENT_TIME: Duration = Duration::from_secs(150);

/// The text of line `n` (1-based) of the test's log: line N must arrive as seq N.
fn line(n: u64) -> String {
    format!("line-{n:07}")
}

/// Appends lines `range` to `path` in one buffered burst.
fn write_lines(path: &Path, range: std::ops::RangeInclusive<u64>) {
    let mut out = std::io::BufWriter::with_capacity(256 << 10, open_append(path));
    for n in range {
        writeln!(out, "{}", line(n)).unwrap();
    }
    out.flush().unwrap();
}

/// What one client received, in order: (seq, text); every reset, gap and odd event is a failure.
#[derive(Default)]
struct Received {
    lines: Vec<(u64, String)>,
    epoch: Option<u64>,
    problems: Vec<String>,
}

impl Received {
    fn last_seq(&self) -> u64 {
        self.lines.last().map_or(0, |(seq, _)| *seq)
    }

    fn push(&mut self, seq: u64, text: String) {
        self.lines.push((seq, text));
    }

    /// Every line 1..=total exactly once, in order, with its own seq.
    fn assert_exact(&self, who: &str, total: u64) {
        assert!(self.problems.is_empty(), "{who}: {:?}", self.problems);
        assert_eq!(self.lines.len() as u64, total, "{who}: line count");
        for (i, (seq, text)) in self.lines.iter().enumerate() {
            let n = i as u64 + 1;
            assert!(
                *seq == n && *text == line(n),
                "{who}: item {i} is seq {seq} {text:?}, expected seq {n} {:?}",
                line(n)
            );
        }
    }
}

/// A client that follows `app.log` over WebSocket across server restarts: whenever `base` names
/// a server, it connects and subscribes after its last seq (with the epoch of the first
/// `hello`), and reads until the connection drops or `total` lines arrived.
async fn websocket_client(
    mut base: watch::Receiver<Option<String>>,
    total: u64,
    deadline: Instant,
) -> Received {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let mut got = Received::default();
    while got.last_seq() < total && Instant::now() < deadline {
        let Some(url) = wait_for_server(&mut base, deadline).await else {
            break;
        };
        let ws_url = format!("{}/ws", url.replacen("http", "ws", 1));
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&ws_url).await else {
            continue;
        };
        let mut subscribed = false;
        while got.last_seq() < total {
            let left = deadline.saturating_duration_since(Instant::now());
            // The server may be killed at any point, the handshake included: a drop means
            // "wait for the next one".
            let Ok(Some(Ok(frame))) = tokio::time::timeout(left, ws.next()).await else {
                break;
            };
            let Message::Text(text) = frame else {
                continue;
            };
            let msg: Value = serde_json::from_str(&text).expect("JSON");
            match msg["type"].as_str() {
                Some("hello") if !subscribed => {
                    let epoch = *got.epoch.get_or_insert(msg["epoch"].as_u64().unwrap());
                    let after = got.last_seq();
                    let subscribe =
                        json!({"type":"subscribe","file":"app.log","after":after,"epoch":epoch});
                    if ws
                        .send(Message::Text(subscribe.to_string().into()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    subscribed = true;
                    continue;
                }
                _ => {}
            }
            match msg["type"].as_str() {
                Some("lines") => {
                    let first = msg["seq"].as_u64().unwrap();
                    for (i, text) in msg["lines"].as_array().unwrap().iter().enumerate() {
                        got.push(first + i as u64, text.as_str().unwrap().to_owned());
                    }
                }
                Some("ping" | "pong" | "file") => {}
                _ => got.problems.push(msg.to_string()),
            }
        }
    }
    got
}

/// The same over SSE, resuming with `Last-Event-ID`.
async fn sse_client(
    mut base: watch::Receiver<Option<String>>,
    total: u64,
    deadline: Instant,
) -> Received {
    let mut got = Received::default();
    let mut last_id: Option<String> = None;
    while got.last_seq() < total && Instant::now() < deadline {
        let Some(url) = wait_for_server(&mut base, deadline).await else {
            break;
        };
        let mut request = http_client().get(format!("{url}/sse?file=app.log&after=0"));
        if let Some(id) = &last_id {
            request = request.header("Last-Event-ID", id);
        }
        let Ok(response) = request.send().await else {
            continue;
        };
        let mut body = response.bytes_stream();
        let mut pending = String::new();
        let mut event = SseEvent::default();
        'stream: while got.last_seq() < total {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some(Ok(chunk))) = tokio::time::timeout(left, body.next()).await else {
                break;
            };
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find('\n') {
                let field: String = pending.drain(..=end).collect();
                let field = field.trim_end_matches('\n');
                if !field.is_empty() {
                    event.add(field);
                    continue;
                }
                let done = std::mem::take(&mut event);
                match done.kind.as_deref() {
                    None if done.id.is_some() => {
                        let id = done.id.unwrap();
                        let (epoch, seq) = id.split_once('-').expect("EPOCH-SEQ id");
                        let epoch: u64 = epoch.parse().unwrap();
                        if *got.epoch.get_or_insert(epoch) != epoch {
                            got.problems.push(format!("epoch changed: {id}"));
                        }
                        got.push(seq.parse().unwrap(), done.data);
                        last_id = Some(id);
                    }
                    None | Some("file") => {}
                    Some(other) => {
                        got.problems.push(format!("event {other}: {}", done.data));
                        break 'stream;
                    }
                }
            }
        }
    }
    got
}

#[derive(Default)]
struct SseEvent {
    kind: Option<String>,
    id: Option<String>,
    data: String,
}

impl SseEvent {
    fn add(&mut self, field: &str) {
        if let Some(v) = field.strip_prefix("id: ") {
            self.id = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix("event: ") {
            self.kind = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix("data: ") {
            self.data = v.to_owned();
        }
    }
}

/// The next server base URL (`None`: the test is over).
async fn wait_for_server(
    base: &mut watch::Receiver<Option<String>>,
    deadline: Instant,
) -> Option<String> {
    loop {
        if let Some(url) = base.borrow_and_update().clone() {
            return Some(url);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, base.changed())
            .await
            .ok()?
            .ok()?;
    }
}

/// A log under a state directory, and a server on it that can be killed and started again.
struct Durable {
    dir: tempfile::TempDir,
    log: LogFile,
    server: Option<Server>,
    base: watch::Sender<Option<String>>,
    /// `--history-bytes`: also how much is read again after a restart.
    history_bytes: &'static str,
}

impl Durable {
    fn new() -> Durable {
        let dir = temp_dir();
        let log = LogFile::new(&dir, "app.log");
        Durable {
            dir,
            log,
            server: None,
            base: watch::channel(None).0,
            history_bytes: "1GiB",
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--state-dir".into(),
            join(&self.dir, "state").to_string_lossy().into_owned(),
            "--history".into(),
            "2000000".into(),
            "--history-bytes".into(),
            self.history_bytes.into(),
            self.log.path_str(),
        ]
    }

    fn start(&mut self) {
        let server = Server::start(&self.args());
        self.base.send_replace(Some(server.base.clone()));
        self.server = Some(server);
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("a running server")
    }

    /// SIGKILL: no shutdown, no last checkpoint.
    fn kill(&mut self) {
        let mut server = self.server.take().expect("a running server");
        self.base.send_replace(None);
        server.signal("KILL");
        let deadline = Instant::now() + LONG;
        while server.running() {
            assert!(Instant::now() < deadline, "tailcast survived SIGKILL");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A WebSocket and an SSE client, each following until it has `total` lines or
    /// [`CLIENT_TIME`] has passed.
    fn clients(&self, total: u64) -> tokio::task::JoinHandle<(Received, Received)> {
        let (ws, sse) = (self.base.subscribe(), self.base.subscribe());
        let deadline = Instant::now() + CLIENT_TIME;
        tokio::spawn(async move {
            let ws = tokio::spawn(websocket_client(ws, total, deadline));
            let sse = tokio::spawn(sse_client(sse, total, deadline));
            (ws.await.unwrap(), sse.await.unwrap())
        })
    }
}

async fn finish(clients: tokio::task::JoinHandle<(Received, Received)>, total: u64) {
    let (ws, sse) = clients.await.unwrap();
    ws.assert_exact("websocket", total);
    sse.assert_exact("sse", total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_million_line_burst_then_lines_and_a_rotation_while_down_lose_and_repeat_nothing(
) {
    const BURST: u64 = 1_000_000;
    const TOTAL: u64 = BURST + 10_000;
    let mut durable = Durable::new();
    durable.start();
    let clients = durable.clients(TOTAL);
    write_lines(durable.log.path(), 1..=BURST);
    // In the middle of reading the burst (the clients pace it).
    durable
        .server()
        .wait_last_seq("app.log", 300_000, LONG)
        .await;
    durable.kill();
    write_lines(durable.log.path(), BURST + 1..=BURST + 5_000);
    durable.log.rotate_to("app.log.1");
    write_lines(durable.log.path(), BURST + 5_001..=TOTAL);
    durable.start();
    finish(clients, TOTAL).await;
    let info = durable.server().file_info("app.log").await;
    assert_eq!(info["last_seq"], TOTAL, "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_and_restart_cycles_in_a_row_lose_and_repeat_nothing() {
    const CYCLES: u64 = 20;
    const PER_CYCLE: u64 = 10_000;
    const WHILE_DOWN: u64 = 1_000;
    const TOTAL: u64 = CYCLES * (PER_CYCLE + WHILE_DOWN);
    let mut durable = Durable::new();
    durable.start();
    let clients = durable.clients(TOTAL);
    let mut written = 0;
    for _ in 0..CYCLES {
        write_lines(durable.log.path(), written + 1..=written + PER_CYCLE);
        durable
            .server()
            .wait_last_seq("app.log", written + PER_CYCLE / 3, LONG)
            .await;
        written += PER_CYCLE;
        durable.kill();
        // (No rotation here: a client more than one generation behind when tailcast crashes is
        // told of a gap for the older one, see the README; the test above rotates once.)
        write_lines(durable.log.path(), written + 1..=written + WHILE_DOWN);
        written += WHILE_DOWN;
        durable.start();
    }
    finish(clients, TOTAL).await;
}

/// Starts the server, writes lines `from..=to`, waits for them, stops it (SIGTERM) and returns
/// its epoch.
async fn run_once(durable: &mut Durable, from: u64, to: u64) -> u64 {
    durable.start();
    write_lines(durable.log.path(), from..=to);
    durable.server().wait_last_seq("app.log", to, LONG).await;
    let epoch = durable
        .server()
        .get_json("/poll?file=app.log&backlog=0")
        .await["epoch"]
        .as_u64()
        .expect("epoch");
    let mut server = durable.server.take().unwrap();
    server.terminate(LONG);
    epoch
}

#[tokio::test]
async fn an_unusable_state_file_is_one_warning_a_fresh_epoch_and_a_reset() {
    let mut durable = Durable::new();
    let state = join(&durable.dir, "state");
    let state_file = state.join("checkpoints.json");
    let first = run_once(&mut durable, 1, 10).await;
    // A clean restart keeps the epoch and the numbering.
    assert_eq!(
        run_once(&mut durable, 11, 15).await,
        first,
        "the epoch is kept"
    );
    let mut lines_in_file = 15;
    let mut epoch = first;
    let good = std::fs::read(&state_file).unwrap();
    let corruptions: [(&str, Vec<u8>); 3] = [
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("garbage", b"\x00\x17garbage{{{".to_vec()),
        (
            "another version",
            String::from_utf8(good.clone())
                .unwrap()
                .replace("\"version\":1", "\"version\":7")
                .into_bytes(),
        ),
    ];
    for (what, bytes) in corruptions {
        std::fs::write(&state_file, &bytes).unwrap();
        durable.start();
        let log = durable
            .server
            .as_mut()
            .unwrap()
            .wait_log("not used", 1, LONG);
        assert!(log.contains("fresh numbering"), "{what}: {log}");
        assert_eq!(log.matches("not used").count(), 1, "{what}: one warning");
        // A fresh numbering reads the file as a first start does (its last history bytes: all of
        // it here), so the old cursor names a line that exists: only the epoch tells.
        let answer = durable
            .server()
            .get_json(&format!(
                "/poll?file=app.log&after={epoch}-{lines_in_file}&timeout=0"
            ))
            .await;
        assert_ne!(answer["epoch"], epoch, "{what}: a fresh epoch");
        assert_eq!(answer["reset"], true, "{what}: {answer}");
        assert_eq!(answer["reset_reason"], "epoch", "{what}: {answer}");
        assert_eq!(
            std::fs::read(state.join("checkpoints.json.bad")).unwrap(),
            bytes,
            "{what}: the unusable file is kept aside"
        );
        epoch = answer["epoch"].as_u64().unwrap();
        // It serves, and saves the new numbering.
        lines_in_file += 1;
        write_lines(durable.log.path(), lines_in_file..=lines_in_file);
        durable
            .server()
            .wait_last_seq("app.log", lines_in_file, LONG)
            .await;
        let mut server = durable.server.take().unwrap();
        server.terminate(LONG);
        let saved: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
        assert_eq!(saved["epoch"], epoch, "{what}: the new epoch is saved");
        assert_eq!(saved["files"][0]["last_seq"], lines_in_file, "{what}");
    }
}

#[tokio::test]
async fn a_state_directory_serves_one_server_at_a_time() {
    let mut durable = Durable::new();
    durable.start();
    let mut args = durable.args();
    args.extend(["--bind".to_owned(), "127.0.0.1:0".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = run_to_exit(&args, &[]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("in use by another tailcast") && stderr.contains("--state-dir"),
        "{stderr}"
    );
}

/// Polls the state file until it says `app.log` was numbered up to `seq`.
async fn wait_checkpoint(durable: &Durable, seq: u64) {
    let state_file = join(&durable.dir, "state").join("checkpoints.json");
    let saved = wait_for(LONG, || {
        let state_file = state_file.clone();
        async move {
            let text = std::fs::read(&state_file).ok()?;
            let saved: Value = serde_json::from_slice(&text).ok()?;
            (saved["files"][0]["last_seq"].as_u64()? >= seq).then_some(())
        }
    })
    .await;
    assert!(
        saved.is_some(),
        "no checkpoint up to seq {seq} within {LONG:?}"
    );
}

#[tokio::test]
async fn a_file_longer_than_the_history_resumes_with_its_own_numbers() {
    // The history holds the last ~256 KiB: after the restart only that much is read again, and
    // numbering goes on from the checkpoint, not from 1.
    let mut durable = Durable::new();
    durable.history_bytes = "256KiB";
    durable.start();
    write_lines(durable.log.path(), 1..=50_000);
    durable
        .server()
        .wait_last_seq("app.log", 50_000, LONG)
        .await;
    let epoch = durable
        .server()
        .get_json("/poll?file=app.log&backlog=0")
        .await["epoch"]
        .as_u64()
        .unwrap();
    wait_checkpoint(&durable, 50_000).await;
    durable.kill();
    write_lines(durable.log.path(), 50_001..=50_010);
    durable.start();
    let server = durable.server();
    let answer = server
        .get_json(&format!("/poll?file=app.log&after={epoch}-49995&timeout=5"))
        .await;
    assert_eq!(answer["epoch"], epoch, "{answer}");
    assert!(
        answer["reset"].is_null() || answer["reset"] == false,
        "{answer}"
    );
    assert_eq!(answer["gap"], Value::Null, "{answer}");
    assert_eq!(answer["first_seq"], 49_996, "{answer}");
    // The rest, in as many polls as it takes, each following the last.
    let mut follower = PollFollower::new(server, "app.log", 49_995);
    follower.until_count(15, LONG).await;
    assert_eq!(
        follower.lines,
        (49_996..=50_010).map(line).collect::<Vec<_>>()
    );
    assert!(follower.gaps.is_empty(), "{:?}", follower.gaps);
    // What the history holds starts mid-file, with the numbers those lines had.
    let backlog = server.get_json("/poll?file=app.log&backlog=100000").await;
    let first = backlog["first_seq"].as_u64().unwrap();
    assert!(first > 1, "only the history's worth is read again: {first}");
    assert_eq!(backlog["lines"][0], line(first), "{}", backlog["lines"][0]);
}

#[tokio::test]
async fn a_stream_numbers_on_after_a_restart_so_an_old_cursor_never_names_a_new_line() {
    // Standard input cannot be read again; what is kept is its numbering.
    let dir = temp_dir();
    let state = join(&dir, "state").to_string_lossy().into_owned();
    let run = |lines: std::ops::Range<usize>| {
        let mut server = TestServer::new()
            .stdin_piped()
            .args(&["--state-dir", &state, "-"])
            .start();
        let mut stdin = server.child.stdin.take().expect("stdin piped");
        let text: String = numbered("in", lines)
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        stdin.write_all(text.as_bytes()).unwrap();
        drop(stdin);
        server
    };
    let mut first = run(0..5);
    first.wait_last_seq("stdin", 5, LONG).await;
    let epoch = first.get_json("/poll?file=stdin&backlog=0").await["epoch"].clone();
    first.terminate(LONG);
    let second = run(5..8);
    second.wait_last_seq("stdin", 8, LONG).await;
    let answer = second
        .get_json(&format!("/poll?file=stdin&after={epoch}-5&timeout=5"))
        .await;
    assert_eq!(answer["epoch"], epoch, "{answer}");
    assert_eq!(answer["first_seq"], 6, "{answer}");
    assert_eq!(
        answer["lines"],
        serde_json::json!(numbered("in", 5..8)),
        "{answer}"
    );
    // A cursor inside the first run's lines: they are gone, and that is said.
    let answer = second
        .get_json(&format!("/poll?file=stdin&after={epoch}-2&timeout=5"))
        .await;
    assert_eq!(
        answer["gap"],
        serde_json::json!({"from": 3, "to": 5}),
        "{answer}"
    );
}

#[tokio::test]
async fn a_restart_after_lines_of_a_rotated_file_repeats_none_of_the_new_file() {
    // The application still writes to the rotated file after the new one has lines: those come
    // last, and the restart must neither read the new file again nor reuse their seqs.
    let mut durable = Durable::new();
    durable.start();
    durable.log.append_numbered("old", 0..10);
    durable.server().wait_last_seq("app.log", 10, LONG).await;
    let rotated = durable.log.rotate_to("app.log.1");
    durable.log.append_numbered("new", 0..5);
    durable.server().wait_last_seq("app.log", 15, LONG).await;
    append_numbered(&rotated, "late", 0..3);
    durable.server().wait_last_seq("app.log", 18, LONG).await;
    let epoch = durable
        .server()
        .get_json("/poll?file=app.log&backlog=0")
        .await["epoch"]
        .clone();
    durable.server.take().unwrap().terminate(LONG);
    durable.start();
    durable.log.append_numbered("new", 5..7);
    durable.server().wait_last_seq("app.log", 20, LONG).await;
    let answer = durable
        .server()
        .get_json(&format!("/poll?file=app.log&after={epoch}-18&timeout=5"))
        .await;
    assert_eq!(answer["epoch"], epoch, "{answer}");
    assert_eq!(answer["first_seq"], 19, "{answer}");
    assert_eq!(
        answer["lines"],
        serde_json::json!(numbered("new", 5..7)),
        "{answer}"
    );
    let info = durable.server().file_info("app.log").await;
    assert_eq!(info["last_seq"], 20, "nothing read twice: {info}");
}

#[tokio::test]
async fn an_id_that_names_another_file_after_a_restart_starts_a_fresh_numbering() {
    let dir = temp_dir();
    let state = join(&dir, "state").to_string_lossy().into_owned();
    for sub in ["nginx", "apache"] {
        std::fs::create_dir(join(&dir, sub)).unwrap();
        append_numbered(&join(&dir, &format!("{sub}/access.log")), sub, 0..5);
    }
    let start = |sub: &str| {
        let log = join(&dir, &format!("{sub}/access.log"))
            .to_string_lossy()
            .into_owned();
        TestServer::new()
            .args(&["--state-dir", &state, &log])
            .start()
    };
    let mut first = start("nginx");
    first.wait_last_seq("access.log", 5, LONG).await;
    let epoch = first.get_json("/poll?file=access.log&backlog=0").await["epoch"].clone();
    first.terminate(LONG);
    // The same id, `access.log`, now names another file: old cursors must not resume in it.
    let mut second = start("apache");
    second.wait_log("starting a fresh numbering", 1, LONG);
    let answer = second
        .get_json(&format!("/poll?file=access.log&after={epoch}-3&timeout=0"))
        .await;
    assert_ne!(answer["epoch"], epoch, "{answer}");
    assert_eq!(answer["reset"], true, "{answer}");
}
