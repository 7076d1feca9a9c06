//! Model-based test of the follower, in the spirit of Vector's file watcher tests: random
//! sequences of write / partial write / rotate / truncate / delete / re-create / check are applied
//! to a real file in a temp dir *and* to a small model, and the follower must deliver exactly what
//! the model says is readable: every line once, in the model's order, with the right file-state
//! events in between.
//!
//! The follower is driven synchronously (no thread, no notify): `check()` is called where the
//! operation sequence says, and `finish()` at the end. `rotate_wait` is 60 s so a rotated file is
//! drained for the whole case, and `partial_line_timeout` is an hour so a held partial line is
//! flushed only where the model says (truncation, and `finish` for every open file).
//!
//! # What the model knows
//! Files are *generations*: each new inode at the path gets a number, and every line names its
//! generation and a truncation epoch (`g003t01l0007-abc`), so lines are unique and a duplicate or a
//! line from the wrong file shows. Per generation the model keeps the bytes in the file, whether
//! the follower has it open, the bytes written since the follower last read it, and the partial
//! line the follower holds. A check is replayed on the model exactly as `Follower::check` does it:
//! rotated (draining) files first, in the order they were retired; then the path: a replaced file
//! is read to its end and retired (`Rotated`), the new one opened from byte 0; a missing path
//! retires the open file (`Deleted` when it has no name left, else `Rotated`); a file that
//! appears after a check saw none is `Created`; a truncated file has its held partial line flushed,
//! then `Truncated`, then is read from 0. So the whole stream (lines *and* states) is compared in
//! one well-defined order, not just per generation.
//!
//! What is readable follows: a line written to a file the follower never opened (created and
//! rotated or deleted between two checks) is never delivered; a line written through the old
//! writer's descriptor after rotation or deletion is delivered if and only if the follower had
//! opened that file.
//!
//! # Limits, by design of the follower
//! - `copytruncate` loses bytes the follower had not read yet; truncation is therefore only done
//!   right after a check (`CheckThenTruncate`). A truncation must also be seen by a check while
//!   the file is still at the path: a rotate or delete right after a truncate is preceded by a
//!   check (the follower only looks for truncation on the file at the path).
//! - Truncation is noticed by size or by the file's first bytes changing; the line names make the
//!   rewritten head always differ (a rewrite that reproduces the old first bytes is invisible to
//!   any fingerprint).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;
use tailcast::tail::{FileState, FileStatus, FollowConfig, Follower, LineBatch, TailSink};

// ------------------------------------------------------------------------------------------------
// The sink
// ------------------------------------------------------------------------------------------------

/// One thing the follower handed to its sink, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Line(String),
    State(FileState),
}

#[derive(Default)]
struct Collector {
    items: Vec<Item>,
    /// Lines marked as cut at the cap (the model's lines are all short).
    truncated_marks: usize,
    /// Batches handed over with no line in them.
    empty_batches: usize,
    /// The last `status` call.
    status: Option<FileStatus>,
}

impl TailSink for Collector {
    fn lines(&mut self, batch: LineBatch) {
        if batch.is_empty() {
            self.empty_batches += 1;
        }
        self.truncated_marks += batch.truncated().len();
        self.items
            .extend(batch.lines().map(|l| Item::Line(l.to_owned())));
    }

    fn state(&mut self, state: FileState) {
        self.items.push(Item::State(state));
    }

    fn status(&mut self, status: FileStatus) {
        self.status = Some(status);
    }
}

// ------------------------------------------------------------------------------------------------
// The model
// ------------------------------------------------------------------------------------------------

/// One file (inode) that was, at some point, at the followed path.
#[derive(Default)]
struct Gen {
    /// The bytes in the file now (since its last truncation).
    content: Vec<u8>,
    /// The follower has (had) it open: what is written to it will be read.
    opened: bool,
    /// Written since the follower last read it (only kept once opened).
    unread: Vec<u8>,
    /// The unfinished line the follower holds for it.
    held: Vec<u8>,
    /// Truncated to zero (from a non-zero read offset) and not yet seen by a check.
    truncated_unseen: bool,
    /// Truncation epoch and next line number, for unique line texts.
    epoch: u32,
    next_line: u32,
}

#[derive(Default)]
struct Model {
    gens: Vec<Gen>,
    /// Which generation the path `app.log` names, and which `app.log.1` names.
    at_path: Option<usize>,
    at_rotated: Option<usize>,
    /// The follower's open files.
    current: Option<usize>,
    draining: Vec<usize>,
    started: bool,
    /// What the sink must have received so far.
    expected: Vec<Item>,
    /// The last status the follower must have reported (never an error: every file is readable).
    status: Option<FileStatus>,
}

/// Length of the unique prefix of every line (`g000t00l0000`); a partial write is never shorter,
/// so whatever the follower has read of a file always holds a line's full name.
const NAME_LEN: usize = 12;

impl Model {
    fn new_gen(&mut self) -> usize {
        self.gens.push(Gen::default());
        self.gens.len() - 1
    }

    /// The text of the next line of generation `g` (no newline). The filler after the name uses
    /// only `a`-`f`, so the text after a name never looks like the start of a line.
    fn next_text(&mut self, g: usize) -> String {
        let gen = &mut self.gens[g];
        let n = gen.next_line;
        gen.next_line += 1;
        let filler: String = "abcdef"
            .chars()
            .cycle()
            .take((n as usize * 7) % 19)
            .collect();
        let text = format!("g{g:03}t{:02}l{n:04}-{filler}", gen.epoch);
        debug_assert!(text.len() > NAME_LEN);
        text
    }

    fn written(&mut self, g: usize, bytes: &[u8]) {
        let gen = &mut self.gens[g];
        gen.content.extend_from_slice(bytes);
        if gen.opened {
            gen.unread.extend_from_slice(bytes);
        }
    }

    fn truncated(&mut self, g: usize) {
        let gen = &mut self.gens[g];
        assert!(
            gen.unread.is_empty(),
            "truncate only what the follower has read"
        );
        if !gen.content.is_empty() {
            gen.truncated_unseen = true;
        }
        gen.content.clear();
        gen.epoch += 1;
    }

    fn names(&self, g: usize) -> usize {
        usize::from(self.at_path == Some(g)) + usize::from(self.at_rotated == Some(g))
    }

    /// The follower reads what was written to `g` since its last read.
    fn read(&mut self, g: usize) {
        let gen = &mut self.gens[g];
        for b in std::mem::take(&mut gen.unread) {
            if b == b'\n' {
                let line = String::from_utf8(std::mem::take(&mut gen.held)).unwrap();
                self.expected.push(Item::Line(line));
            } else {
                gen.held.push(b);
            }
        }
    }

    /// The follower emits the partial line it holds for `g`, if any.
    fn flush(&mut self, g: usize) {
        let held = std::mem::take(&mut self.gens[g].held);
        if !held.is_empty() {
            self.expected
                .push(Item::Line(String::from_utf8(held).unwrap()));
        }
    }

    fn open(&mut self, g: usize) {
        let gen = &mut self.gens[g];
        gen.opened = true;
        gen.unread = gen.content.clone();
        gen.truncated_unseen = false;
        self.current = Some(g);
    }

    fn retire(&mut self, g: usize) {
        self.read(g);
        self.draining.push(g);
    }

    /// `Follower::check`, replayed.
    fn check(&mut self) {
        for g in self.draining.clone() {
            self.read(g);
        }
        match self.at_path {
            Some(at) => {
                let mut replaced = false;
                if let Some(cur) = self.current.filter(|&cur| cur != at) {
                    self.retire(cur);
                    self.current = None;
                    self.expected.push(Item::State(FileState::Rotated));
                    replaced = true;
                }
                if self.current.is_none() {
                    self.open(at);
                    if self.started && !replaced {
                        self.expected.push(Item::State(FileState::Created));
                    }
                } else if std::mem::take(&mut self.gens[at].truncated_unseen) {
                    self.flush(at);
                    self.expected.push(Item::State(FileState::Truncated));
                }
                self.read(at);
            }
            None => {
                if let Some(cur) = self.current.take() {
                    self.retire(cur);
                    self.expected.push(Item::State(if self.names(cur) == 0 {
                        FileState::Deleted
                    } else {
                        FileState::Rotated
                    }));
                }
            }
        }
        self.started = true;
        let status = match self.current {
            Some(g) => FileStatus {
                exists: true,
                size: self.gens[g].content.len() as u64,
                error: None,
            },
            None => FileStatus::default(),
        };
        self.status = Some(status);
    }

    /// `Follower::finish`, replayed: the current file is read to its end, rotated files are read
    /// and their partial lines flushed; the current file's partial line stays unnumbered (it is
    /// not a line until its newline comes).
    fn finish(&mut self) {
        if let Some(g) = self.current {
            self.read(g);
        }
        for g in std::mem::take(&mut self.draining) {
            self.read(g);
            self.flush(g);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The world: real files, writers and a follower, with the model in lock-step
// ------------------------------------------------------------------------------------------------

/// What a test does to the file.
#[derive(Debug, Clone)]
enum Op {
    /// The application appends `n` complete lines (creating the file if the path is missing).
    Write(u8),
    /// The application writes the first part of a line, no newline (nothing if one is pending).
    WritePartial(u8),
    /// The application writes the rest of its pending line and the newline.
    CompletePartial,
    /// The application's *old* descriptor (to the rotated-away or deleted file) appends `n` lines.
    WriteOld(u8),
    /// Rename `app.log` to `app.log.1` (replacing it); the old descriptor appends `old_lines`
    /// lines; then a new `app.log` is created if `create`.
    Rotate { create: bool, old_lines: u8 },
    /// `check()`, then truncate `app.log` to zero (`copytruncate`, `> app.log`).
    CheckThenTruncate,
    /// Unlink `app.log` (the application keeps its descriptor as the old one).
    Delete,
    /// Create an empty `app.log` if the path is missing.
    Create,
    /// `follower.check()`.
    Check,
}

struct Writer {
    gen: usize,
    file: File,
    /// A line whose first `written` bytes are in the file.
    partial: Option<(String, usize)>,
}

struct World {
    _dir: tempfile::TempDir,
    path: PathBuf,
    rotated: PathBuf,
    model: Model,
    follower: Follower<Collector>,
    writer: Option<Writer>,
    old: Option<Writer>,
    log: Vec<String>,
}

fn config(read_chunk_bytes: usize) -> FollowConfig {
    FollowConfig {
        max_line_bytes: 64 * 1024,
        read_chunk_bytes,
        partial_line_timeout: Duration::from_secs(3600),
        rotate_wait: Duration::from_secs(60),
        initial_tail_bytes: u64::MAX,
        coalesce: Duration::ZERO,
        no_symlinks: false,
    }
}

impl World {
    fn new(read_chunk_bytes: usize) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("app.log");
        let rotated = dir.path().join("app.log.1");
        let follower = Follower::new(path.clone(), config(read_chunk_bytes), Collector::default());
        World {
            _dir: dir,
            path,
            rotated,
            model: Model::default(),
            follower,
            writer: None,
            old: None,
            log: Vec::new(),
        }
    }

    fn create(&mut self) {
        assert!(self.model.at_path.is_none() && self.writer.is_none());
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&self.path)
            .expect("create app.log");
        let gen = self.model.new_gen();
        self.model.at_path = Some(gen);
        self.writer = Some(Writer {
            gen,
            file,
            partial: None,
        });
    }

    fn writer(&mut self, old: bool) -> Option<&mut Writer> {
        if old {
            self.old.as_mut()
        } else {
            self.writer.as_mut()
        }
    }

    fn write(&mut self, old: bool, bytes: &[u8]) {
        let Some(w) = self.writer(old) else { return };
        w.file.write_all(bytes).expect("write");
        let gen = w.gen;
        self.model.written(gen, bytes);
    }

    fn write_lines(&mut self, old: bool, n: u8) {
        let Some(w) = self.writer(old) else { return };
        // A pending partial line simply becomes the start of the first line written.
        w.partial = None;
        let gen = w.gen;
        let mut bytes = Vec::new();
        for _ in 0..n {
            bytes.extend_from_slice(self.model.next_text(gen).as_bytes());
            bytes.push(b'\n');
        }
        self.write(old, &bytes);
    }

    fn check(&mut self) {
        self.follower.check();
        self.model.check();
        self.log.push("check".into());
    }

    /// A truncation nobody has seen must be seen while the file is still at the path.
    fn see_truncation(&mut self) {
        let unseen = self
            .model
            .at_path
            .is_some_and(|g| self.model.gens[g].truncated_unseen);
        if unseen {
            self.check();
        }
    }

    fn apply(&mut self, op: &Op) {
        self.log.push(format!("{op:?}"));
        match *op {
            Op::Write(n) => {
                if self.writer.is_none() {
                    self.create();
                }
                self.write_lines(false, n);
            }
            Op::WritePartial(cut) => {
                if self.writer.is_none() {
                    self.create();
                }
                let w = self.writer.as_mut().expect("created above");
                if w.partial.is_some() {
                    return;
                }
                let gen = w.gen;
                let text = self.model.next_text(gen);
                let upto = NAME_LEN + usize::from(cut) % (text.len() - NAME_LEN + 1);
                self.write(false, &text.as_bytes()[..upto]);
                self.writer.as_mut().expect("still there").partial = Some((text, upto));
            }
            Op::CompletePartial => {
                let Some((text, upto)) = self.writer.as_mut().and_then(|w| w.partial.take()) else {
                    return;
                };
                let mut rest = text.as_bytes()[upto..].to_vec();
                rest.push(b'\n');
                self.write(false, &rest);
            }
            Op::WriteOld(n) => self.write_lines(true, n),
            Op::Rotate { create, old_lines } => {
                if self.model.at_path.is_none() {
                    return;
                }
                self.see_truncation();
                std::fs::rename(&self.path, &self.rotated).expect("rotate");
                self.model.at_rotated = self.model.at_path.take();
                self.old = self.writer.take();
                self.write_lines(true, old_lines);
                if create {
                    self.create();
                }
            }
            Op::CheckThenTruncate => {
                self.check();
                if self.model.at_path.is_some() {
                    OpenOptions::new()
                        .write(true)
                        .open(&self.path)
                        .and_then(|f| f.set_len(0))
                        .expect("truncate");
                    let g = self.model.at_path.expect("checked");
                    self.model.truncated(g);
                }
            }
            Op::Delete => {
                if self.model.at_path.is_none() {
                    return;
                }
                self.see_truncation();
                std::fs::remove_file(&self.path).expect("delete");
                self.model.at_path = None;
                self.old = self.writer.take();
            }
            Op::Create => {
                if self.model.at_path.is_none() {
                    self.create();
                }
            }
            Op::Check => self.check(),
        }
    }

    fn compare(&self, what: &str) -> Result<(), String> {
        let actual = &self.follower.sink().items;
        if actual == &self.model.expected {
            return Ok(());
        }
        Err(self.mismatch(what, &self.model.expected, actual))
    }

    fn mismatch(&self, what: &str, expected: &[Item], actual: &[Item]) -> String {
        let first = expected
            .iter()
            .zip(actual)
            .position(|(e, a)| e != a)
            .unwrap_or(expected.len().min(actual.len()));
        format!(
            "{what}: delivered items differ from the model at index {first}\n\
             operations: {:#?}\n expected: {:#?}\n   actual: {:#?}",
            self.log, expected, actual
        )
    }

    /// Runs `ops`, checking the sink against the model after every check; then (if
    /// `final_check`) checks once more, and finishes.
    fn run(mut self, ops: &[Op], final_check: bool) -> Result<(), String> {
        for op in ops {
            self.apply(op);
            if matches!(op, Op::Check | Op::CheckThenTruncate) {
                self.compare("after a check")?;
                if self.follower.sink().status != self.model.status {
                    return Err(format!(
                        "status {:?}, model says {:?}; operations {:#?}",
                        self.follower.sink().status,
                        self.model.status,
                        self.log
                    ));
                }
            }
        }
        if final_check {
            self.check();
            self.compare("at the final check")?;
        }
        // `finish` does not look for truncation (only `check` does).
        self.see_truncation();
        self.follower.finish();
        self.model.finish();
        self.compare("after finish")?;
        // Every line exactly once: the model's lines are unique by construction, so equality
        // already says so; make sure the construction holds.
        let mut lines: Vec<&Item> = self
            .model
            .expected
            .iter()
            .filter(|i| matches!(i, Item::Line(_)))
            .collect();
        let count = lines.len();
        lines.sort_by_key(|i| format!("{i:?}"));
        lines.dedup();
        assert_eq!(lines.len(), count, "the model made duplicate lines");
        let sink = self.follower.sink();
        if sink.truncated_marks != 0 || sink.empty_batches != 0 {
            return Err(format!(
                "{} lines marked truncated, {} empty batches; operations {:#?}",
                sink.truncated_marks, sink.empty_batches, self.log
            ));
        }
        Ok(())
    }
}

fn run(ops: &[Op]) -> Result<(), String> {
    World::new(128 * 1024).run(ops, false)
}

// ------------------------------------------------------------------------------------------------
// The property
// ------------------------------------------------------------------------------------------------

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..4).prop_map(Op::Write),
        2 => any::<u8>().prop_map(Op::WritePartial),
        2 => Just(Op::CompletePartial),
        2 => (1u8..3).prop_map(Op::WriteOld),
        3 => (any::<bool>(), 0u8..3).prop_map(|(create, old_lines)| Op::Rotate { create, old_lines }),
        1 => Just(Op::CheckThenTruncate),
        1 => Just(Op::Delete),
        1 => Just(Op::Create),
        5 => Just(Op::Check),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })]

    /// Every line the model says is readable is delivered exactly once, in the model's order,
    /// with the model's file-state events, whatever the sequence of file operations.
    #[test]
    fn follower_delivers_what_the_model_says_is_readable(
        ops in vec(op(), 1..30),
        // Tiny chunks hand lines over in many batches; the default in one.
        read_chunk_bytes in prop::sample::select(vec![1usize, 7, 64, 128 * 1024]),
        // Without a last check, `finish` alone must read what is left.
        final_check in prop::bool::weighted(0.7),
    ) {
        if let Err(report) = World::new(read_chunk_bytes).run(&ops, final_check) {
            return Err(TestCaseError::fail(report));
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Named scenarios (readable on their own; each is also a case of the property)
// ------------------------------------------------------------------------------------------------

fn ok(ops: &[Op]) {
    if let Err(report) = run(ops) {
        panic!("{report}");
    }
}

#[test]
fn rename_rotation_keeps_reading_the_old_descriptor() {
    ok(&[
        Op::Write(2),
        Op::Check,
        Op::Rotate {
            create: true,
            old_lines: 2,
        },
        Op::Write(1),
        Op::Check,
        Op::WriteOld(2),
        Op::Write(1),
        Op::Check,
    ]);
}

#[test]
fn a_file_created_and_deleted_between_checks_is_never_seen() {
    ok(&[
        Op::Check,
        Op::Write(2),
        Op::Delete,
        Op::WriteOld(1),
        Op::Check,
        Op::Create,
        Op::Write(1),
        Op::Check,
    ]);
}

#[test]
fn a_deleted_file_that_was_open_is_read_to_its_end() {
    ok(&[
        Op::Write(1),
        Op::Check,
        Op::Write(1),
        Op::Delete,
        Op::WriteOld(2),
        Op::Check,
        Op::WriteOld(1),
        Op::Check,
    ]);
}

#[test]
fn copytruncate_flushes_the_held_partial_then_reads_from_zero() {
    ok(&[
        Op::Write(2),
        Op::WritePartial(3),
        Op::CheckThenTruncate,
        Op::CompletePartial,
        Op::Write(3),
        Op::Check,
    ]);
}

#[test]
fn a_partial_line_completed_after_rotation_arrives_whole() {
    ok(&[
        Op::Write(1),
        Op::WritePartial(200),
        Op::Check,
        Op::Rotate {
            create: true,
            old_lines: 0,
        },
        Op::Check,
        Op::WriteOld(1),
        Op::Check,
    ]);
}

/// At shutdown the current file's unfinished last line is not numbered as a line: it is read
/// whole once its newline comes (after a restart), so numbers match the file's lines.
#[test]
fn finish_leaves_the_partial_line_of_the_current_file_unnumbered() {
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = &dir.path().join("app.log");
    std::fs::write(path, "one\ntwo (no newline yet)").unwrap();
    let mut follower = Follower::new(path.to_path_buf(), config(4096), Collector::default());
    follower.check();
    follower.finish();
    assert_eq!(follower.sink().items, [Item::Line("one".into())]);
}
