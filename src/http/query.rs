//! Query parameters of the reading transports (`/poll`, `/sse`, `/follow`): the ones they share
//! (`file`, `after`, `backlog`, `raw`) parsed in one place, each bad value named in the error;
//! a transport's own parameters are handed to it.

use super::access::form_urlencoded_pairs;
use super::error::ApiError;
use super::terminal;

/// The parameters every reading transport takes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReadParams {
    /// File id (required).
    pub file: String,
    /// Resume: every line with seq > this.
    pub after: Option<u64>,
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
            "after" => params.after = Some(number("after", &value)?),
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
        assert_eq!(params.after, Some(5));
        assert!(params.raw);
        assert_eq!(seen, ["max=3", "zzz="]);
        let err = parse("file=a&backlog=-1", |_, _| Ok(false)).unwrap_err();
        assert!(err.to_string().contains("`backlog`"), "{err}");
        let err = parse("after=1", |_, _| Ok(false)).unwrap_err();
        assert!(err.to_string().contains("`file`"), "{err}");
    }
}
