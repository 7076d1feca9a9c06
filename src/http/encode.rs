//! Encoding what the history holds into wire messages: `lines` frames and long-poll answers.
//!
//! The history keeps lines and file states only; it knows no wire format. A whole batch's
//! WebSocket frame (header included, see [`super::ws_out`]) is built here the first time a client
//! needs it and cached with the batch ([`whole_batch_frame`]), so however many clients read it,
//! it is serialized and framed once, and every client sends the same bytes.

use bytes::Bytes;
use serde::{Serialize, Serializer};

use super::ws_out;

use crate::hub::{Batch, BatchSlice, Gap};
use crate::protocol::{GapRange, LinesMessage};

/// Where a frame's lines go: serialized as `[]` by serde, then filled in by [`with_lines`],
/// which escapes them in bulk (most log lines need no escaping at all; serde_json looks at
/// every byte through a table).
struct LinesHere;

impl Serialize for LinesHere {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(std::iter::empty::<&str>())
    }
}

/// `message` (whose `lines` is [`LinesHere`]) as JSON, with `lines` written into its array,
/// after the bytes of `frame` (empty, or room for a WebSocket header).
/// Inside a JSON string every `"` is escaped, so the first `"lines":[]` is the field itself.
fn with_lines<M: Serialize>(
    mut frame: Vec<u8>,
    message: &M,
    write_lines: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    const FIELD: &[u8] = b"\"lines\":[]";
    let front = frame.len();
    if serde_json::to_writer(&mut frame, message).is_err() {
        frame.truncate(front);
        return frame;
    }
    let Some(at) = memchr::memmem::find(&frame[front..], FIELD) else {
        return frame;
    };
    let tail = frame.split_off(front + at + FIELD.len() - 1);
    write_lines(&mut frame);
    frame.extend_from_slice(&tail);
    frame
}

/// Writes the lines of `slices` into a JSON array being written, comma-separated, each slice's
/// lines as one run (see [`super::json::push_lines`]).
fn push_slices(frame: &mut Vec<u8>, slices: &[BatchSlice]) {
    let mut comma = false;
    for slice in slices {
        let (text, start, ends) = slice.batch.lines.run(slice.range.clone());
        super::json::push_lines(frame, text, start, ends, comma);
        comma |= !ends.is_empty();
    }
}

/// A frame made by [`with_lines`] as a string (serde_json and [`super::json`] write UTF-8).
fn frame_text(frame: Vec<u8>) -> String {
    String::from_utf8(frame).unwrap_or_default()
}

/// About the size of the frame of `slices`' lines.
fn slices_estimate(slices: &[BatchSlice]) -> usize {
    slices
        .iter()
        .map(|s| s.text_bytes() + s.len() * 3)
        .sum::<usize>()
        + 128
}

/// Seqs of truncated lines in some slices.
pub fn truncated_seqs(slices: &[BatchSlice]) -> Vec<u64> {
    slices.iter().flat_map(BatchSlice::truncated_seqs).collect()
}

/// When the lines of some slices were read: `(seq, unix ms)` where the time changes, so one
/// pair per read (per batch) at most: the time of the lines from that seq up to the next pair.
pub fn times_of(slices: &[BatchSlice]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for slice in slices.iter().filter(|s| !s.is_empty()) {
        let time = slice.time_ms();
        if out.last().map(|&(_, last)| last) != Some(time) {
            out.push((slice.first_seq(), time));
        }
    }
    out
}

/// The protocol's entry for a file.
pub fn file_info(file: crate::hub::FileSummary) -> crate::protocol::FileInfo {
    crate::protocol::FileInfo {
        id: file.id,
        path: file.path,
        exists: file.exists,
        size: file.size,
        last_seq: file.last_seq,
        error: file.error,
        node: file.node,
        remote: file.remote,
    }
}

/// Every file's protocol entry.
pub fn file_infos(hub: &crate::hub::Hub) -> Vec<crate::protocol::FileInfo> {
    hub.files().into_iter().map(file_info).collect()
}

/// The protocol's form of a gap.
pub fn gap_range(gap: Gap) -> GapRange {
    GapRange {
        from: gap.from,
        to: gap.to,
    }
}

/// The `lines` message for consecutive slices starting at `first_seq`.
pub fn lines_frame(file: &str, first_seq: u64, slices: &[BatchSlice]) -> String {
    let frame = Vec::with_capacity(slices_estimate(slices));
    frame_text(lines_into(frame, file, first_seq, slices))
}

/// [`lines_frame`] as a WebSocket frame.
pub fn lines_ws_frame(file: &str, first_seq: u64, slices: &[BatchSlice]) -> Bytes {
    let frame = ws_out::frame_buffer(slices_estimate(slices));
    ws_out::text_frame(lines_into(frame, file, first_seq, slices))
}

fn lines_into(frame: Vec<u8>, file: &str, first_seq: u64, slices: &[BatchSlice]) -> Vec<u8> {
    let times = times_of(slices);
    let message = LinesMessage {
        kind: "lines",
        file,
        seq: first_seq,
        time: times.first().map_or(0, |&(_, time)| time),
        lines: LinesHere,
        seqs: None,
        times: (times.len() > 1).then_some(times),
        truncated: truncated_seqs(slices),
    };
    with_lines(frame, &message, |frame| push_slices(frame, slices))
}

/// The `lines` message of filtered lines (`grep`): not consecutive, so with each line's seq.
pub fn filtered_lines_frame(file: &str, slices: &[BatchSlice]) -> String {
    let frame = Vec::with_capacity(slices_estimate(slices));
    frame_text(filtered_into(frame, file, slices))
}

/// [`filtered_lines_frame`] as a WebSocket frame.
pub fn filtered_lines_ws_frame(file: &str, slices: &[BatchSlice]) -> Bytes {
    let frame = ws_out::frame_buffer(slices_estimate(slices));
    ws_out::text_frame(filtered_into(frame, file, slices))
}

fn filtered_into(frame: Vec<u8>, file: &str, slices: &[BatchSlice]) -> Vec<u8> {
    let seqs = super::filter::seqs_of(slices);
    let times = times_of(slices);
    let message = LinesMessage {
        kind: "lines",
        file,
        seq: seqs.first().copied().unwrap_or_default(),
        time: times.first().map_or(0, |&(_, time)| time),
        lines: LinesHere,
        seqs: Some(seqs),
        // Kept lines of several reads: each run's time.
        times: (times.len() > 1).then_some(times),
        truncated: truncated_seqs(slices),
    };
    with_lines(frame, &message, |frame| push_slices(frame, slices))
}

/// The WebSocket frame of a whole batch's `lines` message, built on first use and kept with the
/// batch for every other client (the same bytes: a clone is a reference count).
pub fn whole_batch_frame(file: &str, batch: &Batch) -> Bytes {
    batch
        .encoded
        .get_or_init(|| ws_out::text_frame(batch_frame(file, batch)))
        .clone()
}

/// The whole batch's `lines` message, after room for a WebSocket header.
fn batch_frame(file: &str, batch: &Batch) -> Vec<u8> {
    let lines = &batch.lines;
    let message = LinesMessage {
        kind: "lines",
        file,
        seq: batch.first_seq,
        // One read, one time: it belongs in the frame every client shares.
        time: batch.time_ms,
        lines: LinesHere,
        seqs: None,
        times: None,
        truncated: lines
            .truncated()
            .iter()
            .map(|&i| batch.first_seq + u64::from(i))
            .collect(),
    };
    // Sized for the usual case (quotes and commas, little to escape), so that it is allocated
    // once and kept without spare capacity.
    let capacity = Batch::encoded_estimate(lines) + file.len();
    let frame = ws_out::frame_buffer(capacity);
    let mut frame = with_lines(frame, &message, |frame| {
        let (text, start, ends) = lines.run(0..lines.len());
        super::json::push_lines(frame, text, start, ends, false);
    });
    frame.shrink_to_fit();
    frame
}

/// How a poll answer writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollFormat {
    /// The JSON answer ([`crate::protocol::PollAnswer`]).
    Json,
    /// One line of text per line, terminal-safe unless `raw`.
    Text {
        /// Bytes as they are.
        raw: bool,
    },
}

/// What a poll answer says besides its lines.
pub struct PollMeta<'a> {
    /// File id.
    pub file: &'a str,
    /// The server's epoch.
    pub epoch: u64,
    /// Cursor for the next request.
    pub last_seq: u64,
    /// The same, qualified with the epoch (`EPOCH-SEQ`).
    pub cursor: String,
    /// Lines that will never come.
    pub gap: Option<Gap>,
    /// Why the client's cursor was not taken (`epoch`, `cursor_ahead`), when it was not.
    pub reset: Option<&'static str>,
    /// The lines were filtered (`grep`), so not consecutive: the answer lists their seqs.
    pub with_seqs: bool,
}

/// The fields of a JSON poll answer before its lines (serialized, then opened up).
#[derive(Serialize)]
struct PollHead<'a> {
    file: &'a str,
    epoch: u64,
}

/// The fields of a JSON poll answer after its lines.
#[derive(Serialize)]
struct PollTail {
    first_seq: Option<u64>,
    last_seq: u64,
    cursor: String,
    gap: Option<GapRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seqs: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    times: Vec<(u64, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    truncated: Vec<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reset: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_reason: Option<&'static str>,
}

/// A poll answer encoded as the client takes it, in pieces of about [`POLL_PIECE_BYTES`]: a
/// client that stops reading stops the encoding too, and the answer is never held whole. The
/// JSON form is byte for byte what serializing [`crate::protocol::PollAnswer`] gives.
pub struct PollPieces {
    format: PollFormat,
    head: Option<Vec<u8>>,
    slices: Vec<BatchSlice>,
    slice: usize,
    line: usize,
    lines_written: usize,
    tail: Option<Vec<u8>>,
}

/// About the size of one piece of a poll answer.
pub const POLL_PIECE_BYTES: usize = 16 * 1024;

impl PollPieces {
    /// The answer with these lines (oldest first) and these fields.
    pub fn new(format: PollFormat, slices: Vec<BatchSlice>, meta: PollMeta<'_>) -> Self {
        let (head, tail) = match format {
            PollFormat::Text { .. } => (None, None),
            PollFormat::Json => {
                let head = PollHead {
                    file: meta.file,
                    epoch: meta.epoch,
                };
                let mut head = serde_json::to_vec(&head).unwrap_or_default();
                head.pop(); // the closing brace
                head.extend_from_slice(b",\"lines\":[");
                let tail = PollTail {
                    first_seq: slices.first().map(BatchSlice::first_seq),
                    last_seq: meta.last_seq,
                    cursor: meta.cursor,
                    gap: meta.gap.map(gap_range),
                    seqs: meta.with_seqs.then(|| super::filter::seqs_of(&slices)),
                    times: times_of(&slices),
                    truncated: truncated_seqs(&slices),
                    reset: meta.reset.is_some(),
                    reset_reason: meta.reset,
                };
                let tail_json = serde_json::to_vec(&tail).unwrap_or_default();
                // `{"first_seq":...}` becomes `],"first_seq":...}`.
                let mut tail = b"],".to_vec();
                tail.extend_from_slice(tail_json.get(1..).unwrap_or_default());
                (Some(head), Some(tail))
            }
        };
        PollPieces {
            format,
            head,
            slices,
            slice: 0,
            line: 0,
            lines_written: 0,
            tail,
        }
    }
}

impl PollPieces {
    /// True once every piece has been given out.
    pub fn finished(&self) -> bool {
        self.head.is_none() && self.tail.is_none() && self.slice >= self.slices.len()
    }
}

impl Iterator for PollPieces {
    type Item = actix_web::web::Bytes;

    fn next(&mut self) -> Option<Self::Item> {
        let mut out = self.head.take().unwrap_or_default();
        while out.len() < POLL_PIECE_BYTES {
            let Some(slice) = self.slices.get(self.slice) else {
                break;
            };
            let Some(index) = slice.range.clone().nth(self.line) else {
                self.slice += 1;
                self.line = 0;
                continue;
            };
            let line = slice.batch.lines.line(index);
            self.line += 1;
            match self.format {
                PollFormat::Json => {
                    if self.lines_written > 0 {
                        out.push(b',');
                    }
                    super::json::push_str(&mut out, line);
                }
                PollFormat::Text { raw: true } => {
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
                PollFormat::Text { raw: false } => {
                    super::terminal::push_line(line, &mut out);
                    out.push(b'\n');
                }
            }
            self.lines_written += 1;
        }
        if out.len() < POLL_PIECE_BYTES && self.slice >= self.slices.len() {
            if let Some(mut tail) = self.tail.take() {
                // A filtered answer's tail lists every line's seq: it too goes out in pieces.
                let room = POLL_PIECE_BYTES.saturating_sub(out.len()).max(1024);
                if tail.len() > room {
                    let rest = tail.split_off(room);
                    self.tail = Some(rest);
                }
                out.extend_from_slice(&tail);
            }
        }
        (!out.is_empty()).then(|| actix_web::web::Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of some slices as serde serializes them: what the bulk escaping must equal.
    struct LinesOf<'a>(&'a [BatchSlice]);

    impl Serialize for LinesOf<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.iter().flat_map(BatchSlice::lines))
        }
    }

    #[test]
    fn a_poll_answer_in_pieces_is_the_poll_answer() {
        let mut lines = crate::tail::LineBatch::default();
        for i in 0..5000 {
            lines.push(
                &format!("line {i} with \"quotes\" and \u{1b}[31mcolour"),
                i % 97 == 0,
            );
        }
        let batch = std::sync::Arc::new(Batch::new(11, lines));
        let slices = vec![
            BatchSlice {
                batch: batch.clone(),
                range: 3..2000,
            },
            BatchSlice {
                batch,
                range: 2000..5000,
            },
        ];
        for (gap, reset, with_seqs) in [
            (None, None, false),
            (Some(Gap { from: 2, to: 13 }), Some("epoch"), true),
        ] {
            let meta = || PollMeta {
                file: "a.log",
                epoch: 77,
                last_seq: 5010,
                cursor: "77-5010".into(),
                gap,
                reset,
                with_seqs,
            };
            let pieces: Vec<_> =
                PollPieces::new(PollFormat::Json, slices.clone(), meta()).collect();
            assert!(pieces.len() > 5, "{} pieces", pieces.len());
            assert!(pieces.iter().all(|p| p.len() < POLL_PIECE_BYTES + 1024));
            let streamed: Vec<u8> = pieces.concat();
            let whole = serde_json::to_vec(&crate::protocol::PollAnswer {
                file: "a.log",
                epoch: 77,
                lines: LinesOf(&slices),
                first_seq: Some(14),
                last_seq: 5010,
                cursor: "77-5010",
                gap: gap.map(gap_range),
                seqs: with_seqs.then(|| super::super::filter::seqs_of(&slices)),
                times: times_of(&slices),
                truncated: truncated_seqs(&slices),
                reset: reset.is_some(),
                reset_reason: reset,
            })
            .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&streamed),
                String::from_utf8_lossy(&whole)
            );
        }
        // An empty answer is still whole JSON.
        let meta = PollMeta {
            file: "a.log",
            epoch: 1,
            last_seq: 9,
            cursor: "1-9".into(),
            gap: None,
            reset: None,
            with_seqs: false,
        };
        let empty: Vec<u8> = PollPieces::new(PollFormat::Json, Vec::new(), meta)
            .collect::<Vec<_>>()
            .concat();
        let v: serde_json::Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(v["lines"], serde_json::json!([]));
        assert_eq!(v["first_seq"], serde_json::Value::Null);
    }

    #[test]
    fn times_name_each_read_once_and_a_whole_batch_frame_carries_its_time() {
        let batch = |first_seq: u64, n: usize, time_ms: u64| {
            let mut lines = crate::tail::LineBatch::default();
            for i in 0..n {
                lines.push(&format!("l{i}"), false);
            }
            std::sync::Arc::new(Batch::read_at(first_seq, lines, time_ms))
        };
        let (a, b, c) = (batch(1, 3, 1000), batch(4, 2, 1000), batch(6, 4, 2500));
        let slices = vec![
            BatchSlice {
                batch: a.clone(),
                range: 1..3,
            },
            BatchSlice {
                batch: b,
                range: 0..2,
            },
            BatchSlice {
                batch: c.clone(),
                range: 0..0,
            },
            BatchSlice {
                batch: c.clone(),
                range: 1..4,
            },
        ];
        // Two reads with the same millisecond are one run; an empty slice names nothing.
        assert_eq!(times_of(&slices), vec![(2, 1000), (7, 2500)]);
        let frame: serde_json::Value =
            serde_json::from_slice(ws_out::payload(&whole_batch_frame("f", &c))).unwrap();
        assert_eq!(frame["time"], 2500);
        assert!(frame.get("times").is_none(), "{frame}");
        let part: serde_json::Value =
            serde_json::from_str(&lines_frame("f", 2, &slices[..1])).unwrap();
        assert_eq!(
            (part["seq"].as_u64(), part["time"].as_u64()),
            (Some(2), Some(1000))
        );
        let filtered: serde_json::Value =
            serde_json::from_str(&filtered_lines_frame("f", &slices)).unwrap();
        assert_eq!(filtered["time"], 1000);
        assert_eq!(filtered["times"], serde_json::json!([[2, 1000], [7, 2500]]));
    }

    #[test]
    fn frames_are_byte_for_byte_what_serde_would_write_for_any_line_and_file_id() {
        let mut lines = crate::tail::LineBatch::default();
        for line in [
            "plain",
            "",
            "tab\tquote\"back\\",
            "ctl \u{1}\u{1f}",
            "é ✓ 😀",
            "\"lines\":[]",
        ] {
            lines.push(line, false);
        }
        let batch = std::sync::Arc::new(Batch::new(3, lines));
        let whole = [BatchSlice {
            batch: batch.clone(),
            range: 0..6,
        }];
        for file in ["a.log", "x\"lines\":[]y", "\"lines\":[]"] {
            let times = times_of(&whole);
            let want = serde_json::to_string(&LinesMessage {
                kind: "lines",
                file,
                seq: 3,
                time: times.first().map_or(0, |&(_, t)| t),
                lines: LinesOf(&whole),
                seqs: None,
                times: None,
                truncated: Vec::new(),
            })
            .unwrap();
            assert_eq!(lines_frame(file, 3, &whole), want, "{file}");
            assert_eq!(
                &batch_frame(file, &batch)[ws_out::MAX_HEADER..],
                want.as_bytes()
            );
            assert_eq!(
                lines_ws_frame(file, 3, &whole),
                ws_out::text(&want),
                "{file}"
            );
            assert_eq!(
                whole_batch_frame(file, &Batch::new(3, batch.lines.clone())),
                ws_out::text(&want),
                "{file}"
            );
        }
    }

    #[test]
    fn a_whole_batch_frame_escapes_lines_lists_truncated_seqs_and_is_built_once() {
        let mut lines = crate::tail::LineBatch::default();
        lines.push("a \"quoted\" <b>", false);
        lines.push("cut", true);
        let batch = Batch::new(7, lines);
        let frame = whole_batch_frame("f", &batch);
        let v: serde_json::Value = serde_json::from_slice(ws_out::payload(&frame)).unwrap();
        assert_eq!(v["type"], "lines");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["lines"][0], "a \"quoted\" <b>");
        assert_eq!(v["truncated"][0], 8);
        let again = whole_batch_frame("f", &batch);
        assert!(
            std::ptr::eq(frame.as_ptr(), again.as_ptr()),
            "the second client got the same buffer"
        );
    }
}
