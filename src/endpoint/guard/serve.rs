//! Serving a router with the guard's header read timeout and connection
//! cap (`axum::serve` runs hyper without a timer, so no read timeout
//! applies there).

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Guard;

impl Guard {
    /// Serves `router` on `listener` over HTTP/1.1 until the task is
    /// dropped: each connection must send a request's headers within the
    /// read timeout (or is closed), and at most the connection cap are
    /// open at once (the next wait in the listen backlog). Put
    /// [`Guard::layer`] on the webhook route for the body's bounds.
    ///
    /// ```no_run
    /// # async fn run() {
    /// use alm_webhooks::endpoint::Guard;
    /// use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = Guard::new(&DeliveryReceiver::new(Authentication::None));
    /// let app = axum::Router::new()
    ///     .route("/webhooks", axum::routing::post(|| async { "ok" }))
    ///     .layer(guard.layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
    /// guard.serve(listener, app).await;
    /// # }
    /// ```
    pub async fn serve(&self, listener: TcpListener, router: axum::Router) {
        let connections = Arc::new(Semaphore::new(self.max_connections));
        let timeout = self.read_timeout;
        loop {
            let Ok(place) = Arc::clone(&connections).acquire_owned().await else {
                return; // never closed
            };
            let stream = match listener.accept().await {
                Ok((stream, _peer)) => stream,
                // Out of file descriptors, or a connection reset before it
                // was accepted: wait a little rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(timeout)
                    .serve_connection(TokioIo::new(stream), service);
                // A connection's error is the client's (reset, timeout).
                let _ = connection.await;
                drop(place);
            });
        }
    }
}
