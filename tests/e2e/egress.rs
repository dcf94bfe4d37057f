//! `--service-egress`: replicas get a way beyond this machine through a pasta process
//! each. That process is the replica's: its memory is charged to the replica's cgroup
//! and counts against the replica's memory limit. Builds always have one (`--build-egress
//! public`), behind a wall that keeps this machine and private networks out.

use crate::harness::Platform;
use std::path::PathBuf;

/// Answers `GET /route` with its routing table, anything else with `ok`.
const APP: &str = "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = open('/proc/net/route').read() if self.path == '/route' else 'ok'\n        self.send_response(200); self.end_headers(); self.wfile.write(body.encode())\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

/// The memory cgroup a process is in, as a folder under `/sys/fs/cgroup/memory`.
fn memory_cgroup(pid: u32) -> PathBuf {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = cgroups
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
        })
        .unwrap_or_else(|| panic!("no memory cgroup for {pid}: {cgroups}"));
    let path = line.splitn(3, ':').nth(2).unwrap().trim_start_matches('/');
    PathBuf::from("/sys/fs/cgroup/memory").join(path)
}

/// Whether `pid` is a pasta (its command is `pasta`; its `comm` is passt's binary).
fn is_pasta(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split('\0').next().is_some_and(|a| a.ends_with("pasta")))
}

/// A field of `/proc/<pid>/smaps_rollup`, in bytes.
fn rollup(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {field} for {pid}"))
        * 1024
}

#[test]
fn with_egress_a_replica_has_a_way_out_and_its_network_is_charged_to_it() {
    let p = Platform::start_with(&[("MICRO_SERVICE_EGRESS", "true")]);
    p.write_service(
        "out",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nresources: { memory: 128Mi }\n",
            ),
            ("main.py", APP),
        ],
    );
    p.ok(&["run", "./out", "--wait"]);
    // It answers through the host port pasta forwards, and has a default route.
    assert_eq!(p.ok(&["call", "out", "/"]).trim(), "ok");
    let routes = p.ok(&["call", "out", "/route"]);
    assert!(
        routes
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some("00000000")),
        "no way out with egress on:\n{routes}"
    );

    // pasta runs in the replica's memory cgroup, and what it holds is charged there.
    let app = p.processes("main.py");
    assert_eq!(app.len(), 1, "{app:?}");
    let cgroup = memory_cgroup(app[0]);
    let in_group: Vec<u32> = std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let pasta: Vec<u32> = in_group
        .iter()
        .copied()
        .filter(|pid| is_pasta(*pid))
        .collect();
    assert_eq!(
        pasta.len(),
        1,
        "pasta in the replica's cgroup: {in_group:?}"
    );
    let charged: u64 = std::fs::read_to_string(cgroup.join("memory.usage_in_bytes"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let private = rollup(pasta[0], "Anonymous:") + rollup(app[0], "Anonymous:");
    assert!(
        charged >= private,
        "the replica's cgroup is charged {charged} bytes, less than pasta's and the app's own memory ({private})"
    );
}

#[test]
fn with_egress_a_memory_limit_too_small_for_the_network_says_so() {
    let p = Platform::start_with(&[("MICRO_SERVICE_EGRESS", "true")]);
    p.write_service(
        "tiny",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nresources: { memory: 16Mi }\n",
            ),
            ("main.py", APP),
        ],
    );
    let _ = p.micro(&["run", "./tiny"]);
    let mut last = None;
    p.wait_for("the replica to fail and say why", || {
        last = p.service(None, "tiny");
        last.as_ref().is_some_and(|s| {
            s["message"]
                .as_str()
                .is_some_and(|m| m.contains("raise resources.memory"))
        })
    });
    // The pasta of each refused try is stopped (a try may be under way meanwhile).
    let data = p.data.to_str().unwrap().to_owned();
    p.wait_for("no pasta of this platform to be left running", || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
            .all(|pid| {
                !(is_pasta(pid)
                    && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| c.contains(&data)))
            })
    });
}

/// Tries each `HOST:PORT` given, after trying to take the build's wall down.
const PROBE: &str = r#"
import socket, subprocess, sys
try:
    r = subprocess.run(["/usr/sbin/nft", "flush", "ruleset"], capture_output=True, text=True)
    print("flush:", r.returncode, r.stderr.strip())
except OSError as e:
    print("flush:", e)
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        print("reached", target)
    except OSError as e:
        print("blocked", target, e)
"#;

/// A private address of this machine, on its loopback interface, for as long as it
/// lives: what a build could reach through pasta if nothing walled it in (the address
/// pasta gives the build's own network is a copy of the public one).
struct PrivateAddress(&'static str);

impl PrivateAddress {
    fn add(address: &'static str) -> Self {
        let out = std::process::Command::new("ip")
            .args(["addr", "add", &format!("{address}/32"), "dev", "lo"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || said.contains("File exists"),
            "{said}"
        );
        PrivateAddress(address)
    }
}

impl Drop for PrivateAddress {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["addr", "del", &format!("{}/32", self.0), "dev", "lo"])
            .output();
    }
}

/// A build is the tenant's code with a network (builds reach public registries): it
/// cannot reach this machine by a private address, nor the metadata address, nor take
/// the wall down that keeps it out.
#[test]
fn a_build_cannot_reach_this_machine_or_the_metadata_address_or_lower_its_wall() {
    let address = PrivateAddress::add("10.213.7.1");
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = Platform::start();
    p.write_service(
        "prober",
        &[
            (
                "service.yaml",
                &format!(
                    "run: python3 -u main.py\nbuild: python3 -u probe.py {}:{port} 169.254.169.254:80\n",
                    address.0
                ),
            ),
            ("probe.py", PROBE),
            ("main.py", APP),
        ],
    );
    p.ok(&["run", "./prober", "--wait"]);
    let built = p.ok(&["logs", "prober", "--build"]);
    assert!(
        built.contains(&format!("blocked {}:{port}", address.0))
            && built.contains("blocked 169.254.169.254:80")
            && !built.contains("reached"),
        "{built}"
    );
    assert!(built.contains("flush: 1"), "{built}");
    listener.set_nonblocking(true).unwrap();
    assert_eq!(
        listener.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "a build reached this machine"
    );
}
