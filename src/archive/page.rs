//! Reading lines of one generation back from disk, by byte position: the lines before a
//! position (walking backwards in chunks, like `tac`, never loading the file whole) and the
//! lines after one. A gzip generation cannot be read backwards: it is decompressed from its
//! start, keeping only the page being made.
//!
//! Positions are byte offsets of line starts in the generation's (decompressed) bytes. A
//! position inside a line counts as that line's end for `before` and as the next line's start
//! for `after`, so any offset a client sends gives whole lines.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::time::Instant;

use super::generation::Generation;
use super::ArchiveError;

/// Bytes read at once when walking a file.
const CHUNK: usize = 64 * 1024;

/// One line read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// Offset of its first byte in the generation.
    pub offset: u64,
    /// Offset just past its newline (or the end of the generation).
    pub end: u64,
    /// Its bytes, newline included, at most the line cap (and 2 more for `\r\n`).
    pub bytes: Vec<u8>,
    /// Its number in the generation (1 = first line), where it is known.
    pub number: Option<u64>,
}

/// What a read may take.
#[derive(Debug, Clone, Copy)]
pub struct PageBounds {
    /// Most lines.
    pub max_lines: usize,
    /// Most bytes of line text (at least one line is returned).
    pub max_bytes: usize,
    /// Longest line kept (the rest is cut, as the tail cuts it).
    pub max_line: usize,
    /// Give up (with an error) past this instant.
    pub deadline: Instant,
}

/// Lines read one way from a position.
#[derive(Debug, Default)]
pub struct Lines {
    /// The lines, in file order.
    pub lines: Vec<RawLine>,
    /// The generation's first (for `before`) or last (for `after`) line is among them, or
    /// there was none to read.
    pub reached_edge: bool,
}

/// The end of what a generation's pages show: for the file at the path, the end of its last
/// complete line (an unfinished one is still being written); for a rotated one, its size.
pub fn readable_end(generation: &Generation, bounds: &PageBounds) -> Result<u64, ArchiveError> {
    if generation.compressed {
        // Only known by decompressing; `lines_after` and `lines_before` stop at the end anyway.
        return Ok(u64::MAX);
    }
    let file = generation.open_plain()?;
    let size = file.metadata().map_err(|e| generation.error(e))?.len();
    if !generation.current {
        return Ok(size);
    }
    let mut pos = size;
    let mut chunk = vec![0; CHUNK];
    while pos > 0 {
        check(bounds, generation)?;
        let lo = pos.saturating_sub(CHUNK as u64);
        let buf = read_exact_at(&file, &mut chunk, lo, pos, generation)?;
        if let Some(i) = memchr::memrchr(b'\n', buf) {
            return Ok(lo + i as u64 + 1);
        }
        pos = lo;
    }
    Ok(0)
}

/// The lines that end at or before `end` (moved to the end of the line it falls in), the
/// nearest ones, in file order.
pub fn lines_before(
    generation: &Generation,
    end: u64,
    bounds: &PageBounds,
) -> Result<Lines, ArchiveError> {
    if generation.compressed {
        return gzip_lines_before(generation, end, bounds);
    }
    let file = generation.open_plain()?;
    // The file at the path ends, for pages, at its last complete line: an unfinished one is
    // still being written (it comes when its newline does).
    let size = if generation.current {
        readable_end(generation, bounds)?
    } else {
        file.metadata().map_err(|e| generation.error(e))?.len()
    };
    let end = line_end_at_or_after(&file, end.min(size), size, bounds, generation)?;
    let keep = bounds.max_line + 2;
    let mut out: Vec<RawLine> = Vec::new();
    let mut text_bytes = 0;
    // The line being assembled: its known first bytes (at most `keep`), and where it ends.
    let mut carry: Vec<u8> = Vec::new();
    let mut carry_len: u64 = 0;
    let mut line_end = end;
    let mut pos = end;
    let mut chunk = vec![0; CHUNK];
    let full = |out: &Vec<RawLine>, text_bytes: usize| {
        out.len() >= bounds.max_lines || (text_bytes >= bounds.max_bytes && !out.is_empty())
    };
    while pos > 0 && !full(&out, text_bytes) {
        check(bounds, generation)?;
        let lo = pos.saturating_sub(CHUNK as u64);
        let buf = read_exact_at(&file, &mut chunk, lo, pos, generation)?;
        let mut seg_end = buf.len();
        for i in memchr::memrchr_iter(b'\n', buf) {
            let at = lo + i as u64;
            if at + 1 == line_end {
                // The newline that ends the line being assembled, not one before it.
                continue;
            }
            let start = at + 1;
            let mut bytes = buf[i + 1..seg_end].to_vec();
            bytes.extend_from_slice(&carry);
            bytes.truncate(keep);
            text_bytes += (line_end - start) as usize;
            out.push(RawLine {
                offset: start,
                end: line_end,
                bytes,
                number: None,
            });
            carry.clear();
            carry_len = 0;
            line_end = start;
            seg_end = i + 1;
            if full(&out, text_bytes) {
                break;
            }
        }
        if full(&out, text_bytes) {
            break;
        }
        // The rest of the chunk begins the line being assembled: keep its first bytes only.
        let mut joined = buf[..seg_end].to_vec();
        joined.extend_from_slice(&carry);
        joined.truncate(keep);
        carry = joined;
        carry_len += seg_end as u64;
        pos = lo;
    }
    let mut reached_edge = false;
    if pos == 0 && !full(&out, text_bytes) {
        if line_end > 0 {
            debug_assert_eq!(carry_len, line_end);
            out.push(RawLine {
                offset: 0,
                end: line_end,
                bytes: carry,
                number: Some(1),
            });
        }
        reached_edge = true;
    }
    out.reverse();
    if out.first().is_some_and(|l| l.offset == 0) {
        reached_edge = true;
    }
    Ok(Lines {
        lines: out,
        reached_edge,
    })
}

/// The lines that start at or after `start` (moved to the next line start when it falls inside
/// a line), the nearest ones, up to `limit` (exclusive).
pub fn lines_after(
    generation: &Generation,
    start: u64,
    limit: u64,
    bounds: &PageBounds,
) -> Result<Lines, ArchiveError> {
    let (mut reader, mut pos, mut number): (Box<dyn BufRead>, u64, Option<u64>) =
        if generation.compressed {
            let mut reader = BufReader::with_capacity(CHUNK, generation.open()?);
            let (pos, number) = skip_to_line_start(&mut reader, start, bounds, generation)?;
            (Box::new(reader), pos, Some(number))
        } else {
            let file = generation.open_plain()?;
            let size = file.metadata().map_err(|e| generation.error(e))?.len();
            let start = start.min(size);
            let start = if start == 0 {
                0
            } else {
                let mut byte = [0u8];
                let got = file
                    .read_at(&mut byte, start - 1)
                    .map_err(|e| generation.error(e))?;
                if got == 1 && byte[0] != b'\n' {
                    line_end_at_or_after(&file, start, size, bounds, generation)?
                } else {
                    start
                }
            };
            let mut reader = BufReader::with_capacity(CHUNK, file);
            std::io::Seek::seek(&mut reader, io::SeekFrom::Start(start))
                .map_err(|e| generation.error(e))?;
            (Box::new(reader), start, (start == 0).then_some(1))
        };
    let mut out = Vec::new();
    let mut text_bytes = 0;
    loop {
        if out.len() >= bounds.max_lines || (text_bytes >= bounds.max_bytes && !out.is_empty()) {
            return Ok(Lines {
                lines: out,
                reached_edge: false,
            });
        }
        check(bounds, generation)?;
        let Some((bytes, len)) =
            read_line_capped(&mut reader, bounds.max_line + 2, bounds.deadline)
                .map_err(|e| read_error(generation, e))?
        else {
            break;
        };
        let complete = bytes.last() == Some(&b'\n');
        if pos + len > limit || (generation.current && !complete) {
            break;
        }
        text_bytes += len as usize;
        out.push(RawLine {
            offset: pos,
            end: pos + len,
            bytes,
            number,
        });
        pos += len;
        number = number.map(|n| n + 1);
    }
    Ok(Lines {
        lines: out,
        reached_edge: true,
    })
}

/// `before` in a gzip generation: decompress from the start, keeping the last page.
fn gzip_lines_before(
    generation: &Generation,
    end: u64,
    bounds: &PageBounds,
) -> Result<Lines, ArchiveError> {
    let mut reader = BufReader::with_capacity(CHUNK, generation.open()?);
    let mut kept: VecDeque<RawLine> = VecDeque::new();
    let mut text_bytes = 0;
    let mut pos = 0;
    let mut number = 1;
    while pos < end {
        check(bounds, generation)?;
        let Some((bytes, len)) =
            read_line_capped(&mut reader, bounds.max_line + 2, bounds.deadline)
                .map_err(|e| read_error(generation, e))?
        else {
            break;
        };
        text_bytes += len as usize;
        kept.push_back(RawLine {
            offset: pos,
            end: pos + len,
            bytes,
            number: Some(number),
        });
        while kept.len() > bounds.max_lines || (text_bytes > bounds.max_bytes && kept.len() > 1) {
            if let Some(old) = kept.pop_front() {
                text_bytes -= (old.end - old.offset) as usize;
            }
        }
        pos += len;
        number += 1;
    }
    let lines: Vec<RawLine> = kept.into();
    Ok(Lines {
        reached_edge: lines.first().map_or(true, |l| l.offset == 0),
        lines,
    })
}

/// Reads (and drops) a decompressed stream up to the first line start at or after `start`;
/// returns that position and its line number.
fn skip_to_line_start(
    reader: &mut impl BufRead,
    start: u64,
    bounds: &PageBounds,
    generation: &Generation,
) -> Result<(u64, u64), ArchiveError> {
    let mut pos = 0u64;
    let mut number = 1u64;
    let mut at_line_start = true;
    while pos < start || !at_line_start {
        check(bounds, generation)?;
        let buf = reader.fill_buf().map_err(|e| generation.error(e))?;
        if buf.is_empty() {
            break;
        }
        let want = if pos < start {
            buf.len().min((start - pos) as usize)
        } else {
            // Past `start` inside a line: up to its newline.
            memchr::memchr(b'\n', buf).map_or(buf.len(), |i| i + 1)
        };
        let taken = &buf[..want];
        number += memchr::memchr_iter(b'\n', taken).count() as u64;
        at_line_start = taken.last() == Some(&b'\n') || (pos == 0 && want == 0);
        pos += want as u64;
        reader.consume(want);
    }
    Ok((pos, number))
}

/// One line's first `keep` bytes (newline included when it fits) and its whole length; `None`
/// at the end of the stream.
fn read_line_capped(
    reader: &mut impl BufRead,
    keep: usize,
    deadline: Instant,
) -> io::Result<Option<(Vec<u8>, u64)>> {
    let mut bytes = Vec::new();
    let mut len = 0u64;
    loop {
        // A single line may be gigabytes long: the time limit holds inside it too.
        if len > 0 && Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "time limit"));
        }
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((len > 0).then_some((bytes, len)));
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = keep.saturating_sub(bytes.len());
        bytes.extend_from_slice(&buf[..take.min(room)]);
        if done && take > room {
            // Cut: keep the newline, so callers still know the line was whole.
            bytes.push(b'\n');
        }
        len += take as u64;
        reader.consume(take);
        if done {
            return Ok(Some((bytes, len)));
        }
    }
}

/// `pos` if it is a line end (0, the end of the data, or just after a newline); otherwise the
/// end of the line `pos` falls in.
fn line_end_at_or_after(
    file: &File,
    pos: u64,
    size: u64,
    bounds: &PageBounds,
    generation: &Generation,
) -> Result<u64, ArchiveError> {
    if pos == 0 || pos >= size {
        return Ok(pos.min(size));
    }
    let mut byte = [0u8];
    file.read_at(&mut byte, pos - 1)
        .map_err(|e| generation.error(e))?;
    if byte[0] == b'\n' {
        return Ok(pos);
    }
    let mut chunk = vec![0; CHUNK];
    let mut at = pos;
    while at < size {
        check(bounds, generation)?;
        let hi = (at + CHUNK as u64).min(size);
        let buf = read_exact_at(file, &mut chunk, at, hi, generation)?;
        if let Some(i) = memchr::memchr(b'\n', buf) {
            return Ok(at + i as u64 + 1);
        }
        at = hi;
    }
    Ok(size)
}

/// Reads bytes `lo..hi` of `file` into `chunk` (which has room for them).
fn read_exact_at<'a>(
    file: &File,
    chunk: &'a mut [u8],
    lo: u64,
    hi: u64,
    generation: &Generation,
) -> Result<&'a [u8], ArchiveError> {
    let want = (hi - lo) as usize;
    let buf = &mut chunk[..want];
    let mut filled = 0;
    while filled < want {
        match file.read_at(&mut buf[filled..], lo + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(generation.error(e)),
        }
    }
    Ok(&buf[..filled])
}

/// A read error, or the time limit reached inside a line.
fn read_error(generation: &Generation, error: io::Error) -> ArchiveError {
    if error.kind() == io::ErrorKind::TimedOut {
        ArchiveError::TooSlow {
            name: generation.name.clone(),
        }
    } else {
        generation.error(error)
    }
}

fn check(bounds: &PageBounds, generation: &Generation) -> Result<(), ArchiveError> {
    if Instant::now() > bounds.deadline {
        return Err(ArchiveError::TooSlow {
            name: generation.name.clone(),
        });
    }
    Ok(())
}

/// Counts the newlines of `generation` in `lo..hi` (a plain one).
pub fn count_lines(
    generation: &Generation,
    lo: u64,
    hi: u64,
    bounds: &PageBounds,
) -> Result<u64, ArchiveError> {
    let file = generation.open_plain()?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    std::io::Seek::seek(&mut reader, io::SeekFrom::Start(lo)).map_err(|e| generation.error(e))?;
    let mut left = hi.saturating_sub(lo);
    let mut count = 0;
    let mut take = reader.take(left);
    let mut buf = vec![0; 256 * 1024];
    while left > 0 {
        check(bounds, generation)?;
        let n = take.read(&mut buf).map_err(|e| generation.error(e))?;
        if n == 0 {
            break;
        }
        count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        left -= n as u64;
    }
    Ok(count)
}

/// Where the last `lines` lines before `end` start (the last of them ends at `end`), scanning
/// at most `max_scan` bytes back; `None` when there are fewer or they start further back.
pub fn start_of_lines_before(
    generation: &Generation,
    end: u64,
    lines: u64,
    max_scan: u64,
    bounds: &PageBounds,
) -> Result<Option<u64>, ArchiveError> {
    if lines == 0 {
        return Ok(Some(end));
    }
    let file = generation.open_plain()?;
    // The newline ending the last line (at `end - 1`) is not a line start.
    let mut pos = end.saturating_sub(1);
    let mut found = 0;
    let mut chunk = vec![0; CHUNK];
    let floor = end.saturating_sub(max_scan);
    while pos > floor {
        check(bounds, generation)?;
        let lo = pos.saturating_sub(CHUNK as u64).max(floor);
        let buf = read_exact_at(&file, &mut chunk, lo, pos, generation)?;
        for i in memchr::memrchr_iter(b'\n', buf) {
            found += 1;
            if found == lines {
                return Ok(Some(lo + i as u64 + 1));
            }
        }
        pos = lo;
    }
    Ok((pos == 0 && found + 1 == lines).then_some(0))
}
