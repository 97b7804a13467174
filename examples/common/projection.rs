//! `ALM_PROJECTION` = `on` (default) | `off`: the learner table
//! (`docs/learner-table.md`) kept in the store (`ALM_STORE`), in the same
//! transaction as the decisions. On PostgreSQL its table comes with the
//! migration (`?migrate=true`); Redis does not keep it yet (a warning, and
//! the receiver runs without it).

use alm_webhooks::store::AnyStore;

/// The store with the learner projection on, unless `ALM_PROJECTION=off`.
pub async fn apply(store: AnyStore) -> Result<AnyStore, String> {
    let on = match std::env::var("ALM_PROJECTION").ok().as_deref() {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => return Err(format!("ALM_PROJECTION={other:?}: expected on or off")),
    };
    if !on {
        return Ok(store);
    }
    let failed = |e: alm_webhooks::store::StoreError| format!("ALM_PROJECTION: {e}");
    Ok(match store {
        AnyStore::Memory(s) => AnyStore::Memory(s.with_learner_projection()),
        #[cfg(feature = "sqlite")]
        AnyStore::Sqlite(s) => AnyStore::Sqlite(s.with_learner_projection().await.map_err(failed)?),
        #[cfg(feature = "postgres")]
        AnyStore::Postgres(s) => {
            AnyStore::Postgres(s.with_learner_projection().await.map_err(failed)?)
        }
        other => {
            let _ = failed;
            eprintln!("warning: ALM_PROJECTION: this store does not keep the learner table yet");
            other
        }
    })
}
