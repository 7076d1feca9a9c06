//! The orchestrator: runs every scenario against each server in turn, `--runs` times
//! (interleaved: run 1 of pipe, tailcast, frontail, then run 2, ...), and prints one table of
//! medians plus the targets, with ratios computed per run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{now_ns, Args, ClientReport, ConnStats, Hist};
use crate::procs::*;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Server {
    Pipe,
    Tailcast,
    Frontail,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Pipe => "pipe: tail -n0 -F",
            Server::Tailcast => "tailcast",
            Server::Frontail => "frontail",
        }
    }
}

struct Env {
    me: PathBuf,
    /// The tailcast source revision measured (from run.sh), for the table's header.
    revision: String,
    /// Overrides of the scenario sizes (experiments): lines, rate, clients.
    over: (Option<u64>, Option<u64>, Option<u64>),
    /// Extra tailcast options (experiments; the published table uses the defaults).
    tailcast_args: Vec<String>,
    /// frontail's client: the Rust socket.io client (default) or the Node socket.io-client.
    frontail_node_client: bool,
    tailcast: PathBuf,
    node: String,
    frontail_dir: PathBuf,
    work: PathBuf,
    runs: usize,
    quick: bool,
    servers: Vec<Server>,
}

/// Metrics of one run of one server in one scenario.
pub(crate) type Metrics = BTreeMap<&'static str, f64>;

#[derive(Default)]
struct Results {
    /// (scenario, server) → one Metrics per run
    runs: BTreeMap<(char, Server), Vec<Metrics>>,
    notes: Vec<String>,
}

impl Results {
    fn push(&mut self, scen: char, server: Server, m: Metrics) {
        self.runs.entry((scen, server)).or_default().push(m);
    }
    fn median(&self, scen: char, server: Server, key: &str) -> Option<f64> {
        let v: Vec<f64> = self
            .runs
            .get(&(scen, server))?
            .iter()
            .filter_map(|m| m.get(key).copied())
            .collect();
        median(v)
    }
    /// Median over runs of a / b, paired by run index.
    fn ratio(&self, scen: char, a: Server, b: Server, key: &str) -> Option<f64> {
        let (ra, rb) = (self.runs.get(&(scen, a))?, self.runs.get(&(scen, b))?);
        median(
            ra.iter()
                .zip(rb)
                .filter_map(|(x, y)| Some(x.get(key)? / y.get(key)?))
                .filter(|r| r.is_finite())
                .collect(),
        )
    }
}

pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn suite_main(args: Args) {
    install_signal_cleanup();
    let quick = args.flag("--quick");
    if let Some(bytes) = args.get("--line-bytes") {
        bytes.parse::<usize>().expect("--line-bytes");
        // Before any thread or client process starts: they all read it (common::line_bytes).
        std::env::set_var(crate::common::LINE_BYTES_ENV, bytes);
    }
    let me = std::env::current_exe().expect("own path");
    let work = std::env::temp_dir().join(format!("tailcast-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let servers = args
        .str("--servers", "pipe,tailcast,frontail")
        .split(',')
        .map(|s| match s {
            "pipe" => Server::Pipe,
            "tailcast" => Server::Tailcast,
            "frontail" => Server::Frontail,
            other => panic!("unknown server {other}"),
        })
        .collect();
    let env = Env {
        me,
        revision: args.str("--revision", "unknown revision"),
        over: (
            args.get("--lines").map(|v| v.parse().expect("--lines")),
            args.get("--rate").map(|v| v.parse().expect("--rate")),
            args.get("--clients").map(|v| v.parse().expect("--clients")),
        ),
        tailcast_args: args
            .str("--tailcast-args", "")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        frontail_node_client: args.str("--frontail-client", "rust") == "node",
        tailcast: PathBuf::from(args.str("--tailcast", "target/release/tailcast")),
        node: args.str("--node", "node"),
        frontail_dir: PathBuf::from(args.str("--frontail-dir", "bench/frontail")),
        work: work.clone(),
        runs: args.num("--runs", if quick { 1 } else { 3 }) as usize,
        quick,
        servers,
    };
    let frontail = env.frontail_dir.join("node_modules/frontail/index.js");
    if env.servers.contains(&Server::Frontail) && !frontail.exists() {
        // Every frontail run would fail with a refused connection, which does not say why.
        eprintln!(
            "bench: frontail is not installed ({} is missing): run bench/run.sh, or `npm ci` in {}, \
             or leave frontail out of --servers",
            frontail.display(),
            env.frontail_dir.display()
        );
        std::process::exit(2);
    }
    let scenarios = args.str("--scenarios", "abcdefg");
    let started = Instant::now();
    let mut res = Results::default();
    for scen in scenarios.chars() {
        for run in 0..env.runs {
            for &server in &env.servers {
                if !applies(scen, server) {
                    continue;
                }
                let t = Instant::now();
                eprintln!("bench: scenario {scen}, run {}, {}", run + 1, server.name());
                let m = match scen {
                    'a' | 'b' | 'c' | 'f' | 'g' => data_run(&env, scen, server, run),
                    'd' => idle_run(&env, run),
                    'e' => poll_run(&env, run),
                    _ => panic!("unknown scenario {scen}"),
                };
                match m {
                    Ok(m) => {
                        eprintln!("  {:.1}s: {}", t.elapsed().as_secs_f64(), brief(&m));
                        res.push(scen, server, m);
                    }
                    Err(e) => {
                        eprintln!("  FAILED: {e}");
                        res.notes.push(format!(
                            "scenario {scen} run {} {}: {e}",
                            run + 1,
                            server.name()
                        ));
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    let table = render(&env, &res, started.elapsed());
    println!("{table}");
    if let Some(out) = args.get("--out") {
        std::fs::write(out, &table).expect("write --out");
        eprintln!("bench: table written to {out}");
    }
    if let Some(out) = args.get("--json") {
        let raw: BTreeMap<String, &Vec<Metrics>> = res
            .runs
            .iter()
            .map(|((s, v), m)| (format!("{s}/{}", v.name()), m))
            .collect();
        std::fs::write(out, serde_json::to_string_pretty(&raw).unwrap()).expect("write --json");
    }
}

fn applies(scen: char, server: Server) -> bool {
    match scen {
        'a' | 'c' => true,
        'b' => server != Server::Pipe,
        _ => server == Server::Tailcast,
    }
}

fn brief(m: &Metrics) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", fmt_num(*v)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 || (v.fract() == 0.0 && v.abs() < 1e15) {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

struct Sizes {
    lines: u64,
    rate: u64,
    conns: u64,
    stalled: u64,
}

fn sizes(env: &Env, scen: char) -> Sizes {
    let mut s = base_sizes(env, scen);
    s.lines = env.over.0.unwrap_or(s.lines);
    if s.rate > 0 {
        s.rate = env.over.1.unwrap_or(s.rate);
    }
    s.conns = env.over.2.unwrap_or(s.conns);
    s
}

fn base_sizes(env: &Env, scen: char) -> Sizes {
    let q = env.quick;
    match scen {
        'a' => Sizes {
            lines: if q { 50_000 } else { 200_000 },
            rate: 0,
            conns: 1,
            stalled: 0,
        },
        'b' => Sizes {
            lines: if q { 50_000 } else { 200_000 },
            rate: 0,
            conns: 10,
            stalled: 0,
        },
        'c' => Sizes {
            lines: if q { 3_000 } else { 10_000 },
            rate: 1_000,
            conns: if q { 20 } else { 100 },
            stalled: 0,
        },
        'f' => Sizes {
            lines: if q { 200_000 } else { 1_000_000 },
            rate: 0,
            conns: 1,
            stalled: 1,
        },
        // Control for f: the same burst with the fast client alone.
        'g' => Sizes {
            lines: if q { 200_000 } else { 1_000_000 },
            rate: 0,
            conns: 1,
            stalled: 0,
        },
        _ => unreachable!(),
    }
}

pub(crate) fn tailcast_base_args() -> Vec<String> {
    ["--max-connections", "20000", "--max-polls", "20000"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// What [`start`] started: the server (for the pipe, the first `tail`, whose `pids` list every
/// `tail`), the other `tail`s, its port (0 for the pipe), the log and, for the pipe, each
/// `tail`'s stdout.
struct Started {
    server: Proc,
    more_tails: Vec<Proc>,
    port: u16,
    file: PathBuf,
    pipes: Vec<std::process::ChildStdout>,
}

impl Started {
    /// A server clients reach on `port`.
    fn network(server: Proc, port: u16, file: PathBuf) -> Started {
        Started {
            server,
            more_tails: Vec::new(),
            port,
            file,
            pipes: Vec::new(),
        }
    }
}

/// Starts `server` on a fresh log; the pipe is one `tail -n0 -F` per client connection (`tails`),
/// as many as the readers tailcast serves in the same scenario.
fn start(env: &Env, server: Server, tag: &str, tails: u64) -> Started {
    let file = fresh_log(&env.work, tag);
    let log = file.with_file_name("server.log");
    match server {
        Server::Tailcast => {
            let mut extra = tailcast_base_args();
            extra.extend(env.tailcast_args.iter().cloned());
            let (server, port) = start_tailcast(&env.tailcast, &file, &extra, &log);
            Started::network(server, port, file)
        }
        Server::Frontail => {
            let (server, port) = start_frontail(&env.node, &env.frontail_dir, &file, &log);
            Started::network(server, port, file)
        }
        Server::Pipe => {
            let (server, more_tails, pipes) = start_tail_pipes(&file, tails);
            Started {
                server,
                more_tails,
                port: 0,
                file,
                pipes,
            }
        }
    }
}

/// Hands `pipes` to the client `cmd` starts: one on its stdin, or several as descriptors 3, 4,
/// ... with `--fds N`; then the returned pipes are to be dropped once the client is spawned.
fn give_pipes(
    cmd: &mut Command,
    pipes: Vec<std::process::ChildStdout>,
) -> (Option<std::process::Stdio>, Vec<std::process::ChildStdout>) {
    use std::os::unix::io::AsRawFd;
    use std::os::unix::process::CommandExt;
    if pipes.len() <= 1 {
        return (
            pipes.into_iter().next().map(std::process::Stdio::from),
            Vec::new(),
        );
    }
    let fds: Vec<i32> = pipes.iter().map(|p| p.as_raw_fd()).collect();
    cmd.args(["--fds", &fds.len().to_string()]);
    // Each pipe is first moved above the target range (3 to N + 2), so that placing one never
    // closes another; the copies' room is allocated here, not in the forked child.
    let above = 3 + fds.len() as i32;
    let mut high: Vec<i32> = Vec::with_capacity(fds.len());
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec, and no
    // allocation: `high` has its capacity already.
    unsafe {
        cmd.pre_exec(move || {
            high.clear();
            for &fd in &fds {
                let h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push(h);
            }
            for (i, &h) in high.iter().enumerate() {
                if libc::dup2(h, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    // The parent's ends must stay open until the spawn: the closure holds only their numbers.
    (None, pipes)
}

fn client_cmd(
    env: &Env,
    server: Server,
    port: u16,
    file: &Path,
    conns: u64,
    expected: u64,
    deadline: f64,
) -> Command {
    let mut cmd = match server {
        Server::Frontail if env.frontail_node_client => {
            let mut c = Command::new(&env.node);
            c.arg(env.frontail_dir.join("client.js"))
                .args(["--file", &file.display().to_string()]);
            c
        }
        Server::Frontail => {
            // frontail's namespace is the md5 of its file arguments joined by spaces.
            let ns = Command::new("md5sum")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut ch| {
                    use std::io::Write;
                    ch.stdin
                        .take()
                        .unwrap()
                        .write_all(file.display().to_string().as_bytes())?;
                    ch.wait_with_output()
                })
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .expect("md5sum");
            let mut c = Command::new(&env.me);
            c.arg("ws").args(["--socketio-ns", &ns]);
            c
        }
        Server::Tailcast => {
            let mut c = Command::new(&env.me);
            c.arg("ws").args(["--file", "bench.log"]);
            c
        }
        Server::Pipe => {
            let mut c = Command::new(&env.me);
            c.arg("pipe");
            c
        }
    };
    cmd.args(["--port", &port.to_string()])
        .args(["--conns", &conns.to_string()])
        .args(["--expected", &expected.to_string()])
        .args(["--idle", "5"])
        .args(["--deadline", &deadline.to_string()]);
    cmd
}

/// Scenarios a, b, c, f: a writer, N counting clients (plus stalled ones), one server.
fn data_run(env: &Env, scen: char, server: Server, run: usize) -> Result<Metrics, String> {
    let sz = sizes(env, scen);
    let tag = format!("{scen}{run}-{server:?}");
    let Started {
        server: mut srv,
        more_tails,
        port,
        file,
        pipes,
    } = start(env, server, &tag, sz.conns);
    let mut pipes = Some(pipes);
    let deadline = 180.0;
    // frontail clients: split over up to 4 Node processes (one Node thread each).
    let procs = match server {
        Server::Frontail if env.frontail_node_client => sz.conns.min(4),
        _ => 1,
    };
    let mut clients = Vec::new();
    for i in 0..procs {
        let n = sz.conns / procs + u64::from(i < sz.conns % procs);
        let mut cmd = client_cmd(env, server, port, &file, n, sz.lines, deadline);
        if sz.stalled > 0 && i == 0 {
            cmd.args(["--stalled", &sz.stalled.to_string()]);
        }
        let (stdin, given) = give_pipes(&mut cmd, pipes.take().unwrap_or_default());
        clients.push(ClientProc::spawn_with(cmd, stdin));
        drop(given);
    }
    for c in &clients {
        let (_, failed) = c.wait_ready(Duration::from_secs(120))?;
        if failed > 0 {
            return Err(format!("{failed} client connections failed"));
        }
    }
    if server == Server::Tailcast {
        let want = sz.conns + sz.stalled;
        let got = wait_stat(port, "subscriptions", want, Duration::from_secs(30));
        if got < want {
            return Err(format!("only {got} of {want} subscriptions"));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let pids = srv.pids.clone();
    let cpu0 = cpu_s(&pids);
    let rss0 = rss_kib(&pids);
    let sampler = RssSampler::start(pids.clone());
    let w = write_lines(&file, 1, sz.lines, sz.rate);
    let mut reports = Vec::new();
    for c in &clients {
        reports.push(c.wait_result(Duration::from_secs_f64(deadline + 30.0))?);
    }
    let end_ns = now_ns();
    let cpu1 = cpu_s(&pids);
    let peak = sampler.finish().max(rss_kib(&pids));
    // One process: its VmHWM is exact and catches what 20 ms sampling may miss.
    let peak = if pids.len() == 1 {
        peak.max(hwm_kib(&pids))
    } else {
        peak
    };
    let hwm = hwm_kib(&pids);
    let stats = if server == Server::Tailcast {
        tailcast_stats(port)
    } else {
        serde_json::Value::Null
    };
    srv.stop();
    drop(more_tails);
    drop(clients);

    let mut m = data_metrics(&reports, &w, sz.lines, end_ns);
    let cpu = cpu1 - cpu0;
    m.insert("srv_cpu_s", cpu);
    // CPU over the writer's span plus delivery (first send → last line received).
    let span = (m["last_recv_s"]).max(1e-3);
    m.insert("srv_cpu_pct", 100.0 * cpu / span);
    m.insert("rss_mib", peak.max(hwm.min(peak)) as f64 / 1024.0);
    m.insert("rss_hwm_mib", hwm as f64 / 1024.0);
    m.insert("rss_start_mib", rss0 as f64 / 1024.0);
    m.insert("rss_growth_mib", peak.saturating_sub(rss0) as f64 / 1024.0);
    if let Some(g) = stats["gaps"].as_u64() {
        m.insert("srv_gaps", g as f64);
        m.insert("srv_drops", stats["drops"].as_u64().unwrap_or(0) as f64);
    }
    if scen == 'f' {
        // The fast client is the one with lines.
        let fast = reports[0].conns.first().cloned().unwrap_or_default();
        m.insert(
            "fast_complete",
            f64::from(u8::from(fast.distinct == sz.lines)),
        );
        m.insert("fast_gaps", fast.gaps as f64);
    }
    Ok(m)
}

pub(crate) fn data_metrics(
    reports: &[ClientReport],
    w: &crate::procs::Written,
    expected: u64,
    end_ns: u64,
) -> Metrics {
    let mut m = Metrics::new();
    let conns: Vec<&ConnStats> = reports
        .iter()
        .flat_map(|r| r.conns.iter())
        .filter(|c| c.received > 0 || c.error.is_some())
        .collect();
    let mut hist = Hist::default();
    for r in reports {
        hist.merge(&r.hist);
    }
    let n = conns.len().max(1) as f64;
    let rates: Vec<f64> = conns
        .iter()
        .map(|c| {
            let span = (c.last_recv_ns.max(w.first_send_ns + 1) - w.first_send_ns) as f64 / 1e9;
            c.distinct as f64 / span
        })
        .collect();
    let distinct: u64 = conns.iter().map(|c| c.distinct).sum();
    m.insert("clients", conns.len() as f64);
    m.insert("rate", median(rates.clone()).unwrap_or(0.0));
    m.insert(
        "rate_min",
        rates.iter().copied().fold(f64::INFINITY, f64::min),
    );
    m.insert("rate_sum", rates.iter().sum());
    m.insert("complete", distinct as f64 / (expected as f64 * n));
    m.insert("dups", conns.iter().map(|c| c.dups).sum::<u64>() as f64);
    m.insert(
        "ooo",
        conns.iter().map(|c| c.out_of_order).sum::<u64>() as f64,
    );
    m.insert("gaps", conns.iter().map(|c| c.gaps).sum::<u64>() as f64);
    m.insert(
        "errors",
        conns.iter().filter(|c| c.error.is_some()).count() as f64,
    );
    let ms = |us: Option<u64>| us.map(|v| v as f64 / 1000.0).unwrap_or(f64::NAN);
    m.insert("p50_ms", ms(hist.quantile_us(0.5)));
    m.insert("p99_ms", ms(hist.quantile_us(0.99)));
    m.insert("max_ms", ms(hist.max_us()));
    m.insert("cli_cpu_s", reports.iter().map(|r| r.cpu_s).sum());
    m.insert("written", w.lines as f64);
    m.insert("write_s", (w.last_send_ns - w.first_send_ns) as f64 / 1e9);
    let last = conns.iter().map(|c| c.last_recv_ns).max().unwrap_or(end_ns);
    m.insert(
        "last_recv_s",
        (last.max(w.first_send_ns) - w.first_send_ns) as f64 / 1e9,
    );
    m
}

/// Scenario d: server RSS per idle WebSocket client.
fn idle_run(env: &Env, run: usize) -> Result<Metrics, String> {
    let n: u64 = if env.quick { 1_000 } else { 10_000 };
    let Started {
        server: mut srv,
        port,
        ..
    } = start(env, Server::Tailcast, &format!("d{run}"), 1);
    std::thread::sleep(Duration::from_millis(500));
    let rss0 = rss_kib(&srv.pids);
    let mut cmd = Command::new(&env.me);
    cmd.args(["ws", "--file", "bench.log", "--hold"])
        .args(["--port", &port.to_string(), "--conns", &n.to_string()])
        .args(["--deadline", "300"]);
    let mut client = ClientProc::spawn(cmd);
    let (_, failed) = client.wait_ready(Duration::from_secs(180))?;
    let subs = wait_stat(port, "subscriptions", n, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    let rss1 = rss_kib(&srv.pids);
    let cpu_idle0 = cpu_s(&srv.pids);
    std::thread::sleep(Duration::from_secs(2));
    let cpu_idle = cpu_s(&srv.pids) - cpu_idle0;
    let ws_clients = tailcast_stats(port)["ws_clients"].as_u64().unwrap_or(0);
    client.close_stdin();
    let rep = client.wait_result(Duration::from_secs(60))?;
    srv.stop();
    let mut m = Metrics::new();
    m.insert("clients", ws_clients as f64);
    m.insert("subscriptions", subs as f64);
    m.insert("failed", failed as f64);
    m.insert("rss_start_mib", rss0 as f64 / 1024.0);
    m.insert("rss_mib", rss1 as f64 / 1024.0);
    m.insert(
        "kib_per_client",
        (rss1 as f64 - rss0 as f64) / ws_clients.max(1) as f64,
    );
    m.insert("idle_cpu_pct", 100.0 * cpu_idle / 2.0);
    m.insert("cli_cpu_s", rep.cpu_s);
    if ws_clients < n {
        return Err(format!(
            "only {ws_clients} of {n} clients connected ({failed} failed)"
        ));
    }
    Ok(m)
}

/// Scenario e: N held long-polls, one append.
fn poll_run(env: &Env, run: usize) -> Result<Metrics, String> {
    let n: u64 = if env.quick { 1_000 } else { 10_000 };
    let Started {
        server: mut srv,
        port,
        file,
        ..
    } = start(env, Server::Tailcast, &format!("e{run}"), 1);
    let mut cmd = Command::new(&env.me);
    cmd.args([
        "poll",
        "--file",
        "bench.log",
        "--after",
        "0",
        "--timeout",
        "50",
    ])
    .args(["--port", &port.to_string(), "--conns", &n.to_string()])
    .args(["--expected", "1", "--idle", "10", "--deadline", "120"]);
    let client = ClientProc::spawn(cmd);
    let (_, failed) = client.wait_ready(Duration::from_secs(120))?;
    let waiting = wait_stat(port, "polls_waiting", n, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let pids = srv.pids.clone();
    let rss0 = rss_kib(&pids);
    let cpu0 = cpu_s(&pids);
    let w = write_lines(&file, 1, 1, 0);
    let rep = client.wait_result(Duration::from_secs(60))?;
    let cpu = cpu_s(&pids) - cpu0;
    let hwm = hwm_kib(&pids);
    srv.stop();
    let lat: Vec<f64> = rep
        .conns
        .iter()
        .filter(|c| c.distinct == 1)
        .map(|c| (c.last_recv_ns - w.first_send_ns) as f64 / 1e6)
        .collect();
    let within = lat.iter().filter(|l| **l <= 1000.0).count();
    let mut sorted = lat.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        sorted
            .get(((p * sorted.len() as f64).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let mut m = Metrics::new();
    m.insert("polls", n as f64);
    m.insert("held", waiting as f64);
    m.insert("failed", failed as f64);
    m.insert("answered", lat.len() as f64);
    m.insert("answered_1s", within as f64);
    m.insert("p50_ms", q(0.5));
    m.insert("p99_ms", q(0.99));
    m.insert("max_ms", sorted.last().copied().unwrap_or(f64::NAN));
    m.insert("srv_cpu_s", cpu);
    m.insert("rss_start_mib", rss0 as f64 / 1024.0);
    m.insert("rss_hwm_mib", hwm as f64 / 1024.0);
    m.insert("cli_cpu_s", rep.cpu_s);
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Table

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("PRETTY_NAME="))
                .map(|l| l[12..].trim_matches('"').to_owned())
        })
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {:.0} GiB RAM, {os}, Linux {}",
        mem / 1048576.0,
        kernel.trim()
    )
}

pub(crate) fn cell(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{}{unit}", fmt_num(v)),
        _ => "–".into(),
    }
}

fn render(env: &Env, res: &Results, took: Duration) -> String {
    let mut s = String::new();
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let tc_version = Command::new(&env.tailcast)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let node = Command::new(&env.node)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    s += &format!(
        "Measured {date} on {}; {tc_version} ({}), frontail 4.9.2 (socket.io 2.3.0) on Node {node}, \
         frontail read by the {} client; \
         {} run(s) per cell{}, medians; whole suite took {:.0} s.\n\n",
        machine(),
        env.revision,
        if env.frontail_node_client {
            "Node socket.io-client 2.3.0"
        } else {
            "Rust socket.io (engine.io 3 over WebSocket)"
        },
        env.runs,
        if env.quick {
            " (QUICK MODE: smaller sizes)"
        } else {
            ""
        },
        took.as_secs_f64()
    );
    let scen_title = |c: char| -> String {
        let sz = |c| sizes(env, c);
        match c {
            'a' => format!("a) burst of {} lines, 1 client", sz('a').lines),
            'b' => format!(
                "b) burst of {} lines, {} clients",
                sz('b').lines,
                sz('b').conns
            ),
            'c' => format!(
                "c) {} lines/s for {} s, {} clients",
                sz('c').rate,
                sz('c').lines / sz('c').rate,
                sz('c').conns
            ),
            'f' => format!(
                "f) burst of {} lines, 1 stalled + 1 fast client",
                sz('f').lines
            ),
            'g' => format!(
                "f, control) burst of {} lines, the fast client alone",
                sz('g').lines
            ),
            _ => String::new(),
        }
    };
    s += "| scenario | server | lines/s per client | delivered | dup / out of order / gaps | p50 ms | p99 ms | max ms | server CPU s | server CPU % of a core | server peak RSS MiB | client CPU s |\n";
    s += "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for scen in ['a', 'b', 'c', 'f', 'g'] {
        for &server in &[Server::Pipe, Server::Tailcast, Server::Frontail] {
            if !res.runs.contains_key(&(scen, server)) {
                continue;
            }
            let md = |k| res.median(scen, server, k);
            let complete = md("complete")
                .map(|v| format!("{:.2} %", v * 100.0))
                .unwrap_or("–".into());
            s += &format!(
                "| {} | {} | {} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} | {} |\n",
                scen_title(scen),
                server.name(),
                cell(md("rate"), ""),
                complete,
                cell(md("dups"), ""),
                cell(md("ooo"), ""),
                cell(md("gaps"), ""),
                cell(md("p50_ms"), ""),
                cell(md("p99_ms"), ""),
                cell(md("max_ms"), ""),
                cell(md("srv_cpu_s"), ""),
                cell(md("srv_cpu_pct"), " %"),
                cell(md("rss_mib"), ""),
                cell(md("cli_cpu_s"), ""),
            );
        }
    }
    s += "\n";
    if res.runs.contains_key(&('d', Server::Tailcast)) {
        let md = |k| res.median('d', Server::Tailcast, k);
        s += &format!(
            "d) {} idle WebSocket clients (tailcast): server RSS {} → {} MiB, **{} KiB per client**; idle CPU {}.\n\n",
            cell(md("clients"), ""),
            cell(md("rss_start_mib"), ""),
            cell(md("rss_mib"), ""),
            cell(md("kib_per_client"), ""),
            cell(md("idle_cpu_pct"), " % of a core"),
        );
    }
    if res.runs.contains_key(&('e', Server::Tailcast)) {
        let md = |k| res.median('e', Server::Tailcast, k);
        s += &format!(
            "e) {} held long-polls (tailcast; {} held when the line was appended): {} answered, {} within 1 s; latency p50 {} ms, p99 {} ms, max {} ms; server CPU {} s.\n\n",
            cell(md("polls"), ""),
            cell(md("held"), ""),
            cell(md("answered"), ""),
            cell(md("answered_1s"), ""),
            cell(md("p50_ms"), ""),
            cell(md("p99_ms"), ""),
            cell(md("max_ms"), ""),
            cell(md("srv_cpu_s"), ""),
        );
    }
    if res.runs.contains_key(&('f', Server::Tailcast)) {
        let md = |k| res.median('f', Server::Tailcast, k);
        s += &format!(
            "f) stalled client during the burst (tailcast): RSS {} MiB before, peak {} MiB (VmHWM {} MiB): **growth {} MiB**; fast client complete in {} of runs, its gaps: {}; server drops: {}.\n\n",
            cell(md("rss_start_mib"), ""),
            cell(md("rss_mib"), ""),
            cell(md("rss_hwm_mib"), ""),
            cell(md("rss_growth_mib"), ""),
            res.runs[&('f', Server::Tailcast)].iter().filter(|m| m.get("fast_complete") == Some(&1.0)).count().to_string() + "/" + &res.runs[&('f', Server::Tailcast)].len().to_string(),
            cell(md("fast_gaps"), ""),
            cell(md("srv_drops"), ""),
        );
    }
    // Targets.
    s += "| target | measured (median; ratios per run, then median) | met |\n|---|---|---|\n";
    let t = Server::Tailcast;
    let f = Server::Frontail;
    let p = Server::Pipe;
    let mut row = |name: &str, v: Option<f64>, shown: String, ok: &dyn Fn(f64) -> bool| {
        let met = match v {
            Some(v) if v.is_finite() => {
                if ok(v) {
                    "yes"
                } else {
                    "**no**"
                }
            }
            _ => "not measured",
        };
        s += &format!("| {name} | {shown} | {met} |\n");
    };
    // A ratio only counts when tailcast delivered every line in every run.
    let all = |scen: char| {
        res.runs
            .get(&(scen, t))
            .is_some_and(|runs| runs.iter().all(|m| m.get("complete") == Some(&1.0)))
    };
    let lossy = |scen: char, shown: String| {
        if all(scen) || !res.runs.contains_key(&(scen, t)) {
            shown
        } else {
            let worst = res
                .runs
                .get(&(scen, t))
                .map(|r| {
                    r.iter()
                        .filter_map(|m| m.get("complete").copied())
                        .fold(1.0, f64::min)
                })
                .unwrap_or(0.0);
            format!(
                "{shown}, but tailcast lost lines (gaps) in some runs: worst run delivered {:.1} %",
                worst * 100.0
            )
        }
    };
    let r = res.ratio('a', t, f, "rate");
    row(
        "a) ≥ 10× frontail's lines/s",
        r,
        lossy('a', cell(r, "×")),
        &|v| v >= 10.0 && all('a'),
    );
    let r = res.ratio('a', t, p, "rate");
    row(
        "a) ≥ 50 % of the pipe's lines/s",
        r,
        lossy('a', cell(r.map(|v| v * 100.0), " %")),
        &|v| v >= 0.5 && all('a'),
    );
    // Issue 19: the cost per line against the local limit, the same burst through `tail -F`.
    let r = res.ratio('a', t, p, "srv_cpu_s");
    row(
        "a) server CPU ≤ 2× the pipe's (`tail -F`; issue 19 sets it for `--lines` 1000000 and 2000000)",
        r,
        cell(r, "×"),
        &|v| v <= 2.0,
    );
    let r = res.ratio('a', t, p, "rate");
    row(
        "a) ≥ 85 % of the pipe's lines/s (issue 19, same sizes)",
        r,
        lossy('a', cell(r.map(|v| v * 100.0), " %")),
        &|v| v >= 0.85 && all('a'),
    );
    let r = res.ratio('a', t, f, "srv_cpu_s").map(|v| 1.0 / v);
    row(
        "a) frontail's server CPU per line, × tailcast's (reported)",
        r,
        cell(r, "×"),
        &|_| true,
    );
    let r = res.ratio('b', t, f, "rate");
    row(
        "b) ≥ 10× frontail per client (every line delivered)",
        r,
        lossy('b', cell(r, "×")),
        &|v| v >= 10.0 && all('b'),
    );
    let v = res.median('c', t, "p99_ms");
    row("c) p99 latency ≤ 5 ms", v, cell(v, " ms"), &|v| v <= 5.0);
    let v = res.median('c', t, "srv_cpu_pct");
    row("c) server CPU ≤ 10 % of a core", v, cell(v, " %"), &|v| {
        v <= 10.0
    });
    let r = res.ratio('c', t, p, "srv_cpu_s");
    row(
        "c) server CPU ≤ 0.5× that of one `tail -F` per client",
        r,
        cell(r, "×"),
        &|v| v <= 0.5,
    );
    let v = res.median('c', t, "rss_mib");
    row("c) server RSS ≤ 20 MB", v, cell(v, " MiB"), &|v| {
        v * 1.048576 <= 20.0
    });
    let v = res.median('d', t, "kib_per_client");
    row(
        "d) ≤ 20 KiB server RSS per idle WebSocket",
        v,
        cell(v, " KiB"),
        &|v| v <= 20.0,
    );
    let v = res
        .median('e', t, "answered_1s")
        .zip(res.median('e', t, "polls"))
        .map(|(a, n)| a / n);
    row(
        "e) all held polls answered within 1 s",
        v,
        cell(v.map(|v| v * 100.0), " %"),
        &|v| v >= 1.0,
    );
    let v = res.median('f', t, "rss_growth_mib");
    let control = res
        .median('g', t, "rss_growth_mib")
        .map(|c| {
            format!(
                " (control without the stalled client: {})",
                cell(Some(c), " MiB")
            )
        })
        .unwrap_or_default();
    row(
        "f) server RSS growth ≤ 16 MiB with a stalled client",
        v,
        cell(v, " MiB") + &control,
        &|v| v <= 16.0,
    );
    // Every run must count here, not the median.
    let fr = res.runs.get(&('f', t));
    let v = fr.map(|r| {
        r.iter()
            .filter_map(|m| m.get("fast_complete").copied())
            .fold(1.0, f64::min)
    });
    let shown = fr
        .map(|r| {
            let ok = r
                .iter()
                .filter(|m| m.get("fast_complete") == Some(&1.0))
                .count();
            format!("in {ok} of {} runs", r.len())
        })
        .unwrap_or_else(|| "–".into());
    row(
        "f) the fast client beside it gets every line",
        v,
        shown,
        &|v| v >= 1.0,
    );
    if !res.notes.is_empty() {
        s += "\nFailed runs:\n";
        for n in &res.notes {
            s += &format!("- {n}\n");
        }
    }
    s
}
