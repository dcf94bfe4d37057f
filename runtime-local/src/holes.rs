//! A sandboxed replica's two holes in its network wall when services have no egress,
//! kept by the server itself (no process per replica): the host's
//! `127.0.0.1:<host port>` into the replica's `$PORT`, for calls and health checks, and
//! the replica's own `127.0.0.1:<API port>`, a listener the API serves as part of its
//! namespace's door (no relay: the replica's calls are ordinary API connections, held to
//! the door's caps). The platform's own calls in (the edge, `micro call`) connect inside
//! the replica's network directly ([`Network::connect_direct`]); what else connects to
//! the host port is relayed, at most [`MAX_CONNECTIONS`] at once: a tenant cannot make
//! the server keep sockets without bound.

use super::netns::NetNs;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

/// Connections into one replica at once.
const MAX_CONNECTIONS: usize = 256;

/// The server's way into its replicas' networks: the thread that makes sockets there,
/// and which host port leads to which replica's port.
pub(crate) struct Network {
    netns: Arc<NetNs>,
    /// Host port → (the sandbox's first process, the replica's port).
    ports: Mutex<HashMap<u16, (i32, u16)>>,
}

impl Network {
    /// Starts the thread; fails if this process cannot enter network namespaces.
    pub fn start() -> std::io::Result<Self> {
        Ok(Network {
            netns: Arc::new(NetNs::start()?),
            ports: Mutex::default(),
        })
    }

    fn ports(&self) -> std::sync::MutexGuard<'_, HashMap<u16, (i32, u16)>> {
        self.ports.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection to the replica whose host address is `address`, made inside its
    /// network; `None` if no replica of this server's has that address.
    pub fn connect_direct(
        &self,
        address: &str,
    ) -> Option<futures_util::future::BoxFuture<'static, std::io::Result<std::net::TcpStream>>>
    {
        let addr: SocketAddr = address.parse().ok()?;
        if !addr.ip().is_loopback() {
            return None;
        }
        let (inner, port) = *self.ports().get(&addr.port())?;
        let netns = self.netns.clone();
        Some(Box::pin(async move {
            netns.connect(inner, port).await?.into_std()
        }))
    }
}

/// The holes of one replica, closed when dropped (connections under way finish).
pub(crate) struct Holes {
    tasks: Vec<tokio::task::AbortHandle>,
    _to_api: Option<micro_runtime::Entrance>,
    network: Arc<Network>,
    host_port: u16,
}

impl Drop for Holes {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.network.ports().remove(&self.host_port);
    }
}

/// Where a replica's hole to the API leads: the API's port as services know it, and what
/// answers there.
#[derive(Clone)]
pub(crate) struct ToApi {
    pub api_port: u16,
    pub via: Via,
}

/// What answers a replica's calls to the API.
#[derive(Clone)]
pub(crate) enum Via {
    /// Its namespace's door, on a listener of the replica's own.
    Door {
        doors: Arc<dyn micro_runtime::ApiDoors>,
        namespace: String,
    },
    /// The API itself, relayed to this host port (a server without doors: tests).
    Relay(u16),
}

/// Opens the holes of the replica whose sandbox's first process is `inner`: host
/// `host_port` → its `port`, and its API port → the door. Fails if `host_port` is taken
/// (`AddrInUse`) or its namespace is gone.
pub(crate) async fn open(
    network: Arc<Network>,
    inner: i32,
    host_port: u16,
    port: u16,
    api: ToApi,
) -> std::io::Result<Holes> {
    let inward = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], host_port))).await?;
    let netns = network.netns.clone();
    let outward = netns
        .listen(inner, SocketAddr::from(([127, 0, 0, 1], api.api_port)))
        .await?;
    let span = tracing::Span::current();
    let into_replica = tokio::spawn(
        relay(inward, move || {
            let netns = netns.clone();
            async move { netns.connect(inner, port).await }
        })
        .instrument(span.clone()),
    );
    let mut tasks = vec![into_replica.abort_handle()];
    let to_api = match api.via {
        Via::Door { doors, namespace } => Some(doors.admit(&namespace, outward.into_std()?)?),
        Via::Relay(door_port) => {
            let to_door = tokio::spawn(
                relay(outward, move || {
                    TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], door_port)))
                })
                .instrument(span),
            );
            tasks.push(to_door.abort_handle());
            None
        }
    };
    network.ports().insert(host_port, (inner, port));
    Ok(Holes {
        tasks,
        _to_api: to_api,
        network,
        host_port,
    })
}

/// Accepts on `listener` and joins each connection to what `dial` connects to, at most
/// [`MAX_CONNECTIONS`] at once (one more is closed at once).
async fn relay<F, Fut>(listener: TcpListener, dial: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<TcpStream>> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let mut from = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait a little rather than spin.
                tracing::warn!(error = %e, "accepting on a replica's hole");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let dialing = dial();
        tokio::spawn(
            async move {
                let _slot = slot;
                if let Ok(mut to) = dialing.await {
                    let _ = tokio::io::copy_bidirectional(&mut from, &mut to).await;
                }
            }
            .instrument(tracing::Span::current()),
        );
    }
}
