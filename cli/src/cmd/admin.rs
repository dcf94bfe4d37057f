//! `micro admin …` (admin-only) and `micro whoami`.

use super::Output;
use crate::context::Target;
use anyhow::{Result, bail};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub what: AdminWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum AdminWhat {
    /// Namespaces: create, delete or list
    #[command(subcommand)]
    Namespace(NamespaceAction),
    /// Accounts: create (a developer of one namespace) or list
    #[command(subcommand)]
    Account(AccountAction),
    /// Show a namespace's quota, or change parts of it: `micro admin quota team
    /// services=20 memory=8Gi` (keys: services, replicas, cpu, memory, repo-size,
    /// checkout-files, checkout-size, pushes-per-minute, store-size, build-time)
    Quota {
        /// The namespace (or `--previews`)
        #[arg(required_unless_present = "previews")]
        namespace: Option<String>,
        /// The previews class: what each preview environment may use (never more than
        /// the namespace it previews)
        #[arg(long)]
        previews: bool,
        /// KEY=VALUE changes; the rest stays
        set: Vec<String>,
        /// How to print it: text (a table for people), json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Suspend a namespace: its services stop (scaled to zero, nothing deleted), pushes
    /// and writes are refused, reads still work
    Suspend {
        /// The namespace
        namespace: String,
    },
    /// Lift a namespace's suspension (billing's too): what ran before runs again
    Resume {
        /// The namespace
        namespace: String,
    },
    /// Invitations, while sign-up is by invitation (`micro server --signup invite`):
    /// `micro admin invite EMAIL…` invites, `invite list` lists, `invite revoke EMAIL…`
    /// revokes
    Invite {
        /// EMAIL…, `list`, or `revoke EMAIL…`
        #[arg(required = true)]
        args: Vec<String>,
        /// How to print the list: text, json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
    /// Tokens made on the server's machine (or in its pod), straight from its store: the
    /// first admin of a cluster. `micro admin token create --email E` prints one, once
    #[command(subcommand)]
    Token(TokenAction),
    /// Write the whole platform into one archive, where the server runs (it may go on
    /// running): the store, every namespace's repo, the CA and the config key (sealed
    /// with a passphrase read from stdin)
    Backup {
        /// The archive to write
        #[arg(long, short = 'o')]
        output: std::path::PathBuf,
        /// Ask the platform of the current environment for it, over the API, instead of
        /// reading the data dir on this machine
        #[arg(long)]
        platform: bool,
        #[command(flatten)]
        server: ServerPlace,
    },
    /// Bring a platform back from a backup into an empty data dir and store (the server
    /// stopped); the passphrase is read from stdin
    Restore {
        /// The archive `micro admin backup` wrote
        input: std::path::PathBuf,
        #[command(flatten)]
        server: ServerPlace,
    },
    /// Mail the platform kept instead of sending (no --smtp): sign-up codes, notices
    Outbox {
        /// How to print it: text, json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenAction {
    /// Print a new token of admin EMAIL (an admin account is made if there is none);
    /// `micro env add NAME URL --token-stdin` takes it. Writes no file of yours
    Create {
        /// The admin's email
        #[arg(long)]
        email: String,
        /// The server's data dir [default: $MICRO_HOME/server]
        #[arg(long, env = "MICRO_DATA_DIR")]
        data_dir: Option<std::path::PathBuf>,
        /// The server's store: `sqlite` (in the data dir) or a `postgres://` URL
        #[arg(long, env = "MICRO_STORE", default_value = "sqlite")]
        store: String,
    },
}

/// Where a server keeps its data, for the verbs that work on it directly.
#[derive(clap::Args, Debug)]
pub struct ServerPlace {
    /// The server's data dir [default: $MICRO_HOME/server]
    #[arg(long, env = "MICRO_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// The server's store: `sqlite` (in the data dir) or a `postgres://` URL
    #[arg(long, env = "MICRO_STORE", default_value = "sqlite")]
    store: String,
}

impl ServerPlace {
    fn data(&self) -> Result<std::path::PathBuf> {
        Ok(match &self.data_dir {
            Some(d) => d.clone(),
            None => crate::home::Home::locate()?.dir().join("server"),
        })
    }
}

/// The passphrase, the first line of stdin.
fn passphrase() -> Result<String> {
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)?;
    let line = line.trim_end_matches(['\n', '\r']).to_owned();
    if line.is_empty() {
        bail!(
            "no passphrase on stdin: give it as the first line (`micro admin backup -o F < passphrase-file`)"
        );
    }
    Ok(line)
}

#[derive(clap::Subcommand, Debug)]
pub enum AccountAction {
    /// Create a developer account of namespace NAME
    Create {
        /// The developer's email (their login)
        email: String,
        /// The namespace they work in
        #[arg(long)]
        namespace: String,
        /// Its password [prompted, without echo, when missing]
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete an account: its tokens stop working at once (not a service's identity, not
    /// your own)
    Delete {
        /// The account's email
        email: String,
    },
    /// List accounts
    List {
        /// How to print it: text (a table for people), json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum NamespaceAction {
    /// Create namespace NAME with its repo
    Create {
        /// The new namespace's name
        name: String,
    },
    /// Delete namespace NAME for good: its services stop, and its repo, config, data
    /// and accounts are deleted (refused while it has a live subscription, and for your
    /// own account's namespace)
    Delete {
        /// The namespace
        name: String,
        /// The namespace's name again, to confirm
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
    },
    /// List all namespaces
    List {
        /// How to print it: text (a table for people), json or yaml
        #[arg(long, short, value_enum, default_value_t)]
        output: Output,
    },
}

pub async fn run(t: &Target, args: AdminArgs) -> Result<ExitCode> {
    // Made from the store itself: no platform to ask yet.
    if let AdminWhat::Token(TokenAction::Create {
        email,
        data_dir,
        store,
    }) = &args.what
    {
        let data = match data_dir {
            Some(d) => d.clone(),
            None => crate::home::Home::locate()?.dir().join("server"),
        };
        let token = micro_server::mint_admin_token(store, &data, email).await?;
        println!("{token}");
        eprintln!(
            "a token of admin {email}, shown this once: `micro env add NAME URL --token-stdin` takes it"
        );
        return Ok(ExitCode::SUCCESS);
    }
    match &args.what {
        AdminWhat::Backup {
            output,
            platform: true,
            ..
        } => {
            let passphrase = passphrase()?;
            let (_, _, env) = t.env_only()?;
            let client = crate::tls::client(&env, env.token.clone())?;
            let partial = output.with_extension("partial");
            let mut file = {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&partial)?
            };
            let written = client.backup(&passphrase, &mut file).await;
            let written = match written {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e.into());
                }
            };
            file.sync_all()?;
            std::fs::rename(&partial, output)?;
            eprintln!(
                "{}: {:.1} MiB from the platform; keep the passphrase apart from it",
                output.display(),
                written as f64 / 1048576.0
            );
            return Ok(ExitCode::SUCCESS);
        }
        AdminWhat::Backup { output, server, .. } => {
            let done = micro_server::backup::backup(
                &server.store,
                &server.data()?,
                output,
                &passphrase()?,
            )
            .await?;
            eprintln!(
                "{}: {} namespaces, store schema {}, {:.1} MiB; keep the passphrase apart from it",
                output.display(),
                done.namespaces,
                done.schema,
                done.bytes as f64 / 1048576.0
            );
            return Ok(ExitCode::SUCCESS);
        }
        AdminWhat::Restore { input, server } => {
            let exe = std::env::current_exe()?;
            let done = micro_server::backup::restore(
                &server.store,
                &server.data()?,
                input,
                &passphrase()?,
                &exe,
            )
            .await?;
            eprintln!(
                "restored {} namespaces from a backup micro {} made at {}: start the server on this data dir",
                done.namespaces,
                done.micro,
                super::rfc3339(done.created_at)
            );
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let (_, env_name, env) = t.env_only()?;
    let client = crate::tls::client(&env, env.token.clone())?;
    // The platform hides admin routes from everyone else ("not found"); say why here.
    let me = client.whoami().await?;
    if me.role != micro_store::Role::Admin {
        bail!(
            "not found: `micro admin` needs the admin role, and {} on {env_name} is a developer",
            me.email
        );
    }
    match args.what {
        AdminWhat::Invite { args, output } => match args.first().map(String::as_str) {
            Some("list") if args.len() == 1 => {
                let invites = client.invites().await?;
                if !output.data(&invites)? {
                    for i in invites {
                        println!(
                            "{:<40} {}  by {}",
                            i.email,
                            super::rfc3339(i.created_at),
                            i.invited_by
                        );
                    }
                }
            }
            Some("revoke") => {
                if args.len() < 2 {
                    anyhow::bail!("`micro admin invite revoke EMAIL…`: which address?");
                }
                for email in &args[1..] {
                    client.revoke_invite(email).await?;
                    eprintln!("{email}: invitation revoked");
                }
            }
            _ => {
                for email in &args {
                    client.invite(email).await?;
                    eprintln!(
                        "{email}: invited; `micro signup` (or the sign-up page) works for it now"
                    );
                }
            }
        },
        // Answered above, before the platform is asked.
        AdminWhat::Token(_) | AdminWhat::Backup { .. } | AdminWhat::Restore { .. } => {}
        AdminWhat::Outbox { output } => {
            let mail = client.outbox().await?;
            if !output.data(&mail)? {
                for m in mail {
                    println!("--- {} to {}: {}", super::rfc3339(m.at), m.to, m.subject);
                    println!("{}", m.body.trim_end());
                }
            }
        }
        AdminWhat::Suspend { namespace } => {
            let v = client.suspension(&namespace, true).await?;
            eprintln!(
                "namespace {} {}: its services stop; pushes and writes are refused, reads still work",
                v.namespace,
                if v.changed {
                    "suspended"
                } else {
                    "was suspended already"
                }
            );
        }
        AdminWhat::Resume { namespace } => {
            let v = client.suspension(&namespace, false).await?;
            eprintln!(
                "namespace {} {}",
                v.namespace,
                if v.changed {
                    "resumed: what ran before starts again"
                } else {
                    "was not suspended"
                }
            );
        }
        AdminWhat::Namespace(NamespaceAction::Create { name }) => {
            client.create_namespace(&name).await?;
            eprintln!("namespace {name} created");
        }
        AdminWhat::Namespace(NamespaceAction::Delete { name, confirm }) => {
            if confirm.as_deref() != Some(name.as_str()) {
                bail!(
                    "deleting namespace {name} stops its services and deletes its repo, config, data and accounts for good; to go on, name it twice: micro admin namespace delete {name} --confirm {name}"
                );
            }
            let done = client.delete_namespace(&name).await?;
            eprintln!(
                "namespace {} deleted with {} account(s); {} service(s) stopping",
                done.namespace, done.accounts, done.services
            );
        }
        AdminWhat::Account(AccountAction::Create {
            email,
            namespace,
            password,
        }) => {
            let password = match password {
                Some(p) => p,
                None => super::login::ask(
                    "Password for the new account: ",
                    false,
                    "--password PASSWORD",
                )?,
            };
            client.create_account(&email, &namespace, &password).await?;
            eprintln!("account {email} created in namespace {namespace}");
        }
        AdminWhat::Account(AccountAction::Delete { email }) => {
            client.delete_account(&email).await?;
            eprintln!("account {email} deleted");
        }
        AdminWhat::Account(AccountAction::List { output }) => {
            let list = client.list_accounts().await?;
            if !output.data(&list)? {
                println!(
                    "{:<32} {:<10} {:<24} {:<10} {:<9} SUSPENDED",
                    "EMAIL", "ROLE", "NAMESPACE", "PLAN", "BILLING"
                );
                for a in list {
                    println!(
                        "{:<32} {:<10} {:<24} {:<10} {:<9} {}",
                        a.email,
                        format!("{:?}", a.role).to_lowercase(),
                        a.namespace.as_deref().unwrap_or("-"),
                        a.plan.as_deref().unwrap_or("-"),
                        a.billing.as_deref().unwrap_or("-"),
                        a.suspended.as_deref().unwrap_or("-"),
                    );
                }
            }
        }
        AdminWhat::Quota {
            namespace,
            previews,
            set,
            output,
        } => {
            let (namespace, set) = match (previews, namespace) {
                // With --previews every word is a change.
                (true, Some(first)) => (None, [vec![first], set].concat()),
                (_, namespace) => (namespace, set),
            };
            let set = (!set.is_empty()).then(|| set.join(","));
            let q = match namespace {
                Some(namespace) => client.quota(&namespace, set.as_deref()).await?,
                None => client.previews_quota(set.as_deref()).await?,
            };
            if !output.data(&q)? {
                {
                    println!("namespace          {}", q.namespace);
                    println!("services           {}", q.services);
                    println!("replicas           {}", q.replicas);
                    println!("cpu                {}", q.cpu);
                    println!("memory             {}", q.memory);
                    println!("repo-size          {}", q.repo_size);
                    println!("checkout-files     {}", q.checkout_files);
                    println!("checkout-size      {}", q.checkout_size);
                    println!("pushes-per-minute  {}", q.pushes_per_minute);
                    println!("store-size         {}", q.store_size);
                    if let Some(build_time) = &q.build_time {
                        println!("build-time         {build_time}");
                    }
                    if let Some(refs) = q.refs {
                        println!("refs               {refs}");
                    }
                }
            }
        }
        AdminWhat::Namespace(NamespaceAction::List { output }) => {
            let list = client.list_namespaces().await?;
            if !output.data(&list.quotas)? {
                println!(
                    "{:<24} {:>8} {:>8} {:>8} {:>10}",
                    "NAMESPACE", "SERVICES", "REPLICAS", "CPU", "MEMORY"
                );
                for q in &list.quotas {
                    println!(
                        "{:<24} {:>8} {:>8} {:>8} {:>10}",
                        q.namespace, q.services, q.replicas, q.cpu, q.memory
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(t: &Target, output: Output) -> Result<ExitCode> {
    let (_, name, env) = t.env_only()?;
    let client = crate::tls::client(&env, env.token.clone())?;
    let me = client.whoami().await?;
    #[derive(serde::Serialize)]
    struct Me<'a> {
        #[serde(flatten)]
        me: &'a micro_api::types::WhoAmI,
        env: &'a str,
        url: &'a str,
    }
    let shown = Me {
        me: &me,
        env: &name,
        url: &env.url,
    };
    if output.data(&shown)? {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} ({}) namespace {} on {name}",
        me.email,
        format!("{:?}", me.role).to_lowercase(),
        me.namespace.as_deref().unwrap_or("-")
    );
    Ok(ExitCode::SUCCESS)
}
