//! `micro manifests`: what the namespace would become on a cluster, from a server that
//! runs local processes; secret values never leave the store.

use crate::harness::Platform;
use serde_json::Value;

#[test]
fn manifests_show_the_cluster_objects_and_never_a_secret() {
    let p = Platform::start();
    p.ok(&[
        "config",
        "set",
        "db.password",
        "hunter2-very-secret",
        "--secret",
    ]);
    let dir = p.write_service(
        "api",
        &[
            (
                "service.yaml",
                "run: python3 main.py\nport: 9000\nreplicas: 2\nconfig: [db.password]\nreadiness: { path: /health }\n",
            ),
            ("main.py", "print('hi')\n"),
        ],
    );
    // Pushed, not run: manifests read the repo, whatever the runtime makes of it.
    p.ok(&["run", dir.to_str().unwrap()]);

    let list: Value = serde_json::from_str(&p.ok(&["manifests", "-o", "json"])).unwrap();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    let find = |kind: &str, name: &str| {
        items
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}: {list:#}"))
    };
    assert_eq!(
        find("Namespace", "micro-default")["metadata"]["labels"]["micro/tenant"],
        "default"
    );
    find("NetworkPolicy", "micro-tenant-isolation");
    let d = find("Deployment", "api");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/health"
    );
    let secret = find("Secret", "api-env");
    assert_eq!(
        secret["stringData"]["MICRO_CONFIG_DB_PASSWORD"],
        "(secret: not shown)"
    );

    // YAML, one document per object, and no secret value in either.
    let yaml = p.ok(&["manifests"]);
    assert_eq!(yaml.matches("\n---\n").count() + 1, items.len(), "{yaml}");
    assert!(yaml.contains("kind: Deployment"));
    for out in [&yaml, &list.to_string()] {
        assert!(!out.contains("hunter2"), "a secret value leaked");
    }

    // One service only; a service that is not there, or a bad ref, says so.
    let only: Value =
        serde_json::from_str(&p.ok(&["manifests", "--service", "api", "-o", "json"])).unwrap();
    assert_eq!(only["items"].as_array().unwrap().len(), 4);
    let err = p.fails(&["manifests", "--service", "nosuch"]);
    assert!(err.contains("service nosuch"), "{err}");
    let err = p.fails(&["manifests", "no-such-branch"]);
    assert!(err.contains("no-such-branch"), "{err}");
}

const ENV_DUMP: &str = "import json, os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = json.dumps(dict(os.environ)).encode()\n        self.send_response(200); self.end_headers(); self.wfile.write(body)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

/// What a pod's init container does on a cluster: `micro checkout` with its service's
/// token fetches its own folder, and nothing of another namespace; the token never pushes.
#[test]
fn a_service_token_checks_out_its_own_code_and_nothing_else() {
    let p = Platform::start();
    p.ok(&["admin", "namespace", "create", "other"]);
    p.write_service(
        "probe",
        &[
            ("service.yaml", "run: python3 -u main.py\n"),
            ("main.py", ENV_DUMP),
        ],
    );
    p.ok(&["run", "./probe", "--wait"]);
    let env: Value = serde_json::from_str(&p.ok(&["call", "probe", "/"])).unwrap();
    let token = env["MICRO_TOKEN"].as_str().unwrap().to_owned();
    let head = p.service(None, "probe").unwrap()["revision"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/git", p.url());
    let checkout = |repo: &str, into: &std::path::Path| {
        p.command(&[
            "checkout",
            "--git",
            &format!("{url}/{repo}"),
            "--commit",
            &head,
            "--path",
            "services/probe",
            "--into",
            into.to_str().unwrap(),
        ])
        .env("MICRO_TOKEN", &token)
        .env("MICRO_TLS_CA", p.ca())
        .output()
        .unwrap()
    };
    let into = p.work.join("pod-app");
    let out = checkout("default.git", &into);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(into.join("main.py")).unwrap(),
        ENV_DUMP
    );
    assert!(into.join("service.yaml").exists());

    // Another namespace's repo is not there for it.
    let out = checkout("other.git", &p.work.join("stolen"));
    assert!(!out.status.success());
    assert!(!p.work.join("stolen/main.py").exists());

    // And it cannot push: a clone authenticated with the service token is refused.
    let clone = p.work.join("svc-clone");
    let authed = format!("https://micro:{token}@127.0.0.1:{}/git/default.git", p.port);
    p.git_ok(&p.work, &["clone", "-q", &authed, clone.to_str().unwrap()]);
    std::fs::write(clone.join("README.md"), "mine now\n").unwrap();
    p.git_ok(&clone, &["commit", "-qam", "take over"]);
    let pushed = p.git(&clone, &["push", "-q", "origin", "HEAD:main"]);
    assert!(!pushed.status.success(), "a service token pushed");
}

/// `scripts/build-images` with a stand-in for the container tool (none runs here): every
/// `images/*/Dockerfile` is built from the right context, pushed under the registry, and
/// printed with the digest the tool reports, one line each, for the overlay's `images:`.
#[test]
fn the_image_script_builds_pushes_and_prints_every_images_digest() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let tool = dir.path().join("tool");
    std::fs::write(
        &tool,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\nif [ \"$1\" = image ]; then echo \"${{5%:*}}@sha256:$(echo \"$5\" | sha256sum | cut -c1-64)\"; fi\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(root.join("scripts/build-images"))
        .arg("registry.test/micro")
        .env("CONTAINER_TOOL", &tool)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let images: Vec<String> = std::fs::read_dir(root.join("images"))
        .unwrap()
        .map(|e| format!("micro-{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(printed.lines().count(), images.len(), "{printed}");
    let calls = std::fs::read_to_string(&calls).unwrap();
    for image in &images {
        let line = printed
            .lines()
            .find(|l| l.starts_with(&format!("{image} ")))
            .unwrap_or_else(|| panic!("{image} not printed: {printed}"));
        assert!(
            line.contains(&format!("registry.test/micro/{image}@sha256:")),
            "{line}"
        );
        assert!(
            calls.contains(&format!("push -q registry.test/micro/{image}:0.1.0")),
            "{calls}"
        );
    }
    // The platform builds from the repository's root, a runner from its own folder.
    let platform = calls
        .lines()
        .find(|l| l.contains("images/platform/Dockerfile"))
        .unwrap();
    assert!(!platform.ends_with("images/platform"), "{platform}");
    let runner = calls
        .lines()
        .find(|l| l.contains("images/runner-go/Dockerfile"))
        .unwrap();
    assert!(runner.ends_with("images/runner-go"), "{runner}");
}
