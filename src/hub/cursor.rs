//! A reader's position in one file, shared by every transport.
//!
//! A [`LiveCursor`] is a registered reader of the hub: it knows the seq of the next line its
//! client should get and the index of the next file-state change, and [`LiveCursor::read`] takes
//! what is new straight from the shared history, in order: an exact `gap` for lines no longer
//! kept, lines (whole batches keep their pre-serialized frame), and state changes where they
//! happened between lines. Nothing is queued per client: a slow reader holds no memory of its
//! own and simply finds, when it reads again, either the lines it missed or a gap. Its position
//! (an atomic the hub can see) lets the tailer pace reading to the readers that keep up (see
//! [`super::Hub::pace`]). WebSocket sessions, SSE, `/follow` and held long-polls all use it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::{BatchSlice, FileIx, Gap, Hub};
use crate::tail::FileState;

/// What a reader is sent, in order.
#[derive(Debug)]
pub enum Delivery {
    /// Lines `from..=to` will never come (no longer kept).
    Gap(Gap),
    /// New lines (the whole batch when [`BatchSlice::is_whole`], so its shared frame can be used).
    Lines(BatchSlice),
    /// A file state change.
    State(FileState),
}

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
pub struct LiveCursor {
    pub(super) file: FileIx,
    pub(super) next_seq: u64,
    pub(super) next_state: u64,
    pub(super) shared: Arc<ReaderShared>,
    pub(super) hub: Hub,
}

impl Drop for LiveCursor {
    fn drop(&mut self) {
        self.hub.reader_gone(self.file, &self.shared);
    }
}

impl LiveCursor {
    /// The file followed.
    pub fn file(&self) -> FileIx {
        self.file
    }

    /// Seq of the next line the client should get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// True when the hub holds something this reader has not read yet (lock-free).
    pub fn has_news(&self) -> bool {
        let (last_seq, states) = self.hub.heads(self.file);
        last_seq >= self.next_seq || states > self.next_state
    }

    /// Takes what is new, at most `max_lines` lines and about `max_bytes` of text (whole
    /// batches, at least one), and advances. Returns nothing when the reader is at the head.
    pub fn read(&mut self, max_lines: usize, max_bytes: usize) -> Vec<Delivery> {
        let hub = self.hub.clone();
        hub.read_for(self, max_lines, max_bytes)
    }

    pub(super) fn set_next_seq(&mut self, next_seq: u64) {
        self.next_seq = next_seq;
        self.shared.next_seq.store(next_seq, Ordering::Release);
    }
}
