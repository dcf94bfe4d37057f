//! The key-value store through the CLI: tables, prefixes, paging, expiry, limits, and
//! nobody else's records.

use crate::harness::Platform;
use std::io::Write;
use std::process::Stdio;

#[test]
fn write_read_list_expire_delete() {
    let p = Platform::start();
    // A new namespace's store is empty, not missing.
    assert_eq!(p.ok(&["store", "list"]).trim(), "");
    assert!(p.fails(&["store", "read", "user.1"]).contains("not found"));
    for (k, v) in [
        ("user.1", "ann"),
        ("user.2", "bob"),
        ("user.3", "cy"),
        ("admin", "root"),
    ] {
        p.ok(&["store", "write", k, v]);
    }
    p.ok(&["store", "write", "blue", "sky", "--table", "colours"]);
    assert_eq!(p.ok(&["store", "read", "user.2"]).trim(), "bob");
    assert_eq!(
        p.ok(&["store", "read", "user.", "--prefix"]).trim(),
        "user.1\tann\nuser.2\tbob\nuser.3\tcy"
    );
    assert_eq!(
        p.ok(&[
            "store", "read", "user.", "--prefix", "--limit", "1", "--offset", "1"
        ])
        .trim(),
        "user.2\tbob"
    );
    assert_eq!(
        p.ok(&["store", "list"]).trim(),
        "admin\nuser.1\nuser.2\nuser.3"
    );
    assert_eq!(
        p.ok(&["store", "list", "--table", "colours"]).trim(),
        "blue"
    );
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&p.ok(&["store", "read", "admin", "-o", "json"])).unwrap();
    assert_eq!(json[0]["value"], "root");

    // Long enough to read back on a loaded machine, short enough to wait out.
    p.ok(&["store", "write", "session", "abc", "--expiry", "3s"]);
    assert_eq!(p.ok(&["store", "read", "session"]).trim(), "abc");
    p.wait_for("the record to expire", || {
        !p.micro(&["store", "read", "session"]).status.success()
    });
    assert!(
        !p.ok(&["store", "list"]).contains("session"),
        "expired records are never returned"
    );

    p.ok(&["store", "delete", "admin"]);
    assert!(p.fails(&["store", "read", "admin"]).contains("not found"));
    assert!(p.fails(&["store", "delete", "admin"]).contains("not found"));

    // Bad input: a clear one-line error, nothing written.
    assert!(
        p.fails(&["store", "write", "bad key", "x"])
            .contains("[A-Za-z0-9._-]")
    );
    assert!(
        p.fails(&["store", "read", "x", "--table", "Nope!"])
            .contains("table")
    );
    assert!(
        p.fails(&["store", "read", "x", "--table", "never-written"])
            .contains("not found")
    );
    assert!(
        p.fails(&["store", "write", "k", "v", "--expiry", "soon"])
            .contains("duration")
    );
    // Just over the limit, and over what the server reads of a request at all.
    for size in [1024 * 1024 + 1, 3 << 20] {
        let mut big = p
            .command(&["store", "write", "big", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        big.stdin
            .take()
            .unwrap()
            .write_all(&vec![b'x'; size])
            .unwrap();
        let out = big.wait_with_output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("value is {size} bytes; the limit is 1048576")),
            "{err}"
        );
    }
    assert!(!p.ok(&["store", "list"]).contains("big"));

    // Another namespace is another database.
    p.ok(&["admin", "namespace", "create", "other"]);
    assert!(
        p.fails(&["store", "read", "user.1", "--namespace", "other"])
            .contains("not found")
    );
    p.ok(&["store", "write", "user.1", "theirs", "--namespace", "other"]);
    assert_eq!(p.ok(&["store", "read", "user.1"]).trim(), "ann");
}
