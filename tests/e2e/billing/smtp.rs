//! A real SMTP server process (Python's aiosmtpd, from the CI virtualenv) that keeps
//! what it receives in a Maildir the test reads.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let python = std::env::var("MICRO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let has = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            has,
            "aiosmtpd is missing from {python}: `.ci/run` installs it in its virtualenv \
             (pip install aiosmtpd) and puts that first on PATH"
        );
        let tmp = tempfile::tempdir().unwrap();
        let maildir = tmp.path().join("maildir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the SMTP sink never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            child,
            port,
            maildir,
            _tmp: tmp,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received for `to`, whole (headers and body), oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let modified = e.metadata().and_then(|m| m.modified()).ok();
                let to_line = text
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("to:"))
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if to_line.contains(&to.to_ascii_lowercase()) {
                    found.push((modified, text));
                }
            }
        }
        found.sort_by_key(|(m, _)| *m);
        found.into_iter().map(|(_, t)| t).collect()
    }

    /// Waits for the `n`th message to `to` and returns it.
    pub fn wait_for_message(&self, to: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let all = self.messages_to(to);
            if all.len() >= n {
                return all[n - 1].clone();
            }
            assert!(Instant::now() < deadline, "no message {n} to {to}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The six-digit code in a message.
pub fn code_in(message: &str) -> String {
    let message = message.replace("\r\n", "\n");
    let body = message
        .split("\n\n")
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n\n");
    body.split_whitespace()
        .map(|w| w.trim_end_matches('.'))
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {message}"))
        .to_owned()
}
