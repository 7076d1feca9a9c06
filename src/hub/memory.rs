//! The in-memory history: the hub's first backend, and the live cache in front of any other.
//!
//! For each configured file it numbers lines (`seq` from 1, never reused while the process
//! lives, carried across rotation) and keeps a bounded [`History`] of batches (`--history` lines
//! for backlog; lines a live reader has not read yet stay until the `--history-bytes` bound).
//! That history is the only copy: live readers ([`MemoryCursor`]) are woken by a [`Notify`] and
//! read it by cursor, so a slow or stalled client holds no queue of its own and, when it falls
//! out of the history, is told of an exact `gap`. File state changes are kept in a short ring
//! beside it, each with the seq it happened before, so readers see them in order.
//!
//! During a burst the tailer is paced to its readers ([`MemoryHistory::pace`]): when the next
//! batch would push lines a reader has not read out of the history, the follower waits for it
//! before reading on; the file itself is the buffer. A reader that cannot make room within the
//! pace timeout is left behind (told of a gap) and paces nobody until it has caught up. The
//! per-file mutex is held only for short, non-async sections.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::cursor::{MemoryCursor, ReaderShared};
use super::HistoryBackend;
use super::{
    Batch, CursorAhead, Delivery, FileIx, FileSummary, Gap, History, HistoryRead, HubConfig, Start,
};
use crate::tail::{FileState, LineBatch};

/// File state changes remembered per file for readers that have not seen them yet.
const KEPT_STATES: usize = 64;

struct FileChannel {
    /// Set once, when the slot is taken (at start, or when a live glob finds a file).
    id: OnceLock<String>,
    path: OnceLock<PathBuf>,
    /// In a cluster: the node whose file it is, and whether that is another node.
    node: OnceLock<(Option<String>, bool)>,
    shared: Mutex<FileShared>,
    /// Signalled when a reader advances while the tailer waits in [`Hub::pace`].
    room: Condvar,
    /// While the tailer waits in [`Hub::pace`]: the seq a reader must reach to make room
    /// (`u64::MAX` when it does not wait), so that only readers crossing it wake the tailer.
    waiting_for: AtomicU64,
    /// Newest seq, readable without the lock.
    last_seq: AtomicU64,
    /// Read time of the newest batch (unix ms): a batch is never stamped earlier, so a file's
    /// times never go backwards when the wall clock is set back (clients order lines by them).
    last_time_ms: AtomicU64,
    /// State changes so far, readable without the lock.
    state_count: AtomicU64,
    /// Changes of the pending (unfinished) line so far, readable without the lock.
    pending_count: AtomicU64,
}

impl FileChannel {
    /// Another node's file (mirrored from the cluster).
    fn is_remote(&self) -> bool {
        self.node.get().is_some_and(|(_, remote)| *remote)
    }

    /// A free slot.
    fn new(config: &HubConfig) -> Self {
        FileChannel {
            id: OnceLock::new(),
            path: OnceLock::new(),
            node: OnceLock::new(),
            shared: Mutex::new(FileShared {
                history: History::new(config.history_lines, config.history_bytes),
                next_seq: 1,
                exists: false,
                size: 0,
                error: None,
                states: VecDeque::new(),
                next_state: 0,
                pending: None,
                readers: Vec::new(),
                pace_credit: PaceCredit::new(config.pace_timeout),
            }),
            room: Condvar::new(),
            waiting_for: AtomicU64::new(u64::MAX),
            last_seq: AtomicU64::new(0),
            last_time_ms: AtomicU64::new(0),
            state_count: AtomicU64::new(0),
            pending_count: AtomicU64::new(0),
        }
    }
}

/// A file state change, and where it happened: before line `at_seq`.
struct StateRecord {
    index: u64,
    at_seq: u64,
    state: FileState,
}

struct FileShared {
    history: History,
    next_seq: u64,
    exists: bool,
    size: u64,
    /// Why the path cannot be followed, for clients.
    error: Option<String>,
    states: VecDeque<StateRecord>,
    next_state: u64,
    /// The unfinished last line, shown to readers at the head.
    pending: Option<Arc<str>>,
    readers: Vec<Weak<ReaderShared>>,
    /// How long the tailer may still wait for readers that then fail to make room.
    pace_credit: PaceCredit,
}

/// The budget of waits that run to their deadline (a reader too slow to make the room waited
/// for): at most the pace timeout at once, and over time at most [`PACE_SHARE`] of the time,
/// however many slow readers come and go. Waits that end because the readers made room cost
/// nothing: that is pacing doing its job.
struct PaceCredit {
    available: Duration,
    updated: Instant,
}

/// The share of time a file's reading may lose to readers that then fall behind anyway.
const PACE_SHARE: u32 = 10;

impl PaceCredit {
    fn new(cap: Duration) -> Self {
        PaceCredit {
            available: cap,
            updated: Instant::now(),
        }
    }

    /// Refills at one [`PACE_SHARE`]th of the time passed, up to `cap`; returns what is available.
    fn refill(&mut self, now: Instant, cap: Duration) -> Duration {
        let earned = now.saturating_duration_since(self.updated) / PACE_SHARE;
        self.available = (self.available + earned).min(cap);
        self.updated = now;
        self.available
    }
}

struct HubInner {
    /// Every slot, allocated at start: the files named then, and room for those live globs
    /// and directories find later; `count` of them are in use.
    files: Vec<FileChannel>,
    count: AtomicUsize,
    by_id: RwLock<HashMap<String, FileIx>>,
    /// The number of files, for those who show the list (it only grows).
    files_changed: watch::Sender<usize>,
    epoch: AtomicU64,
    pace_timeout: Duration,
    /// This node's name in a cluster (its own files carry it).
    node: Option<String>,
    history_lines: usize,
    history_bytes: usize,
    /// See [`HubConfig::remote_ahead`].
    remote_ahead: u64,
}

/// The in-memory history of every file; see the module documentation. A cheap-clone handle.
#[derive(Clone)]
pub struct MemoryHistory {
    inner: Arc<HubInner>,
}

impl MemoryHistory {
    /// A hub for `files` (id, path), in that order; `epoch` identifies this server run.
    pub fn new(files: Vec<(String, PathBuf)>, config: &HubConfig, epoch: u64) -> MemoryHistory {
        let capacity = files.len() + config.more_files;
        let channels = (0..capacity).map(|_| FileChannel::new(config)).collect();
        let history = MemoryHistory {
            inner: Arc::new(HubInner {
                files: channels,
                count: AtomicUsize::new(0),
                by_id: RwLock::new(HashMap::new()),
                files_changed: watch::channel(0).0,
                epoch: AtomicU64::new(epoch),
                pace_timeout: config.pace_timeout,
                node: config.node.clone(),
                history_lines: config.history_lines,
                history_bytes: config.history_bytes,
                remote_ahead: config.remote_ahead,
            }),
        };
        for (id, path) in files {
            history.add_file(id, path);
        }
        history
    }

    /// Takes the next free slot for a file; `None` when none is left or the id is taken.
    fn add_slot(
        &self,
        id: String,
        path: PathBuf,
        node: Option<String>,
        remote: bool,
    ) -> Option<FileIx> {
        let inner = &self.inner;
        let mut by_id = inner.by_id.write().unwrap_or_else(|e| e.into_inner());
        let ix = inner.count.load(Ordering::Acquire);
        if ix == inner.files.len() || by_id.contains_key(&id) {
            return None;
        }
        let channel = &inner.files[ix];
        let _ = channel.id.set(id.clone());
        let _ = channel.path.set(path);
        let _ = channel.node.set((node, remote));
        by_id.insert(id, ix);
        inner.count.store(ix + 1, Ordering::Release);
        drop(by_id);
        inner.files_changed.send_replace(ix + 1);
        Some(ix)
    }

    /// (newest seq, state changes so far, pending-line changes so far), without the lock.
    pub(super) fn heads(&self, file: FileIx) -> (u64, u64, u64) {
        let channel = &self.inner.files[file];
        (
            channel.last_seq.load(Ordering::Acquire),
            channel.state_count.load(Ordering::Acquire),
            channel.pending_count.load(Ordering::Acquire),
        )
    }

    /// Registers a reader starting at `start`, woken through `wake` whenever the file has news.
    /// Its first [`LiveCursor::read`] returns the backlog (or what follows the cursor, with a gap
    /// for lines no longer kept); later reads return what came since.
    fn subscribe_cursor(
        &self,
        file: FileIx,
        start: Start,
        wake: Arc<Notify>,
    ) -> Result<MemoryCursor, CursorAhead> {
        let channel = &self.inner.files[file];
        let mut shared = lock(&channel.shared);
        let next_seq = match start {
            Start::Backlog(n) => {
                let first_kept = shared.history.first_seq().unwrap_or(shared.next_seq);
                shared.next_seq.saturating_sub(n as u64).max(first_kept)
            }
            // Another node's file: this copy may lag behind what a client saw elsewhere, so a
            // cursor a little ahead waits here for its lines instead of being reset.
            Start::After(after)
                if after >= shared.next_seq
                    && !(channel.is_remote()
                        && after - (shared.next_seq - 1) <= self.inner.remote_ahead) =>
            {
                return Err(CursorAhead {
                    after,
                    last_seq: shared.next_seq - 1,
                });
            }
            Start::After(after) => after + 1,
        };
        let reader = Arc::new(ReaderShared {
            next_seq: AtomicU64::new(next_seq),
            wake,
            // A reader paces the tailer only once it has shown it keeps up by reaching the head:
            // a client that subscribes with a backlog and never reads holds nobody up.
            left_behind: AtomicBool::new(next_seq < shared.next_seq),
        });
        shared.readers.retain(|r| r.strong_count() > 0);
        shared.readers.push(Arc::downgrade(&reader));
        // State changes still kept that fall among the lines this reader will get: for a
        // resume, also one right before its first line (it happened while the client was away).
        let first_state_seq = match start {
            Start::After(_) => next_seq,
            Start::Backlog(_) => next_seq + 1,
        };
        let next_state = shared
            .states
            .iter()
            .find(|state| state.at_seq >= first_state_seq)
            .map_or(shared.next_state, |state| state.index);
        Ok(MemoryCursor {
            file,
            next_seq,
            next_state,
            // A line pending when the reader comes is shown to it too.
            pending_seen: u64::MAX,
            pending_shown: false,
            shared: reader,
            hub: self.clone(),
        })
    }

    /// [`MemoryCursor`]'s read: gap, lines and state changes after the cursor, in order.
    pub(super) fn read_for(
        &self,
        cursor: &mut MemoryCursor,
        max_lines: usize,
        max_bytes: usize,
    ) -> Vec<Delivery> {
        let channel = &self.inner.files[cursor.file];
        let shared = lock(&channel.shared);
        let mut out = Vec::new();
        let oldest_state = shared.states.front().map_or(shared.next_state, |s| s.index);
        let mut next_state = cursor.next_state.max(oldest_state);
        let last_seq = shared.next_seq - 1;
        let mut read = if cursor.next_seq <= last_seq {
            read_after(&shared, cursor.next_seq - 1, max_lines)
        } else {
            HistoryRead::default()
        };
        // At most `max_bytes` of text (at least one line). Cut between batches where it can: a
        // whole batch goes out as the frame it shares with every other reader, a part of one is
        // encoded again for this reader alone (twice: the part, then the rest). Only a first
        // slice larger than the bound by itself is cut, between lines.
        let mut taken_bytes = 0;
        let mut keep = 0;
        for slice in &mut read.slices {
            if taken_bytes >= max_bytes {
                break;
            }
            let bytes = slice.text_bytes();
            if taken_bytes + bytes > max_bytes {
                if taken_bytes > 0 {
                    break;
                }
                let mut end = slice.range.start;
                for line in slice.lines() {
                    let cost = line.len() + 1;
                    if taken_bytes > 0 && taken_bytes + cost > max_bytes {
                        break;
                    }
                    taken_bytes += cost;
                    end += 1;
                }
                if end > slice.range.start {
                    slice.range.end = end;
                    keep += 1;
                }
                break;
            }
            taken_bytes += bytes;
            keep += 1;
        }
        read.slices.truncate(keep);
        let first_unseen = next_state;
        let mut states = shared
            .states
            .iter()
            .filter(|s| s.index >= first_unseen)
            .peekable();
        let mut next_seq = cursor.next_seq;
        // States before the cursor: only a cursor held ahead of this node's copy of another
        // node's file has such (its client saw them where it read those lines); no other
        // reader is ever behind a state it has not read.
        while let Some(state) = states.next_if(|s| s.at_seq < next_seq) {
            next_state = state.index + 1;
        }
        if let Some(gap) = read.gap {
            take_states_before(&mut states, gap.from, &mut next_state, &mut out);
            out.push(Delivery::Gap(gap));
            next_seq = gap.to + 1;
        }
        for mut slice in read.slices {
            loop {
                take_states_before(&mut states, slice.first_seq(), &mut next_state, &mut out);
                let end = slice.first_seq() + slice.len() as u64;
                match states.peek() {
                    // A state change in the middle of this slice: split it there.
                    Some(state) if state.at_seq < end => {
                        let rest = slice.from_seq(state.at_seq);
                        slice.range.end = rest.range.start;
                        out.push(Delivery::Lines(slice));
                        slice = rest;
                    }
                    _ => {
                        next_seq = end;
                        out.push(Delivery::Lines(slice));
                        break;
                    }
                }
            }
        }
        // State changes after the last line read (all of them when the reader is at the head).
        take_states_before(&mut states, next_seq, &mut next_state, &mut out);
        cursor.next_state = next_state;
        // At the head, the unfinished line as it is now (once per change); not for a reader
        // held ahead of the head (its next line is not the pending one).
        let pending_count = channel.pending_count.load(Ordering::Acquire);
        if next_seq > last_seq && cursor.pending_seen != pending_count {
            if next_seq == last_seq + 1 {
                let text = shared.pending.clone();
                if text.is_some() || cursor.pending_shown {
                    out.push(Delivery::Pending {
                        seq: next_seq,
                        text: text.clone(),
                    });
                }
                cursor.pending_shown = text.is_some();
            }
            cursor.pending_seen = pending_count;
        }
        if next_seq > last_seq {
            // Caught up: a reader left behind in a burst paces the tailer again.
            cursor.shared.left_behind.store(false, Ordering::Release);
        }
        if next_seq != cursor.next_seq {
            cursor.set_next_seq(next_seq);
            if next_seq >= channel.waiting_for.load(Ordering::Acquire) {
                channel.room.notify_all();
            }
        }
        out
    }

    /// Called by `append` (the [`HistoryBackend`] method) before it stores a batch of `incoming` bytes: while the batch
    /// would push lines a reader has not read out of the history's byte bound, waits for that
    /// reader (released the moment a reader gets past them). Returns the file's lock. A reader
    /// that does not make room within the pace timeout is too slow: it is left behind (reading
    /// goes on, it will be told of a gap) and paces nobody until it has caught up. So the file,
    /// not memory, buffers a burst; clients that keep up lose nothing; and slow clients hold the
    /// others up for one pace timeout at most at a time, and for at most a tenth of the time
    /// over any longer window ([`PaceCredit`]), however many of them come.
    fn pace(&self, file: FileIx, incoming: usize) -> MutexGuard<'_, FileShared> {
        let channel = &self.inner.files[file];
        let cap = self.inner.pace_timeout;
        let mut shared = lock(&channel.shared);
        // The batch would push out lines before `evicted_end`.
        let Some(evicted_end) = shared.history.next_eviction_end(incoming) else {
            return shared;
        };
        let started = Instant::now();
        let credit = shared.pace_credit.refill(started, cap);
        let deadline = started + credit;
        // Once waiting, wait for room for a quarter of the history, not just this batch: the
        // tailer then stops once per quarter, not at every batch of a burst.
        let quarter = shared.history.max_bytes() / 4;
        let room_end = shared
            .history
            .next_eviction_end(incoming.max(quarter))
            .map_or(evicted_end, |end| end.max(evicted_end));
        let mut wanted = evicted_end;
        loop {
            match slowest_reader(&mut shared) {
                Some(slowest) if slowest < wanted => wanted = room_end,
                _ => return shared,
            }
            let now = Instant::now();
            if now >= deadline {
                for reader in pacing_readers(&shared) {
                    if reader.next_seq.load(Ordering::Acquire) < evicted_end {
                        reader.left_behind.store(true, Ordering::Release);
                    }
                }
                // A wait that ran to its deadline was lost, whether a reader was left behind or
                // one made just enough room for this batch but not the quarter waited for: it
                // comes out of the budget, so no reader, however slow, holds the file back more
                // than the budget allows.
                let lost = now.saturating_duration_since(started);
                let credit = &mut shared.pace_credit;
                credit.available = credit.available.saturating_sub(lost);
                return shared;
            }
            channel.waiting_for.store(room_end, Ordering::Release);
            shared = match channel.room.wait_timeout(shared, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            channel.waiting_for.store(u64::MAX, Ordering::Release);
        }
    }

    /// A reader went away (its cursor was dropped): it paces nobody, and a tailer waiting for it
    /// goes on at once.
    pub(super) fn reader_gone(&self, file: FileIx, reader: &ReaderShared) {
        reader.left_behind.store(true, Ordering::Release);
        let channel = &self.inner.files[file];
        if channel.waiting_for.load(Ordering::Acquire) != u64::MAX {
            // Under the lock, so the wake-up cannot fall between the tailer's check and its wait.
            let _shared = lock(&channel.shared);
            channel.room.notify_all();
        }
    }
}

impl std::fmt::Debug for MemoryHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHistory")
            .field("files", &self.file_count())
            .finish()
    }
}

impl HistoryBackend for MemoryHistory {
    fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    fn adopt_epoch(&self, epoch: u64) {
        self.inner.epoch.store(epoch, Ordering::Release);
    }

    fn file_count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    fn lookup(&self, id: &str) -> Option<FileIx> {
        let by_id = self.inner.by_id.read().unwrap_or_else(|e| e.into_inner());
        by_id.get(id).copied()
    }

    fn id(&self, file: FileIx) -> &str {
        self.inner.files[file].id.get().map_or("", String::as_str)
    }

    fn add_file(&self, id: String, path: PathBuf) -> Option<FileIx> {
        self.add_slot(id, path, self.inner.node.clone(), false)
    }

    fn add_remote_file(&self, id: String, path: PathBuf, node: String) -> Option<FileIx> {
        self.add_slot(id, path, Some(node), true)
    }

    fn watch_files(&self) -> watch::Receiver<usize> {
        self.inner.files_changed.subscribe()
    }

    fn info(&self, file: FileIx) -> FileSummary {
        let channel = &self.inner.files[file];
        let shared = lock(&channel.shared);
        FileSummary {
            id: self.id(file).to_owned(),
            path: channel
                .path
                .get()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            exists: shared.exists,
            size: shared.size,
            last_seq: shared.next_seq - 1,
            error: shared.error.clone(),
            node: channel.node.get().and_then(|(node, _)| node.clone()),
            remote: channel.is_remote(),
        }
    }

    fn is_remote(&self, file: FileIx) -> bool {
        self.inner.files[file].is_remote()
    }

    fn last_seq(&self, file: FileIx) -> u64 {
        self.inner.files[file].last_seq.load(Ordering::Acquire)
    }

    fn append(&self, file: FileIx, mut lines: LineBatch) -> u64 {
        let channel = &self.inner.files[file];
        // Kept for a while: no spare capacity (the byte bound counts what is allocated).
        lines.shrink_to_fit();
        // Only the tailer thread appends, so this is still the next seq when the batch is stored.
        let first_seq = self.last_seq(file) + 1;
        // The read time, taken once for the whole batch (see `last_time_ms`).
        let time_ms =
            super::history::unix_ms_now().max(channel.last_time_ms.load(Ordering::Relaxed));
        channel.last_time_ms.store(time_ms, Ordering::Relaxed);
        let batch = Arc::new(Batch::read_at(first_seq, lines, time_ms));
        // During a burst, let the readers that keep up make room for this batch first.
        let mut shared = self.pace(file, batch.bytes());
        shared.next_seq += batch.lines.len() as u64;
        let keep_from = if shared.history.over_line_bound(batch.lines.len()) {
            slowest_reader(&mut shared).unwrap_or(u64::MAX)
        } else {
            u64::MAX
        };
        shared.history.push_keeping(batch, keep_from);
        channel
            .last_seq
            .store(shared.next_seq - 1, Ordering::Release);
        wake_readers(&mut shared);
        first_seq
    }

    fn ingest(&self, file: FileIx, first_seq: u64, time_ms: u64, lines: LineBatch) {
        let channel = &self.inner.files[file];
        // Only the cluster's mirror ingests into this file, so this stays the next seq.
        let next_seq = self.last_seq(file) + 1;
        let end_seq = first_seq + lines.len() as u64;
        if lines.is_empty() || end_seq <= next_seq {
            return;
        }
        let lines = if first_seq < next_seq {
            // Some of these lines are here already: keep the rest.
            let skip = (next_seq - first_seq) as usize;
            let mut rest = LineBatch::default();
            let truncated = lines.truncated();
            for (ix, line) in lines.lines().enumerate().skip(skip) {
                // In order (a batch's marks are pushed with its lines).
                rest.push(line, truncated.binary_search(&(ix as u32)).is_ok());
            }
            rest
        } else {
            lines
        };
        let first_seq = end_seq - lines.len() as u64;
        let time_ms = time_ms.max(channel.last_time_ms.load(Ordering::Relaxed));
        channel.last_time_ms.store(time_ms, Ordering::Relaxed);
        let mut lines = lines;
        lines.shrink_to_fit();
        let batch = Arc::new(Batch::read_at(first_seq, lines, time_ms));
        let mut shared = if first_seq > next_seq {
            // What lies between is gone for good: the history starts again here, and a reader
            // behind it reads the exact gap (waiting for readers would save nothing).
            let mut shared = lock(&channel.shared);
            shared.history = History::new(self.inner.history_lines, self.inner.history_bytes);
            shared
        } else {
            // Like the tailer, the mirror waits (bounded) for the readers that keep up: the
            // stream in Redis is the buffer.
            self.pace(file, batch.bytes())
        };
        shared.next_seq = end_seq;
        let keep_from = if shared.history.over_line_bound(batch.lines.len()) {
            slowest_reader(&mut shared).unwrap_or(u64::MAX)
        } else {
            u64::MAX
        };
        shared.history.push_keeping(batch, keep_from);
        channel.last_seq.store(end_seq - 1, Ordering::Release);
        wake_readers(&mut shared);
    }

    fn continue_numbering(&self, file: FileIx, next_seq: u64) {
        let channel = &self.inner.files[file];
        let mut shared = lock(&channel.shared);
        if shared.history.is_empty() && shared.next_seq == 1 && next_seq > 1 {
            shared.next_seq = next_seq;
            channel.last_seq.store(next_seq - 1, Ordering::Release);
        }
    }

    fn set_state(&self, file: FileIx, state: FileState) {
        let channel = &self.inner.files[file];
        let mut shared = lock(&channel.shared);
        let record = StateRecord {
            index: shared.next_state,
            at_seq: shared.next_seq,
            state,
        };
        if shared.states.len() == KEPT_STATES {
            shared.states.pop_front();
        }
        shared.states.push_back(record);
        shared.next_state += 1;
        channel
            .state_count
            .store(shared.next_state, Ordering::Release);
        wake_readers(&mut shared);
    }

    fn set_pending(&self, file: FileIx, text: Option<&str>) {
        let channel = &self.inner.files[file];
        let mut shared = lock(&channel.shared);
        shared.pending = text.map(Arc::from);
        channel.pending_count.fetch_add(1, Ordering::AcqRel);
        wake_readers(&mut shared);
    }

    fn set_status(&self, file: FileIx, status: crate::tail::FileStatus) {
        let mut shared = lock(&self.inner.files[file].shared);
        shared.exists = status.exists;
        shared.size = status.size;
        shared.error = status.error;
    }

    fn history_usage(&self, file: FileIx) -> (usize, usize) {
        let shared = lock(&self.inner.files[file].shared);
        (shared.history.len(), shared.history.bytes())
    }

    fn subscribe(
        &self,
        file: FileIx,
        start: Start,
        wake: Arc<Notify>,
    ) -> Result<Box<dyn super::CursorBackend>, CursorAhead> {
        self.subscribe_cursor(file, start, wake)
            .map(|cursor| Box::new(cursor) as Box<dyn super::CursorBackend>)
    }
}

/// Moves the state changes that happened before line `seq` to `out`.
fn take_states_before<'a>(
    states: &mut std::iter::Peekable<impl Iterator<Item = &'a StateRecord>>,
    seq: u64,
    next_state: &mut u64,
    out: &mut Vec<Delivery>,
) {
    while let Some(state) = states.next_if(|s| s.at_seq <= seq) {
        out.push(Delivery::State(state.state));
        *next_state = state.index + 1;
    }
}

/// Wakes every live reader of a file and forgets the dropped ones.
fn wake_readers(shared: &mut FileShared) {
    shared.readers.retain(|reader| match reader.upgrade() {
        Some(reader) => {
            reader.wake.notify_one();
            true
        }
        None => false,
    });
}

/// The live readers that pace the tailer (not left behind).
fn pacing_readers(shared: &FileShared) -> impl Iterator<Item = Arc<ReaderShared>> + '_ {
    shared
        .readers
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|reader| !reader.left_behind.load(Ordering::Acquire))
}

/// The position of the slowest reader that paces the tailer, if any.
fn slowest_reader(shared: &mut FileShared) -> Option<u64> {
    shared.readers.retain(|r| r.strong_count() > 0);
    pacing_readers(shared)
        .map(|reader| reader.next_seq.load(Ordering::Acquire))
        .min()
}

/// What the history holds after `after` (at most `max` lines), with a gap for what is gone.
fn read_after(shared: &FileShared, after: u64, max: usize) -> HistoryRead {
    let last_seq = shared.next_seq - 1;
    let mut read = shared.history.read_after(after, max);
    if read.slices.is_empty() && read.gap.is_none() && after < last_seq {
        // Everything after the cursor was evicted and nothing newer is kept.
        read.gap = Some(Gap {
            from: after + 1,
            to: last_seq,
        });
    }
    read
}

/// Locks a mutex, recovering the data if a holder panicked (the data stays consistent: every
/// critical section only pushes complete values).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::describe;
    // Through the seam: what the transports see.
    use crate::hub::Hub;

    fn hub(history_lines: usize) -> Hub {
        let config = HubConfig {
            history_lines,
            history_bytes: 1 << 20,
            pace_timeout: Duration::ZERO,
            more_files: 0,
            node: None,
            remote_ahead: 0,
        };
        Hub::new(vec![("f".into(), PathBuf::from("/f"))], &config, 1)
    }

    fn batch(lines: &[&str]) -> LineBatch {
        let mut batch = LineBatch::default();
        for line in lines {
            batch.push(line, false);
        }
        batch
    }

    #[test]
    fn a_reader_gets_lines_and_states_in_order_and_a_gap_only_for_what_left() {
        let hub = hub(3);
        hub.append(0, batch(&["a", "b"]));
        let wake = Arc::new(Notify::new());
        let mut reader = hub.subscribe(0, Start::Backlog(1), wake.clone()).unwrap();
        hub.set_state(0, FileState::Rotated);
        hub.append(0, batch(&["c"]));
        assert!(reader.has_news());
        assert_eq!(
            describe(&reader.read(100, usize::MAX)),
            ["b", "<rotated>", "c"]
        );
        assert!(!reader.has_news());
        assert!(reader.read(100, usize::MAX).is_empty());
        // A client resuming after line 2 (or asking for a backlog that spans the rotation) is
        // told of the rotation where it happened.
        let other = Arc::new(Notify::new());
        let mut resumed = hub.subscribe(0, Start::After(2), other.clone()).unwrap();
        assert_eq!(describe(&resumed.read(100, usize::MAX)), ["<rotated>", "c"]);
        let mut backlog = hub.subscribe(0, Start::Backlog(3), other.clone()).unwrap();
        assert_eq!(
            describe(&backlog.read(100, usize::MAX)),
            ["a,b", "<rotated>", "c"]
        );
        let mut last = hub.subscribe(0, Start::Backlog(1), other).unwrap();
        assert_eq!(describe(&last.read(100, usize::MAX)), ["c"]);

        // A second reader that read nothing keeps its lines from the line bound...
        let mut slow = hub.subscribe(0, Start::After(3), wake).unwrap();
        hub.append(0, batch(&["d", "e", "f", "g"]));
        assert_eq!(describe(&slow.read(2, usize::MAX)), ["d,e"]);
        assert_eq!(describe(&slow.read(100, usize::MAX)), ["f,g"]);
        // ...but a reader that was dropped no longer does, and one that fell out gets a gap.
        drop(reader);
        let mut late = hub
            .subscribe(0, Start::After(0), Arc::new(Notify::new()))
            .unwrap();
        drop(slow);
        hub.append(0, batch(&["h"]));
        let got = describe(&late.read(100, usize::MAX));
        assert_eq!(got[0], "gap 1-3", "{got:?}");
        assert_eq!(got.last().map(String::as_str), Some("h"));
    }

    #[test]
    fn a_cursor_a_little_ahead_of_another_nodes_file_waits_for_its_lines() {
        let config = HubConfig::on_node_here(100, 10);
        let hub = Hub::new(vec![("here/f".into(), PathBuf::from("/f"))], &config, 1);
        let remote = hub
            .add_remote_file("there/g".into(), PathBuf::from("/g"), "there".into())
            .unwrap();
        hub.ingest(remote, 1, 0, batch(&["1", "2", "3"]));
        hub.append(0, batch(&["1", "2", "3"]));
        let wake = || Arc::new(Notify::new());
        // This node's copy has 3 lines; a client saw 8 on the publisher.
        let mut held = hub.subscribe(remote, Start::After(8), wake()).unwrap();
        assert_eq!(held.next_seq(), 9);
        assert!(held.read(100, usize::MAX).is_empty());
        assert!(!held.has_news());
        hub.ingest(remote, 4, 0, batch(&["4", "5"]));
        // A rotation after line 5: the client saw it where it saw line 5 (and it is not told
        // again even when the lines after the cursor come before the reader reads).
        hub.set_state(remote, FileState::Rotated);
        hub.ingest(remote, 6, 0, batch(&["6", "7", "8", "9", "10"]));
        hub.set_state(remote, FileState::Truncated);
        assert!(held.has_news());
        assert_eq!(
            describe(&held.read(100, usize::MAX)),
            ["9,10", "<truncated>"]
        );
        // Further ahead than this node can lag, or on a file of this node's own: refused.
        let far = hub.subscribe(remote, Start::After(21), wake());
        assert_eq!(
            far.err(),
            Some(CursorAhead {
                after: 21,
                last_seq: 10
            })
        );
        assert!(hub.subscribe(remote, Start::After(20), wake()).is_ok());
        assert!(hub.subscribe(0, Start::After(4), wake()).is_err());
    }

    #[test]
    fn the_tailer_waits_for_a_lagging_reader_and_goes_on_when_it_leaves() {
        // Room for two and a half batches: a reader that read nothing holds the third one back.
        let line = "x".repeat(100);
        let probe = hub(10);
        probe.append(0, batch(&[&line]));
        let batch_bytes = probe.history_usage(0).1;
        let config = HubConfig {
            history_lines: 1,
            history_bytes: batch_bytes * 5 / 2,
            pace_timeout: Duration::from_secs(60),
            more_files: 0,
            node: None,
            remote_ahead: 0,
        };
        let hub = Hub::new(vec![("f".into(), PathBuf::from("/f"))], &config, 1);
        let reader = hub.subscribe(0, Start::After(0), Arc::new(Notify::new()));
        let reader = reader.unwrap();
        hub.append(0, batch(&[&line]));
        hub.append(0, batch(&[&line]));
        let tailer = {
            let hub = hub.clone();
            let line = line.clone();
            std::thread::spawn(move || hub.append(0, batch(&[&line])))
        };
        // The third append waits: the reader has not read line 1 that it would push out.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !tailer.is_finished(),
            "the tailer did not wait for the reader"
        );
        // The reader leaves: the tailer goes on at once, not after the 60 s pace timeout.
        let dropped_at = std::time::Instant::now();
        drop(reader);
        assert_eq!(tailer.join().unwrap(), 3);
        assert!(dropped_at.elapsed() < Duration::from_secs(30));
    }
}
