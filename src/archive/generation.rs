//! A followed file's generations on disk: the file at its path and the rotated siblings log
//! rotation leaves beside it (`app.log.1`, `app.log.2.gz`, `app.log-20261201`), each named by a
//! key that survives renames and compression, and opened for reading (plain, or through gzip).
//!
//! Only siblings of a configured path are ever listed, and a client names a generation by its
//! key, which is looked up in the list: no client string becomes a path. Symbolic links are
//! neither listed nor opened.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::ArchiveError;
use crate::files::is_rotated_generation;

/// Bytes of a generation's first line that make its key.
const KEY_BYTES: usize = 1024;

/// One generation of a followed file.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Stable name: a hash of the generation's first line, so the same text keeps its key when
    /// `app.log` becomes `app.log.1`, then `app.log.2.gz`. When two listed generations begin
    /// with the same line, each key also carries its inode (`KEY-INODE`).
    pub key: String,
    /// File name today (`app.log`, `app.log.1`).
    pub name: String,
    /// The file at the configured path (the newest generation).
    pub current: bool,
    /// Read through gzip.
    pub compressed: bool,
    /// Bytes on disk.
    pub size: u64,
    /// Last modification.
    pub modified: SystemTime,
    /// (device, inode): what the generation is, whatever its name becomes.
    pub dev_ino: (u64, u64),
    /// Its first line is complete (a rotated generation always counts as complete): only then
    /// is its key final.
    pub settled: bool,
    path: PathBuf,
    /// The configured file's name, to find the generation again if it is renamed meanwhile.
    base: String,
}

impl Generation {
    /// Opens the generation for reading from its start (decompressed when it is gzip).
    pub fn open(&self) -> Result<Box<dyn Read + Send>, ArchiveError> {
        let file = self.open_file()?;
        Ok(if self.compressed {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                64 * 1024,
                file,
            )))
        } else {
            Box::new(file)
        })
    }

    /// Opens a plain generation for positioned reads.
    pub fn open_plain(&self) -> Result<File, ArchiveError> {
        self.open_file()
    }

    /// Opens the file this generation is: by its name, or, if a rotation renamed it since it
    /// was listed, by its inode among the siblings. Never another file under its old name.
    fn open_file(&self) -> Result<File, ArchiveError> {
        let ours = |file: &File| {
            file.metadata()
                .is_ok_and(|m| (m.dev(), m.ino()) == self.dev_ino)
        };
        if let Ok(file) = open_regular(&self.path, self.current) {
            if ours(&file) {
                return Ok(file);
            }
        }
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let same = entry
                .metadata()
                .is_ok_and(|m| (m.dev(), m.ino()) == self.dev_ino && m.file_type().is_file());
            if same && is_sibling(&self.base, name) {
                if let Ok(file) = open_regular(&entry.path(), false) {
                    if ours(&file) {
                        return Ok(file);
                    }
                }
            }
        }
        Err(ArchiveError::Gone {
            name: self.name.clone(),
        })
    }

    /// The generation's error for an I/O failure (the file name only, never the whole path).
    pub fn error(&self, error: io::Error) -> ArchiveError {
        ArchiveError::Read {
            name: self.name.clone(),
            reason: error.to_string(),
        }
    }
}

/// Most rotated generations listed per file (the newest).
pub const MAX_GENERATIONS: usize = 1000;

/// Keys already computed, by file version (device, inode, size, modification time): a rotated
/// generation does not change, so listing it again reads nothing. Bounded; emptied when full.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: std::sync::Mutex<std::collections::HashMap<FileVersion, (u64, bool)>>,
}

/// (device, inode, size, modification seconds, nanoseconds).
type FileVersion = (u64, u64, u64, i64, i64);

fn version(meta: &std::fs::Metadata) -> FileVersion {
    (
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
    )
}

/// Entries a [`KeyCache`] holds before it starts again.
const KEY_CACHE_ENTRIES: usize = 16 * 1024;

impl KeyCache {
    /// What was computed for this version of a file, if anything.
    fn known(&self, meta: &std::fs::Metadata) -> Option<(u64, bool)> {
        self.lock().get(&version(meta)).copied()
    }

    /// The hash of the first line of `file` (opened, its metadata `meta`) and whether that line
    /// is complete, remembered for this version of the file.
    fn first_line(
        &self,
        file: &File,
        meta: &std::fs::Metadata,
        compressed: bool,
    ) -> io::Result<(u64, bool)> {
        if let Some(found) = self.known(meta) {
            return Ok(found);
        }
        let found = first_line_hash(file, compressed)?;
        let mut keys = self.lock();
        if keys.len() >= KEY_CACHE_ENTRIES {
            keys.clear();
        }
        keys.insert(version(meta), found);
        Ok(found)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<FileVersion, (u64, bool)>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A sibling found in the directory, before it is opened.
struct Candidate {
    path: PathBuf,
    name: String,
    modified: SystemTime,
}

/// The generations of the file configured at `path`, newest first: the file at the path (when
/// there is one), then its rotated siblings (numbered ones by number, others by modification
/// time), at most [`MAX_GENERATIONS`] of them.
pub fn list(path: &Path, cache: &KeyCache) -> Vec<Generation> {
    let Some(base) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if let Some(current) = describe(path, base, true, cache) {
        found.push(current);
    }
    let Some(dir) = path.parent() else {
        return found;
    };
    // Names and cheap metadata first; only the newest are opened.
    let mut candidates: Vec<Candidate> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !is_sibling(base, &name) {
                return None;
            }
            let meta = entry.metadata().ok()?; // of the entry itself: a link is not a file
            meta.file_type().is_file().then(|| Candidate {
                path: entry.path(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                name,
            })
        })
        .collect();
    // Small rotation numbers (`.1`, `.2.gz`) say the order; dates, epochs or a mix go by
    // modification time (logrotate keeps it when it compresses).
    if candidates
        .iter()
        .all(|c| rotation_number(&c.name).is_some())
    {
        candidates.sort_by_key(|c| rotation_number(&c.name));
    } else {
        candidates.sort_by(|a, b| {
            b.modified
                .cmp(&a.modified)
                .then_with(|| a.name.cmp(&b.name))
        });
    }
    candidates.truncate(MAX_GENERATIONS);
    found.extend(
        candidates
            .iter()
            .filter_map(|c| describe(&c.path, base, false, cache)),
    );
    drop_compressed_copies(&mut found);
    // Generations that begin with the same line (a fixed banner) are told apart by inode,
    // which renames keep.
    let keys: Vec<String> = found.iter().map(|g| g.key.clone()).collect();
    for g in &mut found {
        if keys.iter().filter(|k| **k == g.key).count() > 1 {
            g.key = format!("{}-{:x}", g.key, g.dev_ino.1);
        }
    }
    found
}

/// While logrotate compresses `app.log.2` into `app.log.2.gz`, both exist with the same text:
/// the copy being written is left out, so the lines are listed once and the key stays.
fn drop_compressed_copies(found: &mut Vec<Generation>) {
    let copies: Vec<usize> = (0..found.len())
        .filter(|&i| {
            let g = &found[i];
            g.compressed
                && found.iter().any(|p| {
                    !p.compressed
                        && p.key == g.key
                        && gzip_size(g).is_some_and(|size| size == p.size as u32)
                })
        })
        .collect();
    for i in copies.into_iter().rev() {
        found.remove(i);
    }
}

/// The uncompressed size a gzip file's trailer records (modulo 2^32), if it has one yet.
fn gzip_size(generation: &Generation) -> Option<u32> {
    use std::os::unix::fs::FileExt;
    let file = generation.open_plain().ok()?;
    let len = file.metadata().ok()?.len();
    let mut tail = [0u8; 4];
    file.read_exact_at(&mut tail, len.checked_sub(4)?).ok()?;
    Some(u32::from_le_bytes(tail))
}

/// True when `name` is a rotated generation of `base`: the name, then only a rotation suffix
/// (`.1`, `-20261201`, `-2026-12-01`, `.1764547200`), maybe compressed with gzip. Other
/// compressions are not read; other files that share the prefix (`app.err.1`) are not ours.
pub fn is_sibling(base: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(base) else {
        return false;
    };
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    let Some(suffix) = rest.strip_prefix('.').or_else(|| rest.strip_prefix('-')) else {
        return false;
    };
    let bytes = suffix.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_digit()
        && bytes[bytes.len() - 1].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
        && is_rotated_generation(name)
}

/// `app.log.3.gz` -> 3: a small number after a dot is a rotation index (dates and epochs are
/// not).
fn rotation_number(name: &str) -> Option<u64> {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    let (_, n) = name.rsplit_once('.')?;
    n.parse().ok().filter(|n| *n < 10_000)
}

/// A regular file's description (`None` for a link, a directory, a FIFO, or what cannot be
/// read). A version of the file met before (device, inode, size, mtime) is described from its
/// metadata alone; a new one is opened first and described from that descriptor, so the
/// description is of what was opened.
fn describe(path: &Path, base: &str, current: bool, cache: &KeyCache) -> Option<Generation> {
    // The configured path may be a link the operator made; a sibling never is one.
    let seen = if current {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .ok()
    .filter(|m| m.file_type().is_file())?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    let compressed = name.ends_with(".gz");
    let (meta, (hash, complete)) = match cache.known(&seen) {
        Some(found) => (seen, found),
        None => {
            let file = open_regular(path, current).ok()?;
            let meta = file.metadata().ok()?;
            let found = cache.first_line(&file, &meta, compressed).ok()?;
            (meta, found)
        }
    };
    Some(Generation {
        key: format!("{hash:016x}"),
        name,
        current,
        compressed,
        size: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        dev_ino: (meta.dev(), meta.ino()),
        settled: complete || !current,
        path: path.to_owned(),
        base: base.to_owned(),
    })
}

/// An FNV-1a hash of the first line (at most [`KEY_BYTES`]) and whether it ends in a newline.
fn first_line_hash(file: &File, compressed: bool) -> io::Result<(u64, bool)> {
    let file = file.try_clone()?;
    let reader: Box<dyn Read> = if compressed {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else {
        use std::io::Seek;
        let mut file = file;
        file.seek(io::SeekFrom::Start(0))?;
        Box::new(file)
    };
    let mut first = Vec::with_capacity(256);
    BufReader::new(reader.take(KEY_BYTES as u64)).read_until(b'\n', &mut first)?;
    let complete = first.last() == Some(&b'\n') || first.len() >= KEY_BYTES;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in first {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Ok((hash, complete))
}

/// Opens a regular file for reading, never blocking on a FIFO (`O_NONBLOCK`, which a regular
/// file ignores), and refusing a symbolic link (`O_NOFOLLOW`) unless it is the configured path.
fn open_regular(path: &Path, configured: bool) -> io::Result<File> {
    let flags = if configured {
        libc::O_NONBLOCK
    } else {
        libc::O_NOFOLLOW | libc::O_NONBLOCK
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn siblings_are_listed_newest_first_and_keys_survive_renames_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        write(&log, "current 1\n");
        write(&dir.path().join("app.log.1"), "older 1\n");
        let gz = std::fs::File::create(dir.path().join("app.log.2.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        enc.write_all(b"oldest 1\n").unwrap();
        enc.finish().unwrap();
        write(&dir.path().join("app.log.3.xz"), "not read");
        write(&dir.path().join("app.log.err.1"), "another log");
        write(
            &dir.path().join("app.log-worker.log-20261201"),
            "another log",
        );
        write(&dir.path().join("other.log.1"), "not ours");
        write(&dir.path().join("app.logger"), "not a generation");
        std::os::unix::fs::symlink(&log, dir.path().join("app.log.4")).unwrap();
        let now = SystemTime::now();
        for (name, age) in [("app.log.1", 60), ("app.log.2.gz", 120)] {
            let file = std::fs::File::options()
                .append(true)
                .open(dir.path().join(name))
                .unwrap();
            file.set_modified(now - std::time::Duration::from_secs(age))
                .unwrap();
        }
        let cache = KeyCache::default();
        let listed = list(&log, &cache);
        let names: Vec<_> = listed.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["app.log", "app.log.1", "app.log.2.gz"]);
        assert!(listed[0].current && !listed[1].current && listed[2].compressed);

        let key = listed[0].key.clone();
        std::fs::rename(&log, dir.path().join("app.log.0")).unwrap();
        let plain = std::fs::read(dir.path().join("app.log.0")).unwrap();
        // Being compressed: the copy is not listed twice, and the key stays.
        let gz = std::fs::File::create(dir.path().join("app.log.0.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        enc.write_all(&plain).unwrap();
        enc.finish().unwrap();
        let again = list(&log, &cache);
        let names: Vec<_> = again
            .iter()
            .map(|g| (g.name.as_str(), g.key.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("app.log.0", key.as_str()),
                ("app.log.1", listed[1].key.as_str()),
                ("app.log.2.gz", listed[2].key.as_str())
            ]
        );
        // Compressed, the plain copy gone: the same key.
        std::fs::remove_file(dir.path().join("app.log.0")).unwrap();
        let after = list(&log, &cache);
        assert_eq!(after[0].name, "app.log.0.gz");
        assert_eq!(after[0].key, key);
        // Two generations that begin alike are told apart, and keep apart.
        std::fs::write(dir.path().join("app.log.7"), "older 1\nmore\n").unwrap();
        let clash = list(&log, &cache);
        let keys: Vec<&str> = clash.iter().map(|g| g.key.as_str()).collect();
        let unique: std::collections::HashSet<&str> = keys.iter().copied().collect();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        let mut text = String::new();
        let gen = clash.iter().find(|g| g.name == "app.log.2.gz").unwrap();
        gen.open().unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "oldest 1\n");
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn only_rotation_suffixes_make_siblings_and_small_numbers_order_them() {
        for name in [
            "app.log.1",
            "app.log.2.gz",
            "app.log-20261201",
            "app.log-2026-12-01.gz",
            "app.log.1764547200",
        ] {
            assert!(is_sibling("app.log", name), "{name}");
        }
        for name in [
            "app.log",
            "app.logger",
            "app.log.err.1",
            "app.log-worker.log-20261201",
            "app.log.1.xz",
            "app.log.",
            "app.log.1a",
        ] {
            assert!(!is_sibling("app.log", name), "{name}");
        }
        assert_eq!(rotation_number("app.log.3.gz"), Some(3));
        assert_eq!(rotation_number("app.log.20261201"), None);
    }
}
