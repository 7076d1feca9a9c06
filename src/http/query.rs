//! Query parameters of the reading transports (`/poll`, `/sse`, `/follow`): the ones they share
//! (`file`, `after`, `backlog`, `raw`, `grep`, `grep_invert`) parsed in one place, each bad value
//! named in the error; a transport's own parameters are handed to it, and a key no one knows (or
//! one given twice) is refused, named. The cursor grammar (`SEQ` or `EPOCH-SEQ`,
//! [`Cursor`]) lives here too, for every transport: the query's `after`, SSE's `Last-Event-ID`
//! and the WebSocket's `subscribe`.

use super::access::form_urlencoded_pairs;
use super::error::ApiError;
use super::terminal;

/// The parameters every reading transport takes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReadParams {
    /// File id (required).
    pub file: String,
    /// Resume: every line after this cursor.
    pub after: Option<Cursor>,
    /// The newest N lines first.
    pub backlog: Option<usize>,
    /// Text byte for byte (`raw=1`), not terminal-safe.
    pub raw: bool,
    /// Only the lines this pattern matches (`grep=REGEX`), compiled by the transport.
    pub grep: Option<String>,
    /// With `grep`: only the lines it does not match (`grep_invert=1`).
    pub grep_invert: bool,
}

/// The keys [`parse`] reads itself, `token` (read by the access check) included.
pub const SHARED_KEYS: &[&str] = &[
    "file",
    "after",
    "backlog",
    "raw",
    "grep",
    "grep_invert",
    "token",
];

/// Parses `query`; a transport's own keys (`own_keys`) go to `own(key, value)`. A key nobody
/// knows, or one given twice, is refused with an error that names it and lists the known ones:
/// a typo (`grpe=`) must not silently change what the client gets.
pub fn parse(
    query: &str,
    own_keys: &[&'static str],
    mut own: impl FnMut(&'static str, &str) -> Result<(), ApiError>,
) -> Result<ReadParams, ApiError> {
    let mut params = ReadParams::default();
    let mut file = None;
    let mut seen: Vec<&'static str> = Vec::new();
    for (key, value) in form_urlencoded_pairs(query) {
        let Some(key) = known_key(&key, own_keys) else {
            return Err(unknown(&key, own_keys));
        };
        if seen.contains(&key) {
            return Err(repeated(key));
        }
        seen.push(key);
        match key {
            "file" => file = Some(value),
            "after" => params.after = Some(Cursor::parse("after", &value)?),
            "backlog" => params.backlog = Some(number("backlog", &value)? as usize),
            "raw" => params.raw = terminal::parse_raw(&value)?,
            "grep" => params.grep = Some(value),
            "grep_invert" => params.grep_invert = switch("grep_invert", &value)?,
            "token" => {}
            own_key => own(own_key, &value)?,
        }
    }
    if params.grep_invert && params.grep.is_none() {
        return Err(ApiError::BadParam {
            name: "grep_invert",
            message: "has no pattern to invert: give grep=REGEX too".into(),
        });
    }
    params.file = file.ok_or(ApiError::BadParam {
        name: "file",
        message: "missing: say which file, e.g. ?file=app.log (GET api/files lists ids)".into(),
    })?;
    Ok(params)
}

/// Refuses a query with any key but `keys` (and `token`), or one given twice: for the endpoints
/// that take no parameters of their own (`/ws`, `/api/files`, `/api/stats`).
pub fn only(query: &str, keys: &[&'static str]) -> Result<(), ApiError> {
    let mut seen: Vec<&'static str> = Vec::new();
    for (key, _) in form_urlencoded_pairs(query) {
        let known = keys
            .iter()
            .chain(std::iter::once(&"token"))
            .find(|k| **k == key)
            .copied();
        let Some(key) = known else {
            let mut names: Vec<&str> = keys.to_vec();
            names.push("token");
            return Err(ApiError::UnknownParam {
                name: shown(&key),
                known: names.join(", "),
            });
        };
        if seen.contains(&key) {
            return Err(repeated(key));
        }
        seen.push(key);
    }
    Ok(())
}

/// The static name of a key the transport knows.
fn known_key(key: &str, own_keys: &[&'static str]) -> Option<&'static str> {
    SHARED_KEYS
        .iter()
        .chain(own_keys)
        .find(|k| **k == key)
        .copied()
}

fn unknown(key: &str, own_keys: &[&'static str]) -> ApiError {
    let known: Vec<&str> = SHARED_KEYS.iter().chain(own_keys).copied().collect();
    ApiError::UnknownParam {
        name: shown(key),
        known: known.join(", "),
    }
}

fn repeated(key: &'static str) -> ApiError {
    ApiError::BadParam {
        name: key,
        message: "given twice: give it once".into(),
    }
}

/// A client's key as an error names it: at most 64 characters.
fn shown(key: &str) -> String {
    const MOST: usize = 64;
    match key.char_indices().nth(MOST) {
        Some((cut, _)) => format!("{}...", &key[..cut]),
        None => key.to_owned(),
    }
}

/// An on/off parameter: `1`, `true`, `yes` or `0`, `false`, `no`.
pub fn switch(name: &'static str, value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(ApiError::BadParam {
            name,
            message: format!("`{value}` is not a switch: use {name}=1 or {name}=0"),
        }),
    }
}

/// A client's cursor: the seq of the last line it has, in a numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// A bare `SEQ`: taken in the server's current numbering, as clients that know no epoch
    /// have always sent it.
    Seq(u64),
    /// `EPOCH-SEQ`: a seq in the numbering of that epoch.
    Qualified {
        /// The numbering the seq belongs to.
        epoch: u64,
        /// The last seq the client has.
        seq: u64,
    },
}

/// What a cursor means to this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Every line with seq > this, in the current numbering.
    After(u64),
    /// The cursor is from another numbering: tell the client, then send the backlog.
    Reset {
        /// The epoch the client's cursor was from.
        from_epoch: u64,
    },
}

impl Cursor {
    /// Parses `SEQ` or `EPOCH-SEQ` (both whole numbers), naming `name` in the error.
    pub fn parse(name: &'static str, value: &str) -> Result<Cursor, ApiError> {
        let bad = || ApiError::BadParam {
            name,
            message: format!("`{value}` is not a cursor: use SEQ or EPOCH-SEQ (whole numbers)"),
        };
        let value = value.trim();
        match value.split_once('-') {
            None => value.parse().map(Cursor::Seq).map_err(|_| bad()),
            Some((epoch, seq)) => {
                // `parse` alone would take a sign; a cursor has only digits.
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if !digits(epoch) || !digits(seq) {
                    return Err(bad());
                }
                Ok(Cursor::Qualified {
                    epoch: epoch.parse().map_err(|_| bad())?,
                    seq: seq.parse().map_err(|_| bad())?,
                })
            }
        }
    }

    /// A cursor given as the seq and, where the client knows it, the epoch apart (the
    /// WebSocket's `after` and `epoch` fields).
    pub fn with_epoch(seq: u64, epoch: Option<u64>) -> Cursor {
        match epoch {
            Some(epoch) => Cursor::Qualified { epoch, seq },
            None => Cursor::Seq(seq),
        }
    }

    /// What the cursor means to a server whose numbering is `epoch`. A seq is never taken at face
    /// value in another numbering: the same seq names another line there.
    pub fn resolve(self, epoch: u64) -> Resume {
        match self {
            Cursor::Seq(seq) => Resume::After(seq),
            Cursor::Qualified { epoch: e, seq } if e == epoch => Resume::After(seq),
            Cursor::Qualified { epoch: e, .. } => Resume::Reset { from_epoch: e },
        }
    }
}

/// The qualified form of a cursor, `EPOCH-SEQ`, as every transport states it.
pub fn qualified(epoch: u64, seq: u64) -> String {
    format!("{epoch}-{seq}")
}

/// A whole number ≥ 0, or an error naming the parameter.
pub fn number(name: &'static str, value: &str) -> Result<u64, ApiError> {
    value.parse().map_err(|_| ApiError::BadParam {
        name,
        message: format!("`{value}` is not a whole number ≥ 0"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_parameters_are_parsed_and_the_rest_handed_over() {
        let mut seen = Vec::new();
        let params = parse(
            "file=a%2Elog&after=5&raw=1&max=3&zzz&token=t&grep=x%7Cy",
            &["max", "zzz"],
            |k, v| {
                seen.push(format!("{k}={v}"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(params.file, "a.log");
        assert_eq!(params.after, Some(Cursor::Seq(5)));
        assert!(params.raw);
        assert_eq!(params.grep.as_deref(), Some("x|y"));
        assert_eq!(seen, ["max=3", "zzz="]);
        let err = parse("file=a&backlog=-1", &[], |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("`backlog`"), "{err}");
        let err = parse("after=1", &[], |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("`file`"), "{err}");
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_by_name() {
        let err = parse("file=a&grpe=x", &["max"], |_, _| Ok(())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`grpe`"), "{text}");
        assert!(text.contains("known: file, after"), "{text}");
        assert!(text.contains("max"), "{text}");
        let err = parse("file=a&file=b", &[], |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("`file`: given twice"), "{err}");
        let err = parse("file=a&grep_invert=1", &[], |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("`grep_invert`"), "{err}");
        let long = "k".repeat(500);
        let err = parse(&format!("file=a&{long}=1"), &[], |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
        assert!(only("token=t", &[]).is_ok());
        let err = only("token=t&x=1", &[]).unwrap_err();
        assert!(err.to_string().contains("`x`; known: token"), "{err}");
    }

    #[test]
    fn a_cursor_is_a_seq_or_epoch_dash_seq_and_another_epoch_resets() {
        assert_eq!(Cursor::parse("after", "15").unwrap(), Cursor::Seq(15));
        let q = Cursor::parse("after", "1700000000000-15").unwrap();
        assert_eq!(
            q,
            Cursor::Qualified {
                epoch: 1_700_000_000_000,
                seq: 15
            }
        );
        assert_eq!(q.resolve(1_700_000_000_000), Resume::After(15));
        assert_eq!(
            q.resolve(9),
            Resume::Reset {
                from_epoch: 1_700_000_000_000
            }
        );
        assert_eq!(Cursor::Seq(15).resolve(9), Resume::After(15));
        for bad in [
            "", "-", "1-", "-1", "a-1", "1-b", "1-2-3", "+1-2", "1--2", "x",
        ] {
            let err = Cursor::parse("after", bad).unwrap_err();
            assert!(err.to_string().contains("`after`"), "{bad}: {err}");
        }
        assert_eq!(qualified(7, 3), "7-3");
    }
}
