//! Per-service log files: bounded in size, tailed and followed for `micro logs`.

use crate::runtime::{LogStream, RuntimeError};
use bytes::Bytes;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::sync::CancellationToken;

/// A log file past this size is moved to `<name>.log.1` (replacing the previous one).
pub(crate) const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// Keeps the log under its bound until cancelled. Processes write with O_APPEND, so
/// copying then truncating in place is safe while they keep writing.
pub(crate) async fn rotate_while(path: PathBuf, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = cancel.cancelled() => return,
        }
        if let Ok(meta) = tokio::fs::metadata(&path).await
            && meta.len() > MAX_LOG_BYTES
        {
            let old = path.with_extension("log.1");
            if tokio::fs::copy(&path, &old).await.is_ok()
                && let Ok(f) = tokio::fs::OpenOptions::new().write(true).open(&path).await
            {
                let _ = f.set_len(0).await;
            }
        }
    }
}

/// The last `tail` lines, then (if `follow`) whatever is appended, until the reader goes.
pub(crate) async fn read(
    path: PathBuf,
    tail: usize,
    follow: bool,
) -> Result<LogStream, RuntimeError> {
    let content = match tokio::fs::read(&path).await {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let start = tail_start(&content, tail);
    let first = Bytes::copy_from_slice(&content[start..]);
    let offset = content.len() as u64;
    let head = futures_util::stream::once(async move { Ok(first) });
    if !follow {
        return Ok(Box::pin(head));
    }
    let rest = futures_util::stream::unfold((path, offset), |(path, mut offset)| async move {
        loop {
            tokio::time::sleep(FOLLOW_EVERY).await;
            let Ok(mut f) = tokio::fs::File::open(&path).await else {
                continue;
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
    use super::tail_start;

    #[test]
    fn tail_keeps_the_last_lines() {
        let text = b"a\nb\nc\n";
        assert_eq!(&text[tail_start(text, 2)..], b"b\nc\n");
        assert_eq!(&text[tail_start(text, 10)..], b"a\nb\nc\n");
        assert_eq!(&text[tail_start(text, 0)..], b"");
        assert_eq!(&b"x\ny"[tail_start(b"x\ny", 1)..], b"y");
    }
}
