//! Per-file history: a ring of recent line batches, bounded in lines and in bytes.
//!
//! Lines are kept in the batches the tailer produced (one allocation per batch, read in place by
//! every reader), each batch knowing the seq of its first line. The line bound is what a new
//! client may ask for as backlog; it does not evict lines a live reader has not read yet
//! ([`History::push_keeping`]), so a reader that is behind in a burst loses nothing until the
//! byte bound, which always holds, is reached. Evicting by line count moves a cursor inside the
//! oldest batch; evicting by bytes drops whole batches. Reads return zero-copy [`BatchSlice`]s
//! plus an explicit gap when the cursor is older than what is kept.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::tail::LineBatch;

/// Lines `first_seq ..` of one file.
#[derive(Debug)]
pub struct Batch {
    /// Seq of the first line.
    pub first_seq: u64,
    /// When the hub took the batch in (the lines' read time), in unix milliseconds: one time per
    /// batch, since a batch is what one read of the file produced.
    pub time_ms: u64,
    /// The lines themselves.
    pub lines: LineBatch,
    /// A transport's encoding of the whole batch, made by the first reader that needs it and
    /// shared by all the others (the hub never looks inside).
    pub encoded: OnceLock<bytes::Bytes>,
    /// What the batch counts against the history's byte bound, fixed when it is made.
    cost: usize,
}

impl Batch {
    /// A batch of `lines` starting at `first_seq`, read now, not yet encoded.
    pub fn new(first_seq: u64, lines: LineBatch) -> Self {
        Self::read_at(first_seq, lines, unix_ms_now())
    }

    /// A batch of `lines` starting at `first_seq`, read at `time_ms` (unix milliseconds).
    pub fn read_at(first_seq: u64, lines: LineBatch, time_ms: u64) -> Self {
        let cost = lines.allocated_bytes() + Self::encoded_estimate(&lines) + 64;
        Batch {
            first_seq,
            time_ms,
            lines,
            encoded: OnceLock::new(),
            cost,
        }
    }

    /// Seq one past the last line.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + self.lines.len() as u64
    }

    /// About the size of an encoding of `lines`: their text, quotes and commas, and a header.
    pub fn encoded_estimate(lines: &LineBatch) -> usize {
        lines.text_bytes() + lines.len() * 3 + 96
    }

    /// Memory held by the batch: its allocations, room for its encoding (counted from the start,
    /// whether or not a transport has encoded it yet; lines full of characters JSON must escape
    /// take more), and a little for the bookkeeping.
    pub fn bytes(&self) -> usize {
        self.cost
    }
}

/// The wall clock in unix milliseconds (0 for a clock set before 1970).
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Some consecutive lines of one batch.
#[derive(Debug, Clone)]
pub struct BatchSlice {
    /// The batch.
    pub batch: Arc<Batch>,
    /// Indexes within the batch.
    pub range: Range<usize>,
}

impl BatchSlice {
    /// Seq of the slice's first line.
    pub fn first_seq(&self) -> u64 {
        self.batch.first_seq + self.range.start as u64
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// True when the slice holds no line.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// True when the slice is the whole batch (its shared frame can be sent as is).
    pub fn is_whole(&self) -> bool {
        self.range.start == 0 && self.range.end == self.batch.lines.len()
    }

    /// The lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        self.range.clone().map(|i| self.batch.lines.line(i))
    }

    /// Bytes of line text in the slice.
    pub fn text_bytes(&self) -> usize {
        self.batch.lines.text_bytes_of(self.range.clone())
    }

    /// When its lines were read (the batch's time, unix milliseconds).
    pub fn time_ms(&self) -> u64 {
        self.batch.time_ms
    }

    /// Seqs of the slice's lines that were truncated at the length cap.
    pub fn truncated_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.batch
            .lines
            .truncated()
            .iter()
            .map(|&i| i as usize)
            .filter(|i| self.range.contains(i))
            .map(|i| self.batch.first_seq + i as u64)
    }

    /// The part of this slice with seq >= `seq`.
    pub fn from_seq(&self, seq: u64) -> BatchSlice {
        let skip = seq.saturating_sub(self.first_seq()).min(self.len() as u64) as usize;
        BatchSlice {
            batch: self.batch.clone(),
            range: self.range.start + skip..self.range.end,
        }
    }
}

/// Lines `from..=to` are not available and never will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// First missing seq.
    pub from: u64,
    /// Last missing seq.
    pub to: u64,
}

/// What a read found: an optional gap, then consecutive lines.
#[derive(Debug, Clone, Default)]
pub struct HistoryRead {
    /// Lines older than the history that the cursor asked for.
    pub gap: Option<Gap>,
    /// The lines, oldest first, consecutive.
    pub slices: Vec<BatchSlice>,
}

impl HistoryRead {
    /// Number of lines read.
    pub fn line_count(&self) -> usize {
        self.slices.iter().map(BatchSlice::len).sum()
    }

    /// Seq of the first line, if any.
    pub fn first_seq(&self) -> Option<u64> {
        self.slices.first().map(BatchSlice::first_seq)
    }

    /// Seq of the last line, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.slices
            .last()
            .map(|s| s.first_seq() + s.len() as u64 - 1)
    }
}

/// The ring; see the module documentation.
#[derive(Debug)]
pub struct History {
    batches: VecDeque<Arc<Batch>>,
    /// Lines of the front batch already evicted by the line bound.
    front_skip: usize,
    lines: usize,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
}

impl History {
    /// An empty history keeping at most `max_lines` lines and about `max_bytes` bytes.
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        History {
            batches: VecDeque::new(),
            front_skip: 0,
            lines: 0,
            bytes: 0,
            max_lines,
            max_bytes,
        }
    }

    /// Lines retained.
    pub fn len(&self) -> usize {
        self.lines
    }

    /// True when no line is retained.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Bytes held (whole batches, including any evicted lines still sharing a batch).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// If a batch of `incoming` bytes would make the byte bound drop batches: the seq one past
    /// the last line it would drop.
    pub fn next_eviction_end(&self, incoming: usize) -> Option<u64> {
        let mut over = (self.bytes + incoming).checked_sub(self.max_bytes)?;
        let mut end = None;
        for batch in &self.batches {
            if over == 0 {
                break;
            }
            over = over.saturating_sub(batch.bytes());
            end = Some(batch.end_seq());
        }
        end
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// True when `incoming` more lines would be over the line bound.
    pub fn over_line_bound(&self, incoming: usize) -> bool {
        self.lines + incoming > self.max_lines
    }

    /// Seq of the oldest retained line.
    pub fn first_seq(&self) -> Option<u64> {
        self.batches
            .front()
            .map(|b| b.first_seq + self.front_skip as u64)
    }

    /// Adds a batch (its seqs must follow the previous batch's) and evicts what is over the bounds.
    pub fn push(&mut self, batch: Arc<Batch>) {
        self.push_keeping(batch, u64::MAX);
    }

    /// Like [`push`](Self::push), but the line bound evicts no line at or after `keep_from` (a
    /// live reader has not read it yet): then only the byte bound limits the history.
    pub fn push_keeping(&mut self, batch: Arc<Batch>, keep_from: u64) {
        self.lines += batch.lines.len();
        self.bytes += batch.bytes();
        self.batches.push_back(batch);
        self.evict(keep_from);
    }

    fn evict(&mut self, keep_from: u64) {
        while let Some(front) = self.batches.front() {
            let remaining = front.lines.len() - self.front_skip;
            let front_seq = front.first_seq + self.front_skip as u64;
            let evict = if self.bytes > self.max_bytes && self.batches.len() > 1 {
                remaining
            } else {
                let over_lines = self.lines.saturating_sub(self.max_lines);
                let unread_from = keep_from.saturating_sub(front_seq);
                over_lines
                    .min(remaining)
                    .min(usize::try_from(unread_from).unwrap_or(usize::MAX))
            };
            if evict == 0 {
                break;
            }
            self.lines -= evict;
            if evict < remaining {
                self.front_skip += evict;
            } else {
                self.bytes -= front.bytes();
                self.front_skip = 0;
                self.batches.pop_front();
            }
        }
        if self.lines == 0 {
            self.batches.clear();
            self.bytes = 0;
            self.front_skip = 0;
        }
    }

    /// Up to `max` lines with seq > `after`; a gap first when `after + 1` was evicted.
    /// `after` must not be beyond the newest seq (the caller checks).
    pub fn read_after(&self, after: u64, max: usize) -> HistoryRead {
        let mut read = HistoryRead::default();
        let Some(first) = self.first_seq() else {
            return read;
        };
        let mut from = after + 1;
        if from < first {
            read.gap = Some(Gap {
                from,
                to: first - 1,
            });
            from = first;
        }
        // The batch holding `from`: the last one whose first_seq <= from.
        let start = self.batches.partition_point(|b| b.first_seq <= from);
        let Some(start) = start.checked_sub(1) else {
            return read;
        };
        let mut left = max;
        for batch in self.batches.iter().skip(start) {
            if left == 0 {
                break;
            }
            let begin = from.saturating_sub(batch.first_seq) as usize;
            if begin >= batch.lines.len() {
                continue;
            }
            let end = batch.lines.len().min(begin + left);
            left -= end - begin;
            read.slices.push(BatchSlice {
                batch: batch.clone(),
                range: begin..end,
            });
        }
        read
    }

    /// The newest `n` lines.
    pub fn last_lines(&self, n: usize) -> HistoryRead {
        let Some(first) = self.first_seq() else {
            return HistoryRead::default();
        };
        let end = first + self.lines as u64;
        let from = end.saturating_sub(n as u64).max(first);
        self.read_after(from - 1, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first_seq: u64, lines: &[&str]) -> Arc<Batch> {
        let mut batch = LineBatch::default();
        for line in lines {
            batch.push(line, false);
        }
        Arc::new(Batch::new(first_seq, batch))
    }

    fn texts(read: &HistoryRead) -> Vec<String> {
        read.slices
            .iter()
            .flat_map(|s| s.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn reads_after_a_cursor_across_batches() {
        let mut history = History::new(100, 1 << 20);
        history.push(batch(1, &["a", "b", "c"]));
        history.push(batch(4, &["d", "e"]));
        let read = history.read_after(2, 100);
        assert_eq!(texts(&read), ["c", "d", "e"]);
        assert_eq!(read.first_seq(), Some(3));
        assert_eq!(read.last_seq(), Some(5));
        assert_eq!(read.gap, None);
        assert_eq!(texts(&history.read_after(5, 100)), Vec::<String>::new());
        assert_eq!(texts(&history.read_after(0, 2)), ["a", "b"]);
    }

    #[test]
    fn line_bound_evicts_inside_a_batch_and_reports_the_exact_gap() {
        let mut history = History::new(3, 1 << 20);
        history.push(batch(1, &["a", "b", "c"]));
        history.push(batch(4, &["d", "e"]));
        assert_eq!(history.len(), 3);
        assert_eq!(history.first_seq(), Some(3));
        let read = history.read_after(0, 100);
        assert_eq!(read.gap, Some(Gap { from: 1, to: 2 }));
        assert_eq!(texts(&read), ["c", "d", "e"]);
    }

    #[test]
    fn the_line_bound_keeps_unread_lines_but_the_byte_bound_does_not() {
        let mut history = History::new(2, 1 << 20);
        history.push_keeping(batch(1, &["a", "b", "c"]), 2);
        // Only line 1 was read by everyone: the line bound may evict it and nothing else.
        assert_eq!(history.first_seq(), Some(2));
        history.push_keeping(batch(4, &["d", "e"]), u64::MAX);
        assert_eq!(history.first_seq(), Some(4));
        assert_eq!(history.len(), 2);

        let big = "x".repeat(1000);
        // Room for two and a half such batches.
        let bound = batch(1, &[&big]).bytes() * 5 / 2;
        let mut history = History::new(1, bound);
        for i in 0..5 {
            history.push_keeping(batch(i + 1, &[&big]), 1);
        }
        assert_eq!(history.first_seq(), Some(4), "the byte bound always holds");
        let cost = batch(1, &[&big]).bytes();
        assert_eq!(history.next_eviction_end(cost), Some(5));
        assert_eq!(history.next_eviction_end(2 * cost), Some(6));
        assert_eq!(history.next_eviction_end(10), None);
    }

    #[test]
    fn last_lines_returns_the_newest() {
        let mut history = History::new(100, 1 << 20);
        history.push(batch(1, &["a", "b", "c"]));
        history.push(batch(4, &["d", "e"]));
        assert_eq!(texts(&history.last_lines(2)), ["d", "e"]);
        assert_eq!(texts(&history.last_lines(50)), ["a", "b", "c", "d", "e"]);
        assert_eq!(history.last_lines(0).line_count(), 0);
    }

    #[test]
    fn byte_bound_drops_whole_batches_but_keeps_the_newest() {
        let big = "x".repeat(1000);
        let bound = batch(1, &[&big]).bytes() * 5 / 2;
        let mut history = History::new(1000, bound);
        for i in 0..10 {
            history.push(batch(i + 1, &[&big]));
            assert!(history.bytes() <= bound || history.len() == 1);
        }
        assert_eq!(history.first_seq(), Some(9));
        assert_eq!(history.len(), 2);
    }
}
