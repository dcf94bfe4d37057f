//! Stand-ins for the SaaS APIs the platform calls, each a local server that records
//! every request and answers in the documented shapes: a forge (`forge.rs`) and Stripe
//! (`stripe.rs`). They run on threads of their own, so synchronous tests can use them.

mod forge;
mod stripe;

pub use forge::{Recorded, Recorder};
pub use stripe::{StripeRecorder, StripeSession};

/// Binds a loopback port and serves `app` on a thread of its own; the base URL.
fn serve(app: axum::Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    url
}
