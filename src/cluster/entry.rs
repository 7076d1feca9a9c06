//! What a file's Redis stream holds: one entry per batch of lines or per state change, and the
//! stream ids that make a seq cursor an exact position in it.
//!
//! A batch of lines `F..=L` is the entry `L-0` (fields `f`: F, `t`: read time in unix ms, `l`:
//! the lines joined by `\n`, which no line contains, `x`: indexes of lines truncated at the
//! length cap, when any). A state change after line `L` is the entry `L-K` (K = 1, 2, ... for
//! several after the same line; field `s`: the state's protocol name, `c`/`g`: an exit's code
//! or signal). So the entries after cursor `S` are exactly those with an id above `S-0`, ids
//! grow with seqs (Redis requires it), and trimming by `MINID` is trimming by seq.

use std::fmt;

use redis::Value;

use crate::tail::exec::Exit;
use crate::tail::{FileState, LineBatch};

/// A stream id: (seq of the last line so far, index of a state change after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EntryId {
    /// The seq of the last line in or before the entry.
    pub seq: u64,
    /// 0 for lines, K for the K-th state change after line `seq`.
    pub sub: u64,
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.seq, self.sub)
    }
}

impl EntryId {
    /// Parses `SEQ-SUB` as Redis writes it.
    pub fn parse(text: &str) -> Option<EntryId> {
        let (seq, sub) = text.split_once('-')?;
        Some(EntryId {
            seq: seq.parse().ok()?,
            sub: sub.parse().ok()?,
        })
    }
}

/// One entry of a file's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Consecutive lines from `first_seq`.
    Lines {
        /// Seq of the first line.
        first_seq: u64,
        /// Read time (unix ms) at the publisher.
        time_ms: u64,
        /// The lines.
        lines: LineBatch,
    },
    /// A state change (after the line named by the entry's id).
    State(FileState),
}

impl Entry {
    /// The entry's fields, for `XADD`.
    pub fn fields(&self) -> Vec<(&'static str, Vec<u8>)> {
        match self {
            Entry::Lines {
                first_seq,
                time_ms,
                lines,
            } => {
                let mut text = Vec::with_capacity(lines.text_bytes() + lines.len());
                for (ix, line) in lines.lines().enumerate() {
                    if ix > 0 {
                        text.push(b'\n');
                    }
                    text.extend_from_slice(line.as_bytes());
                }
                let mut fields = vec![
                    ("f", first_seq.to_string().into_bytes()),
                    ("t", time_ms.to_string().into_bytes()),
                    ("l", text),
                ];
                if !lines.truncated().is_empty() {
                    let list: Vec<String> = lines.truncated().iter().map(u32::to_string).collect();
                    fields.push(("x", list.join(",").into_bytes()));
                }
                fields
            }
            Entry::State(state) => {
                let mut fields = vec![("s", state.as_str().as_bytes().to_vec())];
                match state {
                    FileState::Exited(Exit::Code(code)) => {
                        fields.push(("c", code.to_string().into_bytes()));
                    }
                    FileState::Exited(Exit::Signal(signal)) => {
                        fields.push(("g", signal.to_string().into_bytes()));
                    }
                    _ => {}
                }
                fields
            }
        }
    }

    /// Reads an entry from its fields; `None` for one this version does not know (skipped).
    pub fn from_fields(fields: &[(&[u8], &[u8])], max_line: usize) -> Option<Entry> {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| *key == name.as_bytes())
                .map(|(_, value)| *value)
        };
        let number =
            |name: &str| -> Option<u64> { std::str::from_utf8(get(name)?).ok()?.parse().ok() };
        if let Some(state) = get("s") {
            let code =
                |name: &str| -> Option<i32> { std::str::from_utf8(get(name)?).ok()?.parse().ok() };
            let state = match state {
                b"created" => FileState::Created,
                b"truncated" => FileState::Truncated,
                b"rotated" => FileState::Rotated,
                b"deleted" => FileState::Deleted,
                b"ended" => FileState::Ended,
                b"started" => FileState::Started,
                b"exited" => FileState::Exited(match (code("c"), code("g")) {
                    (_, Some(signal)) => Exit::Signal(signal),
                    (code, None) => Exit::Code(code.unwrap_or(-1)),
                }),
                _ => return None,
            };
            return Some(Entry::State(state));
        }
        let first_seq = number("f")?;
        let time_ms = number("t").unwrap_or(0);
        let text = get("l")?;
        // A publisher writes at most its read's worth: more than that is not one of ours, and
        // would make every node hold it.
        let count = memchr::memchr_iter(b'\n', text).count() + 1;
        if text.len() > MAX_ENTRY_TEXT.max(max_line) + max_line || count > MAX_ENTRY_LINES {
            return None;
        }
        let mut truncated: Vec<u32> = get("x")
            .and_then(|x| std::str::from_utf8(x).ok())
            .map(|x| x.split(',').filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default();
        // Looked up per line: sorted, so that another writer's long list costs no more than
        // its length (a linear search per line made one 2 MB entry cost seconds).
        truncated.sort_unstable();
        let mut lines = LineBatch::default();
        lines.reserve(text.len());
        let marked = |ix: usize| truncated.binary_search(&(ix as u32)).is_ok();
        match std::str::from_utf8(text) {
            // A publisher's entry: valid as a whole (checked once), each line within the cap.
            Ok(whole) => {
                for (ix, line) in whole.split('\n').enumerate() {
                    if line.len() <= max_line {
                        lines.push(line, marked(ix));
                    } else {
                        let (text, cut) = crate::tail::line_text(line.as_bytes(), max_line);
                        lines.push(&text, cut || marked(ix));
                    }
                }
            }
            // Another writer's entry could hold anything: the caps of lines read from a file.
            Err(_) => {
                for (ix, line) in text.split(|&b| b == b'\n').enumerate() {
                    let (text, cut) = crate::tail::line_text(line, max_line);
                    lines.push(&text, cut || marked(ix));
                }
            }
        }
        Some(Entry::Lines {
            first_seq,
            time_ms,
            lines,
        })
    }
}

/// Most bytes of lines a publisher puts in one entry (one read of the history; a single line
/// may be longer, up to the length cap).
pub const MAX_ENTRY_TEXT: usize = 256 << 10;
/// Most lines a publisher puts in one entry.
pub const MAX_ENTRY_LINES: usize = 10_000;

/// A stream's entries in order, each with its id (`None`: an entry this version cannot read).
pub type Entries = Vec<(EntryId, Option<Entry>)>;

/// One stream's entries as `XRANGE` returns them (or one stream of an `XREAD` reply):
/// `[[id, [field, value, ...]], ...]`. Entries whose id or fields cannot be read are left out.
pub fn parse_entries(value: &Value, max_line: usize) -> Entries {
    let Some(items) = as_array(value) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let parts = as_array(item)?;
            let id = EntryId::parse(&as_text(parts.first()?)?)?;
            let flat = as_array(parts.get(1)?)?;
            let fields: Vec<(&[u8], &[u8])> = flat
                .chunks_exact(2)
                .filter_map(|pair| Some((as_slice(&pair[0])?, as_slice(&pair[1])?)))
                .collect();
            let entry = Entry::from_fields(&fields, max_line).filter(|entry| match entry {
                // The id names the batch's last line, a state the line before it.
                Entry::Lines {
                    first_seq, lines, ..
                } => id.sub == 0 && *first_seq >= 1 && first_seq + lines.len() as u64 - 1 == id.seq,
                Entry::State(_) => id.sub >= 1,
            });
            Some((id, entry))
        })
        .collect()
}

/// An `XREAD` reply: per stream key, its entries.
pub fn parse_read_reply(value: &Value, max_line: usize) -> Vec<(String, Entries)> {
    let streams: Vec<(&Value, &Value)> = match value {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        other => as_array(other)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        let pair = as_array(item)?;
                        Some((pair.first()?, pair.get(1)?))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    streams
        .into_iter()
        .filter_map(|(key, entries)| Some((as_text(key)?, parse_entries(entries, max_line))))
        .collect()
}

fn as_array(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

/// A field's bytes, borrowed (fields are bulk strings; a reply of another form is not ours).
fn as_slice(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

fn as_text(value: &Value) -> Option<String> {
    std::str::from_utf8(as_slice(value)?)
        .ok()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(entry: &Entry) -> Vec<(Vec<u8>, Vec<u8>)> {
        entry
            .fields()
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect()
    }

    fn from(fields: &[(Vec<u8>, Vec<u8>)], max_line: usize) -> Option<Entry> {
        let borrowed: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        Entry::from_fields(&borrowed, max_line)
    }

    #[test]
    fn lines_and_states_go_through_their_fields_unchanged() {
        let mut lines = LineBatch::default();
        lines.push("GET / 200", false);
        lines.push("", false);
        lines.push("a \"quoted\" line\twith a tab", true);
        let entry = Entry::Lines {
            first_seq: 41,
            time_ms: 1_764_547_200_123,
            lines,
        };
        assert_eq!(from(&flat(&entry), 1024), Some(entry));
        for state in [
            FileState::Rotated,
            FileState::Truncated,
            FileState::Exited(Exit::Code(3)),
            FileState::Exited(Exit::Signal(9)),
        ] {
            let entry = Entry::State(state);
            assert_eq!(from(&flat(&entry), 1024), Some(entry));
        }
        let unknown = vec![(b"s".to_vec(), b"teleported".to_vec())];
        assert_eq!(from(&unknown, 1024), None);
    }

    #[test]
    fn ids_order_like_seqs_and_parse_back() {
        let after_line_7 = EntryId { seq: 7, sub: 1 };
        assert!(EntryId { seq: 7, sub: 0 } < after_line_7);
        assert!(after_line_7 < EntryId { seq: 8, sub: 0 });
        assert_eq!(EntryId::parse("7-1"), Some(after_line_7));
        assert_eq!(EntryId::parse("7"), None);
        assert_eq!(after_line_7.to_string(), "7-1");
    }

    #[test]
    fn a_line_longer_than_the_cap_from_another_writer_is_cut() {
        let fields = vec![
            (b"f".to_vec(), b"1".to_vec()),
            (b"l".to_vec(), vec![b'x'; 100]),
        ];
        let Some(Entry::Lines { lines, .. }) = from(&fields, 10) else {
            panic!("lines expected");
        };
        assert_eq!(lines.line(0).len(), 10);
        assert_eq!(lines.truncated(), [0]);
        // Invalid UTF-8 from another writer: its lines are made text as a file's would be.
        let fields = vec![
            (b"f".to_vec(), b"1".to_vec()),
            (b"l".to_vec(), b"ok\n\xff bad".to_vec()),
        ];
        let Some(Entry::Lines { lines, .. }) = from(&fields, 10) else {
            panic!("lines expected");
        };
        assert_eq!(lines.len(), 2);
        assert_eq!(lines.line(0), "ok");
        assert_eq!(lines.line(1), crate::tail::line_text(b"\xff bad", 10).0);
    }
}
