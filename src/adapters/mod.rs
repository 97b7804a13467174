//! Thin adapters for web frameworks, each behind its own feature. They read
//! the raw body within the size limit and hand it to [`crate::DeliveryReceiver`]
//! (the extractors) or to [`crate::Endpoint`] (`Endpoint::handle_axum`,
//! `Endpoint::handle_actix`); all checks live in the framework-free core.

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
