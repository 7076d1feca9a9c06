//! Standard input as a source: `tailcast -` follows what is piped into it.
//!
//! A pipe cannot be stat'ed, sought or reopened, so none of the follower's machinery applies:
//! the bytes are read once, in order, until the end of input. Two detached threads do it. The
//! *reader* blocks in `read` (up to `read_chunk_bytes` at a time) and hands chunks over a small
//! bounded channel; the *splitter* cuts them into lines with the same [`LineSplitter`] as files
//! (same cap, CRLF and invalid UTF-8 rules) and hands [`LineBatch`]es to the same [`TailSink`], so
//! numbering, history, pacing and every transport are those of a file. Keeping the blocking read
//! on a thread of its own is what lets the splitter flush an unfinished line after
//! `partial_line_timeout` while the writer is quiet. When the hub paces the splitter, the
//! channel fills, the reader stops reading and the pipe's writer waits: the pipe is the buffer.
//!
//! At the end of input the unfinished last line is flushed as a line, [`FileState::Ended`] is
//! announced and the status says the source no longer exists; the history stays. Neither thread
//! is joined: a read on a pipe whose writer never ends must not keep the process from exiting.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};

use super::follower::{FileState, FileStatus, FollowConfig, TailSink};
use super::splitter::{LineBatch, LineSplitter};

/// Chunks read ahead of the splitter: a little slack for bursts; beyond it the reader waits.
const CHUNKS_AHEAD: usize = 4;

/// What the reader hands the splitter.
enum Chunk {
    /// Bytes read.
    Bytes(Vec<u8>),
    /// The end of input (a read returned 0).
    End,
    /// A read failed; the input is over, and this says why (for clients).
    Failed(String),
}

/// Starts following standard input into `sink` on two detached threads.
pub fn follow_stdin<S: TailSink>(config: &FollowConfig, sink: S) -> io::Result<()> {
    follow_reader(io::stdin(), config, sink)
}

/// Follows any byte stream the way [`follow_stdin`] follows standard input (tests feed it a
/// pipe or a slice).
pub fn follow_reader<R, S>(input: R, config: &FollowConfig, sink: S) -> io::Result<()>
where
    R: Read + Send + 'static,
    S: TailSink,
{
    let (tx, rx) = sync_channel(CHUNKS_AHEAD);
    let chunk_bytes = config.read_chunk_bytes.max(4096);
    std::thread::Builder::new()
        .name("stdin read".into())
        .spawn(move || read_chunks(input, chunk_bytes, &tx))?;
    let config = config.clone();
    std::thread::Builder::new()
        .name("stdin lines".into())
        .spawn(move || split_chunks(&rx, &config, sink))?;
    Ok(())
}

fn read_chunks<R: Read>(mut input: R, chunk_bytes: usize, tx: &SyncSender<Chunk>) {
    loop {
        let mut buf = vec![0; chunk_bytes];
        let chunk = match input.read(&mut buf) {
            Ok(0) => Chunk::End,
            Ok(n) => {
                buf.truncate(n);
                Chunk::Bytes(buf)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("cannot read standard input: {e}; it is followed no more");
                Chunk::Failed(format!("it cannot be read: {e}"))
            }
        };
        let last = !matches!(chunk, Chunk::Bytes(_));
        // A closed channel means the splitter is gone: nobody wants more.
        if tx.send(chunk).is_err() || last {
            return;
        }
    }
}

fn split_chunks<S: TailSink>(rx: &Receiver<Chunk>, config: &FollowConfig, mut sink: S) {
    let mut splitter = LineSplitter::new(config.max_line_bytes);
    let mut batch = LineBatch::default();
    let mut size: u64 = 0;
    sink.status(FileStatus {
        exists: true,
        size,
        error: None,
    });
    loop {
        // Wait for bytes; while an unfinished line is held, only until it is due to go out alone.
        let first = if splitter.has_partial() {
            match rx.recv_timeout(config.partial_line_timeout) {
                Ok(chunk) => chunk,
                Err(RecvTimeoutError::Timeout) => {
                    splitter.flush(&mut batch);
                    sink.lines(std::mem::take(&mut batch));
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => Chunk::End,
            }
        } else {
            rx.recv().unwrap_or(Chunk::End)
        };
        // Coalesce: what the reader already has joins this batch, up to about one chunk's
        // worth of lines (the size a file's batch has), so a burst is a few large batches.
        let mut next = Some(first);
        let mut end = None;
        while let Some(chunk) = next.take() {
            match chunk {
                Chunk::Bytes(bytes) => {
                    size += bytes.len() as u64;
                    splitter.feed(&bytes, &mut batch);
                }
                Chunk::End => end = Some(None),
                Chunk::Failed(why) => end = Some(Some(why)),
            }
            if end.is_some() || batch.text_bytes() >= config.read_chunk_bytes {
                break;
            }
            next = match rx.try_recv() {
                Ok(chunk) => Some(chunk),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => Some(Chunk::End),
            };
        }
        if let Some(error) = end {
            // The unfinished last line is a line: nothing will complete it.
            splitter.flush(&mut batch);
            if !batch.is_empty() {
                sink.lines(std::mem::take(&mut batch));
            }
            sink.state(FileState::Ended);
            sink.status(FileStatus {
                exists: false,
                size,
                error,
            });
            return;
        }
        if !batch.is_empty() {
            sink.lines(std::mem::take(&mut batch));
        }
        sink.status(FileStatus {
            exists: true,
            size,
            error: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Sender};
    use std::time::Duration;

    enum Event {
        Lines(Vec<String>),
        State(FileState),
        Status(FileStatus),
    }

    struct Collect(Sender<Event>);

    impl TailSink for Collect {
        fn lines(&mut self, batch: LineBatch) {
            let _ = self
                .0
                .send(Event::Lines(batch.lines().map(str::to_owned).collect()));
        }
        fn state(&mut self, state: FileState) {
            let _ = self.0.send(Event::State(state));
        }
        fn status(&mut self, status: FileStatus) {
            let _ = self.0.send(Event::Status(status));
        }
    }

    fn config() -> FollowConfig {
        FollowConfig {
            max_line_bytes: 8,
            read_chunk_bytes: 4096,
            partial_line_timeout: Duration::from_millis(50),
            ..FollowConfig::default()
        }
    }

    /// Everything the sink got until the end, lines joined.
    fn run(input: &'static [u8]) -> (Vec<String>, Vec<FileState>, FileStatus) {
        let (tx, rx) = channel();
        follow_reader(input, &config(), Collect(tx)).expect("threads");
        let (mut lines, mut states, mut status) = (Vec::new(), Vec::new(), FileStatus::default());
        while let Ok(event) = rx.recv_timeout(Duration::from_secs(10)) {
            match event {
                Event::Lines(l) => lines.extend(l),
                Event::State(s) => states.push(s),
                Event::Status(s) => status = s,
            }
            if !status.exists && !states.is_empty() {
                break;
            }
        }
        (lines, states, status)
    }

    #[test]
    fn lines_then_the_end_with_the_partial_last_line() {
        let (lines, states, status) = run(b"one\r\ntwo\nabcdefghij\n\xffx\nlast");
        assert_eq!(lines, ["one", "two", "abcdefgh", "\u{fffd}x", "last"]);
        assert_eq!(states, [FileState::Ended]);
        assert_eq!(status.size, 27);
        assert!(!status.exists && status.error.is_none());
    }

    #[test]
    fn empty_input_just_ends() {
        let (lines, states, _) = run(b"");
        assert!(lines.is_empty());
        assert_eq!(states, [FileState::Ended]);
    }

    #[test]
    fn a_quiet_unfinished_line_goes_out_after_the_timeout() {
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        let (tx, rx) = channel();
        follow_reader(reader, &config(), Collect(tx)).expect("threads");
        std::io::Write::write_all(&mut writer, b"half").expect("write");
        let got = loop {
            match rx.recv_timeout(Duration::from_secs(10)).expect("an event") {
                Event::Lines(lines) => break lines,
                _ => continue,
            }
        };
        assert_eq!(
            got,
            ["half"],
            "flushed while the writer is quiet, the pipe still open"
        );
        drop(writer);
    }
}
