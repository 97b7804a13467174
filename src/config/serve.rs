//! Serving a configured endpoint with axum: the router with the guard and
//! the capture, and the server on `ALM_LISTEN` (feature `axum`).

use std::net::SocketAddr;

use super::{Config, ConfigError};
use crate::Endpoint;
use crate::endpoint::Guard;

impl Config {
    /// The endpoint's router ([`Endpoint::routes`]): the webhook route
    /// behind `guard` (and, with `ALM_CAPTURE_DIR`, a capture inside it,
    /// so only what passed the header checks is captured), `/healthz`,
    /// `/readyz`, `/metrics` and, with `ALM_ADMIN_TOKEN`, the admin API.
    ///
    /// # Errors
    ///
    /// As [`Config::capture`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), alm_webhooks::BoxError> {
    /// use alm_webhooks::config::Config;
    /// let config = Config::default();
    /// let endpoint = config.endpoint(|_event| async { Ok(()) }).await?;
    /// let app: axum::Router = config.router(&endpoint, config.guard(&endpoint))?;
    /// # let _ = app;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub fn router(&self, endpoint: &Endpoint, guard: Guard) -> Result<axum::Router, ConfigError> {
        let routes = endpoint.routes().guard(guard);
        let routes = match self.capture()? {
            Some(capture) => routes.map_webhook(move |webhook| {
                webhook.route_layer(axum::middleware::from_fn_with_state(
                    capture,
                    super::capture_http::axum_layer,
                ))
            }),
            None => routes,
        };
        Ok(routes.into_router())
    }

    /// Binds `ALM_LISTEN` and serves [`Config::router`] behind `guard`
    /// ([`Guard::serve`]: its header read timeout and connection cap) on a
    /// task of its own, until the process ends; returns the bound address
    /// (port 0 picks a free one).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Unavailable`] naming `ALM_LISTEN` when the address
    /// cannot be bound; as [`Config::capture`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), alm_webhooks::BoxError> {
    /// use alm_webhooks::config::Config;
    /// let config = Config::from_vars([("ALM_LISTEN", "127.0.0.1:0")])?;
    /// let endpoint = config.endpoint(|_event| async { Ok(()) }).await?;
    /// let addr = config.serve(&endpoint, config.guard(&endpoint)).await?;
    /// assert_ne!(addr.port(), 0);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub async fn serve(
        &self,
        endpoint: &Endpoint,
        guard: Guard,
    ) -> Result<SocketAddr, ConfigError> {
        let router = self.router(endpoint, guard.clone())?;
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|e| {
                ConfigError::unavailable(
                    "ALM_LISTEN",
                    format!("cannot listen on {}: {e}", self.listen),
                )
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| ConfigError::unavailable("ALM_LISTEN", e))?;
        tokio::spawn(async move { guard.serve(listener, router).await });
        Ok(addr)
    }
}
