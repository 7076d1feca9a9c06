//! Reading back what this node no longer holds of another node's file.
//!
//! A cursor on another node's file (in a cluster) that is older than the local history would get
//! a `gap`, although the cluster still has the lines (Redis keeps more than a node's memory). A
//! [`FillingCursor`] wraps such a reader's cursor: where the local cursor says `gap`, it asks a
//! [`GapFill`] (the cluster's, reading Redis) for those lines, one bounded piece at a time, off
//! the caller's thread, and delivers them in their place; only what the fill does not have
//! either is a `gap`, the exact one. What the local cursor read after its gap waits until the
//! fill is done, so the reader gets everything in order.
//!
//! Bounded: one piece (the fill's choice, about a megabyte at most) per reader at a time, and
//! what one local read returned; the fill bounds how many pieces are fetched at once. Nothing
//! of this runs on the live path: a reader that keeps up never has a gap to fill.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::{BatchSlice, CursorBackend, Delivery, FileIx, Gap};
use crate::tail::FileState;

/// Fetches lines of another node's file that this node no longer holds.
pub trait GapFill: Send + Sync + 'static {
    /// Starts fetching a piece of `request`'s lines of the file `file_id`, with the state
    /// changes among them. Puts it in `into` (`None` when it cannot be fetched: the rest of the
    /// range is then a gap) and wakes `wake`. Must not block.
    fn fetch(&self, file_id: &str, request: FillRequest, into: Arc<FillSlot>, wake: Arc<Notify>);
}

/// What a reader asks a [`GapFill`] for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillRequest {
    /// Lines `from..=to`.
    pub from: u64,
    /// See `from`.
    pub to: u64,
    /// `None` for the first piece, else the `resume` the last piece handed out.
    pub resume: Option<(u64, u64)>,
    /// About how many bytes of lines the piece may hold.
    pub budget: usize,
}

/// One piece of a fill.
#[derive(Debug)]
pub struct FillPiece {
    /// In order: lines (within the range), states, and a [`Delivery::Gap`] for lines the fill
    /// does not have.
    pub deliveries: Vec<Delivery>,
    /// Where the next piece starts (the fill's own position, handed back to it).
    pub resume: (u64, u64),
    /// Nothing of the range follows: what is left of it is a gap.
    pub done: bool,
}

/// Where a fetched piece is left for its reader.
#[derive(Debug, Default)]
pub struct FillSlot {
    piece: Mutex<Option<Option<FillPiece>>>,
}

impl FillSlot {
    /// Leaves a piece (`None`: it could not be fetched).
    pub fn put(&self, piece: Option<FillPiece>) {
        *self.piece.lock().unwrap_or_else(|e| e.into_inner()) = Some(piece);
    }

    fn take(&self) -> Option<Option<FillPiece>> {
        self.piece.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn is_ready(&self) -> bool {
        self.piece
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

/// Lines `next..=to` still to be delivered, fetched a piece at a time.
struct Fill {
    next: u64,
    to: u64,
    resume: Option<(u64, u64)>,
    slot: Arc<FillSlot>,
    in_flight: bool,
    /// The fill has said all it has of the range.
    done: bool,
    /// The local cursor's state changes inside the gap, for when the fill cannot be read.
    local_states: Vec<Delivery>,
}

/// See the module documentation.
pub struct FillingCursor {
    inner: Box<dyn CursorBackend>,
    fill_from: Arc<dyn GapFill>,
    file_id: String,
    wake: Arc<Notify>,
    fill: Option<Fill>,
    /// Fetched, not read yet (one piece at most).
    ready: VecDeque<Delivery>,
    /// What the local cursor read after its gap, for once the fill is done.
    held: VecDeque<Delivery>,
    /// Seq of the next line the reader gets, while `fill` or `held` are not empty.
    next_seq: u64,
    /// The bytes its last read could take: what a piece may hold.
    budget: usize,
}

/// The most a piece holds, whatever a reader could take at once.
const MAX_PIECE_BYTES: usize = 4 << 20;

impl FillingCursor {
    /// Wraps `inner`, a reader of `file_id`, woken through `wake`.
    pub fn new(
        inner: Box<dyn CursorBackend>,
        fill_from: Arc<dyn GapFill>,
        file_id: String,
        wake: Arc<Notify>,
    ) -> Self {
        let next_seq = inner.next_seq();
        FillingCursor {
            inner,
            fill_from,
            file_id,
            wake,
            fill: None,
            ready: VecDeque::new(),
            held: VecDeque::new(),
            next_seq,
            budget: 64 << 10,
        }
    }

    fn request(&self, fill: &Fill) {
        let request = FillRequest {
            from: fill.next,
            to: fill.to,
            resume: fill.resume,
            budget: self.budget,
        };
        self.fill_from
            .fetch(&self.file_id, request, fill.slot.clone(), self.wake.clone());
    }

    /// Takes a fetched piece into `ready`; when the fill has no more (or cannot be read), the
    /// rest of the range is a gap.
    fn absorb(&mut self, piece: Option<FillPiece>) {
        let Some(fill) = self.fill.as_mut() else {
            return;
        };
        let done = match piece {
            Some(piece) => {
                for delivery in piece.deliveries {
                    // Only what moves the reader on, in order, within the range.
                    match &delivery {
                        Delivery::Lines(slice)
                            if slice.first_seq() == fill.next
                                && slice.first_seq() + slice.len() as u64 <= fill.to + 1 =>
                        {
                            fill.next = slice.first_seq() + slice.len() as u64;
                        }
                        Delivery::Gap(gap) if gap.from == fill.next && gap.to <= fill.to => {
                            fill.next = gap.to + 1;
                        }
                        Delivery::State(_) => {}
                        _ => continue,
                    }
                    self.ready.push_back(delivery);
                }
                fill.resume = Some(piece.resume);
                piece.done
            }
            None => {
                if fill.next <= fill.to {
                    self.ready.push_back(Delivery::Gap(Gap {
                        from: fill.next,
                        to: fill.to,
                    }));
                }
                fill.next = fill.to + 1;
                // Only if the fill told none itself: after a piece, they could come twice.
                if fill.resume.is_none() {
                    self.ready.extend(fill.local_states.drain(..));
                }
                true
            }
        };
        if done {
            if fill.next <= fill.to {
                self.ready.push_back(Delivery::Gap(Gap {
                    from: fill.next,
                    to: fill.to,
                }));
                fill.next = fill.to + 1;
            }
            fill.done = true;
        }
    }

    /// Splits what the local cursor read at its first gap: what came before is read now, the
    /// gap is fetched, and what came after waits. State changes between the gap and the first
    /// line after it fell in the gap, and come from the fill in their places (kept aside for a
    /// fill that fails), except this node's own `unavailable` / `available`, which only it has.
    fn take_local(&mut self, read: Vec<Delivery>) -> Vec<Delivery> {
        let mut out = Vec::new();
        let mut deliveries = read.into_iter();
        for delivery in deliveries.by_ref() {
            match delivery {
                Delivery::Gap(gap) => {
                    let fill = Fill {
                        next: gap.from,
                        to: gap.to,
                        resume: None,
                        slot: Arc::new(FillSlot::default()),
                        in_flight: true,
                        done: false,
                        local_states: Vec::new(),
                    };
                    self.request(&fill);
                    self.fill = Some(fill);
                    self.next_seq = gap.from;
                    break;
                }
                other => out.push(other),
            }
        }
        if let Some(fill) = self.fill.as_mut() {
            let mut seen_lines = false;
            for delivery in deliveries {
                seen_lines |= matches!(delivery, Delivery::Lines(_));
                match delivery {
                    Delivery::State(FileState::Available | FileState::Unavailable) => {
                        self.held.push_back(delivery);
                    }
                    Delivery::State(_) if !seen_lines => fill.local_states.push(delivery),
                    other => self.held.push_back(other),
                }
            }
        }
        out
    }
}

/// Takes deliveries from the front of `queue`, at most `max_lines` lines and `max_bytes` of
/// text (at least one line), cutting a batch where the bound falls, and never past a gap that
/// follows lines (a read's gap comes before its lines); advances `next_seq`.
fn take_bounded(
    queue: &mut VecDeque<Delivery>,
    max_lines: usize,
    max_bytes: usize,
    next_seq: &mut u64,
) -> Vec<Delivery> {
    take_bounded_after(queue, (0, 0), (max_lines, max_bytes), next_seq)
}

/// [`take_bounded`] for a read that already took `taken` (lines, bytes) of its `bounds`: it
/// takes a line only where it fits.
fn take_bounded_after(
    queue: &mut VecDeque<Delivery>,
    taken: (usize, usize),
    bounds: (usize, usize),
    next_seq: &mut u64,
) -> Vec<Delivery> {
    let (max_lines, max_bytes) = bounds;
    let mut out = Vec::new();
    let (mut lines, mut bytes) = taken;
    while let Some(delivery) = queue.pop_front() {
        match delivery {
            Delivery::Lines(slice) => {
                if lines >= max_lines || (lines > 0 && bytes >= max_bytes) {
                    queue.push_front(Delivery::Lines(slice));
                    break;
                }
                // As many of its lines as the bounds leave room for, at least one.
                let mut take = 0;
                let mut taken_bytes = 0;
                for (ix, line) in slice.lines().enumerate() {
                    let fits =
                        lines + ix < max_lines && bytes + taken_bytes + line.len() < max_bytes;
                    let first_of_read = lines == 0 && ix == 0;
                    if !(fits || first_of_read) {
                        break;
                    }
                    take += 1;
                    taken_bytes += line.len() + 1;
                }
                if take == 0 {
                    queue.push_front(Delivery::Lines(slice));
                    break;
                }
                lines += take;
                bytes += taken_bytes;
                let head = BatchSlice {
                    batch: slice.batch.clone(),
                    range: slice.range.start..slice.range.start + take,
                };
                *next_seq = head.first_seq() + take as u64;
                let rest = slice.from_seq(*next_seq);
                out.push(Delivery::Lines(head));
                if !rest.is_empty() {
                    queue.push_front(Delivery::Lines(rest));
                    break;
                }
            }
            Delivery::Gap(gap) if lines > 0 => {
                queue.push_front(Delivery::Gap(gap));
                break;
            }
            Delivery::Gap(gap) => {
                *next_seq = gap.to + 1;
                out.push(Delivery::Gap(gap));
            }
            other => out.push(other),
        }
    }
    out
}

/// Lines and bytes of text (each line with its newline, as the memory cursor counts) in
/// `deliveries`.
fn size(deliveries: &[Delivery]) -> (usize, usize) {
    deliveries
        .iter()
        .filter_map(|d| match d {
            Delivery::Lines(slice) => Some((slice.len(), slice.text_bytes() + slice.len())),
            _ => None,
        })
        .fold((0, 0), |(l, b), (dl, db)| (l + dl, b + db))
}

impl CursorBackend for FillingCursor {
    fn file(&self) -> FileIx {
        self.inner.file()
    }

    fn next_seq(&self) -> u64 {
        if self.fill.is_some() || !self.held.is_empty() {
            self.next_seq
        } else {
            self.inner.next_seq()
        }
    }

    fn has_news(&self) -> bool {
        match &self.fill {
            // A piece to read, or the next one to ask for.
            Some(fill) => !self.ready.is_empty() || fill.slot.is_ready() || !fill.in_flight,
            None => !self.held.is_empty() || self.inner.has_news(),
        }
    }

    fn filling(&self) -> bool {
        // Also once a piece has come but is not read yet: the caller reads it next.
        self.fill.is_some() && self.ready.is_empty()
    }

    fn read(&mut self, max_lines: usize, max_bytes: usize) -> Vec<Delivery> {
        self.budget = max_bytes.clamp(1, MAX_PIECE_BYTES);
        if let Some(piece) = self.fill.as_ref().and_then(|f| f.slot.take()) {
            if let Some(fill) = self.fill.as_mut() {
                fill.in_flight = false;
            }
            self.absorb(piece);
        }
        let mut out = Vec::new();
        if let Some(fill) = &self.fill {
            out = take_bounded(&mut self.ready, max_lines, max_bytes, &mut self.next_seq);
            if !self.ready.is_empty() {
                return out;
            }
            if !fill.done {
                if out.is_empty() && !fill.in_flight {
                    self.request(fill);
                    if let Some(fill) = self.fill.as_mut() {
                        fill.in_flight = true;
                    }
                } else if !fill.in_flight {
                    // The next piece is asked for by the next read (a poll that ends with this
                    // one would throw it away): that read is due now.
                    self.wake.notify_one();
                }
                return out;
            }
            // Done: what the local cursor read after its gap follows, within what is left.
            self.fill = None;
        }
        let taken = size(&out);
        if taken.0 >= max_lines || taken.1 >= max_bytes {
            if !self.held.is_empty() {
                self.wake.notify_one();
            }
            return out;
        }
        if !self.held.is_empty() {
            out.extend(take_bounded_after(
                &mut self.held,
                taken,
                (max_lines, max_bytes),
                &mut self.next_seq,
            ));
            if !self.held.is_empty() {
                self.wake.notify_one();
            }
            return out;
        }
        if !out.is_empty() {
            // Read the local cursor next time: its lines may begin with another gap.
            self.wake.notify_one();
            return out;
        }
        let read = self.inner.read(max_lines, max_bytes);
        self.take_local(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::describe;
    use crate::hub::{Batch, HistoryBackend, HubConfig, MemoryHistory, Start};
    use crate::tail::{FileState, LineBatch};
    use std::path::PathBuf;

    /// A fill that has lines 1..=1000 except `missing`, answered at once, `piece` lines at a
    /// time; remembers what it was asked.
    struct Lines {
        missing: std::ops::RangeInclusive<u64>,
        piece: u64,
        asked: Mutex<Vec<(u64, u64)>>,
    }

    impl GapFill for Lines {
        fn fetch(&self, _: &str, request: FillRequest, into: Arc<FillSlot>, wake: Arc<Notify>) {
            let (from, to) = (request.from, request.to);
            self.asked.lock().unwrap().push((from, to));
            let mut out = Vec::new();
            let mut at = from;
            if self.missing.contains(&at) {
                let end = (*self.missing.end()).min(to);
                out.push(Delivery::Gap(Gap { from: at, to: end }));
                at = end + 1;
            }
            let end = (at + self.piece - 1).min(to);
            // Lines at..=end, with the rotation after line 4 where it falls.
            let mut cuts = vec![at];
            if at < 5 && end >= 5 {
                cuts.push(5);
            }
            cuts.push(end + 1);
            for pair in cuts.windows(2) {
                if pair[0] == 5 {
                    out.push(Delivery::State(FileState::Rotated));
                }
                let mut lines = LineBatch::default();
                for seq in pair[0]..pair[1] {
                    lines.push(&format!("r{seq}"), false);
                }
                let len = lines.len();
                if len > 0 {
                    let batch = Arc::new(Batch::read_at(pair[0], lines, 0));
                    out.push(Delivery::Lines(BatchSlice {
                        batch,
                        range: 0..len,
                    }));
                }
            }
            into.put(Some(FillPiece {
                deliveries: out,
                resume: (end, 0),
                done: end >= to,
            }));
            wake.notify_one();
        }
    }

    /// A history whose one file (another node's) keeps 3 lines and has had 20 (`l1`..`l20`),
    /// with a rotation after line 4 (states are kept longer than lines).
    fn hub_with_lines() -> MemoryHistory {
        let hub = MemoryHistory::new(Vec::new(), &HubConfig::on_node_here(3, 0), 1);
        let ix = hub
            .add_remote_file("there/f".into(), PathBuf::from("/f"), "there".into())
            .unwrap();
        for seq in 1..=20 {
            let mut lines = LineBatch::default();
            lines.push(&format!("l{seq}"), false);
            hub.ingest(ix, seq, 0, lines);
            if seq == 4 {
                hub.set_state(ix, FileState::Rotated);
            }
        }
        hub
    }

    fn reader(hub: &MemoryHistory, fill: Arc<Lines>, after: u64) -> FillingCursor {
        let wake = Arc::new(Notify::new());
        let inner = hub.subscribe(0, Start::After(after), wake.clone());
        FillingCursor::new(inner.unwrap(), fill, "there/f".into(), wake)
    }

    /// Reads until nothing is left (each piece is ready at once), at most `max_lines` a time.
    fn read_all(cursor: &mut FillingCursor, max_lines: usize) -> Vec<String> {
        let mut got = Vec::new();
        for _ in 0..100 {
            if !cursor.has_news() {
                break;
            }
            got.extend(describe(&cursor.read(max_lines, usize::MAX)));
        }
        got
    }

    #[test]
    fn a_gap_is_filled_in_order_a_piece_at_a_time_and_only_what_the_fill_lacks_stays_a_gap() {
        let hub = hub_with_lines();
        let fill = Arc::new(Lines {
            missing: 1..=2,
            piece: 4,
            asked: Mutex::default(),
        });
        let mut cursor = reader(&hub, fill.clone(), 0);
        // The local history has 18..=20; 1..=17 come from the fill (1..=2 it lacks too), with
        // the rotation after line 4 in its place (the local one, met after the gap, is not
        // told twice), then the local lines.
        let first = cursor.read(2, usize::MAX);
        assert!(first.is_empty(), "the first piece is being fetched");
        assert_eq!(cursor.next_seq(), 1);
        let got = read_all(&mut cursor, 2);
        assert_eq!(
            got,
            [
                "gap 1-2",
                "r3,r4",
                "<rotated>",
                "r5,r6",
                "r7,r8",
                "r9,r10",
                "r11,r12",
                "r13,r14",
                "r15,r16",
                "r17",
                "l18",
                "l19",
                "l20"
            ]
        );
        assert_eq!(cursor.next_seq(), 21);
        // One piece at a time, each from where the last one ended.
        let asked = fill.asked.lock().unwrap().clone();
        assert_eq!(asked, [(1, 17), (7, 17), (11, 17), (15, 17)]);
        // Live lines go on through the local cursor.
        let mut lines = LineBatch::default();
        lines.push("l21", false);
        hub.ingest(0, 21, 0, lines);
        assert!(cursor.has_news());
        assert_eq!(describe(&cursor.read(10, usize::MAX)), ["l21"]);
    }

    #[test]
    fn a_bounded_take_cuts_between_lines_never_hands_out_an_empty_slice_nor_a_gap_after_lines() {
        let slice = |first: u64, texts: &[&str]| {
            let mut lines = LineBatch::default();
            for text in texts {
                lines.push(text, false);
            }
            let batch = Arc::new(Batch::read_at(first, lines, 0));
            let len = batch.lines.len();
            Delivery::Lines(BatchSlice {
                batch,
                range: 0..len,
            })
        };
        let mut queue: VecDeque<Delivery> = [
            slice(1, &["aaaa", "bbbb"]),
            slice(3, &["cccc"]),
            Delivery::Gap(Gap { from: 4, to: 9 }),
            slice(10, &["dddd"]),
        ]
        .into();
        let mut next = 1;
        // 7 bytes: "aaaa" and its newline, not "bbbb" too.
        assert_eq!(
            describe(&take_bounded(&mut queue, 10, 7, &mut next)),
            ["aaaa"]
        );
        assert_eq!(next, 2);
        // Room for "bbbb" but not "cccc": no empty slice of the second batch.
        assert_eq!(
            describe(&take_bounded(&mut queue, 10, 7, &mut next)),
            ["bbbb"]
        );
        // A gap after lines waits for the next take.
        assert_eq!(
            describe(&take_bounded(&mut queue, 10, 100, &mut next)),
            ["cccc"]
        );
        assert_eq!(
            describe(&take_bounded(&mut queue, 10, 100, &mut next)),
            ["gap 4-9", "dddd"]
        );
        assert_eq!(next, 11);
    }

    #[test]
    fn a_fill_that_cannot_be_fetched_is_the_exact_gap_and_the_cursor_goes_on() {
        struct Broken;
        impl GapFill for Broken {
            fn fetch(&self, _: &str, _: FillRequest, into: Arc<FillSlot>, wake: Arc<Notify>) {
                into.put(None);
                wake.notify_one();
            }
        }
        let hub = hub_with_lines();
        // Ten reads of a reader after `after` whose fill always fails.
        let broken_reads = |after| {
            let wake = Arc::new(Notify::new());
            let inner = hub.subscribe(0, Start::After(after), wake.clone()).unwrap();
            let mut cursor = FillingCursor::new(inner, Arc::new(Broken), "x".into(), wake);
            let mut got = Vec::new();
            for _ in 0..10 {
                got.extend(describe(&cursor.read(100, usize::MAX)));
            }
            got
        };
        assert_eq!(broken_reads(10), ["gap 11-17", "l18", "l19", "l20"]);
        // The local rotation inside the gap is told after it, since the fill cannot say where.
        assert_eq!(
            broken_reads(3),
            ["gap 4-17", "<rotated>", "l18", "l19", "l20"]
        );
        // A fill that fails after a piece: the rest is a gap, and the local states are not told
        // again (the piece told the rotation in its place).
        struct FirstPieceOnly(Mutex<usize>);
        impl GapFill for FirstPieceOnly {
            fn fetch(&self, _: &str, _: FillRequest, into: Arc<FillSlot>, wake: Arc<Notify>) {
                let mut calls = self.0.lock().unwrap();
                *calls += 1;
                let line = |seq: u64| {
                    let mut lines = LineBatch::default();
                    lines.push(&format!("r{seq}"), false);
                    Delivery::Lines(BatchSlice {
                        batch: Arc::new(Batch::read_at(seq, lines, 0)),
                        range: 0..1,
                    })
                };
                into.put((*calls == 1).then(|| FillPiece {
                    deliveries: vec![line(4), Delivery::State(FileState::Rotated), line(5)],
                    resume: (5, 0),
                    done: false,
                }));
                wake.notify_one();
            }
        }
        let wake = Arc::new(Notify::new());
        let inner = hub.subscribe(0, Start::After(3), wake.clone()).unwrap();
        let fill = Arc::new(FirstPieceOnly(Mutex::new(0)));
        let mut cursor = FillingCursor::new(inner, fill, "x".into(), wake);
        let mut got = Vec::new();
        for _ in 0..10 {
            got.extend(describe(&cursor.read(100, usize::MAX)));
        }
        assert_eq!(
            got,
            ["r4", "<rotated>", "r5", "gap 6-17", "l18", "l19", "l20"]
        );
        // A reader with no gap never asks the fill.
        let fill = Arc::new(Lines {
            missing: 0..=0,
            piece: 4,
            asked: Mutex::default(),
        });
        let mut keeping_up = reader(&hub, fill.clone(), 18);
        assert_eq!(read_all(&mut keeping_up, 100), ["l19", "l20"]);
        assert!(fill.asked.lock().unwrap().is_empty());
    }
}
