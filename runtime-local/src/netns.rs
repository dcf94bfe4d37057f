//! Sockets inside a replica's network namespace, made by the server itself: the one
//! way through the sandbox's network wall when services have no egress. The platform
//! connects in to the replica's port, and listens inside for the replica's calls to the
//! API; no process runs per replica for it (pasta did, at ~29 MiB each).
//!
//! Entering a namespace (`setns`) moves the calling thread only, so one thread of its
//! own does it for everyone: it enters, makes the socket, and comes back; what it makes
//! stays in the namespace it was made in. It never connects or waits on a tenant: a
//! stream is made unconnected and non-blocking, and connected by the caller.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use tokio::sync::oneshot;

enum Want {
    /// A TCP socket, not yet connected.
    Stream,
    /// A listener bound at this address.
    Listener(SocketAddr),
}

struct Job {
    /// A process in the namespace (the sandbox's first).
    pid: i32,
    want: Want,
    reply: oneshot::Sender<std::io::Result<OwnedFd>>,
}

/// The thread that makes sockets in replicas' namespaces.
pub(crate) struct NetNs {
    jobs: std::sync::Mutex<mpsc::Sender<Job>>,
}

impl NetNs {
    /// Starts the thread; fails if this process cannot enter network namespaces.
    pub fn start() -> std::io::Result<Self> {
        let home = std::fs::File::open("/proc/thread-self/ns/net")?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("micro-netns".into())
            .spawn(move || {
                // `home`, the host's namespace, was opened by the thread that starts it.
                for job in rx {
                    let made = make(job.pid, &job.want);
                    // Never left in a tenant's namespace: if it cannot come back, it stops.
                    let back = nix::sched::setns(&home, nix::sched::CloneFlags::CLONE_NEWNET);
                    let _ = job.reply.send(made);
                    if back.is_err() {
                        tracing::error!("cannot return to the host's network namespace");
                        return;
                    }
                }
            })?;
        Ok(NetNs {
            jobs: std::sync::Mutex::new(tx),
        })
    }

    async fn ask(&self, pid: i32, want: Want) -> std::io::Result<OwnedFd> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(Job { pid, want, reply })
            .map_err(|_| std::io::Error::other("the network namespace thread stopped"))?;
        answer
            .await
            .map_err(|_| std::io::Error::other("the network namespace thread stopped"))?
    }

    /// Connects to `port` on the loopback of `pid`'s namespace.
    pub async fn connect(&self, pid: i32, port: u16) -> std::io::Result<tokio::net::TcpStream> {
        let fd = self.ask(pid, Want::Stream).await?;
        let socket = tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(fd));
        socket
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
    }

    /// A listener at `addr` in `pid`'s namespace.
    pub async fn listen(
        &self,
        pid: i32,
        addr: SocketAddr,
    ) -> std::io::Result<tokio::net::TcpListener> {
        let fd = self.ask(pid, Want::Listener(addr)).await?;
        tokio::net::TcpListener::from_std(std::net::TcpListener::from(fd))
    }
}

/// Enters `pid`'s network namespace and makes what is wanted there (the thread stays in
/// it: the caller goes back).
fn make(pid: i32, want: &Want) -> std::io::Result<OwnedFd> {
    let target = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    nix::sched::setns(&target, nix::sched::CloneFlags::CLONE_NEWNET)?;
    match want {
        Want::Stream => {
            use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
            Ok(socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                None,
            )?)
        }
        Want::Listener(addr) => {
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            Ok(OwnedFd::from(listener))
        }
    }
}
