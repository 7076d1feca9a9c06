//! The files' past, read back from disk: every line of a followed file and of its rotated
//! generations, by position (pages of lines before or after a place) and by search (ripgrep's
//! own crates). Knows files and bytes; knows nothing of HTTP (the routes in `http/archive.rs`
//! call it from blocking threads) and reads the hub only to name lines it still numbers.
//!
//! - [`generation`]: the file at the path and its rotated siblings, each named by a key that
//!   survives renames and compression; the only place a generation is opened.
//! - [`page`]: lines before or after a byte offset in one generation, backwards in chunks.
//! - [`lines`]: line numbers of plain generations (a sparse index, built as pages need it).
//! - [`search`]: a search over generations, newest first, hits handed out as they are found.
//! - [`mapped`]: read-only memory maps a search scans in place, safe against the file being
//!   truncated under them (a `SIGBUS` handler puts zeros there, and the loss is reported).
//! - [`positions`]: where the hub's numbered lines are on disk (runs of consecutive seqs per
//!   generation), so a page can start at a seq and name the seqs of the lines it returns.

pub mod generation;
pub mod lines;
pub mod mapped;
pub mod page;
pub mod positions;
pub mod search;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use generation::Generation;
pub use page::{PageBounds, RawLine};
pub use positions::{Positions, RunLog};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::hub::{FileIx, Hub};

/// Why a read of the past failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// The file is a stream (standard input, a command): it has no past on disk.
    #[error("`{0}` is a stream (standard input or a command), not a file: its past is only what the history holds")]
    NotAFile(String),
    /// Another node's file (in a cluster): its disk is that node's.
    #[error("`{id}` is a file of node {node}: its past on disk is read on that node; here only what the history holds")]
    Remote {
        /// The file id.
        id: String,
        /// Its node.
        node: String,
    },
    /// No generation has this key.
    #[error("file `{file}` has no generation `{key}` (any more); GET api/generations?file={file} lists them")]
    UnknownGeneration {
        /// The file id.
        file: String,
        /// The key asked for.
        key: String,
    },
    /// A seq the server can no longer place in a file.
    #[error("line {seq} of `{file}` can no longer be placed on disk; page by position instead (gen=... and before=...)")]
    UnknownSeq {
        /// The file id.
        file: String,
        /// The seq asked for.
        seq: u64,
    },
    /// Reading a generation failed.
    #[error("cannot read {name}: {reason}")]
    Read {
        /// The generation's file name.
        name: String,
        /// The OS error.
        reason: String,
    },
    /// The generation was renamed or removed while it was read, and is not among the
    /// siblings any more.
    #[error("{name} went away while it was read (rotated or removed); list the generations again")]
    Gone {
        /// The generation's file name when it was listed.
        name: String,
    },
    /// The generation shrank while it was searched (truncated in place, as a `copytruncate`
    /// rotation does to the file at the path): its lines from `offset` on were not searched.
    #[error("{name} shrank while it was searched (truncated, as a copytruncate rotation does); its lines from byte {offset} on were not searched (a rotation's copy of them is the newest rotated generation)")]
    Truncated {
        /// The generation's file name.
        name: String,
        /// Where the lines not searched begin.
        offset: u64,
    },
    /// The read took longer than the time limit.
    #[error(
        "reading {name} took longer than the time limit (--search-timeout); ask for a smaller page"
    )]
    TooSlow {
        /// The generation's file name.
        name: String,
    },
}

/// The bounds of reads from disk.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Most lines in one page.
    pub page_max_lines: usize,
    /// Most bytes of line text in one page.
    pub page_max_bytes: usize,
    /// Longest line shown (as the tail cuts it).
    pub max_line: usize,
    /// Most hits one search returns.
    pub search_max_hits: usize,
    /// Searches running at once.
    pub max_searches: usize,
    /// Page reads (and generation lists) running at once.
    pub max_page_reads: usize,
    /// Longest a search or a page read may take.
    pub search_timeout: Duration,
    /// Compiled size limit of a search pattern.
    pub regex_size: usize,
    /// Most context lines around a hit.
    pub max_context: usize,
}

/// A page's walk over generations: which one it reads, what it has taken so far against its
/// bounds, and what it does when a generation after the first fails.
struct Walk<'a> {
    ix: usize,
    first: usize,
    bounds: &'a PageBounds,
    lines: usize,
    bytes: usize,
}

impl<'a> Walk<'a> {
    fn new(ix: usize, bounds: &'a PageBounds) -> Walk<'a> {
        Walk {
            ix,
            first: ix,
            bounds,
            lines: 0,
            bytes: 0,
        }
    }

    /// What the next generation may still give.
    fn left(&self) -> PageBounds {
        PageBounds {
            max_lines: self.bounds.max_lines - self.lines,
            max_bytes: self.bounds.max_bytes.saturating_sub(self.bytes),
            ..*self.bounds
        }
    }

    fn taken(&mut self, lines: &[RawLine]) {
        self.lines += lines.len();
        self.bytes += lines
            .iter()
            .map(|l| (l.end - l.offset) as usize)
            .sum::<usize>();
    }

    fn full(&self) -> bool {
        self.lines >= self.bounds.max_lines
            || (self.bytes >= self.bounds.max_bytes && self.lines > 0)
    }

    /// The generation's lines; or, for one after the first, none when it cannot be read (it
    /// is put in `skipped`), or the end of the page (`None`) when the time is up and the page
    /// has lines. The first generation's failure is the page's.
    fn passed_over(
        &self,
        read: Result<page::Lines, ArchiveError>,
        skipped: &mut Vec<(usize, ArchiveError)>,
    ) -> Result<Option<page::Lines>, ArchiveError> {
        let later = self.ix != self.first;
        match read {
            Ok(found) => Ok(Some(found)),
            Err(e @ (ArchiveError::Read { .. } | ArchiveError::Gone { .. })) if later => {
                skipped.push((self.ix, e));
                Ok(Some(page::Lines {
                    lines: Vec::new(),
                    reached_edge: true,
                }))
            }
            Err(ArchiveError::TooSlow { .. }) if later && self.lines > 0 => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Reads the past of the hub's files: the handle the HTTP routes hold.
#[derive(Clone)]
pub struct Archive {
    hub: Hub,
    positions: Positions,
    limits: ArchiveLimits,
    searches: Arc<Semaphore>,
    pages: Arc<Semaphore>,
    keys: Arc<generation::KeyCache>,
    line_index: lines::LineIndex,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("limits", &self.limits)
            .finish()
    }
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// The newest lines (before the end of the file at the path).
    Newest,
    /// The oldest lines (from the start of the oldest generation).
    Oldest,
    /// The lines before this offset of this generation (`None`: the current one).
    Before(Option<String>, u64),
    /// The lines from this offset of this generation on.
    After(Option<String>, u64),
    /// About half the page before the line at this offset, the rest from it on.
    Around(Option<String>, u64),
    /// The lines before the line numbered `seq` by the hub.
    BeforeSeq(u64),
}

/// One line of a page.
#[derive(Debug, Clone)]
pub struct PageLine {
    /// The generation's key.
    pub gen: String,
    /// The generation's (device, inode): what seqs are placed by.
    pub dev_ino: (u64, u64),
    /// The generation is read through gzip.
    pub compressed: bool,
    /// Its offset there.
    pub offset: u64,
    /// Its line number there, where known.
    pub number: Option<u64>,
    /// Its seq, while the hub knows where that line is.
    pub seq: Option<u64>,
    /// The text as the tail shows it.
    pub text: String,
    /// The line was longer than the cap.
    pub truncated: bool,
}

/// A position in the file's past: a generation and an offset there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The generation's key.
    pub gen: String,
    /// The offset.
    pub offset: u64,
}

/// A page of lines.
#[derive(Debug, Clone)]
pub struct Page {
    /// The lines, oldest first.
    pub lines: Vec<PageLine>,
    /// Where the page above starts (`before=`), or `None` at the oldest line there is.
    pub before: Option<Position>,
    /// Where the page below starts (`after=`): at the end of the file at the path, the place
    /// its next lines will be.
    pub after: Option<Position>,
    /// Generations passed over because they could not be read: (key, name, why).
    pub skipped: Vec<(String, String, String)>,
}

impl Archive {
    /// An archive over the hub's files, placing seqs through `positions`.
    pub fn new(hub: Hub, positions: Positions, limits: ArchiveLimits) -> Archive {
        Archive {
            hub,
            positions,
            searches: Arc::new(Semaphore::new(limits.max_searches)),
            pages: Arc::new(Semaphore::new(limits.max_page_reads)),
            keys: Arc::default(),
            line_index: lines::LineIndex::default(),
            limits,
        }
    }

    /// A place among the searches running, if one is free (held by the search until it ends).
    pub fn try_search(&self) -> Option<OwnedSemaphorePermit> {
        self.searches.clone().try_acquire_owned().ok()
    }

    /// A place among the page reads running, if one is free.
    pub fn try_page(&self) -> Option<OwnedSemaphorePermit> {
        self.pages.clone().try_acquire_owned().ok()
    }

    /// The bounds.
    pub fn limits(&self) -> &ArchiveLimits {
        &self.limits
    }

    /// The configured path of a file, when it is a file (not a stream).
    fn path_of(&self, file: FileIx) -> Result<PathBuf, ArchiveError> {
        let info = self.hub.info(file);
        if info.remote {
            // Its path names a file on another host, never one here.
            return Err(ArchiveError::Remote {
                id: info.id,
                node: info.node.unwrap_or_default(),
            });
        }
        if info.path.starts_with('/') {
            Ok(PathBuf::from(info.path))
        } else {
            Err(ArchiveError::NotAFile(info.id))
        }
    }

    /// A file's generations, newest first.
    pub fn generations(&self, file: FileIx) -> Result<Vec<Generation>, ArchiveError> {
        Ok(generation::list(&self.path_of(file)?, &self.keys))
    }

    /// Reads a page of a file (blocking: call it from a blocking thread).
    pub fn page(
        &self,
        file: FileIx,
        anchor: &Anchor,
        max_lines: usize,
    ) -> Result<Page, ArchiveError> {
        let gens = self.generations(file)?;
        let bounds = PageBounds {
            max_lines: max_lines.clamp(1, self.limits.page_max_lines),
            max_bytes: self.limits.page_max_bytes,
            max_line: self.limits.max_line,
            deadline: Instant::now() + self.limits.search_timeout,
        };
        let id = self.hub.id(file).to_owned();
        let find = |key: &Option<String>| -> Result<usize, ArchiveError> {
            match key {
                None => Ok(0),
                Some(key) => gens.iter().position(|g| &g.key == key).ok_or_else(|| {
                    ArchiveError::UnknownGeneration {
                        file: id.clone(),
                        key: key.clone(),
                    }
                }),
            }
        };
        if gens.is_empty() {
            return Ok(Page {
                lines: Vec::new(),
                before: None,
                after: None,
                skipped: Vec::new(),
            });
        }
        let mut skipped = Vec::new();
        let sk = &mut skipped;
        let mut lines: Vec<(usize, RawLine)> = match anchor {
            // `lines_before` ends the file at the path at its last complete line itself.
            Anchor::Newest => self.read_before(&gens, 0, u64::MAX, &bounds, sk)?,
            Anchor::Oldest => {
                // The oldest generation that can be read: those that cannot are passed over.
                let mut ix = gens.len() - 1;
                loop {
                    match self.read_after(&gens, ix, 0, &bounds, sk) {
                        Ok(lines) => break lines,
                        Err(e @ (ArchiveError::Read { .. } | ArchiveError::Gone { .. }))
                            if ix > 0 =>
                        {
                            sk.push((ix, e));
                            ix -= 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Anchor::Before(key, offset) => {
                self.read_before(&gens, find(key)?, *offset, &bounds, sk)?
            }
            Anchor::After(key, offset) => {
                self.read_after(&gens, find(key)?, *offset, &bounds, sk)?
            }
            Anchor::Around(key, offset) => {
                let ix = find(key)?;
                let half = PageBounds {
                    max_lines: bounds.max_lines / 2,
                    max_bytes: bounds.max_bytes / 2,
                    ..bounds
                };
                let start = self.line_start_at(&gens[ix], *offset, &bounds)?;
                // Lines before the one `offset` falls in (those ending at its start), then it.
                let mut lines = if half.max_lines > 0 {
                    self.read_before(&gens, ix, start, &half, sk)?
                } else {
                    Vec::new()
                };
                let rest = PageBounds {
                    max_lines: bounds.max_lines - lines.len(),
                    ..half
                };
                lines.extend(self.read_after(&gens, ix, start, &rest, sk)?);
                lines
            }
            Anchor::BeforeSeq(seq) => {
                let (ix, offset) = self.place(file, &gens, *seq, &bounds)?;
                self.read_before(&gens, ix, offset, &bounds, sk)?
            }
        };
        self.number_lines(&gens, &mut lines, &bounds);
        // The page above: from its first line; an empty page going down, from where it was
        // asked (lines before that place may exist).
        let requested = match anchor {
            Anchor::After(key, offset) => Some(Position {
                gen: gens[find(key)?].key.clone(),
                offset: *offset,
            }),
            _ => None,
        };
        let before = match lines.first() {
            Some((ix, first)) if first.offset > 0 || ix + 1 < gens.len() => Some(Position {
                gen: gens[*ix].key.clone(),
                offset: first.offset,
            }),
            Some(_) => None,
            None => requested.clone(),
        };
        // The page below: from the end of the last line; an empty page, from where it was
        // asked, or the end of the newest generation whose key is final (a file with no
        // complete line yet has none: its key would change with its first line).
        let after = match lines.last() {
            Some((ix, last)) => Some(Position {
                gen: gens[*ix].key.clone(),
                offset: last.end,
            }),
            None => match requested {
                Some(position) => Some(position),
                None => match gens.iter().find(|g| g.settled) {
                    Some(g) => Some(Position {
                        gen: g.key.clone(),
                        offset: page::readable_end(g, &bounds)?,
                    }),
                    None => None,
                },
            },
        };
        let max_line = self.limits.max_line;
        let mut page = Page {
            lines: lines
                .into_iter()
                .map(|(ix, raw)| {
                    let (text, truncated) = crate::tail::line_text(&raw.bytes, max_line);
                    PageLine {
                        gen: gens[ix].key.clone(),
                        dev_ino: gens[ix].dev_ino,
                        compressed: gens[ix].compressed,
                        offset: raw.offset,
                        number: raw.number,
                        seq: None,
                        text,
                        truncated,
                    }
                })
                .collect(),
            before,
            after,
            skipped: skipped
                .into_iter()
                .map(|(ix, error)| {
                    (
                        gens[ix].key.clone(),
                        gens[ix].name.clone(),
                        error.to_string(),
                    )
                })
                .collect(),
        };
        self.positions
            .name_seqs(file, &gens, &mut page.lines, &bounds);
        Ok(page)
    }

    /// The start of the line `offset` falls in (a plain generation; a gzip one counts from 0).
    fn line_start_at(
        &self,
        generation: &Generation,
        offset: u64,
        bounds: &PageBounds,
    ) -> Result<u64, ArchiveError> {
        // The line ending at or after `offset + 1` that holds `offset` starts where the lines
        // before `offset + 1` end minus the last of them.
        let one = PageBounds {
            max_lines: 1,
            ..*bounds
        };
        let found = page::lines_before(generation, offset.saturating_add(1), &one)?;
        Ok(found.lines.first().map_or(0, |l| l.offset))
    }

    /// Up to a page of lines before `end` in generation `ix`, going on into older ones (an
    /// older one that cannot be read is passed over, and put in `skipped`).
    fn read_before(
        &self,
        gens: &[Generation],
        ix: usize,
        end: u64,
        bounds: &PageBounds,
        skipped: &mut Vec<(usize, ArchiveError)>,
    ) -> Result<Vec<(usize, RawLine)>, ArchiveError> {
        let mut out: Vec<(usize, RawLine)> = Vec::new();
        let mut walk = Walk::new(ix, bounds);
        let mut end = end;
        loop {
            let read = page::lines_before(&gens[walk.ix], end, &walk.left());
            let Some(found) = walk.passed_over(read, skipped)? else {
                return Ok(out);
            };
            walk.taken(&found.lines);
            let mut older: Vec<(usize, RawLine)> =
                found.lines.into_iter().map(|l| (walk.ix, l)).collect();
            older.append(&mut out);
            out = older;
            if !found.reached_edge || walk.full() || walk.ix + 1 >= gens.len() {
                return Ok(out);
            }
            walk.ix += 1;
            end = u64::MAX;
        }
    }

    /// Up to a page of lines from `start` in generation `ix`, going on into newer ones (a newer
    /// one that cannot be read is passed over, and put in `skipped`).
    fn read_after(
        &self,
        gens: &[Generation],
        ix: usize,
        start: u64,
        bounds: &PageBounds,
        skipped: &mut Vec<(usize, ArchiveError)>,
    ) -> Result<Vec<(usize, RawLine)>, ArchiveError> {
        let mut out: Vec<(usize, RawLine)> = Vec::new();
        let mut walk = Walk::new(ix, bounds);
        let mut start = start;
        loop {
            if walk.full() {
                return Ok(out);
            }
            let read = page::lines_after(&gens[walk.ix], start, u64::MAX, &walk.left());
            let Some(found) = walk.passed_over(read, skipped)? else {
                return Ok(out);
            };
            walk.taken(&found.lines);
            out.extend(found.lines.into_iter().map(|l| (walk.ix, l)));
            if !found.reached_edge || walk.ix == 0 {
                return Ok(out);
            }
            walk.ix -= 1;
            start = 0;
        }
    }

    /// Fills in the line numbers the read did not count (plain generations, read backwards or
    /// from the middle) from the line index, where it knows them.
    fn number_lines(
        &self,
        gens: &[Generation],
        lines: &mut [(usize, RawLine)],
        bounds: &PageBounds,
    ) {
        let mut i = 0;
        while i < lines.len() {
            let ix = lines[i].0;
            let run_end = lines[i..].iter().take_while(|(g, _)| *g == ix).count() + i;
            let first = match lines[i].1.number {
                Some(n) => Some(n),
                None => self
                    .line_index
                    .number_at(&gens[ix], lines[i].1.offset, bounds.deadline),
            };
            if let Some(first) = first {
                for (k, (_, line)) in lines[i..run_end].iter_mut().enumerate() {
                    line.number = Some(first + k as u64);
                }
            }
            i = run_end;
        }
    }

    /// The generation and offset of the line the hub numbered `seq`.
    fn place(
        &self,
        file: FileIx,
        gens: &[Generation],
        seq: u64,
        bounds: &PageBounds,
    ) -> Result<(usize, u64), ArchiveError> {
        self.positions
            .place(file, gens, seq, bounds)
            .ok_or_else(|| ArchiveError::UnknownSeq {
                file: self.hub.id(file).to_owned(),
                seq,
            })
    }

    /// The hub (for ids).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}
