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
//! their turn; each, its wait included, has `--redis-timeout` (then the reader gets a gap). A
//! piece holds about one of its reader's reads (`budget`), which it keeps until its client takes
//! it. This is a command per resuming reader, never on the live path: a reader that keeps up
//! reads the node's history only.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{Notify, Semaphore};

use super::entry::EntryId;
use super::entry::{parse_entries, Entry};
use super::Keys;
use crate::hub::{Batch, BatchSlice, Delivery, FillPiece, FillRequest, FillSlot, Gap, GapFill};

/// Entries one `XRANGE` asks for: a piece holds at most this many publisher reads (each at most
/// 256 KiB of lines, or one line at the cap).
pub(crate) const PIECE_ENTRIES: usize = 16;
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
    fn fetch(&self, file_id: &str, request: FillRequest, into: Arc<FillSlot>, wake: Arc<Notify>) {
        let mut conn = self.conn.clone();
        let key = self.keys.lines(file_id);
        let (max_line, timeout) = (self.max_line, self.timeout);
        let fetches = self.fetches.clone();
        // A reader that goes before its turn comes costs no command.
        let into = Arc::downgrade(&into);
        self.runtime.spawn(async move {
            let fetch = async {
                let _turn = fetches.acquire_owned().await.ok()?;
                into.upgrade()?;
                // Once more after a failure (a reconnect), after the cluster's first backoff and
                // within the same `--redis-timeout`: a gap is for good.
                let mut failed = None;
                for attempt in 0..2 {
                    if attempt > 0 {
                        tokio::time::sleep(super::backoff(0)).await;
                    }
                    match read_piece(&mut conn, &key, request, max_line).await {
                        Ok(piece) => return Some(piece),
                        Err(e) => failed = Some(e),
                    }
                }
                if let Some(e) = failed {
                    tracing::warn!(
                        "cannot read old lines of {key} back from Redis ({e}): the reader is \
                         told of a gap"
                    );
                }
                None
            };
            // The wait for a turn counts too: a reader is answered (lines or a gap) in time.
            let piece = tokio::time::timeout(timeout, fetch).await.ok().flatten();
            if let Some(into) = into.upgrade() {
                into.put(piece);
                wake.notify_one();
            }
        });
    }
}

/// A piece of lines `from..=to` (and the state changes among them) as Redis has them: the
/// first one from line `from` (the states right before it are the reader's already), the next
/// ones after the entry `resume` the last one ended at.
async fn read_piece(
    conn: &mut ConnectionManager,
    key: &str,
    request: FillRequest,
    max_line: usize,
) -> Result<FillPiece, redis::RedisError> {
    let FillRequest {
        from,
        to,
        resume,
        budget,
    } = request;
    let start = match resume {
        None => format!("{from}-0"),
        Some((seq, sub)) => format!("({seq}-{sub}"),
    };
    let reply: redis::Value = redis::cmd("XRANGE")
        .arg(key)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(PIECE_ENTRIES)
        .query_async(conn)
        .await?;
    let entries = parse_entries(&reply, max_line);
    let resume = resume.unwrap_or((from, 0));
    Ok(piece_of(
        &entries,
        (from, to),
        resume,
        PIECE_ENTRIES,
        budget,
    ))
}

/// What of `entries` (the answer to an `XRANGE ... COUNT asked`) falls in `from..=to`, in order,
/// with a gap for lines they skip, up to about `budget` bytes of lines; it is the last piece
/// when an entry lies past the range or the stream has no more.
fn piece_of(
    entries: &[(EntryId, Option<Entry>)],
    (from, to): (u64, u64),
    mut resume: (u64, u64),
    asked: usize,
    budget: usize,
) -> FillPiece {
    let mut out = Vec::new();
    let mut next = from;
    let mut bytes = 0;
    let mut done = entries.len() < asked;
    for (id, entry) in entries {
        if bytes >= budget {
            // The rest comes in the next piece.
            done = false;
            break;
        }
        match entry {
            // Past the range (a state after its last line is still in it: the reader's next
            // lines, the node's own, come after it).
            Some(Entry::State(_)) if id.seq > to => {
                done = true;
                break;
            }
            Some(Entry::Lines { first_seq, .. }) if *first_seq > to => {
                done = true;
                break;
            }
            Some(Entry::State(state)) => out.push(Delivery::State(*state)),
            Some(Entry::Lines {
                first_seq,
                time_ms,
                lines,
            }) => {
                let end = first_seq + lines.len() as u64;
                if end > next {
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
                    let slice = BatchSlice {
                        batch,
                        range: skip..take,
                    };
                    bytes += slice.text_bytes() + slice.len();
                    out.push(Delivery::Lines(slice));
                    next = end.min(to + 1);
                }
            }
            // Not a publisher's: its lines, if any, are a gap by the next entry's first seq.
            None => {}
        }
        resume = (id.seq, id.sub);
    }
    FillPiece {
        deliveries: out,
        resume,
        done,
    }
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
        let state = |seq, sub, state| (EntryId { seq, sub }, Some(Entry::State(state)));
        let piece = |entries: &[(EntryId, Option<Entry>)], range, asked, budget| {
            let piece = piece_of(entries, range, (0, 0), asked, budget);
            (describe(&piece.deliveries), piece.resume, piece.done)
        };
        let entries = vec![
            lines(2, 3),
            state(4, 1, FileState::Rotated),
            (EntryId { seq: 6, sub: 0 }, None),
            lines(7, 3),
        ];
        // From line 3 (in the batch 2..=4): 3..=4, the rotation, a gap for the entry no
        // publisher wrote (5..=6), then 7..=8 (the range's end); the stream has no more.
        assert_eq!(
            piece(&entries, (3, 8), 16, usize::MAX),
            (
                strings(&["l3,l4", "<rotated>", "gap 5-6", "l7,l8"]),
                (9, 0),
                true
            )
        );
        // Only state changes, as many as asked: not the end, the next piece goes on after them.
        let states: Vec<_> = (1..=4).map(|k| state(10, k, FileState::Rotated)).collect();
        let (got, resume, done) = piece(&states, (11, 50), 4, usize::MAX);
        assert_eq!((got.len(), resume, done), (4, (10, 4), false));
        // Redis starting after the range's start: the exact gap.
        assert_eq!(
            piece(&[lines(10, 2)], (3, 20), 16, usize::MAX).0,
            ["gap 3-9", "l10,l11"]
        );
        // Past the range: nothing, and the end; a state right after its last line is in it.
        let (got, _, done) = piece(&[lines(30, 2)], (3, 20), 16, usize::MAX);
        assert!(got.is_empty() && done);
        let ended = [lines(7, 2), state(8, 1, FileState::Ended), lines(9, 1)];
        assert_eq!(
            piece(&ended, (7, 8), 3, usize::MAX),
            (strings(&["l7,l8", "<ended>"]), (8, 1), true)
        );
        // A piece holds about its budget: the rest is the next one.
        assert_eq!(
            piece(&[lines(1, 3), lines(4, 3)], (1, 6), 16, 1),
            (strings(&["l1,l2,l3"]), (3, 0), false)
        );
    }

    fn strings(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| t.to_string()).collect()
    }
}
