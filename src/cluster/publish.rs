//! Publishing a node's own files into the cluster, and its heartbeat.
//!
//! A [`Publisher`] per local file reads the file's history like any viewer and writes what it
//! reads as stream entries, one pipelined round trip per read, each `XADD` trimming the stream
//! by seq. So during a burst it paces the tailer like a viewer that keeps up (the file is the
//! buffer, and Redis gets every line); a Redis that stalls holds the file's reading up no more
//! than a slow viewer can (one `--pace-timeout` at a time, a tenth of the time at most), and the
//! publisher, left behind, catches up from the history. While Redis cannot be written the publisher keeps what it
//! read and retries with backoff; when Redis is back it first asks the stream's newest id (a
//! write may have landed before the connection broke, and Redis may have lost everything), then
//! writes what Redis lacks, and catches up from the history: what the history no longer holds
//! is the gap other nodes see. The [`Heartbeat`] keeps the node's liveness key and its files'
//! records, and puts the cluster's epoch back if Redis lost it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::Notify;

use super::entry::{Entry, EntryId};
use super::{backoff, ClusterConfig, FileRecord, Health, Keys};
use crate::hub::{Delivery, FileIx, Hub, LiveCursor, Start};
use crate::shutdown::Shutdown;
use crate::tail::LineBatch;

/// Most lines and bytes of lines in one read of the history: one read is one pipelined round
/// trip, so that one entry stays small and so does each write. Not more per write: the
/// publisher is a reader that paces the tailer, and a longer write lets the tailer wait out its
/// `--pace-timeout` in a burst and pass the publisher (with 4 MiB per round trip, one benchmark
/// burst in three lost 18 350 lines on the way to Redis).
const READ_LINES: usize = super::entry::MAX_ENTRY_LINES;
pub(super) const READ_BYTES: usize = super::entry::MAX_ENTRY_TEXT;

/// One local file's publisher; see the module documentation.
pub(super) struct Publisher {
    hub: Hub,
    file: FileIx,
    key: String,
    conn: ConnectionManager,
    keep_lines: usize,
    keep_bytes: usize,
    /// The newest entry Redis has (as far as this publisher knows).
    written: EntryId,
    /// (seq of the last line, bytes) of the entries written by this run, oldest first: the
    /// byte bound's trim point.
    sizes: VecDeque<(u64, usize)>,
    sizes_total: usize,
    health: Arc<Health>,
}

impl Publisher {
    /// A publisher of `file` into stream `key`, whose newest entry in Redis is `published`.
    pub(super) fn new(
        hub: Hub,
        file: FileIx,
        key: String,
        conn: ConnectionManager,
        config: &ClusterConfig,
        published: EntryId,
        health: Arc<Health>,
    ) -> Self {
        Publisher {
            hub,
            file,
            key,
            conn,
            keep_lines: config.keep_lines,
            keep_bytes: config.keep_bytes,
            written: published,
            sizes: VecDeque::new(),
            sizes_total: 0,
            health,
        }
    }

    /// Publishes until `shutdown`.
    pub(super) async fn run(mut self, mut shutdown: Shutdown) {
        let wake = Arc::new(Notify::new());
        let from = self.written.seq.min(self.hub.last_seq(self.file));
        let Ok(mut cursor) = self
            .hub
            .subscribe(self.file, Start::After(from), wake.clone())
        else {
            return;
        };
        let mut failures = 0u32;
        let mut stray_told = false;
        let mut unsent: Vec<(EntryId, Entry)> = Vec::new();
        loop {
            if unsent.is_empty() {
                if !cursor.has_news() {
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = shutdown.fired() => return,
                    }
                }
                unsent = self.entries(&mut cursor);
            }
            unsent.retain(|(id, _)| *id > self.written);
            if unsent.is_empty() {
                continue;
            }
            match self.write(&unsent).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(file = self.hub.id(self.file), "Redis is written again");
                        self.health.publisher(false);
                    }
                    failures = 0;
                    self.health
                        .stats
                        .entries_published
                        .fetch_add(unsent.len() as u64, Relaxed);
                    unsent.clear();
                }
                Err(e) => {
                    self.health.error();
                    if failures == 0 {
                        self.health.publisher(true);
                        tracing::warn!(
                            file = self.hub.id(self.file),
                            "cannot publish to Redis: {e}; retrying (the file is still served \
                             here, and Redis catches up from the history when it is back)"
                        );
                    }
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(failures)) => {}
                        _ = shutdown.fired() => break,
                    }
                    // Some of it may have landed, or Redis may have lost everything.
                    if let Ok(last) = last_id(&mut self.conn, &self.key).await {
                        let head = self.hub.last_seq(self.file);
                        if last.seq <= head {
                            self.written = last;
                        } else {
                            // Not ours: taking it as written would drop every line to come.
                            // The stream is this file's, so what lies beyond its numbering goes.
                            match remove_strays(&mut self.conn, &self.key, head).await {
                                Ok((removed, top)) => {
                                    tracing::warn!(
                                        "{} held {removed} entries beyond this file's newest \
                                         line (the first {last}), which no publisher writes: \
                                         something else writes into the stream; removed them",
                                        self.key
                                    );
                                    self.written = top;
                                }
                                Err(e) if !stray_told => {
                                    tracing::error!(
                                        "{} holds an entry ({last}) beyond this file's newest \
                                         line, and it cannot be removed ({e}): delete it (XDEL, \
                                         then XSETID to the newest entry left) for publishing \
                                         to go on",
                                        self.key
                                    );
                                    stray_told = true;
                                }
                                Err(_) => {}
                            }
                        }
                    }
                }
            }
        }
    }

    /// What the cursor has, as entries with their ids.
    fn entries(&mut self, cursor: &mut LiveCursor) -> Vec<(EntryId, Entry)> {
        let mut entries = Vec::new();
        let head = cursor.next_seq() - 1;
        // State changes after the same line as one written before number on from it.
        let mut last = if self.written.seq == head && self.written.sub != u64::MAX {
            self.written
        } else {
            EntryId { seq: head, sub: 0 }
        };
        for delivery in cursor.read(READ_LINES, READ_BYTES) {
            Self::add_entry(delivery, &mut last, &mut entries);
        }
        entries
    }

    /// Adds what `delivery` is as an entry (numbered on from `last`).
    fn add_entry(delivery: Delivery, last: &mut EntryId, entries: &mut Vec<(EntryId, Entry)>) {
        match delivery {
            Delivery::Lines(slice) => {
                let mut lines = LineBatch::default();
                lines.reserve(slice.text_bytes());
                let truncated: Vec<u64> = slice.truncated_seqs().collect();
                for (ix, line) in slice.lines().enumerate() {
                    let seq = slice.first_seq() + ix as u64;
                    lines.push(line, truncated.binary_search(&seq).is_ok());
                }
                *last = EntryId {
                    seq: slice.first_seq() + slice.len() as u64 - 1,
                    sub: 0,
                };
                entries.push((
                    *last,
                    Entry::Lines {
                        first_seq: slice.first_seq(),
                        time_ms: slice.time_ms(),
                        lines,
                    },
                ));
            }
            Delivery::State(state) => {
                *last = EntryId {
                    seq: last.seq,
                    sub: last.sub + 1,
                };
                entries.push((*last, Entry::State(state)));
            }
            // Lines the history lost before they were written: readers on other nodes are
            // told of the gap by the next entry's first seq.
            Delivery::Gap(gap) => {
                *last = EntryId {
                    seq: gap.to,
                    sub: 0,
                };
            }
            Delivery::Pending { .. } => {}
        }
    }

    /// Writes `entries` in one pipelined round trip.
    async fn write(&mut self, entries: &[(EntryId, Entry)]) -> Result<(), redis::RedisError> {
        let mut pipe = redis::pipe();
        for (id, entry) in entries {
            let fields = entry.fields();
            if let Entry::Lines { lines, .. } = entry {
                let bytes = lines.text_bytes() + lines.len() + 64;
                self.sizes.push_back((id.seq, bytes));
                self.sizes_total += bytes;
            }
            while self.sizes_total > self.keep_bytes && self.sizes.len() > 1 {
                if let Some((_, bytes)) = self.sizes.pop_front() {
                    self.sizes_total -= bytes;
                }
            }
            // Keep the lines after `min_seq - 1` by both bounds: ids below `min_seq-0` go.
            let by_lines = id.seq.saturating_sub(self.keep_lines as u64) + 1;
            let by_bytes = self.sizes.front().map_or(0, |(seq, _)| *seq);
            let min_seq = by_lines.max(by_bytes);
            let cmd = pipe
                .cmd("XADD")
                .arg(&self.key)
                .arg("MINID")
                .arg("~")
                .arg(format!("{min_seq}-0"))
                .arg(id.to_string());
            for (name, value) in fields {
                cmd.arg(name).arg(value);
            }
            cmd.ignore();
        }
        pipe.query_async::<()>(&mut self.conn).await?;
        if let Some((last, _)) = entries.last() {
            self.written = *last;
        }
        Ok(())
    }
}

/// Publishes `local` files (each with the seq Redis holds up to), and every local file added
/// later (live globs and directories), until `shutdown`.
pub(super) async fn publish_all(
    hub: Hub,
    conn: ConnectionManager,
    keys: Keys,
    config: ClusterConfig,
    local: Vec<(FileIx, EntryId)>,
    health: Arc<Health>,
    mut shutdown: Shutdown,
) {
    let mut files = hub.watch_files();
    let mut known = hub.file_count();
    let mut tasks = Vec::new();
    let for_tasks = shutdown.clone();
    let start = |file: FileIx, published: Option<EntryId>| {
        let key = keys.lines(hub.id(file));
        let hub = hub.clone();
        let mut conn = conn.clone();
        let config = config.clone();
        let health = health.clone();
        let shutdown = for_tasks.clone();
        tokio::spawn(async move {
            let published = match published {
                Some(seq) => seq,
                // A file found after start may have been published by an earlier run.
                None => {
                    let mut failures = 0;
                    loop {
                        match last_id(&mut conn, &key).await {
                            Ok(last) => break last,
                            Err(_) if shutdown.is_fired() => return,
                            Err(_) => {
                                failures += 1;
                                tokio::time::sleep(backoff(failures)).await;
                            }
                        }
                    }
                }
            };
            Publisher::new(hub, file, key, conn, &config, published, health)
                .run(shutdown)
                .await;
        })
    };
    for (file, published) in local {
        tasks.push(start(file, Some(published)));
    }
    loop {
        tokio::select! {
            changed = files.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = shutdown.fired() => break,
        }
        let count = hub.file_count();
        for file in known..count {
            if !hub.is_remote(file) {
                tasks.push(start(file, None));
            }
        }
        known = count;
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// The newest id of a stream (0-0 when it has none).
pub(super) async fn last_id(
    conn: &mut ConnectionManager,
    key: &str,
) -> Result<EntryId, redis::RedisError> {
    let reply: redis::Value = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(super::entry::parse_entries(&reply, 1)
        .first()
        .map_or_else(super::nothing, |(id, _)| *id))
}

/// Removes the entries of stream `key` beyond line `head` (none is a publisher's: its ids name
/// its own lines), then sets the stream's last id back to the newest entry left, so that the
/// publisher's next entries are taken again. Returns how many went, and that newest entry.
async fn remove_strays(
    conn: &mut ConnectionManager,
    key: &str,
    head: u64,
) -> Result<(usize, EntryId), redis::RedisError> {
    let mut removed = 0;
    // Bounded: another writer could go on adding.
    for _ in 0..100 {
        let reply: redis::Value = redis::cmd("XRANGE")
            .arg(key)
            .arg(format!("{}-0", head + 1))
            .arg("+")
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        let ids: Vec<String> = super::entry::parse_entries(&reply, 1)
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect();
        if ids.is_empty() {
            break;
        }
        redis::cmd("XDEL")
            .arg(key)
            .arg(&ids)
            .query_async::<()>(conn)
            .await?;
        removed += ids.len();
    }
    let top = last_id(conn, key).await?;
    if top.seq > head {
        // Still written into meanwhile, or more than this removes at once: try again later.
        return Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "entries beyond the file's numbering are still being added",
        )));
    }
    redis::cmd("XSETID")
        .arg(key)
        .arg(top.to_string())
        .query_async::<()>(conn)
        .await?;
    Ok((removed, top))
}

/// The node's liveness key and its files' records; see the module documentation.
pub(super) struct Heartbeat {
    pub(super) hub: Hub,
    pub(super) conn: ConnectionManager,
    pub(super) keys: Keys,
    pub(super) node: String,
    pub(super) epoch: u64,
    pub(super) every: Duration,
    pub(super) health: Arc<Health>,
    /// This run of the node, and its beats so far: the liveness key's value changes at every
    /// beat, so a node starting with the same name can tell a live one from an expiring key.
    pub(super) instance: String,
    pub(super) beats: std::sync::atomic::AtomicU64,
}

impl Heartbeat {
    /// Beats until `shutdown`, then removes the liveness key (the node is offline at once).
    pub(super) async fn run(mut self, mut shutdown: Shutdown) {
        let mut failures = 0u32;
        loop {
            let wait = if failures == 0 {
                self.every
            } else {
                backoff(failures).min(self.every)
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.fired() => break,
            }
            match self.beat().await {
                Ok(()) => {
                    if failures > 0 {
                        self.health.heartbeat(false);
                    }
                    failures = 0;
                }
                Err(e) => {
                    self.health.error();
                    if failures == 0 {
                        tracing::warn!("cannot reach Redis for the heartbeat: {e}; retrying");
                        self.health.heartbeat(true);
                    }
                    failures = failures.saturating_add(1);
                }
            }
        }
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(self.keys.node(&self.node))
            .query_async(&mut self.conn)
            .await;
    }

    /// One beat: the epoch put back if Redis lost it, the liveness key, the files' records.
    pub(super) async fn beat(&self) -> Result<(), super::ClusterError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.keys.epoch())
            .arg(self.epoch)
            .arg("NX")
            .ignore();
        let ttl = u64::try_from(self.every.as_millis() * 3).unwrap_or(u64::MAX);
        let beat = self.beats.fetch_add(1, Relaxed);
        pipe.cmd("SET")
            .arg(self.keys.node(&self.node))
            .arg(format!("{} {beat}", self.instance))
            .arg("PX")
            .arg(ttl.max(1))
            .ignore();
        for file in self.hub.files().into_iter().filter(|f| !f.remote) {
            let record = FileRecord {
                node: self.node.clone(),
                path: file.path,
                exists: file.exists,
                size: file.size,
                last_seq: file.last_seq,
                error: file.error,
                beat_ms: crate::hub::unix_ms_now(),
            };
            let json = serde_json::to_string(&record).unwrap_or_default();
            pipe.cmd("HSET")
                .arg(self.keys.files())
                .arg(&file.id)
                .arg(json)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }
}
