//! Reading back from Redis what a node no longer holds of another node's file.
//!
//! A node keeps the other nodes' files in its own bounded history (`--history`,
//! `--history-bytes`), and Redis keeps more (`--redis-history`, `--redis-history-bytes`). A
//! reader whose cursor is older than the node's history would get a `gap` for lines Redis still
//! has: [`RedisFill`] answers the hub's [`GapFill`] with them, one `XRANGE` of a few entries at a
//! time, so only what Redis lacks too is a gap, and that gap is exact.
//!
//! Bounded: a piece is at most [`PIECE_ENTRIES`] entries (each at most a publisher's read,
//! 256 KiB of lines, see [`super::entry`]); at most [`MAX_FETCHES`] run at once, the others wait
//! their turn; each has `--redis-timeout`. This is a command per resuming reader, never on the
//! live path: a reader that keeps up reads the node's history only.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{Notify, Semaphore};

use super::entry::{parse_entries, Entry};
use super::Keys;
use crate::hub::{Batch, BatchSlice, Delivery, FillSlot, Gap, GapFill};

/// Entries one `XRANGE` asks for.
pub(crate) const PIECE_ENTRIES: usize = 4;
/// Fetches running at once on a node.
pub(crate) const MAX_FETCHES: usize = 8;

/// See the module documentation.
pub(crate) struct RedisFill {
    conn: ConnectionManager,
    keys: Keys,
    max_line: usize,
    timeout: Duration,
    fetches: Arc<Semaphore>,
    runtime: tokio::runtime::Handle,
}

impl RedisFill {
    /// A fill over `conn`; fetches run on the current runtime.
    pub(crate) fn new(
        conn: ConnectionManager,
        keys: Keys,
        max_line: usize,
        timeout: Duration,
    ) -> Self {
        RedisFill {
            conn,
            keys,
            max_line,
            timeout,
            fetches: Arc::new(Semaphore::new(MAX_FETCHES)),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl GapFill for RedisFill {
    fn fetch(&self, file_id: &str, from: u64, to: u64, into: Arc<FillSlot>, wake: Arc<Notify>) {
        let mut conn = self.conn.clone();
        let key = self.keys.lines(file_id);
        let (max_line, timeout) = (self.max_line, self.timeout);
        let fetches = self.fetches.clone();
        self.runtime.spawn(async move {
            let piece = match fetches.acquire_owned().await {
                Ok(_turn) => {
                    let read = read_piece(&mut conn, &key, from, to, max_line);
                    match tokio::time::timeout(timeout, read).await {
                        Ok(Ok(piece)) => Some(piece),
                        Ok(Err(e)) => {
                            tracing::warn!(
                                "cannot read old lines back from Redis ({e}): the reader is \
                                 told of a gap"
                            );
                            None
                        }
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            };
            into.put(piece);
            wake.notify_one();
        });
    }
}

/// The first piece of lines `from..=to` (and the state changes among them) as Redis has them.
async fn read_piece(
    conn: &mut ConnectionManager,
    key: &str,
    from: u64,
    to: u64,
    max_line: usize,
) -> Result<Vec<Delivery>, redis::RedisError> {
    // A state change right before line `from` is the entry `(from - 1)-K`; a batch holding
    // `from` ends at or after it.
    let start = match from {
        0 | 1 => "-".to_owned(),
        _ => format!("{}-1", from - 1),
    };
    let reply: redis::Value = redis::cmd("XRANGE")
        .arg(key)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(PIECE_ENTRIES)
        .query_async(conn)
        .await?;
    Ok(piece_of(&parse_entries(&reply, max_line), from, to))
}

/// What of `entries` falls in `from..=to`, in order, with a gap for lines they skip.
fn piece_of(
    entries: &[(super::entry::EntryId, Option<Entry>)],
    from: u64,
    to: u64,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    let mut next = from;
    for (id, entry) in entries {
        match entry {
            // A state after the range's last line is still the range's: the reader's next
            // lines (the node's history) come after it.
            Some(Entry::State(_)) if id.seq > to => break,
            Some(Entry::State(state)) if id.seq + 1 >= next => {
                out.push(Delivery::State(*state));
            }
            Some(Entry::Lines {
                first_seq,
                time_ms,
                lines,
            }) => {
                let end = first_seq + lines.len() as u64;
                if end <= next {
                    continue;
                }
                if *first_seq > to {
                    break;
                }
                if *first_seq > next {
                    out.push(Delivery::Gap(Gap {
                        from: next,
                        to: first_seq - 1,
                    }));
                    next = *first_seq;
                }
                let batch = Arc::new(Batch::read_at(*first_seq, lines.clone(), *time_ms));
                let skip = (next - first_seq) as usize;
                let take = (end.min(to + 1) - first_seq) as usize;
                out.push(Delivery::Lines(BatchSlice {
                    batch,
                    range: skip..take,
                }));
                next = end.min(to + 1);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::entry::EntryId;
    use crate::hub::describe;
    use crate::tail::{FileState, LineBatch};

    fn lines(first: u64, n: u64) -> (EntryId, Option<Entry>) {
        let mut batch = LineBatch::default();
        for seq in first..first + n {
            batch.push(&format!("l{seq}"), false);
        }
        (
            EntryId {
                seq: first + n - 1,
                sub: 0,
            },
            Some(Entry::Lines {
                first_seq: first,
                time_ms: 7,
                lines: batch,
            }),
        )
    }

    #[test]
    fn a_piece_is_the_ranges_lines_with_states_in_place_and_a_gap_for_what_redis_skips() {
        let rotated = (
            EntryId { seq: 4, sub: 1 },
            Some(Entry::State(FileState::Rotated)),
        );
        let before = (
            EntryId { seq: 1, sub: 1 },
            Some(Entry::State(FileState::Created)),
        );
        let entries = vec![
            before.clone(),
            lines(2, 3),
            rotated,
            (EntryId { seq: 6, sub: 0 }, None),
            lines(7, 3),
        ];
        // From line 3 (the state after line 1 is before it): 3..=4, the rotation, a gap for
        // the entry no publisher wrote (5..=6), then 7..=8 (the range's end).
        assert_eq!(
            describe(&piece_of(&entries, 3, 8)),
            ["l3,l4", "<rotated>", "gap 5-6", "l7,l8"]
        );
        // A state right before the first line is the reader's.
        assert_eq!(describe(&piece_of(&entries, 2, 2)), ["<created>", "l2"]);
        // Redis starting after the range's start: the exact gap.
        assert_eq!(
            describe(&piece_of(&[lines(10, 2)], 3, 20)),
            ["gap 3-9", "l10,l11"]
        );
        // Past the range: nothing; a state right after its last line is in it.
        assert!(piece_of(&[lines(30, 2)], 3, 20).is_empty());
        let after_last = (
            EntryId { seq: 8, sub: 1 },
            Some(Entry::State(FileState::Ended)),
        );
        assert_eq!(
            describe(&piece_of(&[lines(7, 2), after_last, lines(9, 1)], 7, 8)),
            ["l7,l8", "<ended>"]
        );
    }
}
