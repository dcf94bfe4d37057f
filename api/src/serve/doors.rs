//! Doors: one loopback port per namespace, where that namespace's sandboxed services reach
//! the API (pasta maps the API's address to it), and the listeners the server makes in
//! each of its replicas' own networks ([`micro_runtime::ApiDoors::admit`]). A connection through a
//! door is known to come from that namespace's services, so their traffic has limits of
//! its own: a pool of connections apart from people's, and a cap per namespace. One
//! tenant's services can neither take the connections people need nor lock people out of
//! logging in, which they could when every service reached the API as 127.0.0.1.
//!
//! A door grants nothing: requests through it are authorised like any other, by token or
//! certificate. It only names whose limits they count against.

use super::client::{Client, Open};
use super::{Connections, Door, accept_loop, park};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;
use tracing::Instrument;

/// The doors of every namespace whose services run on this machine.
#[derive(Clone)]
pub struct Doors {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: tokio::runtime::Handle,
    /// How to serve a connection, once the server serves at all.
    connections: watch::Sender<Option<Connections>>,
    /// All services together: apart from people's pool.
    slots: Arc<Semaphore>,
    /// Per namespace.
    open: Arc<Open>,
    doors: Mutex<HashMap<String, (u16, AbortHandle)>>,
    /// Set when the server stops: replicas' own entrances close too.
    closing: watch::Sender<bool>,
}

impl std::fmt::Debug for Doors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doors")
            .field("open", &self.lock().len())
            .finish()
    }
}

impl Doors {
    /// Doors with `limits`' pool size (for all services together) and per-client cap
    /// (per namespace). Made on the server's runtime; nothing is served until the server
    /// starts serving ([`super::serve`]).
    pub fn new(limits: &super::Limits) -> Self {
        Doors {
            inner: Arc::new(Inner {
                runtime: tokio::runtime::Handle::current(),
                connections: watch::channel(None).0,
                slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
                open: Open::new(limits.max_per_client),
                doors: Mutex::new(HashMap::new()),
                closing: watch::channel(false).0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u16, AbortHandle)>> {
        self.inner
            .doors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The port of `namespace`'s door on 127.0.0.1, opened on first use.
    pub fn port(&self, namespace: &str) -> std::io::Result<u16> {
        self.open(namespace, 0)
    }

    /// `namespace`'s door, opened at `at` (any free port for 0) unless it is open.
    fn open(&self, namespace: &str, at: u16) -> std::io::Result<u16> {
        let mut doors = self.lock();
        if let Some((port, _)) = doors.get(namespace) {
            return if at == 0 || *port == at {
                Ok(*port)
            } else {
                Err(std::io::Error::other(format!(
                    "the door of {namespace} is open at {port}, not {at}"
                )))
            };
        }
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, at)))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let task = self.serve(namespace, listener)?;
        doors.insert(namespace.to_owned(), (port, task));
        Ok(port)
    }

    /// Serves `listener` as part of `namespace`'s door (its pool, its cap) until the
    /// task is aborted or every door closes.
    fn serve(
        &self,
        namespace: &str,
        listener: std::net::TcpListener,
    ) -> std::io::Result<AbortHandle> {
        listener.set_nonblocking(true)?;
        let listener = {
            let _entered = self.inner.runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (inner, ns) = (self.inner.clone(), Arc::<str>::from(namespace));
        let task = self.inner.runtime.spawn(async move {
            let mut ready = inner.connections.subscribe();
            let Ok(connections) = ready.wait_for(Option::is_some).await.map(|c| c.clone()) else {
                return;
            };
            let Some(connections) = connections else {
                return;
            };
            let client = Client::Services(ns.clone());
            let mut closing = inner.closing.subscribe();
            accept_loop(
                &listener,
                &inner.slots,
                &inner.open,
                |_| Some(client.clone()),
                |stream, peer, ticks| {
                    let span = tracing::info_span!("door", namespace = %ns);
                    let door = Door::Services(ns.clone());
                    let serving =
                        connections
                            .clone()
                            .serve(stream, peer, door, park::Stop::never(), None);
                    tokio::spawn(
                        async move {
                            let _ticks = ticks;
                            serving.await;
                        }
                        .instrument(span),
                    );
                },
                async move {
                    let _ = closing.wait_for(|closed| *closed).await;
                },
            )
            .await;
        });
        Ok(task.abort_handle())
    }

    /// Closes `namespace`'s door (its services are gone): no new connection comes in.
    pub fn close(&self, namespace: &str) {
        if let Some((_, task)) = self.lock().remove(namespace) {
            task.abort();
        }
    }

    /// Starts serving every door, open or to come, with `connections`.
    pub(super) fn open_with(&self, connections: Connections) {
        self.inner.connections.send_replace(Some(connections));
    }

    /// The server is stopping: every door closes.
    pub(super) fn close_all(&self) {
        self.inner.closing.send_replace(true);
        for (_, (_, task)) in self.lock().drain() {
            task.abort();
        }
    }
}

impl micro_runtime::ApiDoors for Doors {
    fn port(&self, namespace: &str) -> std::io::Result<u16> {
        Doors::port(self, namespace)
    }

    fn reopen(&self, namespace: &str, port: u16) -> std::io::Result<()> {
        self.open(namespace, port).map(|_| ())
    }

    fn close(&self, namespace: &str) {
        Doors::close(self, namespace);
    }

    fn admit(
        &self,
        namespace: &str,
        listener: std::net::TcpListener,
    ) -> std::io::Result<micro_runtime::Entrance> {
        let task = self.serve(namespace, listener)?;
        Ok(micro_runtime::Entrance::new(move || task.abort()))
    }
}
