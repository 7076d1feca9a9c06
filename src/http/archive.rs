//! The routes of a file's past on disk ([`crate::archive`]): `GET /api/generations` (the file
//! and its rotated siblings), `GET /api/page` (lines before or after a position, JSON or text)
//! and `GET /api/search` (hits streamed as they are found, as newline-delimited JSON or as
//! `grep` prints them). Disk reads run off the async workers: pages on the blocking pool, each
//! search on a thread of its own at a lower CPU priority, at most `--max-searches` at once.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::time::UNIX_EPOCH;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::access;
use super::error::ApiError;
use super::query::pairs;
use super::stream::Out;
use super::{terminal, AppState};
use crate::archive::search::{self, Case, Event, Query, Stopped, Summary, Target};
use crate::archive::{Anchor, ArchiveError, Generation};
use crate::hub::FileIx;
use crate::protocol::{DiskLine, GenerationInfo, PageAnswer, SearchRecord, SkippedGeneration};

/// Most files one search names.
const MAX_SEARCH_FILES: usize = 16;

fn get<'a>(pairs: &'a [(&'static str, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
}

/// The file a request names (exactly one).
fn one_file(
    state: &AppState,
    pairs: &[(&'static str, String)],
) -> Result<(FileIx, String), ApiError> {
    let id = get(pairs, "file").ok_or(ApiError::BadParam {
        name: "file",
        message: "missing: say which file, e.g. ?file=app.log (GET api/files lists ids)".into(),
    })?;
    let ix = state
        .hub
        .lookup(id)
        .ok_or_else(|| ApiError::UnknownFile(id.to_owned()))?;
    Ok((ix, id.to_owned()))
}

/// A generation key as the server makes them: 16 hex digits, maybe `-INODE` (hex). Anything else (a
/// path, a file name) is refused before any lookup.
fn generation_key(name: &'static str, value: &str) -> Result<String, ApiError> {
    let (hash, inode) = value.split_once('-').unwrap_or((value, "0"));
    let ok = hash.len() == 16
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && (1..=16).contains(&inode.len())
        && inode.bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::BadParam {
            name,
            message: "not a generation key (GET api/generations?file=ID lists them)".into(),
        })
    }
}

/// `OFFSET` or `GEN:OFFSET`.
fn position(name: &'static str, value: &str) -> Result<(Option<String>, u64), ApiError> {
    let (key, offset) = match value.rsplit_once(':') {
        Some((key, offset)) => (Some(generation_key(name, key)?), offset),
        None => (None, value),
    };
    let offset = super::query::number(name, offset)?;
    Ok((key, offset))
}

/// `format=text` (or `Accept: text/plain`) or JSON.
fn wants_text(req: &HttpRequest, pairs: &[(&'static str, String)]) -> Result<bool, ApiError> {
    match get(pairs, "format") {
        Some("text") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::BadParam {
            name: "format",
            message: format!("`{other}` is not a format: use format=text or format=json"),
        }),
        None => Ok(super::query::accepts_text(req)),
    }
}

fn generation_info(generation: &Generation) -> GenerationInfo {
    GenerationInfo {
        gen: generation.key.clone(),
        name: generation.name.clone(),
        current: generation.current,
        compressed: generation.compressed,
        size: generation.size,
        modified_ms: generation
            .modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

/// Runs blocking disk work off the async workers, at most `max_page_reads` at once (a page
/// far into a gzip generation decompresses up to it: a flood of them must not take every
/// blocking thread).
async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, ApiError> {
    let permit = state.archive.try_page().ok_or_else(|| {
        ApiError::Busy("too many reads of files on disk at once; try again shortly".into())
    })?;
    web::block(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|_| ApiError::Busy("the server is shutting down".into()))?
    .map_err(ApiError::Past)
}

/// `GET /api/generations?file=ID`: the file at the path and its rotated siblings, newest first.
pub async fn generations(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    access::check(&req, &state)?;
    let pairs = pairs(req.query_string(), &["file"], false)?;
    let (ix, id) = one_file(&state, &pairs)?;
    let archive = state.archive.clone();
    let gens = blocking(&state, move || archive.generations(ix)).await?;
    let list: Vec<GenerationInfo> = gens.iter().map(generation_info).collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "file": id, "generations": list })))
}

/// `GET /api/page?file=ID[&gen=KEY][&before=POS|&after=POS|&around=POS|&before_seq=SEQ|&at=oldest]`
/// `[&max=N][&format=text][&raw=1]`: a page of lines from disk.
pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    access::check(&req, &state)?;
    let pairs = pairs(
        req.query_string(),
        &[
            "file",
            "gen",
            "before",
            "after",
            "around",
            "before_seq",
            "at",
            "max",
            "format",
            "raw",
        ],
        false,
    )?;
    let (ix, id) = one_file(&state, &pairs)?;
    let text = wants_text(&req, &pairs)?;
    let raw = get(&pairs, "raw")
        .map(terminal::parse_raw)
        .transpose()?
        .unwrap_or(false);
    let gen = get(&pairs, "gen")
        .map(|g| generation_key("gen", g))
        .transpose()?;
    let max = get(&pairs, "max")
        .map(|m| super::query::number("max", m))
        .transpose()?
        .map_or(100, |m| m as usize)
        .clamp(1, state.archive.limits().page_max_lines);
    let anchors: Vec<&str> = ["before", "after", "around", "before_seq", "at"]
        .into_iter()
        .filter(|k| get(&pairs, k).is_some())
        .collect();
    if anchors.len() > 1 {
        return Err(ApiError::BadParam {
            name: "before",
            message: format!("give one place to start at, not {}", anchors.join(" and ")),
        });
    }
    let with_gen = |name: &'static str, value: &str| -> Result<(Option<String>, u64), ApiError> {
        let (key, offset) = position(name, value)?;
        match (key, &gen) {
            (Some(a), Some(b)) if &a != b => Err(ApiError::BadParam {
                name,
                message: format!("names generation {a} but gen= names {b}"),
            }),
            (key, _) => Ok((key.or_else(|| gen.clone()), offset)),
        }
    };
    let anchor = match anchors.first().copied() {
        None if gen.is_some() => Anchor::Before(gen.clone(), u64::MAX),
        None => Anchor::Newest,
        Some("before") => {
            let (k, o) = with_gen("before", get(&pairs, "before").unwrap_or_default())?;
            Anchor::Before(k, o)
        }
        Some("after") => {
            let (k, o) = with_gen("after", get(&pairs, "after").unwrap_or_default())?;
            Anchor::After(k, o)
        }
        Some("around") => {
            let (k, o) = with_gen("around", get(&pairs, "around").unwrap_or_default())?;
            Anchor::Around(k, o)
        }
        Some("before_seq") => Anchor::BeforeSeq(super::query::number(
            "before_seq",
            get(&pairs, "before_seq").unwrap_or_default(),
        )?),
        Some(_) => match get(&pairs, "at") {
            Some("oldest") if gen.is_none() => Anchor::Oldest,
            Some("oldest") => Anchor::After(gen.clone(), 0),
            Some("newest") if gen.is_none() => Anchor::Newest,
            Some("newest") => Anchor::Before(gen.clone(), u64::MAX),
            Some(other) => {
                return Err(ApiError::BadParam {
                    name: "at",
                    message: format!("`{other}`: use at=oldest or at=newest"),
                })
            }
            None => Anchor::Newest,
        },
    };
    state.stats.pages.fetch_add(1, Relaxed);
    let archive = state.archive.clone();
    let page = blocking(&state, move || archive.page(ix, &anchor, max)).await?;
    let place = |p: &Option<crate::archive::Position>| {
        p.as_ref().map(|p| format!("{}:{}", p.gen, p.offset))
    };
    let before = place(&page.before);
    let after = place(&page.after);
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if text {
        if let Some(before) = &before {
            response.insert_header(("X-Tailcast-Before", before.clone()));
        }
        if let Some(after) = &after {
            response.insert_header(("X-Tailcast-After", after.clone()));
        }
        let mut body = Vec::with_capacity(page.lines.iter().map(|l| l.text.len() + 1).sum());
        for line in &page.lines {
            if raw {
                body.extend_from_slice(line.text.as_bytes());
            } else {
                terminal::push_line(&line.text, &mut body);
            }
            body.push(b'\n');
        }
        return Ok(response
            .content_type("text/plain; charset=utf-8")
            .body(body));
    }
    let answer = PageAnswer {
        file: &id,
        epoch: state.hub.epoch(),
        lines: page
            .lines
            .iter()
            .map(|l| DiskLine {
                file: None,
                gen: &l.gen,
                offset: l.offset,
                line: l.number,
                seq: l.seq,
                text: &l.text,
                truncated: l.truncated,
            })
            .collect(),
        before,
        after,
        skipped: page
            .skipped
            .iter()
            .map(|(gen, name, error)| SkippedGeneration {
                gen: gen.clone(),
                name: name.clone(),
                error: error.clone(),
            })
            .collect(),
    };
    Ok(response.json(answer))
}

/// How search results are written.
struct SearchFormat {
    text: bool,
    raw: bool,
    line_numbers: bool,
    /// Several generations or files: text lines start with the generation's label.
    labels: bool,
}

/// `GET /api/search?file=ID[&file=ID...]&q=PATTERN[&regex=1][&case=sensitive|insensitive|smart]`
/// `[&invert=1][&word=1][&context=N][&max=N][&generations=current|all][&gen=KEY]`
/// `[&format=text][&line_number=1][&raw=1]`: hits streamed as they are found.
pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    access::check(&req, &state)?;
    let pairs = pairs(
        req.query_string(),
        &[
            "file",
            "q",
            "regex",
            "case",
            "invert",
            "word",
            "context",
            "max",
            "generations",
            "gen",
            "format",
            "line_number",
            "raw",
        ],
        true,
    )?;
    let limits = *state.archive.limits();
    let switch = |key: &'static str| -> Result<bool, ApiError> {
        get(&pairs, key)
            .map(|v| super::query::switch(key, v))
            .transpose()
            .map(|v| v.unwrap_or(false))
    };
    let pattern = get(&pairs, "q").ok_or(ApiError::BadParam {
        name: "q",
        message: "missing: say what to look for, e.g. q=timeout".into(),
    })?;
    if pattern.len() > state.config.max_grep_bytes {
        return Err(ApiError::BadParam {
            name: "q",
            message: format!(
                "longer than {} bytes (--max-grep-bytes)",
                state.config.max_grep_bytes
            ),
        });
    }
    let case = match get(&pairs, "case") {
        None | Some("sensitive") => Case::Sensitive,
        Some("insensitive") => Case::Insensitive,
        Some("smart") => Case::Smart,
        Some(other) => {
            return Err(ApiError::BadParam {
                name: "case",
                message: format!("`{other}`: use case=sensitive, case=insensitive or case=smart"),
            })
        }
    };
    let context = get(&pairs, "context")
        .map(|c| super::query::number("context", c))
        .transpose()?
        .unwrap_or(0) as usize;
    if context > limits.max_context {
        return Err(ApiError::BadParam {
            name: "context",
            message: format!("at most {} lines of context", limits.max_context),
        });
    }
    let max_hits = get(&pairs, "max")
        .map(|m| super::query::number("max", m))
        .transpose()?
        .map_or(limits.search_max_hits.min(1000), |m| m as usize);
    if max_hits == 0 || max_hits > limits.search_max_hits {
        return Err(ApiError::BadParam {
            name: "max",
            message: format!(
                "between 1 and {} hits (--search-max-hits)",
                limits.search_max_hits
            ),
        });
    }
    let query = Query {
        pattern: pattern.to_owned(),
        regex: switch("regex")?,
        case,
        invert: switch("invert")?,
        word: switch("word")?,
        context,
        max_hits,
    };
    let all = match get(&pairs, "generations") {
        None | Some("current") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::BadParam {
                name: "generations",
                message: format!("`{other}`: use generations=current or generations=all"),
            })
        }
    };
    let gen = get(&pairs, "gen")
        .map(|g| generation_key("gen", g))
        .transpose()?;
    let ids: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| *k == "file")
        .map(|(_, v)| v.clone())
        .collect();
    if ids.is_empty() {
        return Err(ApiError::BadParam {
            name: "file",
            message: "missing: say which file, e.g. ?file=app.log (GET api/files lists ids)".into(),
        });
    }
    if ids.len() > MAX_SEARCH_FILES {
        return Err(ApiError::BadParam {
            name: "file",
            message: format!("at most {MAX_SEARCH_FILES} files per search"),
        });
    }
    if gen.is_some() && (ids.len() > 1 || all) {
        return Err(ApiError::BadParam {
            name: "gen",
            message: "names a generation of one file: give one file=, and no generations=all"
                .into(),
        });
    }
    let files: Vec<(FileIx, String)> = ids
        .iter()
        .map(|id| {
            state
                .hub
                .lookup(id)
                .map(|ix| (ix, id.clone()))
                .ok_or_else(|| ApiError::UnknownFile(id.clone()))
        })
        .collect::<Result<_, _>>()?;
    let matcher = query.matcher(&limits).map_err(|e| ApiError::BadParam {
        name: "q",
        message: e.0,
    })?;
    let format = SearchFormat {
        text: wants_text(&req, &pairs)?,
        raw: switch("raw")?,
        line_numbers: switch("line_number")?,
        labels: false,
    };
    let permit = state.archive.try_search().ok_or_else(|| {
        state.stats.searches_refused.fetch_add(1, Relaxed);
        ApiError::Busy(format!(
            "too many searches running ({}); try again shortly, or raise --max-searches",
            limits.max_searches
        ))
    })?;
    let archive = state.archive.clone();
    let targets = blocking(&state, move || {
        let mut targets = Vec::new();
        for (ix, id) in files {
            let gens = archive.generations(ix)?;
            // Labels are made from the configured file's name, there or not.
            let configured = archive.hub().info(ix).path;
            let base = std::path::Path::new(&configured)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            let chosen: Vec<Generation> = match &gen {
                Some(key) => vec![gens.into_iter().find(|g| &g.key == key).ok_or_else(|| {
                    ArchiveError::UnknownGeneration {
                        file: id.clone(),
                        key: key.clone(),
                    }
                })?],
                None if all => gens,
                None => gens.into_iter().filter(|g| g.current).collect(),
            };
            for generation in chosen {
                // `app.log.1` of file `nginx/app.log` is `nginx/app.log.1`.
                let label = match (&base, generation.current) {
                    (_, true) => id.clone(),
                    (Some(base), false) if generation.name.starts_with(base.as_str()) => {
                        format!("{id}{}", &generation.name[base.len()..])
                    }
                    _ => format!("{id}:{}", generation.name),
                };
                targets.push(Target {
                    file: id.clone(),
                    generation,
                    label,
                });
            }
        }
        Ok(targets)
    })
    .await?;
    let format = SearchFormat {
        labels: targets.len() > 1,
        ..format
    };
    state.stats.searches.fetch_add(1, Relaxed);
    let (events_tx, mut events) = mpsc::channel::<Msg>(64);
    let (tx, rx) = mpsc::channel(16);
    let conn = state.conn(&req);
    let thread_conn = conn.clone();
    let thread_targets = targets.clone();
    let stats = state.stats.clone();
    let spawned = std::thread::Builder::new()
        .name("tailcast-search".into())
        .spawn(move || {
            lower_priority();
            // actix does not drop a streaming body when its client goes until something is
            // written, and a scan with no hits writes nothing: the socket itself is asked.
            let gone = || events_tx.is_closed() || thread_conn.peer_closed();
            let sender = events_tx.clone();
            let mut emit = |event: Event| sender.blocking_send(Msg::Event(event)).is_ok();
            let summary = search::run(&thread_targets, &query, &matcher, &limits, &mut emit, &gone);
            // Given back before the end is told, so a client that searches again at once finds
            // the place free.
            drop(permit);
            stats.search_bytes.fetch_add(summary.scanned_bytes, Relaxed);
            tracing::debug!(hits = summary.hits, scanned = summary.scanned_bytes, stopped = ?summary.stopped, "search done");
            let _ = events_tx.blocking_send(Msg::End(summary));
        });
    if spawned.is_err() {
        return Err(ApiError::Busy(
            "cannot start a search thread now; retry shortly".into(),
        ));
    }
    let out = Out {
        state: state.get_ref().clone(),
        tx,
        conn,
    };
    let content_type = if format.text {
        "text/plain; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    let drain_guard = state.shutdown.guard();
    let mut shutdown = state.shutdown.clone();
    actix_web::rt::spawn(async move {
        let _drain_guard = drain_guard;
        loop {
            let msg = tokio::select! {
                msg = events.recv() => msg,
                _ = shutdown.fired() => None,
            };
            let Some(msg) = msg else { break };
            let mut chunk = Vec::new();
            let mut ended = write_msg(&format, &targets, &msg, &mut chunk);
            while chunk.len() < 16 * 1024 && !ended {
                match events.try_recv() {
                    Ok(msg) => ended = write_msg(&format, &targets, &msg, &mut chunk),
                    Err(_) => break,
                }
            }
            match out.room(chunk.len()).await {
                Ok(slot) => out.put(slot, chunk),
                Err(_) => break,
            }
            if ended {
                break;
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(ReceiverStream::new(rx)))
}

/// What the search thread hands the response.
enum Msg {
    Event(Event),
    End(Summary),
}

/// Appends one message in the response's format; true for the last one.
fn write_msg(format: &SearchFormat, targets: &[Target], msg: &Msg, out: &mut Vec<u8>) -> bool {
    let json_line = |record: &SearchRecord<'_>, out: &mut Vec<u8>| {
        if serde_json::to_writer(&mut *out, record).is_ok() {
            out.push(b'\n');
        }
    };
    fn disk_line<'a>(targets: &'a [Target], found: &'a search::Found) -> DiskLine<'a> {
        let target = &targets[found.target];
        DiskLine {
            file: Some(&target.file),
            gen: &target.generation.key,
            offset: found.offset,
            line: Some(found.number),
            seq: None,
            text: &found.text,
            truncated: found.truncated,
        }
    }
    match msg {
        Msg::Event(Event::Target(ix)) => {
            if !format.text {
                let target = &targets[*ix];
                json_line(
                    &SearchRecord::Generation {
                        file: &target.file,
                        gen: &target.generation.key,
                        name: &target.generation.name,
                    },
                    out,
                );
            }
            false
        }
        Msg::Event(Event::Hit(found)) | Msg::Event(Event::Context(found)) => {
            let hit = matches!(msg, Msg::Event(Event::Hit(_)));
            if format.text {
                let separator = if hit { ':' } else { '-' };
                let mut prefix = String::new();
                if format.labels {
                    let _ = write!(prefix, "{}{separator}", targets[found.target].label);
                }
                if format.line_numbers {
                    let _ = write!(prefix, "{}{separator}", found.number);
                }
                out.extend_from_slice(prefix.as_bytes());
                if format.raw {
                    out.extend_from_slice(found.text.as_bytes());
                } else {
                    terminal::push_line(&found.text, out);
                }
                out.push(b'\n');
            } else if hit {
                json_line(&SearchRecord::Match(disk_line(targets, found)), out);
            } else {
                json_line(&SearchRecord::Context(disk_line(targets, found)), out);
            }
            false
        }
        Msg::Event(Event::Break) => {
            if format.text {
                out.extend_from_slice(b"--\n");
            }
            false
        }
        Msg::Event(Event::Failed(ix, error)) => {
            let target = &targets[*ix];
            if format.text {
                out.extend_from_slice(format!("tailcast: {}: {error}\n", target.label).as_bytes());
            } else {
                json_line(
                    &SearchRecord::Error {
                        file: &target.file,
                        gen: &target.generation.key,
                        message: error.to_string(),
                    },
                    out,
                );
            }
            false
        }
        Msg::End(summary) => {
            let stopped = summary.stopped.and_then(|s| match s {
                Stopped::MaxHits => Some("max_hits"),
                Stopped::TimeLimit => Some("time_limit"),
                Stopped::Gone => None,
            });
            if format.text {
                match stopped {
                    Some("max_hits") => out.extend_from_slice(
                        format!("tailcast: search stopped after {} hits (max=)\n",
                            summary.hits)
                            .as_bytes(),
                    ),
                    Some(_) => out.extend_from_slice(
                        b"tailcast: search stopped at its time limit (--search-timeout): narrow it\n",
                    ),
                    None => {}
                }
            } else {
                json_line(
                    &SearchRecord::End {
                        hits: summary.hits,
                        scanned_bytes: summary.scanned_bytes,
                        elapsed_ms: summary.elapsed.as_millis() as u64,
                        stopped,
                    },
                    out,
                );
            }
            true
        }
    }
}

/// Searches run at a lower CPU priority than the tail and the live clients: on a busy machine a
/// long scan takes what they leave.
fn lower_priority() {
    // SAFETY: setpriority on the calling thread (its tid) only changes its nice value.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}
