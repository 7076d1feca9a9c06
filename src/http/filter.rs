//! Server-side filtering, like `tail -F | grep`: `grep=REGEX` (with `grep_invert=1`, like
//! `grep -v`) on `/poll`, `/sse`, `/follow`, and `"grep"` in the WebSocket's `subscribe`.
//!
//! A filter keeps the lines that match and drops the others; the kept lines keep their seqs, and
//! the reader's cursor still moves past every line it scanned, so a client resumes exactly where
//! it stopped and a long run of lines that do not match is no gap. The pattern is the `regex`
//! crate's syntax (`(?i)` for case-insensitive), matched against each line's text (without its
//! line ending); matching is linear in the line's length, and what one pattern may cost is
//! bounded: its length (`--max-grep-bytes`), its compiled size ([`COMPILED_BYTES`]) and its lazy
//! DFA's cache ([`DFA_BYTES`]).

use super::error::ApiError;
use crate::hub::{BatchSlice, Delivery};

/// Most bytes a compiled pattern may take (the `regex` crate refuses a larger one).
pub const COMPILED_BYTES: usize = 1 << 20;
/// Most bytes of the lazy DFA's cache per pattern (past it the cache is cleared and rebuilt).
pub const DFA_BYTES: usize = 1 << 20;

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Longer than the server allows.
    #[error(
        "the pattern is {len} bytes, more than the server's limit ({max}, --max-grep-bytes): \
         give a shorter one"
    )]
    TooLong {
        /// The pattern's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a regular expression, or too big once compiled.
    #[error("the pattern is not a regular expression the server takes: {0}")]
    Invalid(String),
}

/// Compiles the `grep` and `grep_invert` of a query (none without `grep`), naming `grep` in the
/// error.
pub fn from_query(
    grep: Option<&str>,
    invert: bool,
    max_bytes: usize,
) -> Result<Option<LineFilter>, ApiError> {
    grep.map(|pattern| LineFilter::new(pattern, invert, max_bytes))
        .transpose()
        .map_err(|e| ApiError::BadParam {
            name: "grep",
            message: e.to_string(),
        })
}

/// A compiled `grep` (cheap to clone: the compiled pattern is shared).
#[derive(Debug, Clone)]
pub struct LineFilter {
    regex: regex::Regex,
    invert: bool,
}

impl LineFilter {
    /// Compiles `pattern`, at most `max_bytes` long; `invert` keeps the lines it does not match.
    pub fn new(pattern: &str, invert: bool, max_bytes: usize) -> Result<LineFilter, FilterError> {
        if pattern.len() > max_bytes {
            return Err(FilterError::TooLong {
                len: pattern.len(),
                max: max_bytes,
            });
        }
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(COMPILED_BYTES)
            .dfa_size_limit(DFA_BYTES)
            .build()
            .map_err(|e| FilterError::Invalid(e.to_string()))?;
        Ok(LineFilter { regex, invert })
    }

    /// The pattern as given.
    pub fn pattern(&self) -> &str {
        self.regex.as_str()
    }

    /// Makes this a `grep_invert` (or not).
    pub fn set_inverted(&mut self, invert: bool) {
        self.invert = invert;
    }

    /// True when the line is kept.
    pub fn keeps(&self, line: &str) -> bool {
        self.regex.is_match(line) != self.invert
    }

    /// The kept lines of `slice`, as runs of consecutive lines, appended to `out`.
    pub fn keep_of(&self, slice: &BatchSlice, out: &mut Vec<BatchSlice>) {
        let mut run: Option<usize> = None;
        for index in slice.range.clone() {
            let kept = self.keeps(slice.batch.lines.line(index));
            match (kept, run) {
                (true, None) => run = Some(index),
                (false, Some(start)) => {
                    out.push(sub_slice(slice, start, index));
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(start) = run {
            out.push(sub_slice(slice, start, slice.range.end));
        }
    }

    /// What a reader is sent of `deliveries`: the kept lines (each run its own
    /// [`Delivery::Lines`]), gaps and file states as they are, in order; no pending line.
    pub fn deliveries(&self, deliveries: Vec<Delivery>) -> Vec<Delivery> {
        let mut out = Vec::with_capacity(deliveries.len());
        let mut runs = Vec::new();
        for delivery in deliveries {
            match delivery {
                Delivery::Lines(slice) => {
                    self.keep_of(&slice, &mut runs);
                    out.extend(runs.drain(..).map(Delivery::Lines));
                }
                // An unfinished line may or may not match once whole: a filtered view shows
                // whole lines only.
                Delivery::Pending { .. } => {}
                other => out.push(other),
            }
        }
        out
    }
}

/// What a reader is sent of `deliveries` through an optional filter.
pub fn apply(filter: Option<&LineFilter>, deliveries: Vec<Delivery>) -> Vec<Delivery> {
    match filter {
        Some(filter) => filter.deliveries(deliveries),
        None => deliveries,
    }
}

fn sub_slice(slice: &BatchSlice, start: usize, end: usize) -> BatchSlice {
    BatchSlice {
        batch: slice.batch.clone(),
        range: start..end,
    }
}

/// The seqs of the lines of `slices`, in order (a filtered answer's lines are not consecutive).
pub fn seqs_of(slices: &[BatchSlice]) -> Vec<u64> {
    slices
        .iter()
        .flat_map(|s| s.first_seq()..s.first_seq() + s.len() as u64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Batch;
    use std::sync::Arc;

    fn slice(first_seq: u64, lines: &[&str]) -> BatchSlice {
        let mut batch = crate::tail::LineBatch::default();
        for line in lines {
            batch.push(line, false);
        }
        let batch = Arc::new(Batch::new(first_seq, batch));
        BatchSlice {
            range: 0..batch.lines.len(),
            batch,
        }
    }

    #[test]
    fn kept_lines_come_as_runs_with_their_seqs() {
        let s = slice(10, &["a1", "b", "a2", "a3", "c", "a4"]);
        let filter = LineFilter::new("^a", false, 100).unwrap();
        let mut runs = Vec::new();
        filter.keep_of(&s, &mut runs);
        let lines: Vec<&str> = runs.iter().flat_map(BatchSlice::lines).collect();
        assert_eq!(lines, ["a1", "a2", "a3", "a4"]);
        assert_eq!(seqs_of(&runs), [10, 12, 13, 15]);
        assert_eq!(runs.len(), 3);
        let invert = LineFilter::new("^a", true, 100).unwrap();
        let mut runs = Vec::new();
        invert.keep_of(&s, &mut runs);
        assert_eq!(seqs_of(&runs), [11, 14]);
        // Part of a batch: only that part is looked at.
        let part = s.from_seq(13);
        let mut runs = Vec::new();
        filter.keep_of(&part, &mut runs);
        assert_eq!(seqs_of(&runs), [13, 15]);
    }

    #[test]
    fn bad_long_and_huge_patterns_are_refused_with_the_reason() {
        let err = LineFilter::new("a(b", false, 100).unwrap_err();
        assert!(err.to_string().contains("unclosed group"), "{err}");
        let err = LineFilter::new(&"a".repeat(101), false, 100).unwrap_err();
        assert_eq!(err, FilterError::TooLong { len: 101, max: 100 });
        let err = LineFilter::new(r"\w{1000}\w{1000}", false, 100).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
    }
}
