//! One module per user command.

pub mod admin;
pub mod call;
pub mod checkout;
pub mod clone;
pub mod config;
pub mod credential;
pub mod describe;
pub mod diff;
pub mod domains;
pub mod env;
pub mod history;
pub mod hook;
pub mod keys;
pub mod kill;
pub mod login;
pub mod logs;
pub mod manifests;
pub mod new;
pub mod open;
pub mod previews;
pub mod repo;
pub mod restart;
pub mod run;
pub mod scale;
pub mod signup;
pub mod source;
pub mod status;
pub mod store;
pub mod tail;
pub mod wait;

/// `--branch` of the commands that commit.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct BranchFlag {
    /// Commit to a new branch NAME, ready for a pull request, instead of the branch the
    /// namespace runs
    #[arg(long, value_name = "NAME", value_parser = branch_name)]
    pub branch: Option<String>,
}

/// A `--branch` git would take, refused before anything is read or written.
fn branch_name(s: &str) -> Result<String, String> {
    if git2::Reference::is_valid_name(&format!("refs/heads/{s}")) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a branch name"))
    }
}

/// `--output` for commands that print data.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// A table or lines for people
    #[default]
    Text,
    /// JSON, for programs (`jq`)
    Json,
    /// YAML
    Yaml,
}

impl Output {
    /// Prints `value` as JSON or YAML and says so; for `Text`, prints nothing and returns
    /// false (the command prints its own table).
    pub fn data<T: serde::Serialize>(self, value: &T) -> anyhow::Result<bool> {
        match self {
            Output::Text => return Ok(false),
            Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
            Output::Yaml => print!("{}", serde_saphyr::to_string(value)?),
        }
        Ok(true)
    }
}

/// Colour on standard output: only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>).
pub fn color_on_stdout() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A time for `-o json`/`-o yaml` and tables alike: RFC 3339 in UTC, to the second.
pub fn rfc3339(ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
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
