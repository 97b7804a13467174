//! How a slice of claims or commits is cut into runs that each go out as
//! one statement.

use std::collections::HashSet;
use std::hash::Hash;
use std::ops::Range;

use crate::rules::StateKey;
use crate::store::{ClaimRequest, Commit, DedupKey, MANY_CHUNK};

/// Cuts `0..len` into consecutive ranges of at most [`MANY_CHUNK`] items in
/// which no key of `keys(i)` repeats. Within such a range, items touch
/// different rows, so running them together in one statement gives what
/// running them one after another gives; the ranges themselves run in
/// order.
pub(super) fn runs<K, I>(len: usize, mut keys: impl FnMut(usize) -> I) -> Vec<Range<usize>>
where
    K: Hash + Eq,
    I: IntoIterator<Item = K>,
{
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut start = 0;
    for i in 0..len {
        let mut fresh = i - start < MANY_CHUNK;
        let item_keys: Vec<K> = keys(i).into_iter().collect();
        if fresh {
            fresh = item_keys.iter().all(|k| !seen.contains(k));
        }
        if !fresh {
            out.push(start..i);
            seen.clear();
            start = i;
        }
        seen.extend(item_keys);
    }
    if start < len {
        out.push(start..len);
    }
    out
}

/// The runs of a claim: no event twice in one run.
pub(super) fn claim_runs(requests: &[ClaimRequest<'_>]) -> Vec<Range<usize>> {
    runs(requests.len(), |i| [requests[i].key])
}

/// A row a commit writes: its event's or its state's.
#[derive(PartialEq, Eq, Hash)]
enum Row<'a> {
    Event(&'a DedupKey),
    State(&'a StateKey),
}

/// The runs of a commit: no event and no state twice in one run.
pub(super) fn commit_runs(commits: &[Commit<'_>]) -> Vec<Range<usize>> {
    runs(commits.len(), |i| {
        let c = &commits[i];
        std::iter::once(Row::Event(c.key)).chain(c.update.map(|u| Row::State(u.key)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_at_a_repeated_key_and_at_the_chunk_size() {
        let keys = [1, 2, 3, 2, 4, 1, 1];
        assert_eq!(runs(keys.len(), |i| [keys[i]]), [0..3, 3..6, 6..7]);
        assert_eq!(runs(0, |_| [0]), Vec::<Range<usize>>::new());
        let many = MANY_CHUNK * 2 + 1;
        assert_eq!(
            runs(many, |i| [i]),
            [
                0..MANY_CHUNK,
                MANY_CHUNK..2 * MANY_CHUNK,
                2 * MANY_CHUNK..many
            ]
        );
    }
}
