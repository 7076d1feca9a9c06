//! The tailing core: files, bytes and lines; nothing of HTTP.
//!
//! [`Tailer::start`] runs one [`Follower`] per configured path on a thread of its own. A single
//! notify watcher watches each path's *parent directory* for names (created, removed, renamed:
//! a watch on the file itself would follow the renamed inode after rotation), and each follower
//! watches the files it has open for data written ([`watch`]: writes wake only their follower,
//! and a burst's events merge while it reads). Events are only wake-ups: the follower then stats
//! and reads. Every follower also checks on a slow timer (`stat_interval`), which is all it has
//! when notify is disabled, when a directory cannot be watched (NFS, inotify limits), or when
//! events are lost. Followers past `own_watches`, or that cannot have a watch of their own, are
//! woken by a second notify watcher's data events for their directory. One event is more than a
//! wake-up: when the followed name is renamed to another name in its directory, the watcher
//! opens the file under its new name at once and hands it to the follower ([`Follower::rotated_away`]), so a generation created and rotated away between two
//! checks (a burst of rotations) is still read. [`splitter`] is the pure byte-to-line state
//! machine; [`open`] opens paths without ever blocking on a FIFO, and regular files only.
//! Live globs and directories: a discovery thread hands every regular file (never a symlink) that
//! appears in their directories (a create or rename event, or a rescan every `stat_interval`) to
//! a callback, which starts a follower for it through a [`TailerHandle`];
//! [`stdin`] follows standard input (`tailcast -`) with the same splitter and sink; [`exec`] runs
//! commands (`--exec`) and follows their output the same way.

pub mod exec;
pub mod follower;
pub mod open;
pub mod splitter;
pub mod stdin;
pub mod watch;

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{EventKindMask, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};

use watch::{DataWatch, Doorbell, Wakeups};

pub use exec::{follow_command, ExecCommand, ExecConfig, ExecSource};
pub use follower::{
    BatchOrigin, FileIdentity, FileState, FileStatus, FollowConfig, Follower, Resume, ResumePoint,
    TailSink, DEFAULT_READ_CHUNK_BYTES,
};
pub use open::open_regular;
pub use splitter::{line_text, LineBatch, LineSplitter};
pub use stdin::follow_stdin;

/// How file-system events are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatchMode {
    /// notify events wake followers; the stat timer is the safety net.
    #[default]
    Events,
    /// No notify watcher: followers run on the stat timer alone.
    PollOnly,
    /// A watcher is made but its events are thrown away (tests the safety net).
    DropEvents,
    /// Followers take no inotify watch of their own and are woken by notify's data events for
    /// their directories: what a follower falls back on when it cannot have one (tests that).
    DirectoryEvents,
}

/// Settings shared by all followers.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// Per-file reading settings.
    pub follow: FollowConfig,
    /// How often each path is stat'ed without any event.
    pub stat_interval: Duration,
    /// Whether and how notify is used.
    pub watch_mode: WatchMode,
    /// Followers that may have an inotify instance of their own ([`watch`]); the others are
    /// woken by their directory's events.
    pub own_watches: usize,
}

/// The running followers; dropping it (or [`Tailer::shutdown`]) stops them.
pub struct Tailer {
    handle: TailerHandle,
    discovery: Option<Discovery>,
    _watcher: Option<notify::RecommendedWatcher>,
}

/// A file to follow from the start.
pub struct Followed<S> {
    /// Its absolute path.
    pub path: PathBuf,
    /// Where its lines go.
    pub sink: S,
    /// Where it picks up (`None`: at its tail).
    pub resume: Option<Resume>,
    /// Taken by a live glob or directory: never opened through a symlink
    /// ([`TailerHandle::follow_found`]).
    pub found: bool,
}

/// Starts followers on a running [`Tailer`] (cheap to clone; what discovery uses).
#[derive(Clone)]
pub struct TailerHandle {
    config: TailConfig,
    threads: Arc<Mutex<Vec<FollowerThread>>>,
    wake_map: Arc<Mutex<WakeMap>>,
    data_fallback: Arc<DataFallback>,
    /// Own watches still to be handed out (`TailConfig::own_watches` at start).
    own_watches_left: Arc<AtomicUsize>,
}

/// Directories where new files are looked for, and what to do with each one found.
pub struct DiscoveryRules {
    /// The directories (watched, and read again every `rescan`).
    pub dirs: Vec<PathBuf>,
    /// How often they are read again without any event (the safety net).
    pub rescan: Duration,
    /// Called on the discovery thread with every regular file seen in them (those already
    /// followed too: the callee knows which it follows).
    pub found: FoundFile,
}

/// What discovery calls with each file it sees.
pub type FoundFile = Box<dyn FnMut(&TailerHandle, &Path) + Send>;

struct FollowerThread {
    stop: Arc<AtomicBool>,
    wake: Option<Arc<Doorbell>>,
    handle: Option<JoinHandle<()>>,
}

/// One follower as the watchers see it: its file name, its doorbell, whether it is still reading
/// a rotated-away file (whose events come under another name), and whether it needs notify's data
/// events (it has no watch of its own).
struct WakeEntry {
    name: OsString,
    wake: Option<Arc<Doorbell>>,
    draining: Arc<AtomicBool>,
    data_events: Arc<AtomicBool>,
    rotated: RotatedQueue,
    /// The follower never opens its path through a symlink (nor what is renamed away from it).
    no_symlinks: bool,
}

/// Files renamed away from a followed name, opened by the watcher, waiting for the follower.
type RotatedQueue = Arc<Mutex<VecDeque<File>>>;

/// Most renamed-away files held for a follower that has not caught up; older ones are closed
/// (a follower this far behind re-reads nothing it already knows, it only misses generations).
const MAX_QUEUED_ROTATIONS: usize = 64;

/// Followers to wake, by parent directory.
type WakeMap = HashMap<PathBuf, Vec<WakeEntry>>;

impl Tailer {
    /// Starts one follower thread per `(path, sink, resume point)`, and, with `discovery`, a
    /// thread that hands every file appearing in its directories to its callback. Paths should be
    /// absolute. The first check of every follower has run when this returns, so the initial
    /// tail of each file (or, for a file resumed from a checkpoint, everything from the
    /// checkpoint on) is in its sink.
    pub fn start<S: TailSink>(
        config: &TailConfig,
        files: Vec<Followed<S>>,
        discovery: Option<DiscoveryRules>,
    ) -> Tailer {
        let wake_map: Arc<Mutex<WakeMap>> = Arc::default();
        let (found_tx, found_rx) = sync_channel::<PathBuf>(FOUND_QUEUE);
        let rule_dirs = discovery
            .as_ref()
            .map(|d| d.dirs.clone())
            .unwrap_or_default();
        // Both watchers come before the followers: each follower takes an inotify instance of
        // its own, and past the per-user limit a watcher made after them would have none.
        let mut watcher = match config.watch_mode {
            WatchMode::PollOnly => None,
            mode => make_watcher(
                &wake_map,
                &rule_dirs,
                found_tx,
                mode == WatchMode::DropEvents,
            ),
        };
        let data_watcher = match config.watch_mode {
            WatchMode::Events | WatchMode::DirectoryEvents => make_data_watcher(wake_map.clone()),
            WatchMode::PollOnly | WatchMode::DropEvents => None,
        };
        let handle = TailerHandle {
            config: config.clone(),
            threads: Arc::default(),
            data_fallback: Arc::new(DataFallback {
                state: Mutex::new(FallbackState {
                    watcher: data_watcher,
                    dirs: Vec::new(),
                }),
                warned: AtomicBool::new(false),
            }),
            wake_map,
            own_watches_left: Arc::new(AtomicUsize::new(config.own_watches)),
        };
        for file in files {
            if file.found {
                handle.follow_found(file.path, file.sink, file.resume);
            } else {
                handle.follow(file.path, file.sink, file.resume);
            }
        }
        if let Some(watcher) = &mut watcher {
            watch_dirs(watcher, &handle.wake_map, &rule_dirs);
        }
        let discovery = discovery.map(|rules| Discovery::start(handle.clone(), rules, found_rx));
        Tailer {
            handle,
            discovery,
            _watcher: watcher,
        }
    }

    /// Stops every follower after a last read to the end, and waits for their threads.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        if let Some(discovery) = self.discovery.take() {
            discovery.stop();
        }
        let mut threads = match self.handle.threads.lock() {
            Ok(mut threads) => std::mem::take(&mut *threads),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for thread in &threads {
            thread.stop.store(true, Ordering::SeqCst);
            if let Some(bell) = &thread.wake {
                bell.ring();
            }
        }
        for thread in &mut threads {
            if let Some(handle) = thread.handle.take() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Tailer {
    fn drop(&mut self) {
        self.stop_all();
    }
}

impl TailerHandle {
    /// Starts following `path` (its first check runs before this returns).
    pub fn follow<S: TailSink>(&self, path: PathBuf, sink: S, resume: Option<Resume>) {
        self.follow_with(path, sink, resume, self.config.follow.clone());
    }

    /// [`follow`](Self::follow) for a file a live glob or directory found: it is never opened
    /// through a symlink, then or after a rotation (whoever can write the directory could
    /// otherwise point the name at any file tailcast's user can read).
    pub fn follow_found<S: TailSink>(&self, path: PathBuf, sink: S, resume: Option<Resume>) {
        let follow = FollowConfig {
            no_symlinks: true,
            ..self.config.follow.clone()
        };
        self.follow_with(path, sink, resume, follow);
    }

    fn follow_with<S: TailSink>(
        &self,
        path: PathBuf,
        sink: S,
        resume: Option<Resume>,
        follow: FollowConfig,
    ) {
        let config = &self.config;
        let bell = match Doorbell::new() {
            Ok(bell) => Some(Arc::new(bell)),
            Err(e) => {
                tracing::error!(
                    "no wake-up descriptor for {} ({e}): it is read every {:?} only; raise the \
                     open-file limit (ulimit -n)",
                    path.display(),
                    config.stat_interval
                );
                None
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let draining = Arc::new(AtomicBool::new(false));
        let data_events = Arc::new(AtomicBool::new(false));
        let rotated = RotatedQueue::default();
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            if let Ok(mut map) = self.wake_map.lock() {
                map.entry(dir.to_path_buf()).or_default().push(WakeEntry {
                    name: name.to_owned(),
                    wake: bell.clone(),
                    draining: draining.clone(),
                    data_events: data_events.clone(),
                    rotated: rotated.clone(),
                    no_symlinks: follow.no_symlinks,
                });
            }
        }
        let mut follower = Follower::new(path.clone(), follow, sink);
        if let Some(resume) = resume {
            follower.resume_at(resume);
        }
        follower.check();
        let fallback = FallbackHook {
            needed: data_events,
            dir: path.parent().map(Path::to_path_buf),
            shared: self.data_fallback.clone(),
        };
        let data = match config.watch_mode {
            WatchMode::Events if !take_one(&self.own_watches_left) => {
                fallback.take_over(
                    &path,
                    &format!(
                        "the {} tailcast may take are in use (--inotify-instances)",
                        config.own_watches
                    ),
                );
                None
            }
            WatchMode::Events => match DataWatch::new() {
                Ok(data) => Some(data),
                Err(e) => {
                    self.own_watches_left.fetch_add(1, Ordering::SeqCst);
                    fallback.take_over(&path, &e);
                    None
                }
            },
            WatchMode::DirectoryEvents => {
                fallback.enable();
                None
            }
            WatchMode::PollOnly | WatchMode::DropEvents => None,
        };
        let wakeups = Wakeups {
            bell: bell.clone(),
            data,
        };
        let thread_stop = stop.clone();
        let stat_interval = config.stat_interval;
        let handle = std::thread::Builder::new()
            .name(format!("tail {}", short_name(&path)))
            .spawn(move || {
                run_follower(
                    follower,
                    wakeups,
                    fallback,
                    thread_stop,
                    draining,
                    rotated,
                    stat_interval,
                )
            });
        match handle {
            Ok(handle) => {
                if let Ok(mut threads) = self.threads.lock() {
                    threads.push(FollowerThread {
                        stop,
                        wake: bell,
                        handle: Some(handle),
                    });
                }
            }
            Err(e) => tracing::error!("cannot start a thread for {}: {e}", path.display()),
        }
    }
}

/// True for a regular file that is not a symlink: a link planted in a watched directory (to
/// `/etc/passwd`, to a file the glob does not name) is never followed as a new log.
fn is_plain_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_file())
}

/// Most file-creation events queued for discovery; past it they are dropped and the next rescan
/// finds the files.
const FOUND_QUEUE: usize = 4096;

/// The thread that looks for new files in the discovery directories.
struct Discovery {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// Longest the discovery thread waits before it looks at its stop flag again.
const DISCOVERY_TICK: Duration = Duration::from_millis(200);

impl Discovery {
    fn start(tailer: TailerHandle, rules: DiscoveryRules, appeared: Receiver<PathBuf>) -> Self {
        let DiscoveryRules {
            dirs,
            rescan,
            mut found,
        } = rules;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name("tail discovery".into())
            .spawn(move || {
                let mut next_scan = Instant::now();
                while !thread_stop.load(Ordering::SeqCst) {
                    let wait = next_scan.saturating_duration_since(Instant::now());
                    match appeared.recv_timeout(wait.min(DISCOVERY_TICK)) {
                        Ok(path) => {
                            if is_plain_file(&path) {
                                found(&tailer, &path);
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        // No watcher (stat timer only): rescans alone find files.
                        Err(RecvTimeoutError::Disconnected) => {
                            std::thread::sleep(wait.min(DISCOVERY_TICK))
                        }
                    }
                    if Instant::now() >= next_scan {
                        for dir in &dirs {
                            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                                // The entry's own type (no symlink followed, no stat per file).
                                if entry.file_type().is_ok_and(|t| t.is_file()) {
                                    found(&tailer, &entry.path());
                                }
                            }
                        }
                        next_scan = Instant::now() + rescan;
                    }
                }
            });
        let handle = match handle {
            Ok(handle) => handle,
            Err(e) => {
                tracing::error!("cannot start the discovery thread ({e}); globs are not live");
                std::thread::spawn(|| {})
            }
        };
        Discovery { stop, handle }
    }

    /// Stops the thread (within [`DISCOVERY_TICK`]) and waits for it.
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.handle.join();
    }
}

fn short_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn run_follower<S: TailSink>(
    mut follower: Follower<S>,
    mut wakeups: Wakeups,
    fallback: FallbackHook,
    stop: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    rotated: RotatedQueue,
    stat_interval: Duration,
) {
    // The first check ran before the file had its watch: what came since sent no event.
    let mut read_again = true;
    loop {
        let now = Instant::now();
        let mut wait = stat_interval;
        if let Some(deadline) = follower.next_deadline() {
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        if read_again {
            wait = Duration::ZERO;
        } else if wakeups.bell.is_none() {
            // Nothing can ring for stop: look at it often.
            wait = wait.min(NO_BELL_TICK);
        }
        wakeups.wait(wait);
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let renamed: Vec<File> = match rotated.lock() {
            Ok(mut queue) => queue.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for file in renamed {
            follower.rotated_away(file);
        }
        follower.check();
        read_again = false;
        if let Some(data) = &mut wakeups.data {
            let synced = data.sync(follower.open_inodes());
            // A file watched only now may have been written since it was read.
            read_again = synced.added;
            if let Some(e) = synced.failed {
                fallback.take_over(follower.path(), &e);
                wakeups.data = None;
                // What was written before the directory's events reached it woke nothing.
                read_again = true;
            }
        }
        draining.store(follower.is_draining(), Ordering::Relaxed);
    }
    follower.finish();
}

/// How often a follower without a doorbell (no eventfd could be made) looks at its stop flag.
const NO_BELL_TICK: Duration = Duration::from_millis(200);

/// Takes one from `left` if any is left.
fn take_one(left: &AtomicUsize) -> bool {
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// The kinds of events the name watcher asks notify for: not data written (each follower watches
/// its own files for that, see [`watch`]), nor opens and closes.
const NAME_EVENTS: EventKindMask = EventKindMask::CREATE
    .union(EventKindMask::REMOVE)
    .union(EventKindMask::MODIFY_NAME)
    .union(EventKindMask::MODIFY_META);

/// notify's data events, for followers with no watch of their own: a second watcher (made at
/// start, before the followers take their instances), on their directories only.
struct DataFallback {
    state: Mutex<FallbackState>,
    /// The operator was told once; later followers that fall back are logged at debug level.
    warned: AtomicBool,
}

struct FallbackState {
    watcher: Option<notify::RecommendedWatcher>,
    dirs: Vec<PathBuf>,
}

/// What a follower thread uses to fall back on [`DataFallback`].
struct FallbackHook {
    needed: Arc<AtomicBool>,
    dir: Option<PathBuf>,
    shared: Arc<DataFallback>,
}

impl FallbackHook {
    /// From now on this follower is woken by notify's data events for its directory.
    fn take_over(&self, path: &Path, why: &dyn std::fmt::Display) {
        if self.shared.warned.swap(true, Ordering::Relaxed) {
            tracing::debug!("{}: no inotify watch of its own ({why})", path.display());
        } else {
            tracing::warn!(
                "{}: no inotify watch of its own ({why}); it and any other file past the limit \
                 are woken by their directory's events instead, which costs a wake-up per write \
                 to any file there (raise fs.inotify.max_user_instances or \
                 fs.inotify.max_user_watches)",
                path.display()
            );
        }
        self.enable();
    }

    /// Makes notify's data events for this follower's directory wake it.
    fn enable(&self) {
        self.needed.store(true, Ordering::SeqCst);
        let Some(dir) = &self.dir else { return };
        let Ok(mut state) = self.shared.state.lock() else {
            return;
        };
        if state.dirs.contains(dir) {
            return;
        }
        let watched = match &mut state.watcher {
            Some(watcher) => watcher.watch(dir, RecursiveMode::NonRecursive),
            None => Err(notify::Error::generic(
                "no watcher for writes could be made",
            )),
        };
        match watched {
            Ok(()) => state.dirs.push(dir.clone()),
            Err(e) => tracing::warn!(
                "cannot watch {} for writes ({e}); its files are read on the stat timer",
                dir.display()
            ),
        }
    }
}

fn make_data_watcher(wake_map: Arc<Mutex<WakeMap>>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(map) = wake_map.lock() else { return };
        let needs = |entry: &WakeEntry| entry.data_events.load(Ordering::Relaxed);
        match event {
            Ok(event) if !event.need_rescan() => {
                for path in &event.paths {
                    wake_for_path(&map, path, needs);
                }
            }
            _ => wake_all(&map, needs),
        }
    };
    let config = notify::Config::default().with_event_kinds(EventKindMask::MODIFY_DATA);
    match notify::RecommendedWatcher::new(handler, config) {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::warn!("no watcher for writes ({e}); such files are read on the stat timer");
            None
        }
    }
}

/// The name watcher: wakes followers on names created, renamed and removed in their
/// directories (and attributes changed), pins renamed-away files, and hands files appearing in
/// `rule_dirs` to discovery. Its directories are added by [`watch_dirs`].
fn make_watcher(
    wake_map: &Arc<Mutex<WakeMap>>,
    rule_dirs: &[PathBuf],
    found: SyncSender<PathBuf>,
    drop_events: bool,
) -> Option<notify::RecommendedWatcher> {
    let rule_dirs: Vec<PathBuf> = rule_dirs.to_vec();
    let handler_map = wake_map.clone();
    let handler = move |event: notify::Result<notify::Event>| {
        if drop_events {
            return;
        }
        let Ok(map) = handler_map.lock() else { return };
        match event {
            Ok(event) if !event.need_rescan() => {
                if let (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [from, to]) =
                    (event.kind, event.paths.as_slice())
                {
                    pin_renamed(&map, from, to);
                }
                let appeared = matches!(
                    event.kind,
                    EventKind::Create(_)
                        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
                );
                if appeared {
                    for path in &event.paths {
                        if path
                            .parent()
                            .is_some_and(|dir| rule_dirs.iter().any(|d| d == dir))
                        {
                            // Full: the next rescan finds it.
                            let _ = found.try_send(path.clone());
                        }
                    }
                }
                for path in &event.paths {
                    wake_for_path(&map, path, |_| true);
                }
            }
            // Overflow, rescan or a watcher error: every follower looks for itself.
            _ => wake_all(&map, |_| true),
        }
    };
    let config = notify::Config::default().with_event_kinds(NAME_EVENTS);
    let watcher = match notify::RecommendedWatcher::new(handler, config) {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!("no file-system watcher ({e}); following by stat timer only");
            return None;
        }
    };
    Some(watcher)
}

/// Watches the directories of every follower and every discovery directory.
fn watch_dirs(
    watcher: &mut notify::RecommendedWatcher,
    wake_map: &Mutex<WakeMap>,
    rule_dirs: &[PathBuf],
) {
    let mut dirs: Vec<PathBuf> = match wake_map.lock() {
        Ok(map) => map.keys().cloned().collect(),
        Err(_) => Vec::new(),
    };
    for dir in rule_dirs {
        if !dirs.contains(dir) {
            dirs.push(dir.clone());
        }
    }
    for dir in dirs {
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(
                "cannot watch {} ({e}); its files are followed by stat timer only",
                dir.display()
            );
        }
    }
}

/// Wakes every follower `wanted` (after an overflow or a watcher error: each looks for itself).
fn wake_all(map: &WakeMap, wanted: impl Fn(&WakeEntry) -> bool) {
    map.values()
        .flatten()
        .filter(|entry| wanted(entry))
        .for_each(|entry| wake(&entry.wake));
}

/// Wakes the followers (those `wanted`) an event on `path` concerns.
fn wake_for_path(map: &WakeMap, path: &Path, wanted: impl Fn(&WakeEntry) -> bool) {
    // An event on the directory itself (removed, moved) concerns all of its files.
    if let Some(entries) = map.get(path) {
        entries
            .iter()
            .filter(|entry| wanted(entry))
            .for_each(|entry| wake(&entry.wake));
        return;
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let Some(entries) = map.get(dir) else {
        return;
    };
    let mut matched = false;
    for entry in entries.iter().filter(|entry| entry.name == name) {
        if wanted(entry) {
            wake(&entry.wake);
        }
        matched = true;
    }
    if !matched {
        // Another name in the directory: perhaps a rotated file a follower still reads
        // (`app.log.1` being written through the old descriptor).
        entries
            .iter()
            .filter(|entry| entry.draining.load(Ordering::Relaxed) && wanted(entry))
            .for_each(|entry| wake(&entry.wake));
    }
}

/// `from` was renamed to `to`: if `from` is a followed name, open `to` now, while it still names
/// that generation, and queue it for the follower.
fn pin_renamed(map: &WakeMap, from: &Path, to: &Path) {
    let (Some(dir), Some(name)) = (from.parent(), from.file_name()) else {
        return;
    };
    let Some(entries) = map.get(dir) else {
        return;
    };
    for entry in entries.iter().filter(|entry| entry.name == name) {
        // Not a plain open: a FIFO renamed here would block the watcher thread for good.
        let opened = if entry.no_symlinks {
            open::open_regular_no_symlink(to)
        } else {
            open_regular(to)
        };
        let Ok((file, _)) = opened else {
            continue;
        };
        if let Ok(mut queue) = entry.rotated.lock() {
            if queue.len() == MAX_QUEUED_ROTATIONS {
                queue.pop_front();
            }
            queue.push_back(file);
        }
    }
}

fn wake(bell: &Option<Arc<Doorbell>>) {
    if let Some(bell) = bell {
        bell.ring();
    }
}
