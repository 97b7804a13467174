//! Checks to run against your own implementation of this crate's traits.
//!
//! - [`store`] (feature `store-conformance`): the contract every
//!   [`Store`](crate::store::Store) keeps, with the
//!   [`store_conformance!`](crate::store_conformance) and
//!   [`shared_store_conformance!`](crate::shared_store_conformance) macros.
//!
//! - [`inbox`] (feature `inbox-conformance`): the contract every
//!   [`Inbox`](crate::inbox::Inbox) keeps, with the
//!   [`inbox_conformance!`](crate::inbox_conformance) macro.
//!
//! - [`sink`] (feature `sink-conformance`): the contract every
//!   [`Sink`](crate::outbox::Sink) keeps.
//!
//! It sits above `store`, `inbox` and `engine` (its checks drive a store
//! directly and through an [`Engine`](crate::Engine)), so neither imports
//! it.

#[cfg(feature = "inbox-conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox-conformance")))]
pub mod inbox;
#[cfg(feature = "sink-conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "sink-conformance")))]
pub mod sink;
#[cfg(feature = "store-conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "store-conformance")))]
pub mod store;
