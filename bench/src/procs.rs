//! Processes the harness starts (servers, clients), their measurement from /proc, and the
//! workload writer. Every process is killed by its own pid (and the descendants recorded for it
//! at start), never by name.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{format_line, now_ns, ClientReport};

// ---------------------------------------------------------------------------------------------
// /proc

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// `pid` and every descendant alive now.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    if let Some(pp) = f.get(1).and_then(|s| s.parse::<u32>().ok()) {
                        parent.push((p, pp));
                    }
                }
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(parent.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// User+system CPU seconds of these processes: the scheduler's own count in nanoseconds
/// (`/proc/PID/task/TID/schedstat`, summed over the threads alive now), so that short runs are
/// not rounded to the 10 ms of a clock tick; the tick count of `/proc/PID/stat` for a process
/// whose threads cannot be read. A thread that ends between two readings takes its time with
/// it: the servers measured keep their threads for the whole run.
pub fn cpu_s(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|&p| schedstat_s(p).unwrap_or_else(|| ticks_s(p)))
        .sum()
}

fn schedstat_s(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(run) = stat
            .split_whitespace()
            .next()
            .and_then(|s| s.parse::<u64>().ok())
        {
            ns += run;
            threads += 1;
        }
    }
    (threads > 0).then(|| ns as f64 / 1e9)
}

fn ticks_s(pid: u32) -> f64 {
    let mut ticks = 0u64;
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields 14 and 15 of stat; `rest` starts at field 3.
            ticks += f.get(11).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            ticks += f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    ticks as f64 / clk_tck()
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Sum of VmRSS (KiB).
pub fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|p| status_kib(*p, "VmRSS:")).sum()
}

/// Sum of VmHWM (KiB): an upper bound of the tree's peak.
pub fn hwm_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|p| status_kib(*p, "VmHWM:")).sum()
}

/// Samples the summed RSS every 20 ms and keeps the peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pids: Vec<u32>) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(&pids)));
        let (s, p) = (stop.clone(), peak.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Relaxed) {
                p.fetch_max(rss_kib(&pids), Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler {
            stop,
            peak,
            handle: Some(handle),
        }
    }
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak.load(Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Pids of the processes alive that the harness started, so that SIGINT/SIGTERM to the harness
/// alone still stops them (the handler only does async-signal-safe loads, kill and _exit).
static LIVE: [AtomicU32; 256] = [const { AtomicU32::new(0) }; 256];

fn register(pid: u32) {
    for slot in &LIVE {
        if slot
            .compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

fn unregister(pid: u32) {
    for slot in &LIVE {
        let _ = slot.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &LIVE {
        let pid = slot.load(Ordering::SeqCst);
        if pid != 0 {
            // SAFETY: kill is async-signal-safe; the pid is a process this harness started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + sig) };
}

/// Installs the SIGINT/SIGTERM handler that stops every registered process.
pub fn install_signal_cleanup() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installing a handler that only calls async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// A child we started; on drop, SIGTERM then SIGKILL to it and the descendants recorded for it.
pub struct Proc {
    pub child: Child,
    pub pids: Vec<u32>,
}

impl Proc {
    pub fn new(child: Child) -> Proc {
        let pids = vec![child.id()];
        register(child.id());
        Proc { child, pids }
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Records the current descendants (e.g. frontail's `tail`).
    pub fn record_tree(&mut self) {
        self.pids = tree(self.pid());
        for p in self.pids.iter().skip(1) {
            register(*p);
        }
    }
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            self.kill_rest();
            return;
        }
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.kill_rest();
    }
    fn forget(&self) {
        for p in &self.pids {
            unregister(*p);
        }
    }
    fn kill_rest(&mut self) {
        let me = self.pid();
        for p in self.pids.iter().filter(|p| **p != me) {
            // Still ours only if it still exists; it was our descendant when recorded.
            if Path::new(&format!("/proc/{p}")).exists() {
                // SAFETY: a process we started (through our child).
                unsafe { libc::kill(*p as i32, libc::SIGKILL) };
            }
        }
        self.forget();
        // Signalled once: a later stop (the drop after an explicit one) must not signal pids
        // that may since have been reaped and reused by processes that are not ours.
        self.pids.retain(|p| *p == me);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client process speaking `READY` / `RESULT` on stdout.
pub struct ClientProc {
    pub proc_: Proc,
    lines: mpsc::Receiver<String>,
}

impl ClientProc {
    pub fn spawn(cmd: Command) -> ClientProc {
        Self::spawn_with(cmd, None)
    }
    /// With `stdin` (the pipe client reads tail's output), else a pipe closed to stop it.
    pub fn spawn_with(mut cmd: Command, stdin: Option<Stdio>) -> ClientProc {
        let mut child = cmd
            .stdin(stdin.unwrap_or_else(Stdio::piped))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ClientProc {
            proc_: Proc::new(child),
            lines: rx,
        }
    }
    fn wait_prefix(&self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Ok(l[prefix.len()..].trim().to_owned()),
                Ok(other) => eprintln!("  client: {other}"),
                Err(_) => return Err(format!("client: no {prefix} within {timeout:?}")),
            }
        }
    }
    /// (connections ready, connections failed)
    pub fn wait_ready(&self, timeout: Duration) -> Result<(u64, u64), String> {
        let s = self.wait_prefix("READY", timeout)?;
        let mut it = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
        Ok((it.next().unwrap_or(0), it.next().unwrap_or(0)))
    }
    pub fn close_stdin(&mut self) {
        drop(self.proc_.child.stdin.take());
    }
    pub fn wait_result(&self, timeout: Duration) -> Result<ClientReport, String> {
        let s = self.wait_prefix("RESULT", timeout)?;
        serde_json::from_str(&s).map_err(|e| format!("client result: {e}"))
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts tailcast on port 0 and reads the port it printed.
pub fn start_tailcast(bin: &Path, file: &Path, extra: &[String], log: &Path) -> (Proc, u16) {
    let mut args = extra.to_vec();
    args.push(file.display().to_string());
    start_tailcast_args(bin, &args, log)
}

/// Starts `tailcast --bind 127.0.0.1:0 ARGS...` (PATHs among them, or none for a cluster's
/// front node) and reads the port it printed.
pub fn start_tailcast_args(bin: &Path, args: &[String], log: &Path) -> (Proc, u16) {
    let mut child = Command::new(bin)
        .arg("--bind")
        .arg("127.0.0.1:0")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(log)
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        )
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("tailcast did not print its address: {line:?}"));
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    (Proc::new(child), port)
}

/// Starts frontail (node) on a free port and waits until it answers HTTP.
pub fn start_frontail(node: &str, dir: &Path, file: &Path, log: &Path) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new(node)
        .arg(dir.join("node_modules/frontail/index.js"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--disable-usage-stats", "-n", "10"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(log)
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        )
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start frontail: {e}"));
    let mut p = Proc::new(child);
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if http_get(port, "/").is_ok_and(|(status, _)| status == 200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // frontail spawns `tail -F`: measure (and later stop) both.
    std::thread::sleep(Duration::from_millis(200));
    p.record_tree();
    (p, port)
}

/// Starts `tail -n0 -F FILE` with its stdout to hand to the pipe client.
/// `n` `tail -n0 -F FILE` processes, each writing into a pipe of its own: the first is the
/// returned `Proc` whose `pids` list them all (so CPU is summed over all), the others are kept
/// alive (and stopped) by the returned `Vec`.
pub fn start_tail_pipes(file: &Path, n: u64) -> (Proc, Vec<Proc>, Vec<ChildStdout>) {
    let (mut first, out) = start_tail_pipe(file);
    let mut rest = Vec::new();
    let mut outs = vec![out];
    for _ in 1..n.max(1) {
        let (p, out) = start_tail_pipe(file);
        first.pids.push(p.pid());
        rest.push(p);
        outs.push(out);
    }
    (first, rest, outs)
}

pub fn start_tail_pipe(file: &Path) -> (Proc, ChildStdout) {
    let mut child = Command::new("tail")
        .args(["-n0", "-F"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tail");
    let out = child.stdout.take().unwrap();
    (Proc::new(child), out)
}

/// A tiny HTTP GET on 127.0.0.1: (status, body).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// tailcast's `/api/stats`.
pub fn tailcast_stats(port: u16) -> serde_json::Value {
    http_get(port, "/api/stats")
        .ok()
        .and_then(|(_, b)| serde_json::from_str(&b).ok())
        .unwrap_or_default()
}

/// Waits until `/api/stats` field `key` reaches `want`; returns the last value seen.
pub fn wait_stat(port: u16, key: &str, want: u64, timeout: Duration) -> u64 {
    let until = Instant::now() + timeout;
    loop {
        let v = tailcast_stats(port)[key].as_u64().unwrap_or(0);
        if v >= want || Instant::now() >= until {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

/// What the writer did.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub first_send_ns: u64,
    pub last_send_ns: u64,
    pub lines: u64,
}

/// Appends lines `first..first+n` to `path`: as fast as possible (`rate` = 0, 64 KiB writes), or
/// `rate` lines per second, one write(2) per line on a fixed schedule.
pub fn write_lines(path: &Path, first: u64, n: u64, rate: u64) -> Written {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open the log for appending");
    let mut buf = Vec::with_capacity(1 << 16);
    let first_send_ns = now_ns();
    let mut last_send_ns = first_send_ns;
    if rate == 0 {
        for seq in first..first + n {
            last_send_ns = now_ns();
            format_line(&mut buf, seq, last_send_ns);
            if buf.len() >= (1 << 16) - 200 {
                f.write_all(&buf).expect("write");
                buf.clear();
            }
        }
        f.write_all(&buf).expect("write");
    } else {
        let period = 1e9 / rate as f64;
        for i in 0..n {
            let at = first_send_ns + (i as f64 * period) as u64;
            let now = now_ns();
            if at > now {
                std::thread::sleep(Duration::from_nanos(at - now));
            }
            buf.clear();
            last_send_ns = now_ns();
            format_line(&mut buf, first + i, last_send_ns);
            f.write_all(&buf).expect("write");
        }
    }
    Written {
        first_send_ns,
        last_send_ns,
        lines: n,
    }
}

/// A fresh, empty log in a fresh directory under `work`.
pub fn fresh_log(work: &Path, tag: &str) -> PathBuf {
    let dir = work.join(tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    let file = dir.join("bench.log");
    std::fs::File::create(&file).expect("create log");
    file
}
