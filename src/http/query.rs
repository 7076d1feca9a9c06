//! Query parameters of the reading transports (`/poll`, `/sse`, `/follow`): the ones they share
//! (`file`, `after`, `backlog`, `raw`, `grep`, `grep_invert`) parsed in one place, each bad value
//! named in the error; a transport's own parameters are handed to it, and a key no one knows (or
//! one given twice) is refused, named. The cursor grammar (`SEQ` or `EPOCH-SEQ`,
//! [`Cursor`]) lives here too, for every transport: the query's `after`, SSE's `Last-Event-ID`
//! and the WebSocket's `subscribe`.

use super::access::form_urlencoded_pairs;
use super::error::ApiError;
use super::terminal;

/// Most files one request may follow (`file=a&file=b...`).
pub const MAX_FILES: usize = 16;

/// The parameters every reading transport takes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReadParams {
    /// The first file id (required).
    pub file: String,
    /// Every file id, `file` first, in the order given (one unless the transport takes more).
    pub files: Vec<String>,
    /// Resume: every line after this cursor (one file: `SEQ` or `EPOCH-SEQ`; several:
    /// [`FileCursors`], `EPOCH-ID:SEQ,ID:SEQ`).
    pub after: Option<After>,
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
/// `max_files` is how many `file=` the transport takes (1: a second one is refused as given
/// twice).
pub fn parse(
    query: &str,
    own_keys: &[&'static str],
    max_files: usize,
    mut own: impl FnMut(&'static str, &str) -> Result<(), ApiError>,
) -> Result<ReadParams, ApiError> {
    let mut params = ReadParams::default();
    let mut seen: Vec<&'static str> = Vec::new();
    for (key, value) in form_urlencoded_pairs(query) {
        let Some(key) = known_key(&key, own_keys) else {
            return Err(unknown(&key, own_keys));
        };
        if key == "file" && max_files > 1 {
            if params.files.contains(&value) {
                return Err(ApiError::BadParam {
                    name: "file",
                    message: format!("`{value}` is given twice: name each file once"),
                });
            }
            if params.files.len() == max_files {
                return Err(ApiError::BadParam {
                    name: "file",
                    message: format!("at most {max_files} files per request"),
                });
            }
            params.files.push(value);
            continue;
        }
        if seen.contains(&key) {
            return Err(repeated(key));
        }
        seen.push(key);
        match key {
            "file" => params.files.push(value),
            "after" => params.after = Some(After::parse("after", &value)?),
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
    params.file = params.files.first().cloned().ok_or(ApiError::BadParam {
        name: "file",
        message: "missing: say which file, e.g. ?file=app.log (GET api/files lists ids)".into(),
    })?;
    Ok(params)
}

/// A file a request names: its index, its id, and the cursor the request gives it.
pub type RequestedFile<'a> = (crate::hub::FileIx, &'a str, Option<Cursor>);

/// Each of a request's `files` (ids), looked up, with its cursor from `after`, in request order.
pub fn files_with_cursors<'a>(
    hub: &crate::hub::Hub,
    files: &'a [String],
    after: Option<&After>,
) -> Result<Vec<RequestedFile<'a>>, ApiError> {
    files
        .iter()
        .map(|file| {
            let ix = hub
                .lookup(file)
                .ok_or_else(|| ApiError::UnknownFile(file.clone()))?;
            let cursor = match after {
                Some(after) => after.of(file, files)?,
                None => None,
            };
            Ok((ix, file.as_str(), cursor))
        })
        .collect()
}

/// A resume cursor as a request gives it: one file's, or several files' at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// `SEQ` or `EPOCH-SEQ`.
    One(Cursor),
    /// `EPOCH-ID:SEQ,ID:SEQ`.
    Many(FileCursors),
}

impl After {
    /// Parses either form, naming `name` in the error.
    pub fn parse(name: &'static str, value: &str) -> Result<After, ApiError> {
        if value.contains(':') {
            FileCursors::parse(name, value).map(After::Many)
        } else {
            Cursor::parse(name, value).map(After::One)
        }
    }

    /// The cursor of `file`, one of `files` (`files[0]` takes a one-file cursor; a file the
    /// combined cursor does not name has none: it starts at its backlog).
    pub fn of(&self, file: &str, files: &[String]) -> Result<Option<Cursor>, ApiError> {
        match self {
            After::One(cursor) if files.len() == 1 => Ok(Some(*cursor)),
            After::One(_) => Err(ApiError::BadParam {
                name: "after",
                message: "with several files, give the combined cursor the server sent, \
                          EPOCH-ID:SEQ,ID:SEQ"
                    .into(),
            }),
            After::Many(many) => Ok(many.of(file)),
        }
    }
}

/// The cursors of several files in one: `EPOCH-ID:SEQ,ID:SEQ,...`, as the
/// many-file `/sse` ids and `/poll` cursors state it. In an id, `%` and `,` are written `%25` and
/// `%2C`; the seq is what follows an id's last `:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCursors {
    /// The numbering.
    pub epoch: u64,
    /// (file id, last seq the client has), in order.
    pub seqs: Vec<(String, u64)>,
}

impl FileCursors {
    /// Parses `EPOCH-ID:SEQ,...`, naming `name` in the error.
    pub fn parse(name: &'static str, value: &str) -> Result<FileCursors, ApiError> {
        let bad = |why: &str| ApiError::BadParam {
            name,
            message: format!(
                "`{}` is not a cursor of several files ({why}): use the \
                 one the server sent, EPOCH-ID:SEQ,ID:SEQ",
                shown(value)
            ),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        // The epoch is required: an id may itself begin with digits and a dash.
        let (epoch, rest) = value
            .trim()
            .split_once('-')
            .ok_or_else(|| bad("no EPOCH-"))?;
        if !digits(epoch) {
            return Err(bad("no EPOCH-"));
        }
        let mut cursors = FileCursors {
            epoch: epoch.parse().map_err(|_| bad("epoch"))?,
            seqs: Vec::new(),
        };
        for part in rest.split(',') {
            let (id, seq) = part.rsplit_once(':').ok_or_else(|| bad("no `:`"))?;
            if !digits(seq) {
                return Err(bad("a seq is not a whole number"));
            }
            let id = unescape_id(id);
            if cursors.of(&id).is_some() {
                return Err(bad("a file is named twice"));
            }
            cursors
                .seqs
                .push((id, seq.parse().map_err(|_| bad("seq"))?));
            if cursors.seqs.len() > MAX_FILES {
                return Err(bad("too many files"));
            }
        }
        Ok(cursors)
    }

    /// The cursor of one file, if named.
    pub fn of(&self, file: &str) -> Option<Cursor> {
        let (_, seq) = self.seqs.iter().find(|(id, _)| id == file)?;
        Some(Cursor::Qualified {
            epoch: self.epoch,
            seq: *seq,
        })
    }
}

/// The qualified form of several files' cursors, `EPOCH-ID:SEQ,ID:SEQ`.
pub fn qualified_many<'a>(epoch: u64, seqs: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let mut out = format!("{epoch}-");
    for (i, (id, seq)) in seqs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&escape_id(id));
        out.push(':');
        out.push_str(&seq.to_string());
    }
    out
}

/// A file id as a combined cursor writes it (`%` and `,` escaped).
pub fn escape_id(id: &str) -> String {
    id.replace('%', "%25").replace(',', "%2C")
}

fn unescape_id(id: &str) -> String {
    id.replace("%2C", ",")
        .replace("%2c", ",")
        .replace("%25", "%")
}

/// Refuses a query with any key but `keys` (and `token`), or one given twice: for the endpoints
/// that take no parameters of their own (`/ws`, `/api/files`, `/api/stats`).
pub fn only(query: &str, keys: &[&'static str]) -> Result<(), ApiError> {
    pairs(query, keys, false).map(drop)
}

/// The query's pairs but `token`, refusing a key not in `keys` (or `token`) and a key given
/// twice (except `file` when `many_files`, which refuses the same file twice instead).
pub fn pairs(
    query: &str,
    keys: &[&'static str],
    many_files: bool,
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut token_seen = false;
    for (key, value) in form_urlencoded_pairs(query) {
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
        if key == "token" {
            if std::mem::replace(&mut token_seen, true) {
                return Err(repeated(key));
            }
            continue;
        }
        if key == "file" && many_files {
            if out.iter().any(|(k, v)| *k == "file" && *v == value) {
                return Err(ApiError::BadParam {
                    name: "file",
                    message: format!("`{value}` is given twice: name each file once"),
                });
            }
        } else if out.iter().any(|(k, _)| *k == key) {
            return Err(repeated(key));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// True when the request asks for plain text (`Accept: text/plain`, and not JSON).
pub fn accepts_text(req: &actix_web::HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/plain") && !accept.contains("json"))
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
            1,
            |k, v| {
                seen.push(format!("{k}={v}"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(params.file, "a.log");
        assert_eq!(params.after, Some(After::One(Cursor::Seq(5))));
        assert!(params.raw);
        assert_eq!(params.grep.as_deref(), Some("x|y"));
        assert_eq!(seen, ["max=3", "zzz="]);
        let err = parse("file=a&backlog=-1", &[], 1, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("`backlog`"), "{err}");
        let err = parse("after=1", &[], 1, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("`file`"), "{err}");
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_by_name() {
        let err = parse("file=a&grpe=x", &["max"], 1, |_, _| Ok(())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`grpe`"), "{text}");
        assert!(text.contains("known: file, after"), "{text}");
        assert!(text.contains("max"), "{text}");
        let err = parse("file=a&file=b", &[], 1, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("`file`: given twice"), "{err}");
        let err = parse("file=a&grep_invert=1", &[], 1, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("`grep_invert`"), "{err}");
        let long = "k".repeat(500);
        let err = parse(&format!("file=a&{long}=1"), &[], 1, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
        assert!(only("token=t", &[]).is_ok());
        let err = only("token=t&x=1", &[]).unwrap_err();
        assert!(err.to_string().contains("`x`; known: token"), "{err}");
    }

    #[test]
    fn several_files_have_one_combined_cursor() {
        let p = parse("file=a&file=b%2Cc&after=7-a:3,b%252Cc:9", &[], 4, |_, _| {
            Ok(())
        })
        .unwrap();
        assert_eq!(p.files, ["a", "b,c"]);
        let after = p.after.unwrap();
        assert_eq!(
            after.of("a", &p.files).unwrap(),
            Some(Cursor::Qualified { epoch: 7, seq: 3 })
        );
        assert_eq!(
            after.of("b,c", &p.files).unwrap(),
            Some(Cursor::Qualified { epoch: 7, seq: 9 })
        );
        assert_eq!(after.of("d", &p.files).unwrap(), None);
        assert_eq!(qualified_many(7, [("a", 3), ("b,c", 9)]), "7-a:3,b%2Cc:9");
        let again = FileCursors::parse("after", "7-a:3,b%2Cc:9").unwrap();
        assert_eq!(
            again.of("b,c"),
            Some(Cursor::Qualified { epoch: 7, seq: 9 })
        );
        let dashed = FileCursors::parse("after", "7-2024-x.log:4").unwrap();
        assert_eq!(
            dashed.of("2024-x.log"),
            Some(Cursor::Qualified { epoch: 7, seq: 4 })
        );
        let err = parse("file=a&file=a", &[], 4, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        let err = parse("file=a&file=b&file=c", &[], 2, |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("at most 2 files"), "{err}");
        let one = parse("file=a&file=b&after=5", &[], 2, |_, _| Ok(())).unwrap();
        assert!(one.after.unwrap().of("a", &one.files).is_err());
        for bad in ["a:1", "x-a:1", "7-a:", "7-a:x", "7-:1,", "7-a:1,a:2"] {
            assert!(FileCursors::parse("after", bad).is_err(), "{bad}");
        }
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
