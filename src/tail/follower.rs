//! The follower: one configured path, followed the way `tail -F` does.
//!
//! A [`Follower`] is a synchronous state machine. Each [`Follower::check`] stats the path and the
//! open descriptor, tells append, truncation (size below the read offset, or the file's first bytes
//! changed), replacement ((dev, inode) changed: rename+create rotation, delete+re-create) and
//! deletion apart, reads everything appended to the end, and hands lines and state changes to a
//! [`TailSink`]. After a rotation the old descriptor is still read for `rotate_wait` (writers keep
//! appending to it until they reopen their log). It owns no thread and no timer: the thread that [`super::Tailer`] starts
//! calls `check` on every file-system wake-up and on the stat interval.

use std::collections::VecDeque;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::open::{kind, open_regular};
use super::splitter::{LineBatch, LineSplitter};

/// How many leading bytes of a file are remembered to notice it being rewritten in place.
const HEAD_FINGERPRINT_BYTES: usize = 64;

/// How many file generations (dev, inode, birth time) a follower remembers having opened, to tell a
/// generation it never saw from one it already read (see [`Follower::rotated_away`]).
const REMEMBERED_GENERATIONS: usize = 32;

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
}

impl FileState {
    /// The protocol's name for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Created => "created",
            FileState::Truncated => "truncated",
            FileState::Rotated => "rotated",
            FileState::Deleted => "deleted",
        }
    }
}

/// Where the follower receives what it read. Implemented by the hub adapter in `app`, and by
/// plain collectors in tests.
pub trait TailSink: Send + 'static {
    /// Complete lines, in file order.
    fn lines(&mut self, batch: LineBatch);
    /// A state change of the file.
    fn state(&mut self, state: FileState);
    /// Whether the path exists and how many bytes of it have been read; called on change.
    fn status(&mut self, exists: bool, size: u64);
}

/// Settings of a follower; every interval is a `Duration` so tests can shrink it.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// Longest line kept; longer lines are cut and marked.
    pub max_line_bytes: usize,
    /// Bytes read per `read` call; lines are handed over in batches of about this size.
    pub read_chunk_bytes: usize,
    /// An unfinished last line is emitted after this long without new bytes.
    pub partial_line_timeout: Duration,
    /// How long a rotated-away file is still read.
    pub rotate_wait: Duration,
    /// How much of an existing file's end is read at start-up (to fill the history).
    pub initial_tail_bytes: u64,
    /// Lines read less than this after the previous batch was handed over wait (at most this
    /// long) for more to join them: one batch, one frame to every client, instead of many.
    pub coalesce: Duration,
}

impl Default for FollowConfig {
    fn default() -> Self {
        FollowConfig {
            max_line_bytes: 64 * 1024,
            read_chunk_bytes: 128 * 1024,
            partial_line_timeout: Duration::from_millis(1000),
            rotate_wait: Duration::from_secs(5),
            initial_tail_bytes: 1024 * 1024,
            coalesce: Duration::ZERO,
        }
    }
}

/// One file generation: (dev, inode) and, where the file system records it, the birth time, so
/// that a new file reusing a deleted one's inode is not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Generation {
    dev: u64,
    ino: u64,
    born: Option<std::time::SystemTime>,
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
    dev: u64,
    ino: u64,
    offset: u64,
    splitter: LineSplitter,
    /// When bytes were last read (for the partial-line timeout).
    last_data: Instant,
    /// The file's first bytes, to notice an in-place rewrite that grew past the old offset.
    head: Vec<u8>,
    /// Started in the middle of a file: drop bytes up to the first newline.
    skip_to_newline: bool,
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
    sink: S,
    current: Option<OpenFile>,
    draining: Vec<Draining>,
    started: bool,
    reported: Option<(bool, u64)>,
    /// The last error logged; logged again only when it changes.
    last_error: Option<String>,
    /// An error was seen during the current check.
    error_in_check: bool,
    buf: Vec<u8>,
    batch: LineBatch,
    /// The generations opened most recently, newest last.
    generations: VecDeque<Generation>,
    /// When lines were last handed to the sink.
    last_emit: Option<Instant>,
    /// How many times lines were handed to the sink.
    emits: u64,
    /// Lines are held back (coalescing) until this instant.
    hold_until: Option<Instant>,
    /// A rotation was already announced for the file now at the path: opening it is not a
    /// "created".
    rotation_announced: bool,
}

impl<S: TailSink> Follower<S> {
    /// A follower for `path`; nothing is read before the first [`check`](Self::check).
    pub fn new(path: PathBuf, config: FollowConfig, sink: S) -> Self {
        let buf = vec![0; config.read_chunk_bytes.max(4096)];
        Follower {
            path,
            config,
            sink,
            current: None,
            draining: Vec::new(),
            started: false,
            reported: None,
            last_error: None,
            error_in_check: false,
            buf,
            batch: LineBatch::default(),
            generations: VecDeque::with_capacity(REMEMBERED_GENERATIONS),
            rotation_announced: false,
            last_emit: None,
            emits: 0,
            hold_until: None,
        }
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True while a rotated-away file is still being read.
    pub fn is_draining(&self) -> bool {
        !self.draining.is_empty()
    }

    /// The sink (tests read what it collected).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Looks at the file once and reads whatever is new. Never fails: I/O errors are logged once
    /// per distinct error and retried at the next check.
    pub fn check(&mut self) {
        let now = Instant::now();
        self.error_in_check = false;
        self.read_draining(now);
        let emits_before = self.emits;
        let mark = self.batch.len();
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.is_file() => {
                self.follow_existing(&meta, now);
            }
            Ok(meta) => {
                self.note_error(format!(
                    "{} is {}, not a regular file",
                    self.path.display(),
                    kind(meta.file_type())
                ));
                self.path_gone(now);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.rotation_announced = false;
                self.path_gone(now);
            }
            Err(e) => {
                self.note_error(format!("cannot stat {}: {e}", self.path.display()));
                // Keep reading what is open; the path may come back.
                self.read_current();
            }
        }
        if !self.draining.is_empty() && self.emits == emits_before && self.batch.len() > mark {
            // While the current file was read, the application may still have written to a
            // rotated one (it writes there until it reopens its log): those lines came before the
            // current file's lines just read, so they go first.
            let current_lines = self.batch.split_off(mark);
            self.read_draining(now);
            self.batch.append(current_lines);
        }
        self.started = true;
        if !self.error_in_check {
            self.clear_error();
        }
        self.flush_idle_partial(Instant::now());
        if self.hold_until.is_some_and(|due| Instant::now() >= due) {
            self.emit_now();
        }
        let status = match &self.current {
            Some(open) => (true, open.offset),
            None => (false, 0),
        };
        if self.reported != Some(status) {
            self.reported = Some(status);
            self.sink.status(status.0, status.1);
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
        if !meta.is_file() || self.generations.contains(&Generation::of(&meta)) {
            return;
        }
        let current_still_at_path = self.current.as_ref().is_some_and(|open| {
            std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == (open.dev, open.ino))
        });
        if !current_still_at_path {
            if let Some(mut old) = self.current.take() {
                self.read_to_end(&mut old);
                self.retire(old, now);
                self.announce(FileState::Rotated);
            }
        }
        let mut missed = self.open_file(file, &meta, 0, now);
        self.read_to_end(&mut missed);
        self.retire(missed, now);
        if current_still_at_path {
            // Older than the file being read (its rename was seen late): its lines come after
            // some of the newer file's, and no rotation is announced for it.
            self.emit_now();
        } else {
            self.announce(FileState::Rotated);
            self.rotation_announced = true;
        }
    }

    /// The latest instant at which `check` must run again even without a wake-up (partial-line
    /// flush, end of a rotation grace period), if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let partial = self
            .current
            .iter()
            .chain(self.draining.iter().map(|d| &d.open))
            .filter(|open| open.splitter.has_partial())
            .map(|open| open.last_data + self.config.partial_line_timeout);
        let drains = self.draining.iter().map(|d| d.until);
        partial.chain(drains).chain(self.hold_until).min()
    }

    /// Reads every open file to its end and flushes its partial line (shutdown): the current
    /// file's complete lines, then each rotated file's, then the current file's unfinished line.
    pub fn finish(&mut self) {
        self.read_current();
        for mut draining in std::mem::take(&mut self.draining) {
            self.read_to_end(&mut draining.open);
            self.flush_partial_of(&mut draining.open);
        }
        if let Some(mut open) = self.current.take() {
            self.flush_partial_of(&mut open);
            self.current = Some(open);
        }
        self.emit_now();
    }

    fn follow_existing(&mut self, meta: &Metadata, now: Instant) {
        let same_file = self
            .current
            .as_ref()
            .is_some_and(|open| open.dev == meta.dev() && open.ino == meta.ino());
        let replaced = self.current.is_some() && !same_file;
        if replaced {
            // Replaced: finish the old descriptor first, keep reading it for the grace period.
            if let Some(mut old) = self.current.take() {
                self.read_to_end(&mut old);
                self.retire(old, now);
            }
            self.announce(FileState::Rotated);
        }
        if self.current.is_none() {
            let from_tail = !self.started;
            match self.open(from_tail, now) {
                Ok(open) => {
                    self.current = Some(open);
                    if self.started && !replaced && !self.rotation_announced {
                        self.announce(FileState::Created);
                    }
                    self.rotation_announced = false;
                }
                Err(e) => {
                    self.note_error(format!("cannot open {}: {e}", self.path.display()));
                    return;
                }
            }
        } else if let Some(open) = self.current.as_mut() {
            if meta.len() < open.offset || !head_unchanged(open) {
                // Truncated (or rewritten in place): what is held of a line is flushed, not lost.
                let mut open = self.current.take().expect("checked above");
                self.flush_partial_of(&mut open);
                open.offset = 0;
                open.head.clear();
                open.skip_to_newline = false;
                self.current = Some(open);
                self.announce(FileState::Truncated);
            }
        }
        self.read_current();
    }

    fn path_gone(&mut self, now: Instant) {
        if let Some(mut old) = self.current.take() {
            self.read_to_end(&mut old);
            let deleted = old.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
            self.retire(old, now);
            self.announce(if deleted {
                FileState::Deleted
            } else {
                FileState::Rotated
            });
        }
    }

    /// Moves an old descriptor to the draining list (or closes it when there is no grace period).
    fn retire(&mut self, mut old: OpenFile, now: Instant) {
        if self.config.rotate_wait.is_zero() {
            self.flush_partial_of(&mut old);
        } else {
            self.draining.push(Draining {
                open: old,
                until: now.max(Instant::now()) + self.config.rotate_wait,
            });
        }
    }

    fn open(&mut self, from_tail: bool, now: Instant) -> io::Result<OpenFile> {
        // Identity and type from the descriptor, not the earlier stat: the path may have changed
        // between (into a FIFO, even, which this open does not wait on).
        let (file, fmeta) = open_regular(&self.path)?;
        let offset = if from_tail {
            fmeta.len().saturating_sub(self.config.initial_tail_bytes)
        } else {
            0
        };
        Ok(self.open_file(file, &fmeta, offset, now))
    }

    /// Starts reading `file` at `offset`, and remembers its generation.
    fn open_file(&mut self, file: File, meta: &Metadata, offset: u64, now: Instant) -> OpenFile {
        let id = (meta.dev(), meta.ino());
        if self.generations.len() == REMEMBERED_GENERATIONS {
            self.generations.pop_front();
        }
        self.generations.push_back(Generation::of(meta));
        let mut open = OpenFile {
            file,
            dev: id.0,
            ino: id.1,
            offset,
            splitter: LineSplitter::new(self.config.max_line_bytes),
            last_data: now,
            head: Vec::new(),
            skip_to_newline: offset > 0,
        };
        refresh_head(&mut open);
        open
    }

    fn read_current(&mut self) {
        if let Some(mut open) = self.current.take() {
            self.read_to_end(&mut open);
            if open.head.len() < HEAD_FINGERPRINT_BYTES {
                refresh_head(&mut open);
            }
            self.current = Some(open);
        }
    }

    fn read_draining(&mut self, now: Instant) {
        let mut draining = std::mem::take(&mut self.draining);
        for entry in draining.iter_mut() {
            self.read_to_end(&mut entry.open);
        }
        for mut entry in draining {
            if entry.until <= now {
                self.flush_partial_of(&mut entry.open);
            } else {
                self.draining.push(entry);
            }
        }
    }

    /// Reads `open` from its offset to the end of file, handing lines over batch by batch.
    fn read_to_end(&mut self, open: &mut OpenFile) {
        loop {
            let n = match open.file.read_at(&mut self.buf, open.offset) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.note_error(format!("cannot read {}: {e}", self.path.display()));
                    break;
                }
            };
            open.offset += n as u64;
            // Not the check's start time: handing a batch over may wait (the hub paces reading),
            // and a partial line must not look idle because the read took long.
            open.last_data = Instant::now();
            let mut chunk = &self.buf[..n];
            if open.skip_to_newline {
                match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        chunk = &chunk[i + 1..];
                        open.skip_to_newline = false;
                    }
                    None => continue,
                }
            }
            open.splitter.feed(chunk, &mut self.batch);
            if self.batch.text_bytes() >= self.config.read_chunk_bytes {
                self.emit_batch();
            }
        }
        self.emit_batch();
    }

    fn flush_idle_partial(&mut self, now: Instant) {
        let timeout = self.config.partial_line_timeout;
        if let Some(mut open) = self.current.take() {
            if open.splitter.has_partial() && now.duration_since(open.last_data) >= timeout {
                self.flush_partial_of(&mut open);
            }
            self.current = Some(open);
        }
        let mut draining = std::mem::take(&mut self.draining);
        for entry in draining.iter_mut() {
            if entry.open.splitter.has_partial()
                && now.duration_since(entry.open.last_data) >= timeout
            {
                self.flush_partial_of(&mut entry.open);
            }
        }
        self.draining = draining;
    }

    fn flush_partial_of(&mut self, open: &mut OpenFile) {
        open.splitter.flush(&mut self.batch);
        self.emit_batch();
    }

    /// Hands the pending lines to the sink, unless lines went out less than `coalesce` ago and
    /// the batch is small: then they wait for more to join them, until [`Self::next_deadline`].
    fn emit_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let now = Instant::now();
        // Only a trickle is held back: a large read goes out at once.
        if self.batch.text_bytes() < self.config.read_chunk_bytes / 4 {
            if let Some(due) = self.last_emit.map(|last| last + self.config.coalesce) {
                if now < due {
                    self.hold_until = Some(due);
                    return;
                }
            }
        }
        self.emit_now();
    }

    /// Hands the pending lines to the sink at once.
    fn emit_now(&mut self) {
        self.hold_until = None;
        if !self.batch.is_empty() {
            self.sink.lines(std::mem::take(&mut self.batch));
            self.last_emit = Some(Instant::now());
            self.emits += 1;
        }
    }

    /// Reports a state change, after the lines read before it.
    fn announce(&mut self, state: FileState) {
        self.emit_now();
        self.sink.state(state);
    }

    fn note_error(&mut self, message: String) {
        self.error_in_check = true;
        if self.last_error.as_ref() != Some(&message) {
            tracing::warn!("{message}; retrying");
            self.last_error = Some(message);
        }
    }

    fn clear_error(&mut self) {
        if let Some(message) = self.last_error.take() {
            tracing::info!("recovered: {} ({message})", self.path.display());
        }
    }
}

/// Reads up to [`HEAD_FINGERPRINT_BYTES`] from the start of the file into `open.head`.
fn refresh_head(open: &mut OpenFile) {
    let want = (HEAD_FINGERPRINT_BYTES as u64).min(open.offset.max(open.head.len() as u64));
    if want as usize <= open.head.len() && !open.head.is_empty() {
        return;
    }
    let mut head = vec![0; want as usize];
    if let Ok(n) = open.file.read_at(&mut head, 0) {
        head.truncate(n);
        open.head = head;
    }
}

/// False when the file's first bytes differ from what was read before (rewritten in place).
fn head_unchanged(open: &OpenFile) -> bool {
    if open.head.is_empty() {
        return true;
    }
    let mut now = [0u8; HEAD_FINGERPRINT_BYTES];
    match open.file.read_at(&mut now[..open.head.len()], 0) {
        Ok(n) => n == open.head.len() && now[..n] == open.head[..],
        Err(_) => true,
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
        fn status(&mut self, _: bool, _: u64) {}
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
        fn status(&mut self, _: bool, _: u64) {}
    }

    #[test]
    fn a_generation_renamed_away_between_checks_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "a1\n").unwrap();
        let seen = Collect::default();
        let config = FollowConfig {
            rotate_wait: Duration::from_secs(60),
            ..FollowConfig::default()
        };
        let mut follower = Follower::new(path.clone(), config, seen.clone());
        follower.check();
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
}
