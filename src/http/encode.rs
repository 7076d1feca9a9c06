//! Encoding what the history holds into wire messages: `lines` frames and long-poll answers.
//!
//! The history keeps lines and file states only; it knows no wire format. A whole batch's
//! WebSocket frame is built here the first time a client needs it and cached with the batch
//! ([`whole_batch_frame`]), so however many clients read it, it is serialized once.

use bytestring::ByteString;
use serde::{Serialize, Serializer};

use crate::hub::{Batch, BatchSlice, Gap};
use crate::protocol::{GapRange, LinesMessage};

/// Serializes the lines of some slices as one JSON array without copying them first.
pub struct LinesOf<'a>(pub &'a [BatchSlice]);

impl Serialize for LinesOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().flat_map(BatchSlice::lines))
    }
}

/// Seqs of truncated lines in some slices.
pub fn truncated_seqs(slices: &[BatchSlice]) -> Vec<u64> {
    slices.iter().flat_map(BatchSlice::truncated_seqs).collect()
}

/// The protocol's entry for a file.
pub fn file_info(file: crate::hub::FileSummary) -> crate::protocol::FileInfo {
    crate::protocol::FileInfo {
        id: file.id,
        path: file.path,
        exists: file.exists,
        size: file.size,
        last_seq: file.last_seq,
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
    let message = LinesMessage {
        kind: "lines",
        file,
        seq: first_seq,
        lines: LinesOf(slices),
        truncated: truncated_seqs(slices),
    };
    serde_json::to_string(&message).unwrap_or_default()
}

/// The `lines` message of a whole batch, built on first use and kept with the batch for every
/// other client.
pub fn whole_batch_frame(file: &str, batch: &Batch) -> ByteString {
    batch
        .encoded
        .get_or_init(|| ByteString::from(batch_frame(file, batch)))
        .clone()
}

fn batch_frame(file: &str, batch: &Batch) -> String {
    struct All<'a>(&'a crate::tail::LineBatch);
    impl Serialize for All<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.lines())
        }
    }
    let lines = &batch.lines;
    let message = LinesMessage {
        kind: "lines",
        file,
        seq: batch.first_seq,
        lines: All(lines),
        truncated: lines
            .truncated()
            .iter()
            .map(|&i| batch.first_seq + u64::from(i))
            .collect(),
    };
    // Sized for the usual case (quotes and commas, little to escape), so that it is allocated
    // once and kept without spare capacity.
    let mut frame = Vec::with_capacity(Batch::encoded_estimate(lines) + file.len());
    if serde_json::to_writer(&mut frame, &message).is_err() {
        return String::new();
    }
    frame.shrink_to_fit();
    // serde_json writes valid UTF-8.
    String::from_utf8(frame).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_batch_frame_escapes_lines_lists_truncated_seqs_and_is_built_once() {
        let mut lines = crate::tail::LineBatch::default();
        lines.push("a \"quoted\" <b>", false);
        lines.push("cut", true);
        let batch = Batch::new(7, lines);
        let frame = whole_batch_frame("f", &batch);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
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
