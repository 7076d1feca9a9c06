//! Query parameters of the reading transports (`/poll`, `/sse`, `/follow`): the ones they share
//! (`file`, `after`, `backlog`, `raw`) parsed in one place, each bad value named in the error;
//! a transport's own parameters are handed to it. The cursor grammar (`SEQ` or `EPOCH-SEQ`,
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
}

/// Parses `query`; keys that are not shared go to `own(key, value)`, which returns whether it
/// knew the key. Keys nobody knows are ignored, as on the web (`token` is read by the access
/// check).
pub fn parse(
    query: &str,
    mut own: impl FnMut(&str, &str) -> Result<bool, ApiError>,
) -> Result<ReadParams, ApiError> {
    let mut params = ReadParams::default();
    let mut file = None;
    for (key, value) in form_urlencoded_pairs(query) {
        match key.as_str() {
            "file" => file = Some(value),
            "after" => params.after = Some(Cursor::parse("after", &value)?),
            "backlog" => params.backlog = Some(number("backlog", &value)? as usize),
            "raw" => params.raw = terminal::parse_raw(&value)?,
            other => {
                own(other, &value)?;
            }
        }
    }
    params.file = file.ok_or(ApiError::BadParam {
        name: "file",
        message: "missing: say which file, e.g. ?file=app.log (GET api/files lists ids)".into(),
    })?;
    Ok(params)
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
        let params = parse("file=a%2Elog&after=5&raw=1&max=3&zzz", |k, v| {
            seen.push(format!("{k}={v}"));
            Ok(true)
        })
        .unwrap();
        assert_eq!(params.file, "a.log");
        assert_eq!(params.after, Some(Cursor::Seq(5)));
        assert!(params.raw);
        assert_eq!(seen, ["max=3", "zzz="]);
        let err = parse("file=a&backlog=-1", |_, _| Ok(false)).unwrap_err();
        assert!(err.to_string().contains("`backlog`"), "{err}");
        let err = parse("after=1", |_, _| Ok(false)).unwrap_err();
        assert!(err.to_string().contains("`file`"), "{err}");
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
