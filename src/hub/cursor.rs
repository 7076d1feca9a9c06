//! A reader's position in one file of the in-memory history.
//!
//! A [`MemoryCursor`] is a registered reader of the [`MemoryHistory`]: it knows the seq of the next line its
//! client should get and the index of the next file-state change, and [`CursorBackend::read`] takes
//! what is new straight from the shared history, in order: an exact `gap` for lines no longer
//! kept, lines (whole batches keep their pre-serialized frame), and state changes where they
//! happened between lines. Nothing is queued per client: a slow reader holds no memory of its
//! own and simply finds, when it reads again, either the lines it missed or a gap. Its position
//! (an atomic the hub can see) lets the tailer pace reading to the readers that keep up (see
//! `MemoryHistory::pace`). WebSocket sessions, SSE, `/follow` and held long-polls all use it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::memory::MemoryHistory;
use super::{CursorBackend, Delivery, FileIx};

/// The part of a reader the hub sees: its position, and how to wake it.
#[derive(Debug)]
pub(super) struct ReaderShared {
    /// Seq of the next line the reader will read.
    pub(super) next_seq: AtomicU64,
    /// Woken when the file has news.
    pub(super) wake: Arc<Notify>,
    /// Too slow during a burst: it no longer paces the tailer nor keeps lines in the history,
    /// until it catches up with the head.
    pub(super) left_behind: AtomicBool,
}

/// See the module documentation.
#[derive(Debug)]
pub struct MemoryCursor {
    pub(super) file: FileIx,
    pub(super) next_seq: u64,
    pub(super) next_state: u64,
    /// The pending-line change this reader saw last.
    pub(super) pending_seen: u64,
    /// Whether it was last shown a pending line (so that it is told when there is none).
    pub(super) pending_shown: bool,
    pub(super) shared: Arc<ReaderShared>,
    pub(super) hub: MemoryHistory,
}

impl Drop for MemoryCursor {
    fn drop(&mut self) {
        self.hub.reader_gone(self.file, &self.shared);
    }
}

impl CursorBackend for MemoryCursor {
    fn file(&self) -> FileIx {
        self.file
    }

    fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn has_news(&self) -> bool {
        let (last_seq, states, pending) = self.hub.heads(self.file);
        last_seq >= self.next_seq || states > self.next_state || pending != self.pending_seen
    }

    fn read(&mut self, max_lines: usize, max_bytes: usize) -> Vec<Delivery> {
        let hub = self.hub.clone();
        hub.read_for(self, max_lines, max_bytes)
    }
}

impl MemoryCursor {
    pub(super) fn set_next_seq(&mut self, next_seq: u64) {
        self.next_seq = next_seq;
        self.shared.next_seq.store(next_seq, Ordering::Release);
    }
}
