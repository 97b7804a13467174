//! What the sweep sends: per account, an ordered sequence of learner events
//! (for each learner an enrollment, then its completion), cut into
//! deliveries of 1 to 10 events and sent the way ALM sends them: an
//! account's next delivery only once the previous one was acknowledged,
//! retried with backoff, here over every receiver in turn (a load balancer).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use alm_webhooks::simulator::{AttemptOutcome, Simulator, signers};

use super::receiver::SECRET;

/// A small deterministic generator (xorshift64*), so a seed replays a run.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Where an event sits in the plan, read back from its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Position {
    pub(crate) account: u64,
    pub(crate) delivery: u64,
    pub(crate) seq: u64,
}

/// `{run}.a{account}.d{delivery}.s{seq}`.
pub(crate) fn event_id(run: &str, p: Position) -> String {
    format!("{run}.a{}.d{}.s{}", p.account, p.delivery, p.seq)
}

/// The position an event id names, if it is one of the sweep's.
pub(crate) fn position(event_id: &str) -> Option<Position> {
    let mut parts = event_id.rsplit('.');
    let seq = parts.next()?.strip_prefix('s')?.parse().ok()?;
    let delivery = parts.next()?.strip_prefix('d')?.parse().ok()?;
    let account = parts.next()?.strip_prefix('a')?.parse().ok()?;
    Some(Position {
        account,
        delivery,
        seq,
    })
}

/// One account's deliveries: (event ids, body).
pub(crate) type Plan = Vec<(Vec<String>, Vec<u8>)>;

/// The deliveries of `account`, `events` events in all.
pub(crate) fn plan(run: &str, account: u64, events: u64, rng: &mut Rng) -> Plan {
    let mut deliveries = Vec::new();
    let mut seq = 0;
    while seq < events {
        let size = (1 + rng.below(10)).min(events - seq);
        let delivery = deliveries.len() as u64;
        let mut ids = Vec::new();
        let mut json = Vec::new();
        for seq in seq..seq + size {
            let id = event_id(
                run,
                Position {
                    account,
                    delivery,
                    seq,
                },
            );
            // Learner `seq / 2 + 1`: enrollment (even), then completion.
            let name = if seq % 2 == 0 {
                "COURSE_ENROLLMENT"
            } else {
                "COURSE_COMPLETED"
            };
            let timestamp = 1_725_600_000 + seq as i64;
            json.push(learner_event(
                &id,
                name,
                timestamp,
                seq / 2 + 1,
                "course:1_1",
            ));
            ids.push(id);
        }
        deliveries.push((ids, envelope(account, &json)));
        seq += size;
    }
    deliveries
}

/// What the sender saw.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Events in acknowledged deliveries.
    pub(crate) acknowledged: HashSet<String>,
    /// Deliveries given up on at the deadline.
    pub(crate) abandoned: usize,
    /// Attempts that were not a 2xx.
    pub(crate) failed_attempts: usize,
}

/// Sends every account's plan, pacing each account's deliveries over
/// `spread`, retrying until `deadline`.
pub(crate) async fn send(
    plans: Vec<(u64, Plan)>,
    ports: Vec<u16>,
    spread: Duration,
    deadline: Instant,
) -> Sent {
    let simulators: Vec<Simulator> = ports
        .iter()
        .map(|port| {
            Simulator::new(&format!("http://127.0.0.1:{port}/webhooks"))
                .expect("a loopback URL")
                .with_signer(signers::signature(SignatureAuth::new(SECRET)))
                .with_read_timeout(Duration::from_secs(5))
        })
        .collect();
    let simulators = Arc::new(simulators);
    let sent = Arc::new(Mutex::new(Sent::default()));
    let mut tasks = Vec::new();
    for (index, (_, plan)) in plans.into_iter().enumerate() {
        let (simulators, sent) = (Arc::clone(&simulators), Arc::clone(&sent));
        tasks.push(tokio::spawn(async move {
            let pause = spread / (plan.len() as u32).max(1);
            let mut turn = index;
            for (ids, body) in plan {
                let mut backoff = Duration::from_millis(50);
                loop {
                    turn += 1;
                    let simulator = &simulators[turn % simulators.len()];
                    let outcome = simulator.attempt(&body, false).await;
                    if matches!(outcome, AttemptOutcome::Status(s) if (200..300).contains(&s)) {
                        sent.lock().expect("sent").acknowledged.extend(ids);
                        break;
                    }
                    sent.lock().expect("sent").failed_attempts += 1;
                    if Instant::now() + backoff > deadline {
                        sent.lock().expect("sent").abandoned += 1;
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                tokio::time::sleep(pause).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Arc::try_unwrap(sent)
        .map(|m| m.into_inner().expect("sent"))
        .unwrap_or_default()
}
