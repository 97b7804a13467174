//! The store conformance suite, as shipped in the crate
//! (`alm_webhooks::conformance::store`, feature `store-conformance`), run on
//! this crate's stores, plus a check of our own: a delivery costs a
//! constant number of store calls.
//!
//! `store_conformance!(factory)` expands to one `#[tokio::test]` per check;
//! `factory` is an async expression giving `Option<S>` (`None`: the service
//! is not there and the test is skipped, which the factory reports).

/// The checks only shared stores (PostgreSQL, Redis) pass: leases on the
/// store's clock.
#[macro_export]
macro_rules! shared_store_conformance {
    ($factory:expr) => {
        alm_webhooks::shared_store_conformance!($factory);
    };
}

/// One `#[tokio::test]` per conformance check, for the store `$factory`
/// makes, and the store-call count.
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr) => {
        alm_webhooks::store_conformance!($factory);

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_delivery_costs_a_constant_number_of_store_calls() {
            if let Some(store) = $factory.await {
                $crate::support::counting::a_delivery_costs_a_constant_number_of_store_calls(store)
                    .await;
            }
        }
    };
}
