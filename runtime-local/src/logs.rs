//! Per-service log files: bounded in size, tailed and followed for `micro logs`.

use bytes::Bytes;
use micro_runtime::{LogQuery, LogStream, RuntimeError};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// A log file past this size is moved to `<name>.log.1` (replacing the previous one).
pub(crate) const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// The longest line kept whole; longer ones are cut into lines of this size.
const MAX_LINE: usize = 16 * 1024;

/// `2026-11-29T23:15:00.123Z`: fixed width in UTC, so lines compare by time as text.
pub(crate) fn timestamp(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// How much a writer writes between two looks at its log's size.
const CHECK_EVERY: usize = 64 * 1024;

/// Copies a process's output into its service's log (`path`), each line stamped with the
/// time and `tag`, until the process and everything it started have closed their output.
/// The log is kept under [`MAX_LOG_BYTES`] as it is written, a build's output as much as
/// a replica's: past it, the file is copied to `<name>.log.1` and emptied. Every writer
/// appends (`O_APPEND`), so emptying in place is safe while the others keep writing, and
/// the log overshoots by at most what each writer writes between two looks.
pub(crate) async fn copy_lines(
    output: tokio::net::unix::pipe::Receiver,
    mut log: tokio::fs::File,
    path: PathBuf,
    tag: Option<String>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut reader = tokio::io::BufReader::with_capacity(MAX_LINE, output);
    let mut line = Vec::with_capacity(256);
    let mut unchecked = 0;
    loop {
        line.clear();
        // Bounded: a process that never ends a line cannot make the platform hold it all.
        let read = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let mut out = timestamp(std::time::SystemTime::now()).into_bytes();
        out.push(b' ');
        if let Some(tag) = &tag {
            out.extend_from_slice(format!("[{tag}] ").as_bytes());
        }
        out.extend_from_slice(text);
        out.push(b'\n');
        if log.write_all(&out).await.is_err() {
            return;
        }
        unchecked += out.len();
        if unchecked >= CHECK_EVERY {
            unchecked = 0;
            rotate_if_over(&path).await;
        }
    }
}

/// Moves the log at `path` to `<name>.log.1` (replacing the previous one) once it is
/// past its bound. One rotation at a time, so two writers never copy over each other;
/// a look that finds the log within its bound takes no lock.
async fn rotate_if_over(path: &std::path::Path) {
    static ROTATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let over = || async {
        tokio::fs::metadata(path)
            .await
            .is_ok_and(|m| m.len() > MAX_LOG_BYTES)
    };
    if !over().await {
        return;
    }
    let _one = ROTATING.lock().await;
    // Another writer may have rotated it meanwhile.
    if over().await {
        let old = path.with_extension("log.1");
        if tokio::fs::copy(path, &old).await.is_ok()
            && let Ok(f) = tokio::fs::OpenOptions::new().write(true).open(path).await
        {
            let _ = f.set_len(0).await;
        }
    }
}

/// The last lines (since a time, if asked), then (if following) whatever is appended,
/// until the reader goes or the log is removed with its service.
pub(crate) async fn read(path: PathBuf, query: LogQuery) -> Result<LogStream, RuntimeError> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    // There from now on, so a follow can tell a removed service by its log going.
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await?;
    let content = tokio::fs::read(&path).await?;
    let offset = content.len() as u64;
    let mut content = match query.since_ms {
        Some(ms) => since(&content, ms),
        None => content,
    };
    let start = tail_start(&content, query.tail);
    let first = Bytes::from(content.split_off(start));
    let head = futures_util::stream::once(async move { Ok(first) });
    if !query.follow {
        return Ok(Box::pin(head));
    }
    let rest = futures_util::stream::unfold((path, offset), |(path, mut offset)| async move {
        loop {
            tokio::time::sleep(FOLLOW_EVERY).await;
            let mut f = match tokio::fs::File::open(&path).await {
                Ok(f) => f,
                // Removed with its service: nothing more will come.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                Err(_) => continue,
            };
            let len = f.metadata().await.map(|m| m.len()).unwrap_or(offset);
            if len < offset {
                offset = 0; // rotated
            }
            if len == offset {
                continue;
            }
            if let Err(e) = f.seek(std::io::SeekFrom::Start(offset)).await {
                return Some((Err(e), (path, offset)));
            }
            let mut buf = Vec::with_capacity((len - offset).min(1 << 20) as usize);
            match (&mut f).take(1 << 20).read_to_end(&mut buf).await {
                Ok(n) => {
                    offset += n as u64;
                    return Some((Ok(Bytes::from(buf)), (path, offset)));
                }
                Err(e) => return Some((Err(e), (path, offset))),
            }
        }
    });
    Ok(Box::pin(futures_util::StreamExt::chain(head, rest)))
}

/// The lines of `content` stamped at or after `ms` (stamps are fixed-width UTC, so a
/// text comparison orders them).
fn since(content: &[u8], ms: i64) -> Vec<u8> {
    let Ok(ms) = u64::try_from(ms) else {
        return content.to_vec();
    };
    let from = timestamp(std::time::UNIX_EPOCH + Duration::from_millis(ms)).into_bytes();
    content
        .split_inclusive(|b| *b == b'\n')
        .filter(|line| {
            line.get(..from.len())
                .is_some_and(|stamp| stamp >= &from[..])
        })
        .flatten()
        .copied()
        .collect()
}

/// Byte offset where the last `lines` lines of `content` begin.
fn tail_start(content: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return content.len();
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == lines {
                return i + 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::{since, tail_start, timestamp};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn since_keeps_the_lines_stamped_from_then_on() {
        let at = |ms: u64| timestamp(UNIX_EPOCH + Duration::from_millis(ms));
        let log = format!(
            "{} a\n{} [build] b\n{} c\n",
            at(1_000),
            at(2_000),
            at(3_000)
        );
        let kept = String::from_utf8(since(log.as_bytes(), 2_000)).unwrap();
        assert_eq!(kept, format!("{} [build] b\n{} c\n", at(2_000), at(3_000)));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text = b"a\nb\nc\n";
        assert_eq!(&text[tail_start(text, 2)..], b"b\nc\n");
        assert_eq!(&text[tail_start(text, 10)..], b"a\nb\nc\n");
        assert_eq!(&text[tail_start(text, 0)..], b"");
        assert_eq!(&b"x\ny"[tail_start(b"x\ny", 1)..], b"y");
    }
}
