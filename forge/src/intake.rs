//! `POST /hooks/<link id>`: the forges' webhook deliveries. Answered at once, before any
//! fetch: 404 for an unknown link, 413 over the body limit, 401 for a missing or bad
//! signature (nothing triggered), 400 for a body that is not JSON, 2xx for every validly
//! signed event, ignored ones included (a 4xx can make GitLab disable the hook). A
//! delivery seen before is acknowledged and ignored.

use crate::events::Event;
use crate::follow::{Follower, Target};
use crate::forge::Sender;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use micro_store::Trigger;
use micro_store::{Delivery, Store};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;

/// Largest delivery accepted (GitHub caps its payloads at 25 MB; pushes of thousands of
/// commits stay far below this).
pub const BODY_LIMIT: usize = 4 << 20;
/// Delivery ids remembered per link, to recognise a redelivery.
const REMEMBERED: usize = 1024;

/// What the webhook endpoint shares.
#[derive(Clone)]
pub struct HookState {
    store: Store,
    follower: Arc<Follower>,
    links: Arc<LinkCache>,
    seen: Arc<Mutex<HashMap<String, Seen>>>,
    last: Arc<Mutex<HashMap<String, Delivery>>>,
}

impl HookState {
    /// Also starts writing each link's last delivery to the store (at most once a second
    /// per link, so a flood of deliveries is not a flood of writes).
    pub fn new(store: Store, follower: Arc<Follower>) -> Self {
        let state = HookState {
            links: Arc::new(LinkCache::new(&store)),
            store,
            follower,
            seen: Arc::default(),
            last: Arc::default(),
        };
        let (store, last) = (state.store.clone(), state.last.clone());
        tokio::spawn(
            async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let batch: Vec<_> =
                        std::mem::take(&mut *last.lock().unwrap_or_else(PoisonError::into_inner))
                            .into_iter()
                            .collect();
                    for (ns, delivery) in batch {
                        if let Err(e) = store.record_link_delivery(&ns, &delivery).await {
                            tracing::error!(namespace = ns, error = %e, "recording a delivery");
                        }
                    }
                }
            }
            .instrument(tracing::info_span!("delivery_log")),
        );
        state
    }
}

/// The webhook routes.
pub fn router(state: HookState) -> Router {
    Router::new()
        .route("/hooks/{id}", post(deliver))
        .route(
            "/hooks/{id}/revisions/{sha}",
            axum::routing::get(revision_page),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::from_fn(answer_oversized))
        .with_state(state)
}

/// The most of an oversized delivery read (and thrown away) so its sender, still
/// writing, gets the 413 instead of a broken pipe; and how long that may take.
const DRAINED: u64 = 32 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// A delivery that announces more than [`BODY_LIMIT`] is answered 413 at once, and what
/// it sends is read on (up to [`DRAINED`], for [`DRAIN_TIME`]) and dropped: closing a
/// connection with unread data makes the sender's kernel see a reset before the answer.
/// One that asks first (`Expect: 100-continue`) is answered without its body being sent.
async fn answer_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::header::{CONTENT_LENGTH, EXPECT};
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let Some(length) = announced.filter(|n| *n > BODY_LIMIT as u64) else {
        return next.run(request).await;
    };
    let asked_first = request
        .headers()
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !asked_first && length <= DRAINED {
        let mut body = request.into_body().into_data_stream();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let _ = tokio::time::timeout(DRAIN_TIME, async {
                while let Some(Ok(_)) = body.next().await {}
            })
            .await;
        });
    }
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("a delivery is at most {BODY_LIMIT} bytes"),
    )
        .into_response()
}

/// A link as the endpoint needs it: cached, dropped whenever any link changes.
struct Cached {
    namespace: String,
    branch: String,
    /// `github`, `gitea` or `gitlab`: the only scheme its deliveries may be signed with.
    forge: String,
    secret: String,
}

/// Links by endpoint id, and ids that are no link (a flood of made-up ids costs the
/// store one lookup each, once), both dropped whenever any link changes.
struct LinkCache {
    changes: tokio::sync::watch::Receiver<u64>,
    /// (the links' generation it holds, id → link or no link)
    map: Mutex<(u64, Known)>,
}

type Known = HashMap<String, Option<Arc<Cached>>>;

/// Ids remembered at most; past it the cache starts over.
const CACHED: usize = 16_384;

impl LinkCache {
    fn new(store: &Store) -> Self {
        LinkCache {
            changes: store.watch_links(),
            map: Mutex::new((0, HashMap::new())),
        }
    }

    async fn get(&self, store: &Store, id: &str) -> Result<Option<Arc<Cached>>, Response> {
        let generation = *self.changes.borrow();
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            if map.0 != generation {
                *map = (generation, HashMap::new());
            }
            if let Some(hit) = map.1.get(id) {
                return Ok(hit.clone());
            }
        }
        let link = store.link_by_id(id).await.map_err(|e| {
            tracing::error!(error = %e, "reading a link");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response()
        })?;
        let cached = link.map(|link| {
            Arc::new(Cached {
                namespace: link.namespace,
                branch: link.branch,
                forge: link.forge,
                secret: link.secret,
            })
        });
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.0 == generation {
            if map.1.len() >= CACHED {
                map.1.clear();
            }
            map.1.insert(id.to_owned(), cached.clone());
        }
        Ok(cached)
    }
}

/// The delivery ids a link has seen lately.
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Whether `id` is new; remembers it.
    fn first_time(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() >= REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

fn answer(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text = text.into();
    text.push('\n');
    (status, text).into_response()
}

async fn deliver(
    State(state): State<HookState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let link = match state.links.get(&state.store, &id).await {
        Ok(Some(link)) => link,
        Ok(None) => return answer(StatusCode::NOT_FOUND, "no such webhook"),
        Err(response) => return response,
    };
    let Some(forge) = Sender::detect(&headers) else {
        return answer(
            StatusCode::UNAUTHORIZED,
            "not a GitHub, Gitea, Forgejo or GitLab delivery (no event header)",
        );
    };
    if !forge.serves(micro_tenant::forge::Forge::of_link(&link.forge)) {
        tracing::warn!(namespace = %link.namespace, ?forge, linked = %link.forge, "webhook of another forge refused");
        return answer(
            StatusCode::UNAUTHORIZED,
            format!(
                "signature refused: this webhook takes {} deliveries only, not {}",
                link.forge,
                forge.name()
            ),
        );
    }
    if let Err(e) = forge.verify(&headers, link.secret.as_bytes(), &body) {
        tracing::warn!(namespace = %link.namespace, ?forge, error = %e, "webhook refused");
        return answer(StatusCode::UNAUTHORIZED, format!("signature refused: {e}"));
    }
    let kind = forge.event(&headers).unwrap_or_default();
    let event = match Event::parse(forge, kind, &body) {
        Ok(event) => event,
        Err(e) => return answer(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Some(delivery) = forge.delivery(&headers) {
        let mut seen = state.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.entry(id.clone()).or_default().first_time(delivery) {
            return answer(StatusCode::OK, "delivery seen before; ignored");
        }
    }
    let result = act(&state, &link, &event);
    tracing::info!(namespace = %link.namespace, ?forge, event = %event.describe(), %result, "webhook");
    state
        .last
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            link.namespace.clone(),
            Delivery {
                at: micro_store::now_millis(),
                event: event.describe(),
                result: result.clone(),
            },
        );
    answer(StatusCode::ACCEPTED, result)
}

/// Queues what `event` asks for; says what that was.
fn act(state: &HookState, link: &Cached, event: &Event) -> String {
    let ns = link.namespace.as_str();
    match event {
        Event::Ping => "pong".into(),
        Event::Push { branch, .. } if *branch != link.branch => {
            format!(
                "ignored: {branch} is not the tracked branch {}",
                link.branch
            )
        }
        Event::Push { after: None, .. } => "the tracked branch was deleted; what runs stays".into(),
        Event::Push {
            after: Some(after),
            pusher,
            ..
        } => {
            // Who pushed it, for the history (the forge's account, as it names it).
            if let Some(pusher) = pusher {
                let (dir, who, commit) = (
                    state.follower.repo_path(ns),
                    format!("{}:{pusher}", link.forge),
                    after.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = micro_tenant::marks::record_pusher(&dir, &commit, &who) {
                        tracing::warn!(error = %e, "who pushed was not recorded");
                    }
                });
            }
            state
                .follower
                .enqueue(ns, Target::Branch, Some(after), Trigger::Push);
            format!("fetching {}", short(after))
        }
        Event::Preview { base, .. } if *base != link.branch => {
            format!(
                "ignored: the pull request is for {base}, not {}",
                link.branch
            )
        }
        Event::Preview {
            number, head, fork, ..
        } => {
            state.follower.mark_fork(ns, *number, *fork);
            state
                .follower
                .enqueue(ns, Target::Pull(*number), Some(head), Trigger::Push);
            format!("previewing #{number} at {}", short(head))
        }
        Event::Closed {
            number,
            merged,
            merge_commit,
            ..
        } => {
            // At once, before the close is handled: a preview in flight stops writing.
            state.follower.mark_closed(ns, *number);
            let (follower, store, ns, number, merged, merge_commit) = (
                state.follower.clone(),
                state.store.clone(),
                ns.to_owned(),
                *number,
                *merged,
                merge_commit.clone(),
            );
            tokio::spawn(
                async move {
                    if let Ok(Some(link)) = store.link(&ns).await {
                        follower.closed(&link, number, merged, merge_commit).await;
                    }
                }
                .instrument(tracing::Span::current()),
            );
            if merged {
                format!("#{number} merged")
            } else {
                format!("#{number} closed")
            }
        }
        Event::Ignored(kind) => format!("ignored: {kind}"),
    }
}

/// The page a commit status links to: what became of one revision (or pull-request head)
/// in one line. Public like the status itself: the link's id is in its URL, and it shows
/// only the result and the plan's counts or the error, never a value.
async fn revision_page(
    State(state): State<HookState>,
    Path((id, sha)): Path<(String, String)>,
) -> Response {
    let link = match state.links.get(&state.store, &id).await {
        Ok(Some(link)) => link,
        Ok(None) => return answer(StatusCode::NOT_FOUND, "no such webhook"),
        Err(response) => return response,
    };
    let ns = &link.namespace;
    let history = state.store.history(ns, 200).await.unwrap_or_default();
    let previews = state.store.previews(ns).await.unwrap_or_default();
    let line = if let Some(h) = history.iter().find(|h| h.revision == sha) {
        let detail = h.error.clone().unwrap_or_else(|| h.summary.clone());
        format!("{}: {detail}", h.result)
    } else if let Some(p) = previews.iter().find(|p| p.head == sha) {
        let detail = p.error.clone().unwrap_or_else(|| p.summary.clone());
        format!("preview of #{} ({}): {detail}", p.number, p.result)
    } else {
        "not taken up yet".to_owned()
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>micro/{ns} {short}</title></head><body style=\"font-family:sans-serif;max-width:40em;margin:2em auto\">\
         <h1>micro/{ns}</h1><p><code>{sha}</code></p><p>{line}</p>\
         <p>See it all with <code>micro history --namespace {ns}</code>.</p></body></html>\n",
        ns = escape(ns),
        short = escape(short(&sha)),
        sha = escape(&sha),
        line = escape(&line),
    );
    axum::response::Html(html).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}
