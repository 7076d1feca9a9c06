//! Soak test (issue 7), started by `bench/soak.sh DURATION`.
//!
//! tailcast follows a temp log that a writer appends to steadily and rotates (rename + create)
//! every few seconds, writing on to the old descriptor for a moment first, as applications do
//! until they reopen their log. 50 WebSocket clients reconnect at random and resume with
//! `after` = the last seq they got; a few long-poll followers loop with `after` = `last_seq`.
//! Every client is connected before the first line, so each must end with every line written:
//! the report gives per client the lines delivered, lost, duplicated, out of order and corrupt
//! (by the seq and content of each line), and the server's RSS at start, after warm-up and at
//! the end.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{format_line, now_ns, Args, ClientReport, ConnStats};
use crate::procs::*;

pub fn soak_main(args: Args) {
    install_signal_cleanup();
    let duration = Duration::from_secs_f64(args.f64("--seconds", 120.0));
    let rate = args.num("--rate", 500);
    let rotate_every = Duration::from_secs_f64(args.f64("--rotate-every", 5.0));
    let ws_conns = args.num("--ws", 50);
    let pollers = args.num("--pollers", 3);
    let reconnect_ms = args.num("--reconnect-ms", 3000);
    let tailcast = args.str("--tailcast", "target/release/tailcast");
    let me = std::env::current_exe().expect("own path");
    let work = std::env::temp_dir().join(format!("tailcast-soak-{}", std::process::id()));
    let file = fresh_log(&work, "soak");
    let log = work.join("server.log");
    let mut extra: Vec<String> = vec!["--max-connections".into(), "20000".into()];
    if let Some(e) = args.get("--server-args") {
        extra.extend(e.split_whitespace().map(str::to_owned));
    }
    let (mut srv, port) = start_tailcast(Path::new(&tailcast), &file, &extra, &log);
    println!(
        "soak: tailcast on 127.0.0.1:{port} following {}",
        file.display()
    );
    if let Some(p) = args.get("--port-file") {
        let _ = std::fs::write(p, port.to_string());
    }
    let deadline = (duration.as_secs_f64() + 120.0).to_string();
    let mut ws = Command::new(&me);
    ws.args(["ws", "--file", "bench.log", "--hold"])
        .args([
            "--port",
            &port.to_string(),
            "--conns",
            &ws_conns.to_string(),
        ])
        .args([
            "--reconnect-ms",
            &reconnect_ms.to_string(),
            "--deadline",
            &deadline,
        ]);
    let mut ws = ClientProc::spawn(ws);
    let mut poll = Command::new(&me);
    poll.args([
        "poll",
        "--file",
        "bench.log",
        "--follow",
        "--hold",
        "--after",
        "0",
    ])
    .args(["--timeout", "30", "--expected", "0"])
    .args(["--port", &port.to_string(), "--conns", &pollers.to_string()])
    .args(["--deadline", &deadline]);
    let mut poll = ClientProc::spawn(poll);
    for c in [&ws, &poll] {
        if let Err(e) = c.wait_ready(Duration::from_secs(60)) {
            eprintln!("soak: {e}");
            std::process::exit(1);
        }
    }
    wait_stat(port, "subscriptions", ws_conns, Duration::from_secs(30));
    // The shell's curl loop (soak.sh) waits for this file before it starts.
    if let Some(p) = args.get("--ready-file") {
        let _ = std::fs::write(p, "ready");
        std::thread::sleep(Duration::from_millis(500));
    }
    let pids = srv.pids.clone();
    let rss_start = rss_kib(&pids);
    let cpu0 = cpu_s(&pids);
    println!(
        "soak: {ws_conns} WebSocket clients (reconnecting every ~{} s), {pollers} long-poll followers; \
         writing {rate} lines/s for {:.0} s, rotating every {:.0} s",
        reconnect_ms as f64 / 1000.0,
        duration.as_secs_f64(),
        rotate_every.as_secs_f64()
    );

    // The writer, with rotation, on this thread; RSS samples along the way.
    let warm_at = Instant::now() + (duration / 5).min(Duration::from_secs(60));
    let mut rss_warm = None;
    let sampler = RssSampler::start(pids.clone());
    let start = Instant::now();
    let t0 = now_ns();
    let period = 1e9 / rate as f64;
    let mut out = open_append(&file);
    let mut next_rotate = start + rotate_every;
    // After a rename, keep writing to the old descriptor until this moment, then reopen.
    let mut reopen_at: Option<Instant> = None;
    let mut rotations = 0u64;
    let mut seq = 0u64;
    let mut buf = Vec::with_capacity(128);
    let mut last_report = Instant::now();
    while start.elapsed() < duration {
        seq += 1;
        let at = t0 + ((seq - 1) as f64 * period) as u64;
        let now = now_ns();
        if at > now {
            std::thread::sleep(Duration::from_nanos(at - now));
        }
        if Instant::now() >= next_rotate {
            let rotated = file.with_extension("log.1");
            let _ = std::fs::remove_file(&rotated);
            std::fs::rename(&file, &rotated).expect("rotate: rename");
            reopen_at = Some(Instant::now() + Duration::from_millis(300));
            next_rotate += rotate_every;
            rotations += 1;
        }
        if reopen_at.is_some_and(|t| Instant::now() >= t) {
            out = open_append(&file);
            reopen_at = None;
        }
        buf.clear();
        format_line(&mut buf, seq, now_ns());
        out.write_all(&buf).expect("write");
        if rss_warm.is_none() && Instant::now() >= warm_at {
            rss_warm = Some(rss_kib(&pids));
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            println!(
                "soak: {:.0} s, {seq} lines, server RSS {:.1} MiB",
                start.elapsed().as_secs_f64(),
                rss_kib(&pids) as f64 / 1024.0
            );
        }
    }
    if reopen_at.is_some() {
        // The last rotation's new file was never created: create it so the follower settles.
        let _ = open_append(&file);
    }
    let written = seq;
    // Let every client catch up (a client in the middle of a reconnect needs a moment).
    let drain_until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < drain_until {
        std::thread::sleep(Duration::from_millis(500));
        if tailcast_stats(port)["lines_in"].as_u64().unwrap_or(0) >= written {
            std::thread::sleep(Duration::from_secs(5));
            break;
        }
    }
    let rss_end = rss_kib(&pids);
    let peak = sampler.finish().max(hwm_kib(&pids));
    let cpu = cpu_s(&pids) - cpu0;
    let stats = tailcast_stats(port);
    ws.close_stdin();
    poll.close_stdin();
    let ws_rep = ws.wait_result(Duration::from_secs(60));
    let poll_rep = poll.wait_result(Duration::from_secs(60));
    srv.stop();
    let _ = std::fs::remove_dir_all(&work);

    println!(
        "soak: wrote {written} lines in {:.0} s with {rotations} rotations",
        duration.as_secs_f64()
    );
    println!(
        "soak: server RSS start {:.1} MiB, after warm-up {:.1} MiB, end {:.1} MiB, peak {:.1} MiB; CPU {:.1} s ({:.1} % of a core)",
        rss_start as f64 / 1024.0,
        rss_warm.unwrap_or(0) as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        peak as f64 / 1024.0,
        cpu,
        100.0 * cpu / duration.as_secs_f64()
    );
    println!("soak: server stats at end: {stats}");
    let mut bad = false;
    for (name, rep) in [("websocket", ws_rep), ("long-poll", poll_rep)] {
        match rep {
            Ok(rep) => bad |= summarize(name, &rep, written),
            Err(e) => {
                println!("soak: {name}: {e}");
                bad = true;
            }
        }
    }
    println!(
        "soak: {}",
        if bad {
            "FAILED: lines lost, duplicated or corrupt"
        } else {
            "OK: every client got every line once, in order"
        }
    );
    if let Some(p) = args.get("--written-file") {
        let _ = std::fs::write(p, written.to_string());
    }
    std::process::exit(i32::from(bad));
}

fn open_append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log")
}

/// Prints per-client figures; true when something was lost, duplicated or corrupt.
fn summarize(name: &str, rep: &ClientReport, written: u64) -> bool {
    let conns: &[ConnStats] = &rep.conns;
    let lost: Vec<u64> = conns
        .iter()
        .map(|c| written.saturating_sub(c.distinct))
        .collect();
    let sum = |f: &dyn Fn(&ConnStats) -> u64| conns.iter().map(f).sum::<u64>();
    println!(
        "soak: {name}: {} clients ({} reconnections); delivered {} lines in all (min {} per client); lost {} (clients with loss: {}); duplicated {}; out of order {}; corrupt {}; gap messages {}; client errors {}; p99 latency {} ms; client CPU {:.1} s",
        conns.len(),
        sum(&|c| c.reconnects),
        sum(&|c| c.distinct),
        conns.iter().map(|c| c.distinct).min().unwrap_or(0),
        lost.iter().sum::<u64>(),
        lost.iter().filter(|l| **l > 0).count(),
        sum(&|c| c.dups),
        sum(&|c| c.out_of_order),
        sum(&|c| c.corrupt + c.bad),
        sum(&|c| c.gaps),
        conns.iter().filter(|c| c.error.is_some()).count(),
        rep.hist.quantile_us(0.99).map(|v| format!("{:.1}", v as f64 / 1000.0)).unwrap_or("–".into()),
        rep.cpu_s,
    );
    for (i, c) in conns.iter().enumerate() {
        if lost[i] > 0 || c.dups > 0 || c.corrupt > 0 || c.out_of_order > 0 {
            println!(
                "soak:   {name} client {i}: delivered {}, lost {}, dup {}, out of order {}, corrupt {}, gaps {} ({} lines), error {:?}",
                c.distinct, lost[i], c.dups, c.out_of_order, c.corrupt, c.gaps, c.gap_lines, c.error
            );
        }
    }
    lost.iter().any(|l| *l > 0) || sum(&|c| c.dups + c.corrupt + c.bad + c.out_of_order) > 0
}
