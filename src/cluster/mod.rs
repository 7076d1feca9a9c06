//! The cluster: every node serves every file of every host, through Redis Streams.
//!
//! A node with PATHs **publishes** them ([`publish`]): a reader of each local file's history,
//! like a viewer, writes its batches, pipelined, into one stream per file,
//! trimmed by seq (`MINID ~`) to `--redis-history` lines and `--redis-history-bytes`. A
//! heartbeat writes the node's liveness key (with a TTL) and each file's record. Every node
//! **mirrors** the other nodes' files ([`mirror`]): one reader on a connection of its own
//! (`XREAD BLOCK` on every stream it follows) ingests their entries, with the publisher's seqs,
//! into the local history, from which every transport reads as it does for local files. So
//! Redis sees a constant number of clients and commands per node, whatever the viewers.
//!
//! A reader whose cursor is older than what this node holds of another node's file gets the
//! lines Redis still has ([`fill`]), so only what Redis lacks too is a gap.
//!
//! **Numbering**: a file's seqs are its publisher's, and the stream ids carry them
//! ([`entry`]), so one cursor means the same line on every node. The epoch every node announces
//! is the cluster's (`PREFIX:epoch`, set once by the first node). A publisher's seqs never go
//! back: without a checkpoint (`--state-dir`) of the same epoch, its numbering goes on after the
//! last seq Redis holds for the file. Redis losing its data (a restart without persistence,
//! `FLUSHALL`) loses only what it held: the numbering lives with the publishers, which write on
//! and re-register their files at the next heartbeat; nodes put the epoch back.
//!
//! Keys (all under `--redis-prefix`, `P`): `P:epoch`, `P:files` (a hash: file id to its record,
//! JSON), `P:node:NAME` (liveness, with a TTL of three heartbeats), `P:lines:ID` (the stream).

pub mod entry;
mod fill;
mod mirror;
mod publish;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::hub::{FileIx, Hub};
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use entry::EntryId;

/// How a node joins its cluster (from `--redis` and the options beside it).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://` or `rediss://` URL.
    pub url: String,
    /// The password, from `--redis-password-file` (else any in the URL).
    pub password: Option<String>,
    /// This node's name.
    pub node: String,
    /// Prefix of every key.
    pub prefix: String,
    /// Lines kept in Redis per file.
    pub keep_lines: usize,
    /// Bytes of lines kept in Redis per file.
    pub keep_bytes: usize,
    /// Liveness and file records are written this often; the mirror's `BLOCK` is this long.
    pub heartbeat: Duration,
    /// Longest a Redis command may take.
    pub timeout: Duration,
    /// A node silent this long has its files removed from Redis (zero: never).
    pub retention: Duration,
}

impl ClusterConfig {
    /// Checks the node name, the prefix and the URL's scheme; the error says what to change.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !name_ok(&self.node) {
            return Err(format!(
                "--node `{}`: a node name is 1 to 64 letters, digits, `.`, `-` or `_` (it starts \
                 the ids of this node's files)",
                self.node
            ));
        }
        if !name_ok(&self.prefix) {
            return Err(format!(
                "--redis-prefix `{}`: use 1 to 64 letters, digits, `.`, `-` or `_`",
                self.prefix
            ));
        }
        let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
        if !schemes.iter().any(|scheme| self.url.starts_with(scheme)) {
            return Err(
                "--redis: give a URL like redis://127.0.0.1:6379 (rediss:// for TLS, \
                 redis+unix:///run/redis.sock for a Unix socket)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The cluster-wide id of this node's file `local`: `NODE/local`.
    pub fn file_id(&self, local: &str) -> String {
        format!("{}/{local}", self.node)
    }

    /// The URL with the password of `--redis-password-file` in it, for the client.
    fn connection_info(&self) -> Result<redis::ConnectionInfo, ClusterError> {
        use redis::IntoConnectionInfo;
        let info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| ClusterError::Url(e.to_string()))?;
        let Some(password) = &self.password else {
            return Ok(info);
        };
        let settings = info.redis_settings().clone().set_password(password.clone());
        Ok(info.set_redis_settings(settings))
    }
}

/// The host name (the default `--node`), or `node` when it cannot be read.
pub fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "node".into()
    } else {
        name
    }
}

/// What can go wrong joining or talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `--redis` is not a URL the client takes.
    #[error("--redis is not a Redis URL ({0}): write it like redis://127.0.0.1:6379")]
    Url(String),
    /// Redis cannot be reached or refused a command.
    #[error(
        "cannot reach Redis at {url}: {reason}; start it, or check --redis (and the password)"
    )]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why (in the message, so not a `source` as well: it would be printed twice).
        reason: redis::RedisError,
    },
    /// Redis answered a command with an error.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Another running node has this node's name.
    #[error("another node named `{0}` is running in this cluster (its heartbeat goes on): give this one another --node")]
    NameTaken(String),
}

/// The names of the cluster's keys.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    fn files(&self) -> String {
        format!("{}:files", self.prefix)
    }

    fn node(&self, name: &str) -> String {
        format!("{}:node:{name}", self.prefix)
    }

    fn lines(&self, file_id: &str) -> String {
        format!("{}:lines:{file_id}", self.prefix)
    }
}

/// A file's record in `P:files`, written by its publisher at every heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct FileRecord {
    /// The publishing node.
    node: String,
    /// The path on that node.
    path: String,
    exists: bool,
    size: u64,
    last_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// When the publisher wrote the record (unix ms; 0 in records of older versions).
    #[serde(default)]
    beat_ms: u64,
}

/// A node's connection to its cluster, made at start.
pub struct Cluster {
    config: ClusterConfig,
    client: redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    epoch: u64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.config.node)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl Cluster {
    /// Connects, and learns the cluster's epoch (setting it to `mine` when there is none yet).
    pub async fn join(config: ClusterConfig, mine: u64) -> Result<Cluster, ClusterError> {
        let shown_url = redact(&config.url);
        let connect = |reason| ClusterError::Connect {
            url: shown_url.clone(),
            reason,
        };
        let client = redis::Client::open(config.connection_info()?).map_err(connect)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.timeout))
            .set_connection_timeout(Some(config.timeout))
            .set_max_delay(Duration::from_secs(5));
        let mut conn = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(connect)?;
        let keys = Keys {
            prefix: config.prefix.clone(),
        };
        let epoch = claim_epoch(&mut conn, &keys, mine).await.map_err(connect)?;
        name_is_free(&mut conn, &keys.node(&config.node), &config.node).await?;
        Ok(Cluster {
            config,
            client,
            conn,
            keys,
            epoch,
        })
    }

    /// The cluster's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// How far the cluster has each of these files: its stream's newest id, or the newest seq
    /// its record names when that is further (Redis lost the stream, not the record the
    /// heartbeat put back), `0-0` for a file it has never had. A publisher's numbering goes on
    /// after it, so no seq the cluster has seen names another line.
    pub async fn last_seqs(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, EntryId>, ClusterError> {
        let mut conn = self.conn.clone();
        let mut heads = HashMap::new();
        for id in ids {
            let last = publish::last_id(&mut conn, &self.keys.lines(id)).await?;
            let record: Option<String> = redis::cmd("HGET")
                .arg(self.keys.files())
                .arg(id)
                .query_async(&mut conn)
                .await?;
            let recorded = record
                .and_then(|json| serde_json::from_str::<FileRecord>(&json).ok())
                .map_or(0, |r| r.last_seq);
            let head = if recorded > last.seq {
                EntryId {
                    seq: recorded,
                    sub: 0,
                }
            } else {
                last
            };
            heads.insert(id.clone(), head);
        }
        Ok(heads)
    }

    /// Starts publishing `local` files (each with the seq Redis holds up to), mirroring every
    /// other node's files, and the heartbeat; they stop at `shutdown`. Returns once the files
    /// the cluster had are mirrored up to where Redis is, so a cursor from another node is
    /// known here before the first client comes.
    pub async fn start(
        self,
        hub: Hub,
        local: Vec<(FileIx, EntryId)>,
        max_line: usize,
        stats: Arc<Stats>,
        shutdown: Shutdown,
    ) -> Result<ClusterTasks, ClusterError> {
        let health = Arc::new(Health::new(stats));
        // Readers of other nodes' files get from Redis what this node's history no longer has.
        hub.set_gap_fill(Arc::new(fill::RedisFill::new(
            self.conn.clone(),
            self.keys.clone(),
            max_line,
            self.config.timeout,
        )));
        let mut tasks = vec![tokio::spawn(publish::publish_all(
            hub.clone(),
            self.conn.clone(),
            self.keys.clone(),
            self.config.clone(),
            local,
            health.clone(),
            shutdown.clone(),
        ))];
        let heartbeat = publish::Heartbeat {
            hub: hub.clone(),
            conn: self.conn.clone(),
            keys: self.keys.clone(),
            node: self.config.node.clone(),
            epoch: self.epoch,
            every: self.config.heartbeat,
            health: health.clone(),
            instance: format!("{}-{}", std::process::id(), crate::state::fresh_epoch()),
            beats: AtomicU64::new(0),
        };
        heartbeat.beat().await?;
        tasks.push(tokio::spawn(heartbeat.run(shutdown.clone())));
        let mut mirror = mirror::Mirror::new(
            hub,
            self.client.clone(),
            self.conn.clone(),
            self.keys.clone(),
            &self.config,
            max_line,
            health,
        )
        .await?;
        mirror.catch_up().await?;
        tasks.push(tokio::spawn(mirror.run(shutdown)));
        Ok(ClusterTasks {
            tasks,
            grace: self.config.timeout.min(Duration::from_secs(1)),
        })
    }
}

/// What is failing in this node's use of Redis, told to `/healthz` and `/metrics` through the
/// server's [`Stats`].
pub(crate) struct Health {
    stats: Arc<Stats>,
    /// Publishers that cannot write their file's stream now.
    publishers_failing: AtomicUsize,
    mirror_failing: AtomicBool,
    heartbeat_failing: AtomicBool,
}

impl Health {
    fn new(stats: Arc<Stats>) -> Self {
        Health {
            stats,
            publishers_failing: AtomicUsize::new(0),
            mirror_failing: AtomicBool::new(false),
            heartbeat_failing: AtomicBool::new(false),
        }
    }

    /// A Redis command failed.
    fn error(&self) {
        self.stats.redis_errors.fetch_add(1, Relaxed);
    }

    /// A publisher starts or stops failing.
    fn publisher(&self, failing: bool) {
        if failing {
            self.publishers_failing.fetch_add(1, Relaxed);
        } else {
            self.publishers_failing.fetch_sub(1, Relaxed);
        }
        self.tell();
    }

    fn mirror(&self, failing: bool) {
        self.mirror_failing.store(failing, Relaxed);
        self.tell();
    }

    fn heartbeat(&self, failing: bool) {
        self.heartbeat_failing.store(failing, Relaxed);
        self.tell();
    }

    fn tell(&self) {
        let mut parts = Vec::new();
        let publishers = self.publishers_failing.load(Relaxed);
        if publishers > 0 {
            parts.push(format!(
                "{publishers} file(s) cannot be published (served here, caught up later)"
            ));
        }
        if self.mirror_failing.load(Relaxed) {
            parts.push("other nodes' files cannot be read (paused)".to_owned());
        }
        if self.heartbeat_failing.load(Relaxed) {
            parts.push(
                "the heartbeat cannot be written (other nodes see this one offline)".to_owned(),
            );
        }
        let trouble =
            (!parts.is_empty()).then(|| format!("Redis cannot be reached: {}", parts.join("; ")));
        self.stats.set_cluster_trouble(trouble);
    }
}

/// Joins the cluster once Redis can be reached, for a node that started while it could not:
/// one whose checkpoints (`--state-dir`) carry the cluster's epoch, so its numbering is the
/// cluster's and it could serve its own files meanwhile. If the cluster turns out to have
/// another epoch, the node does not publish (its seqs would name other lines) and says so.
pub fn join_later(
    config: ClusterConfig,
    epoch: u64,
    hub: Hub,
    max_line: usize,
    stats: Arc<Stats>,
    mut shutdown: Shutdown,
) -> ClusterTasks {
    let config_timeout = config.timeout;
    let task = tokio::spawn(async move {
        stats.set_cluster_trouble(Some(
            "Redis cannot be reached: this node serves its own files (if any) and joins the \
             cluster when it can"
                .to_owned(),
        ));
        let mut failures = 0u32;
        let cluster = loop {
            tokio::select! {
                _ = tokio::time::sleep(backoff(failures)) => {}
                _ = shutdown.fired() => return,
            }
            match Cluster::join(config.clone(), epoch).await {
                Ok(cluster) => break cluster,
                Err(e) => {
                    stats.redis_errors.fetch_add(1, Relaxed);
                    tracing::debug!("not joined yet: {e}");
                    failures = failures.saturating_add(1);
                }
            }
        };
        let ids: Vec<String> = (0..hub.file_count())
            .filter(|&ix| !hub.is_remote(ix))
            .map(|ix| hub.id(ix).to_owned())
            .collect();
        if cluster.epoch() != epoch && ids.is_empty() {
            // A front node numbered nothing: the cluster's numbering is its own from now on
            // (a client that came before has nothing to resume, and gets a reset).
            hub.adopt_epoch(cluster.epoch());
        } else if cluster.epoch() != epoch {
            let why = format!(
                "the cluster's epoch is {}, this node's numbering is of epoch {epoch}: it does \
                 not publish (its seqs would name other lines); restart it to join",
                cluster.epoch()
            );
            tracing::error!("{why}");
            stats.set_cluster_trouble(Some(why));
            return;
        }
        let published = match cluster.last_seqs(&ids).await {
            Ok(published) => published,
            Err(e) => {
                tracing::warn!(
                    "joined, but cannot read the streams' heads: {e}; retrying at the next start"
                );
                return;
            }
        };
        let local = ids
            .iter()
            .filter_map(|id| {
                Some((
                    hub.lookup(id)?,
                    published.get(id).copied().unwrap_or_default(),
                ))
            })
            .collect();
        stats.set_cluster_trouble(None);
        tracing::info!("joined the cluster");
        match cluster.start(hub, local, max_line, stats, shutdown).await {
            Ok(tasks) => tasks.finish().await,
            Err(e) => tracing::warn!("cannot start the cluster's tasks: {e}"),
        }
    });
    ClusterTasks {
        tasks: vec![task],
        grace: config_timeout.min(Duration::from_secs(1)),
    }
}

/// The cluster's running tasks.
#[derive(Debug)]
pub struct ClusterTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// How long they may take to end after the shutdown signal (`--redis-timeout`, at most a
    /// second).
    grace: Duration,
}

impl ClusterTasks {
    /// Waits for every task to end (they end at the shutdown signal), a second at most: with
    /// Redis away, a command on the connection manager waits for its reconnection attempts
    /// (seconds), whatever `--redis-timeout` says; a task still waiting then is dropped.
    pub async fn finish(self) {
        let deadline = tokio::time::Instant::now() + self.grace;
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// Waits until a liveness key left by an earlier run of this node has expired; fails when its
/// value changes meanwhile: another node of this name is beating.
async fn name_is_free(
    conn: &mut ConnectionManager,
    key: &str,
    node: &str,
) -> Result<(), ClusterError> {
    let first: Option<String> = redis::cmd("GET").arg(key).query_async(conn).await?;
    let Some(first) = first else {
        return Ok(());
    };
    let ttl_ms: i64 = redis::cmd("PTTL").arg(key).query_async(conn).await?;
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0))
        + Duration::from_millis(500);
    tracing::info!("node `{node}` was alive a moment ago: waiting for its heartbeat to expire");
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now: Option<String> = redis::cmd("GET").arg(key).query_async(conn).await?;
        match now {
            None => return Ok(()),
            Some(value) if value != first => return Err(ClusterError::NameTaken(node.to_owned())),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Sets `P:epoch` to `mine` unless it has a value; returns the value it has.
async fn claim_epoch(
    conn: &mut ConnectionManager,
    keys: &Keys,
    mine: u64,
) -> Result<u64, redis::RedisError> {
    let old: Option<u64> = redis::cmd("SET")
        .arg(keys.epoch())
        .arg(mine)
        .arg("NX")
        .arg("GET")
        .query_async(conn)
        .await?;
    Ok(old.unwrap_or(mine))
}

/// The URL without its password, for messages: neither the user information before `@` nor
/// the `pass=` of a Unix socket URL's query (`redis+unix:///run/redis.sock?pass=...`).
fn redact(url: &str) -> String {
    let shown = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    };
    let Some((base, query)) = shown.split_once('?') else {
        return shown;
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key == "pass" || key == "password" => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// How long to wait before the next try after `failures` failures in a row: 100 ms doubling,
/// at most 5 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << failures.min(6))
        .min(Duration::from_secs(5))
}

/// The last seq in `EntryId` form, for a file with nothing published yet.
fn nothing() -> EntryId {
    EntryId::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(node: &str) -> ClusterConfig {
        ClusterConfig {
            url: "redis://127.0.0.1:6379".into(),
            password: None,
            node: node.into(),
            prefix: "tailcast".into(),
            keep_lines: 10,
            keep_bytes: 1 << 20,
            heartbeat: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retention: Duration::ZERO,
        }
    }

    #[test]
    fn node_names_and_urls_are_checked() {
        assert!(config("web-1.eu").check().is_ok());
        assert!(config("web/1").check().unwrap_err().contains("--node"));
        assert!(config("").check().is_err());
        let mut bad = config("a");
        bad.url = "http://x".into();
        assert!(bad.check().unwrap_err().contains("redis://"));
        assert_eq!(config("web1").file_id("app.log"), "web1/app.log");
    }

    #[test]
    fn passwords_do_not_show_in_messages() {
        assert_eq!(
            redact("redis://user:secret@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://10.0.0.1"), "redis://10.0.0.1");
        assert_eq!(
            redact("redis+unix:///run/redis.sock?db=1&pass=secret&user=tc"),
            "redis+unix:///run/redis.sock?db=1&pass=***&user=tc"
        );
        assert_eq!(
            redact("redis://:p@ss@10.0.0.1/0?protocol=resp3"),
            "redis://***@10.0.0.1/0?protocol=resp3"
        );
    }

    #[test]
    fn backoff_grows_to_a_cap() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(30), Duration::from_secs(5));
    }
}
