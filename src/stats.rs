//! Counters operators and tests read at `GET /api/stats`.
//!
//! Plain atomics, updated where things happen; [`Stats::snapshot`] gives a serializable copy.
//! Connection and held-poll counts double as the limits' admission control ([`Slot`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use serde::Serialize;

/// The live counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// WebSocket clients connected now.
    pub ws_clients: AtomicUsize,
    /// Long-poll requests held now.
    pub polls_waiting: AtomicUsize,
    /// SSE and `/follow` streams open now.
    pub stream_clients: AtomicUsize,
    /// File subscriptions of WebSocket clients now.
    pub subscriptions: AtomicUsize,
    /// Lines read from files.
    pub lines_in: AtomicU64,
    /// Bytes of lines read (with their newlines).
    pub bytes_in: AtomicU64,
    /// Bytes sent to clients (WebSocket messages, stream chunks).
    pub bytes_out: AtomicU64,
    /// Rotations seen.
    pub rotations: AtomicU64,
    /// Files live globs and directories found but did not follow (`--max-files` reached).
    pub files_refused: AtomicU64,
    /// Truncations seen.
    pub truncations: AtomicU64,
    /// Messages sent to WebSocket clients.
    pub frames_out: AtomicU64,
    /// Gap messages or poll answers with a gap.
    pub gaps: AtomicU64,
    /// Clients closed for being too slow, stuck or silent.
    pub drops: AtomicU64,
    /// Long-poll answers given.
    pub polls_answered: AtomicU64,
    /// Searches of files on disk started.
    pub searches: AtomicU64,
    /// Searches refused because `--max-searches` were running.
    pub searches_refused: AtomicU64,
    /// Bytes searches read (decompressed).
    pub search_bytes: AtomicU64,
    /// Pages of lines read back from disk.
    pub pages: AtomicU64,
    /// In a cluster: what is wrong with it (Redis unreachable, ...), `None` while all is well.
    pub cluster_trouble: std::sync::Mutex<Option<String>>,
    /// In a cluster: Redis commands that failed (each retried).
    pub redis_errors: AtomicU64,
    /// In a cluster: stream entries written into Redis (batches and state changes).
    pub entries_published: AtomicU64,
    /// In a cluster: stream entries of other nodes' files read from Redis.
    pub entries_mirrored: AtomicU64,
}

impl Stats {
    /// Records what is wrong with the cluster (`None`: nothing).
    pub fn set_cluster_trouble(&self, trouble: Option<String>) {
        *self
            .cluster_trouble
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = trouble;
    }

    /// What is wrong with the cluster, if anything.
    pub fn cluster_trouble(&self) -> Option<String> {
        self.cluster_trouble
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A copy of the counters.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq, Clone, Copy)]
pub struct StatsSnapshot {
    /// WebSocket clients connected now.
    pub ws_clients: usize,
    /// Long-poll requests held now.
    pub polls_waiting: usize,
    /// SSE and `/follow` streams open now.
    pub stream_clients: usize,
    /// File subscriptions now.
    pub subscriptions: usize,
    /// Lines read from files.
    pub lines_in: u64,
    /// Messages sent to WebSocket clients.
    pub frames_out: u64,
    /// Gaps reported.
    pub gaps: u64,
    /// Clients dropped.
    pub drops: u64,
    /// Long-poll answers given.
    pub polls_answered: u64,
}

impl Stats {
    /// A copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            ws_clients: self.ws_clients.load(Relaxed),
            polls_waiting: self.polls_waiting.load(Relaxed),
            stream_clients: self.stream_clients.load(Relaxed),
            subscriptions: self.subscriptions.load(Relaxed),
            lines_in: self.lines_in.load(Relaxed),
            frames_out: self.frames_out.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            drops: self.drops.load(Relaxed),
            polls_answered: self.polls_answered.load(Relaxed),
        }
    }
}

/// Which gauge a [`Slot`] holds a place in.
#[derive(Debug, Clone, Copy)]
pub enum Gauge {
    /// `ws_clients`.
    WsClients,
    /// `polls_waiting`.
    PollsWaiting,
    /// `stream_clients`.
    StreamClients,
}

/// A place in a bounded gauge, given back on drop.
#[derive(Debug)]
pub struct Slot {
    stats: Arc<Stats>,
    gauge: Gauge,
}

fn counter(stats: &Stats, gauge: Gauge) -> &AtomicUsize {
    match gauge {
        Gauge::WsClients => &stats.ws_clients,
        Gauge::PollsWaiting => &stats.polls_waiting,
        Gauge::StreamClients => &stats.stream_clients,
    }
}

impl Slot {
    /// Takes a place if fewer than `limit` are taken. WebSocket and stream clients share one
    /// limit (`--max-connections`): each is one long-lived connection.
    pub fn acquire(stats: &Arc<Stats>, gauge: Gauge, limit: usize) -> Option<Slot> {
        let sharing = match gauge {
            Gauge::WsClients => Some(&stats.stream_clients),
            Gauge::StreamClients => Some(&stats.ws_clients),
            Gauge::PollsWaiting => None,
        };
        counter(stats, gauge)
            .fetch_update(Relaxed, Relaxed, |n| {
                let others = sharing.map_or(0, |other| other.load(Relaxed));
                (n + others < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot {
                stats: stats.clone(),
                gauge,
            })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        counter(&self.stats, self.gauge).fetch_sub(1, Relaxed);
    }
}
