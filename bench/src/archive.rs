//! `tailcast-bench archive`: searching and paging a big file on disk (issue 16), against
//! ripgrep on the same file in the same run.
//!
//! Makes (once, kept in `--work`) a log of `--size-mib` MiB (default 1024) of varied lines with a
//! few rare ones, and a gzip generation beside it; warms the page cache; then, per run and
//! alternating: `rg -n PATTERN` into a pipe vs tailcast's `/api/search?...&format=text&
//! line_number=1` (same hits, counted), for a literal and a regex with few hits, and for the
//! gzip generation vs `zcat | rg -n`; tailcast's RSS growth over the searches; 200 pages at
//! random offsets; and the p99 latency of live lines to 10 WebSocket clients (1 000 lines/s on
//! another file) without and with searches running. Prints a Markdown table and writes
//! `archive.json` in the work directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::Args;
use crate::procs::{rss_kib, start_tailcast, write_lines, ClientProc, RssSampler};

/// A literal and a regex, each with few hits.
const LITERAL: &str = "needle-7";
const REGEX: &str = r"ERROR\s+upstream\s+\w+\s+needle-\d*3\b";

pub fn archive_main(args: Args) {
    let size_mib = args.num("--size-mib", 1024);
    let runs = args.num("--runs", 5) as usize;
    let work = PathBuf::from(args.str("--work", "bench/target/archive-work"));
    let tailcast = PathBuf::from(args.str("--tailcast", "target/release/tailcast"));
    let me = std::env::current_exe().expect("own path");
    std::fs::create_dir_all(&work).expect("work dir");
    let log = work.join("app.log");
    let gz = work.join("app.log.1.gz");
    let live = work.join("live.log");
    make_log(&log, size_mib << 20, 0);
    if !gz.exists() {
        let plain = work.join("app.log.1");
        make_log(&plain, (size_mib / 4).max(1) << 20, 1);
        let status = Command::new("gzip")
            .arg("-6")
            .arg(&plain)
            .status()
            .expect("gzip");
        assert!(status.success(), "gzip failed");
    }
    std::fs::write(&live, b"").expect("live log");
    eprintln!("archive: warming the page cache");
    for path in [&log, &gz] {
        let mut sink = vec![0u8; 1 << 20];
        let mut f = std::fs::File::open(path).expect("open");
        while f.read(&mut sink).unwrap_or(0) > 0 {}
    }
    let server_log = work.join("tailcast.stderr");
    let extra = vec![
        "--search-timeout".to_owned(),
        "300s".to_owned(),
        "--search-max-hits".to_owned(),
        "1000000".to_owned(),
        live.display().to_string(),
    ];
    let (mut srv, port) = start_tailcast(&tailcast, &log, &extra, &server_log);
    srv.record_tree();
    let pids = srv.pids.clone();
    let gens = get(port, "/api/generations?file=app.log").1;
    let gens: serde_json::Value = serde_json::from_str(&gens).expect("generations JSON");
    let gz_key = gens["generations"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["compressed"] == true))
        .and_then(|g| g["gen"].as_str())
        .expect("the gzip generation is listed")
        .to_owned();

    let mut results = serde_json::Map::new();
    let mut table = vec![
        "| | rg (median) | tailcast (median) | ratio (median of runs) | hits |".to_owned(),
        "|---|---:|---:|---:|---:|".to_owned(),
    ];
    let rss_before = rss_kib(&pids);
    let sampler = RssSampler::start(pids.clone());
    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "literal, 1 GiB",
            vec![
                "-n".into(),
                "-F".into(),
                LITERAL.into(),
                log.display().to_string(),
            ],
            format!(
                "/api/search?file=app.log&q={}&format=text&line_number=1&max=1000000",
                enc(LITERAL)
            ),
        ),
        (
            "regex, 1 GiB",
            vec!["-n".into(), REGEX.into(), log.display().to_string()],
            format!(
                "/api/search?file=app.log&q={}&regex=1&format=text&line_number=1&max=1000000",
                enc(REGEX)
            ),
        ),
    ];
    for (name, rg_args, path) in &cases {
        let (rg, ours, ratios, hits) =
            compare(runs, || rg_pipe(rg_args), || timed_search(port, path));
        table.push(format!(
            "| {name} | {rg:.3} s | {ours:.3} s | {ratios:.2}x | {hits} |"
        ));
        // rg maps a big file, as tailcast does (archive/mapped.rs); rg's read path too, to
        // compare with what a copy from the page cache costs.
        let mut no_mmap = vec!["--no-mmap".to_owned()];
        no_mmap.extend(rg_args.iter().cloned());
        let (rg_read, ours_again, ratio_read, _) =
            compare(runs, || rg_pipe(&no_mmap), || timed_search(port, path));
        table.push(format!(
            "| {name}, vs `rg --no-mmap` | {rg_read:.3} s | {ours_again:.3} s | {ratio_read:.2}x | {hits} |"
        ));
        results.insert(
            name.to_string(),
            serde_json::json!({"rg_s": rg, "tailcast_s": ours, "ratio": ratios, "hits": hits,
                "rg_no_mmap_s": rg_read, "ratio_no_mmap": ratio_read}),
        );
    }
    let gz_path = format!(
        "/api/search?file=app.log&gen={gz_key}&q={}&format=text&line_number=1&max=1000000",
        enc(LITERAL)
    );
    let gz_file = gz.display().to_string();
    let (rg, ours, ratio, hits) = compare(
        runs,
        || zcat_rg(&gz_file, LITERAL),
        || timed_search(port, &gz_path),
    );
    table.push(format!("| gzip generation, literal | {rg:.3} s (zcat \\| rg) | {ours:.3} s | {ratio:.2}x | {hits} |"));
    results.insert(
        "gzip".into(),
        serde_json::json!({"zcat_rg_s": rg, "tailcast_s": ours, "ratio": ratio, "hits": hits}),
    );
    let peak = sampler.finish();
    let growth = peak.saturating_sub(rss_before) as f64 / 1024.0;
    results.insert("rss_growth_mib".into(), growth.into());

    // Pages at random offsets (xorshift: the same offsets every run).
    let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(1);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut times = Vec::new();
    for _ in 0..200 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let offset = state % size;
        let t = Instant::now();
        let (status, body) = get(
            port,
            &format!("/api/page?file=app.log&before={offset}&max=100"),
        );
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200, "page: {body}");
    }
    times.sort_by(f64::total_cmp);
    let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    results.insert("page_p50_ms".into(), p50.into());
    results.insert("page_p99_ms".into(), p99.into());

    // Live lines while searches run.
    let quiet = live_p99(&me, port, &live, 1, None);
    let busy = live_p99(&me, port, &live, 5001, Some(&cases[1].2));
    results.insert("live_p99_ms_quiet".into(), quiet.into());
    results.insert("live_p99_ms_searching".into(), busy.into());
    srv.stop();

    println!("\n### Search and pages on disk ({size_mib} MiB, page cache warm, {runs} runs)\n");
    for row in &table {
        println!("{row}");
    }
    println!("\n| | figure |\n|---|---:|");
    println!("| server RSS growth over the searches | {growth:.1} MiB |");
    println!("| page of 100 lines at a random offset: p50 / p99 | {p50:.2} ms / {p99:.2} ms |");
    println!("| live p99 to 10 WebSocket clients at 1 000 lines/s: quiet / while searching | {quiet:.2} ms / {busy:.2} ms |");
    let json = serde_json::Value::Object(results);
    let _ = std::fs::write(
        work.join("archive.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    );
}

/// Runs `runs` alternating pairs; medians of each side and of the per-run ratios, and the hits
/// (which must agree).
fn compare(
    runs: usize,
    mut anchor: impl FnMut() -> (f64, usize),
    mut ours: impl FnMut() -> (f64, usize),
) -> (f64, f64, f64, usize) {
    let (mut a, mut o, mut r) = (Vec::new(), Vec::new(), Vec::new());
    let mut hits = 0;
    for _ in 0..runs {
        let (ta, ha) = anchor();
        let (to, ho) = ours();
        assert_eq!(ha, ho, "tailcast and the anchor disagree on the hits");
        hits = ho;
        a.push(ta);
        o.push(to);
        r.push(to / ta);
    }
    (median(a), median(o), median(r), hits)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `rg ARGS` into a pipe we read (rg stops at the first hit when its output is /dev/null).
fn rg_pipe(args: &[String]) -> (f64, usize) {
    let mut cmd = Command::new("rg");
    cmd.args(args);
    timed_lines(cmd)
}

/// `zcat FILE | rg -n -F PATTERN`.
fn zcat_rg(file: &str, pattern: &str) -> (f64, usize) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("zcat '{file}' | rg -n -F '{pattern}'"));
    timed_lines(cmd)
}

/// How long `cmd` takes to write everything into a pipe read here, and the lines it wrote.
fn timed_lines(mut cmd: Command) -> (f64, usize) {
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("rg (Debian: apt-get install ripgrep) and zcat");
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("read");
    child.wait().expect("wait");
    (
        t.elapsed().as_secs_f64(),
        out.iter().filter(|b| **b == b'\n').count(),
    )
}

/// A search's time to its last byte, and its hits (lines of the text answer).
fn timed_search(port: u16, path: &str) -> (f64, usize) {
    let t = Instant::now();
    let (status, body) = get(port, path);
    assert_eq!(status, 200, "{path}: {body}");
    let hits = body
        .lines()
        .filter(|l| !l.starts_with("tailcast: "))
        .count();
    (t.elapsed().as_secs_f64(), hits)
}

/// GET with HTTP/1.1 chunked or sized bodies, decoded: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut w = s.try_clone().expect("clone");
    write!(
        w,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
        {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).expect("chunk size");
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).expect("chunk");
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut body).expect("body");
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// p99 (ms) of 5 000 lines at 1 000 lines/s to 10 WebSocket clients of `live`, with `search`
/// run over and over meanwhile when given.
fn live_p99(me: &Path, port: u16, live: &Path, first: u64, search: Option<&str>) -> f64 {
    let n = 5000;
    let mut cmd = Command::new(me);
    cmd.arg("ws")
        .args([
            "--file",
            "live.log",
            "--port",
            &port.to_string(),
            "--conns",
            "10",
        ])
        .args([
            "--expected",
            &n.to_string(),
            "--idle",
            "5",
            "--deadline",
            "60",
        ]);
    let client = ClientProc::spawn(cmd);
    client
        .wait_ready(Duration::from_secs(30))
        .expect("clients ready");
    std::thread::sleep(Duration::from_millis(300));
    let stop = Arc::new(AtomicBool::new(false));
    let searcher = search.map(|path| {
        let (stop, path) = (stop.clone(), path.to_owned());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                timed_search(port, &path);
            }
        })
    });
    write_lines(live, first, n, 1000);
    let report = client
        .wait_result(Duration::from_secs(90))
        .expect("client report");
    stop.store(true, Relaxed);
    if let Some(t) = searcher {
        let _ = t.join();
    }
    report.hist.quantile_us(0.99).unwrap_or(0) as f64 / 1000.0
}

/// Writes `bytes` of log lines to `path` (kept if already that size): varied request lines, and
/// every 997 001st an `ERROR upstream timeout needle-N` line.
fn make_log(path: &Path, bytes: u64, seed: u64) {
    if std::fs::metadata(path).is_ok_and(|m| m.len() >= bytes) {
        return;
    }
    eprintln!("archive: writing {} MiB to {}", bytes >> 20, path.display());
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    let paths = [
        "/api/items",
        "/api/users",
        "/health",
        "/static/app.js",
        "/api/orders/search",
    ];
    let levels = ["INFO ", "INFO ", "INFO ", "DEBUG", "WARN "];
    let mut written = 0u64;
    let mut n = seed * 1_000_000_007;
    let mut line = String::with_capacity(200);
    while written < bytes {
        line.clear();
        let s = n % 86_400;
        if n % 997_001 == 500_000 {
            use std::fmt::Write as _;
            let _ = writeln!(
                line,
                "2026-12-01T{:02}:{:02}:{:02}.{:03}Z ERROR upstream timeout needle-{} after 30000ms",
                s / 3600, s / 60 % 60, s % 60, n % 1000, n % 100
            );
        } else {
            use std::fmt::Write as _;
            let _ = writeln!(
                line,
                "2026-12-01T{:02}:{:02}:{:02}.{:03}Z {} req={:x} GET {}/{} status=200 {}ms ua=curl/8.5.0",
                s / 3600, s / 60 % 60, s % 60, n % 1000, levels[(n % 5) as usize], n * 2_654_435_761 % (1 << 32),
                paths[(n % 5) as usize], n % 9973, n % 250
            );
        }
        out.write_all(line.as_bytes()).expect("write");
        written += line.len() as u64;
        n += 1;
    }
    out.flush().expect("flush");
}
