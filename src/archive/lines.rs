//! Line numbers of plain generations: a sparse index per generation (the count of newlines
//! before every [`MARK_BYTES`] boundary), built as pages ask for it. A page within
//! [`SYNC_COUNT_BYTES`] of what is indexed counts the rest itself; one further away starts the
//! indexing on a thread of its own (one at a time) and goes without numbers until it is done.
//! A rotated generation never changes, so its index is made once; the file at the path grows,
//! and its index grows with it (and starts again if the file shrinks).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::generation::Generation;

/// Bytes between two marks: at most this many are counted to number a line.
pub const MARK_BYTES: u64 = 4 * 1024 * 1024;

/// A page counts up to this many bytes itself (about 5 ms on a warm page cache); further
/// away, the index is built in the background.
pub const SYNC_COUNT_BYTES: u64 = 64 * 1024 * 1024;

/// Generations indexed before the index starts again.
const MAX_INDEXED: usize = 4096;

/// (device, inode) of a generation.
type DevIno = (u64, u64);

/// One generation's marks: `marks[i]` is the number of newlines before byte `i * MARK_BYTES`.
#[derive(Debug, Default)]
struct Marks {
    marks: Vec<u64>,
    /// `prints[i]`: a hash of the [`PRINT_BYTES`] before mark `i` (0 for mark 0), so that a
    /// file rewritten in place (same inode, maybe the same first line) is noticed.
    prints: Vec<u64>,
    /// The generation's key when indexed (a rewrite in place may change it).
    key: String,
}

/// Bytes before a mark whose hash is kept with it.
const PRINT_BYTES: u64 = 64;

impl Marks {
    fn fresh(key: &str) -> Marks {
        Marks {
            marks: vec![0],
            prints: vec![0],
            key: key.to_owned(),
        }
    }

    /// False when the bytes before mark `i` or before the last mark are not what they were
    /// when it was made: the file was rewritten, and no mark can be trusted.
    fn still_true(&self, file: &File, i: usize) -> bool {
        [i, self.marks.len() - 1]
            .into_iter()
            .all(|k| k == 0 || print_at(file, k as u64 * MARK_BYTES).ok() == Some(self.prints[k]))
    }

    /// Bytes indexed: up to the last mark.
    fn covered(&self) -> u64 {
        self.marks.len().saturating_sub(1) as u64 * MARK_BYTES
    }
}

/// The line-number index of every plain generation (a cheap clone).
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    generations: Arc<Mutex<HashMap<DevIno, Arc<Mutex<Marks>>>>>,
    building: Arc<AtomicBool>,
}

impl LineIndex {
    fn marks_of(&self, generation: &Generation) -> Arc<Mutex<Marks>> {
        let mut all = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() >= MAX_INDEXED && !all.contains_key(&generation.dev_ino) {
            all.clear();
        }
        let marks = all.entry(generation.dev_ino).or_default().clone();
        drop(all);
        {
            let mut m = marks.lock().unwrap_or_else(|e| e.into_inner());
            if m.key != generation.key || m.covered() > generation.size {
                *m = Marks::fresh(&generation.key);
            }
        }
        marks
    }

    /// The number of the line starting at `offset` (a line start) in a plain generation, if it
    /// can be known now; `deadline` bounds the counting.
    pub fn number_at(
        &self,
        generation: &Generation,
        offset: u64,
        deadline: Instant,
    ) -> Option<u64> {
        if generation.compressed {
            return None;
        }
        let marks = self.marks_of(generation);
        let mut file = generation.open_plain().ok()?;
        let mut m = marks.lock().unwrap_or_else(|e| e.into_inner());
        let i = (offset / MARK_BYTES) as usize;
        if !m.still_true(&file, i.min(m.marks.len() - 1)) {
            *m = Marks::fresh(&generation.key);
        }
        if offset > m.covered() + SYNC_COUNT_BYTES {
            drop(m);
            self.build_in_background(generation.clone(), marks);
            return None;
        }
        extend(&mut m, &mut file, offset, deadline).ok()?;
        let from = i as u64 * MARK_BYTES;
        let before = m.marks[i] + count(&mut file, from, offset, deadline).ok()?;
        Some(before + 1)
    }

    fn build_in_background(&self, generation: Generation, marks: Arc<Mutex<Marks>>) {
        if self.building.swap(true, Relaxed) {
            return;
        }
        let building = self.building.clone();
        let spawned = std::thread::Builder::new()
            .name("tailcast-index".into())
            .spawn(move || {
                if let Ok(mut file) = generation.open_plain() {
                    let deadline = Instant::now() + std::time::Duration::from_secs(600);
                    // Mark by mark, letting pages in between.
                    loop {
                        let mut m = marks.lock().unwrap_or_else(|e| e.into_inner());
                        let target = m.covered() + MARK_BYTES * 16;
                        if target > generation.size
                            || extend(&mut m, &mut file, target, deadline).is_err()
                        {
                            let _ = extend(&mut m, &mut file, generation.size, deadline);
                            break;
                        }
                    }
                }
                building.store(false, Relaxed);
            });
        if spawned.is_err() {
            self.building.store(false, Relaxed);
        }
    }
}

/// Adds marks until the one at or below `offset` is there.
fn extend(m: &mut Marks, file: &mut File, offset: u64, deadline: Instant) -> io::Result<()> {
    while m.covered() + MARK_BYTES <= offset {
        let from = m.covered();
        let newlines = count(file, from, from + MARK_BYTES, deadline)?;
        let last = *m.marks.last().unwrap_or(&0);
        let print = print_at(file, from + MARK_BYTES)?;
        m.marks.push(last + newlines);
        m.prints.push(print);
    }
    Ok(())
}

/// Newlines in `lo..hi` of `file`.
fn count(file: &mut File, lo: u64, hi: u64, deadline: Instant) -> io::Result<u64> {
    file.seek(io::SeekFrom::Start(lo))?;
    let mut left = hi.saturating_sub(lo);
    let mut buf = vec![0; 256 * 1024];
    let mut newlines = 0;
    while left > 0 {
        if Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "counting lines"));
        }
        let want = buf.len().min(left as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            // The file is shorter than the mark: no mark for what is not there.
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
        }
        newlines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        left -= n as u64;
    }
    Ok(newlines)
}

/// A hash of the [`PRINT_BYTES`] before `at`.
fn print_at(file: &File, at: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut bytes = [0u8; PRINT_BYTES as usize];
    file.read_exact_at(&mut bytes, at.saturating_sub(PRINT_BYTES))?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(hash)
}
