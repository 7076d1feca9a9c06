//! Checkpoints for `--state-dir`: the numbering and read position of every file survive a
//! restart, a crash or an upgrade.
//!
//! Per file, a [`Checkpoint`] names the file generation being read (dev, inode, birth time, first
//! bytes), how far its lines were handed to the hub (`end`) and the seq of the last one, and a
//! *run*: the offset from which that generation's lines were numbered consecutively. Numbering is
//! a function of the file's bytes (a line gets its seq when its newline is read, never before), so
//! a restarted tailcast that reads again from the run gives every line the seq it had, and lines
//! past the checkpoint (read before a crash, or written while tailcast was down) the seqs a
//! tailcast that never stopped would have given them: nothing is lost, nothing repeats by seq.
//!
//! The sinks update a [`CheckpointSlot`] per file after every batch (one uncontended lock); a
//! [`Checkpointer`] thread writes the slots that changed every `--checkpoint-interval`, and once
//! more at shutdown, to `checkpoints.json` by write, fsync, rename, fsync of the directory. The
//! directory is locked (`flock`) so that two servers never share it. A missing file means a first
//! start; a truncated, garbled, other-version or other-host file gets one warning, is kept aside as
//! `checkpoints.json.bad`, and the run starts a fresh numbering (a new epoch: clients are told to
//! reset). What this does not keep: a rotated file still being written when tailcast stops (only
//! the generation at the path is checkpointed), and lines of a generation deleted or compressed
//! while tailcast was down.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::tail::{BatchOrigin, FileIdentity, Resume, ResumePoint};

/// The state file's name in the state directory.
pub const STATE_FILE: &str = "checkpoints.json";
/// Where an unreadable state file is kept for inspection.
const BAD_STATE_FILE: &str = "checkpoints.json.bad";
const LOCK_FILE: &str = "lock";
/// The version of the state file's format this build reads and writes.
pub const STATE_VERSION: u32 = 1;
/// Most checkpoints of files not followed in this run that are carried over to the next.
const MAX_CARRIED: usize = 10_000;
/// Largest state file read (a bigger one is not ours).
const MAX_STATE_BYTES: u64 = 64 << 20;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory cannot be made or opened.
    #[error(
        "cannot use the state directory {dir} (give --state-dir a directory tailcast's user can \
         create or write)"
    )]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// Another tailcast holds the directory.
    #[error(
        "the state directory {0} is in use by another tailcast: give each server its own \
         --state-dir"
    )]
    Locked(PathBuf),
}

/// How far one file was read and numbered; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The generation being read.
    pub file: FileIdentity,
    /// The run: from this offset to `end`, the generation's lines have consecutive seqs.
    pub run_start: u64,
    /// Offset just past the last line handed over.
    pub end: u64,
    /// Seq of that line: the file's newest seq.
    pub last_seq: u64,
}

impl Checkpoint {
    /// Where a follower picks up.
    pub fn resume_point(&self) -> ResumePoint {
        ResumePoint {
            file: self.file,
            run_start: self.run_start,
            end: self.end,
        }
    }

    /// The checkpoint after the lines `first_seq..=last_seq`, which lie at `origin`: the run goes
    /// on when they follow the previous lines in the same generation, else a new one starts.
    pub fn after(
        previous: Option<Checkpoint>,
        origin: &BatchOrigin,
        first_seq: u64,
        last_seq: u64,
    ) -> Checkpoint {
        let run_start = match previous {
            Some(p)
                if p.file.same_file(&origin.file)
                    && p.end == origin.start
                    && p.last_seq + 1 == first_seq =>
            {
                p.run_start
            }
            _ => origin.start,
        };
        Checkpoint {
            file: origin.file,
            run_start,
            end: origin.end,
            last_seq,
        }
    }
}

/// One file's latest checkpoint, shared by its sink (which updates it) and the checkpointer.
#[derive(Debug, Default)]
pub struct CheckpointSlot {
    inner: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    checkpoint: Option<Checkpoint>,
    /// The newest seq: the checkpoint's, or, for a stream (standard input, a command), which
    /// has no position to keep, the only thing kept.
    last_seq: u64,
    changed: bool,
}

impl CheckpointSlot {
    /// A slot holding what the previous run saved, if anything.
    pub fn new(saved: Option<&SavedFile>) -> Self {
        CheckpointSlot {
            inner: Mutex::new(SlotState {
                checkpoint: saved.and_then(|s| s.checkpoint),
                last_seq: saved.map_or(0, |s| s.last_seq),
                changed: false,
            }),
        }
    }

    /// The newest seq recorded.
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Records that lines up to `last_seq` were numbered (a stream's whole checkpoint: its
    /// numbering goes on after a restart, so no seq is ever given twice in an epoch).
    pub fn numbered(&self, last_seq: u64) {
        let mut state = self.lock();
        state.last_seq = last_seq;
        state.changed = true;
    }

    /// The checkpoint held.
    pub fn get(&self) -> Option<Checkpoint> {
        self.lock().checkpoint
    }

    /// Records where the file's first lines will come from (the file opened at start, before any
    /// line), unless a checkpoint is held already: a crash before the first line is numbered
    /// then still resumes in that file, from there.
    pub fn start_at(&self, origin: &BatchOrigin, last_seq: u64) {
        let mut state = self.lock();
        let elsewhere = !state
            .checkpoint
            .is_some_and(|c| c.file.same_file(&origin.file));
        // A new file at the path (after a rotation) is where reading goes on from now.
        if origin.current && elsewhere {
            state.checkpoint = Some(Checkpoint {
                file: origin.file,
                run_start: origin.start,
                end: origin.start,
                last_seq,
            });
            state.changed = true;
        }
    }

    /// Records that lines `first_seq..=last_seq` from `origin` were handed to the hub.
    /// Only the current file's lines move the position; lines a rotated-away file still gets
    /// only move the newest seq (a restart then numbers on after it, see [`SavedFile`]).
    pub fn advance(&self, origin: &BatchOrigin, first_seq: u64, last_seq: u64) {
        let mut state = self.lock();
        if origin.current || state.checkpoint.is_none() {
            state.checkpoint = Some(Checkpoint::after(
                state.checkpoint,
                origin,
                first_seq,
                last_seq,
            ));
        }
        state.last_seq = state.last_seq.max(last_seq);
        state.changed = true;
    }

    /// Whether it changed since the last call.
    fn take_changed(&self) -> bool {
        std::mem::take(&mut self.lock().changed)
    }

    /// What the state file keeps of it.
    fn saved(&self) -> SavedFile {
        let state = self.lock();
        SavedFile {
            checkpoint: state.checkpoint,
            last_seq: state
                .last_seq
                .max(state.checkpoint.map_or(0, |c| c.last_seq)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every followed file's slot, by absolute path: those of the start, and those live globs add.
pub type Slots = Arc<Mutex<Vec<(PathBuf, Arc<CheckpointSlot>)>>>;

/// The state file, as written.
#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    format: String,
    version: u32,
    host: String,
    epoch: u64,
    files: Vec<FileRecord>,
    /// Which path each file id named in this epoch: a cursor names a file by its id, so an id
    /// may never name another file within one epoch.
    #[serde(default)]
    ids: BTreeMap<String, PathBuf>,
}

/// Every file id of the epoch and the path it names (see [`StateFile`]'s `ids`).
pub type Ids = Arc<Mutex<BTreeMap<String, PathBuf>>>;

/// One file's checkpoint in the state file; `position` is absent for a file that had no file
/// to read yet (its numbering starts with the first line of whatever appears at the path), and
/// for a stream (only its `last_seq` is kept).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileRecord {
    path: PathBuf,
    position: Option<PositionRecord>,
    last_seq: u64,
}

/// Where in which file generation a checkpoint is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PositionRecord {
    dev: u64,
    ino: u64,
    /// Birth time in nanoseconds since the Unix epoch, where the file system records it.
    born_ns: Option<u128>,
    /// The first bytes of the file, in hex.
    head: String,
    run_start: u64,
    end: u64,
    /// Seq of the line that ends at `end` (the file's newest seq, `last_seq`, may be later:
    /// lines a rotated file got after it).
    end_seq: u64,
}

const FORMAT_NAME: &str = "tailcast-state";

impl FileRecord {
    fn of(path: &Path, saved: &SavedFile) -> FileRecord {
        FileRecord {
            path: path.to_path_buf(),
            position: saved.checkpoint.as_ref().map(PositionRecord::of),
            last_seq: saved.last_seq,
        }
    }

    /// What it says; `Err` when invalid.
    fn saved(&self) -> Result<SavedFile, ()> {
        let checkpoint = match &self.position {
            None => None,
            Some(position) => Some(position.checkpoint(self.last_seq).ok_or(())?),
        };
        Ok(SavedFile {
            checkpoint,
            last_seq: self.last_seq,
        })
    }
}

impl PositionRecord {
    fn of(c: &Checkpoint) -> PositionRecord {
        PositionRecord {
            dev: c.file.dev,
            ino: c.file.ino,
            born_ns: c
                .file
                .born
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos()),
            head: hex(c.file.head()),
            run_start: c.run_start,
            end: c.end,
            end_seq: c.last_seq,
        }
    }

    fn checkpoint(&self, last_seq: u64) -> Option<Checkpoint> {
        if self.end_seq > last_seq {
            return None;
        }
        let last_seq = self.end_seq;
        let head = unhex(&self.head)?;
        let born = match self.born_ns {
            Some(ns) => {
                let ns = u64::try_from(ns).ok()?;
                Some(UNIX_EPOCH + Duration::from_nanos(ns))
            }
            None => None,
        };
        if self.run_start > self.end {
            return None;
        }
        Some(Checkpoint {
            file: FileIdentity::new(self.dev, self.ino, born, &head),
            run_start: self.run_start,
            end: self.end,
            last_seq,
        })
    }
}

/// One file's part of the state: where it was read to, if it is a file that had lines, and
/// its newest seq. When lines of a rotated-away file were numbered after the checkpoint's last
/// line (`last_seq` > the checkpoint's), a restart reads on from the checkpoint's end without
/// reading its run again, numbering after `last_seq`: the seqs between belong to lines that
/// cannot be placed again, and readers are told of a gap, never given another line under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedFile {
    /// The checkpoint; `None` for a file with nothing read yet (read it from its start) and for
    /// a stream.
    pub checkpoint: Option<Checkpoint>,
    /// Its newest seq.
    pub last_seq: u64,
}

impl SavedFile {
    /// Where a follower of this file starts.
    pub fn resume(&self) -> Resume {
        match self.checkpoint {
            // None of its lines was numbered: from its start, not its tail.
            None => Resume::FromStart,
            Some(c) if self.last_seq > c.last_seq => Resume::At(ResumePoint {
                run_start: c.end,
                ..c.resume_point()
            }),
            Some(c) => Resume::At(c.resume_point()),
        }
    }
}

/// What the state directory held at start.
#[derive(Debug, Default)]
pub struct Saved {
    /// The numbering's epoch, kept from the previous run; `None` to start a fresh one.
    pub epoch: Option<u64>,
    /// By absolute path (a stream by its shown path: `-`, `!COMMAND`).
    pub files: HashMap<PathBuf, SavedFile>,
    /// The path each file id named in the epoch.
    pub ids: BTreeMap<String, PathBuf>,
}

/// An open, locked state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    /// Held open for the `flock`; the lock goes with the process.
    _lock: File,
}

impl StateDir {
    /// Makes (if needed) and locks `dir`.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        let fail = |source| StateError::Dir {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(fail)?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StateError::Locked(dir.to_path_buf()));
            }
            return Err(fail(e));
        }
        Ok(StateDir {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Reads what the previous run saved. Never fails: a state file that cannot be used is
    /// warned about once, kept aside, and the run starts afresh.
    pub fn load(&self) -> Saved {
        let path = self.dir.join(STATE_FILE);
        let fresh = Saved::default();
        let text = match read_bounded(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return fresh,
            Err(e) => {
                self.set_aside(&path, &format!("it cannot be read ({e})"));
                return fresh;
            }
        };
        match parse_state(&text) {
            Ok(saved) => saved,
            Err(why) => {
                self.set_aside(&path, &why);
                fresh
            }
        }
    }

    fn set_aside(&self, path: &Path, why: &str) {
        let bad = self.dir.join(BAD_STATE_FILE);
        let kept = match std::fs::rename(path, &bad) {
            Ok(()) => format!("it is kept as {}", bad.display()),
            Err(e) => format!("it could not be set aside ({e})"),
        };
        tracing::warn!(
            "state file {} not used: {why}; starting a fresh numbering (clients are told to \
             reset their cursors); {kept}",
            path.display()
        );
    }

    /// Writes the state atomically: a temporary file, fsync, rename over the old one, fsync of
    /// the directory (so the rename itself survives a power cut).
    fn save(
        &self,
        epoch: u64,
        files: Vec<FileRecord>,
        ids: BTreeMap<String, PathBuf>,
    ) -> io::Result<()> {
        let state = StateFile {
            format: FORMAT_NAME.to_owned(),
            version: STATE_VERSION,
            host: host_name(),
            epoch,
            files,
            ids,
        };
        let bytes = serde_json::to_vec(&state).map_err(io::Error::other)?;
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, self.dir.join(STATE_FILE))?;
        File::open(&self.dir)?.sync_all()
    }
}

fn read_bounded(path: &Path) -> io::Result<String> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_STATE_BYTES {
        return Err(io::Error::other(format!(
            "{len} bytes, more than a state file ever holds"
        )));
    }
    std::fs::read_to_string(path)
}

/// Checks a state file's text; the error says why it cannot be used.
fn parse_state(text: &str) -> Result<Saved, String> {
    let state: StateFile =
        serde_json::from_str(text).map_err(|e| format!("it is not a valid state file ({e})"))?;
    if state.format != FORMAT_NAME {
        return Err(format!(
            "it is not a tailcast state file (format {:?})",
            state.format
        ));
    }
    if state.version != STATE_VERSION {
        return Err(format!(
            "it was written in format version {} and this tailcast reads version {STATE_VERSION}",
            state.version
        ));
    }
    let host = host_name();
    if state.host != host {
        return Err(format!(
            "it was written on host {:?}, this is {host:?} (inodes and offsets are only \
             meaningful on the machine that wrote them)",
            state.host
        ));
    }
    let mut files = HashMap::new();
    for record in &state.files {
        let saved = record
            .saved()
            .map_err(|()| format!("the checkpoint of {} is invalid", record.path.display()))?;
        files.insert(record.path.clone(), saved);
    }
    Ok(Saved {
        epoch: Some(state.epoch),
        files,
        ids: state.ids,
    })
}

/// Writes the checkpoints of every followed file, at most once per interval and at shutdown.
pub struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the writer thread for `slots` (absolute path, slot); `carried` are the checkpoints
    /// of files not followed in this run, kept for the next. The state is written once at
    /// once, so the epoch is kept from the start.
    pub fn start(
        dir: StateDir,
        epoch: u64,
        slots: Slots,
        carried: HashMap<PathBuf, SavedFile>,
        ids: Ids,
        interval: Duration,
    ) -> io::Result<Checkpointer> {
        let mut carried: Vec<FileRecord> = carried
            .iter()
            .map(|(path, saved)| FileRecord::of(path, saved))
            .collect();
        carried.truncate(MAX_CARRIED);
        let writer = Writer {
            dir,
            epoch,
            slots,
            carried,
            ids,
            unwritten: false,
        };
        writer.write()?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name("checkpoints".into())
            .spawn(move || writer.run(&thread_stop, interval))?;
        Ok(Checkpointer {
            stop,
            handle: Some(handle),
        })
    }

    /// Writes the last checkpoints (call after the followers stopped) and stops.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

struct Writer {
    dir: StateDir,
    epoch: u64,
    slots: Slots,
    carried: Vec<FileRecord>,
    ids: Ids,
    /// The last write failed: the next tick writes whatever changed.
    unwritten: bool,
}

impl Writer {
    fn run(mut self, stop: &(Mutex<bool>, Condvar), interval: Duration) {
        let (stopped, wake) = stop;
        let mut guard = stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if !*guard {
                guard = wake
                    .wait_timeout(guard, interval)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            let last = *guard;
            drop(guard);
            if let Err(e) = self.write_if_changed() {
                tracing::warn!(
                    "cannot write checkpoints to {}: {e}; retrying",
                    self.dir.path().display()
                );
            }
            if last {
                return;
            }
            guard = stopped.lock().unwrap_or_else(|e| e.into_inner());
        }
    }

    fn slots(&self) -> Vec<(PathBuf, Arc<CheckpointSlot>)> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes when a slot changed since the last write, or the last write failed.
    fn write_if_changed(&mut self) -> io::Result<()> {
        let mut changed = std::mem::take(&mut self.unwritten);
        for (_, slot) in &self.slots() {
            changed |= slot.take_changed();
        }
        if changed {
            // Until it succeeds, every tick tries again.
            self.unwritten = true;
            self.write()?;
            self.unwritten = false;
        }
        Ok(())
    }

    fn write(&self) -> io::Result<()> {
        let slots = self.slots();
        let mut files: Vec<FileRecord> = self
            .carried
            .iter()
            .filter(|record| !slots.iter().any(|(path, _)| *path == record.path))
            .cloned()
            .collect();
        files.extend(
            slots
                .iter()
                .map(|(path, slot)| FileRecord::of(path, &slot.saved())),
        );
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.dir.save(self.epoch, files, ids)
    }
}

/// This machine's name (checkpoints are only valid where they were written).
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The time since the Unix epoch in milliseconds: a fresh numbering's epoch.
pub fn fresh_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(ino: u64, start: u64, end: u64) -> BatchOrigin {
        BatchOrigin {
            file: FileIdentity::new(1, ino, None, b"head"),
            start,
            end,
            current: true,
        }
    }

    #[test]
    fn a_run_goes_on_while_lines_follow_in_the_same_file() {
        let a = Checkpoint::after(None, &origin(7, 100, 200), 1, 10);
        assert_eq!((a.run_start, a.end, a.last_seq), (100, 200, 10));
        let b = Checkpoint::after(Some(a), &origin(7, 200, 300), 11, 20);
        assert_eq!((b.run_start, b.end, b.last_seq), (100, 300, 20));
        // Lines of another file came between: the run starts again.
        let c = Checkpoint::after(Some(b), &origin(7, 300, 350), 25, 30);
        assert_eq!((c.run_start, c.end), (300, 350));
        let d = Checkpoint::after(Some(c), &origin(8, 0, 10), 31, 31);
        assert_eq!((d.run_start, d.end, d.file.ino), (0, 10, 8));
    }

    #[test]
    fn lines_of_a_rotated_file_move_only_the_newest_seq_and_a_restart_numbers_after_it() {
        let slot = CheckpointSlot::new(None);
        slot.advance(&origin(7, 0, 100), 1, 10);
        // The new file at the path, then late lines of the rotated one.
        slot.start_at(&origin(8, 0, 0), 10);
        slot.advance(&origin(8, 0, 30), 11, 13);
        let late = BatchOrigin {
            current: false,
            ..origin(7, 100, 120)
        };
        slot.advance(&late, 14, 15);
        let saved = slot.saved();
        let c = saved.checkpoint.unwrap();
        assert_eq!((c.file.ino, c.run_start, c.end, c.last_seq), (8, 0, 30, 13));
        assert_eq!(saved.last_seq, 15);
        // Reading file 8 again would give its lines 11..13 again: on from its end instead.
        match saved.resume() {
            Resume::At(point) => assert_eq!((point.run_start, point.end), (30, 30)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn saved_checkpoints_come_back_and_a_second_server_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert!(matches!(
            StateDir::open(dir.path()),
            Err(StateError::Locked(_))
        ));
        let slot = Arc::new(CheckpointSlot::new(None));
        slot.advance(&origin(7, 0, 50), 1, 5);
        let path = PathBuf::from("/var/log/app.log");
        let checkpointer = Checkpointer::start(
            state,
            42,
            Arc::new(Mutex::new(vec![(path.clone(), slot.clone())])),
            HashMap::new(),
            Ids::default(),
            Duration::from_secs(60),
        )
        .unwrap();
        slot.advance(&origin(7, 50, 80), 6, 8);
        checkpointer.shutdown();
        let saved = StateDir::open(dir.path()).unwrap().load();
        assert_eq!(saved.epoch, Some(42));
        assert_eq!(saved.files[&path].checkpoint, slot.get());
        assert_eq!(saved.files[&path].last_seq, 8);
    }

    #[test]
    fn an_unusable_state_file_is_set_aside_and_the_run_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let file = dir.path().join(STATE_FILE);
        for text in [
            "{\"format\":\"tailcast-state\",\"vers".to_owned(),
            "\u{0}\u{1}garbage".to_owned(),
            format!(
                "{{\"format\":\"tailcast-state\",\"version\":99,\"host\":{:?},\"epoch\":1,\
                 \"files\":[]}}",
                host_name()
            ),
            "{\"format\":\"tailcast-state\",\"version\":1,\"host\":\"elsewhere\",\"epoch\":1,\
             \"files\":[]}"
                .to_owned(),
        ] {
            std::fs::write(&file, &text).unwrap();
            let saved = state.load();
            assert_eq!(saved.epoch, None, "{text}");
            assert!(!file.exists());
            assert_eq!(
                std::fs::read_to_string(dir.path().join(BAD_STATE_FILE)).unwrap(),
                text
            );
        }
    }
}
