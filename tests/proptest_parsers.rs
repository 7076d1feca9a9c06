//! Property tests for the two parsers that take untrusted input: the line splitter (bytes from any
//! file) and the client message parser (JSON from any WebSocket client).
//!
//! The splitter is compared against a deliberately naive reference written here (split the whole
//! input on `\n`, strip one `\r`, cap at the same UTF-8-aware rule as `cap_utf8`, decode lossily),
//! under arbitrary chunking and flush points. The message parser is checked never to panic on
//! arbitrary text and JSON, and against an oracle that says which JSON objects are valid messages.
//! Case counts are kept modest so the file runs in seconds in a debug build; raise them locally
//! with `PROPTEST_CASES=10000`.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Value};
use tailcast::http::encode::whole_batch_frame;
use tailcast::http::ws_out;
use tailcast::hub::Batch;
use tailcast::protocol::{ClientMessage, WireCursor};
use tailcast::tail::{LineBatch, LineSplitter};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 384;

fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(CASES),
        // This suite is run in CI; a failure prints the minimal input and the seed. Do not write
        // `proptest-regressions/` files next to the tests.
        failure_persistence: None,
        ..Config::default()
    }
}

// ------------------------------------------------------------------------------------------------
// The reference splitter
// ------------------------------------------------------------------------------------------------

/// The splitter's cap rule, restated: the first `max` bytes, moved back over at most four UTF-8
/// continuation bytes so that a sequence is not cut in half; if four continuation bytes in a row
/// sit at the cut (not UTF-8 anyway), cut at `max` exactly.
fn ref_cap(line: &[u8], max: usize) -> &[u8] {
    if line.len() <= max {
        return line;
    }
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    let mut end = max;
    let mut steps = 0;
    while end > 0 && steps < 4 && is_continuation(line[end]) {
        end -= 1;
        steps += 1;
    }
    if steps == 4 {
        end = max;
    }
    &line[..end]
}

/// One raw line (the bytes between two `\n`, or a flushed remainder) as the splitter must emit it:
/// `(text, truncated)`.
fn ref_line(raw: &[u8], max: usize) -> (String, bool) {
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    if line.len() <= max {
        (String::from_utf8_lossy(line).into_owned(), false)
    } else {
        (
            String::from_utf8_lossy(ref_cap(line, max)).into_owned(),
            true,
        )
    }
}

/// What a splitter is fed: bytes, or a flush (idle timeout, rotation, shutdown).
#[derive(Debug, Clone)]
enum Op {
    Feed(Vec<u8>),
    Flush,
}

/// The reference: keeps the whole unfinished line (no cap while holding), and remembers whether
/// the last flushed line really ended in `\r` so that a `\n` arriving next is swallowed.
#[derive(Default)]
struct RefSplitter {
    max: usize,
    pending: Vec<u8>,
    flushed_after_cr: bool,
    lines: Vec<(String, bool)>,
    /// The raw bytes of every emitted line (before stripping and capping), for properties that
    /// talk about the input.
    raw: Vec<Vec<u8>>,
}

impl RefSplitter {
    fn new(max: usize) -> Self {
        RefSplitter {
            max: max.max(1),
            ..RefSplitter::default()
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        if bytes.is_empty() {
            // Feeding nothing changes nothing.
            return;
        }
        if std::mem::take(&mut self.flushed_after_cr) {
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        for &b in bytes {
            if b == b'\n' {
                let raw = std::mem::take(&mut self.pending);
                self.emit(raw);
            } else {
                self.pending.push(b);
            }
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let raw = std::mem::take(&mut self.pending);
            self.flushed_after_cr = raw.last() == Some(&b'\r');
            self.emit(raw);
        }
    }

    fn emit(&mut self, raw: Vec<u8>) {
        self.lines.push(ref_line(&raw, self.max));
        self.raw.push(raw);
    }

    fn truncated(&self) -> Vec<u32> {
        (0..self.lines.len() as u32)
            .filter(|&i| self.lines[i as usize].1)
            .collect()
    }

    fn texts(&self) -> Vec<String> {
        self.lines.iter().map(|(t, _)| t.clone()).collect()
    }
}

/// Runs the real splitter over `ops`; returns the batch and whether it held a partial line after
/// each op.
fn run_real(max: usize, ops: &[Op]) -> (LineBatch, Vec<bool>) {
    let mut splitter = LineSplitter::new(max);
    let mut out = LineBatch::default();
    let mut held = Vec::new();
    for op in ops {
        match op {
            Op::Feed(bytes) => splitter.feed(bytes, &mut out),
            Op::Flush => splitter.flush(&mut out),
        }
        held.push(splitter.has_partial());
    }
    (out, held)
}

fn texts(batch: &LineBatch) -> Vec<String> {
    batch.lines().map(str::to_owned).collect()
}

/// Splits `bytes` into chunks at the given cut points (taken modulo the length, sorted).
fn chunk(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(bytes[start..cut].to_vec());
        start = cut;
    }
    chunks.push(bytes[start..].to_vec());
    chunks
}

// ------------------------------------------------------------------------------------------------
// Input strategies
// ------------------------------------------------------------------------------------------------

/// Log-like bytes: plenty of `\n` and `\r`, ASCII, whole multi-byte characters, and stray bytes
/// that make the input invalid UTF-8 (lone continuation bytes, lead bytes, 0xFF).
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(b"\n".to_vec()),
        2 => Just(b"\r".to_vec()),
        2 => Just(b"\r\n".to_vec()),
        6 => "[a-z0-9 ]{1,4}".prop_map(String::into_bytes),
        2 => prop::sample::select(vec!["é", "€", "😀", "\u{FFFD}", "ß"])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => (0x80u8..=0xBF).prop_map(|b| vec![b]),
        1 => prop::sample::select(vec![0xC3u8, 0xE2, 0xF0, 0xFF, 0xC0]).prop_map(|b| vec![b]),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ]
}

fn log_bytes(max_tokens: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(token(), 0..max_tokens).prop_map(|t| t.concat())
}

/// Valid UTF-8 text with the same shape.
fn log_text(max_tokens: usize) -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            4 => Just("\n".to_owned()),
            2 => Just("\r".to_owned()),
            2 => Just("\r\n".to_owned()),
            6 => "[a-z0-9 ]{1,4}",
            2 => prop::sample::select(vec!["é", "€", "😀", "ß"]).prop_map(str::to_owned),
            1 => any::<char>().prop_map(String::from),
        ],
        0..max_tokens,
    )
    .prop_map(|t| t.concat())
}

/// Line caps: mostly tiny (so capping, the cap's UTF-8 rule and `\r` at the cap are exercised),
/// sometimes the default.
fn max_line() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1usize..12, 1 => Just(64 * 1024)]
}

/// Feeds (non-empty chunks) and flushes, in any order.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    vec(
        prop_oneof![
            5 => vec(token(), 1..8).prop_map(|t| Op::Feed(t.concat())),
            2 => Just(Op::Flush),
        ],
        0..24,
    )
}

// ------------------------------------------------------------------------------------------------
// Splitter properties
// ------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Any chunking of the input gives the same lines and truncation marks as feeding it whole,
    /// and both equal the reference.
    #[test]
    fn chunking_never_changes_the_lines(
        input in log_bytes(64),
        cuts in vec(any::<usize>(), 0..12),
        max in max_line(),
    ) {
        let chunks = chunk(&input, &cuts);
        let (whole, _) = run_real(max, &[Op::Feed(input.clone())]);
        let (chunked, _) = run_real(max, &chunks.into_iter().map(Op::Feed).collect::<Vec<_>>());
        let mut reference = RefSplitter::new(max);
        reference.feed(&input);

        prop_assert_eq!(texts(&chunked), texts(&whole));
        prop_assert_eq!(chunked.truncated(), whole.truncated());
        prop_assert_eq!(texts(&whole), reference.texts());
        prop_assert_eq!(whole.truncated(), &reference.truncated()[..]);
    }

    /// Feeding one byte at a time is the harshest chunking: `\r` and `\n` always in separate reads,
    /// every multi-byte character split.
    #[test]
    fn byte_at_a_time_matches_the_reference(input in log_bytes(48), max in max_line()) {
        let ops: Vec<Op> = input.iter().map(|&b| Op::Feed(vec![b])).collect();
        let (batch, _) = run_real(max, &ops);
        let mut reference = RefSplitter::new(max);
        reference.feed(&input);
        prop_assert_eq!(texts(&batch), reference.texts());
        prop_assert_eq!(batch.truncated(), &reference.truncated()[..]);
    }

    /// Shape of every line, stated directly rather than through the reference: no `\n`; a
    /// trailing `\r` only when the line was cut at the cap or its raw bytes ended in `\r\r`; at
    /// most `max` bytes of input kept; invalid input shows up as U+FFFD.
    #[test]
    fn lines_are_well_formed(input in log_bytes(64), max in max_line()) {
        let (batch, _) = run_real(max, &[Op::Feed(input.clone())]);
        let mut reference = RefSplitter::new(max);
        reference.feed(&input);
        prop_assert_eq!(batch.len(), reference.raw.len());
        let truncated = batch.truncated();
        for (i, (line, raw)) in batch.lines().zip(&reference.raw).enumerate() {
            let is_truncated = truncated.contains(&(i as u32));
            prop_assert!(!line.contains('\n'), "line {} has a newline: {:?}", i, line);
            if line.ends_with('\r') {
                prop_assert!(
                    is_truncated || raw.ends_with(b"\r\r"),
                    "line {} ends in \\r but was neither cut nor \\r\\r-terminated: {:?}", i, line
                );
            }
            let stripped = raw.strip_suffix(b"\r").unwrap_or(raw);
            prop_assert_eq!(is_truncated, stripped.len() > max, "line {}: {:?}", i, line);
            match std::str::from_utf8(stripped) {
                // Valid input: kept as is, or cut to at most `max` bytes at a char boundary.
                Ok(text) => {
                    prop_assert!(line.len() <= max, "line {} is {} bytes > {}", i, line.len(), max);
                    prop_assert!(text.starts_with(line), "line {} is not a prefix of its input", i);
                    if !is_truncated {
                        prop_assert_eq!(line, text);
                    }
                }
                // Invalid input that was not cut: every bad sequence becomes U+FFFD.
                Err(_) if !is_truncated => {
                    prop_assert!(line.contains('\u{FFFD}'), "line {}: {:?}", i, line);
                    prop_assert_eq!(line, String::from_utf8_lossy(stripped));
                }
                Err(_) => {}
            }
        }
    }

    /// Valid UTF-8 input: no replacement character appears unless it was in the input, and no
    /// line is longer than the cap in bytes (a cut never splits a character).
    #[test]
    fn valid_utf8_is_kept_and_capped_at_char_boundaries(
        input in log_text(48),
        cuts in vec(any::<usize>(), 0..8),
        max in max_line(),
    ) {
        let ops: Vec<Op> = chunk(input.as_bytes(), &cuts).into_iter().map(Op::Feed).collect();
        let (batch, _) = run_real(max, &ops);
        let input_lines: Vec<&str> = input.split('\n').collect();
        // The last piece has no `\n` yet: it is held, not emitted.
        prop_assert_eq!(batch.len(), input_lines.len() - 1);
        for (i, (line, source)) in batch.lines().zip(&input_lines).enumerate() {
            let source = source.strip_suffix('\r').unwrap_or(source);
            prop_assert!(line.len() <= max);
            prop_assert!(source.starts_with(line));
            prop_assert_eq!(
                line.contains('\u{FFFD}'),
                source[..line.len()].contains('\u{FFFD}')
            );
            let is_truncated = batch.truncated().contains(&(i as u32));
            prop_assert_eq!(is_truncated, source.len() > max);
            if is_truncated {
                // Cut at the last char boundary at or before `max`: one more char would not fit.
                let next = source[line.len()..].chars().next().map_or(0, char::len_utf8);
                prop_assert!(line.len() + next > max);
            }
        }
    }

    /// Feeds and flushes in any order: the same lines as the reference, a flush emits the held
    /// line exactly once (a second flush, or a flush with nothing held, emits nothing), and
    /// `has_partial` tells whether a line is held.
    #[test]
    fn flush_emits_the_held_line_once(ops in ops(), max in max_line()) {
        let (batch, held) = run_real(max, &ops);
        let mut reference = RefSplitter::new(max);
        for (op, held) in ops.iter().zip(held) {
            match op {
                Op::Feed(bytes) => reference.feed(bytes),
                Op::Flush => reference.flush(),
            }
            prop_assert_eq!(held, !reference.pending.is_empty());
        }
        prop_assert_eq!(texts(&batch), reference.texts());
        prop_assert_eq!(batch.truncated(), &reference.truncated()[..]);
    }

    /// `LineBatch::push` and its accessors agree, and `whole_batch_frame` (the wire form built
    /// once per batch) is valid JSON carrying exactly those lines and truncation seqs.
    #[test]
    fn line_batches_round_trip_through_the_lines_frame(
        lines in vec((".{0,12}", any::<bool>()), 0..12),
        first_seq in 1u64..1_000_000,
        file in "[a-z./-]{1,10}",
    ) {
        let mut batch = LineBatch::default();
        for (line, cut) in &lines {
            batch.push(line, *cut);
        }
        prop_assert_eq!(batch.len(), lines.len());
        prop_assert_eq!(batch.is_empty(), lines.is_empty());
        prop_assert_eq!(batch.text_bytes(), lines.iter().map(|(l, _)| l.len()).sum::<usize>());
        let want: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        prop_assert_eq!(batch.lines().collect::<Vec<_>>(), want.clone());
        let cut: Vec<u32> = (0..lines.len() as u32).filter(|&i| lines[i as usize].1).collect();
        prop_assert_eq!(batch.truncated(), &cut[..]);

        let frame: Value = serde_json::from_slice(ws_out::payload(&whole_batch_frame(&file, &Batch::new(first_seq, batch))))
            .expect("the frame is JSON");
        prop_assert_eq!(&frame["type"], "lines");
        prop_assert_eq!(&frame["file"], &Value::from(file));
        prop_assert_eq!(&frame["seq"], &Value::from(first_seq));
        prop_assert_eq!(&frame["lines"], &json!(want));
        let seqs: Vec<u64> = cut.iter().map(|&i| first_seq + u64::from(i)).collect();
        if seqs.is_empty() {
            prop_assert!(frame.get("truncated").is_none());
        } else {
            prop_assert_eq!(&frame["truncated"], &json!(seqs));
        }
    }
}

// Cases the properties above once found: each pins one splitter behaviour.

fn split_ops(max: usize, ops: &[Op]) -> Vec<String> {
    texts(&run_real(max, ops).0)
}

/// After a flush, whether a following `\n` completes a CRLF depends on the last byte the line was
/// *fed*, not the last byte the splitter *kept*: over the cap the two differ (it keeps `max + 1`
/// bytes). Otherwise an over-long line paused between `\r` and `\n` would gain an empty line,
/// and an over-long line with a `\r` at byte `max` would lose one.
#[test]
fn a_flushed_over_cap_line_decides_crlf_by_its_real_last_byte() {
    // "abc\r" + pause + "\n" is one CRLF line "abc"; capped at 2 it must still be one line.
    let ops = [
        Op::Feed(b"abc\r".to_vec()),
        Op::Flush,
        Op::Feed(b"\nx\n".to_vec()),
    ];
    assert_eq!(split_ops(100, &ops), ["abc", "x"]);
    assert_eq!(
        split_ops(2, &ops),
        ["ab", "x"],
        "extra empty line over the cap"
    );
    // "ab\rX" + pause + "\n": the held line did not end in `\r`, so the `\n` ends an (empty)
    // line of its own, as it does under the cap.
    let ops = [
        Op::Feed(b"ab\rX".to_vec()),
        Op::Flush,
        Op::Feed(b"\nx\n".to_vec()),
    ];
    assert_eq!(split_ops(100, &ops), ["ab\rX", "", "x"]);
    assert_eq!(
        split_ops(2, &ops),
        ["ab", "", "x"],
        "empty line lost over the cap"
    );
}

/// `feed(b"")` is a no-op: it keeps the "last flush ended in `\r`" state, so the `\n` that
/// completes the CRLF still ends no empty line.
#[test]
fn feeding_nothing_changes_nothing() {
    let plain = [
        Op::Feed(b"a\r".to_vec()),
        Op::Flush,
        Op::Feed(b"\nb\n".to_vec()),
    ];
    let with_empty = [
        Op::Feed(b"a\r".to_vec()),
        Op::Flush,
        Op::Feed(Vec::new()),
        Op::Feed(b"\nb\n".to_vec()),
    ];
    assert_eq!(split_ops(100, &plain), ["a", "b"]);
    assert_eq!(split_ops(100, &with_empty), ["a", "b"]);
}

// ------------------------------------------------------------------------------------------------
// Client message parser
// ------------------------------------------------------------------------------------------------

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values for `backlog` / `after`: mostly numbers (valid or not), sometimes anything.
fn cursor_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any::<u64>().prop_map(Value::from),
        2 => (0u64..100).prop_map(Value::from),
        1 => (i64::MIN..0).prop_map(Value::from),
        1 => Just(Value::Null),
        1 => Just(json!(1.5)),
        1 => Just(json!(3.0)),
        1 => Just(json!("5")),
        1 => json_value(),
    ]
}

/// JSON objects shaped like client messages: a `type` (known, unknown, or not a string), the
/// known fields with right or wrong types, each maybe missing, and unknown extra fields.
fn message_object() -> impl Strategy<Value = Map<String, Value>> {
    let type_value = prop_oneof![
        6 => prop::sample::select(vec!["subscribe", "unsubscribe", "ping", "pong"]).prop_map(Value::from),
        1 => prop::sample::select(vec!["Subscribe", "PING", "sub", "", "lines", "hello"]).prop_map(Value::from),
        1 => json_value(),
    ];
    let file_value = prop_oneof![
        5 => "[a-z0-9./-]{0,12}".prop_map(Value::from),
        1 => json_value(),
    ];
    let extra = btree_map("[a-z_]{1,8}", json_value(), 0..3);
    (
        prop::option::weighted(0.95, type_value),
        prop::option::weighted(0.85, file_value),
        prop::option::of(cursor_value()),
        prop::option::of(cursor_value()),
        extra,
    )
        .prop_map(|(ty, file, backlog, after, extra)| {
            let mut m = Map::new();
            for (k, v) in extra {
                if !["type", "file", "backlog", "after"].contains(&k.as_str()) {
                    m.insert(k, v);
                }
            }
            for (k, v) in [
                ("type", ty),
                ("file", file),
                ("backlog", backlog),
                ("after", after),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            m
        })
}

/// The oracle: which objects are valid client messages, and what they mean. Unknown fields are
/// ignored; `backlog`/`after` are optional, `null` means absent, anything but a whole number
/// ≥ 0 that fits in u64 is refused.
fn oracle(m: &Map<String, Value>) -> Option<ClientMessage> {
    fn cursor(v: Option<&Value>) -> Option<Option<u64>> {
        match v {
            None | Some(Value::Null) => Some(None),
            Some(v) => v.as_u64().map(Some),
        }
    }
    // `after` is also taken as text (`"EPOCH-SEQ"`, parsed later by the session).
    fn after(v: Option<&Value>) -> Option<Option<WireCursor>> {
        match v {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(WireCursor::Text(s.clone()))),
            Some(v) => v.as_u64().map(|n| Some(WireCursor::Seq(n))),
        }
    }
    let file = || m.get("file").and_then(Value::as_str).map(str::to_owned);
    match m.get("type")?.as_str()? {
        "ping" => Some(ClientMessage::Ping),
        "pong" => Some(ClientMessage::Pong),
        "unsubscribe" => Some(ClientMessage::Unsubscribe { file: file()? }),
        "subscribe" => Some(ClientMessage::Subscribe {
            file: file()?,
            backlog: cursor(m.get("backlog"))?,
            after: after(m.get("after"))?,
            epoch: cursor(m.get("epoch"))?,
            grep: match m.get("grep") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return None,
            },
            grep_invert: match m.get("grep_invert") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_bool()?),
            },
        }),
        _ => None,
    }
}

/// Valid messages, in the JSON a client would send.
fn known_message() -> impl Strategy<Value = (ClientMessage, Value)> {
    let file = ".{0,16}";
    prop_oneof![
        Just((ClientMessage::Ping, json!({"type": "ping"}))),
        Just((ClientMessage::Pong, json!({"type": "pong"}))),
        file.prop_map(|f| (
            ClientMessage::Unsubscribe { file: f.clone() },
            json!({"type": "unsubscribe", "file": f})
        )),
        (
            file,
            prop::option::of(any::<u64>()),
            prop::option::of(any::<u64>())
        )
            .prop_map(|(f, backlog, after)| {
                let mut v = json!({"type": "subscribe", "file": f});
                if let Some(b) = backlog {
                    v["backlog"] = json!(b);
                }
                if let Some(a) = after {
                    v["after"] = json!(a);
                }
                (
                    ClientMessage::Subscribe {
                        file: f,
                        backlog,
                        after: after.map(WireCursor::Seq),
                        epoch: None,
                        grep: None,
                        grep_invert: None,
                    },
                    v,
                )
            }),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary text never panics the parser (an error is fine).
    #[test]
    fn any_text_is_parsed_or_refused_without_panic(s in ".{0,64}") {
        let _ = serde_json::from_str::<ClientMessage>(&s);
    }

    /// Text that is almost a message (a valid message with a few bytes damaged or cut) never
    /// panics the parser, and a damaged text that still parses is still a plausible message.
    #[test]
    fn damaged_messages_are_parsed_or_refused_without_panic(
        (_, msg) in known_message(),
        edits in vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
    ) {
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        for (at, b) in edits {
            let at = at % bytes.len();
            bytes[at] = b;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        let text = String::from_utf8_lossy(&bytes);
        let _ = serde_json::from_str::<ClientMessage>(&text);
    }

    /// Any JSON value (object or not) never panics the parser.
    #[test]
    fn any_json_value_is_parsed_or_refused_without_panic(v in json_value()) {
        let text = serde_json::to_string(&v).unwrap();
        let _ = serde_json::from_str::<ClientMessage>(&text);
    }

    /// Message-shaped objects are accepted exactly when the oracle accepts them, with the same
    /// meaning; extra fields never matter.
    #[test]
    fn message_objects_parse_exactly_as_the_oracle_says(m in message_object()) {
        let text = serde_json::to_string(&Value::Object(m.clone())).unwrap();
        let parsed = serde_json::from_str::<ClientMessage>(&text).ok();
        prop_assert_eq!(parsed, oracle(&m), "input: {}", text);
    }

    /// Every valid message parses to itself, compact or pretty-printed, with unknown fields added
    /// (forward compatibility) and with the fields in any order.
    #[test]
    fn known_messages_round_trip(
        (expected, msg) in known_message(),
        extra in btree_map("x_[a-z]{1,6}", json_value(), 0..3),
    ) {
        let compact = serde_json::to_string(&msg).unwrap();
        prop_assert_eq!(serde_json::from_str::<ClientMessage>(&compact).ok(), Some(expected.clone()));
        let pretty = serde_json::to_string_pretty(&msg).unwrap();
        prop_assert_eq!(serde_json::from_str::<ClientMessage>(&pretty).ok(), Some(expected.clone()));

        let mut with_extra = msg.as_object().unwrap().clone();
        with_extra.extend(extra);
        let text = serde_json::to_string(&Value::Object(with_extra.clone())).unwrap();
        prop_assert_eq!(serde_json::from_str::<ClientMessage>(&text).ok(), Some(expected.clone()));

        // `type` last instead of first: serde must buffer the fields before it knows the variant.
        let mut fields: Vec<String> = with_extra
            .iter()
            .filter(|(k, _)| k.as_str() != "type")
            .map(|(k, v)| format!("{}:{}", json!(k), v))
            .collect();
        fields.push(format!("\"type\":{}", with_extra["type"]));
        let type_last = format!("{{{}}}", fields.join(","));
        prop_assert_eq!(serde_json::from_str::<ClientMessage>(&type_last).ok(), Some(expected));
    }
}

/// Deeply nested input is refused by serde_json's recursion limit, not by a stack overflow.
#[test]
fn deeply_nested_input_is_refused_without_overflow() {
    for depth in [100, 1_000, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let _ = serde_json::from_str::<ClientMessage>(&arrays);
        let objects = format!(
            "{{\"type\":\"ping\",\"x\":{}1{}}}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        );
        let parsed = serde_json::from_str::<ClientMessage>(&objects);
        if depth >= 1_000 {
            assert!(parsed.is_err(), "depth {depth} accepted");
        }
    }
}
