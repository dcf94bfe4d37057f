//! `micro`: the CLI every user command goes through, and `micro server`, the composition
//! root that wires the platform's crates together on one machine.

mod cmd;
mod complete;
mod context;
mod git_mtls;
mod home;
mod pipe;
mod server;
mod tls;

use clap::{Parser, Subcommand};
use context::Target;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "micro",
    version,
    about = "Micro as a Service: your services, driven by git"
)]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole platform on this machine (embedded defaults)
    Server(Box<server::ServerArgs>),
    /// Create a service skeleton in a new folder NAME
    New(cmd::new::NewArgs),
    /// Run a service from a folder, a git URL or a short name: commit it into your namespace and push
    Run(cmd::run::RunArgs),
    /// Roll a service to the latest version of its folder or of the branch/tag it tracks
    Update(cmd::run::UpdateArgs),
    /// Remove a service (a commit; the platform stops it)
    Kill(cmd::kill::KillArgs),
    /// Roll a service out again at the revision it runs (also retries a failed build)
    Restart(cmd::restart::RestartArgs),
    /// Set how many replicas a service runs (a commit; rolled out with no downtime)
    Scale(cmd::scale::ScaleArgs),
    /// Print the shell completion script: `micro completion bash > /etc/bash_completion.d/micro`
    Completion {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the CLI's version
    Version {
        /// How to print it: text, json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: cmd::Output,
    },
    /// Show what runs in your namespace (`-w` to watch)
    Status(cmd::status::StatusArgs),
    /// Show one service in full: revision, replicas, config versions, recent events
    Describe(cmd::describe::DescribeArgs),
    /// Print a public service's URL, and open it in a browser on a desktop
    Open(cmd::open::OpenArgs),
    /// Show a service's logs
    Logs(cmd::logs::LogsArgs),
    /// Call a service through the platform
    Call(cmd::call::CallArgs),
    /// What a ref (default: the branch head, or HEAD of the clone you are in) would change
    Diff(cmd::diff::DiffArgs),
    /// The Kubernetes objects a ref (default: the branch head) becomes on a cluster, for
    /// review (secret values never shown), whatever runtime the platform uses
    Manifests(cmd::manifests::ManifestsArgs),
    /// Write one folder of a repo at one commit into a directory (what pods on the
    /// Kubernetes runtime run to fetch their code; the token comes from MICRO_TOKEN)
    Checkout(cmd::checkout::CheckoutArgs),
    /// Reconcile history of your namespace, newest first
    History(cmd::history::HistoryArgs),
    /// Restore the tree of an earlier revision (default: the one before) as a new commit
    Rollback(cmd::history::RollbackArgs),
    /// Clone your namespace's repo; `git push` in it just works
    Clone(cmd::clone::CloneArgs),
    /// Follow a repo on GitHub, Gitea or GitLab instead of the platform-hosted one
    Repo(cmd::repo::RepoArgs),
    /// What each open pull request (or branch other than main) would change
    Previews(cmd::previews::PreviewsArgs),
    /// The namespace's API keys for services with `auth: key`: create, list, revoke
    Keys(cmd::keys::KeysArgs),
    /// Custom domains for public services: add, list, remove
    Domains(cmd::domains::DomainsArgs),
    /// Config: values in the store, versions in git
    Config(cmd::config::ConfigArgs),
    /// The namespace's key-value store
    Store(cmd::store::StoreArgs),
    /// List, choose, add or delete environments (platforms this CLI talks to)
    Env(cmd::env::EnvArgs),
    /// Admin-only: manage namespaces and accounts
    Admin(cmd::admin::AdminArgs),
    /// Get an account and a namespace of your own (where the platform allows sign-up)
    Signup(cmd::signup::SignupArgs),
    /// Log in with email and password; the token is kept in $MICRO_HOME
    Login(cmd::login::LoginArgs),
    /// Revoke and forget the current environment's token
    Logout,
    /// Show who the current token belongs to
    Whoami {
        /// How to print it: text (a table for people), json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: cmd::Output,
    },
    /// git's pre-receive hook in tenant repos (run by git, not by people)
    #[command(hide = true)]
    Hook(cmd::hook::HookArgs),
    /// git credential helper for `micro clone` checkouts (run by git, not by people)
    #[command(hide = true)]
    Credential(cmd::credential::CredentialArgs),
}

/// Commands a global flag does nothing for: it is hidden from their help (and still
/// accepted, so a `MICRO_NAMESPACE` in the environment never breaks them).
const NO_NAMESPACE: &[&str] = &[
    "server",
    "checkout",
    "new",
    "completion",
    "version",
    "env",
    "login",
    "signup",
    "logout",
    "whoami",
    "admin",
];
const NO_ENV: &[&str] = &["server", "new", "completion", "version", "env", "checkout"];

/// The command line as users see it.
fn cli_command() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    // A command in NO_NAMESPACE / NO_ENV gets a hidden copy of the flag before globals are
    // passed down (which skips a command with a flag of that id). Hiding the passed-down
    // copy instead left clap looking `--help` up as another flag.
    for (id, commands) in [("namespace", NO_NAMESPACE), ("env", NO_ENV)] {
        let Some(hidden) = command.get_arguments().find(|a| a.get_id() == id).cloned() else {
            continue;
        };
        let hidden = hidden.hide(true);
        for name in commands {
            command = command.mut_subcommand(name, |s| s.arg(hidden.clone()));
        }
    }
    command
}

fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let matches = cli_command().try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

fn main() -> ExitCode {
    // reqwest asks the process for its TLS crypto when no configuration of ours is given.
    micro_pki::install_default_provider();
    // `COMPLETE=bash micro`: the shell's completion asking (service names come from the
    // platform); nothing else runs then.
    clap_complete::CompleteEnv::with_factory(cli_command).complete();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        // `micro` or `micro config` alone: the help, as it is laid out.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            e.exit()
        }
        Err(e) => {
            eprintln!("{}", one_line_usage_error(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    if !matches!(cli.command, Command::Server(_)) {
        pipe::quiet_on_closed_stdout();
    }
    // Neither the hook nor the credential helper starts a runtime (threads, their
    // stacks): git waits on each of them for every push.
    match &cli.command {
        Command::Hook(args) => return cmd::hook::run(args),
        Command::Credential(args) => {
            return cmd::credential::run(&cli.target, args).unwrap_or_else(|e| {
                eprintln!("error: {}", one_line(&e));
                ExitCode::FAILURE
            });
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) if pipe::is_closed_stdout(&e) => pipe::die_of_sigpipe(),
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// clap's multi-line usage errors as the one line every failure gets: what is wrong, its
/// suggestion ("a similar subcommand exists") and the usage, without the pointer to
/// `--help`.
fn one_line_usage_error(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .map(|l| match l.strip_prefix("Usage: ") {
            Some(usage) => format!("(usage: {usage})"),
            None => l.replace("tip: ", "; "),
        })
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ; ", "; ")
}

/// Whether two versions (`MAJOR.MINOR.PATCH`) are more than one minor version apart.
fn apart(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.trim_start_matches('v').split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(a), parts(b)) {
        (Some((ma, na)), Some((mb, nb))) => ma != mb || na.abs_diff(nb) > 1,
        _ => false,
    }
}

/// An error and its causes on one line.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let t = &cli.target;
    match cli.command {
        Command::Server(args) => server::run(*args).await.map(|()| ExitCode::SUCCESS),
        Command::New(args) => cmd::new::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) if args.is_folder() => {
            cmd::run::run(&t.writing_to(&args.how.to), args).await
        }
        Command::Run(args) => cmd::source::run_git(&t.writing_to(&args.how.to), args).await,
        Command::Update(args) => cmd::run::update(&t.writing_to(&args.how.to), args).await,
        Command::Kill(args) => cmd::kill::run(t, args).await,
        Command::Restart(args) => cmd::restart::run(t, args).await,
        Command::Scale(args) => cmd::scale::run(t, args).await,
        Command::Describe(args) => cmd::describe::run(t, args).await,
        Command::Open(args) => cmd::open::run(t, args).await,
        Command::Completion { shell } => {
            let mut command = cli_command();
            clap_complete::generate(shell, &mut command, "micro", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Version { output } => {
            let version = env!("CARGO_PKG_VERSION");
            // The current environment's server too, when it answers soon.
            let server = match t.env_only() {
                Ok((_, _, env)) => match crate::tls::client(&env, None) {
                    Ok(client) => tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        client.server_version(),
                    )
                    .await
                    .ok()
                    .and_then(Result::ok),
                    Err(_) => None,
                },
                Err(_) => None,
            };
            if !output.data(&serde_json::json!({ "version": version, "server": server }))? {
                println!("micro {version}");
                match &server {
                    Some(s) => println!("server {s}"),
                    None => println!("server: not reached"),
                }
            }
            if let Some(s) = &server
                && apart(version, s)
            {
                eprintln!(
                    "warning: this CLI ({version}) and the server ({s}) are more than one minor version apart: upgrade the older one"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => cmd::status::run(t, args).await,
        Command::Logs(args) => cmd::logs::run(t, args).await,
        Command::Call(args) => cmd::call::run(t, args).await,
        Command::Clone(args) => cmd::clone::run(t, args).await,
        Command::Repo(args) => cmd::repo::run(t, args).await,
        Command::Previews(args) => cmd::previews::run(t, args).await,
        Command::Keys(args) => cmd::keys::run(t, args).await,
        Command::Domains(args) => cmd::domains::run(t, args).await,
        Command::Diff(args) => Ok(cmd::diff::run(t, args).await),
        Command::Manifests(args) => cmd::manifests::run(t, args).await,
        Command::Checkout(args) => cmd::checkout::run(args).await,
        Command::History(args) => cmd::history::run(t, args).await,
        Command::Rollback(args) => cmd::history::rollback(t, args).await,
        Command::Env(args) => cmd::env::run(t, args).await,
        Command::Config(args) => cmd::config::run(t, args).await,
        Command::Store(args) => cmd::store::run(t, args).await,
        Command::Admin(args) => cmd::admin::run(t, args).await,
        Command::Whoami { output } => cmd::admin::whoami(t, output).await,
        Command::Login(args) => cmd::login::login(t, args).await,
        Command::Signup(args) => cmd::signup::run(t, args).await,
        Command::Logout => cmd::login::logout(t).await,
        // Run before any runtime starts (see `main`).
        Command::Credential(_) | Command::Hook(_) => Ok(ExitCode::FAILURE),
    }
}

#[cfg(test)]
mod tests {
    use super::cli_command;

    /// Every argument a user can see says what it is for.
    #[test]
    fn every_visible_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&cli_command(), "micro", &mut missing);
        assert!(missing.is_empty(), "no help: {missing:#?}");
    }

    #[test]
    fn versions_more_than_one_minor_apart_are_told() {
        assert!(!super::apart("0.1.0", "0.1.7"));
        assert!(!super::apart("0.1.0", "0.2.3"));
        assert!(super::apart("0.1.0", "0.3.0"));
        assert!(super::apart("1.4.0", "2.4.0"));
        assert!(!super::apart("0.1.0", "not a version"));
    }

    /// `--help` works on every command a user can see, the ones that hide a global flag
    /// included.
    #[test]
    fn every_visible_command_answers_help() {
        fn walk(command: &clap::Command, path: &[String], failing: &mut Vec<String>) {
            let visible = command
                .get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help");
            for sub in visible {
                let mut path = path.to_vec();
                path.push(sub.get_name().to_owned());
                let mut argv = vec!["micro".to_owned()];
                argv.extend(path.iter().cloned());
                argv.push("--help".to_owned());
                match cli_command().try_get_matches_from(&argv) {
                    // A default named in the doc and set in the arg shows twice.
                    Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
                        let help = e.to_string();
                        if let Some(line) =
                            help.lines().find(|l| l.matches("[default:").count() > 1)
                        {
                            failing.push(format!("{}: {}", argv.join(" "), line.trim()));
                        }
                    }
                    Err(e) => failing.push(format!("{}: {}", argv.join(" "), e)),
                    Ok(_) => failing.push(format!("{}: ran", argv.join(" "))),
                }
                walk(sub, &path, failing);
            }
        }
        let mut failing = Vec::new();
        walk(&cli_command(), &[], &mut failing);
        assert!(failing.is_empty(), "{failing:#?}");
    }

    #[test]
    fn global_flags_show_only_where_they_do_something() {
        let mut command = cli_command();
        // Globals reach the subcommands when the command is built.
        command.build();
        let shown = |sub: &str, flag: &str| {
            command
                .find_subcommand(sub)
                .and_then(|s| s.get_arguments().find(|a| a.get_id().as_str() == flag))
                .is_some_and(|a| !a.is_hide_set())
        };
        assert!(shown("status", "namespace") && shown("status", "env"));
        assert!(!shown("server", "namespace") && !shown("server", "env"));
        assert!(!shown("login", "namespace") && shown("login", "env"));
        assert!(shown("run", "branch") && shown("scale", "branch"));
        assert!(!shown("status", "branch") && !shown("server", "branch"));
    }
}
