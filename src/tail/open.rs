//! Opening a followed path without ever blocking, and only when it is a regular file.
//!
//! `open()` of a FIFO waits for a writer (forever, for a FIFO nobody writes), and a FIFO, socket
//! or device is not a log that can be read by offset. Callers stat the path first and skip what is
//! not a regular file, but the path can be replaced between that stat and the open, so
//! [`open_regular`] opens with `O_NONBLOCK` (no effect on a regular file) and `O_NOCTTY` (a
//! terminal device never becomes the controlling terminal), then checks the descriptor itself
//! with `fstat`. Reading standard input or a FIFO as a stream is not supported (yet): such a path
//! is refused with its kind named ([`kind`]).

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` for reading if it is a regular file (symlinks followed), without blocking on a
/// FIFO; returns the file and its metadata from the descriptor. Anything else is an error that
/// says what the path is.
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    open_with(path, 0)
}

/// [`open_regular`], but a symlink at `path` itself is refused (`ELOOP`): for files that a live
/// glob or directory found, where whoever can write the directory could otherwise point a name
/// at any file tailcast's user can read.
pub fn open_regular_no_symlink(path: &Path) -> io::Result<(File, Metadata)> {
    open_with(path, libc::O_NOFOLLOW)
}

fn open_with(path: &Path, flags: libc::c_int) -> io::Result<(File, Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | flags)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() {
        Ok((file, meta))
    } else {
        Err(not_regular(meta.file_type()))
    }
}

/// The error for a path that is not a regular file: "it is a FIFO (named pipe), not a regular
/// file".
pub fn not_regular(file_type: FileType) -> io::Error {
    io::Error::other(format!("it is {}, not a regular file", kind(file_type)))
}

/// What a file that is not a regular file is, for messages: "a FIFO (named pipe)", "a socket".
pub fn kind(file_type: FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("app.log");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo");
        // In a thread: a blocking open would never return, and the test must fail, not hang.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(open_regular(&fifo).map(drop).map_err(|e| e.to_string()));
        });
        let result = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("open_regular blocked on a FIFO");
        assert_eq!(
            result,
            Err("it is a FIFO (named pipe), not a regular file".to_owned())
        );
    }

    #[test]
    fn regular_files_open_and_devices_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "line\n").unwrap();
        let (_, meta) = open_regular(&log).unwrap();
        assert_eq!(meta.len(), 5);
        let err = open_regular(Path::new("/dev/null")).unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
        let err = open_regular(dir.path()).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
    }
}
