//! What `--wait` shows of a build: on a terminal, its last few lines redrawn in place
//! under the status lines, then folded into one line when it succeeds (kept when it
//! fails); in a log or a pipe, every line as it comes.

use std::collections::VecDeque;
use std::io::Write;

/// How many of the build's lines a terminal shows at once.
const SHOWN: usize = 6;

/// The build's lines and the status lines, both written through it.
pub struct Tail {
    /// The terminal's width, or `None` when stderr is not one.
    width: Option<usize>,
    last: VecDeque<String>,
    /// Lines of the tail on the screen now, under the cursor's line.
    drawn: usize,
    total: usize,
    folded: bool,
}

impl Tail {
    /// For stderr as it is.
    pub fn for_stderr() -> Self {
        use std::io::IsTerminal;
        let width = std::io::stderr().is_terminal().then(|| {
            terminal_size::terminal_size_of(std::io::stderr()).map_or(80, |(w, _)| usize::from(w.0))
        });
        Self::new(width)
    }

    fn new(width: Option<usize>) -> Self {
        Tail {
            width,
            last: VecDeque::new(),
            drawn: 0,
            total: 0,
            folded: false,
        }
    }

    /// The build's new lines (each ending in a newline).
    pub fn build_lines(&mut self, text: &str) {
        let mut out = String::new();
        match self.width {
            None => out.push_str(text),
            // What comes after the fold is in `micro logs NAME --build`.
            Some(_) if self.folded => {}
            Some(_) => {
                out.push_str(&self.erase());
                for line in text.lines() {
                    self.total += 1;
                    // The stamp and the mark say nothing on a live screen.
                    let shown = line.split_once(" [build] ").map_or(line, |(_, rest)| rest);
                    self.last.push_back(shown.to_owned());
                    if self.last.len() > SHOWN {
                        self.last.pop_front();
                    }
                }
                out.push_str(&self.draw());
            }
        }
        write_err(&out);
    }

    /// A status line, above the tail.
    pub fn status_line(&mut self, line: &str) {
        let mut out = self.erase();
        out.push_str(line);
        out.push('\n');
        out.push_str(&self.draw());
        write_err(&out);
    }

    /// The build is over: on a terminal, its tail becomes one line when it succeeded
    /// (`name`'s lines stay in `micro logs NAME --build`); when it failed, its last lines
    /// stay on the screen.
    pub fn fold(&mut self, name: &str, succeeded: bool) {
        if self.width.is_none() || self.folded || self.total == 0 {
            return;
        }
        self.folded = true;
        if succeeded {
            let out = format!(
                "{}{name}: built ({} lines: micro logs {name} --build)\n",
                self.erase(),
                self.total
            );
            write_err(&out);
        } else {
            // Left as they are, below the cursor: the next line goes under them.
            self.drawn = 0;
        }
    }

    /// Moves up over the tail and clears it.
    fn erase(&mut self) -> String {
        let out = match self.drawn {
            0 => String::new(),
            n => format!("\x1b[{n}F\x1b[J"),
        };
        self.drawn = 0;
        out
    }

    /// The tail, dimmed, each line cut to the terminal's width so it takes one row.
    fn draw(&mut self) -> String {
        let width = self.width.unwrap_or(80).saturating_sub(1).max(10);
        let mut out = String::new();
        for line in &self.last {
            let cut: String = line
                .chars()
                .filter(|c| !c.is_control())
                .take(width)
                .collect();
            out.push_str(&format!("\x1b[2m{cut}\x1b[0m\n"));
        }
        self.drawn = self.last.len();
        out
    }
}

fn write_err(text: &str) {
    if !text.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_redraws_the_last_lines_and_folds_them_on_success() {
        let mut tail = Tail::new(Some(20));
        let lines: String = (1..=8)
            .map(|i| format!("line {i} {}\n", "x".repeat(30)))
            .collect();
        tail.build_lines(&lines);
        assert_eq!(tail.drawn, SHOWN);
        assert_eq!(
            tail.last.front().map(String::as_str),
            Some(&*format!("line 3 {}", "x".repeat(30)))
        );
        // Cut to one row each.
        assert!(
            tail.draw()
                .lines()
                .all(|l| l.chars().count() <= 19 + "\x1b[2m\x1b[0m".len())
        );
        assert_eq!(tail.erase(), format!("\x1b[{SHOWN}F\x1b[J"));
        assert_eq!(tail.erase(), "");
        tail.fold("api", true);
        assert!(tail.folded);
        // Nothing more is drawn once folded.
        tail.build_lines("late\n");
        assert_eq!(tail.drawn, 0);
    }

    #[test]
    fn a_log_gets_every_line_and_nothing_is_folded() {
        let mut tail = Tail::new(None);
        tail.build_lines("a\nb\n");
        assert_eq!((tail.drawn, tail.total), (0, 0));
        tail.fold("api", true);
        assert!(!tail.folded);
    }
}
