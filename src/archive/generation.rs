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
    /// `app.log` becomes `app.log.1`, then `app.log.2.gz`.
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
    /// (device, inode): how the hub's batches name the file they came from.
    pub dev_ino: (u64, u64),
    path: PathBuf,
}

impl Generation {
    /// Opens the generation for reading from its start (decompressed when it is gzip).
    pub fn open(&self) -> Result<Box<dyn Read + Send>, ArchiveError> {
        let file = open_regular(&self.path, self.current).map_err(|e| self.error(e))?;
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
        open_regular(&self.path, self.current).map_err(|e| self.error(e))
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

/// Keys already computed, by (device, inode, size, modification time): a rotated generation
/// does not change, so listing it again opens nothing. Bounded; emptied when full.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: std::sync::Mutex<std::collections::HashMap<FileVersion, String>>,
}

/// (device, inode, size, modification seconds, nanoseconds).
type FileVersion = (u64, u64, u64, i64, i64);

/// Entries a [`KeyCache`] holds before it starts again.
const KEY_CACHE_ENTRIES: usize = 16 * 1024;

impl KeyCache {
    fn key(&self, generation: &Generation, meta: &std::fs::Metadata) -> Option<String> {
        let id = (
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
        );
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = keys.get(&id) {
            return Some(key.clone());
        }
        drop(keys);
        let key = key_of(generation).ok()?;
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= KEY_CACHE_ENTRIES {
            keys.clear();
        }
        keys.insert(id, key.clone());
        Some(key)
    }
}

/// The generations of the file configured at `path`, newest first: the file at the path (when
/// there is one), then its rotated siblings (numbered ones by number, others by modification
/// time), at most [`MAX_GENERATIONS`] of them.
pub fn list(path: &Path, cache: &KeyCache) -> Vec<Generation> {
    let mut found = Vec::new();
    if let Some(current) = describe(path, true, cache) {
        found.push(current);
    }
    let (Some(dir), Some(base)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return found;
    };
    let mut siblings: Vec<Generation> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let rest = name.strip_prefix(base)?;
            let separated = rest.starts_with('.') || rest.starts_with('-');
            // Only plain files and gzip: other compressions are listed by no one.
            let readable = !is_compressed_other(&name);
            (separated && readable && is_rotated_generation(&name))
                .then(|| describe(&entry.path(), false, cache))
                .flatten()
        })
        .collect();
    // Numbered generations (`.1`, `.2.gz`) are in the order their numbers say; dated ones, or
    // a mix, by modification time (logrotate keeps it when it compresses).
    if siblings
        .iter()
        .all(|g| rotation_number(&g.name) != u64::MAX)
    {
        siblings.sort_by_key(|g| rotation_number(&g.name));
    } else {
        siblings.sort_by(|a, b| {
            b.modified
                .cmp(&a.modified)
                .then_with(|| rotation_number(&a.name).cmp(&rotation_number(&b.name)))
        });
    }
    siblings.truncate(MAX_GENERATIONS);
    found.extend(siblings);
    // Two generations with the same first line (a fixed banner, say) keep apart by position.
    for i in 1..found.len() {
        let clashes = found[..i].iter().filter(|g| g.key == found[i].key).count();
        if clashes > 0 {
            found[i].key = format!("{}-{}", found[i].key, clashes + 1);
        }
    }
    found
}

/// Compressions tailcast does not read (gzip is read).
fn is_compressed_other(name: &str) -> bool {
    [".xz", ".bz2", ".zst", ".lz4", ".zip"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// `app.log.3.gz` -> 3: orders generations written in the same second.
fn rotation_number(name: &str) -> u64 {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.rsplit_once('.')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// A regular file's description (`None` for a symlink, a directory, or what cannot be read).
fn describe(path: &Path, current: bool, cache: &KeyCache) -> Option<Generation> {
    // The configured path may be a link the operator made; a sibling never is one.
    let meta = if current {
        std::fs::metadata(path).ok()?
    } else {
        std::fs::symlink_metadata(path).ok()?
    };
    if !meta.file_type().is_file() {
        return None;
    }
    let name = path.file_name()?.to_string_lossy().into_owned();
    let compressed = name.ends_with(".gz");
    let mut generation = Generation {
        key: String::new(),
        name,
        current,
        compressed,
        size: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        dev_ino: (meta.dev(), meta.ino()),
        path: path.to_owned(),
    };
    generation.key = cache.key(&generation, &meta)?;
    Some(generation)
}

/// The key: 16 hex digits of an FNV-1a hash of the first line (at most [`KEY_BYTES`]).
fn key_of(generation: &Generation) -> Result<String, ArchiveError> {
    let reader = generation.open()?;
    let mut first = Vec::with_capacity(256);
    BufReader::new(reader.take(KEY_BYTES as u64))
        .read_until(b'\n', &mut first)
        .map_err(|e| generation.error(e))?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in first {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{hash:016x}"))
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
        let gz = std::fs::File::create(dir.path().join("app.log.5.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        enc.write_all(&plain).unwrap();
        enc.finish().unwrap();
        let again = list(&log, &cache);
        // The same text keeps its key renamed and compressed; the two copies stay apart.
        let mut keys: Vec<_> = again
            .iter()
            .filter(|g| g.name == "app.log.0" || g.name == "app.log.5.gz")
            .map(|g| g.key.clone())
            .collect();
        keys.sort();
        assert_eq!(keys, [key.clone(), format!("{key}-2")]);
        let mut text = String::new();
        let gen = again.iter().find(|g| g.name == "app.log.2.gz").unwrap();
        gen.open().unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "oldest 1\n");
    }
}
