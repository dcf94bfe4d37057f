//! `micro store write/read/list/delete`: the namespace's key-value store.

use super::Output;
use crate::context::Target;
use anyhow::{Result, anyhow, bail};
use micro_api::types::MAX_KV_VALUE_BYTES;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// The table
    #[arg(long, global = true, default_value = "default")]
    pub table: String,
    #[command(subcommand)]
    pub action: StoreAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum StoreAction {
    /// Write VALUE under KEY (`-` reads the value from standard input)
    Write {
        /// The key
        key: String,
        /// The value (`-`: standard input)
        value: String,
        /// Forget it after this long: 30s, 10m, 2h, 7d
        #[arg(long)]
        expiry: Option<String>,
    },
    /// Read KEY (or, with --prefix, every key starting with KEY)
    Read {
        /// The key
        key: String,
        /// Read every key starting with KEY
        #[arg(long)]
        prefix: bool,
        /// At most this many records (with --prefix)
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Skip this many first
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// How to print it: text (a table for people), json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// List keys (those starting with PREFIX)
    List {
        /// Only keys starting with this
        prefix: Option<String>,
        /// At most this many keys
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Skip this many first
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// How to print it: text (a table for people), json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete KEY
    Delete {
        /// The key
        key: String,
    },
}

/// `30s`, `10m`, `2h`, `7d` or plain seconds.
pub fn parse_duration(s: &str) -> Result<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("{s:?} is not a duration (30s, 10m, 2h, 7d)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => bail!("{s:?} is not a duration (30s, 10m, 2h, 7d)"),
    };
    if secs == 0 {
        bail!("an expiry must be at least 1s");
    }
    Ok(secs)
}

pub async fn run(t: &Target, args: StoreArgs) -> Result<ExitCode> {
    let ctx = t.resolve().await?;
    let (ns, table) = (&ctx.namespace, args.table.as_str());
    match args.action {
        StoreAction::Write { key, value, expiry } => {
            let expiry = expiry.as_deref().map(parse_duration).transpose()?;
            let value = if value == "-" {
                let mut v = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut v)?;
                v
            } else {
                value
            };
            // Refused here, not only by the server: a body far over the server's limit
            // may be cut off while it is still being sent, before its answer is read.
            let size = value.len();
            if size > MAX_KV_VALUE_BYTES {
                bail!("value is {size} bytes; the limit is {MAX_KV_VALUE_BYTES}");
            }
            ctx.client.kv_write(ns, table, &key, &value, expiry).await?;
        }
        StoreAction::Read {
            key,
            prefix,
            limit,
            offset,
            output,
        } => {
            let records = ctx
                .client
                .kv_read(ns, table, &key, prefix, limit, offset)
                .await?;
            if !output.data(&records)? {
                if prefix {
                    records
                        .iter()
                        .for_each(|r| println!("{}\t{}", r.key, r.value));
                } else {
                    records.iter().for_each(|r| println!("{}", r.value));
                }
            }
        }
        StoreAction::List {
            prefix,
            limit,
            offset,
            output,
        } => {
            let prefix = prefix.unwrap_or_default();
            let records = ctx
                .client
                .kv_read(ns, table, &prefix, true, limit, offset)
                .await?;
            let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
            if !output.data(&keys)? {
                keys.iter().for_each(|k| println!("{k}"));
            }
        }
        StoreAction::Delete { key } => ctx.client.kv_delete(ns, table, &key).await?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), 30);
        assert_eq!(parse_duration("10m").unwrap(), 600);
        assert_eq!(parse_duration("2h").unwrap(), 7200);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        assert_eq!(parse_duration("45").unwrap(), 45);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
