//! Searching files' generations on disk with ripgrep's own crates (grep-regex's matcher,
//! grep-searcher's line-oriented search): the current file and, on request, its rotated
//! generations, newest first, each from its first line, hits handed out as they are found.
//!
//! Plain generations of at least [`MAP_AT_LEAST`] bytes are searched in place, through a memory
//! map ([`super::mapped`]: no copy from the page cache, and a file truncated meanwhile ends
//! that generation's search with an error saying from where its lines were not searched);
//! smaller ones and gzip ones are read.
//!
//! Bounded: the pattern's compiled size, hits per search, the time a search may take, the
//! longest line the searcher may hold, and a search stops within 20 ms of its client going.
//! Those checks live in the matcher ([`CheckedMatcher`]), which searches a haystack a window at
//! a time, so they run however the bytes come (a map makes no reads). The regex engine is
//! linear-time: no pattern can make a scan take longer than the bytes it reads.

use std::cell::Cell;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use grep_matcher::{ByteSet, LineMatchKind, LineTerminator, Match, Matcher, NoError};
use grep_regex::{RegexCaptures, RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{
    BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch,
};

use super::generation::Generation;
use super::mapped::MappedFile;
use super::{page, ArchiveError, ArchiveLimits, PageBounds};

/// Largest line the searcher holds in memory: a longer one ends that generation's search with
/// an error (the tail cuts lines far shorter).
const SEARCHER_HEAP: usize = 16 * 1024 * 1024;

/// Smallest plain generation searched through a map: below it, reading costs no more.
const MAP_AT_LEAST: u64 = 1 << 20;

/// Most bytes the matcher searches between two checks of the time, the client and the map.
const WINDOW: usize = 2 << 20;

/// Calls of the matcher's other methods between two checks (the line-by-line fast path that
/// this searcher's configuration uses calls them only to verify a candidate line).
const CALLS_BETWEEN_CHECKS: u32 = 1024;

/// How often a running search asks whether its client is still there.
const GONE_CHECK: Duration = Duration::from_millis(20);

/// How a pattern's case is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Exactly.
    Sensitive,
    /// Either case.
    Insensitive,
    /// Either case, unless the pattern has an upper-case letter (ripgrep's `--smart-case`).
    Smart,
}

/// What to search for.
#[derive(Debug, Clone)]
pub struct Query {
    /// The pattern.
    pub pattern: String,
    /// A regular expression (otherwise a literal string).
    pub regex: bool,
    /// Case matching.
    pub case: Case,
    /// Lines that do not match.
    pub invert: bool,
    /// Whole words only.
    pub word: bool,
    /// Lines of context before and after each hit.
    pub context: usize,
    /// Most hits.
    pub max_hits: usize,
}

/// A bad query.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

impl Query {
    /// The matcher, within the compiled-size limit.
    pub fn matcher(&self, limits: &ArchiveLimits) -> Result<RegexMatcher, QueryError> {
        RegexMatcherBuilder::new()
            .fixed_strings(!self.regex)
            .case_insensitive(self.case == Case::Insensitive)
            .case_smart(self.case == Case::Smart)
            .word(self.word)
            .size_limit(limits.regex_size)
            .dfa_size_limit(limits.regex_size * 4)
            .line_terminator(Some(b'\n'))
            .build(&self.pattern)
            .map_err(|e| QueryError(format!("the pattern does not compile: {e}")))
    }
}

/// One generation to search.
#[derive(Debug, Clone)]
pub struct Target {
    /// The file's id.
    pub file: String,
    /// The generation.
    pub generation: Generation,
    /// How the generation is named in grep-like output (`app.log`, `app.log.1`).
    pub label: String,
}

/// A line found (a hit or context around one).
#[derive(Debug, Clone)]
pub struct Found {
    /// Index of its target.
    pub target: usize,
    /// Offset of the line.
    pub offset: u64,
    /// Its line number in the generation.
    pub number: u64,
    /// Its text as the tail shows it.
    pub text: String,
    /// Cut at the line cap.
    pub truncated: bool,
}

/// What a search reports, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// The search of a target begins.
    Target(usize),
    /// A matching line.
    Hit(Found),
    /// A line around a hit.
    Context(Found),
    /// Lines before this are not next to the ones after (grep's `--`).
    Break,
    /// A target could not be read to its end.
    Failed(usize, ArchiveError),
}

/// Why a search ended before the end of its last target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It reached its most hits.
    MaxHits,
    /// It took longer than its time limit.
    TimeLimit,
    /// Its client went away.
    Gone,
}

/// How a search ended.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Hits found.
    pub hits: usize,
    /// Bytes read (decompressed).
    pub scanned_bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// Why it ended early, if it did.
    pub stopped: Option<Stopped>,
}

/// Searches `targets` in order, calling `emit` with what it finds (a `false` from `emit` means
/// the client is gone). `gone` is asked every [`GONE_CHECK`] while the search runs.
pub fn run(
    targets: &[Target],
    query: &Query,
    matcher: &RegexMatcher,
    limits: &ArchiveLimits,
    emit: &mut dyn FnMut(Event) -> bool,
    gone: &dyn Fn() -> bool,
) -> Summary {
    let mut open = |target: &Target, deadline: Instant| open_for_search(target, limits, deadline);
    run_with(
        targets, query, matcher, limits, emit, gone, &mut open, WINDOW,
    )
}

/// [`run`], each target's bytes from `open` (given the search's deadline), the matcher
/// searching `window` bytes between checks.
#[allow(clippy::too_many_arguments)]
fn run_with(
    targets: &[Target],
    query: &Query,
    matcher: &RegexMatcher,
    limits: &ArchiveLimits,
    emit: &mut dyn FnMut(Event) -> bool,
    gone: &dyn Fn() -> bool,
    open: &mut dyn FnMut(&Target, Instant) -> Result<Source, ArchiveError>,
    window: usize,
) -> Summary {
    let started = Instant::now();
    let deadline = started + limits.search_timeout;
    let searcher = |numbered: bool| {
        SearcherBuilder::new()
            .line_number(numbered)
            .invert_match(query.invert)
            .before_context(query.context)
            .after_context(query.context)
            .binary_detection(BinaryDetection::none())
            .heap_limit(Some(SEARCHER_HEAP))
            .build()
    };
    // The searcher numbers lines by counting them from one hit to the next when it reaches the
    // next: through a map, that would map again every page a scan has given back since the
    // last hit. Mapped, the matcher counts them as it goes instead (see `LineCount`).
    let mut reading = searcher(true);
    let mut mapping = searcher(false);
    let mut hits = 0;
    let mut scanned = 0;
    let mut stopped = None;
    for (ix, target) in targets.iter().enumerate() {
        if !emit(Event::Target(ix)) {
            stopped = Some(Stopped::Gone);
            break;
        }
        let (map, reader) = match open(target, deadline) {
            Ok(Source::Mapped(map)) => (Some(map), None),
            Ok(Source::Read(reader)) => (None, Some(reader)),
            Err(e) => {
                if !emit(Event::Failed(ix, e)) {
                    stopped = Some(Stopped::Gone);
                    break;
                }
                continue;
            }
        };
        let checked = CheckedMatcher {
            inner: matcher,
            deadline,
            gone,
            next_gone_check: Cell::new(Instant::now()),
            stop: Cell::new(None),
            calls: Cell::new(0),
            map: map.as_ref(),
            window: window.max(1),
            scanned_to: Cell::new(0),
            newlines: LineCount::default(),
        };
        let mut sink = Collect {
            target: ix,
            emit: &mut *emit,
            hits: &mut hits,
            max_hits: query.max_hits,
            max_line: limits.max_line,
            stop: None,
            map: map.as_ref(),
            lost: None,
            pending_break: false,
            newlines: &checked.newlines,
            numbered: (0, 0),
        };
        let (result, read) = match (reader, &map) {
            (Some(reader), _) => {
                let mut counted = Counted {
                    inner: reader,
                    read: 0,
                };
                let result = reading.search_reader(&checked, &mut counted, &mut sink);
                (result, counted.read)
            }
            (None, Some(map)) => {
                let result = mapping.search_slice(&checked, map.bytes(), &mut sink);
                let whole = result.is_ok() && map.lost_from().is_none();
                let read = if whole {
                    map.bytes().len()
                } else {
                    checked.scanned_to.get()
                };
                (result, read as u64)
            }
            (None, None) => (Ok(()), 0),
        };
        scanned += read;
        if let Some(why) = sink.stop.or(checked.stop.get()) {
            stopped = Some(why);
            break;
        }
        // A file that shrank: what is past its new end was not searched, whatever the searcher
        // made of the zeros there (refused by the sink, or a too long "line").
        let failed = match (map.as_ref().and_then(lines_lost_from), result) {
            (Some(offset), _) => Some(ArchiveError::Truncated {
                name: target.generation.name.clone(),
                offset,
            }),
            (None, Err(e)) => Some(target.generation.error(e)),
            (None, Ok(())) => None,
        };
        if let Some(failed) = failed {
            if !emit(Event::Failed(ix, failed)) {
                stopped = Some(Stopped::Gone);
                break;
            }
        }
    }
    Summary {
        hits,
        scanned_bytes: scanned,
        elapsed: started.elapsed(),
        stopped,
    }
}

/// A generation's bytes, as a search takes them.
enum Source {
    /// Mapped: searched in place.
    Mapped(MappedFile),
    /// Read (decompressed for gzip).
    Read(Box<dyn Read + Send>),
}

/// The generation's bytes as far as they are lines: the file at the path up to the end of its
/// last complete line (as the tail reads it), a rotated one whole. Mapped when it is plain and
/// at least [`MAP_AT_LEAST`] bytes long (and a map can be registered).
fn open_for_search(
    target: &Target,
    limits: &ArchiveLimits,
    deadline: Instant,
) -> Result<Source, ArchiveError> {
    let generation = &target.generation;
    if generation.compressed {
        return Ok(Source::Read(generation.open()?));
    }
    let file = generation.open_plain()?;
    let size = file.metadata().map_err(|e| generation.error(e))?.len();
    let end = if generation.current {
        let bounds = PageBounds {
            max_lines: 1,
            max_bytes: 1,
            max_line: limits.max_line,
            deadline,
        };
        // Of the same file (found by its inode); no more than what this descriptor has.
        Some(page::readable_end(generation, &bounds)?.min(size))
    } else {
        None
    };
    let len = end.unwrap_or(size);
    if len >= MAP_AT_LEAST {
        if let Some(map) = map_for_search(&file, len) {
            return Ok(Source::Mapped(map));
        }
    }
    Ok(Source::Read(match end {
        Some(end) => Box::new(file.take(end)),
        None => Box::new(file),
    }))
}

/// A map of the first `len` bytes of `file`, unless none can be made (the file is read then)
/// or the file begins with a byte-order mark (the searcher transcodes it, reading).
fn map_for_search(file: &std::fs::File, len: u64) -> Option<MappedFile> {
    let len = usize::try_from(len).ok()?;
    let map = match MappedFile::map(file, len) {
        Ok(map) => map?,
        Err(e) => {
            tracing::debug!("searching by reads, the file cannot be mapped: {e}");
            return None;
        }
    };
    let bom = [&[0xef, 0xbb, 0xbf][..], &[0xff, 0xfe], &[0xfe, 0xff]];
    if bom.iter().any(|b| map.bytes().starts_with(b)) {
        return None;
    }
    Some(map)
}

/// Where the lines a shrunk file lost begin: the start of the line that holds the first byte
/// the map lost, looked for back from there a page at a time (at most [`SEARCHER_HEAP`]). If
/// the bytes before are lost too (reading them faulted), the first byte lost now: the file
/// shrank further than where the scan noticed, and its lines are not looked for byte by byte
/// through what is gone. `None` when the map lost nothing.
fn lines_lost_from(map: &MappedFile) -> Option<u64> {
    const STEP: usize = 4096;
    let lost = map.lost_from()?.min(map.bytes().len());
    let lo = lost.saturating_sub(SEARCHER_HEAP);
    let mut end = lost;
    while end > lo {
        let start = end.saturating_sub(STEP).max(lo);
        let newline = memchr::memrchr(b'\n', &map.bytes()[start..end]);
        match map.lost_from() {
            Some(now) if now < lost => return Some(now as u64),
            _ => {}
        }
        if let Some(i) = newline {
            return Some((start + i + 1) as u64);
        }
        end = start;
    }
    Some(lo as u64)
}

/// A reader that counts the bytes it reads.
struct Counted {
    inner: Box<dyn Read + Send>,
    read: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Newlines before an offset of a map, counted by the matcher as its scan passes them (while
/// their pages are still mapped), so the sink can number a hit without reading everything since
/// the last one again.
#[derive(Default)]
struct LineCount {
    /// The offset counted to.
    at: Cell<usize>,
    /// Newlines before it.
    newlines: Cell<u64>,
}

impl LineCount {
    fn advance(&self, bytes: &[u8], to: usize) {
        let at = self.at.get();
        if to > at && to <= bytes.len() {
            let more = memchr::memchr_iter(b'\n', &bytes[at..to]).count() as u64;
            self.newlines.set(self.newlines.get() + more);
            self.at.set(to);
        }
    }
}

/// The search's matcher: the pattern's, searching at most `window` bytes of a haystack at a
/// time and, before each window, checking the time limit, the client (every [`GONE_CHECK`])
/// and the map's file. A stop is an error, which ends the search (grep-searcher makes a
/// matcher's error the search's); its reason is kept in `stop`. A map whose file shrank makes
/// it find nothing more (the sink refuses what lies past the loss, and the loss is reported).
struct CheckedMatcher<'a> {
    inner: &'a RegexMatcher,
    deadline: Instant,
    gone: &'a dyn Fn() -> bool,
    next_gone_check: Cell<Instant>,
    stop: Cell<Option<Stopped>>,
    /// Calls of the other methods since the last check.
    calls: Cell<u32>,
    map: Option<&'a MappedFile>,
    window: usize,
    /// How far into the map the windows have gone.
    scanned_to: Cell<usize>,
    /// Newlines of the map before the scan's position.
    newlines: LineCount,
}

/// What the inner matcher's never-made errors become.
fn engine<T>(result: Result<T, NoError>) -> Result<T, String> {
    result.map_err(|_| "the regex engine failed".to_owned())
}

impl CheckedMatcher<'_> {
    /// An error when the search must stop (time up, client gone).
    fn check(&self) -> Result<(), String> {
        if self.stop.get().is_none() {
            let now = Instant::now();
            if now >= self.deadline {
                self.stop.set(Some(Stopped::TimeLimit));
            } else if now >= self.next_gone_check.get() {
                self.next_gone_check.set(now + GONE_CHECK);
                if (self.gone)() {
                    self.stop.set(Some(Stopped::Gone));
                }
            }
        }
        match self.stop.get() {
            Some(_) => Err("search stopped".to_owned()),
            None => Ok(()),
        }
    }

    /// [`CheckedMatcher::check`], every [`CALLS_BETWEEN_CHECKS`] calls.
    /// [`CheckedMatcher::check`], every [`CALLS_BETWEEN_CHECKS`] calls; and the map's pages
    /// before `haystack` given back (the slow path calls these methods line by line, never
    /// [`Matcher::find_candidate_line`]).
    fn counted_check(&self, haystack: &[u8]) -> Result<(), String> {
        let calls = self.calls.get() + 1;
        if calls < CALLS_BETWEEN_CHECKS {
            self.calls.set(calls);
            return Ok(());
        }
        self.calls.set(0);
        self.check()?;
        if let Some((map, at)) = self.in_map(haystack) {
            self.newlines.advance(map.bytes(), at);
            map.release_before(at);
        }
        Ok(())
    }

    /// The map, and where `haystack` begins in it (`None`: the haystack is not the map's).
    fn in_map(&self, haystack: &[u8]) -> Option<(&MappedFile, usize)> {
        let map = self.map?;
        let at = (haystack.as_ptr() as usize).checked_sub(map.bytes().as_ptr() as usize)?;
        (at + haystack.len() <= map.bytes().len()).then_some((map, at))
    }
}

/// An error when the line that `window` (the first bytes of `haystack`) cuts is longer than a
/// search holds (reading, the searcher's heap limit says the same).
fn cut_line_fits(haystack: &[u8], window: usize) -> Result<(), String> {
    let start = memchr::memrchr(b'\n', &haystack[..window]).map_or(0, |i| i + 1);
    let limit = start.saturating_add(SEARCHER_HEAP);
    if haystack.len() > limit && memchr::memchr(b'\n', &haystack[window..limit]).is_none() {
        return Err(format!(
            "a line is longer than {SEARCHER_HEAP} bytes, the longest a search holds"
        ));
    }
    Ok(())
}

impl Matcher for CheckedMatcher<'_> {
    type Captures = RegexCaptures;
    type Error = String;

    fn find_at(&self, haystack: &[u8], at: usize) -> Result<Option<Match>, String> {
        self.counted_check(haystack)?;
        engine(self.inner.find_at(haystack, at))
    }

    fn new_captures(&self) -> Result<RegexCaptures, String> {
        engine(self.inner.new_captures())
    }

    fn capture_count(&self) -> usize {
        self.inner.capture_count()
    }

    fn capture_index(&self, name: &str) -> Option<usize> {
        self.inner.capture_index(name)
    }

    fn try_find_iter<F, E>(&self, haystack: &[u8], matched: F) -> Result<Result<(), E>, String>
    where
        F: FnMut(Match) -> Result<bool, E>,
    {
        self.counted_check(haystack)?;
        engine(self.inner.try_find_iter(haystack, matched))
    }

    fn captures_at(
        &self,
        haystack: &[u8],
        at: usize,
        caps: &mut RegexCaptures,
    ) -> Result<bool, String> {
        self.counted_check(haystack)?;
        engine(self.inner.captures_at(haystack, at, caps))
    }

    fn shortest_match_at(&self, haystack: &[u8], at: usize) -> Result<Option<usize>, String> {
        self.counted_check(haystack)?;
        engine(self.inner.shortest_match_at(haystack, at))
    }

    fn non_matching_bytes(&self) -> Option<&ByteSet> {
        self.inner.non_matching_bytes()
    }

    /// The inner matcher's (`\n`): with it the searcher keeps its fast line-by-line path,
    /// which is the one that calls [`Matcher::find_candidate_line`].
    fn line_terminator(&self) -> Option<LineTerminator> {
        self.inner.line_terminator()
    }

    /// The first line that may match, searched for a window at a time. A window that ends
    /// mid-line could fake a match at its end (`\b`, `$`): a match in its last, unfinished line
    /// is only a candidate (the searcher verifies that whole line); a window without one gives
    /// its last byte as a candidate, so the searcher verifies the line it falls in and calls
    /// again after it.
    fn find_candidate_line(&self, haystack: &[u8]) -> Result<Option<LineMatchKind>, String> {
        self.check()?;
        let mapped = self.in_map(haystack);
        if let Some((map, at)) = mapped {
            if map.lost_from().is_some() {
                return Ok(None);
            }
            self.newlines.advance(map.bytes(), at);
            map.release_before(at);
        }
        let window = haystack.len().min(self.window);
        let found = engine(self.inner.find_candidate_line(&haystack[..window]))?;
        if let Some((map, at)) = mapped {
            self.scanned_to.set(self.scanned_to.get().max(at + window));
            // The file shrank under this window: what was found before the loss stands.
            if let Some(lost) = map.lost_from() {
                let before = |i: usize| at + i < lost;
                return Ok(found.filter(|kind| match *kind {
                    LineMatchKind::Confirmed(i) | LineMatchKind::Candidate(i) => before(i),
                }));
            }
        }
        if window == haystack.len() {
            return Ok(found);
        }
        let in_cut_line = |i: usize| memchr::memchr(b'\n', &haystack[i..window]).is_none();
        Ok(Some(match found {
            Some(LineMatchKind::Confirmed(i)) | Some(LineMatchKind::Candidate(i))
                if in_cut_line(i) =>
            {
                cut_line_fits(haystack, window)?;
                LineMatchKind::Candidate(i)
            }
            Some(kind) => kind,
            None => {
                cut_line_fits(haystack, window)?;
                LineMatchKind::Candidate(window - 1)
            }
        }))
    }
}

/// The searcher's sink: turns matches and context into [`Event`]s. For a map whose file shrank,
/// it refuses every line past where the lines were lost (zeros, not the file), ending the
/// search there.
struct Collect<'a> {
    target: usize,
    emit: &'a mut dyn FnMut(Event) -> bool,
    hits: &'a mut usize,
    max_hits: usize,
    max_line: usize,
    stop: Option<Stopped>,
    map: Option<&'a MappedFile>,
    /// (the map's `lost_from`, where its lost lines begin), once it lost some.
    lost: Option<(usize, u64)>,
    /// A break not sent yet: once the file shrank, one is sent only before a line that is.
    pending_break: bool,
    /// The matcher's count of the map's newlines.
    newlines: &'a LineCount,
    /// (offset, newlines before it) of the last line numbered here.
    numbered: (usize, u64),
}

impl Collect<'_> {
    fn found(&self, bytes: &[u8], offset: u64, number: Option<u64>) -> Found {
        let (text, truncated) = crate::tail::line_text(bytes, self.max_line);
        Found {
            target: self.target,
            offset,
            number: number.unwrap_or(0),
            text,
            truncated,
        }
    }

    fn send(&mut self, event: Event) -> bool {
        if self.pending_break && !matches!(event, Event::Break) {
            self.pending_break = false;
            if !self.send(Event::Break) {
                return false;
            }
        }
        if (self.emit)(event) {
            true
        } else {
            self.stop = Some(Stopped::Gone);
            false
        }
    }

    /// Whether the map's file still had the line at `offset`, `len` bytes long, when it was
    /// read (always, for a read). Asked once the line was read (made a [`Found`], which reads
    /// its last byte): a loss is a suffix of the file, so a line that lost any byte lost its
    /// last, and reading it marked the loss.
    fn still_there(&mut self, offset: u64, len: usize) -> bool {
        let Some(map) = self.map else { return true };
        let Some(lost_from) = map.lost_from() else {
            return true;
        };
        let lines_from = match self.lost {
            Some((seen, lines_from)) if seen == lost_from => lines_from,
            _ => {
                let lines_from = lines_lost_from(map).unwrap_or(0);
                self.lost = Some((lost_from, lines_from));
                lines_from
            }
        };
        offset + len as u64 <= lines_from
    }

    /// The line number of the line at `offset` of the map: counted from the nearest place
    /// before it whose count is known, the last line numbered here or the matcher's position
    /// (lines come in order, so either is near).
    fn number_in_map(&mut self, map: &MappedFile, offset: u64) -> u64 {
        let bytes = map.bytes();
        let offset = (offset as usize).min(bytes.len());
        let scanned = (self.newlines.at.get(), self.newlines.newlines.get());
        let (from, mut newlines) = if scanned.0 <= offset && scanned.0 > self.numbered.0 {
            scanned
        } else {
            self.numbered
        };
        if offset >= from {
            newlines += memchr::memchr_iter(b'\n', &bytes[from..offset]).count() as u64;
        } else {
            newlines -= memchr::memchr_iter(b'\n', &bytes[offset..from]).count() as u64;
        }
        self.numbered = (offset, newlines);
        newlines + 1
    }

    /// The line's number: from the searcher, or counted through the map.
    fn number(&mut self, offset: u64, searcher: Option<u64>) -> Option<u64> {
        match self.map {
            Some(map) => Some(self.number_in_map(map, offset)),
            None => searcher,
        }
    }

    fn truncated(&self) -> bool {
        self.map.is_some_and(|m| m.lost_from().is_some())
    }
}

impl Sink for Collect<'_> {
    type Error = io::Error;

    fn matched(&mut self, _: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, io::Error> {
        let mut offset = mat.absolute_byte_offset();
        let mut number = mat.line_number();
        for line in mat.lines() {
            if *self.hits >= self.max_hits {
                self.stop = Some(Stopped::MaxHits);
                return Ok(false);
            }
            let numbered = self.number(offset, number);
            let found = self.found(line, offset, numbered);
            if !self.still_there(offset, line.len()) {
                return Ok(false);
            }
            *self.hits += 1;
            if !self.send(Event::Hit(found)) {
                return Ok(false);
            }
            offset += line.len() as u64;
            number = number.map(|n| n + 1);
        }
        Ok(true)
    }

    fn context(&mut self, _: &Searcher, ctx: &SinkContext<'_>) -> Result<bool, io::Error> {
        if matches!(ctx.kind(), SinkContextKind::Other) {
            return Ok(true);
        }
        let number = self.number(ctx.absolute_byte_offset(), ctx.line_number());
        let found = self.found(ctx.bytes(), ctx.absolute_byte_offset(), number);
        if !self.still_there(ctx.absolute_byte_offset(), ctx.bytes().len()) {
            return Ok(false);
        }
        Ok(self.send(Event::Context(found)))
    }

    fn context_break(&mut self, _: &Searcher) -> Result<bool, io::Error> {
        if self.truncated() {
            self.pending_break = true;
            return Ok(true);
        }
        Ok(self.send(Event::Break))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::generation::{self, KeyCache};
    use crate::archive::mapped::SLOTS_IN_TESTS;
    use std::path::Path;

    fn limits(timeout: Duration) -> ArchiveLimits {
        ArchiveLimits {
            page_max_lines: 1000,
            page_max_bytes: 1 << 20,
            max_line: 64 * 1024,
            search_max_hits: 1_000_000,
            max_searches: 4,
            max_page_reads: 16,
            search_timeout: timeout,
            regex_size: 1 << 20,
            max_context: 10,
        }
    }

    fn query(pattern: &str, regex: bool) -> Query {
        Query {
            pattern: pattern.to_owned(),
            regex,
            case: Case::Sensitive,
            invert: false,
            word: false,
            context: 0,
            max_hits: 1_000_000,
        }
    }

    /// The file at `path` as the one target of a search.
    fn targets(path: &Path) -> Vec<Target> {
        let current = generation::list(path, &KeyCache::default())
            .into_iter()
            .find(|g| g.current)
            .expect("the file is listed");
        vec![Target {
            file: "app.log".into(),
            generation: current,
            label: "app.log".into(),
        }]
    }

    /// How a test gives the search its bytes.
    #[derive(Clone, Copy, Debug)]
    enum By {
        Reading,
        /// Mapped, the file then truncated to this many bytes (if any) before the scan.
        Mapping(Option<u64>),
    }

    /// The events (as text) and summary of a search of `path`.
    fn search(
        path: &Path,
        query: &Query,
        by: By,
        window: usize,
        limits: &ArchiveLimits,
        gone: &dyn Fn() -> bool,
    ) -> (Vec<String>, Summary) {
        let matcher = query.matcher(limits).unwrap();
        let mut events = Vec::new();
        let mut emit = |event: Event| {
            events.push(format!("{event:?}"));
            true
        };
        let mut open = |target: &Target, _: Instant| -> Result<Source, ArchiveError> {
            let file = target.generation.open_plain()?;
            let len = file.metadata().unwrap().len();
            match by {
                By::Reading => Ok(Source::Read(Box::new(file))),
                By::Mapping(truncate) => {
                    let map = MappedFile::map(&file, len as usize)
                        .unwrap()
                        .expect("a slot is free");
                    if let Some(to) = truncate {
                        let writable = std::fs::OpenOptions::new().write(true).open(path);
                        writable.unwrap().set_len(to).unwrap();
                    }
                    Ok(Source::Mapped(map))
                }
            }
        };
        let summary = run_with(
            &targets(path),
            query,
            &matcher,
            limits,
            &mut emit,
            gone,
            &mut open,
            window,
        );
        (events, summary)
    }

    fn never() -> bool {
        false
    }

    /// 1.6 MiB of lines made to trip windows cut mid-line: empty lines, words, digits at ends.
    fn varied_log(path: &Path) {
        let mut text = String::new();
        let mut i = 0u64;
        while text.len() < 1600 * 1024 {
            let line = match i % 7 {
                0 => String::new(),
                1 => format!("{i} alpha word12 beta"),
                2 => format!("x{i}y12z"),
                3 => format!("{i:08} status=200 ok 7"),
                4 => format!("AbC {i} ab"),
                5 => format!("tail {i}7"),
                _ => format!("{}{i}", "q".repeat(300 + (i % 500) as usize)),
            };
            text.push_str(&line);
            text.push('\n');
            i += 1;
        }
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_mapped_search_cut_in_windows_finds_exactly_what_a_read_finds() {
        let _slots = SLOTS_IN_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        varied_log(&log);
        let limits = limits(Duration::from_secs(60));
        let mut queries = vec![
            query("12", false),
            query("7$", true),
            query(r"\b12", true),
            query("^$", true),
            query(r"^\d+ alpha", true),
            Query {
                word: true,
                ..query("12", false)
            },
            Query {
                case: Case::Insensitive,
                ..query("abc", false)
            },
            Query {
                invert: true,
                context: 2,
                ..query("q", false)
            },
            Query {
                context: 3,
                ..query("z$", true)
            },
        ];
        queries.push(Query {
            invert: true,
            ..query("", true)
        });
        for q in &queries {
            let (read, summary) = search(&log, q, By::Reading, WINDOW, &limits, &never);
            assert!(summary.stopped.is_none());
            for window in [777, 4096, WINDOW] {
                let (mapped, mapped_summary) =
                    search(&log, q, By::Mapping(None), window, &limits, &never);
                assert_eq!(read.len(), mapped.len(), "{q:?}, window {window}");
                for (r, m) in read.iter().zip(&mapped) {
                    assert_eq!(r, m, "{q:?}, window {window}");
                }
                assert_eq!(mapped_summary.hits, summary.hits);
                assert_eq!(mapped_summary.scanned_bytes, summary.scanned_bytes);
            }
        }
    }

    #[test]
    fn windows_cut_anywhere_in_a_small_file_find_exactly_what_a_read_finds() {
        let _slots = SLOTS_IN_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(
            &log,
            "ab12\n\nfoo7\nx 12 y\n12\nzz 3\n\n\nk 1234 k\nq12q\nk 123\nend 7",
        )
        .unwrap();
        let limits = limits(Duration::from_secs(60));
        let queries = [
            query("^$", true),
            query(r"\d$", true),
            query(r"\b\d+\b", true),
            // No literal in them, so no candidates: the engine's matches are taken as they are.
            query(r"\b\d\d\b", true),
            query(r"\s\d\d\b", true),
            query("[0-9]$", true),
            query("7$", true),
            query(r"\b12", true),
            Query {
                word: true,
                ..query("12", false)
            },
            query("12", false),
            Query {
                invert: true,
                context: 1,
                ..query(r"\d$", true)
            },
        ];
        for q in &queries {
            let (read, _) = search(&log, q, By::Reading, WINDOW, &limits, &never);
            for window in 1..=40 {
                let (mapped, _) = search(&log, q, By::Mapping(None), window, &limits, &never);
                assert_eq!(read, mapped, "{q:?}, window {window}");
            }
        }
    }

    fn rss_file_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_mapped_search_gives_back_the_pages_it_passed_even_to_number_a_far_hit() {
        let _slots = SLOTS_IN_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let mut text = needles_log(&log, 5_000_000)
            .into_iter()
            .map(|b| if b == b'n' { b'N' } else { b })
            .collect::<Vec<u8>>();
        text.extend_from_slice(b"the only needle\n");
        std::fs::write(&log, &text).unwrap();
        let before = rss_file_kib();
        let peak = Cell::new(before);
        let sample = || peak.set(peak.get().max(rss_file_kib()));
        // Asked every GONE_CHECK while the scan runs.
        let gone = || {
            sample();
            false
        };
        let mut events = Vec::new();
        // At the hit: once the searcher has numbered it.
        let mut emit = |event: Event| {
            sample();
            events.push(format!("{event:?}"));
            true
        };
        let mut open = |target: &Target, _: Instant| -> Result<Source, ArchiveError> {
            let file = target.generation.open_plain()?;
            let map = MappedFile::map(&file, text.len()).unwrap().expect("a slot");
            Ok(Source::Mapped(map))
        };
        let limits = limits(Duration::from_secs(60));
        let q = query("needle", false);
        let matcher = q.matcher(&limits).unwrap();
        run_with(
            &targets(&log),
            &q,
            &matcher,
            &limits,
            &mut emit,
            &gone,
            &mut open,
            WINDOW,
        );
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[1].contains("number: 5000001,"), "{events:?}");
        let grown = peak.get().saturating_sub(before);
        assert!(
            grown < 48 * 1024,
            "{grown} KiB mapped at once for a {} MiB file",
            text.len() >> 20
        );
    }

    #[test]
    fn the_matcher_keeps_the_line_terminator_so_the_fast_path_stays() {
        let matcher = query("x", false)
            .matcher(&limits(Duration::from_secs(1)))
            .unwrap();
        let checked = CheckedMatcher {
            inner: &matcher,
            deadline: Instant::now() + Duration::from_secs(1),
            gone: &never,
            next_gone_check: Cell::new(Instant::now()),
            stop: Cell::new(None),
            calls: Cell::new(0),
            map: None,
            window: WINDOW,
            scanned_to: Cell::new(0),
            newlines: LineCount::default(),
        };
        assert_eq!(checked.line_terminator().map(|t| t.as_byte()), Some(b'\n'));
    }

    /// `count` lines of 20 bytes, every tenth one a `needle`.
    fn needles_log(path: &Path, count: usize) -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..count {
            let word = if i % 10 == 0 { "needle" } else { "hay   " };
            text.extend_from_slice(format!("line {i:07} {word}\n").as_bytes());
        }
        std::fs::write(path, &text).unwrap();
        text
    }

    #[test]
    fn a_file_truncated_while_it_is_searched_gives_its_earlier_hits_then_says_so() {
        let _slots = SLOTS_IN_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let prefix = dir.path().join("prefix.log");
        let limits = limits(Duration::from_secs(60));
        // Cut mid-line, and on a page boundary.
        for cut in [(1 << 20) + 50, 1 << 21] {
            let text = needles_log(&log, 200_000);
            // The lines kept whole end where the cut line begins.
            let whole_lines = cut as usize / 20 * 20;
            std::fs::write(&prefix, &text[..whole_lines]).unwrap();
            let queries = [
                query("needle", false),
                Query {
                    invert: true,
                    ..query("needle", false)
                },
                Query {
                    context: 2,
                    ..query("needle", false)
                },
                Query {
                    invert: true,
                    ..query("", true)
                },
            ];
            for q in &queries {
                let (expected, _) = search(&prefix, q, By::Reading, WINDOW, &limits, &never);
                for window in [777, WINDOW] {
                    needles_log(&log, 200_000);
                    let (got, summary) =
                        search(&log, q, By::Mapping(Some(cut)), window, &limits, &never);
                    let failed = got.last().expect("events");
                    assert!(
                        failed.starts_with("Failed(0, Truncated")
                            && failed.contains(&format!("offset: {whole_lines} ")),
                        "{q:?}, window {window}: {failed}"
                    );
                    let error = ArchiveError::Truncated {
                        name: "app.log".into(),
                        offset: whole_lines as u64,
                    };
                    assert!(error.to_string().contains("shrank while it was searched"));
                    assert_eq!(got.len() - 1, expected.len(), "{q:?}, window {window}");
                    for (g, e) in got.iter().zip(&expected) {
                        assert_eq!(g, e, "{q:?}, window {window}");
                    }
                    assert!(!got.iter().any(|e| e.contains("\\0")), "no line of zeros");
                    assert!(summary.stopped.is_none());
                }
            }
        }
    }

    #[test]
    fn a_search_stops_at_its_time_limit_or_when_its_client_goes_read_or_mapped() {
        let _slots = SLOTS_IN_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let text = needles_log(&log, 500_000);
        let q = query("no such line", false);
        for by in [By::Reading, By::Mapping(None)] {
            let (_, summary) = search(&log, &q, by, 4096, &limits(Duration::ZERO), &never);
            assert_eq!(summary.stopped, Some(Stopped::TimeLimit), "{by:?}");
            // Reading, the searcher fills its buffer before it asks the matcher anything.
            assert!(summary.scanned_bytes <= 64 * 1024, "{by:?}: {summary:?}");
            assert_eq!(summary.hits, 0);

            // Asked at the first window (then every GONE_CHECK).
            let gone = || true;
            let (_, summary) = search(&log, &q, by, 4096, &limits(Duration::from_secs(60)), &gone);
            assert_eq!(summary.stopped, Some(Stopped::Gone), "{by:?}");
            assert!(summary.scanned_bytes <= 64 * 1024, "{by:?}: {summary:?}");
            assert!(text.len() > 1 << 20);
        }
    }
}
