//! The wire protocol, version 1: every message the server and its clients exchange, in one place.
//!
//! WebSocket messages are JSON text frames with a `type` field; long-poll answers are JSON objects
//! (or plain text). `docs/protocol.md` is the reader's guide to this file. This module knows
//! only the messages; `http::encode` fills them from the history (a `lines` frame for a whole
//! batch is serialized once and the same buffer goes to every client).

use serde::{Deserialize, Serialize};

/// The protocol version announced in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// One configured file, as listed by `GET /api/files` and in `hello`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileInfo {
    /// Short stable name used in every request.
    pub id: String,
    /// The path as configured.
    pub path: String,
    /// Whether the path currently names a readable file.
    pub exists: bool,
    /// Bytes read so far from the current file.
    pub size: u64,
    /// Seq of the newest line (0 when none yet).
    pub last_seq: u64,
    /// Why the path cannot be followed although something is there ("permission denied:
    /// tailcast's user cannot read it"); absent while it can, or while the path is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// In a cluster: the node whose file it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// In a cluster: another node's file, served here from the cluster (its past on disk is
    /// read on its node). Absent for this node's own files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remote: bool,
}

/// Messages a client sends over the WebSocket. Unknown fields are ignored (forward compatible).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Start receiving a file: `backlog` last lines then live, or every line after `after`.
    Subscribe {
        /// File id.
        file: String,
        /// How many recent lines to send first (default: the server's `--lines`).
        #[serde(default)]
        backlog: Option<u64>,
        /// Resume: every line with seq > `after`; a number, or the string `"EPOCH-SEQ"`.
        #[serde(default)]
        after: Option<WireCursor>,
        /// The epoch `after` belongs to (from `hello`): a cursor from another epoch gets a
        /// `reset` and the backlog, never lines picked by a seq of another numbering.
        #[serde(default)]
        epoch: Option<u64>,
        /// Only the lines this regular expression matches (their `lines` messages carry `seqs`).
        #[serde(default)]
        grep: Option<String>,
        /// With `grep`: only the lines it does not match.
        #[serde(default)]
        grep_invert: Option<bool>,
    },
    /// Stop receiving a file.
    Unsubscribe {
        /// File id.
        file: String,
    },
    /// Answered by `pong`.
    Ping,
    /// The client's answer to a server `ping`.
    Pong,
}

/// A cursor as a client may write it in `subscribe`: `15` or `"1700000000000-15"`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum WireCursor {
    /// A bare seq.
    Seq(u64),
    /// `SEQ` or `EPOCH-SEQ` as text (parsed by `http::query::Cursor`).
    Text(String),
}

/// Messages the server sends over the WebSocket (all but `lines`, which is built by
/// [`lines_frame`]).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// First message of every connection.
    Hello {
        /// Protocol version.
        version: u32,
        /// Changes at every server start: cursors from another epoch are stale.
        epoch: u64,
        /// The configured files.
        files: &'a [FileInfo],
        /// Interval of the server's `ping`.
        heartbeat_ms: u64,
        /// A client silent this long is closed.
        timeout_ms: u64,
    },
    /// The list of files changed (a live glob or directory found one): every file, as in
    /// `hello`.
    Files {
        /// Every file.
        files: &'a [FileInfo],
    },
    /// Lines `from..=to` will never come.
    Gap {
        /// File id.
        file: &'a str,
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// The file changed state.
    File {
        /// File id.
        file: &'a str,
        /// `created`, `truncated`, `rotated`, `deleted`, `ended`, `started` or `exited`.
        state: &'a str,
        /// For `exited`: the command's exit status, when it exited by itself.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        /// For `exited`: the signal that ended the command.
        #[serde(skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    /// The file's unfinished last line so far: it becomes line `seq` once its newline comes
    /// (then a `lines` message carries it, whole). `text` null: there is none any more.
    Partial {
        /// File id.
        file: &'a str,
        /// The seq it will get.
        seq: u64,
        /// Its text so far.
        text: Option<&'a str>,
    },
    /// The client's cursor was from another numbering: what follows is the backlog, numbered in
    /// `epoch`.
    Reset {
        /// File id.
        file: &'a str,
        /// The server's epoch, the numbering of every seq from now on.
        epoch: u64,
        /// The epoch the client's cursor named.
        from_epoch: u64,
        /// Why: `epoch` (the server restarted without keeping its numbering).
        reason: &'a str,
    },
    /// Heartbeat.
    Ping,
    /// Answer to a client `ping`.
    Pong,
    /// A request was refused; the connection stays open unless said otherwise.
    Error {
        /// Machine-readable reason.
        code: &'a str,
        /// What went wrong and what to do.
        message: &'a str,
    },
}

impl ServerMessage<'_> {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A `lines` message: consecutive lines starting at `seq`. `L` serializes the lines as a JSON
/// array of strings (the transports pass the history's lines in place, without copying them).
#[derive(Serialize)]
pub struct LinesMessage<'a, L: Serialize> {
    /// Always `"lines"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// File id.
    pub file: &'a str,
    /// Seq of the first line.
    pub seq: u64,
    /// When the server read the (first) line, unix milliseconds.
    pub time: u64,
    /// The lines.
    pub lines: L,
    /// Each line's seq, when the lines are filtered (`grep`) and so not consecutive; absent
    /// otherwise (line `i` is then `seq + i`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seqs: Option<Vec<u64>>,
    /// Read times when the lines were read at several times (only a filtered message gathers
    /// lines of several reads): `[SEQ, MS]` pairs, each the time of the lines from SEQ up to
    /// the next pair's SEQ. Absent when every line has `time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<(u64, u64)>>,
    /// Seqs of lines cut at the length cap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<u64>,
}

/// Lines `from..=to` that will never come.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct GapRange {
    /// First missing seq.
    pub from: u64,
    /// Last missing seq.
    pub to: u64,
}

/// A long-poll JSON answer; `L` serializes the lines as in [`LinesMessage`].
#[derive(Serialize)]
pub struct PollAnswer<'a, L: Serialize> {
    /// File id.
    pub file: &'a str,
    /// The server's start epoch.
    pub epoch: u64,
    /// The lines, oldest first.
    pub lines: L,
    /// Seq of the first line, `null` when there is none.
    pub first_seq: Option<u64>,
    /// Cursor for the next request (`after=last_seq`).
    pub last_seq: u64,
    /// The same cursor qualified with its numbering, `EPOCH-SEQ` (`after=cursor`): a server
    /// that restarted answers it with a reset instead of taking the seq at face value.
    pub cursor: &'a str,
    /// Lines that will never come, if the cursor was older than the history.
    pub gap: Option<GapRange>,
    /// Each line's seq, when the lines are filtered (`grep`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seqs: Option<Vec<u64>>,
    /// When the server read the lines: `[SEQ, MS]` pairs (unix milliseconds), oldest first, each
    /// the time of the lines from SEQ up to the next pair's SEQ; absent when there is no line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<(u64, u64)>,
    /// Seqs of lines cut at the length cap.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<u64>,
    /// Present (true) when the client's cursor was not taken: it named another epoch (the
    /// answer holds the backlog) or was ahead of the newest line (the answer is the live edge).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    /// Why, with `reset`: `epoch` or `cursor_ahead`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_reason: Option<&'a str>,
}

/// The JSON body of every HTTP error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Machine-readable reason.
    pub error: &'a str,
    /// What went wrong and what to do.
    pub message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_and_ignore_unknown_fields() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","file":"a","after":3}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Subscribe {
                file: "a".into(),
                backlog: None,
                after: Some(WireCursor::Seq(3)),
                epoch: None,
                grep: None,
                grep_invert: None,
            }
        );
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","file":"a","after":"17-3"}"#).unwrap();
        assert!(matches!(
            m,
            ClientMessage::Subscribe { after: Some(WireCursor::Text(ref t)), .. } if t == "17-3"
        ));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"nope"}"#).is_err());
        // Newer clients may add fields: they are ignored, not refused.
        assert_eq!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"ping","x":1}"#).unwrap(),
            ClientMessage::Ping
        );
    }
}

/// One generation of a file on disk, as `GET /api/generations` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GenerationInfo {
    /// Its key: what `gen=` takes; it stays when `app.log` becomes `app.log.1` and then
    /// `app.log.2.gz`.
    pub gen: String,
    /// Its file name today.
    pub name: String,
    /// The file at the configured path (the newest generation).
    pub current: bool,
    /// Read through gzip (offsets are in the decompressed text).
    pub compressed: bool,
    /// Bytes on disk.
    pub size: u64,
    /// Last modification, Unix milliseconds.
    pub modified_ms: u64,
}

/// One line read back from disk (`GET /api/page`), or found by a search.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskLine<'a> {
    /// The file id (search results only; a page is of one file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<&'a str>,
    /// The generation's key.
    pub gen: &'a str,
    /// Byte offset of the line in the generation.
    pub offset: u64,
    /// Its line number in the generation (1 = first), where known.
    pub line: Option<u64>,
    /// Its seq, where the server still knows which one it is (pages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The text.
    pub text: &'a str,
    /// The line was longer than the server's cap and is cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The answer of `GET /api/page`.
#[derive(Debug, Clone, Serialize)]
pub struct PageAnswer<'a> {
    /// The file id.
    pub file: &'a str,
    /// The server's numbering, for the `seq`s.
    pub epoch: u64,
    /// The lines, oldest first.
    pub lines: Vec<DiskLine<'a>>,
    /// `before=` value of the page above (`GEN:OFFSET`), or null at the oldest line on disk.
    pub before: Option<String>,
    /// `after=` value of the page below: at the end of the file, where its next lines will be.
    pub after: Option<String>,
    /// Generations passed over because they could not be read (a gzip file cut short, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedGeneration>,
}

/// A generation a page passed over.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedGeneration {
    /// Its key.
    pub gen: String,
    /// Its file name.
    pub name: String,
    /// Why it could not be read.
    pub error: String,
}

/// One record of a `GET /api/search` answer (newline-delimited JSON, one per line).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SearchRecord<'a> {
    /// The search of a generation begins.
    Generation {
        /// The file id.
        file: &'a str,
        /// The generation's key.
        gen: &'a str,
        /// Its file name.
        name: &'a str,
    },
    /// A matching line.
    Match(DiskLine<'a>),
    /// A line around a match (`context=N`).
    Context(DiskLine<'a>),
    /// A generation could not be read to its end.
    Error {
        /// The file id.
        file: &'a str,
        /// The generation's key.
        gen: &'a str,
        /// What went wrong.
        message: String,
    },
    /// The last record.
    End {
        /// Matching lines sent.
        hits: usize,
        /// Bytes searched.
        scanned_bytes: u64,
        /// How long it took.
        elapsed_ms: u64,
        /// Why it ended early: `max_hits`, `time_limit`; null when it searched everything.
        stopped: Option<&'static str>,
    },
}
