//! A subscriber's position in one file's live stream, shared by every transport.
//!
//! A [`LiveCursor`] knows the seq of the next line its client should get. It de-duplicates
//! batches that overlap what the client already has (the backlog), and when its broadcast
//! receiver lagged (the client fell more than the live queue behind) it catches up from the
//! history with a fresh receiver, atomically, like a new subscription: the client gets every line
//! still kept and an exact `gap` for the ones that left. WebSocket sessions, SSE and `/follow` all
//! use it, so the lag policy lives in one place.

use bytestring::ByteString;
use tokio::sync::broadcast;

use super::{BatchSlice, FileIx, Gap, HistoryRead, Hub, LiveEvent, Snapshot, Start};

/// What a client should be sent for one live event.
#[derive(Debug)]
pub enum Delivery {
    /// New lines (the whole batch when [`BatchSlice::is_whole`], so its shared frame can be used).
    Lines(BatchSlice),
    /// A file state change, with its WebSocket frame.
    State(crate::tail::FileState, ByteString),
}

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct LiveCursor {
    file: FileIx,
    next_seq: u64,
}

impl LiveCursor {
    /// A cursor continuing right after what `snapshot` delivered.
    pub fn after(file: FileIx, snapshot: &Snapshot) -> Self {
        let next_seq = snapshot
            .read
            .last_seq()
            .map_or(snapshot.last_seq + 1, |last| last + 1);
        LiveCursor { file, next_seq }
    }

    /// The file followed.
    pub fn file(&self) -> FileIx {
        self.file
    }

    /// Seq of the next line the client should get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// What to send for one event: lines the client does not have yet (and, defensively, a gap
    /// if the event skips ahead), or a state change. `None` when the client has it all.
    pub fn accept(&mut self, event: LiveEvent) -> (Option<Gap>, Option<Delivery>) {
        match event {
            LiveEvent::Lines(batch) => {
                let end = batch.end_seq();
                if end <= self.next_seq {
                    return (None, None); // already sent with the backlog
                }
                let gap = (batch.first_seq > self.next_seq).then(|| Gap {
                    from: self.next_seq,
                    to: batch.first_seq - 1,
                });
                let whole = BatchSlice {
                    range: 0..batch.lines.len(),
                    batch,
                };
                let slice = if gap.is_some() {
                    whole
                } else {
                    whole.from_seq(self.next_seq)
                };
                self.next_seq = end;
                (gap, Some(Delivery::Lines(slice)))
            }
            LiveEvent::State(state, frame) => (None, Some(Delivery::State(state, frame))),
        }
    }

    /// The client fell behind the hub's live queue: catch up from the history (at most `max`
    /// lines). Returns what to send (its gap names exactly the lines no longer kept) and the
    /// receiver to use from now on.
    pub fn lagged(
        &mut self,
        hub: &Hub,
        max: usize,
    ) -> (HistoryRead, broadcast::Receiver<LiveEvent>) {
        let after = self.next_seq.saturating_sub(1);
        let (snapshot, receiver) = match hub.subscribe(self.file, Start::After(after), max) {
            Ok(subscribed) => subscribed,
            // Seqs only grow, so this cannot happen; fall back to the live edge.
            Err(ahead) => {
                let subscribed = hub.subscribe(self.file, Start::After(ahead.last_seq), max);
                match subscribed {
                    Ok(subscribed) => subscribed,
                    Err(_) => unreachable_cursor(hub, self.file),
                }
            }
        };
        self.next_seq = LiveCursor::after(self.file, &snapshot).next_seq;
        (snapshot.read, receiver)
    }
}

fn unreachable_cursor(hub: &Hub, file: FileIx) -> (Snapshot, broadcast::Receiver<LiveEvent>) {
    let (last_seq, receiver) = hub.subscribe_live(file);
    (
        Snapshot {
            read: HistoryRead::default(),
            last_seq,
        },
        receiver,
    )
}
