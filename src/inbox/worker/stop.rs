//! Stopping the workers within a bound, whatever the inbox does.

use std::time::Duration;

use tokio::task::JoinHandle;

/// How long [`WorkerPool::shutdown`](super::WorkerPool::shutdown) waits,
/// after its grace, for the workers to give back what they hold.
const GIVE_BACK: Duration = Duration::from_secs(1);

/// Waits for every task, for at most `limit`; whether they all ended.
pub(super) async fn join_within(tasks: &mut [JoinHandle<()>], limit: Duration) -> bool {
    let all = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    tokio::time::timeout(limit, all).await.is_ok()
}

/// Waits [`GIVE_BACK`] for the workers to give back their deliveries, then
/// stops those still waiting on the inbox (one that stopped answering)
/// where they are: their deliveries are taken again once their leases run
/// out.
pub(super) async fn give_back(mut tasks: Vec<JoinHandle<()>>) {
    if !join_within(&mut tasks, GIVE_BACK).await {
        for task in &tasks {
            task.abort();
        }
    }
}
