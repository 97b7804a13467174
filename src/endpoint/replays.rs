//! The deliveries accepted recently under a scheme that signs a
//! timestamp, so that a replay within the tolerance is acknowledged
//! without being kept (or processed) again.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use crate::auth::replay::ReplayKey;

/// Deliveries remembered at once (about 100 bytes each): past it the
/// oldest is forgotten first, and a replay of it is kept again (the
/// store's event ids still tell its events apart as duplicates).
pub const DEFAULT_MAX_REMEMBERED_DELIVERIES: usize = 100_000;

/// The recent deliveries, each until its window ends.
#[derive(Debug)]
pub(super) struct Replays {
    max: usize,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<[u8; 32], Instant>,
    /// In the order remembered, which is the order their windows end (one
    /// endpoint, one window).
    order: VecDeque<([u8; 32], Instant)>,
}

impl Replays {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// `true` the first time `key` is seen within its window (it is
    /// remembered from now), `false` for a replay.
    pub(super) fn first_time(&self, key: &ReplayKey, now: Instant) -> bool {
        if self.max == 0 {
            return true;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((digest, until)) = seen.order.front().copied() {
            if until > now && seen.order.len() < self.max {
                break;
            }
            seen.order.pop_front();
            if seen.until.get(&digest) == Some(&until) {
                seen.until.remove(&digest);
            }
        }
        if seen
            .until
            .get(&key.digest)
            .is_some_and(|until| *until > now)
        {
            return false;
        }
        let until = now + key.window;
        seen.until.insert(key.digest, until);
        seen.order.push_back((key.digest, until));
        true
    }

    /// Forgets `key`: the delivery was not kept after all, so its
    /// redelivery must be.
    pub(super) fn forget(&self, key: &ReplayKey) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.until.remove(&key.digest);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(n: u8) -> ReplayKey {
        ReplayKey {
            digest: [n; 32],
            window: Duration::from_secs(600),
        }
    }

    #[test]
    fn a_replay_within_the_window_is_known_and_forgotten_after() {
        let replays = Replays::new(10);
        let start = Instant::now();
        assert!(replays.first_time(&key(1), start));
        assert!(!replays.first_time(&key(1), start + Duration::from_secs(599)));
        assert!(replays.first_time(&key(2), start));
        assert!(replays.first_time(&key(1), start + Duration::from_secs(601)));
    }

    #[test]
    fn a_forgotten_key_is_new_again() {
        let replays = Replays::new(10);
        let now = Instant::now();
        assert!(replays.first_time(&key(1), now));
        replays.forget(&key(1));
        assert!(replays.first_time(&key(1), now));
    }

    #[test]
    fn past_the_cap_the_oldest_goes_first() {
        let replays = Replays::new(3);
        let now = Instant::now();
        for n in 0..4 {
            assert!(replays.first_time(&key(n), now));
        }
        assert!(!replays.first_time(&key(3), now));
        assert!(replays.first_time(&key(0), now), "the oldest was forgotten");
        let seen = replays.seen.lock().unwrap();
        assert!(seen.order.len() <= 3 && seen.until.len() <= 3);
    }
}
