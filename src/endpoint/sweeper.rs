//! The endpoint's background sweep of the engine's store
//! ([`EndpointBuilder::sweep_every`](super::EndpointBuilder::sweep_every)).

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::Engine;
use crate::store::Store;

/// A task sweeping the store every interval; stopped when dropped.
#[derive(Debug)]
pub(super) struct Sweeper(JoinHandle<()>);

impl Sweeper {
    /// Starts sweeping `engine`'s store every `interval` (the first sweep
    /// one interval from now), on the current tokio runtime.
    pub(super) fn start<S: Store>(engine: Engine<S>, interval: Duration) -> Self {
        let interval = interval.max(Duration::from_millis(1));
        Self(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is now
            loop {
                ticks.tick().await;
                // A failed sweep is tried again at the next tick: expired
                // entries wait, nothing is lost.
                #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
                match engine.sweep().await {
                    Ok(removed) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(removed, "store swept");
                    }
                    Err(error) => {
                        #[cfg(feature = "tracing")]
                        tracing::warn!(%error, "store sweep failed; trying again at the next tick");
                    }
                }
            }
        }))
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}
