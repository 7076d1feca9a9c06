//! `GET /poll`: HTTP long-poll on the same cursor (seq) as the WebSocket.
//!
//! Without `after`: the newest `backlog` lines at once. With `after`: every line with a greater
//! seq, at once if there is one, else the request is held (no busy CPU: it registers as a reader of
//! the file and is woken once per batch) until one comes or `timeout` passes. JSON by default;
//! `format=text` or `Accept: text/plain` gives the lines as text with the cursor in `X-Tailcast-*`
//! headers: terminal-safe ([`terminal`]) unless the client asks for `raw=1`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use super::error::ApiError;
use super::filter::{self, LineFilter};
use crate::hub::{BatchSlice, Delivery, FileIx, HistoryRead, LiveCursor, Start};

use super::encode::{PollFormat, PollMeta, PollPieces};
use crate::stats::Gauge;

use super::access;
use super::query::{self, After, Cursor, Resume};
use super::AppState;

/// Held polls wait this long by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most lines in one answer by default.
const DEFAULT_MAX: usize = 10_000;

#[derive(Debug, Default)]
struct PollParams {
    file: String,
    /// Every file asked for (`file` first); several are answered together ([`poll_many`]).
    files: Vec<String>,
    /// The combined cursor of several files.
    after_many: Option<After>,
    after: Option<Cursor>,
    backlog: Option<usize>,
    timeout: Option<Duration>,
    max: Option<usize>,
    text: bool,
    /// Text lines byte for byte, control characters included.
    raw: bool,
    grep: Option<String>,
    grep_invert: bool,
}

impl PollParams {
    fn parse(query: &str) -> Result<PollParams, ApiError> {
        let mut own = PollParams::default();
        let keys = ["max", "timeout", "format"];
        let shared = query::parse(query, &keys, query::MAX_FILES, |key, value| {
            match key {
                "max" => own.max = Some(query::number("max", value)?.max(1) as usize),
                "timeout" => own.timeout = Some(seconds(value)?),
                _ => {
                    own.text = match value {
                        "text" => true,
                        "json" => false,
                        _ => {
                            return Err(ApiError::BadParam {
                                name: "format",
                                message: format!("`{value}` is not a format: use json or text"),
                            })
                        }
                    }
                }
            }
            Ok(())
        })?;
        let after = match &shared.after {
            Some(after) if shared.files.len() == 1 => after.of(&shared.file, &shared.files)?,
            _ => None,
        };
        Ok(PollParams {
            file: shared.file,
            after,
            after_many: shared.after.filter(|_| shared.files.len() > 1),
            files: shared.files,
            backlog: shared.backlog,
            raw: shared.raw,
            grep: shared.grep,
            grep_invert: shared.grep_invert,
            ..own
        })
    }
}

fn seconds(value: &str) -> Result<Duration, ApiError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(1e6)))
        .ok_or_else(|| ApiError::BadParam {
            name: "timeout",
            message: format!("`{value}` is not a number of seconds ≥ 0"),
        })
}

/// What one answer carries.
struct Answer {
    file: FileIx,
    read: HistoryRead,
    last_seq: u64,
    reset: Option<Reset>,
    /// The lines were filtered (`grep`): the answer lists their seqs.
    filtered: bool,
}

/// Why an answer is a reset: the client's cursor means nothing in this numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// The cursor names another epoch (another server run): the answer holds the backlog.
    Epoch,
    /// A cursor in this numbering beyond the newest line: the answer is the live edge.
    CursorAhead,
}

impl Reset {
    /// The reason as the wire names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reset::Epoch => "epoch",
            Reset::CursorAhead => "cursor_ahead",
        }
    }
}

/// `GET /poll`.
pub async fn poll(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    access::check(&req, &state)?;
    let params = PollParams::parse(req.query_string())?;
    let filter = filter::from_query(
        params.grep.as_deref(),
        params.grep_invert,
        state.config.max_grep_bytes,
    )?;
    let filter = filter.as_ref();
    let text = params.text || query::accepts_text(&req);
    let cap = state.config.max_backlog;
    let max = params.max.unwrap_or(DEFAULT_MAX).min(cap);
    if params.files.len() > 1 {
        if text {
            return Err(ApiError::BadParam {
                name: "format",
                message: "text answers take one file: ask JSON for several, or \
                          /follow?file=a&file=b for text"
                    .into(),
            });
        }
        return poll_many(&state, &params, max, filter).await;
    }
    let ix = state
        .hub
        .lookup(&params.file)
        .ok_or_else(|| ApiError::UnknownFile(params.file.clone()))?;
    let resume = params.after.map(|cursor| cursor.resolve(state.hub.epoch()));
    let answer = match resume {
        None => backlog_answer(&state, ix, params.backlog, max, None, filter),
        // Another numbering: the client is told, and gets what it would without a cursor.
        Some(Resume::Reset { from_epoch }) => {
            tracing::debug!(
                file = %params.file,
                from_epoch,
                "poll: cursor from another epoch, reset"
            );
            backlog_answer(&state, ix, params.backlog, max, Some(Reset::Epoch), filter)
        }
        Some(Resume::After(after)) => {
            wait_after(&state, ix, after, max, params.timeout(&state), filter).await?
        }
    };
    count(&state, [&answer]);
    Ok(respond(&state, answer, text, params.raw))
}

impl PollParams {
    /// How long to hold the request.
    fn timeout(&self, state: &AppState) -> Duration {
        self.timeout
            .unwrap_or(DEFAULT_TIMEOUT)
            .min(state.config.max_poll_timeout)
    }
}

/// Counts an answered poll in the stats, with the gaps of its files' answers.
fn count<'a>(state: &AppState, answers: impl IntoIterator<Item = &'a Answer>) {
    state
        .stats
        .polls_answered
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let gaps = answers.into_iter().filter(|a| a.read.gap.is_some()).count();
    if gaps > 0 {
        state
            .stats
            .gaps
            .fetch_add(gaps as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One file of a poll of several: its reader (none when its cursor was ahead) and its answer
/// so far.
struct Part {
    cursor: Option<LiveCursor>,
    answer: Answer,
    /// What the file's answer is when nothing more is read: the cursor it was given, or where its
    /// backlog starts.
    at_once: bool,
}

/// `GET /poll?file=a&file=b...`: one answer for several files, `{"epoch","cursor","files":[...]}`
/// with each file's answer as a one-file poll gives it and `cursor` the combined cursor
/// (`EPOCH-ID:SEQ,ID:SEQ`) for the next request. Held until any file has a line (or a gap, a
/// reset), answered at once when a file starts at its backlog.
async fn poll_many(
    state: &AppState,
    params: &PollParams,
    max: usize,
    filter: Option<&LineFilter>,
) -> Result<HttpResponse, ApiError> {
    let epoch = state.hub.epoch();
    let wake = Arc::new(Notify::new());
    let mut parts = Vec::with_capacity(params.files.len());
    let files = query::files_with_cursors(&state.hub, &params.files, params.after_many.as_ref())?;
    for (ix, _, cursor) in files {
        let backlog = params.backlog.unwrap_or(state.config.default_backlog);
        let (start, reset) = match cursor.map(|c| c.resolve(epoch)) {
            None => (Start::Backlog(backlog.min(max)), None),
            Some(Resume::Reset { .. }) => (Start::Backlog(backlog.min(max)), Some(Reset::Epoch)),
            Some(Resume::After(after)) => (Start::After(after), None),
        };
        let answer = |last_seq, reset| Answer {
            file: ix,
            read: HistoryRead::default(),
            last_seq,
            reset,
            filtered: filter.is_some(),
        };
        parts.push(match state.hub.subscribe(ix, start, wake.clone()) {
            Ok(cursor) => Part {
                answer: answer(cursor.next_seq().saturating_sub(1), reset),
                cursor: Some(cursor),
                at_once: matches!(start, Start::Backlog(_)),
            },
            Err(ahead) => Part {
                cursor: None,
                answer: answer(ahead.last_seq, Some(Reset::CursorAhead)),
                at_once: true,
            },
        });
    }
    let timeout = params.timeout(state);
    let mut hold = Hold::new(state, timeout);
    loop {
        // The files share the answer's bounds, in the order asked.
        let mut lines = 0;
        let mut bytes = 0;
        let mut more = false;
        for part in &mut parts {
            let Some(cursor) = part.cursor.as_mut() else {
                continue;
            };
            let kept = &part.answer.read;
            if kept.line_count() > 0 || kept.gap.is_some() {
                // Read in an earlier pass (the answer waited for another file's lines that are
                // read back from elsewhere): kept as it is, and counted against the bounds.
                lines += kept.line_count();
                bytes += text_bytes(kept);
                continue;
            }
            if lines >= max || bytes >= state.config.client_buffer {
                break;
            }
            let read = read_bounded(
                cursor,
                max - lines,
                state.config.client_buffer - bytes,
                filter,
            );
            lines += read.line_count();
            bytes += text_bytes(&read);
            let scanned = cursor.next_seq().saturating_sub(1);
            let answer = &mut part.answer;
            answer.last_seq = match filter {
                Some(_) => scanned,
                None => read
                    .last_seq()
                    .or(read.gap.map(|g| g.to))
                    .unwrap_or(answer.last_seq),
            };
            more |= filter.is_some() && cursor.has_news();
            if !read.slices.is_empty() || read.gap.is_some() {
                answer.read = read;
            }
        }
        let news = parts
            .iter()
            .any(|p| p.answer.read.line_count() > 0 || p.answer.read.gap.is_some());
        let at_once = parts.iter().any(|p| p.at_once || p.answer.reset.is_some());
        // A file whose lines are being read back from elsewhere (in a cluster) and that has
        // nothing yet: its lines are on their way, so the answer waits for them (whatever the
        // timeout), or that file would never move on.
        let filling = parts.iter().any(|p| {
            p.cursor.as_ref().is_some_and(LiveCursor::filling)
                && p.answer.read.slices.is_empty()
                && p.answer.read.gap.is_none()
        });
        if filling {
            hold.wait_at_least(FILL_WAIT);
        }
        let ready = news || at_once || timeout.is_zero();
        if (ready && !filling) || Instant::now() >= hold.deadline {
            break;
        }
        if more {
            // A filter dropped every line read, and there is more: read on.
            tokio::task::yield_now().await;
            continue;
        }
        if !hold.wait(state, &wake).await? {
            break;
        }
    }
    let cursor = query::qualified_many(
        epoch,
        parts
            .iter()
            .map(|p| (state.hub.id(p.answer.file), p.answer.last_seq)),
    );
    // The cursor is digits, ids and punctuation; serialized all the same.
    let quoted = serde_json::to_string(&cursor).unwrap_or_default();
    let mut body = format!("{{\"epoch\":{epoch},\"cursor\":{quoted},\"files\":[").into_bytes();
    count(state, parts.iter().map(|p| &p.answer));
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let meta = meta(state, &part.answer);
        for piece in PollPieces::new(PollFormat::Json, part.answer.read.slices, meta) {
            body.extend_from_slice(&piece);
        }
    }
    body.extend_from_slice(b"]}");
    Ok(HttpResponse::Ok()
        .insert_header(("X-Tailcast-Cursor", cursor))
        .insert_header(("X-Tailcast-Epoch", epoch.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(body))
}

/// What a one-file answer says besides its lines.
fn meta<'a>(state: &'a AppState, answer: &Answer) -> PollMeta<'a> {
    let epoch = state.hub.epoch();
    PollMeta {
        file: state.hub.id(answer.file),
        epoch,
        last_seq: answer.last_seq,
        cursor: query::qualified(epoch, answer.last_seq),
        gap: answer.read.gap,
        reset: answer.reset.map(Reset::as_str),
        with_seqs: answer.filtered,
    }
}

/// The newest `backlog` lines (default: the server's), at once.
fn backlog_answer(
    state: &AppState,
    ix: FileIx,
    backlog: Option<usize>,
    max: usize,
    reset: Option<Reset>,
    filter: Option<&LineFilter>,
) -> Answer {
    let backlog = backlog.unwrap_or(state.config.default_backlog);
    // A backlog is read like a resume from where it starts, so it has the same byte bound.
    let wake = Arc::new(Notify::new());
    match state
        .hub
        .subscribe(ix, Start::Backlog(backlog.min(max)), wake)
    {
        Ok(mut cursor) => {
            let read = read_bounded(&mut cursor, max, state.config.client_buffer, filter);
            Answer {
                file: ix,
                // Without lines the cursor is just before where the backlog would have started;
                // a filtered answer's is past every line it looked at.
                last_seq: match filter {
                    None => read.last_seq(),
                    Some(_) => None,
                }
                .unwrap_or_else(|| cursor.next_seq().saturating_sub(1)),
                read,
                reset,
                filtered: filter.is_some(),
            }
        }
        // A backlog has no cursor that could be ahead.
        Err(ahead) => Answer {
            file: ix,
            read: HistoryRead::default(),
            last_seq: ahead.last_seq,
            reset,
            filtered: filter.is_some(),
        },
    }
}

/// Lines after `after`, waiting up to `timeout` for the first one. With a filter, lines that it
/// drops are read past without an answer (the next cursor is past them); the request is answered
/// once a read keeps a line, or at the timeout.
async fn wait_after(
    state: &AppState,
    ix: FileIx,
    after: u64,
    max: usize,
    timeout: Duration,
    filter: Option<&LineFilter>,
) -> Result<Answer, ApiError> {
    let filtered = filter.is_some();
    // Where a filtered read has looked up to: every line to there was kept or dropped.
    let mut scanned = after;
    let answer = |read: HistoryRead, scanned: u64| {
        let last_seq = if filtered {
            scanned
        } else {
            read.last_seq().or(read.gap.map(|g| g.to)).unwrap_or(after)
        };
        Answer {
            file: ix,
            read,
            last_seq,
            reset: None,
            filtered,
        }
    };
    let wake = Arc::new(Notify::new());
    let mut cursor = match state.hub.subscribe(ix, Start::After(after), wake.clone()) {
        Ok(cursor) => cursor,
        Err(ahead) => {
            // The cursor is from another server run (or made up): answer at once with the live
            // edge as the next cursor, flagged so the client knows.
            return Ok(Answer {
                file: ix,
                read: HistoryRead::default(),
                last_seq: ahead.last_seq,
                reset: Some(Reset::CursorAhead),
                filtered,
            });
        }
    };
    let mut hold = Hold::new(state, timeout);
    loop {
        let read = read_bounded(&mut cursor, max, state.config.client_buffer, filter);
        scanned = scanned.max(cursor.next_seq().saturating_sub(1));
        if read.line_count() > 0 || read.gap.is_some() {
            return Ok(answer(read, scanned));
        }
        if cursor.filling() {
            // Lines read back from elsewhere are on their way: wait for them (see poll_many).
            hold.wait_at_least(FILL_WAIT);
        } else if timeout.is_zero() {
            return Ok(answer(read, scanned));
        }
        if filtered && cursor.has_news() {
            // A filter dropped every line of that read, and there is more: read on, one
            // bounded read per turn of the worker.
            tokio::task::yield_now().await;
            if Instant::now() >= hold.deadline {
                return Ok(answer(HistoryRead::default(), scanned));
            }
            continue;
        }
        if !hold.wait(state, &wake).await? {
            return Ok(answer(HistoryRead::default(), scanned));
        }
    }
}

/// Bytes of line text a read holds.
fn text_bytes(read: &HistoryRead) -> usize {
    read.slices.iter().map(BatchSlice::text_bytes).sum()
}

/// How long a poll waits for lines being read back from elsewhere (a cluster's Redis; that read
/// has its own `--redis-timeout`, after which the poll gets a gap), even with `timeout=0`.
const FILL_WAIT: Duration = Duration::from_secs(10);

/// A request held until its files have news, its deadline or the shutdown.
struct Hold {
    started: Instant,
    deadline: Instant,
    shutdown: crate::shutdown::Shutdown,
    /// Once held: its place among --max-polls, and what keeps the shutdown's drain waiting.
    held: Option<(crate::stats::Slot, Option<crate::shutdown::DrainGuard>)>,
}

impl Hold {
    fn new(state: &AppState, timeout: Duration) -> Hold {
        let started = Instant::now();
        Hold {
            started,
            deadline: started + timeout,
            shutdown: state.shutdown.clone(),
            held: None,
        }
    }

    /// Holds the request for at least `wait` from its start.
    fn wait_at_least(&mut self, wait: Duration) {
        self.deadline = self.deadline.max(self.started + wait);
    }

    /// Waits for `wake` (true), or the deadline or the shutdown (false).
    async fn wait(&mut self, state: &AppState, wake: &Notify) -> Result<bool, ApiError> {
        if self.held.is_none() {
            // Nothing yet: the request is held, which counts against --max-polls.
            self.held = Some((
                state.take_slot(Gauge::PollsWaiting)?,
                state.shutdown.guard(),
            ));
        }
        Ok(tokio::select! {
            _ = wake.notified() => true,
            _ = sleep_until(self.deadline) => false,
            _ = self.shutdown.fired() => false,
        })
    }
}

/// What follows the cursor: at most `max` lines and `max_bytes` of text (the rest comes on the
/// next poll), of which only those the filter keeps.
fn read_bounded(
    cursor: &mut LiveCursor,
    max: usize,
    max_bytes: usize,
    filter: Option<&LineFilter>,
) -> HistoryRead {
    let mut read = HistoryRead::default();
    for delivery in filter::apply(filter, cursor.read(max, max_bytes)) {
        match delivery {
            Delivery::Gap(gap) => read.gap = Some(gap),
            Delivery::Lines(slice) => read.slices.push(slice),
            // A poll answers with whole lines only.
            Delivery::State(..) | Delivery::Pending { .. } => {}
        }
    }
    read
}

fn respond(state: &AppState, answer: Answer, text: bool, raw: bool) -> HttpResponse {
    let read = &answer.read;
    let epoch = state.hub.epoch();
    let cursor = query::qualified(epoch, answer.last_seq);
    let mut response = HttpResponse::Ok();
    response
        .insert_header(("X-Tailcast-Cursor", cursor.clone()))
        .insert_header(("X-Tailcast-Epoch", state.hub.epoch().to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(gap) = read.gap {
        response.insert_header(("X-Tailcast-Gap", format!("{}-{}", gap.from, gap.to)));
    }
    if let Some(reset) = answer.reset {
        response.insert_header(("X-Tailcast-Reset", "1"));
        response.insert_header(("X-Tailcast-Reset-Reason", reset.as_str()));
    }
    if text {
        // JSON lists them in the body; text has only the header to say which lines were cut.
        let cut = super::encode::truncated_seqs(&read.slices);
        if !cut.is_empty() {
            response.insert_header(("X-Tailcast-Truncated", seq_list(&cut)));
        }
    }
    let format = if text {
        response.content_type("text/plain; charset=utf-8");
        PollFormat::Text { raw }
    } else {
        response.content_type("application/json");
        PollFormat::Json
    };
    let meta = meta(state, &answer);
    // A large answer is encoded as the client takes it (see PollPieces); one that fits in a
    // piece, the usual case, goes out whole with its Content-Length.
    let mut pieces = PollPieces::new(format, answer.read.slices, meta);
    let first = pieces.next().unwrap_or_default();
    if pieces.finished() {
        return response.body(first);
    }
    let rest = futures_util::stream::once(std::future::ready(first))
        .chain(futures_util::stream::iter(pieces));
    let mut response = response.streaming(rest.map(Ok::<_, std::convert::Infallible>));
    // Made as actix asks for it: see MadeOnDemand (a stalled reader of a long answer is reset).
    response.extensions_mut().insert(super::conn::MadeOnDemand);
    response
}

/// Seqs as `A,B,C-D`: runs of consecutive seqs as ranges, so that a burst of cut lines keeps
/// the header short.
fn seq_list(seqs: &[u64]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < seqs.len() {
        let start = seqs[i];
        let mut end = start;
        while seqs.get(i + 1) == Some(&(end + 1)) {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_parsed_and_bad_ones_named() {
        let p = PollParams::parse("file=a.log&after=5&timeout=1.5&format=text").unwrap();
        assert!(!p.raw, "terminal-safe text unless asked");
        assert!(PollParams::parse("file=a.log&raw=1").unwrap().raw);
        assert_eq!(p.file, "a.log");
        assert_eq!(p.after, Some(Cursor::Seq(5)));
        assert_eq!(p.timeout, Some(Duration::from_millis(1500)));
        assert!(p.text);
        let q = PollParams::parse("file=a.log&after=17-5").unwrap();
        assert_eq!(q.after, Some(Cursor::Qualified { epoch: 17, seq: 5 }));
        let err = PollParams::parse("file=a&after=abc").unwrap_err();
        assert!(err.to_string().contains("`after`"), "{err}");
        let err = PollParams::parse("after=1").unwrap_err();
        assert!(err.to_string().contains("`file`"), "{err}");
    }

    #[test]
    fn cut_seqs_are_listed_with_runs_as_ranges() {
        assert_eq!(seq_list(&[12]), "12");
        assert_eq!(seq_list(&[12, 15, 16, 17, 20]), "12,15-17,20");
    }
}
