//! Checks to run against your own implementation of this crate's traits.
//!
//! - [`store`] (feature `store-conformance`): the contract every
//!   [`Store`](crate::store::Store) keeps, with the
//!   [`store_conformance!`](crate::store_conformance) and
//!   [`shared_store_conformance!`](crate::shared_store_conformance) macros.
//!
//! It sits above both `store` and `engine` (its checks drive a store
//! directly and through an [`Engine`](crate::Engine)), so neither imports
//! it.

pub mod store;
