//! Why an [`Endpoint`](super::Endpoint) was not built.

/// Why [`EndpointBuilder::build`](super::EndpointBuilder::build) refused the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// No [`EndpointBuilder::handler`](super::EndpointBuilder::handler) was given.
    #[error("the endpoint has no handler: call EndpointBuilder::handler")]
    MissingHandler,
    /// [`Mode::Inbox`](super::Mode::Inbox) was asked for without [`EndpointBuilder::inbox`](super::EndpointBuilder::inbox).
    #[error("Mode::Inbox needs an inbox: call EndpointBuilder::inbox")]
    InboxModeWithoutInbox,
    /// [`OnMalformed::Quarantine`](super::OnMalformed::Quarantine) was asked for without an inbox to keep
    /// the bodies in.
    #[error("OnMalformed::Quarantine needs an inbox: call EndpointBuilder::inbox")]
    QuarantineWithoutInbox,
    /// An inbox's workers (or the sweep) must start on a tokio runtime,
    /// and `build` was called outside one.
    #[error("the inbox's workers and the sweep need a tokio runtime: call build inside one")]
    NoRuntime,
    /// A durable inbox (SQLite, PostgreSQL, Redis) without
    /// [`EndpointBuilder::engine`](super::EndpointBuilder::engine): the engine's default keeps dedup and
    /// rule state in memory, so after a restart the inbox's redeliveries
    /// would be processed again and the rules would forget.
    #[error(
        "a durable inbox needs a durable engine: call EndpointBuilder::engine with a store \
         on the same database (Engine::builder(PostgresStore/SqliteStore/RedisStore…)), or \
         with Engine::in_memory() to keep decisions in memory on purpose"
    )]
    DurableInboxWithoutStore,
    /// [`EndpointBuilder::admin_token`](super::EndpointBuilder::admin_token)
    /// without an inbox: the admin API lists and replays what the inbox keeps.
    #[error("the admin API needs an inbox: call EndpointBuilder::inbox")]
    AdminWithoutInbox,
}
