//! The bytes of request bodies buffered at once, across all requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A budget of bytes shared by every request.
#[derive(Debug)]
pub(super) struct Budget {
    cap: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(super) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            used: AtomicUsize::new(0),
        })
    }

    /// Takes `bytes` more, unless that would go over the cap.
    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.cap)
            })
            .is_ok()
    }

    /// Bytes held now, by every request together.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// What one request holds of the budget; given back when dropped.
#[derive(Debug)]
pub(super) struct Held {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Held {
    /// Nothing held yet.
    pub(super) fn none(budget: &Arc<Budget>) -> Self {
        Self {
            budget: Arc::clone(budget),
            bytes: 0,
        }
    }

    /// Holds `bytes` in all (more than now, or nothing changes); `false`
    /// when the budget has no room for them.
    pub(super) fn grow_to(&mut self, bytes: usize) -> bool {
        if bytes <= self.bytes {
            return true;
        }
        if !self.budget.take(bytes - self.bytes) {
            return false;
        }
        self.bytes = bytes;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_share_the_cap_and_give_back_what_they_held() {
        let budget = Budget::new(100);
        let mut a = Held::none(&budget);
        let mut b = Held::none(&budget);
        assert!(a.grow_to(60));
        assert!(!b.grow_to(41), "60 + 41 is over 100");
        assert!(b.grow_to(40));
        assert!(a.grow_to(50), "holding less than now changes nothing");
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(b.grow_to(100));
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
