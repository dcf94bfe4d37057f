//! `micro admin backup` and `micro admin restore`: the platform in one archive (a tar),
//! made where the server runs (its data dir and store), while it runs.
//!
//! - `store.json`: the store's tables, read in one transaction (SQLite and PostgreSQL
//!   alike: `micro_store::Dump`), values as stored (config values sealed, tokens hashed);
//! - `repos/<ns>.bundle`: each namespace's repo, every ref (`git bundle --all`), and
//!   `repos/<ns>/<mark>`: the marks kept beside it (quota, link, a preview's scope, …);
//! - `secrets.sealed`: the platform CA's key and `config.key`, sealed with a passphrase;
//!   `tls/ca.pem`, the CA's certificate;
//! - `manifest.json`, last: versions, the namespaces, and every entry's SHA-256.
//!
//! A restore checks the whole archive (checksums, passphrase, schema) before it writes
//! anything, and writes only into an empty data dir and an empty store.

use crate::error::{Context, Result, ServerError};
use micro_store::{Dump, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const STORE: &str = "store.json";
const SECRETS: &str = "secrets.sealed";
const CA_CERT: &str = "tls/ca.pem";

/// What an archive holds, and how to check it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The `micro` that made it.
    pub micro: String,
    /// The store's schema (its newest migration).
    pub schema: i64,
    /// `sqlite` or `postgres`: where it was read from (a restore may go to either).
    pub backend: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub namespaces: Vec<String>,
    /// Every other entry's path → its SHA-256, hex.
    pub entries: BTreeMap<String, String>,
}

/// The files beside a repo that say what the store told readers of it (`micro-*`).
fn marks(repo: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("micro-") && !n.ends_with(".tmp"))
        })
        .collect();
    out.sort();
    out
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A file's SHA-256, read as a stream.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Every file below `dir`, as paths relative to it with `/` between parts.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at)? {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    Ok(out)
}

fn git(args: &[&str], dir: &Path) -> Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Adds `bytes` at `path` to the archive, and its checksum to `entries`.
fn add(
    tar: &mut tar::Builder<std::fs::File>,
    entries: &mut BTreeMap<String, String>,
    path: &str,
    bytes: &[u8],
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, path, bytes)
        .with_context(|| format!("cannot write {path} into the archive"))?;
    if path != MANIFEST {
        entries.insert(path.to_owned(), sha256(bytes));
    }
    Ok(())
}

/// Adds the file at `from` as `path`, read as a stream, and its checksum to `entries`.
fn add_file(
    tar: &mut tar::Builder<std::fs::File>,
    entries: &mut BTreeMap<String, String>,
    path: &str,
    from: &Path,
) -> Result<()> {
    entries.insert(path.to_owned(), sha256_file(from)?);
    let mut file = std::fs::File::open(from)?;
    tar.append_file(path, &mut file)
        .with_context(|| format!("cannot write {path} into the archive"))
}

/// What a backup wrote.
pub struct Backed {
    pub namespaces: usize,
    pub schema: i64,
    pub bytes: u64,
}

/// Writes the archive of the platform whose data dir is `data` and store `store_spec`
/// to `output` (made whole under another name, then renamed: a failed backup leaves no
/// file that looks like one).
pub async fn backup(
    store_spec: &str,
    data: &Path,
    output: &Path,
    passphrase: &str,
) -> Result<Backed> {
    if passphrase.len() < 8 {
        bail!("the passphrase is shorter than 8 characters: give a longer one on stdin");
    }
    if matches!(store_spec, "sqlite" | "") && !data.join("store.db").exists() {
        bail!(
            "no store in {}: give the server's data dir (--data-dir) and its store (--store)",
            data.display()
        );
    }
    let (store_url, _) = crate::database::store_url(store_spec);
    let store = Store::open(&store_url, data)
        .await
        .context("cannot open the store")?;
    let dump = store.dump().await?;
    let namespaces = names(&dump);
    let secrets = read_secrets(data)?;
    let sealed = micro_store::seal_with_passphrase(passphrase, &serde_json::to_string(&secrets)?)
        .map_err(|e| ServerError::new(e.to_string()))?;
    let partial = output.with_extension("partial");
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?
    };
    let mut tar = tar::Builder::new(file);
    let mut entries = BTreeMap::new();
    add(&mut tar, &mut entries, STORE, &serde_json::to_vec(&dump)?)?;
    let scratch = tempfile::tempdir_in(partial.parent().unwrap_or(Path::new(".")))
        .context("cannot make a scratch dir beside the output")?;
    for ns in &namespaces {
        let repo = micro_tenant::layout::repo_path(&data.join("repos"), ns);
        if !repo.exists() {
            bail!("namespace {ns} has no repo at {}", repo.display());
        }
        let bundle = scratch.path().join(format!("{ns}.bundle"));
        git(
            &["bundle", "create", "-q", &bundle.to_string_lossy(), "--all"],
            &repo,
        )?;
        add_file(
            &mut tar,
            &mut entries,
            &format!("repos/{ns}.bundle"),
            &bundle,
        )?;
        std::fs::remove_file(&bundle)?;
        for mark in marks(&repo) {
            let name = mark.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            add_file(&mut tar, &mut entries, &format!("repos/{ns}/{name}"), &mark)?;
        }
    }
    add(&mut tar, &mut entries, SECRETS, sealed.as_bytes())?;
    if let Ok(ca) = std::fs::read(data.join(CA_CERT)) {
        add(&mut tar, &mut entries, CA_CERT, &ca)?;
    }
    let manifest = Manifest {
        format: FORMAT,
        micro: env!("CARGO_PKG_VERSION").to_owned(),
        schema: dump.schema,
        backend: store.backend().to_owned(),
        created_at: micro_store::now_millis(),
        namespaces: namespaces.clone(),
        entries: entries.clone(),
    };
    add(
        &mut tar,
        &mut entries,
        MANIFEST,
        &serde_json::to_vec_pretty(&manifest)?,
    )?;
    let file = tar.into_inner().context("cannot finish the archive")?;
    file.sync_all()?;
    std::fs::rename(&partial, output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(Backed {
        namespaces: namespaces.len(),
        schema: dump.schema,
        bytes: std::fs::metadata(output)?.len(),
    })
}

/// The namespaces a dump holds.
fn names(dump: &Dump) -> Vec<String> {
    let Some(table) = dump.tables.iter().find(|t| t.name == "namespaces") else {
        return Vec::new();
    };
    let Some(at) = table.columns.iter().position(|c| c == "name") else {
        return Vec::new();
    };
    let mut out: Vec<String> = table
        .rows
        .iter()
        .filter_map(|r| r.get(at)?.as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

/// The data dir's secrets: `config.key` (or `MICRO_CONFIG_KEY`) and the CA's key.
fn read_secrets(data: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let config_key = match std::env::var("MICRO_CONFIG_KEY") {
        Ok(hex) => Some(hex),
        Err(_) => std::fs::read_to_string(data.join("config.key")).ok(),
    };
    if let Some(key) = config_key {
        out.insert("config.key".to_owned(), key.trim().to_owned());
    }
    if let Ok(key) = std::fs::read_to_string(data.join("tls/ca.key")) {
        out.insert("tls/ca.key".to_owned(), key);
    }
    Ok(out)
}

/// What a restore brought back.
pub struct Restored {
    pub namespaces: usize,
    pub micro: String,
    pub created_at: i64,
}

/// Brings back the platform in `input` into the empty data dir `data` and the empty
/// store `store_spec`. The server must not run (it would hold the data dir).
pub async fn restore(
    store_spec: &str,
    data: &Path,
    input: &Path,
    passphrase: &str,
    exe: &Path,
) -> Result<Restored> {
    for taken in ["store.db", "config.key", "tls/ca.key"] {
        if data.join(taken).exists() {
            bail!(
                "{} holds a platform already ({taken}): restore into an empty data dir",
                data.display()
            );
        }
    }
    let repos = micro_tenant::Repos::new(data.join("repos"));
    if std::fs::read_dir(repos.root())
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        bail!(
            "{} holds repos already: restore into an empty data dir",
            repos.root().display()
        );
    }
    // Unpacked aside and checked whole before anything is written; the scratch dir goes
    // with any refusal. Large archives stream to disk, never into memory.
    std::fs::create_dir_all(data)?;
    let scratch = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(data)
        .context("cannot make a scratch dir in the data dir")?;
    let unpacked = scratch.path().join("archive");
    tar::Archive::new(
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?,
    )
    .unpack(&unpacked)
    .context("not a backup archive")?;
    let read = |path: &str| {
        std::fs::read(unpacked.join(path))
            .map_err(|_| ServerError::new(format!("the backup is incomplete: {path} is missing")))
    };
    let manifest: Manifest = serde_json::from_slice(&read(MANIFEST)?)
        .context("not a backup archive: its manifest.json does not read")?;
    if manifest.format != FORMAT {
        bail!(
            "the backup's format is {}, this micro reads {FORMAT}: restore it with micro {}",
            manifest.format,
            manifest.micro
        );
    }
    for (path, sum) in &manifest.entries {
        let inside = Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            bail!("the backup lists {path}, outside the archive: it was altered");
        }
        match sha256_file(&unpacked.join(path)) {
            Ok(got) if got == *sum => {}
            Ok(_) => bail!("the backup is damaged: {path} does not match its checksum"),
            Err(_) => bail!("the backup is incomplete: {path} is missing"),
        }
    }
    if let Some(extra) = files_under(&unpacked)?
        .into_iter()
        .find(|p| p != MANIFEST && !manifest.entries.contains_key(p))
    {
        bail!("the backup holds {extra}, which its manifest does not list: it was altered");
    }
    for ns in &manifest.namespaces {
        micro_tenant::spec::check_service_name(ns).map_err(|_| {
            ServerError::new(format!(
                "the backup names a namespace {ns:?} that is no name"
            ))
        })?;
    }
    let secrets: BTreeMap<String, String> = serde_json::from_str(
        &micro_store::open_with_passphrase(passphrase, &String::from_utf8_lossy(&read(SECRETS)?))
            .map_err(|_| {
            ServerError::new(
                "the passphrase does not open the backup's secrets: give the one it was made with",
            )
        })?,
    )?;
    let dump: Dump =
        serde_json::from_slice(&read(STORE)?).context("the store's copy does not read")?;

    let (store_url, _) = crate::database::store_url(store_spec);
    let store = Store::open(&store_url, data)
        .await
        .context("cannot open the store")?;
    store.load(&dump).await?;
    for (name, content) in &secrets {
        let path = data.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_private(&path, content.as_bytes())?;
    }
    if let Ok(ca) = read(CA_CERT) {
        std::fs::create_dir_all(data.join("tls"))?;
        std::fs::write(data.join(CA_CERT), ca)?;
    }
    std::fs::create_dir_all(repos.root())?;
    for ns in &manifest.namespaces {
        let bundle = unpacked.join(format!("repos/{ns}.bundle"));
        // Made aside and renamed into place, as a new repo is.
        let aside = scratch.path().join(format!("{ns}.git"));
        git(
            &["init", "-q", "--bare", &aside.to_string_lossy()],
            scratch.path(),
        )?;
        git(
            &["fetch", "-q", &bundle.to_string_lossy(), "+refs/*:refs/*"],
            &aside,
        )?;
        git(
            &["symbolic-ref", "HEAD", micro_tenant::layout::BRANCH],
            &aside,
        )?;
        for mark in marks(&unpacked.join("repos").join(ns)) {
            if let Some(name) = mark.file_name() {
                std::fs::copy(&mark, aside.join(name))?;
            }
        }
        std::fs::rename(&aside, repos.path(ns))?;
        repos
            .install_hook(ns, exe)
            .map_err(|e| ServerError::new(e.to_string()))?;
    }
    Ok(Restored {
        namespaces: manifest.namespaces.len(),
        micro: manifest.micro,
        created_at: manifest.created_at,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
