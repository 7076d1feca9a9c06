//! The hub: per-file history and live fan-out, shared by every transport.
//!
//! For each configured file the hub numbers lines (`seq` from 1, never reused while the process
//! lives, carried across rotation), keeps a bounded [`History`], and publishes each batch once on
//! a bounded `tokio::sync::broadcast` channel as an `Arc<Batch>` whose wire frame was serialized
//! once. A subscriber that falls more than the channel's capacity behind gets `Lagged`, which the
//! transports turn into a `gap`: no per-client queue ever grows without bound.
//!
//! [`Hub`] is the cheap-clone handle (an `Arc`). Its small interface (append a batch, read after a
//! cursor, subscribe for what comes next) is the seam where a shared backend could sit later. The
//! per-file mutex is held only for short, non-async sections.

mod cursor;
mod history;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use bytestring::ByteString;
use tokio::sync::broadcast;

pub use cursor::{Delivery, LiveCursor};
pub use history::{Batch, BatchSlice, Gap, History, HistoryRead};

use crate::protocol::{self, FileInfo, ServerMessage};
use crate::tail::{FileState, LineBatch};

/// Index of a file in the hub.
pub type FileIx = usize;

/// Bounds of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Lines kept per file.
    pub history_lines: usize,
    /// Bytes kept per file (approximately: whole batches).
    pub history_bytes: usize,
    /// Batches a live subscriber may fall behind before it is told of a gap.
    pub live_queue_batches: usize,
}

/// Something that happened to a file, as published to live subscribers.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// New lines.
    Lines(Arc<Batch>),
    /// A state change, with its `file` message already serialized.
    State(FileState, ByteString),
}

/// Where a read or subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The newest N lines.
    Backlog(usize),
    /// Every line with seq > this.
    After(u64),
}

/// A cursor beyond the newest line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor {after} is beyond the newest line ({last_seq})")]
pub struct CursorAhead {
    /// The cursor given.
    pub after: u64,
    /// The newest seq.
    pub last_seq: u64,
}

/// A consistent snapshot: what the history holds for a start point, and the newest seq at that
/// moment (live delivery continues right after it).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The lines (and gap) read.
    pub read: HistoryRead,
    /// Newest seq when the snapshot was taken.
    pub last_seq: u64,
}

struct FileChannel {
    id: String,
    path: PathBuf,
    shared: Mutex<FileShared>,
    live: broadcast::Sender<LiveEvent>,
}

struct FileShared {
    history: History,
    next_seq: u64,
    exists: bool,
    size: u64,
}

struct HubInner {
    files: Vec<FileChannel>,
    by_id: HashMap<String, FileIx>,
    epoch: u64,
}

/// The handle; see the module documentation.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl Hub {
    /// A hub for `files` (id, path), in that order; `epoch` identifies this server run.
    pub fn new(files: Vec<(String, PathBuf)>, config: &HubConfig, epoch: u64) -> Hub {
        let mut by_id = HashMap::new();
        let files = files
            .into_iter()
            .enumerate()
            .map(|(ix, (id, path))| {
                by_id.insert(id.clone(), ix);
                let (live, _) = broadcast::channel(config.live_queue_batches.max(1));
                FileChannel {
                    id,
                    path,
                    shared: Mutex::new(FileShared {
                        history: History::new(config.history_lines, config.history_bytes),
                        next_seq: 1,
                        exists: false,
                        size: 0,
                    }),
                    live,
                }
            })
            .collect();
        Hub {
            inner: Arc::new(HubInner {
                files,
                by_id,
                epoch,
            }),
        }
    }

    /// This server run's epoch.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    /// Number of files.
    pub fn file_count(&self) -> usize {
        self.inner.files.len()
    }

    /// The file with this id, if configured. Ids are only ever compared, never used as paths.
    pub fn lookup(&self, id: &str) -> Option<FileIx> {
        self.inner.by_id.get(id).copied()
    }

    /// A file's id.
    pub fn id(&self, file: FileIx) -> &str {
        &self.inner.files[file].id
    }

    /// Every file's public description.
    pub fn files(&self) -> Vec<FileInfo> {
        (0..self.inner.files.len())
            .map(|ix| self.info(ix))
            .collect()
    }

    /// One file's public description.
    pub fn info(&self, file: FileIx) -> FileInfo {
        let channel = &self.inner.files[file];
        let shared = lock(&channel.shared);
        FileInfo {
            id: channel.id.clone(),
            path: channel.path.display().to_string(),
            exists: shared.exists,
            size: shared.size,
            last_seq: shared.next_seq - 1,
        }
    }

    /// Newest seq of a file (0 before its first line).
    pub fn last_seq(&self, file: FileIx) -> u64 {
        lock(&self.inner.files[file].shared).next_seq - 1
    }

    /// Numbers a batch of lines, stores it and publishes it; returns its first seq.
    pub fn append(&self, file: FileIx, lines: LineBatch) -> u64 {
        let channel = &self.inner.files[file];
        let mut shared = lock(&channel.shared);
        let first_seq = shared.next_seq;
        shared.next_seq += lines.len() as u64;
        let frame = ByteString::from(protocol::batch_frame(&channel.id, first_seq, &lines));
        let batch = Arc::new(Batch {
            first_seq,
            lines,
            frame,
        });
        shared.history.push(batch.clone());
        // Sent under the lock so that subscribe-then-snapshot (also under it) sees each batch
        // exactly once: either in the snapshot or on the channel.
        let _ = channel.live.send(LiveEvent::Lines(batch));
        first_seq
    }

    /// Publishes a state change of a file.
    pub fn set_state(&self, file: FileIx, state: FileState) {
        let channel = &self.inner.files[file];
        let frame = ServerMessage::File {
            file: &channel.id,
            state: state.as_str(),
        }
        .to_json();
        let _shared = lock(&channel.shared);
        let _ = channel.live.send(LiveEvent::State(state, frame.into()));
    }

    /// Records whether the file exists and how much of it was read.
    pub fn set_status(&self, file: FileIx, exists: bool, size: u64) {
        let mut shared = lock(&self.inner.files[file].shared);
        shared.exists = exists;
        shared.size = size;
    }

    /// What the history holds from `start` (at most `max` lines).
    pub fn read(&self, file: FileIx, start: Start, max: usize) -> Result<Snapshot, CursorAhead> {
        let shared = lock(&self.inner.files[file].shared);
        snapshot(&shared, start, max)
    }

    /// Registers for live events *then* reads the history, atomically: every line after the
    /// snapshot arrives on the receiver, none twice.
    pub fn subscribe(
        &self,
        file: FileIx,
        start: Start,
        max: usize,
    ) -> Result<(Snapshot, broadcast::Receiver<LiveEvent>), CursorAhead> {
        let channel = &self.inner.files[file];
        let shared = lock(&channel.shared);
        let snap = snapshot(&shared, start, max)?;
        Ok((snap, channel.live.subscribe()))
    }

    /// A receiver for what comes next (the live edge), with the newest seq at that moment.
    pub fn subscribe_live(&self, file: FileIx) -> (u64, broadcast::Receiver<LiveEvent>) {
        let channel = &self.inner.files[file];
        let shared = lock(&channel.shared);
        (shared.next_seq - 1, channel.live.subscribe())
    }

    /// History bounds usage of a file: (lines, bytes).
    pub fn history_usage(&self, file: FileIx) -> (usize, usize) {
        let shared = lock(&self.inner.files[file].shared);
        (shared.history.len(), shared.history.bytes())
    }
}

fn snapshot(shared: &FileShared, start: Start, max: usize) -> Result<Snapshot, CursorAhead> {
    let last_seq = shared.next_seq - 1;
    let read = match start {
        Start::Backlog(n) => shared.history.last_lines(n.min(max)),
        Start::After(after) if after > last_seq => {
            return Err(CursorAhead { after, last_seq });
        }
        Start::After(after) => {
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
    };
    Ok(Snapshot { read, last_seq })
}

/// Locks a mutex, recovering the data if a holder panicked (the data stays consistent: every
/// critical section only pushes complete values).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
