//! One module per user command.

pub mod admin;
pub mod call;
pub mod clone;
pub mod config;
pub mod credential;
pub mod diff;
pub mod env;
pub mod history;
pub mod hook;
pub mod kill;
pub mod login;
pub mod logs;
pub mod new;
pub mod restart;
pub mod run;
pub mod scale;
pub mod source;
pub mod status;
pub mod store;
pub mod wait;

/// `--output` for commands that print data.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Seven characters of a commit id, as git shows them.
pub fn short(rev: &str) -> &str {
    rev.get(..7).unwrap_or(rev)
}

/// How long ago, for people: `5s ago`, `3m ago`, `2h ago`, `4d ago`.
pub fn ago(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}
