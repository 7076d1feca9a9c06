//! `tailcast-bench cluster`: the cluster through Redis Streams (issue 17) against one plain
//! tailcast, in the same run.
//!
//! Each run starts its own `redis-server` (no persistence, a Unix socket in a fresh temp dir,
//! stopped at the end of the cell), one publisher node (tailcast with `--redis` and the log) and
//! two front nodes (`--redis`, no PATH), and measures three things:
//!
//! - **latency**: 1 000 lines/s to 100 WebSocket viewers on each front node, write to the file →
//!   frame at the viewer on another node, against the same 200 viewers (the same two client
//!   processes) on one plain tailcast; CPU of Redis and of every node from `/proc`;
//! - **burst**: 200 000 lines as fast as the writer goes, one viewer on a front node, against
//!   one viewer on a plain tailcast; lines lost (distinct seqs the viewer lacks);
//! - **idle**: Redis' `CLIENT LIST` count and command rate (`INFO stats`
//!   `total_commands_processed` over a window) with no viewer, then with 10 000 idle viewers
//!   spread over the two front nodes.
//!
//! The single-node and cluster cells alternate inside each run (single first in runs 1, 3, …,
//! cluster first in runs 2, 4, …), so that what the other engineers' load does to one it does to
//! the other; ratios are taken per run, then the median.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{now_ns, raise_nofile, Args, ClientReport};
use crate::procs::*;
use crate::suite::{cell, data_metrics, fmt_num, machine, median, tailcast_base_args, Metrics};

/// The id every node serves the publisher's file under (`NODE/ID`).
const CLUSTER_FILE: &str = "pub/bench.log";
/// The front nodes' names.
const FRONTS: [&str; 2] = ["f1", "f2"];
/// Metric keys of each measured process's CPU (seconds, % of a core), in `Rig::measured` order.
const CPU_KEYS: [(&str, &str); 4] = [
    ("cpu_redis", "pct_redis"),
    ("cpu_pub", "pct_pub"),
    ("cpu_f1", "pct_f1"),
    ("cpu_f2", "pct_f2"),
];

struct Env {
    me: PathBuf,
    tailcast: PathBuf,
    redis: PathBuf,
    revision: String,
    work: PathBuf,
    runs: usize,
    quick: bool,
    /// Extra options for every tailcast node (experiments; the published table uses none).
    node_args: Vec<String>,
}

impl Env {
    fn lat_lines(&self) -> u64 {
        if self.quick {
            3_000
        } else {
            10_000
        }
    }
    fn lat_viewers_per_node(&self) -> u64 {
        if self.quick {
            20
        } else {
            100
        }
    }
    fn burst_lines(&self) -> u64 {
        if self.quick {
            50_000
        } else {
            200_000
        }
    }
    fn idle_viewers(&self) -> u64 {
        if self.quick {
            1_000
        } else {
            10_000
        }
    }
    fn idle_window(&self) -> Duration {
        Duration::from_secs(if self.quick { 4 } else { 10 })
    }
}

pub fn cluster_main(args: Args) {
    install_signal_cleanup();
    // 10 000 viewers: the nodes inherit the raised limit (the client processes raise theirs).
    raise_nofile();
    let quick = args.flag("--quick");
    let work = std::env::temp_dir().join(format!("tailcast-bench-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let env = Env {
        me: std::env::current_exe().expect("own path"),
        tailcast: PathBuf::from(args.str("--tailcast", "target/release/tailcast")),
        redis: PathBuf::from(args.str("--redis-server", "redis-server")),
        revision: args.str("--revision", "unknown revision"),
        work: work.clone(),
        runs: args.num("--runs", if quick { 1 } else { 3 }) as usize,
        quick,
        node_args: args
            .str("--node-args", "")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    };
    let parts = args.str("--parts", "lbi");
    let started = Instant::now();
    let mut res: BTreeMap<(&'static str, usize), Metrics> = BTreeMap::new();
    let mut notes = Vec::new();
    for run in 0..env.runs {
        let mut cells: Vec<&'static str> = Vec::new();
        let pair = |a: &'static str, b: &'static str| {
            if run % 2 == 0 {
                [a, b]
            } else {
                [b, a]
            }
        };
        if parts.contains('l') {
            cells.extend(pair("latency/single", "latency/cluster"));
        }
        if parts.contains('b') {
            cells.extend(pair("burst/single", "burst/cluster"));
        }
        if parts.contains('i') {
            cells.push("idle/cluster");
        }
        for name in cells {
            let t = Instant::now();
            eprintln!("bench: cluster {name}, run {}", run + 1);
            let m = match name {
                "latency/single" => latency_cell(&env, run, false),
                "latency/cluster" => latency_cell(&env, run, true),
                "burst/single" => burst_cell(&env, run, false),
                "burst/cluster" => burst_cell(&env, run, true),
                _ => idle_cell(&env, run),
            };
            match m {
                Ok(m) => {
                    eprintln!("  {:.1}s: {}", t.elapsed().as_secs_f64(), brief(&m));
                    res.insert((name, run), m);
                }
                Err(e) => {
                    eprintln!("  FAILED: {e}");
                    notes.push(format!("{name} run {}: {e}", run + 1));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    let table = render(&env, &res, &notes, started.elapsed());
    println!("{table}");
    if let Some(out) = args.get("--out") {
        std::fs::write(out, &table).expect("write --out");
        eprintln!("bench: table written to {out}");
    }
    if let Some(out) = args.get("--json") {
        let raw: BTreeMap<String, &Metrics> = res
            .iter()
            .map(|((name, run), m)| (format!("{name}/run{}", run + 1), m))
            .collect();
        let text = serde_json::to_string_pretty(&raw).unwrap_or_default();
        std::fs::write(out, text).expect("write --json");
    }
}

fn brief(m: &Metrics) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", fmt_num(*v)))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Redis

/// A `redis-server` this harness started: no persistence, a Unix socket, no TCP port.
struct Redis {
    proc_: Proc,
    sock: PathBuf,
}

impl Redis {
    fn start(bin: &Path, dir: &Path) -> Result<Redis, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("redis dir: {e}"))?;
        let sock = dir.join("redis.sock");
        let log = std::fs::File::create(dir.join("redis.log"))
            .map(Stdio::from)
            .unwrap_or(Stdio::null());
        let child = Command::new(bin)
            .args(["--port", "0", "--unixsocket"])
            .arg(&sock)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {} ({e}): install redis-server", bin.display()))?;
        let redis = Redis {
            proc_: Proc::new(child),
            sock,
        };
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if redis.conn().and_then(|mut c| c.cmd(&["PING"])).as_deref() == Ok("PONG") {
                return Ok(redis);
            }
            if Instant::now() >= until {
                return Err("redis-server did not answer PING within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.sock.display())
    }

    fn conn(&self) -> Result<Resp, String> {
        let w = UnixStream::connect(&self.sock).map_err(|e| format!("redis: {e}"))?;
        w.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let r = BufReader::new(w.try_clone().map_err(|e| format!("redis: {e}"))?);
        Ok(Resp { r, w })
    }
}

/// One connection speaking just enough RESP for PING, INFO and CLIENT LIST.
struct Resp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Resp {
    /// Sends a command; returns a simple, integer or bulk reply as text.
    fn cmd(&mut self, args: &[&str]) -> Result<String, String> {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req += &format!("${}\r\n{a}\r\n", a.len());
        }
        self.w
            .write_all(req.as_bytes())
            .map_err(|e| format!("redis: {e}"))?;
        let mut head = String::new();
        self.r
            .read_line(&mut head)
            .map_err(|e| format!("redis: {e}"))?;
        let head = head.trim_end();
        match head.as_bytes().first() {
            Some(b'+') | Some(b':') => Ok(head[1..].to_owned()),
            Some(b'-') => Err(format!("redis: {}", &head[1..])),
            Some(b'$') => {
                let n: i64 = head[1..].parse().map_err(|_| format!("redis: {head}"))?;
                if n < 0 {
                    return Ok(String::new());
                }
                let mut buf = vec![0; n as usize + 2];
                self.r
                    .read_exact(&mut buf)
                    .map_err(|e| format!("redis: {e}"))?;
                buf.truncate(n as usize);
                Ok(String::from_utf8_lossy(&buf).into_owned())
            }
            _ => Err(format!("redis: unexpected reply {head:?}")),
        }
    }

    /// A field of `INFO section`.
    fn info(&mut self, section: &str, field: &str) -> Result<u64, String> {
        let text = self.cmd(&["INFO", section])?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("redis: no {field} in INFO {section}"))
    }

    /// Clients connected, this one excluded.
    fn clients(&mut self) -> Result<u64, String> {
        let list = self.cmd(&["CLIENT", "LIST"])?;
        let n = list.lines().filter(|l| l.starts_with("id=")).count() as u64;
        Ok(n.saturating_sub(1))
    }
}

/// What a window of Redis activity looked like.
struct Window {
    clients: u64,
    cmd_rate: f64,
    conns_opened: u64,
    redis_cpu_pct: f64,
    nodes_cpu_pct: f64,
}

/// Measures Redis over `len`: its clients at the end, commands/s (the two INFO commands of the
/// measure excluded), connections opened, its CPU and the nodes'.
fn window(redis: &Redis, nodes: &[u32], len: Duration) -> Result<Window, String> {
    let mut c = redis.conn()?;
    let (cpu_r0, cpu_n0) = (cpu_s(&redis.proc_.pids), cpu_s(nodes));
    let t0 = Instant::now();
    let cmds0 = c.info("stats", "total_commands_processed")?;
    let conns0 = c.info("stats", "total_connections_received")?;
    std::thread::sleep(len);
    let cmds1 = c.info("stats", "total_commands_processed")?;
    let conns1 = c.info("stats", "total_connections_received")?;
    let secs = t0.elapsed().as_secs_f64();
    let (cpu_r1, cpu_n1) = (cpu_s(&redis.proc_.pids), cpu_s(nodes));
    let clients = c.clients()?;
    Ok(Window {
        clients,
        // The measure's own: the two INFOs of the start (counted once done).
        cmd_rate: (cmds1.saturating_sub(cmds0 + 2)) as f64 / secs,
        conns_opened: conns1.saturating_sub(conns0),
        redis_cpu_pct: 100.0 * (cpu_r1 - cpu_r0) / secs,
        nodes_cpu_pct: 100.0 * (cpu_n1 - cpu_n0) / secs,
    })
}

// ---------------------------------------------------------------------------------------------
// Nodes

struct Node {
    proc_: Proc,
    port: u16,
}

/// One plain tailcast, or a cluster: the publisher, the front nodes, their Redis (declared
/// last: the nodes stop first).
struct Rig {
    file: PathBuf,
    publisher: Node,
    fronts: Vec<Node>,
    redis: Option<Redis>,
}

impl Rig {
    fn single(env: &Env, tag: &str) -> Rig {
        let file = fresh_log(&env.work, tag);
        let mut args = tailcast_base_args();
        args.extend(env.node_args.iter().cloned());
        let (proc_, port) = start_tailcast(&env.tailcast, &file, &args, &log_of(&file, "server"));
        Rig {
            file,
            publisher: Node { proc_, port },
            fronts: Vec::new(),
            redis: None,
        }
    }

    /// Redis, the publisher `pub` of the log, and the front nodes, once each serves the log.
    fn cluster(env: &Env, tag: &str) -> Result<Rig, String> {
        let file = fresh_log(&env.work, tag);
        let dir = file.parent().unwrap_or(&env.work).to_path_buf();
        let redis = Redis::start(&env.redis, &dir.join("redis"))?;
        let node_args = |name: &str| {
            let mut args = tailcast_base_args();
            args.extend(["--redis".into(), redis.url(), "--node".into(), name.into()]);
            args.extend(env.node_args.iter().cloned());
            args
        };
        let (proc_, port) = start_tailcast(
            &env.tailcast,
            &file,
            &node_args("pub"),
            &log_of(&file, "pub"),
        );
        let publisher = Node { proc_, port };
        let mut fronts = Vec::new();
        for name in FRONTS {
            let (proc_, port) =
                start_tailcast_args(&env.tailcast, &node_args(name), &log_of(&file, name));
            fronts.push(Node { proc_, port });
        }
        for (node, name) in fronts.iter().zip(FRONTS) {
            wait_served(node.port, CLUSTER_FILE, Duration::from_secs(30))
                .map_err(|e| format!("front node {name}: {e}"))?;
        }
        Ok(Rig {
            file,
            publisher,
            fronts,
            redis: Some(redis),
        })
    }

    fn file_id(&self) -> &'static str {
        if self.redis.is_some() {
            CLUSTER_FILE
        } else {
            "bench.log"
        }
    }

    /// Where viewer group `i` connects: front node `i` of a cluster, else the one server.
    fn viewer_port(&self, i: usize) -> u16 {
        if self.fronts.is_empty() {
            self.publisher.port
        } else {
            self.fronts[i % self.fronts.len()].port
        }
    }

    /// The measured processes, in [`CPU_KEYS`] order (Redis absent for a plain tailcast).
    fn measured(&self) -> Vec<Option<Vec<u32>>> {
        let mut out = vec![self.redis.as_ref().map(|r| r.proc_.pids.clone())];
        out.push(Some(self.publisher.proc_.pids.clone()));
        for i in 0..FRONTS.len() {
            out.push(self.fronts.get(i).map(|n| n.proc_.pids.clone()));
        }
        out
    }

    fn cpu(&self) -> Vec<Option<f64>> {
        self.measured()
            .iter()
            .map(|p| p.as_ref().map(|p| cpu_s(p)))
            .collect()
    }
}

fn log_of(file: &Path, name: &str) -> PathBuf {
    file.with_file_name(format!("{name}.log"))
}

/// Waits until the node at `port` lists file `id` in `/api/files`.
fn wait_served(port: u16, id: &str, timeout: Duration) -> Result<(), String> {
    let until = Instant::now() + timeout;
    loop {
        let listed = http_get(port, "/api/files")
            .ok()
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|v| {
                v.as_array()
                    .map(|files| files.iter().any(|f| f["id"] == id))
            })
            .unwrap_or(false);
        if listed {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(format!("{id} not served within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn viewers(env: &Env, rig: &Rig, port: u16, conns: u64, expected: u64) -> ClientProc {
    let mut cmd = Command::new(&env.me);
    cmd.args(["ws", "--file", rig.file_id()])
        .args(["--port", &port.to_string()])
        .args(["--conns", &conns.to_string()])
        .args(["--expected", &expected.to_string()])
        .args(["--idle", "5", "--deadline", "180"]);
    ClientProc::spawn(cmd)
}

/// Every client connected and every viewer subscribed at its node.
fn wait_subscribed(clients: &[ClientProc], ports: &[(u16, u64)]) -> Result<(), String> {
    for c in clients {
        let (_, failed) = c.wait_ready(Duration::from_secs(180))?;
        if failed > 0 {
            return Err(format!("{failed} viewer connections failed"));
        }
    }
    for &(port, want) in ports {
        let got = wait_stat(port, "subscriptions", want, Duration::from_secs(60));
        if got < want {
            return Err(format!("only {got} of {want} subscriptions on port {port}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Cells

fn tag(run: usize, what: &str, cluster: bool) -> String {
    format!("{what}{run}-{}", if cluster { "cluster" } else { "single" })
}

/// Viewer groups (port, viewers) of a data cell: one group per front node, or as many groups
/// on the one plain tailcast (the same client processes either way).
fn data_cell(
    env: &Env,
    rig: &Rig,
    groups: usize,
    per_group: u64,
    lines: u64,
    rate: u64,
) -> Result<Metrics, String> {
    let ports: Vec<u16> = (0..groups).map(|i| rig.viewer_port(i)).collect();
    let clients: Vec<ClientProc> = ports
        .iter()
        .map(|&p| viewers(env, rig, p, per_group, lines))
        .collect();
    let mut want: BTreeMap<u16, u64> = BTreeMap::new();
    for &p in &ports {
        *want.entry(p).or_default() += per_group;
    }
    wait_subscribed(&clients, &want.into_iter().collect::<Vec<_>>())?;
    std::thread::sleep(Duration::from_millis(500));
    let mut redis_conn = rig.redis.as_ref().map(|r| r.conn()).transpose()?;
    let cmds0 = match redis_conn.as_mut() {
        Some(c) => Some(c.info("stats", "total_commands_processed")?),
        None => None,
    };
    let cpu0 = rig.cpu();
    let w = write_lines(&rig.file, 1, lines, rate);
    let mut reports: Vec<ClientReport> = Vec::new();
    for c in &clients {
        reports.push(c.wait_result(Duration::from_secs(240))?);
    }
    let end_ns = now_ns();
    let cpu1 = rig.cpu();
    let cmds1 = match redis_conn.as_mut() {
        Some(c) => Some(c.info("stats", "total_commands_processed")?),
        None => None,
    };
    drop(clients);
    let mut m = data_metrics(&reports, &w, lines, end_ns);
    let span = m["last_recv_s"].max(1e-3);
    let mut total = 0.0;
    for ((a, b), (key, pct)) in cpu0.iter().zip(&cpu1).zip(CPU_KEYS) {
        if let (Some(a), Some(b)) = (a, b) {
            m.insert(key, b - a);
            m.insert(pct, 100.0 * (b - a) / span);
            total += b - a;
        }
    }
    m.insert("cpu_total", total);
    m.insert("pct_total", 100.0 * total / span);
    if let (Some(a), Some(b)) = (cmds0, cmds1) {
        m.insert("redis_cmd_rate", b.saturating_sub(a + 1) as f64 / span);
    }
    let distinct: u64 = reports
        .iter()
        .flat_map(|r| r.conns.iter())
        .map(|c| c.distinct)
        .sum();
    m.insert("viewers", (groups as u64 * per_group) as f64);
    m.insert(
        "lost",
        (lines * groups as u64 * per_group).saturating_sub(distinct) as f64,
    );
    Ok(m)
}

/// Latency: 1 000 lines/s to 100 viewers on each front node (or all 200 on one tailcast).
fn latency_cell(env: &Env, run: usize, cluster: bool) -> Result<Metrics, String> {
    let rig = if cluster {
        Rig::cluster(env, &tag(run, "lat", cluster))?
    } else {
        Rig::single(env, &tag(run, "lat", cluster))
    };
    data_cell(
        env,
        &rig,
        FRONTS.len(),
        env.lat_viewers_per_node(),
        env.lat_lines(),
        1_000,
    )
}

/// Burst: the whole burst to one viewer on a front node (or on the one tailcast).
fn burst_cell(env: &Env, run: usize, cluster: bool) -> Result<Metrics, String> {
    let rig = if cluster {
        Rig::cluster(env, &tag(run, "burst", cluster))?
    } else {
        Rig::single(env, &tag(run, "burst", cluster))
    };
    data_cell(env, &rig, 1, 1, env.burst_lines(), 0)
}

/// Idle: Redis' clients and command rate with no viewer, then with N idle viewers spread over
/// the front nodes.
fn idle_cell(env: &Env, run: usize) -> Result<Metrics, String> {
    let rig = Rig::cluster(env, &format!("idle{run}"))?;
    let Some(redis) = rig.redis.as_ref() else {
        return Err("no Redis".into());
    };
    let fronts: Vec<u32> = rig
        .fronts
        .iter()
        .flat_map(|n| n.proc_.pids.clone())
        .collect();
    // Past the start: every node has beaten and discovered at least once more.
    std::thread::sleep(Duration::from_secs(3));
    let before = window(redis, &fronts, env.idle_window())?;
    let n = env.idle_viewers();
    let per = n / FRONTS.len() as u64;
    let mut clients = Vec::new();
    for node in &rig.fronts {
        let mut cmd = Command::new(&env.me);
        cmd.args(["ws", "--file", CLUSTER_FILE, "--hold"])
            .args([
                "--port",
                &node.port.to_string(),
                "--conns",
                &per.to_string(),
            ])
            .args(["--deadline", "600"]);
        clients.push(ClientProc::spawn(cmd));
    }
    let ports: Vec<(u16, u64)> = rig.fronts.iter().map(|f| (f.port, per)).collect();
    wait_subscribed(&clients, &ports)?;
    std::thread::sleep(Duration::from_secs(2));
    let connected: u64 = rig
        .fronts
        .iter()
        .map(|f| tailcast_stats(f.port)["ws_clients"].as_u64().unwrap_or(0))
        .sum();
    let with = window(redis, &fronts, env.idle_window())?;
    for c in &mut clients {
        c.close_stdin();
    }
    for c in &clients {
        let _ = c.wait_result(Duration::from_secs(60));
    }
    let mut m = Metrics::new();
    m.insert("viewers", connected as f64);
    for (w, keys) in [
        (
            &before,
            [
                "clients0",
                "cmd_rate0",
                "conns0",
                "redis_pct0",
                "fronts_pct0",
            ],
        ),
        (
            &with,
            [
                "clients1",
                "cmd_rate1",
                "conns1",
                "redis_pct1",
                "fronts_pct1",
            ],
        ),
    ] {
        m.insert(keys[0], w.clients as f64);
        m.insert(keys[1], w.cmd_rate);
        m.insert(keys[2], w.conns_opened as f64);
        m.insert(keys[3], w.redis_cpu_pct);
        m.insert(keys[4], w.nodes_cpu_pct);
    }
    if connected < n {
        return Err(format!("only {connected} of {n} viewers connected"));
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Table

type Res = BTreeMap<(&'static str, usize), Metrics>;

fn med(res: &Res, name: &str, key: &str) -> Option<f64> {
    median(
        res.iter()
            .filter(|((n, _), _)| *n == name)
            .filter_map(|(_, m)| m.get(key).copied())
            .collect(),
    )
}

/// Median over runs of `a`'s `key` / `b`'s, paired by run.
fn ratio(res: &Res, a: &str, b: &str, key: &str) -> Option<f64> {
    median(
        res.iter()
            .filter(|((n, _), _)| *n == a)
            .filter_map(|((_, run), m)| {
                let other = res.iter().find(|((n, r), _)| *n == b && r == run)?.1;
                Some(m.get(key)? / other.get(key)?)
            })
            .filter(|r| r.is_finite())
            .collect(),
    )
}

/// `a / b` of each run with both, for the targets' rows.
fn per_run(res: &Res, a: &str, b: &str, key: &str) -> String {
    res.iter()
        .filter(|((n, _), _)| *n == a)
        .filter_map(|((_, run), m)| {
            let other = res.iter().find(|((n, r), _)| *n == b && r == run)?.1;
            Some(format!(
                "{} / {}",
                fmt_num(*m.get(key)?),
                fmt_num(*other.get(key)?)
            ))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn all<'a>(res: &'a Res, name: &'a str) -> impl Iterator<Item = &'a Metrics> + 'a {
    res.iter()
        .filter(move |((n, _), _)| *n == name)
        .map(|(_, m)| m)
}

fn version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn render(env: &Env, res: &Res, notes: &[String], took: Duration) -> String {
    let mut s = String::new();
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let redis_version = version(&env.redis);
    let redis_version = redis_version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or(&redis_version);
    s += &format!(
        "Measured {date} on {}; {} ({}), redis-server {redis_version} (Unix socket, no \
         persistence); one publisher and two front nodes; {} run(s) per cell{}, single-node and \
         cluster cells alternating within each run, medians; took {:.0} s.\n\n",
        machine(),
        version(&env.tailcast),
        env.revision,
        env.runs,
        if env.quick {
            " (QUICK MODE: smaller sizes)"
        } else {
            ""
        },
        took.as_secs_f64()
    );
    s += "| cell | setup | viewers | lines/s per viewer | lost | dup / out of order / gaps | p50 ms | p99 ms | max ms | CPU s: Redis / publisher (the server) / front 1 / front 2 | CPU % of a core: Redis / publisher / front 1 / front 2 / all | Redis commands/s |\n";
    s += "|---|---|---:|---:|---:|---|---:|---:|---:|---|---|---:|\n";
    let title = |what: &str| -> String {
        if what == "latency" {
            format!("{} lines/s for {} s", 1_000, env.lat_lines() / 1_000)
        } else {
            format!("burst of {} lines", env.burst_lines())
        }
    };
    for what in ["latency", "burst"] {
        for (setup, shown) in [
            ("single", "one plain tailcast"),
            ("cluster", "cluster: viewers on the front nodes"),
        ] {
            let name = format!("{what}/{setup}");
            if all(res, &name).next().is_none() {
                continue;
            }
            let md = |k: &str| med(res, &name, k);
            let list = |i: usize| -> String {
                CPU_KEYS
                    .iter()
                    .map(|k| cell(md(if i == 0 { k.0 } else { k.1 }), ""))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            s += &format!(
                "| {} | {shown} | {} | {} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} |\n",
                title(what),
                cell(md("viewers"), ""),
                cell(md("rate"), ""),
                cell(md("lost"), ""),
                cell(md("dups"), ""),
                cell(md("ooo"), ""),
                cell(md("gaps"), ""),
                cell(md("p50_ms"), ""),
                cell(md("p99_ms"), ""),
                cell(md("max_ms"), ""),
                list(0),
                // A burst lasts a few 10 ms CPU ticks: its % of a core would be noise.
                if what == "burst" {
                    "– (a burst lasts a few CPU ticks)".to_owned()
                } else {
                    format!("{} / {}", list(1), cell(md("pct_total"), ""))
                },
                cell(md("redis_cmd_rate"), ""),
            );
        }
    }
    s += "\n";
    if all(res, "idle/cluster").next().is_some() {
        let md = |k: &str| med(res, "idle/cluster", k);
        s += &format!(
            "| idle, {} s windows | viewers | Redis clients (`CLIENT LIST`) | Redis commands/s | connections opened in the window | Redis CPU % | front nodes' CPU % |\n|---|---:|---:|---:|---:|---:|---:|\n",
            env.idle_window().as_secs()
        );
        s += &format!(
            "| no viewer | 0 | {} | {} | {} | {} | {} |\n",
            cell(md("clients0"), ""),
            cell(md("cmd_rate0"), ""),
            cell(md("conns0"), ""),
            cell(md("redis_pct0"), ""),
            cell(md("fronts_pct0"), ""),
        );
        s += &format!(
            "| idle viewers on two front nodes | {} | {} | {} | {} | {} | {} |\n\n",
            cell(md("viewers"), ""),
            cell(md("clients1"), ""),
            cell(md("cmd_rate1"), ""),
            cell(md("conns1"), ""),
            cell(md("redis_pct1"), ""),
            cell(md("fronts_pct1"), ""),
        );
    }
    s += "| target | measured (median; ratios per run, then median) | met |\n|---|---|---|\n";
    let mut row = |name: &str, v: Option<bool>, shown: String| {
        let met = match v {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        s += &format!("| {name} | {shown} | {met} |\n");
    };
    let r = ratio(res, "latency/cluster", "latency/single", "p99_ms");
    let complete = |name: &str| all(res, name).all(|m| m.get("lost") == Some(&0.0));
    row(
        "latency: cluster p99 within 2× of single-node (every line delivered)",
        r.map(|r| r <= 2.0 && complete("latency/cluster")),
        format!(
            "{} ({} ms vs {} ms; per run, cluster / single: {}){}",
            cell(r, "×"),
            cell(med(res, "latency/cluster", "p99_ms"), ""),
            cell(med(res, "latency/single", "p99_ms"), ""),
            per_run(res, "latency/cluster", "latency/single", "p99_ms"),
            if complete("latency/cluster") {
                ""
            } else {
                ", but the cluster's viewers lost lines"
            }
        ),
    );
    let r = ratio(res, "burst/cluster", "burst/single", "rate");
    row(
        "burst: cluster ≥ 40 % of single-node lines/s",
        r.map(|r| r >= 0.4),
        format!(
            "{} ({} vs {} lines/s; per run, cluster / single: {})",
            cell(r.map(|r| r * 100.0), " %"),
            cell(med(res, "burst/cluster", "rate"), ""),
            cell(med(res, "burst/single", "rate"), ""),
            per_run(res, "burst/cluster", "burst/single", "rate"),
        ),
    );
    let lost: Vec<f64> = all(res, "burst/cluster")
        .filter_map(|m| m.get("lost").copied())
        .collect();
    row(
        "burst: no line lost (every run)",
        (!lost.is_empty()).then(|| lost.iter().all(|l| *l == 0.0)),
        format!(
            "lost per run: {}",
            lost.iter()
                .map(|l| fmt_num(*l))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let idle: Vec<&Metrics> = all(res, "idle/cluster").collect();
    let pairs = |a: &str, b: &str| -> Vec<(f64, f64)> {
        idle.iter()
            .filter_map(|m| Some((*m.get(a)?, *m.get(b)?)))
            .collect()
    };
    let clients = pairs("clients0", "clients1");
    row(
        "idle: Redis clients the same with 0 and with the idle viewers (every run)",
        (!clients.is_empty()).then(|| clients.iter().all(|(a, b)| a == b)),
        clients
            .iter()
            .map(|(a, b)| format!("{} → {}", fmt_num(*a), fmt_num(*b)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    // The heartbeat-driven commands fall into a window by whole beats: a difference within
    // 20 % (or 1 command/s) is the same rate.
    let rates = pairs("cmd_rate0", "cmd_rate1");
    let same = |(a, b): &(f64, f64)| (b - a).abs() <= (0.2 * a).max(1.0);
    row(
        "idle: Redis command rate the same with 0 and with the idle viewers (within 20 % or 1/s, every run)",
        (!rates.is_empty()).then(|| rates.iter().all(same)),
        rates
            .iter()
            .map(|(a, b)| format!("{:.1} → {:.1}/s", a, b))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if !notes.is_empty() {
        s += "\nFailed cells:\n";
        for n in notes {
            s += &format!("- {n}\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Resp` whose server is the other end of a socket pair, with these replies queued.
    fn canned(replies: &str) -> (Resp, UnixStream) {
        let (ours, mut theirs) = UnixStream::pair().expect("socket pair");
        theirs.write_all(replies.as_bytes()).expect("queue replies");
        let r = BufReader::new(ours.try_clone().expect("clone"));
        (Resp { r, w: ours }, theirs)
    }

    #[test]
    fn replies_are_read() {
        let info = "# Stats\r\ntotal_commands_processed:1234\r\ntotal_connections_received:7\r\n";
        let list = "id=3 addr=/tmp/s:0 cmd=xread\nid=4 addr=/tmp/s:0 cmd=client|list\n";
        let (mut c, mut server) = canned(&format!(
            "+PONG\r\n:42\r\n-ERR no\r\n$-1\r\n${}\r\n{info}\r\n${}\r\n{list}\r\n",
            info.len(),
            list.len()
        ));
        assert_eq!(c.cmd(&["PING"]).as_deref(), Ok("PONG"));
        assert_eq!(c.cmd(&["INCR", "x"]).as_deref(), Ok("42"));
        assert!(c.cmd(&["NOPE"]).is_err());
        assert_eq!(c.cmd(&["GET", "y"]).as_deref(), Ok(""));
        assert_eq!(c.info("stats", "total_commands_processed"), Ok(1234));
        // Itself excluded.
        assert_eq!(c.clients(), Ok(1));
        drop(c);
        let mut sent = String::new();
        server.read_to_string(&mut sent).expect("requests");
        assert!(sent.starts_with("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINCR\r\n$1\r\nx\r\n"));
    }
}
