//! Wires tail → hub → http, and owns start-up and shutdown.
//!
//! [`run`] takes an already-bound listener (port 0 in tests) and a shutdown future, like
//! mini-redis's `server::run`: it starts the followers (their first read fills the history), serves
//! HTTP (HTTPS when `config.tls` is set) until the future completes, then fires the shutdown signal
//! (sessions close with 1001, held polls answer), stops the HTTP server with a short grace period,
//! and stops the followers. Standard input (`-`) is read by threads of its own
//! ([`crate::tail::stdin`]), left running at shutdown; `--exec` commands
//! ([`crate::tail::exec`]) are started before serving and their process groups stopped last.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpServer};

use crate::archive::{Archive, Positions, RunLog};
use crate::cli::Config;
use crate::cluster::Cluster;
use crate::descriptors;
use crate::files::{self, LiveRule};
use crate::http::conn::{tcp_socket, Connections, OutputLimits};
use crate::http::ServerConfig;
use crate::hub::{FileIx, Hub};
use crate::state::SavedFile;
use crate::state::{self, CheckpointSlot, Checkpointer, StateDir};
use crate::stats::Stats;
use crate::tail::{
    follow_command, follow_stdin, BatchOrigin, DiscoveryRules, FileState, Followed, LineBatch,
    Resume, TailSink, Tailer, TailerHandle,
};
use crate::{http, shutdown};

/// Feeds one follower's output into the hub, and keeps its checkpoint.
struct HubSink {
    hub: Hub,
    file: FileIx,
    stats: Arc<Stats>,
    /// With `--state-dir`: the file's checkpoint, advanced after every batch.
    checkpoint: Option<Arc<CheckpointSlot>>,
    /// The seqs of the batch appended last (its origin comes right after).
    appended: Option<(u64, u64)>,
    /// A stream (standard input, a command): no origin follows its batches, so its checkpoint
    /// (its numbering alone) moves with each append.
    stream: bool,
    /// Where the file's numbered lines are on disk (for pages that start at a seq).
    runs: Option<Arc<Mutex<RunLog>>>,
}

impl TailSink for HubSink {
    fn lines(&mut self, batch: LineBatch) {
        self.stats.lines_in.fetch_add(batch.len() as u64, Relaxed);
        let bytes = batch.text_bytes() + batch.len();
        self.stats.bytes_in.fetch_add(bytes as u64, Relaxed);
        // During a burst this waits (bounded) for the clients that keep up; see Hub::pace.
        let lines = batch.len() as u64;
        let first = self.hub.append(self.file, batch);
        self.appended = Some((first, first + lines - 1));
        if let Some(slot) = self.checkpoint.as_ref().filter(|_| self.stream) {
            slot.numbered(first + lines - 1);
        }
    }

    fn origin(&mut self, origin: &BatchOrigin) {
        if let (Some(runs), Some((first, last))) = (&self.runs, self.appended) {
            runs.lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(origin, first, last);
        }
        let Some(slot) = &self.checkpoint else {
            self.appended = None;
            return;
        };
        match self.appended.take() {
            Some((first, last)) => slot.advance(origin, first, last),
            None => slot.start_at(origin, self.hub.last_seq(self.file)),
        }
    }

    fn pending(&mut self, text: Option<&str>) {
        self.hub.set_pending(self.file, text);
    }

    fn resumed(&mut self, lines_before: u64) {
        let Some(slot) = &self.checkpoint else { return };
        let newest = slot.last_seq();
        let next = match slot.get() {
            // The lines read again end with the checkpoint's line.
            Some(c) if newest <= c.last_seq => (c.last_seq + 1).saturating_sub(lines_before),
            // Nothing is read again (see `SavedFile`): on after the newest seq.
            _ => newest + 1,
        };
        self.hub.continue_numbering(self.file, next.max(1));
    }

    fn state(&mut self, state: FileState) {
        tracing::info!(
            file = self.hub.id(self.file),
            state = state.as_str(),
            "file state"
        );
        match state {
            FileState::Rotated => self.stats.rotations.fetch_add(1, Relaxed),
            FileState::Truncated => self.stats.truncations.fetch_add(1, Relaxed),
            FileState::Created
            | FileState::Deleted
            | FileState::Ended
            | FileState::Started
            | FileState::Exited(_)
            | FileState::Unavailable
            | FileState::Available => 0,
        };
        self.hub.set_state(self.file, state);
    }

    fn status(&mut self, status: crate::tail::FileStatus) {
        self.hub.set_status(self.file, status);
    }
}

/// Makes the sink of each followed file, with its checkpoint slot when there is a state dir.
struct SinkMaker {
    hub: Hub,
    /// Every file's runs of numbered lines on disk.
    positions: Positions,
    stats: Arc<Stats>,
    /// With `--state-dir`: what the previous run saved.
    saved: Option<HashMap<PathBuf, SavedFile>>,
    slots: state::Slots,
    /// Every id of the epoch and the path it names.
    ids: state::Ids,
}

impl SinkMaker {
    /// The sink of file `ix` at `path`, and where its follower starts: at its checkpoint, at its
    /// start when the previous run numbered none of its lines, else as `otherwise` says (`None`:
    /// at its tail).
    fn make(
        &self,
        ix: FileIx,
        path: &Path,
        otherwise: Option<Resume>,
    ) -> (HubSink, Option<Resume>) {
        let mut resume = otherwise;
        let checkpoint = self.saved.as_ref().map(|saved| {
            let saved = saved.get(path);
            let slot = self.slot(path, saved);
            resume = match saved {
                Some(saved) => Some(saved.resume()),
                None => otherwise,
            };
            slot
        });
        let sink = HubSink {
            hub: self.hub.clone(),
            file: ix,
            stats: self.stats.clone(),
            checkpoint,
            appended: None,
            stream: false,
            runs: Some(self.positions.log(ix)),
        };
        (sink, resume)
    }

    /// The sink of a stream (standard input, a command), which cannot be read again: with a
    /// state dir only its numbering is kept, and goes on after the previous run's last seq, so
    /// that a cursor from that run never names one of this run's lines.
    fn make_stream(&self, ix: FileIx, path: &Path) -> HubSink {
        let checkpoint = self.saved.as_ref().map(|saved| {
            let saved = saved.get(path);
            if let Some(saved) = saved {
                self.hub.continue_numbering(ix, saved.last_seq + 1);
            }
            self.slot(path, saved)
        });
        HubSink {
            hub: self.hub.clone(),
            file: ix,
            stats: self.stats.clone(),
            checkpoint,
            appended: None,
            stream: true,
            runs: None,
        }
    }

    /// True when `id` named a file other than `path` earlier in the epoch.
    fn id_names_another(&self, id: &str, path: &Path) -> bool {
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.get(id).is_some_and(|named| named != path)
    }

    fn note_id(&self, id: &str, path: &Path) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.insert(id.to_owned(), path.to_path_buf());
        }
    }

    fn slot(&self, path: &Path, saved: Option<&SavedFile>) -> Arc<CheckpointSlot> {
        let slot = Arc::new(CheckpointSlot::new(saved));
        if let Ok(mut slots) = self.slots.lock() {
            slots.push((path.to_path_buf(), slot.clone()));
        }
        slot
    }
}

/// Most paths remembered as refused past `--max-files` (each is counted once).
const MAX_REFUSED_REMEMBERED: usize = 100_000;

/// What live globs and directories do with each file that appears: follow it from its first
/// line, under a new id, until `--max-files`; past it, one warning and a count per file.
fn live_rules(
    rules: Vec<LiveRule>,
    mut known: HashSet<PathBuf>,
    sinks: SinkMaker,
    rescan: Duration,
    node: Option<String>,
) -> DiscoveryRules {
    let dirs = rules.iter().map(|rule| rule.dir.clone()).collect();
    let mut refused = HashSet::new();
    let found = move |tailer: &TailerHandle, path: &Path| {
        if known.contains(path) || refused.contains(path) || !rules.iter().any(|r| r.matches(path))
        {
            return;
        }
        let hub = &sinks.hub;
        // In a cluster, ids start with the node's name.
        let in_cluster = |id: &str| match &node {
            Some(node) => format!("{node}/{id}"),
            None => id.to_owned(),
        };
        // Not an id that named another file earlier in the epoch: old cursors carry it.
        let id = files::id_for_new_file(path, |id| {
            let id = in_cluster(id);
            hub.lookup(&id).is_some() || sinks.id_names_another(&id, path)
        });
        let id = in_cluster(&id);
        match hub.add_file(id.clone(), path.to_path_buf()) {
            Some(ix) => {
                tracing::info!(file = id, path = %path.display(), "new file followed");
                known.insert(path.to_path_buf());
                sinks.note_id(&id, path);
                let (sink, resume) = sinks.make(ix, path, Some(Resume::FromStart));
                tailer.follow_found(path.to_path_buf(), sink, resume);
            }
            None => {
                if refused.is_empty() {
                    tracing::warn!(
                        "{} is not followed: --max-files ({} files) is reached; later files are                          refused too (counted in tailcast_files_refused_total); raise                          --max-files to follow more",
                        path.display(),
                        hub.file_count()
                    );
                }
                if refused.len() < MAX_REFUSED_REMEMBERED {
                    refused.insert(path.to_path_buf());
                }
                sinks.stats.files_refused.fetch_add(1, Relaxed);
            }
        }
    };
    DiscoveryRules {
        dirs,
        rescan,
        found: Box::new(found),
    }
}

/// The saved state, unless a file id of this run named another file in its epoch (the command
/// line changed so): a cursor names its file by id, so then the numbering starts afresh.
fn same_ids_or_fresh(saved: state::Saved, files: &[crate::files::WatchedFile]) -> state::Saved {
    let moved = files
        .iter()
        .find(|f| saved.ids.get(&f.id).is_some_and(|path| *path != f.path));
    match moved {
        Some(f) => {
            tracing::warn!(
                "file id `{}` named {} before and names {} now: starting a fresh numbering \
                 (clients are told to reset their cursors)",
                f.id,
                saved.ids[&f.id].display(),
                f.path.display()
            );
            state::Saved::default()
        }
        None => saved,
    }
}

/// What [`run`] tells its caller once it serves: the address, and the files whose first read
/// (the initial tail) is done.
pub struct Ready<'a> {
    /// The listening address.
    pub addr: std::net::SocketAddr,
    /// The followed files.
    pub files: &'a [crate::files::WatchedFile],
}

/// Runs the server on `listener` until `shutdown` completes. `on_ready` is called once the
/// followers have made their first read and the HTTP server accepts connections, so a caller
/// that waits for it never races start-up (lines written after it are live lines).
pub async fn run(
    config: Config,
    listener: std::net::TcpListener,
    shutdown_signal: impl Future<Output = ()>,
    on_ready: impl FnOnce(Ready<'_>),
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let mut shutdown_signal = std::pin::pin!(shutdown_signal);
    let state_dir = match &config.state_dir {
        Some(dir) => Some(StateDir::open(dir).map_err(std::io::Error::other)?),
        None => None,
    };
    let mut saved = state_dir
        .as_ref()
        .map(|dir| same_ids_or_fresh(dir.load(), &config.files));
    // Every id of the epoch and its path: the saved ones, and this run's (which may add).
    let ids = state::Ids::default();
    if let Ok(mut ids) = ids.lock() {
        ids.extend(saved.iter().flat_map(|s| s.ids.clone()));
        ids.extend(config.files.iter().map(|f| (f.id.clone(), f.path.clone())));
    }
    let mut epoch = saved
        .as_ref()
        .and_then(|saved| saved.epoch)
        .unwrap_or_else(state::fresh_epoch);
    // In a cluster the epoch is the cluster's, and each file's numbering goes on after what
    // Redis holds of it, unless a checkpoint of that epoch continues it exactly.
    let mut cluster_start = None;
    let mut join_later = false;
    if let Some(cluster_config) = &config.cluster {
        let mut joined = Cluster::join(cluster_config.clone(), epoch).await;
        // Checkpoints of a cluster's epoch carry its numbering: the node can serve its own
        // files while Redis is away, and publish them once it is back. A front node numbers
        // nothing: it serves, and takes the cluster's epoch when it joins.
        let numbered = saved.as_ref().is_some_and(|s| s.epoch.is_some());
        let front = config.files.is_empty() && config.rules.is_empty();
        // Any other node needs the cluster's numbering before its first line: it waits.
        let mut failures = 0u32;
        while let Err(e @ crate::cluster::ClusterError::Connect { .. }) = &joined {
            if numbered || front {
                break;
            }
            if failures == 0 {
                tracing::warn!(
                    "{e}; waiting for it (this node's files are numbered by the cluster: give \
                     it --state-dir to serve them at once next time)"
                );
            }
            failures = failures.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(crate::cluster::backoff(failures)) => {}
                _ = &mut shutdown_signal => return Ok(()),
            }
            joined = Cluster::join(cluster_config.clone(), epoch).await;
        }
        let cluster = match joined {
            Ok(cluster) => Some(cluster),
            Err(e @ crate::cluster::ClusterError::Connect { .. }) => {
                if front {
                    tracing::warn!("{e}; serving the cluster's files once Redis can be reached");
                } else {
                    tracing::warn!(
                        "{e}; serving this node's files (numbered by --state-dir, epoch \
                         {epoch}) and joining the cluster when Redis can be reached"
                    );
                }
                join_later = true;
                None
            }
            Err(e) => return Err(std::io::Error::other(e)),
        };
        if let Some(cluster) = cluster {
            if let Some(stale) = saved
                .as_mut()
                .filter(|s| s.epoch.is_some_and(|e| e != cluster.epoch()))
            {
                tracing::warn!(
                    "the checkpoints in --state-dir are of epoch {:?}, the cluster's is {}: \
                     numbering goes on after what the cluster holds",
                    stale.epoch,
                    cluster.epoch()
                );
                *stale = state::Saved::default();
            }
            epoch = cluster.epoch();
            let ids: Vec<String> = config.files.iter().map(|f| f.id.clone()).collect();
            let published = cluster
                .last_seqs(&ids)
                .await
                .map_err(std::io::Error::other)?;
            cluster_start = Some((cluster, published));
        }
    }
    let files: Vec<_> = config
        .files
        .iter()
        .map(|f| (f.id.clone(), f.path.clone()))
        .collect();
    let hub = Hub::new(files, &config.hub, epoch);
    if let Some((_, published)) = &cluster_start {
        for (ix, f) in config.files.iter().enumerate() {
            let checkpointed = saved
                .as_ref()
                .is_some_and(|s| s.files.contains_key(&f.path));
            if !checkpointed {
                let head = published.get(&f.id).map_or(0, |id| id.seq);
                hub.continue_numbering(ix, head + 1);
            }
        }
    }
    let stats = Arc::new(Stats::default());

    let slots = state::Slots::default();
    let positions = Positions::default();
    let sinks = SinkMaker {
        hub: hub.clone(),
        positions: positions.clone(),
        stats: stats.clone(),
        saved: state_dir
            .is_some()
            .then(|| saved.as_ref().map(|s| s.files.clone()).unwrap_or_default()),
        slots: slots.clone(),
        ids: ids.clone(),
    };
    let mut followed = Vec::new();
    // Dropped on an early return: a command started here is stopped again.
    let mut commands = Vec::new();
    for (ix, f) in config.files.iter().enumerate() {
        let stream_sink = || sinks.make_stream(ix, &f.path);
        if f.is_stdin() {
            // Its threads are detached, not stopped at shutdown: a read on a pipe whose writer
            // never ends would keep the process alive.
            follow_stdin(&config.tail.follow, stream_sink())?;
        } else if let Some(command) = &f.command {
            let sink = stream_sink();
            let source = follow_command(&f.id, command, &config.exec, &config.tail.follow, sink)
                .map_err(std::io::Error::other)?;
            commands.push(source);
        } else {
            let (sink, resume) = sinks.make(ix, &f.path, None);
            followed.push(Followed {
                path: f.path.clone(),
                sink,
                resume,
                found: config.rules.iter().any(|rule| rule.matches(&f.path)),
            });
        }
    }
    let discovery = (!config.rules.is_empty()).then(|| {
        let known = config.files.iter().map(|f| f.path.clone()).collect();
        live_rules(
            config.rules.clone(),
            known,
            sinks,
            config.tail.stat_interval,
            config.cluster.as_ref().map(|c| c.node.clone()),
        )
    });
    let tail_config = config.tail.clone();
    let tailer =
        tokio::task::spawn_blocking(move || Tailer::start(&tail_config, followed, discovery))
            .await
            .map_err(std::io::Error::other)?;
    let checkpointer = match state_dir {
        Some(dir) => {
            tracing::info!(dir = %dir.path().display(), epoch, "checkpoints kept");
            let carried = saved.map(|s| s.files).unwrap_or_default();
            Some(Checkpointer::start(
                dir,
                epoch,
                slots,
                carried,
                ids,
                config.checkpoint_interval,
            )?)
        }
        None => None,
    };

    let (trigger, shutdown) = shutdown::channel();
    let cluster_tasks = match cluster_start {
        Some((cluster, published)) => {
            let local = config
                .files
                .iter()
                .enumerate()
                .map(|(ix, f)| (ix, published.get(&f.id).copied().unwrap_or_default()))
                .collect();
            let tasks = cluster
                .start(
                    hub.clone(),
                    local,
                    config.tail.follow.max_line_bytes,
                    stats.clone(),
                    shutdown.clone(),
                )
                .await
                .map_err(std::io::Error::other)?;
            Some(tasks)
        }
        None if join_later => config.cluster.clone().map(|cluster_config| {
            crate::cluster::join_later(
                cluster_config,
                epoch,
                hub.clone(),
                config.tail.follow.max_line_bytes,
                stats.clone(),
                shutdown.clone(),
            )
        }),
        None => None,
    };
    let mut server_config = config.server.clone();
    // Files found later hold a descriptor each; other nodes' files (in a cluster) hold none.
    let later_files = if config.rules.is_empty() {
        0
    } else {
        config.hub.more_files
    };
    let tcp_connections = fit_descriptors(&mut server_config, config.files.len() + later_files);
    let conns = Connections::new(OutputLimits {
        per_connection: server_config.client_buffer,
        total: server_config.total_buffer,
        send_timeout: server_config.send_timeout,
        busy_timeout: server_config.client_timeout,
        keepalive: server_config.heartbeat,
    });
    let state = http::AppState {
        hub: hub.clone(),
        config: Arc::new(server_config),
        stats,
        shutdown: shutdown.clone(),
        conns: conns.clone(),
        archive: Archive::new(hub, positions, config.archive),
    };
    let sweeper = tokio::spawn(conns.clone().run_sweeper(shutdown));
    let tls = config.tls.clone();
    let app_state = web::Data::new(state);
    let base_path = config.server.base_path.clone();
    let accept_conns = conns.clone();
    let mut server = HttpServer::new(move || {
        let app = App::new()
            .app_data(app_state.clone())
            .wrap_fn(http::meter_response);
        if base_path.is_empty() {
            app.configure(http::routes)
        } else {
            app.route(&base_path, http::get_or_head().to(http::redirect_to_slash))
                .service(web::scope(&base_path).configure(http::routes))
        }
    })
    .on_connect(move |connection, data| {
        let Some(socket) = tcp_socket(connection) else {
            return;
        };
        // Lines are small and latency matters: no Nagle delay on any connection, plain or TLS.
        let _ = socket2::SockRef::from(&socket).set_tcp_nodelay(true);
        let conn = accept_conns.accept(socket);
        data.insert(conn.guard());
        data.insert(conn);
    })
    .disable_signals()
    .shutdown_timeout(1)
    // A client that closes its side is gone: its held poll or stream ends at once instead of
    // waiting for the next line or the poll timeout.
    .h1_allow_half_closed(false)
    .client_request_timeout(Duration::from_secs(10));
    let workers = config
        .server
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // actix counts connections per worker.
    server = server
        .workers(workers)
        .max_connections(tcp_connections.div_ceil(workers).max(1));
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    }
    .run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    on_ready(Ready {
        addr,
        files: &config.files,
    });

    shutdown_signal.await;
    tracing::info!("shutting down");
    trigger.fire();
    // Sessions send their close frames, streams end and held polls answer; each lets go of its
    // drain guard when done. Then stop without waiting out idle keep-alive connections.
    if !trigger.drained(Duration::from_millis(500)).await {
        tracing::info!("some sessions did not finish within 500 ms; stopping anyway");
    }
    handle.stop(false).await;
    let _ = server_task.await;
    let _ = sweeper.await;
    if let Some(tasks) = cluster_tasks {
        tasks.finish().await;
    }
    let _ = tokio::task::spawn_blocking(move || {
        tailer.shutdown();
        // After the followers' last read, so the checkpoints hold all of it.
        if let Some(checkpointer) = checkpointer {
            checkpointer.shutdown();
        }
        crate::tail::ExecSource::shutdown_all(commands);
    })
    .await;
    Ok(())
}

/// Raises the open-file limit and fits the connection limits in it (one warning if they had to
/// be lowered). Returns how many TCP connections the server may hold at once.
fn fit_descriptors(server: &mut ServerConfig, files: usize) -> usize {
    let Some(open_files) = descriptors::raise_open_file_limit() else {
        return server.max_connections + server.max_polls + descriptors::OTHER_CONNECTIONS;
    };
    let fitted = descriptors::fit(open_files, files, server.max_connections, server.max_polls);
    match &fitted.warning {
        Some(warning) if fitted.lowered => tracing::warn!("{warning}"),
        Some(note) => tracing::info!("{note}"),
        None => {}
    }
    server.max_connections = fitted.max_connections;
    server.max_polls = fitted.max_polls;
    fitted.tcp_connections
}
