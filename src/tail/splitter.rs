//! The pure line splitter: bytes in, whole lines out.
//!
//! Owns the rules that turn a byte stream into log lines: split on `\n`, drop one `\r` before it
//! (also when `\r` and `\n` arrive in different reads), hold an unfinished last line until its
//! newline comes or the caller flushes it, cap a line at `max_line_bytes` (the rest of that line
//! is discarded and the line is marked truncated), and turn invalid UTF-8 into U+FFFD.
//! It knows nothing of files or time; the follower decides when to flush.

/// Lines produced by one or more [`LineSplitter::feed`] calls, stored without a per-line
/// allocation: every line's text lives in one `String`, `ends[i]` is the end of line `i` in it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineBatch {
    text: String,
    ends: Vec<u32>,
    truncated: Vec<u32>,
}

impl LineBatch {
    /// Number of lines in the batch.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the batch holds no line.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of line text held (without separators).
    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }

    /// Bytes of text of lines `range` (indexes within the batch).
    pub fn text_bytes_of(&self, range: std::ops::Range<usize>) -> usize {
        if range.is_empty() {
            return 0;
        }
        let start = match range.start {
            0 => 0,
            i => self.ends[i - 1] as usize,
        };
        self.ends[range.end - 1] as usize - start
    }

    /// The lines `range` as one run of text: all the batch's text, the offset in it where line
    /// `range.start` begins, and where each line of `range` ends (lines are held back to back,
    /// without separators). For encoders that treat a run of lines at once.
    pub fn run(&self, range: std::ops::Range<usize>) -> (&str, usize, &[u32]) {
        let start = match range.start {
            0 => 0,
            i => self
                .ends
                .get(i - 1)
                .map_or(self.text.len(), |&end| end as usize),
        };
        let ends = self.ends.get(range).unwrap_or_default();
        (&self.text, start, ends)
    }

    /// Line `index` (0-based within the batch).
    pub fn line(&self, index: usize) -> &str {
        let start = if index == 0 {
            0
        } else {
            self.ends[index - 1] as usize
        };
        &self.text[start..self.ends[index] as usize]
    }

    /// All lines, in order.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(move |i| self.line(i))
    }

    /// Indexes (within the batch) of lines that were cut at the length cap.
    pub fn truncated(&self) -> &[u32] {
        &self.truncated
    }

    /// Bytes allocated for the batch (what it costs to keep it).
    pub fn allocated_bytes(&self) -> usize {
        self.text.capacity() + (self.ends.capacity() + self.truncated.capacity()) * 4
    }

    /// Gives back spare capacity, for a batch about to be kept for a while.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.truncated.shrink_to_fit();
    }

    /// Makes room for `additional` more bytes of text, so a read's lines are copied once.
    pub fn reserve(&mut self, additional: usize) {
        self.text.reserve(additional);
    }

    /// Removes every line, keeping the allocations.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.truncated.clear();
    }

    /// Appends one line (already valid UTF-8).
    pub fn push(&mut self, line: &str, truncated: bool) {
        if truncated {
            self.truncated.push(self.ends.len() as u32);
        }
        self.text.push_str(line);
        self.ends.push(self.text.len() as u32);
    }

    fn push_bytes(&mut self, bytes: &[u8], truncated: bool) {
        match simdutf8::basic::from_utf8(bytes) {
            Ok(line) => self.push(line, truncated),
            Err(_) => self.push(&String::from_utf8_lossy(bytes), truncated),
        }
    }
}

/// Splits a byte stream into lines; see the module documentation for the rules.
#[derive(Debug)]
pub struct LineSplitter {
    max_line_bytes: usize,
    /// Bytes of the unfinished last line (at most `max_line_bytes`).
    partial: Vec<u8>,
    /// The unfinished line went over the cap: its remaining bytes are being discarded.
    partial_over_cap: bool,
    /// The last byte fed into the unfinished line (kept or discarded over the cap) was `\r`.
    partial_ends_in_cr: bool,
    /// The last flush emitted a line whose input ended in `\r`; a `\n` arriving next belongs
    /// to it.
    flushed_after_cr: bool,
    /// Input bytes fed since the last line ended (kept or discarded): where the unfinished line
    /// starts, counted back from the end of what was fed.
    pending_bytes: u64,
}

impl LineSplitter {
    /// A splitter that caps lines at `max_line_bytes` (at least 1).
    pub fn new(max_line_bytes: usize) -> Self {
        LineSplitter {
            max_line_bytes: max_line_bytes.max(1),
            partial: Vec::new(),
            partial_over_cap: false,
            partial_ends_in_cr: false,
            flushed_after_cr: false,
            pending_bytes: 0,
        }
    }

    /// Input bytes fed since the last line ended: the unfinished line's length in the input
    /// (before the cap), so that `bytes fed - pending_bytes()` is where it starts.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// The unfinished line held so far (capped, `\r` kept), for showing before it is complete.
    pub fn partial_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(cap_utf8(&self.partial, self.max_line_bytes))
    }

    /// Bytes of the unfinished line held (at most one more than the cap).
    pub fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// True when an unfinished line is being held.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.partial_over_cap
    }

    /// Splits `bytes`, appending every completed line to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut LineBatch) {
        if bytes.is_empty() {
            return;
        }
        if self.flushed_after_cr {
            self.flushed_after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        let Some(last) = memchr::memrchr(b'\n', bytes) else {
            self.pending_bytes += bytes.len() as u64;
            self.append_partial(bytes);
            return;
        };
        self.pending_bytes = (bytes.len() - last - 1) as u64;
        let (mut whole, rest) = bytes.split_at(last + 1);
        if self.has_partial() {
            // The first newline ends the line held from earlier reads.
            let newline = memchr::memchr(b'\n', whole).unwrap_or(whole.len() - 1);
            self.append_partial(&whole[..newline]);
            self.emit_partial(out, true);
            whole = &whole[newline + 1..];
        }
        out.reserve(whole.len());
        // The usual case, every line valid UTF-8, is checked once for the whole run of lines (with
        // SIMD, by simdutf8); lines are then cut at newlines, which are never inside a character.
        let text = simdutf8::basic::from_utf8(whole).ok();
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', whole) {
            let line = strip_cr(&whole[start..newline]);
            let over = line.len() > self.max_line_bytes;
            match text {
                Some(text) => {
                    let line = &text[start..start + line.len()];
                    out.push(
                        if over {
                            cap_str(line, self.max_line_bytes)
                        } else {
                            line
                        },
                        over,
                    );
                }
                None => {
                    let line = if over {
                        cap_utf8(line, self.max_line_bytes)
                    } else {
                        line
                    };
                    out.push_bytes(line, over);
                }
            }
            start = newline + 1;
        }
        self.append_partial(rest);
    }

    /// Emits the unfinished line, if any, as a line of its own (idle timeout, rotation, EOF).
    pub fn flush(&mut self, out: &mut LineBatch) {
        if self.has_partial() {
            self.flushed_after_cr = self.partial_ends_in_cr;
            self.emit_partial(out, true);
        }
        self.pending_bytes = 0;
    }

    fn append_partial(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.partial_ends_in_cr = bytes.last() == Some(&b'\r');
        // Keep one byte beyond the cap so that a `\r` at the cap boundary can still be stripped.
        let room = (self.max_line_bytes + 1).saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.partial.extend_from_slice(&bytes[..room]);
            self.partial_over_cap = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    fn emit_partial(&mut self, out: &mut LineBatch, strip: bool) {
        let mut line: &[u8] = &self.partial;
        if strip && !self.partial_over_cap {
            line = strip_cr(line);
        }
        let over = self.partial_over_cap || line.len() > self.max_line_bytes;
        if over {
            out.push_bytes(cap_utf8(line, self.max_line_bytes), true);
        } else {
            out.push_bytes(line, false);
        }
        self.partial.clear();
        self.partial_over_cap = false;
        self.partial_ends_in_cr = false;
    }
}

/// The first `max` bytes of `line`, shortened to a character boundary.
fn cap_str(line: &str, max: usize) -> &str {
    let mut end = max.min(line.len());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// A line read back from disk as the tail shows it: without its `\n` and `\r`, at most `max`
/// bytes (no UTF-8 sequence cut), invalid UTF-8 as U+FFFD; true when it was cut.
pub fn line_text(raw: &[u8], max: usize) -> (String, bool) {
    let line = strip_cr(raw.strip_suffix(b"\n").unwrap_or(raw));
    let capped = cap_utf8(line, max);
    (
        String::from_utf8_lossy(capped).into_owned(),
        capped.len() < line.len(),
    )
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The first `max` bytes of `line`, shortened further so that no UTF-8 sequence is cut in half.
fn cap_utf8(line: &[u8], max: usize) -> &[u8] {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    // Walk back over continuation bytes (10xxxxxx) to a sequence start, at most 3 steps.
    let mut steps = 0;
    while end > 0 && steps < 4 && (line[end] & 0b1100_0000) == 0b1000_0000 {
        end -= 1;
        steps += 1;
    }
    if steps == 4 {
        // Not UTF-8 here anyway; cut at the cap and let lossy decoding mark it.
        end = max;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_bytes_say_where_the_unfinished_line_starts() {
        let mut splitter = LineSplitter::new(4);
        let mut out = LineBatch::default();
        splitter.feed(b"one\ntw", &mut out);
        assert_eq!(splitter.pending_bytes(), 2);
        // Past the cap the bytes are dropped but still counted: they are in the file.
        splitter.feed(b"o and more", &mut out);
        assert_eq!(splitter.pending_bytes(), 12);
        assert_eq!(splitter.partial_text(), "two ");
        splitter.feed(b"\nthree\n", &mut out);
        assert_eq!(splitter.pending_bytes(), 0);
        splitter.feed(b"x\r", &mut out);
        splitter.flush(&mut out);
        assert_eq!(splitter.pending_bytes(), 0);
        // The `\n` of a flushed `\r` belongs to the flushed line.
        splitter.feed(b"\nab", &mut out);
        assert_eq!(splitter.pending_bytes(), 2);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["one", "two ", "thre", "x"]
        );
    }

    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<String>, Vec<u32>) {
        let mut splitter = LineSplitter::new(max);
        let mut out = LineBatch::default();
        for chunk in chunks {
            splitter.feed(chunk, &mut out);
        }
        (
            out.lines().map(str::to_owned).collect(),
            out.truncated().to_vec(),
        )
    }

    #[test]
    fn splits_complete_lines_and_holds_the_partial_one() {
        let mut splitter = LineSplitter::new(100);
        let mut out = LineBatch::default();
        splitter.feed(b"one\ntwo\nthr", &mut out);
        assert_eq!(out.lines().collect::<Vec<_>>(), ["one", "two"]);
        assert!(splitter.has_partial());
        splitter.feed(b"ee\n", &mut out);
        assert_eq!(out.lines().collect::<Vec<_>>(), ["one", "two", "three"]);
        assert!(!splitter.has_partial());
    }

    #[test]
    fn line_in_three_pieces_arrives_whole() {
        assert_eq!(split(100, &[b"ab", b"cd", b"ef\n"]).0, ["abcdef"]);
    }

    #[test]
    fn crlf_is_stripped_even_across_reads() {
        assert_eq!(split(100, &[b"a\r\nb\r", b"\nc\r\n"]).0, ["a", "b", "c"]);
    }

    #[test]
    fn a_lone_cr_inside_a_line_is_kept() {
        assert_eq!(split(100, &[b"a\rb\n"]).0, ["a\rb"]);
    }

    #[test]
    fn empty_lines_are_lines() {
        assert_eq!(split(100, &[b"\n\n"]).0, ["", ""]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(split(100, &[b"a\xffb\n"]).0, ["a\u{FFFD}b"]);
    }

    #[test]
    fn long_lines_are_capped_and_marked_in_one_read_and_across_reads() {
        let (lines, truncated) = split(4, &[b"abcdefgh\nok\n"]);
        assert_eq!(lines, ["abcd", "ok"]);
        assert_eq!(truncated, [0]);
        let (lines, truncated) = split(4, &[b"ab", b"cdef", b"gh\nok\n"]);
        assert_eq!(lines, ["abcd", "ok"]);
        assert_eq!(truncated, [0]);
    }

    #[test]
    fn a_line_exactly_at_the_cap_with_crlf_is_not_truncated() {
        let (lines, truncated) = split(4, &[b"abcd\r", b"\n"]);
        assert_eq!(lines, ["abcd"]);
        assert!(truncated.is_empty());
    }

    #[test]
    fn capping_never_cuts_a_utf8_sequence_in_half() {
        // "é" is two bytes; a cap of 2 after "a" would cut it.
        let (lines, truncated) = split(2, &["aé\n".as_bytes()]);
        assert_eq!(lines, ["a"]);
        assert_eq!(truncated, [0]);
    }

    #[test]
    fn flush_emits_the_partial_and_a_late_newline_is_not_an_extra_line() {
        let mut splitter = LineSplitter::new(100);
        let mut out = LineBatch::default();
        splitter.feed(b"last\r", &mut out);
        splitter.flush(&mut out);
        splitter.feed(b"\nnext\n", &mut out);
        assert_eq!(out.lines().collect::<Vec<_>>(), ["last", "next"]);
    }
}

#[cfg(test)]
mod cap_boundary_tests {
    use super::*;

    #[test]
    fn lines_at_just_under_the_cap_in_any_chunking_are_counted() {
        let line = format!("{}\n", "y".repeat(65535));
        let data = line.repeat(64);
        for chunk in [1000usize, 4096, 65535, 65536, 65537, 100_000, 131_072] {
            let mut s = LineSplitter::new(65536);
            let mut out = LineBatch::default();
            for piece in data.as_bytes().chunks(chunk) {
                s.feed(piece, &mut out);
            }
            assert_eq!(out.len(), 64, "chunk {chunk}");
            assert!(out.truncated().is_empty(), "chunk {chunk}");
        }
    }
}
