//! The follower: one configured path, followed the way `tail -F` does.
//!
//! A [`Follower`] is a synchronous state machine over what the path names: not looked at yet,
//! nothing, a file just rotated away, something that cannot be read (and why), or an open file.
//! Each [`Follower::check`] stats the path and the open descriptor, tells append, truncation (size
//! below the read offset, or the file's first bytes changed), replacement ((dev, inode) changed:
//! rename+create rotation, delete+re-create) and deletion apart, reads everything appended to the
//! end, and hands lines, state changes and the path's [`FileStatus`] to a [`TailSink`]. After a
//! rotation the old descriptor is still read for `rotate_wait` (writers keep appending to it until
//! they reopen their log).
//!
//! Reading is kept apart from that state: one reader holds the read buffer (lent to every read,
//! so reading allocates nothing), the batch being filled, coalescing, the error log and the sink,
//! and reads whichever open file it is handed where that file lives (at the path, or among the
//! rotated ones). The follower owns no thread and no timer: the thread that [`super::Tailer`]
//! starts calls `check` on every file-system wake-up and on the stat interval.

use std::collections::VecDeque;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::open::{kind, not_regular, open_regular, open_regular_no_symlink};
use super::splitter::{LineBatch, LineSplitter};

/// Bytes read per `read` call by default: small enough that the batches (and frames) a stalled
/// client leaves waiting are small, large enough for millions of lines per second.
pub const DEFAULT_READ_CHUNK_BYTES: usize = 32 * 1024;

/// How many leading bytes of a file are remembered to notice it being rewritten in place.
const HEAD_FINGERPRINT_BYTES: usize = 64;

/// How many file generations (dev, inode, birth time) a follower remembers having opened, to tell a
/// generation it never saw from one it already read (see [`Follower::rotated_away`]). Files still
/// open are recognised as such; this memory is for those already closed. A renamed-away file waits
/// in the watcher's queue behind at most [`super::MAX_QUEUED_ROTATIONS`] others, and each of them
/// opens at most one generation, as does each check (a queue is emptied before every check, so at
/// most two queues and two checks lie between a generation's opening and its own queue entry):
/// remembering more than that many means no file is ever read twice, however far behind the
/// follower falls in a burst of rotations.
const REMEMBERED_GENERATIONS: usize = 2 * super::MAX_QUEUED_ROTATIONS + 4;

/// A change in the state of a followed file, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// The path appeared (it was missing at start, or deleted earlier).
    Created,
    /// The file shrank or was rewritten in place (`copytruncate`, `> file`); reading restarts at 0.
    Truncated,
    /// The path now names another file (rename+create); the new one is read from its start.
    Rotated,
    /// The path is gone and no other file took its place.
    Deleted,
    /// A stream source (standard input) reached the end of its input: no line will follow; its
    /// history stays readable.
    Ended,
    /// A command source (`--exec`) started (again): its output follows.
    Started,
    /// A command source's process exited, with its status; it may be started again.
    Exited(super::exec::Exit),
    /// Another node's file (in a cluster) cannot be read from the cluster now (its Redis cannot
    /// be reached): lines resume, from where they stopped, when it can.
    Unavailable,
    /// Another node's file can be read from the cluster again.
    Available,
}

impl FileState {
    /// The protocol's name for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Created => "created",
            FileState::Truncated => "truncated",
            FileState::Rotated => "rotated",
            FileState::Deleted => "deleted",
            FileState::Ended => "ended",
            FileState::Started => "started",
            FileState::Exited(_) => "exited",
            FileState::Unavailable => "unavailable",
            FileState::Available => "available",
        }
    }
}

/// What clients are told of a followed path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileStatus {
    /// A file at the path is open and being read.
    pub exists: bool,
    /// Bytes read so far from that file.
    pub size: u64,
    /// Why the path cannot be followed (something is there but cannot be opened or read), in a
    /// short sentence for clients: "permission denied: tailcast's user cannot read it". `None`
    /// while all is well and while the path is simply missing.
    pub error: Option<String>,
}

/// Where the follower receives what it read. Implemented by the hub adapter in `app`, and by
/// plain collectors in tests.
pub trait TailSink: Send + 'static {
    /// Complete lines, in file order.
    fn lines(&mut self, batch: LineBatch);
    /// Where the lines of the `lines` call just made came from: every batch holds lines of one
    /// file, consecutive in it. What checkpoints are made of.
    fn origin(&mut self, _origin: &BatchOrigin) {}
    /// The unfinished last line of the followed file, shown before its newline comes (it gets no
    /// number until then); `None` once there is none any more.
    fn pending(&mut self, _text: Option<&str>) {}
    /// Called once, before any line, by a follower started with [`Follower::resume_at`]: how
    /// many of the lines it is about to hand over lie before the resume point (lines read again
    /// to refill the history).
    fn resumed(&mut self, _lines_before: u64) {}
    /// A state change of the file.
    fn state(&mut self, state: FileState);
    /// The path's status; called when it changes.
    fn status(&mut self, status: FileStatus);
}

/// Which file generation lines came from: (dev, inode), the birth time where the file system
/// records one, and the file's first bytes (at most [`HEAD_FINGERPRINT_BYTES`], only those read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    /// Device of the file system.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Birth time, where recorded: tells a new file from a deleted one whose inode it reuses.
    pub born: Option<SystemTime>,
    head: [u8; HEAD_FINGERPRINT_BYTES],
    head_len: u8,
}

impl FileIdentity {
    /// An identity from its parts; `head` beyond [`HEAD_FINGERPRINT_BYTES`] is ignored.
    pub fn new(dev: u64, ino: u64, born: Option<SystemTime>, head: &[u8]) -> Self {
        let len = head.len().min(HEAD_FINGERPRINT_BYTES);
        let mut bytes = [0; HEAD_FINGERPRINT_BYTES];
        bytes[..len].copy_from_slice(&head[..len]);
        FileIdentity {
            dev,
            ino,
            born,
            head: bytes,
            head_len: len as u8,
        }
    }

    /// The file's first bytes as they were read.
    pub fn head(&self) -> &[u8] {
        &self.head[..self.head_len as usize]
    }

    /// True when both name the same file generation (whatever their first bytes read so far).
    pub fn same_file(&self, other: &FileIdentity) -> bool {
        self.generation() == other.generation()
    }

    fn generation(&self) -> Generation {
        Generation {
            dev: self.dev,
            ino: self.ino,
            born: self.born,
        }
    }

    /// True when `file` (described by `meta`) is this generation with the same first bytes.
    fn matches(&self, file: &File, meta: &Metadata) -> bool {
        if Generation::of(meta) != self.generation() {
            return false;
        }
        let mut now = [0; HEAD_FINGERPRINT_BYTES];
        let want = self.head_len as usize;
        matches!(file.read_at(&mut now[..want], 0), Ok(n) if now[..n] == *self.head())
    }
}

/// Where a batch of lines lies in its file: bytes `start..end` of `file`, from the start of its
/// first line to the end of its last (the newline included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOrigin {
    /// The file generation.
    pub file: FileIdentity,
    /// Offset of the first line.
    pub start: u64,
    /// Offset just past the last line.
    pub end: u64,
    /// The lines are from the file opened at the path last (not from a rotated-away one still
    /// read, nor from a generation missed in a burst): only such lines move a checkpoint's
    /// position, the others only its newest seq.
    pub current: bool,
}

/// How a follower restarted with a state directory starts, instead of at its file's tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// At a checkpoint.
    At(ResumePoint),
    /// At the start of the file at the path: the previous run had numbered none of its lines.
    FromStart,
}

/// Where a follower restarted from a checkpoint picks up: lines of `file` up to offset `end` were
/// handed over before, those from `run_start` on with consecutive numbers. The follower reads
/// again from `run_start` (at most `initial_tail_bytes` before `end`, to refill the history), then
/// on; a file rotated away meanwhile is found among the path's siblings and read to its end first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    /// The file that was being read.
    pub file: FileIdentity,
    /// From here to `end`, its lines were numbered consecutively.
    pub run_start: u64,
    /// Offset just past the last line handed over.
    pub end: u64,
}

/// Settings of a follower; every interval is a `Duration` so tests can shrink it.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// Longest line kept; longer lines are cut and marked.
    pub max_line_bytes: usize,
    /// Bytes read per `read` call; lines are handed over in batches of about this size.
    pub read_chunk_bytes: usize,
    /// An unfinished last line is shown (without a number) after this long without new bytes.
    pub partial_line_timeout: Duration,
    /// How long a rotated-away file is still read.
    pub rotate_wait: Duration,
    /// How much of an existing file's end is read at start-up (to fill the history).
    pub initial_tail_bytes: u64,
    /// Lines read less than this after the previous batch was handed over wait (at most this
    /// long) for more to join them: one batch, one frame to every client, instead of many.
    pub coalesce: Duration,
    /// Never open the path through a symlink (files found by live globs and directories).
    pub no_symlinks: bool,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            max_line_bytes: 64 * 1024,
            read_chunk_bytes: DEFAULT_READ_CHUNK_BYTES,
            partial_line_timeout: Duration::from_millis(200),
            rotate_wait: Duration::from_secs(5),
            initial_tail_bytes: 1024 * 1024,
            coalesce: Duration::ZERO,
            no_symlinks: false,
        }
    }
}

/// What the followed path names, as far as the follower knows.
enum PathState {
    /// Before the first check: a file found there is read from its last `initial_tail_bytes` (the
    /// history's start), and nothing is announced.
    Unchecked,
    /// Nothing: the file that appears there is announced as `Created`.
    Missing,
    /// The followed file was renamed away and `Rotated` was announced: the file that takes its
    /// place is its successor, opened without a `Created`.
    RotatedAway,
    /// Something that cannot be followed, and why (for clients); once it can be opened it is
    /// announced as `Created`.
    Unreadable(String),
    /// The file being followed.
    Open(OpenFile),
}

impl PathState {
    fn open(&self) -> Option<&OpenFile> {
        match self {
            PathState::Open(open) => Some(open),
            _ => None,
        }
    }

    fn open_mut(&mut self) -> Option<&mut OpenFile> {
        match self {
            PathState::Open(open) => Some(open),
            _ => None,
        }
    }

    fn status(&self) -> FileStatus {
        match self {
            PathState::Open(open) => FileStatus {
                exists: true,
                size: open.offset,
                error: open.read_error.clone(),
            },
            PathState::Unreadable(why) => FileStatus {
                error: Some(why.clone()),
                ..FileStatus::default()
            },
            PathState::Unchecked | PathState::Missing | PathState::RotatedAway => {
                FileStatus::default()
            }
        }
    }
}

/// One file generation: (dev, inode) and, where the file system records it, the birth time, so
/// that a new file reusing a deleted one's inode is not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Generation {
    dev: u64,
    ino: u64,
    born: Option<SystemTime>,
}

impl Generation {
    fn of(meta: &Metadata) -> Self {
        Generation {
            dev: meta.dev(),
            ino: meta.ino(),
            born: meta.created().ok(),
        }
    }
}

/// An open file being read.
struct OpenFile {
    file: File,
    generation: Generation,
    /// Bytes read (or skipped) so far.
    offset: u64,
    splitter: LineSplitter,
    /// When bytes were last read (for the partial-line timeout).
    last_data: Instant,
    head: Head,
    /// Started in the middle of a file: drop bytes up to the first newline.
    skip_to_newline: bool,
    /// Why the last read failed (for clients), until a read reaches the end again.
    read_error: Option<String>,
    /// Which opening at the path this is (0: never opened there); the newest is the current file.
    serial: u64,
}

impl OpenFile {
    /// Its identity, with the first bytes read so far.
    fn identity(&self) -> FileIdentity {
        let g = self.generation;
        FileIdentity::new(g.dev, g.ino, g.born, &self.head.bytes[..self.head.len])
    }

    /// Where the unfinished line starts (the end of the last complete line).
    fn line_start(&self) -> u64 {
        self.offset.saturating_sub(self.splitter.pending_bytes())
    }

    /// True when `meta` describes this file.
    fn is(&self, meta: &Metadata) -> bool {
        (self.generation.dev, self.generation.ino) == (meta.dev(), meta.ino())
    }

    fn is_at(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|meta| self.is(&meta))
    }

    /// True when no name is left to the file (or it cannot even be stat'ed).
    fn is_deleted(&self) -> bool {
        self.file.metadata().map_or(true, |meta| meta.nlink() == 0)
    }

    /// True when the file shrank below what was read or its first bytes changed.
    fn is_truncated(&self, meta: &Metadata) -> bool {
        meta.len() < self.offset || !self.head.matches(&self.file)
    }

    /// Reading starts again at byte 0 (after a truncation; the held partial line was flushed).
    fn restart(&mut self) {
        self.offset = 0;
        self.head = Head::default();
        self.skip_to_newline = false;
    }

    /// When the held partial line is due to be flushed, if one is held.
    fn partial_due(&self, timeout: Duration) -> Option<Instant> {
        self.splitter
            .has_partial()
            .then(|| self.last_data + timeout)
    }
}

/// The first bytes of a file (at most [`HEAD_FINGERPRINT_BYTES`], and only bytes already read),
/// to notice an in-place rewrite that grew past the old offset.
struct Head {
    bytes: [u8; HEAD_FINGERPRINT_BYTES],
    len: usize,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            bytes: [0; HEAD_FINGERPRINT_BYTES],
            len: 0,
        }
    }
}

impl Head {
    /// Reads more of the head, if more has been read of the file than the head holds.
    fn refresh(&mut self, file: &File, offset: u64) {
        let want = offset.min(HEAD_FINGERPRINT_BYTES as u64) as usize;
        if want <= self.len {
            return;
        }
        let mut fresh = [0; HEAD_FINGERPRINT_BYTES];
        if let Ok(n) = file.read_at(&mut fresh[..want], 0) {
            self.bytes = fresh;
            self.len = n;
        }
    }

    /// False when the file's first bytes differ from the head (rewritten in place). A failed
    /// read proves nothing, so it counts as unchanged.
    fn matches(&self, file: &File) -> bool {
        if self.len == 0 {
            return true;
        }
        let mut now = [0; HEAD_FINGERPRINT_BYTES];
        match file.read_at(&mut now[..self.len], 0) {
            Ok(n) => now[..n] == self.bytes[..self.len],
            Err(_) => true,
        }
    }
}

/// A rotated-away file still being read until `until`.
struct Draining {
    open: OpenFile,
    until: Instant,
}

/// Follows one path; see the module documentation.
pub struct Follower<S: TailSink> {
    path: PathBuf,
    config: FollowConfig,
    state: PathState,
    /// Rotated-away files, oldest first.
    draining: Vec<Draining>,
    /// The generations opened most recently, newest last.
    generations: VecDeque<Generation>,
    /// The status the sink was last given.
    reported: Option<FileStatus>,
    /// The unfinished line the sink was last shown.
    shown_pending: Option<String>,
    /// Where the first check picks up, for a follower restarted with a state directory.
    resume: Option<Resume>,
    reader: Reader<S>,
}

impl<S: TailSink> Follower<S> {
    /// A follower for `path`; nothing is read before the first [`check`](Self::check).
    pub fn new(path: PathBuf, config: FollowConfig, sink: S) -> Self {
        Follower {
            reader: Reader::new(path.clone(), &config, sink),
            path,
            config,
            state: PathState::Unchecked,
            draining: Vec::new(),
            generations: VecDeque::with_capacity(REMEMBERED_GENERATIONS),
            reported: None,
            shown_pending: None,
            resume: None,
        }
    }

    /// Makes the first check pick up as `resume` says instead of at the file's last
    /// `initial_tail_bytes`.
    pub fn resume_at(&mut self, resume: Resume) {
        self.resume = Some(resume);
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The files open now (at the path and rotated away), with their generations: what the
    /// follower thread watches for data written.
    pub fn open_inodes(&self) -> impl Iterator<Item = super::watch::OpenInode<'_>> {
        let draining = self.draining.iter().map(|d| &d.open);
        self.state
            .open()
            .into_iter()
            .chain(draining)
            .map(|open| super::watch::OpenInode {
                file: &open.file,
                dev: open.generation.dev,
                ino: open.generation.ino,
                born: open.generation.born,
            })
    }

    /// True while a rotated-away file is still being read.
    pub fn is_draining(&self) -> bool {
        !self.draining.is_empty()
    }

    /// The sink (tests read what it collected).
    pub fn sink(&self) -> &S {
        &self.reader.sink
    }

    /// Looks at the file once and reads whatever is new. Never fails: I/O errors are logged once
    /// per distinct error, shown in the status, and retried at the next check.
    pub fn check(&mut self) {
        let now = Instant::now();
        self.reader.errors.begin_check();
        match self.resume.take() {
            Some(Resume::At(point)) => self.resume_from(point, now),
            Some(Resume::FromStart) => {
                self.reader.sink.resumed(0);
                // Opened at byte 0 by the look below, without a `Created`.
                self.state = PathState::RotatedAway;
            }
            None => {}
        }
        self.read_draining(now);
        self.look_at_path(now);
        let current = self.state.open().map(OpenFile::identity);
        if !self.draining.is_empty() && current.is_some_and(|c| self.reader.holds_lines_of(&c)) {
            // While the current file was read, the application may still have written to a
            // rotated one (it writes there until it reopens its log): those lines came before the
            // current file's lines just read, so they go first.
            let current_lines = self.reader.take_pending();
            self.read_draining(now);
            self.reader.emit_now();
            self.reader.restore_pending(current_lines);
        }
        self.reader.errors.end_check(&self.path);
        let now = Instant::now();
        self.show_pending(now);
        self.reader.emit_if_due(now);
        let status = self.state.status();
        if self.reported.as_ref() != Some(&status) {
            self.reported = Some(status.clone());
            self.reader.sink.status(status);
        }
    }

    /// A file that was renamed away from the followed path, opened by the watcher when the rename
    /// happened. A generation this follower never opened (created and renamed away between two
    /// checks, as in a burst of rotations) is read from its start and kept for the rotation grace
    /// period like any rotated file, so its lines are not lost; the open file, if it no longer
    /// sits at the path, is older and is finished first. If it still sits there, the rename was
    /// seen late: the missed generation's lines come after some of the newer file's, without a
    /// rotation notice. A generation already known is ignored.
    pub fn rotated_away(&mut self, file: File) {
        let now = Instant::now();
        let Ok(meta) = file.metadata() else { return };
        if !meta.is_file() || self.knows(Generation::of(&meta)) {
            return;
        }
        let current_still_at_path = self.state.open().is_some_and(|open| open.is_at(&self.path));
        if !current_still_at_path && self.leave_path(PathState::RotatedAway, now).is_some() {
            self.reader.announce(FileState::Rotated);
        }
        let mut missed = self.open_file(file, &meta, 0, false, now);
        self.reader.read_to_end(&mut missed);
        self.retire(missed, now);
        if current_still_at_path {
            self.reader.emit_now();
        } else {
            self.reader.announce(FileState::Rotated);
        }
    }

    /// True when `generation` is open (at the path or rotated away) or was opened before.
    fn knows(&self, generation: Generation) -> bool {
        let open = self.state.open().into_iter();
        let draining = self.draining.iter().map(|d| &d.open);
        open.chain(draining)
            .any(|open| open.generation == generation)
            || self.generations.contains(&generation)
    }

    /// The latest instant at which `check` must run again even without a wake-up (partial-line
    /// flush, end of a rotation grace period), if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timeout = self.config.partial_line_timeout;
        let partial = match self.shown_pending {
            Some(_) => None,
            None => self.state.open().and_then(|open| open.partial_due(timeout)),
        };
        let drains = self.draining.iter().map(|d| d.until);
        partial
            .into_iter()
            .chain(drains)
            .chain(self.reader.hold_until)
            .min()
    }

    /// Reads every open file to its end (shutdown): the current file's complete lines, then each
    /// rotated file's with its unfinished line (its grace period is cut short). The current
    /// file's unfinished line is not a line yet: it stays unnumbered, to be read whole when its
    /// newline comes (after a restart, from the checkpoint).
    pub fn finish(&mut self) {
        self.read_current();
        for mut draining in self.draining.drain(..) {
            self.reader.read_to_end(&mut draining.open);
            self.reader.flush_partial(&mut draining.open);
        }
        self.reader.emit_now();
    }

    fn look_at_path(&mut self, now: Instant) {
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.is_file() => self.follow(&meta, now),
            Ok(meta) => {
                self.reader.errors.note(format!(
                    "{} is {}, not a regular file",
                    self.path.display(),
                    kind(meta.file_type())
                ));
                let why = not_regular(meta.file_type()).to_string();
                self.announce_gone(PathState::Unreadable(why), now);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.announce_gone(PathState::Missing, now);
            }
            Err(e) => {
                self.reader
                    .errors
                    .note(format!("cannot stat {}: {e}", self.path.display()));
                if self.state.open().is_some() {
                    // Keep reading what is open; the path may come back.
                    self.read_current();
                } else {
                    self.state = PathState::Unreadable(reason(&e));
                }
            }
        }
    }

    /// The path names a regular file, described by `meta`.
    fn follow(&mut self, meta: &Metadata, now: Instant) {
        if self.state.open().is_some_and(|open| !open.is(meta)) {
            // Another file is at the path: a rotation, whatever became of the old one.
            self.leave_path(PathState::RotatedAway, now);
            self.reader.announce(FileState::Rotated);
        }
        if let Some(open) = self.state.open_mut() {
            if open.is_truncated(meta) {
                // Truncated (or rewritten in place): what is held of a line is flushed, not lost.
                self.reader.flush_partial(open);
                open.restart();
                self.reader.announce(FileState::Truncated);
            }
        } else if !self.open_path(now) {
            return;
        }
        self.read_current();
    }

    /// Opens the file at the path and follows it, announcing `Created` where the state says so.
    /// False (and the state says why) when it cannot be opened.
    fn open_path(&mut self, now: Instant) -> bool {
        // Identity and type from the descriptor, not the earlier stat: the path may have changed
        // between (into a FIFO, even, which this open does not wait on).
        let (file, meta) = match self.open_at_path() {
            Ok(opened) => opened,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Gone between the stat and the open: the next check sees what comes.
                self.state = PathState::Missing;
                return false;
            }
            Err(e) => {
                self.reader
                    .errors
                    .note(format!("cannot open {}: {e}", self.path.display()));
                self.state = PathState::Unreadable(reason(&e));
                return false;
            }
        };
        let offset = match self.state {
            PathState::Unchecked => meta.len().saturating_sub(self.config.initial_tail_bytes),
            _ => 0,
        };
        let created = matches!(self.state, PathState::Missing | PathState::Unreadable(_));
        let mut open = self.open_file(file, &meta, offset, offset > 0, now);
        self.reader.now_at_path(&mut open);
        if offset == 0 {
            self.reader.starts_at(&open);
        }
        self.state = PathState::Open(open);
        if created {
            self.reader.announce(FileState::Created);
        }
        true
    }

    fn open_at_path(&self) -> io::Result<(File, Metadata)> {
        if self.config.no_symlinks {
            open_regular_no_symlink(&self.path)
        } else {
            open_regular(&self.path)
        }
    }

    /// Puts `next` in place of what the path named, and tells clients what became of the file
    /// that was open there, if any: `Deleted` or `Rotated`.
    fn announce_gone(&mut self, next: PathState, now: Instant) {
        if let Some(gone) = self.leave_path(next, now) {
            self.reader.announce(gone);
        }
    }

    /// Puts `next` in place of what the path named. The file that was open there, if any, is read
    /// to its end and retired; returns what became of it (`Deleted` when no name is left to it,
    /// else `Rotated`). The one place where an open file leaves the path.
    fn leave_path(&mut self, next: PathState, now: Instant) -> Option<FileState> {
        let PathState::Open(mut old) = std::mem::replace(&mut self.state, next) else {
            return None;
        };
        self.reader.read_to_end(&mut old);
        let gone = if old.is_deleted() {
            FileState::Deleted
        } else {
            FileState::Rotated
        };
        self.retire(old, now);
        Some(gone)
    }

    /// Moves an old descriptor to the draining list (or closes it when there is no grace period).
    fn retire(&mut self, mut old: OpenFile, now: Instant) {
        if self.config.rotate_wait.is_zero() {
            self.reader.flush_partial(&mut old);
        } else {
            self.draining.push(Draining {
                open: old,
                until: now.max(Instant::now()) + self.config.rotate_wait,
            });
        }
    }

    /// Starts reading `file` at `offset` (dropping bytes up to the first newline when
    /// `mid_line`), and remembers its generation.
    fn open_file(
        &mut self,
        file: File,
        meta: &Metadata,
        offset: u64,
        mid_line: bool,
        now: Instant,
    ) -> OpenFile {
        if self.generations.len() == REMEMBERED_GENERATIONS {
            self.generations.pop_front();
        }
        let generation = Generation::of(meta);
        self.generations.push_back(generation);
        let mut open = OpenFile {
            file,
            generation,
            offset,
            splitter: LineSplitter::new(self.config.max_line_bytes),
            last_data: now,
            head: Head::default(),
            skip_to_newline: mid_line,
            read_error: None,
            serial: 0,
        };
        open.head.refresh(&open.file, open.offset);
        open
    }

    fn read_current(&mut self) {
        if let Some(open) = self.state.open_mut() {
            self.reader.read_to_end(open);
            open.head.refresh(&open.file, open.offset);
        }
    }

    /// Reads every rotated file to its end, then closes those whose grace period is over (their
    /// partial lines flushed), in the order they were retired.
    fn read_draining(&mut self, now: Instant) {
        for draining in &mut self.draining {
            self.reader.read_to_end(&mut draining.open);
        }
        let reader = &mut self.reader;
        self.draining.retain_mut(|draining| {
            let over = draining.until <= now;
            if over {
                reader.flush_partial(&mut draining.open);
            }
            !over
        });
    }

    /// Shows the current file's unfinished line once it has waited `partial_line_timeout` for
    /// its newline (and keeps the shown text up to date), or says there is none any more.
    fn show_pending(&mut self, now: Instant) {
        let timeout = self.config.partial_line_timeout;
        let shown = self.shown_pending.is_some();
        let text = self
            .state
            .open()
            .filter(|open| {
                open.partial_due(timeout)
                    .is_some_and(|due| shown || now >= due)
            })
            .map(|open| open.splitter.partial_text());
        if text.as_deref() == self.shown_pending.as_deref() {
            return;
        }
        let text = text.map(|t| t.into_owned());
        // The lines before it go first: a client shows the pending text after them.
        self.reader.emit_now();
        self.reader.sink.pending(text.as_deref());
        self.shown_pending = text;
    }

    /// Picks up where a checkpoint says the previous run stopped (see [`ResumePoint`]); tells
    /// the sink how many lines before the point are read again. What the path names now is
    /// looked at by the check that follows.
    fn resume_from(&mut self, point: ResumePoint, now: Instant) {
        if let Ok((file, meta)) = self.open_at_path() {
            if Generation::of(&meta) == point.file.generation() {
                if meta.len() >= point.end && point.file.matches(&file, &meta) {
                    let (start, before) =
                        resume_start(&file, &point, self.config.initial_tail_bytes);
                    self.reader.sink.resumed(before);
                    let mut open = self.open_file(file, &meta, start, false, now);
                    self.reader.now_at_path(&mut open);
                    self.state = PathState::Open(open);
                } else {
                    tracing::warn!(
                        "{} was rewritten while tailcast was stopped; reading it from its start",
                        self.path.display()
                    );
                    self.reader.sink.resumed(0);
                    let mut open = self.open_file(file, &meta, 0, false, now);
                    self.reader.now_at_path(&mut open);
                    self.state = PathState::Open(open);
                    self.reader.announce(FileState::Truncated);
                }
                return;
            }
        }
        // Another file (or none) is at the path: the one being read was rotated away meanwhile.
        match find_generation(&self.path, &point) {
            Some((file, meta)) => {
                let (start, before) = resume_start(&file, &point, self.config.initial_tail_bytes);
                self.reader.sink.resumed(before);
                let mut old = self.open_file(file, &meta, start, false, now);
                self.reader.read_to_end(&mut old);
                self.retire(old, now);
                self.state = PathState::RotatedAway;
                self.reader.announce(FileState::Rotated);
            }
            None => {
                tracing::warn!(
                    "the file read as {} before tailcast stopped is gone (not at the path, not \
                     among its siblings): lines written to it after byte {} cannot be read",
                    self.path.display(),
                    point.end
                );
                self.reader.sink.resumed(0);
                self.state = PathState::Missing;
            }
        }
    }
}

/// Where a resumed file is read from, and how many complete lines lie between there and
/// `point.end`: from `point.run_start`, or from the first line that starts within
/// `budget` bytes of the end when the run is longer (the history holds no more anyway).
fn resume_start(file: &File, point: &ResumePoint, budget: u64) -> (u64, u64) {
    let mut start = point.run_start.max(point.end.saturating_sub(budget));
    if start > point.run_start && !byte_at_is_newline(file, start - 1) {
        start = next_line_start(file, start, point.end);
    }
    let mut lines = count_newlines(file, start, point.end);
    if point.end > start && !byte_at_is_newline(file, point.end - 1) {
        // The run ends with a line flushed without its newline (rotation, truncation).
        lines += 1;
    }
    (start, lines)
}

fn byte_at_is_newline(file: &File, at: u64) -> bool {
    let mut byte = [0];
    matches!(file.read_at(&mut byte, at), Ok(1) if byte[0] == b'\n')
}

/// The offset just past the first newline at or after `from` (`end` if none comes before it).
fn next_line_start(file: &File, from: u64, end: u64) -> u64 {
    let mut buf = vec![0; 64 * 1024];
    let mut at = from;
    while at < end {
        let want = buf.len().min((end - at) as usize);
        let n = match file.read_at(&mut buf[..want], at) {
            Ok(0) | Err(_) => return end,
            Ok(n) => n,
        };
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            return at + i as u64 + 1;
        }
        at += n as u64;
    }
    end
}

fn count_newlines(file: &File, from: u64, end: u64) -> u64 {
    let mut buf = vec![0; 64 * 1024];
    let (mut at, mut count) = (from, 0);
    while at < end {
        let want = buf.len().min((end - at) as usize);
        let n = match file.read_at(&mut buf[..want], at) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        count += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        at += n as u64;
    }
    count
}

/// Most directory entries looked at when searching for a rotated generation.
const MAX_SIBLINGS_SCANNED: usize = 10_000;

/// The generation `point` names, looked for among the followed path's rotated siblings (names
/// that start with the path's file name, in the same directory: `app.log.1`, `app.log-2026...`),
/// if it is still there, whole (at least `point.end` bytes, the same first bytes).
fn find_generation(path: &Path, point: &ResumePoint) -> Option<(File, Metadata)> {
    let (dir, name) = (path.parent()?, path.file_name()?.as_encoded_bytes());
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.take(MAX_SIBLINGS_SCANNED).flatten() {
        let sibling = entry.file_name();
        let sibling = sibling.as_encoded_bytes();
        if sibling.len() <= name.len() || !sibling.starts_with(name) {
            continue;
        }
        let candidate = entry.path();
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if Generation::of(&meta) != point.file.generation() {
            continue;
        }
        let Ok((file, meta)) = open_regular(&candidate) else {
            continue;
        };
        if meta.len() >= point.end && point.file.matches(&file, &meta) {
            tracing::info!(
                "{} was rotated to {} while tailcast was stopped; reading it on from byte {}",
                path.display(),
                candidate.display(),
                point.end
            );
            return Some((file, meta));
        }
    }
    None
}

/// Why a path cannot be followed, in a short sentence for clients (the log has the path and the
/// full error).
fn reason(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::PermissionDenied {
        "permission denied: tailcast's user cannot read it".to_owned()
    } else if e.raw_os_error().is_none() {
        // tailcast's own words, such as open::not_regular's "it is a FIFO (named pipe), ...".
        e.to_string()
    } else {
        format!("it cannot be read: {e}")
    }
}

/// Reads open files and hands what they hold to the sink: the read buffer (one, lent to every
/// read), the batch being filled, coalescing, and the error log. It lives beside the path's
/// state rather than inside it, so a file is read where it is kept.
struct Reader<S> {
    sink: S,
    /// The followed path, for messages.
    path: PathBuf,
    buf: Vec<u8>,
    batch: LineBatch,
    /// Lines are handed over in batches of about this many bytes.
    batch_bytes: usize,
    coalesce: Duration,
    /// When lines were last handed to the sink.
    last_emit: Option<Instant>,
    /// How many times lines were handed to the sink.
    emits: u64,
    /// Lines are held back (coalescing) until this instant.
    hold_until: Option<Instant>,
    /// Where the lines of `batch` lie in their file (a batch holds lines of one file only);
    /// after a batch is handed over, where the next one of that file would start.
    origin: Option<BatchOrigin>,
    /// The serial of the file opened at the path last ([`OpenFile::serial`]).
    current_serial: u64,
    errors: ErrorLog,
}

impl<S: TailSink> Reader<S> {
    fn new(path: PathBuf, config: &FollowConfig, sink: S) -> Self {
        Reader {
            sink,
            path,
            buf: vec![0; config.read_chunk_bytes.max(4096)],
            batch: LineBatch::default(),
            batch_bytes: config.read_chunk_bytes,
            coalesce: config.coalesce,
            last_emit: None,
            emits: 0,
            hold_until: None,
            origin: None,
            current_serial: 0,
            errors: ErrorLog::default(),
        }
    }

    /// Lines of `open` are about to join the batch: the batch is handed over first if it holds
    /// lines from elsewhere (another file, or an earlier place in this one).
    fn lines_from(&mut self, open: &OpenFile) {
        let start = open.line_start();
        let identity = open.identity();
        let current = self.is_current(open);
        let continues = self
            .origin
            .is_some_and(|o| o.file.same_file(&identity) && o.end == start && o.current == current);
        if !continues {
            self.emit_now();
            self.origin = Some(BatchOrigin {
                file: identity,
                start,
                end: start,
                current,
            });
        }
    }

    fn is_current(&self, open: &OpenFile) -> bool {
        open.serial != 0 && open.serial == self.current_serial
    }

    /// `open` was just opened at the path: it is the current file from now on (what was read of
    /// the previous one goes out first, as the previous one's).
    fn now_at_path(&mut self, open: &mut OpenFile) {
        self.emit_now();
        self.current_serial += 1;
        open.serial = self.current_serial;
    }

    /// The batch now holds the lines of `open` up to its unfinished one.
    fn lines_up_to(&mut self, open: &OpenFile, end: u64) {
        if let Some(origin) = &mut self.origin {
            origin.end = end;
            origin.file = open.identity();
        }
    }

    /// Tells the sink where the lines of `open`, just opened at a line start, will come from
    /// (before any of them: what a checkpoint holds until the first line).
    fn starts_at(&mut self, open: &OpenFile) {
        self.emit_now();
        let start = open.line_start();
        self.sink.origin(&BatchOrigin {
            file: open.identity(),
            start,
            end: start,
            current: self.is_current(open),
        });
    }

    /// True when the batch holds lines of `file`.
    fn holds_lines_of(&self, file: &FileIdentity) -> bool {
        !self.batch.is_empty() && self.origin.is_some_and(|o| o.file.same_file(file))
    }

    /// Takes the batch out, with its origin and the end of its coalescing hold (to let other
    /// lines go first).
    fn take_pending(&mut self) -> Pending {
        Pending {
            batch: std::mem::take(&mut self.batch),
            origin: self.origin.take(),
            hold_until: self.hold_until.take(),
        }
    }

    /// Puts back what [`take_pending`](Self::take_pending) took; the batch must be empty. Held
    /// lines keep their hold's end: handing the other lines over in between must not leave
    /// them without a deadline.
    fn restore_pending(&mut self, pending: Pending) {
        self.batch = pending.batch;
        self.origin = pending.origin;
        self.hold_until = pending.hold_until;
    }

    /// Reads `open` from its offset to the end of file, handing lines over batch by batch.
    fn read_to_end(&mut self, open: &mut OpenFile) {
        loop {
            let n = match open.file.read_at(&mut self.buf, open.offset) {
                Ok(0) => {
                    open.read_error = None;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.errors
                        .note(format!("cannot read {}: {e}", self.path.display()));
                    open.read_error = Some(reason(&e));
                    break;
                }
            };
            // Not the check's start time: handing a batch over may wait (the sink may pace reading),
            // and a partial line must not look idle because the read took long.
            open.last_data = Instant::now();
            let mut from = 0;
            if open.skip_to_newline {
                match self.buf[..n].iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        from = i + 1;
                        open.skip_to_newline = false;
                    }
                    None => {
                        open.offset += n as u64;
                        continue;
                    }
                }
            }
            // Everything before `open.offset` has been fed (or skipped): `line_start` is exact.
            open.offset += from as u64;
            self.lines_from(open);
            open.offset += (n - from) as u64;
            if self.batch.is_empty() && n == self.buf.len() {
                // A burst (the read filled the buffer). A batch goes out once it holds
                // `batch_bytes`, so it holds at most that, one more read and the line the splitter
                // carries over: sized so at its start, its lines are copied in once and never
                // moved by a growth. A short read (a trickle) takes only the room it needs.
                self.batch
                    .reserve(self.batch_bytes + n + open.splitter.partial_len());
            }
            open.splitter.feed(&self.buf[from..n], &mut self.batch);
            // Known before the lines leave: a checkpoint names the file by its first bytes too.
            open.head.refresh(&open.file, open.offset);
            self.lines_up_to(open, open.line_start());
            if self.batch.text_bytes() >= self.batch_bytes {
                self.emit_batch();
            }
        }
        self.emit_batch();
    }

    fn flush_partial(&mut self, open: &mut OpenFile) {
        if !open.splitter.has_partial() {
            return;
        }
        self.lines_from(open);
        open.splitter.flush(&mut self.batch);
        self.lines_up_to(open, open.offset);
        self.emit_batch();
    }

    /// Hands the pending lines to the sink, unless lines went out less than `coalesce` ago and
    /// the batch is small: then they wait for more to join them, until `hold_until`.
    fn emit_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        // Only a trickle is held back: a large read goes out at once.
        if self.batch.text_bytes() < self.batch_bytes / 4 {
            if let Some(due) = self.last_emit.map(|last| last + self.coalesce) {
                if Instant::now() < due {
                    self.hold_until = Some(due);
                    return;
                }
            }
        }
        self.emit_now();
    }

    /// Hands the held lines over if their coalescing wait is over.
    fn emit_if_due(&mut self, now: Instant) {
        if self.hold_until.is_some_and(|due| now >= due) {
            self.emit_now();
        }
    }

    /// Hands the pending lines to the sink at once.
    fn emit_now(&mut self) {
        self.hold_until = None;
        if !self.batch.is_empty() {
            self.sink.lines(std::mem::take(&mut self.batch));
            if let Some(origin) = &mut self.origin {
                self.sink.origin(origin);
                origin.start = origin.end;
            }
            self.last_emit = Some(Instant::now());
            self.emits += 1;
        }
    }

    /// Reports a state change, after the lines read before it.
    fn announce(&mut self, state: FileState) {
        self.emit_now();
        self.sink.state(state);
    }
}

/// A batch taken out of the reader for a while, and what goes with it.
struct Pending {
    batch: LineBatch,
    origin: Option<BatchOrigin>,
    hold_until: Option<Instant>,
}

/// Logs an error when it appears or changes and once more when it ends, not at every retry.
#[derive(Default)]
struct ErrorLog {
    /// The error logged last, while it lasts.
    logged: Option<String>,
    /// The check under way has seen an error, so the one logged has not ended.
    seen_in_check: bool,
}

impl ErrorLog {
    fn begin_check(&mut self) {
        self.seen_in_check = false;
    }

    fn note(&mut self, message: String) {
        self.seen_in_check = true;
        if self.logged.as_ref() != Some(&message) {
            tracing::warn!("{message}; retrying");
            self.logged = Some(message);
        }
    }

    fn end_check(&mut self, path: &Path) {
        if self.seen_in_check {
            return;
        }
        if let Some(message) = self.logged.take() {
            tracing::info!("recovered: {} ({message})", path.display());
        }
    }
}

#[cfg(test)]
mod concurrent_writer_tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Count(Arc<Mutex<(usize, Vec<String>)>>);
    impl TailSink for Count {
        fn lines(&mut self, batch: LineBatch) {
            let mut c = self.0.lock().unwrap();
            c.0 += batch.len();
        }
        fn state(&mut self, state: FileState) {
            self.0.lock().unwrap().1.push(format!("{state:?}"));
        }
        fn status(&mut self, _: FileStatus) {}
    }

    #[test]
    fn concurrent_writer_of_64k_lines() {
        for round in 0..5 {
            let dir = std::env::temp_dir().join(format!("tc-repro-{}-{round}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("app.log");
            std::fs::write(&path, "").unwrap();
            let count = Count::default();
            let config = FollowConfig {
                initial_tail_bytes: 2 << 20,
                read_chunk_bytes: 64 * 1024,
                ..FollowConfig::default()
            };
            let mut follower = Follower::new(path.clone(), config, count.clone());
            follower.check();
            let wpath = path.clone();
            let writer = std::thread::spawn(move || {
                let line = format!("{}\n", "y".repeat(65535));
                for _ in 0..8 {
                    let mut f = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&wpath)
                        .unwrap();
                    f.write_all(line.repeat(32).as_bytes()).unwrap();
                }
            });
            while !writer.is_finished() {
                follower.check();
            }
            writer.join().unwrap();
            follower.check();
            let c = count.0.lock().unwrap();
            assert_eq!(c.0, 256, "round {round}: events {:?}", c.1);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}

#[cfg(test)]
mod rotated_away_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<String>>>);
    impl TailSink for Collect {
        fn lines(&mut self, batch: LineBatch) {
            let mut seen = self.0.lock().unwrap();
            seen.extend(batch.lines().map(|line| line.to_owned()));
        }
        fn state(&mut self, state: FileState) {
            self.0.lock().unwrap().push(format!("<{}>", state.as_str()));
        }
        fn status(&mut self, _: FileStatus) {}
    }

    /// A follower of `app.log` (holding `first`) in a fresh directory, checked once, that reads
    /// rotated files for a minute.
    fn following(first: &str) -> (tempfile::TempDir, PathBuf, Collect, Follower<Collect>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, first).unwrap();
        let seen = Collect::default();
        let config = FollowConfig {
            rotate_wait: Duration::from_secs(60),
            ..FollowConfig::default()
        };
        let mut follower = Follower::new(path.clone(), config, seen.clone());
        follower.check();
        (dir, path, seen, follower)
    }

    #[test]
    fn a_generation_renamed_away_between_checks_is_read_once() {
        let (dir, path, seen, mut follower) = following("a1\n");
        // Between two checks: a is rotated away, b is created, written, rotated away, c created.
        std::fs::rename(&path, dir.path().join("app.log.0")).unwrap();
        std::fs::write(&path, "b1\nb2\n").unwrap();
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        std::fs::write(&path, "c1\n").unwrap();
        // What the watcher hands over, in event order; `a` is known and must not be re-read.
        for name in ["app.log.0", "app.log.1"] {
            follower.rotated_away(File::open(dir.path().join(name)).unwrap());
        }
        follower.check();
        // A second notice of a generation already read changes nothing.
        follower.rotated_away(File::open(dir.path().join("app.log.1")).unwrap());
        follower.check();
        assert_eq!(
            *seen.0.lock().unwrap(),
            ["a1", "<rotated>", "b1", "b2", "<rotated>", "c1"]
        );
    }

    #[test]
    fn lines_held_for_coalescing_keep_their_deadline_while_a_rotated_file_drains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "a1\n").unwrap();
        let seen = Collect::default();
        let config = FollowConfig {
            rotate_wait: Duration::from_secs(600),
            coalesce: Duration::from_secs(60),
            ..FollowConfig::default()
        };
        let mut follower = Follower::new(path.clone(), config, seen.clone());
        follower.check();
        // Rotated, and the new file's first line comes within the coalescing window: held.
        let rotated = dir.path().join("app.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        std::fs::write(&path, "b1\n").unwrap();
        follower.rotated_away(File::open(&rotated).unwrap());
        follower.check();
        assert_eq!(*seen.0.lock().unwrap(), ["a1", "<rotated>"]);
        // Its deadline is the hold's end, not the rotated file's grace period (nor nothing).
        let due = follower
            .next_deadline()
            .expect("a deadline for the held line");
        assert!(due < Instant::now() + Duration::from_secs(120), "{due:?}");
        follower.reader.emit_if_due(due);
        assert_eq!(*seen.0.lock().unwrap(), ["a1", "<rotated>", "b1"]);
    }

    #[test]
    fn a_generation_queued_behind_many_missed_ones_is_not_read_again() {
        // A follower far behind in a burst: it opened `current` at the path, then is handed more
        // missed generations than it remembers before `current`'s own rename notice arrives.
        let (dir, path, seen, mut follower) = following("current\n");
        let missed = REMEMBERED_GENERATIONS + 8;
        for i in 0..missed {
            let name = dir.path().join(format!("app.log.{i}"));
            std::fs::write(&name, format!("missed {i}\n")).unwrap();
            follower.rotated_away(File::open(&name).unwrap());
        }
        let renamed = dir.path().join("app.log.current");
        std::fs::rename(&path, &renamed).unwrap();
        follower.rotated_away(File::open(&renamed).unwrap());
        follower.check();
        let seen = seen.0.lock().unwrap();
        let times = seen.iter().filter(|line| *line == "current").count();
        assert_eq!(times, 1, "`current` read {times} times");
        let lines = seen.iter().filter(|line| !line.starts_with('<')).count();
        assert_eq!(lines, missed + 1);
    }
}

#[cfg(test)]
mod status_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct LastStatus(Arc<Mutex<Option<FileStatus>>>);
    impl TailSink for LastStatus {
        fn lines(&mut self, _: LineBatch) {}
        fn state(&mut self, _: FileState) {}
        fn status(&mut self, status: FileStatus) {
            *self.0.lock().unwrap() = Some(status);
        }
    }

    #[test]
    fn a_path_that_cannot_be_read_says_why_until_it_can() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let last = LastStatus::default();
        let status = || last.0.lock().unwrap().clone().unwrap();
        let mut follower = Follower::new(path.clone(), FollowConfig::default(), last.clone());
        follower.check();
        assert_eq!(status(), FileStatus::default(), "missing is not an error");
        std::fs::create_dir(&path).unwrap();
        follower.check();
        assert_eq!(
            status(),
            FileStatus {
                exists: false,
                size: 0,
                error: Some("it is a directory, not a regular file".to_owned()),
            }
        );
        std::fs::remove_dir(&path).unwrap();
        std::fs::write(&path, "line\n").unwrap();
        follower.check();
        assert_eq!(
            status(),
            FileStatus {
                exists: true,
                size: 5,
                error: None,
            }
        );
    }
}
