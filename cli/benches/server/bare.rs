//! The ceiling for any HTTP API in front of the store on this machine: a bare axum handler
//! on the API's key-value paths over a store of its own, with no authentication, no
//! namespace or table check, no validation and no middleware, in a process of its own as
//! the server is. What the API loses against it is what its checks cost; what this loses
//! against the store driven directly is what HTTP itself costs here.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::serve::{Listener, ListenerExt};
use micro_store::{KvQuery, Store};
use std::collections::HashMap;

/// Set on the benchmark's own binary to run it as the bare handler: the store to open,
/// as `micro server --store` takes it (`sqlite`: in the working directory).
const STORE_VAR: &str = "MICRO_BENCH_BARE_STORE";

/// A bare handler running as a process of its own, as the server is; stopped when
/// dropped.
pub struct Bare {
    pub addr: String,
    child: std::process::Child,
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts this benchmark's binary again as a bare handler over the store `spec` names
/// (`sqlite` keeps it in `dir`).
pub fn start(spec: &str, dir: &std::path::Path) -> Bare {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(STORE_VAR, spec)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    Bare {
        addr: line.trim().to_owned(),
        child,
    }
}

/// When this process was started as a bare handler: serves until killed, and never
/// returns.
pub fn run_if_asked() {
    let Ok(spec) = std::env::var(STORE_VAR) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = Store::open(&spec, std::path::Path::new(".")).await.unwrap();
        let app = axum::Router::new()
            .route("/api/v1/namespaces/{ns}/store/{table}", get(read))
            .route("/api/v1/namespaces/{ns}/store/{table}/{key}", put(write))
            .with_state(store);
        // As the server: small answers must not wait on Nagle's algorithm.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .tap_io(|tcp| tcp.set_nodelay(true).unwrap());
        println!("{}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
    std::process::exit(0);
}

type Records = Vec<(String, String, Option<i64>)>;

async fn read(
    State(store): State<Store>,
    Path((ns, table)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Records> {
    let key = q.get("key").map_or("", String::as_str);
    let q = KvQuery {
        key,
        prefix: false,
        limit: 1,
        offset: 0,
    };
    let records = store.kv_read(&ns, &table, &q).await.unwrap();
    Json(
        records
            .into_iter()
            .map(|r| (r.key, r.value, r.expires_at))
            .collect(),
    )
}

async fn write(
    State(store): State<Store>,
    Path((ns, table, key)): Path<(String, String, String)>,
    Json(body): Json<serde_json::Value>,
) -> StatusCode {
    let value = body["value"].as_str().unwrap();
    store
        .kv_write(&ns, &table, &key, value, None)
        .await
        .unwrap();
    StatusCode::NO_CONTENT
}
