//! Bench 9: the forge webhook endpoint and the follower, in process (the real router on
//! a loopback socket, the real controller with specs only, bare repos, a `file://` forge).
//! Prints figures; asserts nothing (`cargo bench -p micro-webhooks`).
//!
//! a. signed deliveries answered per second by a keep-alive load generator (8
//!    connections), and their p99 (target: 5,000/s)
//! b. 1,000 signed push events for one namespace sent as fast as they go: reconciles
//!    that follow (target: at most 3)
//! c. 10 namespaces linked to one repo, one push delivered to each: fetches (target: 1)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use micro_forge::{Follower, HookState};
use micro_reconciler::Controller;
use micro_reconciler::testing::fixture_with;
use micro_runtime::memory::MemoryRuntime;
use micro_store::Link;
use micro_tenant::Repos;
use micro_tenant::linked::Mirrors;
use micro_tenant::sources::SourcePolicy;
use micro_testkit::commit_to_namespace as commit;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 8;
const EVENTS: usize = 20_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn push_body(after: &str) -> Vec<u8> {
    serde_json::json!({"ref": "refs/heads/main", "after": after, "deleted": false})
        .to_string()
        .into_bytes()
}

struct Conn(hyper::client::conn::http1::SendRequest<Full<Bytes>>);

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        Conn(send)
    }

    async fn deliver(&mut self, path: &str, secret: &str, delivery: &str, body: Vec<u8>) -> u16 {
        let req = http::Request::post(path)
            .header("host", "bench")
            .header("x-github-event", "push")
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", sign(secret, &body))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        self.0.ready().await.unwrap();
        let res = self.0.send_request(req).await.unwrap();
        let status = res.status().as_u16();
        res.into_body().collect().await.unwrap();
        status
    }
}

async fn link(controller: &Controller, ns: &str, url: &str) -> Link {
    let mut link = Link::new(ns, &format!("id-{ns}"), url, "main", "github");
    link.secret = format!("secret-of-{ns}");
    controller.store().put_link(&link).await.unwrap();
    link
}

/// Waits until every namespace's branch is `head`.
async fn followed(repos: &Repos, namespaces: &[String], head: git2::Oid) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !namespaces
        .iter()
        .all(|ns| repos.head(ns).ok() == Some(head))
    {
        assert!(Instant::now() < deadline, "not followed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn bench() {
    let names: Vec<String> = (0..11).map(|i| format!("ns{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let runtime = Arc::new(MemoryRuntime::default());
    let (dir, repos, controller) = fixture_with(&refs, runtime).await;
    controller.spawn_workers(4);
    let _watcher =
        micro_reconciler::watch::RefWatcher::start(repos.root(), controller.queue().clone())
            .unwrap();
    // The forge: a bare repo of its own, reached by file://.
    let forge = Repos::new(dir.path().join("forge"));
    forge
        .create("app", std::path::Path::new("/bin/true"))
        .unwrap();
    let url = format!("file://{}", forge.path("app").display());
    let spec = |i: usize| format!("run: python3 main.py\nenv: {{ N: \"{i}\" }}\n");
    commit(&forge, "app", &[("services/web/service.yaml", &spec(0))]);

    let local = SourcePolicy {
        allow_local: true,
        forbidden: vec![],
    };
    let follower = Follower::new(
        controller.clone(),
        Mirrors::new(dir.path().join("mirrors"), local.clone()),
        micro_forge::rest::Rest::new(local).unwrap(),
        "http://bench".into(),
    );
    for _ in 0..2 {
        tokio::spawn(follower.clone().fetch());
    }
    tokio::spawn(follower.clone().report());
    tokio::spawn(follower.clone().watch_links());
    let hooks =
        micro_forge::intake::router(HookState::new(controller.store().clone(), follower.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hooks).await });

    // a. Intake: signed pushes of the head the namespace already follows.
    let one = link(&controller, "ns00", &url).await;
    let head = forge.head("app").unwrap();
    followed(&repos, &names[..1], head).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (path, secret) = (format!("/hooks/{}", one.id), one.secret.clone());
        let body = push_body(&head.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut latencies = Vec::with_capacity(EVENTS / CONNECTIONS);
            for i in 0..EVENTS / CONNECTIONS {
                let t = Instant::now();
                let status = conn
                    .deliver(&path, &secret, &format!("a-{c}-{i}"), body.clone())
                    .await;
                assert_eq!(status, 202);
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let took = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "bench 9a signed deliveries over {CONNECTIONS} keep-alive connections: {:.0}/s ({EVENTS} in {took:.2} s), p50 {:.2} ms, p99 {:.2} ms (target >= 5,000/s)",
        EVENTS as f64 / took,
        p(0.5),
        p(0.99)
    );

    // b. A burst of 1,000 deliveries of one new push.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_history = controller
        .store()
        .history("ns00", 10_000)
        .await
        .unwrap()
        .len();
    let before_fetches = follower.fetches();
    let new = commit(&forge, "app", &[("services/web/service.yaml", &spec(1))]);
    let started = Instant::now();
    let mut conn = Conn::open(addr).await;
    let path = format!("/hooks/{}", one.id);
    for i in 0..1000 {
        let status = conn
            .deliver(
                &path,
                &one.secret,
                &format!("b-{i}"),
                push_body(&new.to_string()),
            )
            .await;
        assert_eq!(status, 202);
    }
    let sent = started.elapsed().as_secs_f64();
    followed(&repos, &names[..1], new).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reconciles = controller
        .store()
        .history("ns00", 10_000)
        .await
        .unwrap()
        .len()
        - before_history;
    println!(
        "bench 9b 1,000 signed push events for one namespace, sent in {sent:.2} s: {reconciles} reconciles, {} fetches (target <= 3 reconciles)",
        follower.fetches() - before_fetches
    );

    // c. Ten namespaces follow one repo; one push reaches each through its own hook.
    let ten = &names[1..];
    let mut links = Vec::new();
    for ns in ten {
        links.push(link(&controller, ns, &url).await);
    }
    followed(&repos, ten, new).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = follower.fetches();
    let newer = commit(&forge, "app", &[("services/web/service.yaml", &spec(2))]);
    let started = Instant::now();
    let mut conn = Conn::open(addr).await;
    for l in &links {
        let path = format!("/hooks/{}", l.id);
        let status = conn
            .deliver(&path, &l.secret, "c-1", push_body(&newer.to_string()))
            .await;
        assert_eq!(status, 202);
    }
    followed(&repos, ten, newer).await;
    println!(
        "bench 9c 10 namespaces linked to one repo, one push delivered to each: {} fetch(es), all 10 following after {:.0} ms (target: 1 fetch)",
        follower.fetches() - before,
        started.elapsed().as_secs_f64() * 1000.0
    );
}
