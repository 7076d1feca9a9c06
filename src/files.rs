//! The configured files: command-line paths and globs turned into absolute paths with short,
//! stable ids.
//!
//! This is the only place where names become paths, and only from the command line: a client
//! names a file by its id, which the hub looks up in a table; no client string is ever joined to
//! a path. An id is the file name, with parent directories added where two would collide.
//! A `-` PATH is standard input: a source named by `--name` (`stdin` unless given), shown with
//! the path `-`. An `--exec` command is a source named by its `NAME=` or its program, shown with
//! the path `!COMMAND` ([`add_commands`]).
//!
//! A glob whose wildcards are in its last component (`/var/log/app/*.log`) and a directory
//! (`/var/log/app/`) are also [`LiveRule`]s: standing rules that files appearing later are
//! matched against (a directory takes its regular files but not rotated generations such as
//! `app.log.1`, `app.log.2.gz` or `app.log-20261201`). Their fixed directory must exist; that
//! nothing matches yet is a warning. A glob with wildcards in a directory is expanded once.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use crate::error::ConfigError;
use crate::tail;

/// One file to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedFile {
    /// Short stable name used by clients.
    pub id: String,
    /// Absolute path (`-` for standard input, `!COMMAND` for a command).
    pub path: PathBuf,
    /// The command run for an `--exec` source.
    pub command: Option<tail::ExecCommand>,
}

/// A standing rule from a glob or directory argument: which names in `dir` it takes.
#[derive(Debug, Clone)]
pub struct LiveRule {
    /// The directory watched.
    pub dir: PathBuf,
    /// The names taken: a glob pattern, or (`None`, a directory) every name that is not a
    /// rotated generation.
    pattern: Option<glob::Pattern>,
}

impl LiveRule {
    /// True when `path` (a regular file, checked by the caller) falls under the rule.
    pub fn matches(&self, path: &Path) -> bool {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        let Some(name) = name.to_str() else {
            return false;
        };
        // Rotated generations are old copies of a log, not new logs, whatever the rule.
        dir == self.dir
            && !is_rotated_generation(name)
            && match &self.pattern {
                Some(pattern) => pattern.matches(name),
                None => !name.starts_with('.'),
            }
    }
}

/// True for the names log rotation gives old generations: a number after the name
/// (`app.log.1`), a date (`app.log-20261201`, `app-2026-12-01.log` is a live name and stays),
/// or a compression suffix (`app.log.2.gz`).
pub fn is_rotated_generation(name: &str) -> bool {
    const COMPRESSED: [&str; 6] = [".gz", ".xz", ".bz2", ".zst", ".lz4", ".zip"];
    if COMPRESSED.iter().any(|ext| name.ends_with(ext)) {
        return true;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((_, last)) = name.rsplit_once('.') {
        if digits(last) {
            return true;
        }
    }
    if let Some((_, last)) = name.rsplit_once('-') {
        let date = last.replace('-', "");
        if last.len() >= 8 && digits(&date) {
            return true;
        }
    }
    // `app.log-2026-12-01` (bytes, not chars: a name may hold any UTF-8).
    let bytes = name.as_bytes();
    bytes.len() > 11 && {
        let tail = &bytes[bytes.len() - 10..];
        let date_digit = |i: usize| tail[i].is_ascii_digit();
        tail[4] == b'-' && tail[7] == b'-' && [0, 1, 2, 3, 5, 6, 8, 9].into_iter().all(date_digit)
    }
}

/// What the command line names: files to follow now, and rules for files that come later.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Files followed from the start.
    pub files: Vec<WatchedFile>,
    /// Globs and directories that go on taking files.
    pub rules: Vec<LiveRule>,
}

/// An id for a file found after start: the shortest suffix of its path (`access.log`,
/// `nginx/access.log`) that no file has yet, else the path itself.
pub fn id_for_new_file(path: &Path, taken: impl Fn(&str) -> bool) -> String {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    for depth in 1..=parts.len() {
        let id = parts[parts.len() - depth..].join("/");
        if !taken(&id) {
            return id;
        }
    }
    path.display().to_string()
}

/// The PATH that names standard input, and the path a stdin source shows.
pub const STDIN_PATH: &str = "-";

impl WatchedFile {
    /// True for the standard-input source (`-` on the command line).
    pub fn is_stdin(&self) -> bool {
        self.path.as_os_str() == STDIN_PATH
    }
}

/// Adds the `--exec` commands (`[NAME=]COMMAND` each) after the files. A command's id is its
/// NAME, which no other source may have; else its program's file name, with `-2`, `-3`, ...
/// added when another source already has it (as a file's id gets more of its path).
pub fn add_commands(
    files: &mut Vec<WatchedFile>,
    commands: &[String],
    shell: bool,
) -> Result<(), ConfigError> {
    let mut parsed = Vec::with_capacity(commands.len());
    for value in commands {
        let (name, command) =
            tail::ExecCommand::parse(value, shell).map_err(ConfigError::Invalid)?;
        if let Some(name) = &name {
            check_name(name, "an --exec command", "--exec 'sys=journalctl -f'")?;
        }
        parsed.push((name, command));
    }
    let explicit: HashSet<String> = parsed.iter().filter_map(|(n, _)| n.clone()).collect();
    for (name, command) in parsed {
        let taken = |id: &str, files: &[WatchedFile]| files.iter().any(|f| f.id == id);
        let id = match name {
            Some(name) if taken(&name, files) => {
                return Err(ConfigError::Invalid(format!(
                    "two sources would be named `{name}`: give the --exec command `{}` another                      NAME=",
                    command.text
                )))
            }
            Some(name) => name,
            None => {
                let base = command.default_name();
                let free = |id: &String| !taken(id, files) && !explicit.contains(id);
                std::iter::once(base.clone())
                    .chain((2..).map(|n| format!("{base}-{n}")))
                    .find(free)
                    .unwrap_or(base)
            }
        };
        files.push(WatchedFile {
            id,
            path: PathBuf::from(format!("!{}", command.text)),
            command: Some(command),
        });
    }
    Ok(())
}

/// Expands globs, checks that every directory exists and every existing path is a readable
/// regular file (not a FIFO, socket or device), and assigns ids. A `-` (at most one) is standard
/// input, with the id `stdin_name`. Order follows the command line; a file named twice is
/// followed once.
pub fn resolve_files(args: &[String], stdin_name: &str) -> Result<Vec<WatchedFile>, ConfigError> {
    resolve_sources(args, stdin_name).map(|sources| sources.files)
}

/// [`resolve_files`], and the live rules of its globs and directories.
pub fn resolve_sources(args: &[String], stdin_name: &str) -> Result<Sources, ConfigError> {
    let cwd = std::env::current_dir()
        .map_err(|e| ConfigError::Invalid(format!("cannot read the current directory: {e}")))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut seen = HashSet::new();
    // Where standard input goes among the files (its place on the command line).
    let mut stdin_at = None;
    let mut rules = Vec::new();
    for arg in args {
        if arg == STDIN_PATH {
            if stdin_at.is_some() {
                return Err(ConfigError::Invalid(
                    "`-` (standard input) is named more than once: there is one standard input; \
                     name `-` once (a file called `-` is ./-)"
                        .into(),
                ));
            }
            stdin_at = Some(paths.len());
            continue;
        }
        let absolute = normalize(&cwd.join(arg));
        let expanded = if let Some(rule) = live_rule(arg, &absolute)? {
            let found = existing_matches(&rule);
            if found.is_empty() {
                tracing::warn!(
                    "`{arg}` matches no file yet; files that appear in {} and match are followed                      from their first line",
                    rule.dir.display()
                );
            }
            rules.push(rule);
            found
        } else if is_glob(arg) {
            expand_glob(arg, &cwd)?
        } else {
            vec![absolute]
        };
        for path in expanded {
            check_path(&path)?;
            if seen.insert(path.clone()) {
                paths.push(path);
            }
        }
    }
    let ids = assign_ids(&paths);
    let mut files: Vec<WatchedFile> = paths
        .into_iter()
        .zip(ids)
        .map(|(path, id)| WatchedFile {
            id,
            path,
            command: None,
        })
        .collect();
    if let Some(at) = stdin_at {
        check_name(stdin_name, "standard input", "--name app")?;
        if files.iter().any(|f| f.id == stdin_name) {
            return Err(ConfigError::Invalid(format!(
                "standard input and a file would both be named `{stdin_name}`; give standard \
                 input another name with --name"
            )));
        }
        files.insert(
            at,
            WatchedFile {
                id: stdin_name.to_owned(),
                path: PathBuf::from(STDIN_PATH),
                command: None,
            },
        );
    }
    Ok(Sources { files, rules })
}

/// The live rule of a glob with wildcards in its last component only, or of a directory.
fn live_rule(arg: &str, absolute: &Path) -> Result<Option<LiveRule>, ConfigError> {
    let is_dir = arg.ends_with('/') || absolute.is_dir();
    if is_dir && !is_glob(arg) {
        if !absolute.is_dir() {
            return Err(ConfigError::Invalid(format!(
                "the directory {} does not exist; create it or fix the path",
                absolute.display()
            )));
        }
        return Ok(Some(LiveRule {
            dir: absolute.to_path_buf(),
            pattern: None,
        }));
    }
    let (Some(dir), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return Ok(None);
    };
    let name = name.to_string_lossy();
    if !is_glob(&name) || is_glob(&dir.to_string_lossy()) {
        return Ok(None);
    }
    let pattern = glob::Pattern::new(&name)
        .map_err(|e| ConfigError::Invalid(format!("bad glob pattern `{arg}`: {e}")))?;
    if !dir.is_dir() {
        return Err(ConfigError::Invalid(format!(
            "the directory {} of `{arg}` does not exist; create it or fix the pattern",
            dir.display()
        )));
    }
    Ok(Some(LiveRule {
        dir: dir.to_path_buf(),
        pattern: Some(pattern),
    }))
}

/// The regular files a rule takes now, sorted.
fn existing_matches(rule: &LiveRule) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(&rule.dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        // A symlink is never taken by a rule, at start as later (see `tail::Discovery`).
        .filter(|path| {
            rule.matches(path)
                && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
        })
        .collect();
    found.sort();
    found
}

/// A source name goes into URLs (`?file=NAME`) and terminals: keep it to plain characters.
fn check_name(name: &str, what: &str, example: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > 128 || !name.chars().all(tail::exec::plain_char) {
        return Err(ConfigError::Invalid(format!(
            "`{name}` cannot name {what}: use 1 to 128 letters, digits, - . _ ~ or /, like \
             {example}"
        )));
    }
    Ok(())
}

fn is_glob(arg: &str) -> bool {
    arg.contains(['*', '?', '['])
}

fn expand_glob(pattern: &str, cwd: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let absolute = normalize(&cwd.join(pattern));
    let text = absolute.to_string_lossy();
    let entries = glob::glob(&text)
        .map_err(|e| ConfigError::Invalid(format!("bad glob pattern `{pattern}`: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "the pattern `{pattern}` matches no file; check the pattern, or name the file itself \
             to wait for it to appear"
        )));
    }
    Ok(files)
}

fn check_path(path: &Path) -> Result<(), ConfigError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        return Err(ConfigError::Invalid(format!(
            "the directory {} does not exist (needed to follow {}); create it or fix the path",
            dir.display(),
            path.display()
        )));
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(ConfigError::Invalid(format!(
            "{} is a directory; name files, or a glob such as '{}/*.log'",
            path.display(),
            path.display()
        ))),
        // Opening a FIFO would wait for a writer, before the port is even bound.
        Ok(meta) if !meta.is_file() => Err(ConfigError::Invalid(format!(
            "{} is {}, not a regular file; tailcast follows regular files only (name the log \
             file itself)",
            path.display(),
            tail::open::kind(meta.file_type())
        ))),
        Ok(_) => tail::open_regular(path).map(drop).map_err(|e| {
            ConfigError::Invalid(format!(
                "cannot read {}: {e}; run tailcast as a user who can (for /var/log, often a \
                 member of the adm group)",
                path.display()
            ))
        }),
        // Missing files are fine: they are followed when they appear.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ConfigError::Invalid(format!(
            "cannot read {}: {e}; fix the path or its permissions",
            path.display()
        ))),
    }
}

/// Removes `.` and resolves `..` lexically (no symlink resolution: the path as the user gave it
/// is what is followed).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The shortest unique suffix of each path: `access.log`, or `nginx/access.log` when two
/// files are named `access.log`.
fn assign_ids(paths: &[PathBuf]) -> Vec<String> {
    let parts: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let mut depth = vec![1usize; paths.len()];
    let id_at = |i: usize, depth: usize| -> String {
        let p = &parts[i];
        p[p.len().saturating_sub(depth)..].join("/")
    };
    loop {
        let ids: Vec<String> = (0..paths.len()).map(|i| id_at(i, depth[i])).collect();
        let mut changed = false;
        for i in 0..paths.len() {
            let clash = ids
                .iter()
                .enumerate()
                .any(|(j, id)| j != i && *id == ids[i]);
            if clash && depth[i] < parts[i].len() {
                depth[i] += 1;
                changed = true;
            }
        }
        if !changed {
            return ids;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_generations_are_told_from_logs_whatever_the_name() {
        for old in [
            "app.log.1",
            "app.log.2.gz",
            "app.log-20261201",
            "app.log-2026-12-01",
            "x.zst",
        ] {
            assert!(is_rotated_generation(old), "{old}");
        }
        for live in [
            "app.log",
            "app-2026-12-01.log",
            "syslog",
            "aé123456789",
            "日本語のログファイル名.log",
        ] {
            assert!(!is_rotated_generation(live), "{live}");
        }
    }

    #[test]
    fn ids_are_file_names_until_two_collide() {
        let ids = assign_ids(&[
            PathBuf::from("/var/log/nginx/access.log"),
            PathBuf::from("/var/log/apache/access.log"),
            PathBuf::from("/var/log/syslog"),
        ]);
        assert_eq!(ids, ["nginx/access.log", "apache/access.log", "syslog"]);
    }

    #[test]
    fn dash_is_stdin_once_in_its_place() {
        let dir = std::env::temp_dir();
        let file = dir
            .join("tailcast-files-test.log")
            .to_string_lossy()
            .into_owned();
        let files = resolve_files(&["-".into(), file], "app").expect("resolves");
        assert_eq!(files[0].id, "app");
        assert!(files[0].is_stdin());
        assert!(!files[1].is_stdin());
        assert!(resolve_files(&["-".into(), "-".into()], "stdin").is_err());
        assert!(resolve_files(&["-".into()], "a b").is_err());
        assert!(resolve_files(&["-".into()], "").is_err());
    }

    #[test]
    fn commands_are_named_by_name_or_program_without_collisions() {
        let mut files = resolve_files(&["/var/log/journalctl".into()], "stdin").expect("resolves");
        let commands = [
            "journalctl -f".to_owned(),
            "journalctl -u nginx -f".to_owned(),
            "journalctl-3=journalctl -k".to_owned(),
            "/usr/bin/tail -F x".to_owned(),
        ];
        add_commands(&mut files, &commands, false).expect("adds");
        let ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "journalctl",
                "journalctl-2",
                "journalctl-4",
                "journalctl-3",
                "tail"
            ]
        );
        assert_eq!(files[1].path, PathBuf::from("!journalctl -f"));
        assert!(files[1].command.is_some() && files[0].command.is_none());
        let twice = ["a=x".to_owned(), "a=y".to_owned()];
        assert!(add_commands(&mut Vec::new(), &twice, false).is_err());
        assert!(add_commands(&mut Vec::new(), &["a b=x".to_owned()], false).is_ok());
    }

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(
            normalize(Path::new("/a/./b/../c.log")),
            PathBuf::from("/a/c.log")
        );
    }
}
