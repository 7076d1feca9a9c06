//! The hub: per-file numbering, history and live fan-out, shared by every transport.
//!
//! This module is the seam between the transports and whatever keeps the history. Transports
//! hold a [`Hub`], a cheap-clone handle over a [`HistoryBackend`], and read through a
//! [`LiveCursor`] over a [`CursorBackend`]: subscribe at a start point, read what follows a
//! cursor ([`Delivery`]: an exact gap, lines, file states, in order), and be woken when there is
//! news. The tailing side appends batches (the backend paces it to its readers), states and
//! statuses. What is delivered is the hub's own data ([`Batch`], [`BatchSlice`], [`Gap`],
//! [`FileState`]), never a wire format: each transport encodes.
//!
//! [`MemoryHistory`] (`memory.rs`, with its cursor in `cursor.rs`) is the backend today: a
//! bounded ring per file. A Redis Streams backend sits beside it by implementing the two traits;
//! no transport changes. In a cluster, other nodes' files are mirrored into it, and a
//! [`GapFill`] (`fill.rs`) reads back what it no longer holds of them where a reader would get a
//! gap. `docs/architecture.md` draws the whole path.

mod cursor;
mod fill;
mod history;
mod memory;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

pub use fill::{FillPiece, FillRequest, FillSlot, FillingCursor, GapFill};
pub use history::{unix_ms_now, Batch, BatchSlice, Gap, History, HistoryRead};
pub use memory::MemoryHistory;

use crate::tail::{FileState, FileStatus, LineBatch};

/// Index of a file in the hub.
pub type FileIx = usize;

/// Bounds of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Lines kept per file.
    pub history_lines: usize,
    /// Bytes kept per file (approximately: whole batches).
    pub history_bytes: usize,
    /// Longest the tailer waits, per batch, for readers to make room (see [`Hub::pace`]).
    pub pace_timeout: Duration,
    /// Files that may be added after start (found by live globs and directories, or other
    /// nodes' files in a cluster), beyond those given at start.
    pub more_files: usize,
    /// In a cluster: this node's name, which its own files carry.
    pub node: Option<String>,
    /// In a cluster: how far a cursor may be ahead of another node's file as this node holds
    /// it and still be taken (and held until the lines come): this node's copy may lag behind
    /// the publisher. A cursor further ahead is refused as [`CursorAhead`]. 0 outside a cluster.
    pub remote_ahead: u64,
}

/// What the hub knows of a file (the transports turn it into the protocol's file entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// Short stable name used in every request.
    pub id: String,
    /// The path as configured.
    pub path: String,
    /// Whether the path currently names a readable file.
    pub exists: bool,
    /// Bytes read so far from the current file.
    pub size: u64,
    /// Seq of the newest line (0 when none yet).
    pub last_seq: u64,
    /// Why the path cannot be read, when it exists but cannot be.
    pub error: Option<String>,
    /// In a cluster: the node whose file it is.
    pub node: Option<String>,
    /// True for another node's file (mirrored from the cluster): its path is not on this host.
    pub remote: bool,
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

/// What a reader is sent, in order.
#[derive(Debug)]
pub enum Delivery {
    /// Lines `from..=to` will never come (no longer kept).
    Gap(Gap),
    /// New lines (the whole batch when [`BatchSlice::is_whole`], so its shared frame can be used).
    Lines(BatchSlice),
    /// A file state change.
    State(FileState),
    /// The file's unfinished last line so far (it will be line `seq` once its newline comes),
    /// or `None` once there is none; only for a reader at the head.
    Pending {
        /// The seq the line will get.
        seq: u64,
        /// Its text so far.
        text: Option<Arc<str>>,
    },
}

/// What the transports and the tailer need of a history, whatever keeps it.
pub trait HistoryBackend: Send + Sync + 'static {
    /// This numbering's epoch: changes when the numbering starts again.
    fn epoch(&self) -> u64;
    /// Takes another epoch: only for a hub that numbered no line itself (a cluster's front
    /// node that started before it could learn the cluster's epoch).
    fn adopt_epoch(&self, epoch: u64);
    /// Number of files.
    fn file_count(&self) -> usize;
    /// The file with this id, if any. Ids are only ever compared, never used as paths.
    fn lookup(&self, id: &str) -> Option<FileIx>;
    /// A file's id.
    fn id(&self, file: FileIx) -> &str;
    /// Adds a file found after start; `None` when there is no room left (`more_files`) or the
    /// id is taken.
    fn add_file(&self, id: String, path: PathBuf) -> Option<FileIx>;
    /// Adds another node's file, whose lines come numbered from the cluster ([`Self::ingest`]);
    /// `None` when there is no room left or the id is taken.
    fn add_remote_file(&self, id: String, path: PathBuf, node: String) -> Option<FileIx>;
    /// Changes whenever a file is added (it holds the number of files).
    fn watch_files(&self) -> tokio::sync::watch::Receiver<usize>;
    /// One file's description.
    fn info(&self, file: FileIx) -> FileSummary;
    /// True for another node's file (cheap: what [`FileSummary::remote`] says, without the rest).
    fn is_remote(&self, file: FileIx) -> bool;
    /// Newest seq of a file (0 before its first line).
    fn last_seq(&self, file: FileIx) -> u64;
    /// A reader starting at `start`, woken through `wake` whenever the file has news; its first
    /// read returns the backlog (or what follows the cursor, with a gap for what is gone).
    fn subscribe(
        &self,
        file: FileIx,
        start: Start,
        wake: Arc<Notify>,
    ) -> Result<Box<dyn CursorBackend>, CursorAhead>;
    /// Numbers a batch, stores it (waiting, bounded, for readers to make room) and wakes the
    /// readers; returns its first seq.
    fn append(&self, file: FileIx, lines: LineBatch) -> u64;
    /// Before a file's first line: its numbering goes on from an earlier run (a checkpoint), so
    /// its next line gets `next_seq`. Does nothing once the file has lines.
    fn continue_numbering(&self, file: FileIx, next_seq: u64);
    /// Stores lines numbered elsewhere (another node's file, read from the cluster): `first_seq`
    /// is the first line's seq in that numbering, `time_ms` when they were read there. Lines the
    /// history already has are skipped; a jump forward starts the history again at `first_seq`
    /// (a reader behind it is told of the exact gap). Waits, bounded, for readers that keep up,
    /// as [`Self::append`] does: call it from a blocking thread.
    fn ingest(&self, file: FileIx, first_seq: u64, time_ms: u64, lines: LineBatch);
    /// Records a state change of a file, in order with its lines.
    fn set_state(&self, file: FileIx, state: FileState);
    /// Records the file's unfinished last line (shown, not numbered), or that there is none.
    fn set_pending(&self, file: FileIx, text: Option<&str>);
    /// Records whether the file exists, how much of it was read, and why it cannot be read.
    fn set_status(&self, file: FileIx, status: FileStatus);
    /// What the history holds of a file: (lines, bytes).
    fn history_usage(&self, file: FileIx) -> (usize, usize);
}

/// One reader's position in one file of a [`HistoryBackend`].
pub trait CursorBackend: Send {
    /// The file followed.
    fn file(&self) -> FileIx;
    /// Seq of the next line the client should get.
    fn next_seq(&self) -> u64;
    /// True when there is something this reader has not read yet (cheap: called per wake-up).
    fn has_news(&self) -> bool;
    /// True while the reader waits for lines fetched from elsewhere (see [`FillingCursor`]):
    /// they are on their way, so a request should wait for them rather than answer empty.
    fn filling(&self) -> bool {
        false
    }
    /// Takes what is new, at most `max_lines` lines and `max_bytes` of text (at least one
    /// line), and advances. Returns nothing when the reader is at the head.
    fn read(&mut self, max_lines: usize, max_bytes: usize) -> Vec<Delivery>;
}

/// The handle transports and the tailer hold; see the module documentation.
#[derive(Clone)]
pub struct Hub {
    backend: Arc<dyn HistoryBackend>,
    /// In a cluster: where readers of other nodes' files get what this node no longer holds.
    gap_fill: Arc<std::sync::OnceLock<Arc<dyn GapFill>>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("files", &self.file_count())
            .finish()
    }
}

impl Hub {
    /// A hub over the in-memory history of `files` (id, path), in that order.
    pub fn new(files: Vec<(String, PathBuf)>, config: &HubConfig, epoch: u64) -> Hub {
        Hub::over(MemoryHistory::new(files, config, epoch))
    }

    /// A hub over another backend.
    pub fn over(backend: impl HistoryBackend) -> Hub {
        Hub {
            backend: Arc::new(backend),
            gap_fill: Arc::default(),
        }
    }

    /// See [`HistoryBackend::epoch`].
    pub fn epoch(&self) -> u64 {
        self.backend.epoch()
    }

    /// See [`HistoryBackend::adopt_epoch`].
    pub fn adopt_epoch(&self, epoch: u64) {
        self.backend.adopt_epoch(epoch)
    }

    /// See [`HistoryBackend::file_count`].
    pub fn file_count(&self) -> usize {
        self.backend.file_count()
    }

    /// See [`HistoryBackend::lookup`].
    pub fn lookup(&self, id: &str) -> Option<FileIx> {
        self.backend.lookup(id)
    }

    /// See [`HistoryBackend::id`].
    pub fn id(&self, file: FileIx) -> &str {
        self.backend.id(file)
    }

    /// Every file's description, in order.
    pub fn files(&self) -> Vec<FileSummary> {
        (0..self.file_count()).map(|ix| self.info(ix)).collect()
    }

    /// See [`HistoryBackend::info`].
    pub fn info(&self, file: FileIx) -> FileSummary {
        self.backend.info(file)
    }

    /// See [`HistoryBackend::is_remote`].
    pub fn is_remote(&self, file: FileIx) -> bool {
        self.backend.is_remote(file)
    }

    /// See [`HistoryBackend::last_seq`].
    pub fn last_seq(&self, file: FileIx) -> u64 {
        self.backend.last_seq(file)
    }

    /// See [`HistoryBackend::subscribe`]. A reader of another node's file gets, where it would
    /// get a gap, what the [`GapFill`] still has ([`FillingCursor`]).
    pub fn subscribe(
        &self,
        file: FileIx,
        start: Start,
        wake: Arc<Notify>,
    ) -> Result<LiveCursor, CursorAhead> {
        let inner = self.backend.subscribe(file, start, wake.clone())?;
        let inner = match self.gap_fill.get() {
            Some(fill) if self.backend.is_remote(file) => Box::new(FillingCursor::new(
                inner,
                fill.clone(),
                self.id(file).to_owned(),
                wake,
            )),
            _ => inner,
        };
        Ok(LiveCursor { inner })
    }

    /// Sets where readers of other nodes' files get what this node no longer holds (once: the
    /// cluster's, when it starts).
    pub fn set_gap_fill(&self, fill: Arc<dyn GapFill>) {
        let _ = self.gap_fill.set(fill);
    }

    /// See [`HistoryBackend::append`].
    pub fn append(&self, file: FileIx, lines: LineBatch) -> u64 {
        self.backend.append(file, lines)
    }

    /// See [`HistoryBackend::add_file`].
    pub fn add_file(&self, id: String, path: PathBuf) -> Option<FileIx> {
        self.backend.add_file(id, path)
    }

    /// See [`HistoryBackend::add_remote_file`].
    pub fn add_remote_file(&self, id: String, path: PathBuf, node: String) -> Option<FileIx> {
        self.backend.add_remote_file(id, path, node)
    }

    /// See [`HistoryBackend::ingest`].
    pub fn ingest(&self, file: FileIx, first_seq: u64, time_ms: u64, lines: LineBatch) {
        self.backend.ingest(file, first_seq, time_ms, lines)
    }

    /// See [`HistoryBackend::watch_files`].
    pub fn watch_files(&self) -> tokio::sync::watch::Receiver<usize> {
        self.backend.watch_files()
    }

    /// See [`HistoryBackend::continue_numbering`].
    pub fn continue_numbering(&self, file: FileIx, next_seq: u64) {
        self.backend.continue_numbering(file, next_seq)
    }

    /// See [`HistoryBackend::set_state`].
    pub fn set_state(&self, file: FileIx, state: FileState) {
        self.backend.set_state(file, state)
    }

    /// See [`HistoryBackend::set_pending`].
    pub fn set_pending(&self, file: FileIx, text: Option<&str>) {
        self.backend.set_pending(file, text)
    }

    /// See [`HistoryBackend::set_status`].
    pub fn set_status(&self, file: FileIx, status: FileStatus) {
        self.backend.set_status(file, status)
    }

    /// See [`HistoryBackend::history_usage`].
    pub fn history_usage(&self, file: FileIx) -> (usize, usize) {
        self.backend.history_usage(file)
    }
}

/// A registered reader of one file, whatever backend holds it.
pub struct LiveCursor {
    inner: Box<dyn CursorBackend>,
}

impl LiveCursor {
    /// The file followed.
    pub fn file(&self) -> FileIx {
        self.inner.file()
    }

    /// Seq of the next line the client should get.
    pub fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    /// True when there is something this reader has not read yet.
    pub fn has_news(&self) -> bool {
        self.inner.has_news()
    }

    /// See [`CursorBackend::filling`].
    pub fn filling(&self) -> bool {
        self.inner.filling()
    }

    /// See [`CursorBackend::read`].
    pub fn read(&mut self, max_lines: usize, max_bytes: usize) -> Vec<Delivery> {
        self.inner.read(max_lines, max_bytes)
    }
}

/// What a read delivered, one word per delivery: `gap A-B`, the lines joined by `,`, `<state>`,
/// `pending SEQ TEXT` (for tests of the hub and its backends).
#[cfg(test)]
pub(crate) fn describe(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| match d {
            Delivery::Gap(gap) => format!("gap {}-{}", gap.from, gap.to),
            Delivery::Lines(slice) => slice.lines().collect::<Vec<_>>().join(","),
            Delivery::State(state) => format!("<{}>", state.as_str()),
            Delivery::Pending { seq, text } => format!("pending {seq} {text:?}"),
        })
        .collect()
}

#[cfg(test)]
impl HubConfig {
    /// Bounds for tests of a cluster node `here`: `history_lines` (and 1 MiB) per file, no
    /// pacing, one file more than given, cursors held up to `remote_ahead` lines ahead.
    pub(crate) fn on_node_here(history_lines: usize, remote_ahead: u64) -> HubConfig {
        HubConfig {
            history_lines,
            history_bytes: 1 << 20,
            pace_timeout: Duration::ZERO,
            more_files: 1,
            node: Some("here".into()),
            remote_ahead,
        }
    }
}
