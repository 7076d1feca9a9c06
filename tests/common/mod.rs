//! Shared helpers for the integration tests: the real `tailcast` binary on port 0, a long-poll
//! follower, a WebSocket client, and waits that take a deadline instead of sleeping and hoping.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tailcast")
}

/// A running `tailcast` process, killed on drop. What it prints is kept: stdout
/// ([`Server::stdout_text`]) and its log on stderr ([`Server::stderr_text`],
/// [`Server::wait_log`]); warnings and errors are shown as they come, and the end of the log is
/// shown when a test fails while the server runs.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (`https://` when started with a TLS certificate)
    pub base: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    stdout: Sink,
    stderr: Sink,
    /// The threads that read stdout and stderr; they end when the process does.
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// The text a reader thread collects from one pipe.
type Sink = Arc<Mutex<String>>;

fn push_line(sink: &Sink, line: &str) {
    let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
    text.push_str(line);
    text.push('\n');
}

fn sink_text(sink: &Sink) -> String {
    sink.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

impl Server {
    /// Starts `tailcast --bind 127.0.0.1:0 ARGS...` and waits for its listening line (`http://` or
    /// `https://`). [`TestServer`] takes more: environment, a command prefix, another address.
    pub fn start<S: AsRef<str>>(args: &[S]) -> Server {
        TestServer::new().args(args).start()
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// `ws://` (`wss://` on a TLS server) for this path.
    pub fn ws_url(&self, path_and_query: &str) -> String {
        let scheme = if self.base.starts_with("https:") {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}{}", self.addr, path_and_query)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (with a deadline) for the exit; returns how long it took.
    pub fn terminate(&mut self, within: Duration) -> Duration {
        let started = Instant::now();
        self.signal("TERM");
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "tailcast did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, the exit (within `within`), then everything the process printed: its stdout,
    /// then its stderr, both read to the end.
    pub fn stop(&mut self, within: Duration) -> String {
        self.terminate(within);
        let deadline = Instant::now() + Duration::from_secs(10);
        for reader in self.readers.drain(..) {
            while !reader.is_finished() {
                assert!(
                    Instant::now() < deadline,
                    "tailcast exited but its output pipes stayed open for 10 s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = reader.join();
        }
        format!("{}{}", self.stdout_text(), self.stderr_text())
    }

    /// Waits until the log (stderr) holds `needle` `times` times; returns the log. Fails at once
    /// if the server exits meanwhile.
    pub fn wait_log(&mut self, needle: &str, times: usize, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.stderr_text();
            if log.matches(needle).count() >= times {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tailcast exited ({status}) while the test waited for {needle:?}; the log:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged {times} time(s) within {within:?}; the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal (`HUP`, `TERM`, ...) with `kill`.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{name} {}", self.child.id());
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.try_rss_kib().expect("the server's /proc/PID/status")
    }

    /// Resident memory in KiB, or `None` once the process is gone.
    pub fn try_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// Open descriptors of the server process (`/proc/PID/fd`), or `None` once it is gone.
    pub fn fd_count(&self) -> Option<usize> {
        fd_count(self.pid())
    }

    /// CPU time used by the server so far (utime + stime), in clock ticks (1/100 s on Linux).
    pub fn cpu_ticks(&self) -> Option<u64> {
        cpu_ticks(self.pid())
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What the server printed on stdout so far (the listening line, then the followed files).
    pub fn stdout_text(&self) -> String {
        sink_text(&self.stdout)
    }

    /// What the server logged on stderr so far.
    pub fn stderr_text(&self) -> String {
        sink_text(&self.stderr)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = http_client()
            .get(self.url(path))
            .send()
            .await
            .expect("GET (a hung server times out after 2 minutes)");
        response.json().await.expect("JSON body")
    }

    pub async fn stats(&self) -> Value {
        self.get_json("/api/stats").await
    }

    /// The file entry with this id in `/api/files`.
    pub async fn file_info(&self, id: &str) -> Value {
        file_entry(&self.get_json("/api/files").await, id)
    }

    /// Waits until the file's `last_seq` reaches `seq`.
    pub async fn wait_last_seq(&self, id: &str, seq: u64, within: Duration) {
        let info = wait_for(within, || async {
            let info = self.file_info(id).await;
            (info["last_seq"].as_u64() >= Some(seq)).then_some(info)
        })
        .await;
        assert!(
            info.is_some(),
            "file {id} did not reach seq {seq} within {within:?}: {}; stats {}",
            self.file_info(id).await,
            self.stats().await
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            const SHOWN: usize = 60;
            let log = self.stderr_text();
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(SHOWN);
            eprintln!(
                "--- the last {} of {} lines tailcast (pid {}) logged ---\n{}",
                lines.len() - from,
                lines.len(),
                self.child.id(),
                lines[from..].join("\n")
            );
        }
    }
}

/// Starts `tailcast` with more than arguments: extra environment, a command prefix, another
/// address. A prefix such as `sh -c 'ulimit -v 2000000 && ulimit -n 512 && exec "$@"' sh` runs
/// it under limits (one resource per `ulimit`: dash takes only one), and `setpriv --reuid=65534
/// ...` as another user; the prefix must `exec` tailcast, so that the [`Server`]'s pid is
/// tailcast's. The `TAILCAST_*` variables of the environment the tests run in are not passed
/// on: a server sees only those set here.
///
/// ```ignore
/// let server = TestServer::new()
///     .args(&["--send-timeout", "1s", "app.log"])
///     .env("TAILCAST_TOKEN", "s3cret")
///     .prefix(&["sh", "-c", "ulimit -n 512 && exec \"$@\"", "sh"])
///     .start();
/// ```
#[derive(Debug, Clone)]
pub struct TestServer {
    bind: Option<String>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    prefix: Vec<String>,
    /// Give the server a pipe as standard input (`server.child.stdin`), for `tailcast -`.
    pipe_stdin: bool,
}

impl Default for TestServer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestServer {
    pub fn new() -> TestServer {
        TestServer {
            bind: Some("127.0.0.1:0".into()),
            args: Vec::new(),
            envs: vec![("RUST_LOG".into(), "tailcast=debug,warn".into())],
            prefix: Vec::new(),
            pipe_stdin: false,
        }
    }

    /// Standard input is a pipe the test writes into: `server.child.stdin.take()`; dropping it
    /// ends the input. Without this, stdin is inherited.
    pub fn stdin_piped(mut self) -> TestServer {
        self.pipe_stdin = true;
        self
    }

    /// The listening address (default `127.0.0.1:0`).
    pub fn bind(mut self, addr: &str) -> TestServer {
        self.bind = Some(addr.into());
        self
    }

    /// Passes no `--bind`: the address comes from `TAILCAST_BIND` (see [`TestServer::env`]) or
    /// is the default one.
    pub fn no_bind(mut self) -> TestServer {
        self.bind = None;
        self
    }

    /// Appends arguments (options and PATHs).
    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> TestServer {
        self.args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable (`RUST_LOG` is `tailcast=debug,warn` unless set here).
    pub fn env(mut self, key: &str, value: &str) -> TestServer {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Runs the binary through this command prefix; the binary and its arguments follow it.
    pub fn prefix<S: AsRef<str>>(mut self, prefix: &[S]) -> TestServer {
        self.prefix = prefix.iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// Starts it and waits (30 s at most) for the listening line.
    pub fn start(self) -> Server {
        let mut cmd = match self.prefix.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(bin());
                cmd
            }
            None => Command::new(bin()),
        };
        if let Some(bind) = &self.bind {
            cmd.arg("--bind").arg(bind);
        }
        without_tailcast_env(&mut cmd);
        cmd.args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.pipe_stdin {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
        let stdout = Sink::default();
        let stderr = Sink::default();
        let (tx, rx) = mpsc::channel();
        let text = stdout.clone();
        let out_reader = read_lines(child.stdout.take().expect("stdout"), move |line| {
            push_line(&text, &line);
            // Read to the end even once nobody waits for lines: a closed pipe would fail
            // tailcast's next print.
            let _ = tx.send(line);
        });
        let text = stderr.clone();
        let err_reader = read_lines(child.stderr.take().expect("stderr"), move |line| {
            if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("[tailcast] {line}");
            }
            push_line(&text, &line);
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let listening = line.split("listening on ").nth(1);
                    if let Some((scheme, rest)) = listening.and_then(|l| l.split_once("://")) {
                        let addr = rest.split('/').next().unwrap();
                        break format!("{scheme}://{addr}");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait");
                    let _ = err_reader.join();
                    panic!(
                        "tailcast exited ({status}) before listening; stderr:\n{}",
                        sink_text(&stderr)
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "tailcast did not print its listening line within 30 s; stderr:\n{}",
                        sink_text(&stderr)
                    );
                }
            }
        };
        Server {
            child,
            addr: base.split_once("://").unwrap().1.to_owned(),
            base,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }
}

/// Leaves out the `TAILCAST_*` variables of the tests' own environment (a developer's
/// `TAILCAST_TOKEN` would change every answer).
fn without_tailcast_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TAILCAST_") {
            cmd.env_remove(key);
        }
    }
}

/// Reads `pipe` line by line on a thread until it closes, handing each line to `each`.
pub fn read_lines<R: Read + Send + 'static>(
    pipe: R,
    mut each: impl FnMut(String) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            each(line);
        }
    })
}

/// The lines a child process prints on stdout (piped), each with the instant it was read.
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    read_lines(child.stdout.take().expect("stdout piped"), move |line| {
        let _ = tx.send((Instant::now(), line));
    });
    rx
}

/// A `kB` field of `/proc/PID/status` (e.g. `VmRSS:`), or `None` once the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

/// Open descriptors of a process, or `None` once it is gone.
pub fn fd_count(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// utime + stime of a process in clock ticks, from `/proc/PID/stat`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is rest[0]; utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Runs tailcast with `args` and extra environment `envs` to completion; returns (exit code,
/// stdout, stderr). A run that does not end within 20 s is killed and fails.
pub fn run_to_exit(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bin());
    without_tailcast_env(&mut cmd);
    let mut child = cmd
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tailcast");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("tailcast {args:?} was expected to exit but still ran after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Polls `check` every 20 ms until it returns `Some` or `within` passes.
pub async fn wait_for<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens `path` for appending (creating it), as an application opens its log.
pub fn open_append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Appends raw bytes to a file (creating it).
pub fn append(path: &Path, bytes: &[u8]) {
    let mut f = open_append(path);
    f.write_all(bytes).unwrap();
}

/// Appends lines `prefix-N` for N in range, one write per call.
pub fn append_numbered(path: &Path, prefix: &str, range: std::ops::Range<usize>) {
    let mut text = String::new();
    for i in range {
        text.push_str(&format!("{prefix}-{i}\n"));
    }
    append(path, text.as_bytes());
}

/// A followed log file in a test's temp dir, and what an application and logrotate do to it.
///
/// ```ignore
/// let dir = temp_dir();
/// let log = LogFile::new(&dir, "app.log");
/// log.append_numbered("old", 0..3);
/// let server = Server::start(&[log.path_str()]);
/// log.rotate_to("app.log.1");
/// log.append_line("new-0");
/// ```
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
}

impl LogFile {
    /// Creates `dir/name`, empty.
    pub fn new(dir: &tempfile::TempDir, name: &str) -> LogFile {
        let log = LogFile::absent(dir, name);
        std::fs::write(&log.path, "").unwrap();
        log
    }

    /// `dir/name`, not created: a path tailcast follows before it exists.
    pub fn absent(dir: &tempfile::TempDir, name: &str) -> LogFile {
        LogFile {
            path: dir.path().join(name),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a command-line argument.
    pub fn path_str(&self) -> String {
        path_str(&self.path)
    }

    /// Appends raw bytes in one write (creating the file).
    pub fn append(&self, bytes: &[u8]) {
        append(&self.path, bytes);
    }

    /// Appends `line` and a newline in one write.
    pub fn append_line(&self, line: &str) {
        append(&self.path, format!("{line}\n").as_bytes());
    }

    /// Appends `prefix-N` for N in `range`, in one write.
    pub fn append_numbered(&self, prefix: &str, range: std::ops::Range<usize>) {
        append_numbered(&self.path, prefix, range);
    }

    /// Renames the file to `name` in the same directory (the path is then free, as after
    /// logrotate's rename); returns the new path.
    pub fn rotate_to(&self, name: &str) -> PathBuf {
        let to = self.path.with_file_name(name);
        std::fs::rename(&self.path, &to).unwrap();
        to
    }

    /// Empties the file in place (same inode), as `truncate -s 0` or logrotate's copytruncate.
    pub fn truncate(&self) {
        truncate_in_place(&self.path);
    }

    /// Deletes the file.
    pub fn remove(&self) {
        std::fs::remove_file(&self.path).unwrap();
    }
}

/// Appends `prefix-N` for N in `range` from a thread, `burst` lines per write with `pause`
/// between writes, like a busy application; join the handle to wait for the last write.
pub fn write_in_bursts(
    path: &Path,
    prefix: &'static str,
    range: std::ops::Range<usize>,
    burst: usize,
    pause: Duration,
) -> std::thread::JoinHandle<()> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut start = range.start;
        while start < range.end {
            let end = (start + burst).min(range.end);
            append_numbered(&path, prefix, start..end);
            start = end;
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
    })
}

pub fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

/// An HTTP client whose requests fail after 2 minutes: a hung server fails the test with a
/// message instead of hanging the suite.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client")
}

/// Follows one file over long-poll, checking that seqs are consecutive.
pub struct PollFollower {
    client: reqwest::Client,
    base: String,
    file: String,
    pub after: u64,
    pub lines: Vec<String>,
    pub gaps: Vec<(u64, u64)>,
    pub truncated: Vec<u64>,
}

impl PollFollower {
    /// Starts following after `after` (0 = from the first line).
    pub fn new(server: &Server, file: &str, after: u64) -> Self {
        PollFollower {
            client: http_client(),
            base: server.base.clone(),
            file: file.to_owned(),
            after,
            lines: Vec::new(),
            gaps: Vec::new(),
            truncated: Vec::new(),
        }
    }

    /// One poll (held up to `timeout_s`); returns the number of new lines.
    pub async fn poll_once(&mut self, timeout_s: f64) -> usize {
        let url = format!(
            "{}/poll?file={}&after={}&timeout={timeout_s}&max=100000",
            self.base, self.file, self.after
        );
        let answer: Value = self
            .client
            .get(&url)
            .send()
            .await
            .expect("poll request")
            .json()
            .await
            .expect("poll JSON");
        if let Some(gap) = answer["gap"].as_object() {
            self.gaps
                .push((gap["from"].as_u64().unwrap(), gap["to"].as_u64().unwrap()));
        }
        let lines = answer["lines"].as_array().expect("lines array");
        if let Some(first) = answer["first_seq"].as_u64() {
            let expected = self
                .gaps
                .last()
                .map(|g| g.1 + 1)
                .filter(|_| answer["gap"].is_object());
            assert_eq!(
                first,
                expected.unwrap_or(self.after + 1),
                "first_seq must follow the cursor: {answer}"
            );
            assert_eq!(
                answer["last_seq"].as_u64().unwrap(),
                first + lines.len() as u64 - 1,
                "last_seq must be first_seq + len - 1"
            );
        }
        for t in answer["truncated"].as_array().into_iter().flatten() {
            self.truncated.push(t.as_u64().unwrap());
        }
        self.after = answer["last_seq"].as_u64().expect("last_seq");
        self.lines
            .extend(lines.iter().map(|l| l.as_str().unwrap().to_owned()));
        lines.len()
    }

    /// Polls until `n` lines in all were received or `within` passes.
    pub async fn until_count(&mut self, n: usize, within: Duration) -> &[String] {
        let deadline = Instant::now() + within;
        while self.lines.len() < n && Instant::now() < deadline {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64();
            self.poll_once(left.min(5.0)).await;
        }
        &self.lines
    }

    /// Polls until a line equal to `line` was received.
    pub async fn until_line(&mut self, line: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.lines.iter().any(|l| l == line) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64();
            self.poll_once(left.min(5.0)).await;
        }
    }
}

/// The entry with this id in an `/api/files` answer.
pub fn file_entry(files: &Value, id: &str) -> Value {
    files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no file {id} in {files}"))
}

/// Asserts two line lists are equal, printing the first difference rather than both lists.
pub fn assert_lines_eq(actual: &[String], expected: &[String]) {
    if actual == expected {
        return;
    }
    let first_diff = actual
        .iter()
        .zip(expected)
        .position(|(a, e)| a != e)
        .unwrap_or(actual.len().min(expected.len()));
    panic!(
        "lines differ: got {} lines, expected {}; first difference at index {}: got {:?}, expected {:?}",
        actual.len(),
        expected.len(),
        first_diff,
        actual.get(first_diff),
        expected.get(first_diff)
    );
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client that records what it received.
pub struct WsClient {
    pub ws: WsStream,
    pub hello: Value,
    /// A pause after each `lines` frame in [`WsClient::collect_lines`]: a client slower than the
    /// server (zero: as fast as it goes).
    pub pause_per_frame: Duration,
    /// Messages received while waiting for a subscription to take effect, handed out first.
    pending: std::collections::VecDeque<Value>,
}

impl WsClient {
    pub async fn connect(server: &Server) -> WsClient {
        Self::connect_url(&server.ws_url("/ws")).await
    }

    pub async fn connect_url(url: &str) -> WsClient {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connect");
        Self::from_stream(ws).await
    }

    /// Connects with a 4 KiB socket receive buffer, so that what the client has not read stays
    /// on the server's side instead of in the kernel (a slow client is then really slow).
    pub async fn connect_small_buffer(server: &Server) -> WsClient {
        let addr: std::net::SocketAddr = server.addr.parse().expect("server address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let tcp = socket.connect(addr).await.expect("tcp connect");
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
        let (ws, _) = tokio_tungstenite::client_async(server.ws_url("/ws"), stream)
            .await
            .expect("websocket handshake");
        Self::from_stream(ws).await
    }

    /// Wraps an open WebSocket (e.g. a wss:// one with its own TLS settings) and reads `hello`.
    pub async fn from_stream(ws: WsStream) -> WsClient {
        // Small messages one after another (a subscribe, then the ping that confirms it): no
        // Nagle wait on the client's side either.
        if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            let _ = tcp.set_nodelay(true);
        }
        let mut client = WsClient {
            ws,
            hello: Value::Null,
            pause_per_frame: Duration::ZERO,
            pending: std::collections::VecDeque::new(),
        };
        let hello = client
            .next_json(Duration::from_secs(10))
            .await
            .expect("hello");
        assert_eq!(hello["type"], "hello", "first message must be hello");
        client.hello = hello;
        client
    }

    pub async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("send");
    }

    /// Subscribes, and returns once the server has taken the subscription: what happens to the
    /// file from then on is this client's to hear of.
    pub async fn subscribe_backlog(&mut self, file: &str, backlog: u64) {
        self.send(json!({"type":"subscribe","file":file,"backlog":backlog}))
            .await;
        self.barrier().await;
    }

    /// Like [`WsClient::subscribe_backlog`], resuming after a seq.
    pub async fn subscribe_after(&mut self, file: &str, after: u64) {
        self.send(json!({"type":"subscribe","file":file,"after":after}))
            .await;
        self.barrier().await;
    }

    /// A session handles a client's messages in order: once the answer to a ping comes back,
    /// everything sent before it was handled. What arrives meanwhile is kept for `next_json`.
    async fn barrier(&mut self) {
        self.send(json!({"type":"ping"})).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(msg) = self.read_json(left).await else {
                return; // closed: the next read says so
            };
            if msg["type"] == "pong" {
                return;
            }
            self.pending.push_back(msg);
        }
    }

    /// The next JSON text message (answering protocol pings automatically), or None on close or
    /// deadline.
    pub async fn next_json(&mut self, within: Duration) -> Option<Value> {
        if let Some(msg) = self.pending.pop_front() {
            return Some(msg);
        }
        self.read_json(within).await
    }

    /// The next JSON text message from the socket itself.
    async fn read_json(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match msg.ok()? {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("JSON")),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Waits for the server's close frame and returns its code.
    pub async fn expect_close(&mut self, within: Duration) -> CloseCode {
        loop {
            match tokio::time::timeout(within, self.ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(frame))) => return frame.expect("close frame").code,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// The next message that is not a ping.
    pub async fn next_non_ping(&mut self, within: Duration) -> Option<Value> {
        // One deadline for the whole wait: pings must not extend it.
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.next_json(left).await?;
            if v["type"] != "ping" {
                return Some(v);
            }
        }
    }

    /// Collects lines of `file` until `n` were received, checking seq continuity; returns
    /// (lines, frames, other messages).
    pub async fn collect_lines(
        &mut self,
        file: &str,
        n: usize,
        within: Duration,
        lines: &mut Vec<(u64, String)>,
    ) -> (usize, Vec<Value>) {
        let deadline = Instant::now() + within;
        let mut frames = 0;
        let mut others = Vec::new();
        while lines.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {n} lines of {file} within {within:?}",
                lines.len()
            );
            let Some(msg) = self.next_json(left).await else {
                panic!(
                    "connection closed or timed out after {} of {n} lines; others: {others:?}",
                    lines.len()
                );
            };
            if msg["type"] == "lines" && msg["file"] == file {
                frames += 1;
                if !self.pause_per_frame.is_zero() {
                    tokio::time::sleep(self.pause_per_frame).await;
                }
                let seq = msg["seq"].as_u64().unwrap();
                if let Some((last, _)) = lines.last() {
                    assert_eq!(seq, last + 1, "lines frame must follow the previous seq");
                }
                for (i, l) in msg["lines"].as_array().unwrap().iter().enumerate() {
                    lines.push((seq + i as u64, l.as_str().unwrap().to_owned()));
                }
            } else if msg["type"] != "ping" {
                others.push(msg);
            }
        }
        (frames, others)
    }
}

/// Opens a WebSocket with extra request headers; a refused upgrade gives its status and
/// `Retry-After`.
pub async fn ws_upgrade(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<WsStream, (u16, Option<String>)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderName;
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err((
            response.status().as_u16(),
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
        )),
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The HTTP status of a WebSocket upgrade: 101 when it was accepted.
pub async fn upgrade_status(url: &str, headers: &[(&str, &str)]) -> u16 {
    match ws_upgrade(url, headers).await {
        Ok(_) => 101,
        Err((status, _)) => status,
    }
}

/// The events of an SSE stream's text.
pub async fn sse_events(text: &str) -> Vec<eventsource_stream::Event> {
    use eventsource_stream::Eventsource as _;
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(text.as_bytes().to_vec())]);
    chunks
        .eventsource()
        .filter_map(|e| async move { e.ok() })
        .collect()
        .await
}

/// Waits until `n` polls are held by the server (so that what is appended next is theirs).
pub async fn wait_polls_held(server: &Server, n: u64, within: Duration) {
    wait_for(within, || async {
        (server.stats().await["polls_waiting"] == n).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{n} polls not held within {within:?}"));
}

/// Reads a streaming response (`/sse`, `/follow`) until its text holds `needle`, failing the
/// test if it does not within `within`; returns the text read.
pub async fn stream_until(
    within: Duration,
    url: &str,
    headers: &[(&str, &str)],
    needle: &str,
) -> String {
    let mut request = http_client().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("stream request");
    assert_eq!(response.status(), 200, "{url}");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let read = async {
        while !text.contains(needle) {
            let chunk = body.next().await.expect("stream open").expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    if tokio::time::timeout(within, read).await.is_err() {
        panic!("no {needle:?} within {within:?} from {url}; got {text:?}");
    }
    text
}

/// A temp dir that is removed at the end of the test.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tailcast-test-")
        .tempdir()
        .unwrap()
}

/// A directory for a test's big files: in memory (`/dev/shm`) where it has room, so big files
/// cost no disk (a CI machine's disk can be nearly full with the build), otherwise in the system
/// temp dir. The room a test may use (`most_mib`) is reserved among the tests of this binary
/// running at once, so that each does not count on room another is about to fill. Fails the test,
/// saying how much room each place has, when neither has enough.
pub fn big_temp_dir(most_mib: u64) -> BigDir {
    // A test that failed while holding the lock left the list as it was: still right.
    let mut reserved = BIG_RESERVED.lock().unwrap_or_else(|e| e.into_inner());
    let shm = PathBuf::from("/dev/shm");
    let tmp = std::env::temp_dir();
    let room = |place: &Path, reserved: &[(PathBuf, u64)]| {
        let taken: u64 = reserved
            .iter()
            .filter(|(p, _)| p == place)
            .map(|(_, mib)| mib)
            .sum();
        free_mib(place).map(|free| free.saturating_sub(taken))
    };
    let fits = |free: Option<u64>| free.is_some_and(|free| free >= most_mib + ROOM_MARGIN_MIB);
    let place = if fits(room(&shm, &reserved)) {
        shm
    } else if fits(room(&tmp, &reserved)) {
        tmp
    } else {
        panic!(
            "this test may write {most_mib} MiB of files; beside what the tests running with it \
             reserved, /dev/shm has {} MiB and {} has {} MiB, and it needs {} MiB in one of \
             them: free some disk or mount a bigger tmpfs on /dev/shm",
            room(&shm, &reserved).map_or("unknown".to_owned(), |m| m.to_string()),
            tmp.display(),
            room(&tmp, &reserved).map_or("unknown".to_owned(), |m| m.to_string()),
            most_mib + ROOM_MARGIN_MIB
        );
    };
    reserved.push((place.clone(), most_mib));
    let dir = tempfile::Builder::new()
        .prefix("tailcast-test-")
        .tempdir_in(&place)
        .unwrap();
    BigDir {
        dir,
        place,
        reserved_mib: most_mib,
    }
}

/// Room reserved by the [`BigDir`]s alive in this test binary: (place, MiB).
static BIG_RESERVED: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());

/// A temp dir from [`big_temp_dir`]: removed, and its reservation given back, when dropped.
pub struct BigDir {
    dir: tempfile::TempDir,
    place: PathBuf,
    reserved_mib: u64,
}

impl BigDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for BigDir {
    fn drop(&mut self) {
        let mut reserved = BIG_RESERVED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = reserved
            .iter()
            .position(|(p, mib)| *p == self.place && *mib == self.reserved_mib)
        {
            reserved.swap_remove(i);
        }
    }
}

/// Room kept free beside a test's big files, for everything else the machine writes meanwhile.
const ROOM_MARGIN_MIB: u64 = 256;

/// Fails the test with what to do when `dir` has no room for `mib` MiB more.
pub fn ensure_room(dir: &Path, mib: u64) {
    let free = free_mib(dir);
    assert!(
        free.is_some_and(|free| free >= mib + ROOM_MARGIN_MIB),
        "this test writes {mib} MiB to {}, which has {} MiB free (and /dev/shm {} MiB); it needs \
         {} MiB: free some disk or mount a bigger tmpfs on /dev/shm",
        dir.display(),
        free.map_or("unknown".to_owned(), |f| f.to_string()),
        free_mib(Path::new("/dev/shm")).map_or("unknown".to_owned(), |f| f.to_string()),
        mib + ROOM_MARGIN_MIB,
    );
}

/// MiB free to an unprivileged writer on the file system that holds `dir`.
fn free_mib(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` is written by a successful call.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    let free = (stat.f_bavail as u64 * stat.f_frsize as u64) >> 20;
    // A tmpfs is memory: it may say it has more room than the memory left.
    if dir.starts_with("/dev/shm") {
        return Some(free.min(mem_available_mib()?.saturating_sub(1024)));
    }
    Some(free)
}

/// `MemAvailable` of /proc/meminfo, in MiB.
fn mem_available_mib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib >> 10)
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

pub fn join(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Runs the real `logrotate -f` with configuration `conf` and state file `state`; fails the
/// test with what to install when logrotate is missing.
pub fn run_logrotate(conf: &Path, state: &Path) {
    let output = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(state)
        .arg(conf)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run logrotate ({e}): install it (Debian: apt-get install logrotate)")
        });
    assert!(
        output.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The body of `GET path` as text.
pub async fn get_text(server: &Server, path: &str) -> String {
    http_client()
        .get(server.url(path))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body")
}

/// The shell snippet between `<!-- NAME -->` and `<!-- /NAME -->` in the README.
pub fn readme_snippet(name: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find(&format!("<!-- {name} -->"))
        .unwrap_or_else(|| panic!("README has no <!-- {name} --> snippet"));
    let end = readme[start..]
        .find(&format!("<!-- /{name} -->"))
        .expect("snippet end")
        + start;
    let block = &readme[start..end];
    let code_start = block.find("```sh\n").expect("```sh block") + 6;
    let code_end = block[code_start..].find("```").expect("block end") + code_start;
    block[code_start..code_end].to_owned()
}

/// A real `redis-server` of the test's own, on a Unix socket in a temp dir (no TCP port to
/// race for), with no persistence: killed on drop. [`RedisServer::restart`] starts it again,
/// empty, on the same socket (as a Redis without persistence comes back).
pub struct RedisServer {
    pub dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(dir: &tempfile::TempDir) -> RedisServer {
        let dir = dir.path().join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = RedisServer { dir, child: None };
        redis.launch();
        redis
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// The URL nodes are given: `redis+unix:///...`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): install it (Debian: apt-get install \
                     redis-server; scripts/test-all.sh does)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (SIGKILL): what it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// What `redis-cli` prints for a command (empty when it cannot connect).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(self.socket())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): install redis-tools"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How many clients are connected.
    pub fn clients(&self) -> usize {
        self.cli(&["CLIENT", "LIST"]).lines().count()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Empties the file at `path` in place (same inode), as `truncate -s 0` or logrotate's
/// copytruncate once it has copied the file.
pub fn truncate_in_place(path: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}
