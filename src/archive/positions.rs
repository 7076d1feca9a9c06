//! Where the hub's numbered lines are on disk. Each file's sink records, per batch, the
//! generation and byte range its lines came from; consecutive batches of one generation merge
//! into one run (`start..end` holds lines `first_seq..=last_seq`, one per line, in order). From
//! the runs a page starts at a seq ([`Positions::place`]) and names the seqs of the lines it
//! returns ([`Positions::name_seqs`]). A few runs per file are kept: a run covers a whole
//! generation read without a break, so they reach back over the last rotations.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use super::generation::Generation;
use super::page::{self, PageBounds};
use super::PageLine;
use crate::hub::FileIx;
use crate::tail::BatchOrigin;

/// Runs kept per file.
const MAX_RUNS: usize = 32;

/// Bytes scanned, at most, to turn a seq into an offset or back (the history's lines are much
/// nearer than this to the end of their run).
const SCAN_BYTES: u64 = 64 * 1024 * 1024;

/// Lines `first_seq..=last_seq`, one after another in `start..end` of generation `dev_ino`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// (device, inode) of the generation.
    pub dev_ino: (u64, u64),
    /// Offset of the first line.
    pub start: u64,
    /// Offset just past the last line.
    pub end: u64,
    /// Seq of the first line.
    pub first_seq: u64,
    /// Seq of the last line.
    pub last_seq: u64,
}

/// One file's runs, oldest first.
#[derive(Debug, Default)]
pub struct RunLog {
    runs: VecDeque<Run>,
}

impl RunLog {
    /// Records that the lines `first..=last` came from `origin`.
    pub fn record(&mut self, origin: &BatchOrigin, first: u64, last: u64) {
        let dev_ino = (origin.file.dev, origin.file.ino);
        if let Some(run) = self.runs.back_mut() {
            if run.dev_ino == dev_ino && run.end == origin.start && run.last_seq + 1 == first {
                run.end = origin.end;
                run.last_seq = last;
                return;
            }
        }
        // Read again from further back (truncated, rewritten): what was said of the bytes
        // from there on is no longer true.
        self.runs
            .retain(|run| run.dev_ino != dev_ino || run.end <= origin.start);
        self.runs.push_back(Run {
            dev_ino,
            start: origin.start,
            end: origin.end,
            first_seq: first,
            last_seq: last,
        });
        if self.runs.len() > MAX_RUNS {
            self.runs.pop_front();
        }
    }
}

/// Every file's runs: the sinks write them, pages read them. A cheap clone.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    files: Arc<RwLock<Vec<Arc<Mutex<RunLog>>>>>,
}

impl Positions {
    /// The run log of `file`, for its sink.
    pub fn log(&self, file: FileIx) -> Arc<Mutex<RunLog>> {
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        while files.len() <= file {
            files.push(Arc::default());
        }
        files[file].clone()
    }

    fn runs(&self, file: FileIx) -> Vec<Run> {
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        files.get(file).map_or_else(Vec::new, |log| {
            let log = log.lock().unwrap_or_else(|e| e.into_inner());
            log.runs.iter().rev().copied().collect()
        })
    }

    /// The generation (index in `gens`) and offset of the line numbered `seq`, if it can be
    /// placed.
    pub fn place(
        &self,
        file: FileIx,
        gens: &[Generation],
        seq: u64,
        bounds: &PageBounds,
    ) -> Option<(usize, u64)> {
        let run = self
            .runs(file)
            .into_iter()
            .find(|run| (run.first_seq..=run.last_seq).contains(&seq))?;
        let ix = gens
            .iter()
            .position(|g| g.dev_ino == run.dev_ino && !g.compressed)?;
        let lines = run.last_seq - seq + 1;
        let start = page::start_of_lines_before(&gens[ix], run.end, lines, SCAN_BYTES, bounds)
            .ok()
            .flatten()?;
        (start >= run.start).then_some((ix, start))
    }

    /// Sets the seq of every line of the page the runs place.
    pub fn name_seqs(
        &self,
        file: FileIx,
        gens: &[Generation],
        lines: &mut [PageLine],
        bounds: &PageBounds,
    ) {
        let runs = self.runs(file);
        if runs.is_empty() {
            return;
        }
        let mut i = 0;
        while i < lines.len() {
            let Some(gen) = gens
                .iter()
                .find(|g| g.dev_ino == lines[i].dev_ino && g.compressed == lines[i].compressed)
            else {
                i += 1;
                continue;
            };
            let offset = lines[i].offset;
            // The newest run that holds the line (runs newest first).
            let Some(run) = runs
                .iter()
                .find(|r| r.dev_ino == gen.dev_ino && r.start <= offset && offset < r.end)
            else {
                i += 1;
                continue;
            };
            if gen.compressed || run.end - offset > SCAN_BYTES {
                i += 1;
                continue;
            }
            // Lines from this one to the run's end, the last of which ends at `run.end`.
            let Ok(newlines) = page::count_lines(gen, offset, run.end - 1, bounds) else {
                i += 1;
                continue;
            };
            let Some(mut seq) = run
                .last_seq
                .checked_sub(newlines)
                .filter(|s| *s >= run.first_seq)
            else {
                i += 1;
                continue;
            };
            while i < lines.len()
                && lines[i].dev_ino == gen.dev_ino
                && lines[i].offset < run.end
                && seq <= run.last_seq
            {
                lines[i].seq = Some(seq);
                seq += 1;
                i += 1;
            }
        }
    }
}
