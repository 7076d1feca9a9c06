//! The demo behind `tailcast` with no PATH: the sample logs, copied to a temp dir, keep growing.
//!
//! The three samples (an nginx access log, a JSON application log, a syslog) are embedded in the
//! binary, so the demo works from any directory. A writer thread appends a few realistic lines at
//! random intervals until the [`Demo`] is dropped, which also removes the temp dir.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SAMPLES: [(&str, &str); 3] = [
    ("access.log", include_str!("../sample-logs/access.log")),
    ("app.jsonl", include_str!("../sample-logs/app.jsonl")),
    ("syslog", include_str!("../sample-logs/syslog")),
];

/// The running demo.
pub struct Demo {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    writer: Option<JoinHandle<()>>,
}

impl Demo {
    /// Copies the samples to a fresh temp dir and starts appending to them.
    pub fn start() -> std::io::Result<Demo> {
        let dir = std::env::temp_dir().join(format!("tailcast-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        for (name, content) in SAMPLES {
            std::fs::write(dir.join(name), content)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread_dir = dir.clone();
        let writer = std::thread::Builder::new()
            .name("demo writer".into())
            .spawn(move || write_forever(&thread_dir, &thread_stop))?;
        Ok(Demo {
            dir,
            stop,
            writer: Some(writer),
        })
    }

    /// The demo files, as command-line paths.
    pub fn paths(&self) -> Vec<String> {
        SAMPLES
            .iter()
            .map(|(name, _)| self.dir.join(name).display().to_string())
            .collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A small xorshift generator: the demo needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn write_forever(dir: &std::path::Path, stop: &AtomicBool) {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut rng = Rng(seed);
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(80 + rng.below(400)));
        let which = rng.below(3) as usize;
        let lines = 1 + rng.below(3);
        let mut text = String::new();
        for _ in 0..lines {
            text.push_str(&match which {
                0 => access_line(&mut rng),
                1 => json_line(&mut rng),
                _ => syslog_line(&mut rng),
            });
            text.push('\n');
        }
        let path = dir.join(SAMPLES[which].0);
        if let Ok(mut file) = OpenOptions::new().append(true).create(true).open(path) {
            let _ = file.write_all(text.as_bytes());
        }
    }
}

fn now_parts() -> (u64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs(), u64::from(now.subsec_millis()))
}

/// (year, month, day, hour, minute, second) in UTC from Unix seconds.
fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn access_line(rng: &mut Rng) -> String {
    let (secs, _) = now_parts();
    let (y, mo, d, h, mi, s) = civil(secs);
    let ip = rng.pick(&["203.0.113.7", "198.51.100.23", "192.0.2.144", "10.1.4.17"]);
    let (method, path) = match rng.below(8) {
        0 => ("POST", "/api/v1/orders"),
        1 => ("GET", "/api/v1/orders/4821"),
        2 => ("GET", "/static/app.js"),
        3 => ("GET", "/api/v1/search?q=lamp"),
        4 => ("GET", "/healthz"),
        5 => ("GET", "/login"),
        _ => ("GET", "/"),
    };
    let status = [200, 200, 200, 200, 304, 404, 500, 302][rng.below(8) as usize];
    let agent = rng.pick(&[
        "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
        "curl/8.10.1",
        "kube-probe/1.31",
    ]);
    format!(
        "{ip} - - [{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000] \"{method} {path} HTTP/1.1\" {status} {} \"-\" \"{agent}\"",
        MONTHS[(mo - 1) as usize],
        120 + rng.below(48_000)
    )
}

fn json_line(rng: &mut Rng) -> String {
    let (secs, ms) = now_parts();
    let (y, mo, d, h, mi, s) = civil(secs);
    let (level, msg, extra) = match rng.below(6) {
        0 => (
            "warn",
            "slow query",
            format!("\"ms\":{},\"table\":\"orders\"", 300 + rng.below(900)),
        ),
        1 => (
            "error",
            "payment provider timeout",
            "\"provider\":\"acme-pay\",\"attempt\":2".to_owned(),
        ),
        2 => (
            "debug",
            "cache hit",
            format!("\"key\":\"user:{}\"", rng.below(9999)),
        ),
        _ => (
            "info",
            "request handled",
            format!(
                "\"route\":\"/api/v1/orders\",\"status\":200,\"ms\":{}",
                rng.below(120)
            ),
        ),
    };
    format!(
        "{{\"ts\":\"{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z\",\"level\":\"{level}\",\"msg\":\"{msg}\",\"service\":\"checkout\",\"trace_id\":\"{:016x}\",{extra}}}",
        rng.next()
    )
}

fn syslog_line(rng: &mut Rng) -> String {
    let (secs, _) = now_parts();
    let (_, mo, d, h, mi, s) = civil(secs);
    let pid = 900 + rng.below(8000);
    let body = match rng.below(5) {
        0 => format!(
            "sshd[{pid}]: Accepted publickey for deploy from 198.51.100.23 port {} ssh2",
            30_000 + rng.below(30_000)
        ),
        1 => format!("CRON[{pid}]: (root) CMD (run-parts /etc/cron.hourly)"),
        2 => format!(
            "systemd[1]: Started session-{0}.scope - Session {0} of User deploy.",
            rng.below(999)
        ),
        3 => format!(
            "kernel: [UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.144 DST=10.1.4.2 PROTO=TCP SPT={} DPT=22",
            30_000 + rng.below(30_000)
        ),
        _ => format!(
            "nginx[{pid}]: worker process {} exited on signal 9",
            pid + 1
        ),
    };
    format!(
        "{} {d:>2} {h:02}:{mi:02}:{s:02} web-01 {body}",
        MONTHS[(mo - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::civil;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        // 2026-11-24T05:00:00Z
        assert_eq!(civil(1_795_496_400), (2026, 11, 24, 5, 0, 0));
    }
}
