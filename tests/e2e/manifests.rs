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
