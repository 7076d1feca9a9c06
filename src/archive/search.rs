//! Searching files' generations on disk with ripgrep's own crates (grep-regex's matcher,
//! grep-searcher's line-oriented search): the current file and, on request, its rotated
//! generations, newest first, each from its first line, hits handed out as they are found.
//!
//! Bounded: the pattern's compiled size, hits per search, the time a search may take, the
//! longest line the searcher may hold (`heap_limit`), and a search stops within one read of
//! 64 KiB when its client is gone. The regex engine is linear-time: no pattern can make a scan
//! take longer than the bytes it reads.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{
    BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch,
};

use super::generation::Generation;
use super::{page, ArchiveError, ArchiveLimits, PageBounds};

/// Largest line the searcher holds in memory: a longer one ends that generation's search with
/// an error (the tail cuts lines far shorter).
const SEARCHER_HEAP: usize = 16 * 1024 * 1024;

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
/// the client is gone). `gone` is asked between reads.
pub fn run(
    targets: &[Target],
    query: &Query,
    matcher: &RegexMatcher,
    limits: &ArchiveLimits,
    emit: &mut dyn FnMut(Event) -> bool,
    gone: &dyn Fn() -> bool,
) -> Summary {
    let started = Instant::now();
    let deadline = started + limits.search_timeout;
    let mut searcher = SearcherBuilder::new()
        .line_number(true)
        .invert_match(query.invert)
        .before_context(query.context)
        .after_context(query.context)
        .binary_detection(BinaryDetection::none())
        .heap_limit(Some(SEARCHER_HEAP))
        .build();
    let mut hits = 0;
    let mut scanned = 0;
    let mut stopped = None;
    for (ix, target) in targets.iter().enumerate() {
        if !emit(Event::Target(ix)) {
            stopped = Some(Stopped::Gone);
            break;
        }
        let reader = match open_for_search(target, limits, deadline) {
            Ok(reader) => reader,
            Err(e) => {
                if !emit(Event::Failed(ix, e)) {
                    stopped = Some(Stopped::Gone);
                    break;
                }
                continue;
            }
        };
        let mut guarded = Guarded {
            inner: reader,
            deadline,
            gone,
            stop: None,
            read: 0,
            next_check: Instant::now(),
        };
        let mut sink = Collect {
            target: ix,
            emit: &mut *emit,
            hits: &mut hits,
            max_hits: query.max_hits,
            max_line: limits.max_line,
            stop: None,
        };
        let result = searcher.search_reader(matcher, &mut guarded, &mut sink);
        scanned += guarded.read;
        if let Some(why) = sink.stop.or(guarded.stop) {
            stopped = Some(why);
            break;
        }
        if let Err(e) = result {
            let failed = target.generation.error(e);
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

/// The generation's bytes as far as they are lines: the file at the path up to the end of its
/// last complete line (as the tail reads it), a rotated one whole.
fn open_for_search(
    target: &Target,
    limits: &ArchiveLimits,
    deadline: Instant,
) -> Result<Box<dyn Read + Send>, ArchiveError> {
    let generation = &target.generation;
    if generation.compressed || !generation.current {
        return generation.open();
    }
    let bounds = PageBounds {
        max_lines: 1,
        max_bytes: 1,
        max_line: limits.max_line,
        deadline,
    };
    let end = page::readable_end(generation, &bounds)?;
    Ok(Box::new(generation.open_plain()?.take(end)))
}

/// A reader that stops (with an error the search reports as its stop) when the client is gone
/// or the time is up.
struct Guarded<'a> {
    inner: Box<dyn Read + Send>,
    deadline: Instant,
    gone: &'a dyn Fn() -> bool,
    stop: Option<Stopped>,
    read: u64,
    next_check: Instant,
}

/// How often a running search asks whether its client is still there.
const GONE_CHECK: Duration = Duration::from_millis(20);

impl Read for Guarded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let now = Instant::now();
        if now >= self.deadline {
            self.stop = Some(Stopped::TimeLimit);
        } else if now >= self.next_check {
            self.next_check = now + GONE_CHECK;
            if (self.gone)() {
                self.stop = Some(Stopped::Gone);
            }
        }
        if self.stop.is_some() {
            return Err(io::Error::other("search stopped"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// The searcher's sink: turns matches and context into [`Event`]s.
struct Collect<'a> {
    target: usize,
    emit: &'a mut dyn FnMut(Event) -> bool,
    hits: &'a mut usize,
    max_hits: usize,
    max_line: usize,
    stop: Option<Stopped>,
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
        if (self.emit)(event) {
            true
        } else {
            self.stop = Some(Stopped::Gone);
            false
        }
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
            *self.hits += 1;
            let found = self.found(line, offset, number);
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
        let found = self.found(ctx.bytes(), ctx.absolute_byte_offset(), ctx.line_number());
        Ok(self.send(Event::Context(found)))
    }

    fn context_break(&mut self, _: &Searcher) -> Result<bool, io::Error> {
        Ok(self.send(Event::Break))
    }
}
