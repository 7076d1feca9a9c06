//! What every client and the orchestrator share: the clock, the line format, per-connection
//! counters and a mergeable latency histogram (the Node client for frontail implements the same
//! bucket scheme, see `bench/frontail/client.js`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the host (Node's
/// `process.hrtime.bigint()` reads the same clock).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec on the stack.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Bytes per line written, newline included, unless [`LINE_BYTES_ENV`] says otherwise.
pub const LINE_BYTES: usize = 100;

/// The environment variable that sets the line size (`suite --line-bytes N` sets it; the client
/// processes it starts inherit it, so that writer and clients agree).
pub const LINE_BYTES_ENV: &str = "TAILCAST_BENCH_LINE_BYTES";

/// Bytes per workload line, newline included: [`LINE_BYTES`], or what [`LINE_BYTES_ENV`] says
/// (at least 40, room for the seq and the send time).
pub fn line_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| {
        std::env::var(LINE_BYTES_ENV)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(LINE_BYTES, |n| n.max(40))
    })
}

/// Appends one workload line, `SEQ SEND_TIME_NS padding\n`, exactly [`line_bytes`] long.
pub fn format_line(out: &mut Vec<u8>, seq: u64, send_ns: u64) {
    use std::io::Write;
    let start = out.len();
    let _ = write!(out, "{seq} {send_ns} ");
    let used = out.len() - start;
    out.resize(start + line_bytes().max(used + 1) - 1, b'x');
    out.push(b'\n');
}

/// `(seq, send_ns)` of a workload line, if it is one.
pub fn parse_line(line: &[u8]) -> Option<(u64, u64)> {
    let mut it = line.splitn(3, |b| *b == b' ');
    let seq = parse_u64(it.next()?)?;
    let ns = parse_u64(it.next()?)?;
    Some((seq, ns))
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Latency histogram in microseconds: exact below 1024 µs, then 512 sub-buckets per power of two
/// (≤ 0.2 % error). Sparse, so an idle connection costs nothing.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Hist {
    /// bucket index → count
    pub b: HashMap<u32, u64>,
}

pub fn bucket_of(us: u64) -> u32 {
    if us < 1024 {
        return us as u32;
    }
    let e = 63 - us.leading_zeros() as u64; // ≥ 10
    let sub = (us >> (e - 9)) & 511;
    (1024 + (e - 10) * 512 + sub) as u32
}

pub fn bucket_value(idx: u32) -> u64 {
    if idx < 1024 {
        return u64::from(idx);
    }
    let e = u64::from(idx - 1024) / 512 + 10;
    let sub = u64::from(idx - 1024) % 512;
    (512 + sub) << (e - 9)
}

impl Hist {
    pub fn record_ns(&mut self, ns: u64) {
        *self.b.entry(bucket_of(ns / 1000)).or_insert(0) += 1;
    }
    pub fn merge(&mut self, other: &Hist) {
        for (k, v) in &other.b {
            *self.b.entry(*k).or_insert(0) += v;
        }
    }
    pub fn count(&self) -> u64 {
        self.b.values().sum()
    }
    /// The q-quantile in microseconds (bucket lower bound), None when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let mut keys: Vec<_> = self.b.iter().collect();
        keys.sort_by_key(|(k, _)| **k);
        let want = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut acc = 0;
        for (k, v) in keys {
            acc += v;
            if acc >= want {
                return Some(bucket_value(*k));
            }
        }
        None
    }
    pub fn max_us(&self) -> Option<u64> {
        self.b.keys().max().map(|k| bucket_value(*k))
    }
}

/// What one connection saw.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ConnStats {
    /// Workload lines received (with duplicates).
    pub received: u64,
    /// Distinct workload seqs received.
    pub distinct: u64,
    /// Lines whose seq was already received.
    pub dups: u64,
    /// Lines whose seq is lower than one received before.
    pub out_of_order: u64,
    /// Lines that are not workload lines.
    pub bad: u64,
    /// Workload lines whose content is not what the writer wrote (length or padding).
    #[serde(default)]
    pub corrupt: u64,
    /// `gap` messages.
    pub gaps: u64,
    /// Lines the gap messages said were lost (by server seq).
    pub gap_lines: u64,
    pub first_recv_ns: u64,
    pub last_recv_ns: u64,
    pub max_seq: u64,
    /// Reconnections (soak), each resumed with `after`.
    #[serde(default)]
    pub reconnects: u64,
    /// Connection failed or was closed early.
    pub error: Option<String>,
    #[serde(skip)]
    pub seen: Vec<u64>,
    #[serde(skip)]
    pub hist: Hist,
}

impl ConnStats {
    /// Counts one received line.
    pub fn line(&mut self, line: &[u8], recv_ns: u64) {
        let Some((seq, send_ns)) = parse_line(line) else {
            self.bad += 1;
            return;
        };
        self.received += 1;
        if line.len() != line_bytes() - 1 || line.last() != Some(&b'x') {
            self.corrupt += 1;
        }
        if self.first_recv_ns == 0 {
            self.first_recv_ns = recv_ns;
        }
        self.last_recv_ns = recv_ns;
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize((word + 1).next_power_of_two().max(64), 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.dups += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.distinct += 1;
        if seq < self.max_seq {
            self.out_of_order += 1;
        } else {
            self.max_seq = seq;
        }
        self.hist.record_ns(recv_ns.saturating_sub(send_ns));
    }
}

/// One client process's answer, printed as `RESULT {json}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ClientReport {
    pub conns: Vec<ConnStats>,
    pub hist: Hist,
    /// CPU seconds (user+system) the client process used.
    pub cpu_s: f64,
    pub connect_failures: u64,
}

/// User+system CPU seconds of this process.
pub fn self_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises the soft open-files limit to the hard one.
pub fn raise_nofile() -> u64 {
    // SAFETY: plain libc calls on a stack struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        lim.rlim_cur
    }
}

/// Tiny `--key value` argument reader.
pub struct Args(pub Vec<String>);

impl Args {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == key)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }
    pub fn flag(&self, key: &str) -> bool {
        self.0.iter().any(|a| a == key)
    }
    pub fn num(&self, key: &str, default: u64) -> u64 {
        self.get(key)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{key}: not a number: {v}"))
            })
            .unwrap_or(default)
    }
    pub fn f64(&self, key: &str, default: f64) -> f64 {
        self.get(key)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{key}: not a number: {v}"))
            })
            .unwrap_or(default)
    }
    pub fn str(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_roundtrip() {
        let mut v = Vec::new();
        format_line(&mut v, 123, 456789);
        assert_eq!(v.len(), LINE_BYTES);
        assert_eq!(parse_line(&v[..v.len() - 1]), Some((123, 456789)));
    }

    #[test]
    fn buckets() {
        for us in [0, 1, 1023, 1024, 1500, 99_999, 1_300_000, 60_000_000] {
            let v = bucket_value(bucket_of(us));
            assert!(v <= us && us - v <= us / 256, "{us} -> {v}");
        }
    }
}
