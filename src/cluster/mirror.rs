//! Mirroring the other nodes' files: one reader per node, whatever the number of viewers.
//!
//! The [`Mirror`] finds the cluster's files in `P:files` (at start, then at every heartbeat),
//! adds each other node's file to the local hub (within `--max-files`), and reads every
//! mirrored stream with one `XREAD BLOCK` on a connection of its own (a blocking read must not
//! hold up the shared, multiplexed one; its response timeout is above the block time). Entries
//! go into the hub with the publisher's seqs ([`Hub::ingest`]), so local transports serve them
//! like local lines and one cursor means the same line on every node. A new file is read from
//! the oldest entry Redis holds, so its backlog is here at once and a cursor finds the lines
//! Redis still has (beyond the local history's bounds, [`super::fill`] reads them back).
//!
//! While Redis cannot be read, the mirrored files say so in their status (`error`), and reading
//! goes on from the last entry read when it is back: nothing Redis still holds is lost.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, MultiplexedConnection};

use super::entry::{parse_read_reply, Entry, EntryId};
use super::{backoff, ClusterConfig, ClusterError, FileRecord, Health, Keys};
use crate::hub::{FileIx, Hub};
use crate::shutdown::Shutdown;
use crate::tail::{FileState, FileStatus};

/// Bytes one read may bring at most (the reply is buffered whole by the client): entries are
/// asked for per stream so that, at their largest, all of them fit.
const READ_BUDGET: usize = 32 << 20;
/// Most ids of files not served that are remembered (a writer in Redis could add any number).
const MAX_REFUSED_REMEMBERED: usize = 10_000;
/// Most entries one read takes per stream.
const READ_COUNT: usize = 256;
/// How far past the last good entry an entry's seq may be and still be a publisher's: more lines
/// than any file gets between two reads, far fewer than the milliseconds since 1970 that the id
/// of an `XADD *` holds.
const PLAUSIBLE_AHEAD: u64 = 1 << 32;

struct Mirrored {
    ix: FileIx,
    key: String,
    /// The newest entry read.
    read: EntryId,
    /// The newest entry read that a publisher could have written (see [`Mirror::discover`]).
    read_valid: EntryId,
    node: String,
    /// A stray entry in its stream was told of (once: it stays until its publisher writes).
    stray_told: bool,
}

/// True for an id a node would give one of its files: `NODE/NAME`, with the record's node
/// (a valid node name) and a name of printable characters, at most 1024 bytes in all.
fn is_cluster_id(id: &str, node: &str) -> bool {
    let Some(name) = id
        .strip_prefix(node)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return false;
    };
    let node_ok = !node.is_empty()
        && node.len() <= 64
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    node_ok && !name.is_empty() && id.len() <= 1024 && !name.chars().any(char::is_control)
}

/// See the module documentation.
pub(super) struct Mirror {
    hub: Hub,
    client: redis::Client,
    conn: ConnectionManager,
    blocking: Option<MultiplexedConnection>,
    keys: Keys,
    node: String,
    block: Duration,
    timeout: Duration,
    retention: Duration,
    max_line: usize,
    files: Vec<Mirrored>,
    by_key: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
    /// Files not mirrored for want of room (`--max-files`), each warned of once.
    refused: HashSet<String>,
    health: Arc<Health>,
    /// Redis could not be read last time (the files were told `unavailable`).
    unreachable: bool,
}

impl Mirror {
    pub(super) async fn new(
        hub: Hub,
        client: redis::Client,
        conn: ConnectionManager,
        keys: Keys,
        config: &ClusterConfig,
        max_line: usize,
        health: Arc<Health>,
    ) -> Result<Mirror, ClusterError> {
        Ok(Mirror {
            hub,
            client,
            conn,
            blocking: None,
            keys,
            node: config.node.clone(),
            block: config.heartbeat,
            timeout: config.timeout,
            retention: config.retention,
            max_line,
            files: Vec::new(),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            refused: HashSet::new(),
            health,
            unreachable: false,
        })
    }

    /// Finds the cluster's files and reads each up to where Redis is.
    pub(super) async fn catch_up(&mut self) -> Result<(), ClusterError> {
        self.discover().await?;
        let deadline = Instant::now() + self.timeout * 2;
        while Instant::now() < deadline {
            if self.read_once(None).await? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Mirrors until `shutdown`.
    pub(super) async fn run(mut self, mut shutdown: Shutdown) {
        let mut failures = 0u32;
        let mut next_discovery = Instant::now() + self.block;
        loop {
            if shutdown.is_fired() {
                return;
            }
            if Instant::now() >= next_discovery {
                next_discovery = Instant::now() + self.block;
                if let Err(e) = self.discover().await {
                    tracing::debug!("cluster file list not read: {e}");
                }
            }
            let step = async {
                if self.files.is_empty() {
                    tokio::time::sleep(self.block).await;
                    Ok(0)
                } else {
                    self.read_once(Some(self.block)).await
                }
            };
            let result = tokio::select! {
                result = step => result,
                _ = shutdown.fired() => return,
            };
            match result {
                Ok(_) => failures = 0,
                Err(e) => {
                    self.health.error();
                    if !self.unreachable {
                        tracing::warn!(
                            "cannot read the cluster's streams: {e}; retrying (other nodes' \
                             files resume where they stopped when Redis is back)"
                        );
                        self.set_reachable(false);
                    }
                    failures = failures.saturating_add(1);
                    self.blocking = None;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(failures)) => {}
                        _ = shutdown.fired() => return,
                    }
                }
            }
        }
    }

    /// Reads `P:files` and the nodes' liveness: new files of other nodes are mirrored, the
    /// known ones' statuses refreshed.
    async fn discover(&mut self) -> Result<(), ClusterError> {
        let records: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.files())
            .query_async(&mut self.conn)
            .await?;
        let mut records: Vec<(String, FileRecord)> = records
            .into_iter()
            .filter_map(|(id, json)| Some((id, serde_json::from_str(&json).ok()?)))
            .filter(|(_, record): &(String, FileRecord)| record.node != self.node)
            .collect();
        records.sort_by(|a, b| a.0.cmp(&b.0));
        let nodes: Vec<String> = records
            .iter()
            .map(|(_, r)| r.node.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut alive = HashSet::new();
        if !nodes.is_empty() {
            let mut pipe = redis::pipe();
            for node in &nodes {
                pipe.cmd("EXISTS").arg(self.keys.node(node));
            }
            let exists: Vec<bool> = pipe.query_async(&mut self.conn).await?;
            alive = nodes
                .into_iter()
                .zip(exists)
                .filter_map(|(node, up)| up.then_some(node))
                .collect();
        }
        // Files of nodes that are not running: those silent for longer than the retention go
        // (record and stream, whichever node sees it first); a new one is served only if its
        // stream holds something (a record alone, of a node that died before its first line
        // or written by anything else, would take a slot here for nothing).
        let now = crate::hub::unix_ms_now();
        let retention = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
        let mut expired = HashMap::new();
        let mut unmirrored = Vec::new();
        for (id, record) in &records {
            if alive.contains(&record.node) || self.refused.contains(id) {
                continue;
            }
            let silent_for = now.saturating_sub(record.beat_ms);
            let is_expired = retention > 0 && record.beat_ms > 0 && silent_for > retention;
            if self.by_id.contains_key(id) {
                if is_expired {
                    expired.insert(id.clone(), record.node.clone());
                }
            } else {
                unmirrored.push((id.clone(), record.node.clone(), is_expired));
            }
        }
        // A file not mirrored here yet: served if its stream has lines and it has not expired;
        // an expired one whose stream is still there is removed (once: then it has none).
        let mut empty = HashSet::new();
        if !unmirrored.is_empty() {
            let mut pipe = redis::pipe();
            for (id, _, _) in &unmirrored {
                pipe.cmd("EXISTS").arg(self.keys.lines(id));
            }
            let exists: Vec<bool> = pipe.query_async(&mut self.conn).await?;
            for ((id, node, is_expired), exists) in unmirrored.into_iter().zip(exists) {
                match (is_expired, exists) {
                    (true, true) => {
                        expired.insert(id, node);
                    }
                    (false, true) => {}
                    (_, false) => {
                        empty.insert(id);
                    }
                }
            }
        }
        if !expired.is_empty() {
            self.forget(&expired).await?;
        }
        for (id, record) in records {
            if expired.contains_key(&id) || empty.contains(&id) {
                continue;
            }
            let ix = match self.by_id.get(&id) {
                Some(&known) => {
                    let file = &mut self.files[known];
                    // Read past an entry no publisher wrote, beyond the file's numbering (an
                    // `XADD ... *` from elsewhere): the file's next entries have lower ids, so
                    // reading goes back to the last good one (the publisher removes the stray).
                    if file.read != file.read_valid && file.read.seq > record.last_seq {
                        if !file.stray_told {
                            tracing::warn!(
                                file = id.as_str(),
                                "the stream holds an entry ({}) beyond the file's numbering, \
                                 which no publisher writes: reading again after {} (its \
                                 publisher removes it when it next writes)",
                                file.read,
                                file.read_valid
                            );
                            file.stray_told = true;
                        }
                        file.read = file.read_valid;
                    }
                    file.ix
                }
                None => match self.add(&id, &record) {
                    Some(ix) => ix,
                    None => continue,
                },
            };
            let error = if alive.contains(&record.node) {
                record.error.clone()
            } else {
                Some(format!(
                    "node {} is offline (no heartbeat): what it published stays readable",
                    record.node
                ))
            };
            self.hub.set_status(
                ix,
                FileStatus {
                    exists: record.exists,
                    size: record.size,
                    error,
                },
            );
        }
        Ok(())
    }

    /// Removes the streams of files whose node has been silent for longer than
    /// `--redis-retention` (each only if its node is still not running, in one script, so a
    /// node coming back meanwhile keeps what it writes), and stops reading them (their slots
    /// here stay, saying why). The records stay: their newest seq is where a returning node's
    /// numbering goes on, so no seq ever names two lines.
    async fn forget(&mut self, ids: &HashMap<String, String>) -> Result<(), ClusterError> {
        const UNLINK_IF_GONE: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
             return redis.call('UNLINK', KEYS[2])";
        let ids: Vec<(&String, &String)> = ids.iter().collect();
        let mut pipe = redis::pipe();
        for (id, node) in &ids {
            pipe.cmd("EVAL")
                .arg(UNLINK_IF_GONE)
                .arg(2)
                .arg(self.keys.node(node))
                .arg(self.keys.lines(id));
        }
        let removed: Vec<i64> = pipe.query_async(&mut self.conn).await?;
        // Only those the script removed: a node that came back meanwhile keeps its file.
        let gone_ids: HashSet<&str> = ids
            .iter()
            .zip(removed)
            .filter_map(|((id, _), removed)| (removed > 0).then_some(id.as_str()))
            .collect();
        let retention = humantime::format_duration(self.retention);
        for id in &gone_ids {
            tracing::info!(
                file = id,
                "lines removed from Redis: the file's node has been silent for longer than \
                 --redis-retention ({retention})"
            );
        }
        let hub = self.hub.clone();
        let (gone, kept): (Vec<Mirrored>, Vec<Mirrored>) = std::mem::take(&mut self.files)
            .into_iter()
            .partition(|file| gone_ids.contains(hub.id(file.ix)));
        self.files = kept;
        for file in gone {
            self.hub.set_status(
                file.ix,
                FileStatus {
                    exists: false,
                    size: 0,
                    error: Some(format!(
                        "node {} has been offline for longer than --redis-retention \
                         ({retention}): its lines were removed from Redis",
                        file.node
                    )),
                },
            );
        }
        self.by_key.clear();
        self.by_id.clear();
        for (slot, file) in self.files.iter().enumerate() {
            self.by_key.insert(file.key.clone(), slot);
            self.by_id.insert(self.hub.id(file.ix).to_owned(), slot);
        }
        Ok(())
    }

    /// Remembers a file not served, so that it is warned of once (at most
    /// [`MAX_REFUSED_REMEMBERED`] of them: past that, a refused file is looked at again at each
    /// discovery, which costs a lookup, not memory).
    fn refuse(&mut self, id: &str) {
        if self.refused.len() < MAX_REFUSED_REMEMBERED {
            self.refused.insert(id.to_owned());
        }
    }

    /// Starts mirroring another node's file, from the oldest entry Redis holds of it.
    fn add(&mut self, id: &str, record: &FileRecord) -> Option<FileIx> {
        if self.refused.contains(id) {
            return None;
        }
        if !is_cluster_id(id, &record.node) {
            // Only a node writes its records; anything else in the hash is not served.
            tracing::warn!(
                "`{}` in the cluster's file list is not an id of node `{}`: not served",
                id.escape_debug(),
                record.node.escape_debug()
            );
            self.refuse(id);
            return None;
        }
        let added = self.hub.add_remote_file(
            id.to_owned(),
            record.path.clone().into(),
            record.node.clone(),
        );
        // A file served before and removed after the retention has its slot still.
        let again = || self.hub.lookup(id).filter(|&ix| self.hub.is_remote(ix));
        let Some(ix) = added.or_else(again) else {
            if self.refused.is_empty() {
                tracing::warn!(
                    "{id} (node {}) is not served here: --max-files is reached; raise it to \
                     serve more of the cluster's files",
                    record.node
                );
            }
            self.refuse(id);
            return None;
        };
        let key = self.keys.lines(id);
        let slot = self.files.len();
        self.by_key.insert(key.clone(), slot);
        self.by_id.insert(id.to_owned(), slot);
        self.files.push(Mirrored {
            ix,
            key,
            // Everything Redis holds of it (the history keeps what its bounds allow).
            read: EntryId::default(),
            read_valid: EntryId::default(),
            node: record.node.clone(),
            stray_told: false,
        });
        tracing::info!(file = id, node = record.node, "cluster file served");
        Some(ix)
    }

    /// One `XREAD` of every mirrored stream (blocking up to `block` when given); returns how
    /// many entries it ingested.
    async fn read_once(&mut self, block: Option<Duration>) -> Result<usize, ClusterError> {
        if self.files.is_empty() {
            return Ok(0);
        }
        if self.blocking.is_none() {
            let config = redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(self.block + self.timeout))
                .set_connection_timeout(Some(self.timeout));
            self.blocking = Some(
                self.client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            );
        }
        let Some(conn) = self.blocking.as_mut() else {
            return Ok(0);
        };
        // An entry holds at most `publish::READ_BYTES` of lines, or one line at the length cap.
        let largest_entry = super::publish::READ_BYTES.max(self.max_line) + 4096;
        let count = (READ_BUDGET / (largest_entry * self.files.len())).clamp(1, READ_COUNT);
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS");
        for file in &self.files {
            cmd.arg(&file.key);
        }
        for file in &self.files {
            cmd.arg(file.read.to_string());
        }
        let reply: redis::Value = cmd.query_async(conn).await?;
        if self.unreachable {
            // Before what was missed, so readers see it after the `available`.
            tracing::info!("the cluster's Redis is read again");
            self.set_reachable(true);
        }
        // What to store, in order; stored on a blocking thread, since storing waits (bounded)
        // for the viewers that keep up, as reading a file does.
        let mut batch = Vec::new();
        for (key, entries) in parse_read_reply(&reply, self.max_line) {
            let Some(&slot) = self.by_key.get(&key) else {
                continue;
            };
            let file = &mut self.files[slot];
            for (id, entry) in entries {
                if id <= file.read {
                    continue;
                }
                file.read = id;
                // Far beyond the numbering (the time-based id of an `XADD *`): not a publisher's,
                // whatever its fields say.
                let plausible = id.seq <= file.read_valid.seq.saturating_add(PLAUSIBLE_AHEAD);
                if let Some(entry) = entry.filter(|_| plausible) {
                    file.read_valid = id;
                    batch.push((file.ix, entry));
                }
            }
        }
        let ingested = batch.len();
        self.health
            .stats
            .entries_mirrored
            .fetch_add(ingested as u64, Relaxed);
        let hub = self.hub.clone();
        let stored = tokio::task::spawn_blocking(move || {
            for (ix, entry) in batch {
                match entry {
                    Entry::Lines {
                        first_seq,
                        time_ms,
                        lines,
                    } => hub.ingest(ix, first_seq, time_ms, lines),
                    Entry::State(state) => hub.set_state(ix, state),
                }
            }
        });
        let _ = stored.await;
        Ok(ingested)
    }

    /// Tells the mirrored files' readers whether Redis can be read: a state change in order
    /// with the lines (`unavailable`, `available`) and the reason in the file's status.
    fn set_reachable(&mut self, reachable: bool) {
        self.unreachable = !reachable;
        let state = if reachable {
            FileState::Available
        } else {
            FileState::Unavailable
        };
        self.health.mirror(!reachable);
        for file in &self.files {
            self.hub.set_state(file.ix, state);
            let info = self.hub.info(file.ix);
            let error = (!reachable).then(|| {
                format!(
                    "the cluster's Redis cannot be reached: lines of node {} resume when it is back",
                    file.node
                )
            });
            self.hub.set_status(
                file.ix,
                FileStatus {
                    exists: info.exists,
                    size: info.size,
                    error,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_nodes_own_ids_are_served() {
        assert!(is_cluster_id("web1/app.log", "web1"));
        assert!(is_cluster_id("web1/nginx/access.log", "web1"));
        assert!(!is_cluster_id("web2/app.log", "web1"));
        assert!(!is_cluster_id("web1app.log", "web1"));
        assert!(!is_cluster_id("web1/", "web1"));
        assert!(!is_cluster_id("web1/a\u{1b}[2Jb", "web1"));
        assert!(!is_cluster_id("../x/app.log", "../x"));
        assert!(!is_cluster_id(
            &format!("web1/{}", "x".repeat(2000)),
            "web1"
        ));
    }
}
