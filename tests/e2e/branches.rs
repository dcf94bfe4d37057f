//! The namespace's repo beyond its tracked branch: branches and tags come and go (main
//! stays), up to the `refs` quota, and what a deleted branch alone held is given back;
//! partial clones work.

use crate::harness::Platform;

/// A clone of the namespace's repo, with one commit on a new branch `name` holding
/// `bytes` of incompressible data, pushed.
fn push_branch(
    p: &Platform,
    clone: &std::path::Path,
    name: &str,
    bytes: usize,
) -> std::process::Output {
    p.git_ok(clone, &["checkout", "-q", "-B", name, "origin/main"]);
    // xorshift: nothing zlib can shrink.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ name.len() as u64;
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(clone.join(format!("{name}.bin")), data).unwrap();
    p.git_ok(clone, &["add", "."]);
    p.git_ok(clone, &["commit", "-qm", name]);
    p.git(clone, &["push", "-q", "origin", name])
}

/// Bytes in the repo's objects folder.
fn objects_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            objects_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[test]
fn branches_and_tags_are_deleted_main_is_not_and_the_refs_quota_caps_them() {
    let p = Platform::start();
    p.ok(&["admin", "quota", "default", "refs=3"]);
    p.ok(&["clone", "repo"]);
    let clone = p.work.join("repo");
    let out = push_branch(&p, &clone, "feat-a", 1 << 20);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.git_ok(&clone, &["tag", "v1"]);
    p.git_ok(&clone, &["push", "-q", "origin", "v1"]);
    // main, feat-a and v1: a fourth is refused, naming the quota and the way out.
    let out = push_branch(&p, &clone, "feat-b", 1000);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("quota refs") && said.contains("--delete"),
        "{said}"
    );

    // Deleting makes room; main stays.
    let repo = p.data.join("repos").join("default.git");
    let before = objects_bytes(&repo.join("objects"));
    // What feat-a alone holds is old enough to go (a push running beside a deletion keeps
    // its young objects: see the post-receive hook).
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for entry in walk(&repo.join("objects")) {
        let f = std::fs::File::options().write(true).open(&entry).unwrap();
        f.set_modified(old).unwrap();
    }
    p.git_ok(
        &clone,
        &["push", "-q", "origin", "--delete", "feat-a", "v1"],
    );
    let after = objects_bytes(&repo.join("objects"));
    assert!(
        after + (900 << 10) < before,
        "the deleted branch's megabyte is still held: {before} → {after}"
    );
    let out = push_branch(&p, &clone, "feat-b", 1000);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = p.git(&clone, &["push", "-q", "origin", "--delete", "main"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("main cannot be deleted"), "{said}");
    let refs = p.git_ok(&clone, &["ls-remote", "origin"]);
    assert!(
        refs.contains("refs/heads/main")
            && refs.contains("refs/heads/feat-b")
            && !refs.contains("feat-a"),
        "{refs}"
    );
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// `git clone --filter=blob:none` from the platform fetches no blob up front, and gets
/// what a checkout needs when it needs it.
#[test]
fn a_partial_clone_takes_blobs_as_they_are_needed() {
    let p = Platform::start();
    p.ok(&["clone", "full"]);
    let full = p.work.join("full");
    let url = p.git_ok(&full, &["remote", "get-url", "origin"]);
    // The clone's own helper (the platform's CA comes with every `p.git`).
    let helper = p.git_ok(&full, &["config", "--get-all", "credential.helper"]);
    let helper = format!("credential.helper={}", helper.lines().last().unwrap());
    let out = p.git(
        &p.work,
        &[
            "-c",
            &helper,
            "clone",
            "--filter=blob:none",
            "--no-checkout",
            url.trim(),
            "partial",
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("filtering not recognized"), "{said}");
    let partial = p.work.join("partial");
    // No blob came with the clone …
    let missing = p.git_ok(
        &partial,
        &["rev-list", "--objects", "--missing=print", "HEAD"],
    );
    assert!(missing.lines().any(|l| l.starts_with('?')), "{missing}");
    // … and a checkout fetches the ones it needs.
    let out = p.git(&partial, &["-c", &helper, "checkout", "-q", "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(partial.join("micro.yaml").exists());
}
