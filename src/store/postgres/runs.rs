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

/// Cuts `0..len` into the fewest ranges of at most [`MANY_CHUNK`] items,
/// of sizes that differ by one at most: for items that are known to touch
/// different rows, so that runs sent on several connections at once take
/// the server about as long each.
pub(super) fn even_runs(len: usize) -> Vec<Range<usize>> {
    let count = len.div_ceil(MANY_CHUNK);
    (0..count)
        .map(|i| len * i / count..len * (i + 1) / count)
        .collect()
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

    #[test]
    fn even_runs_are_the_fewest_and_differ_by_one_at_most() {
        assert_eq!(even_runs(0), Vec::<Range<usize>>::new());
        assert_eq!(even_runs(3), vec![0..3]);
        assert_eq!(even_runs(MANY_CHUNK), vec![0..MANY_CHUNK]);
        for len in [MANY_CHUNK + 1, 2 * MANY_CHUNK + 1, 5_000, 3 * MANY_CHUNK] {
            let runs = even_runs(len);
            assert_eq!(runs.len(), len.div_ceil(MANY_CHUNK), "{len}");
            assert_eq!(runs.first().unwrap().start, 0);
            assert_eq!(runs.last().unwrap().end, len);
            assert!(runs.windows(2).all(|w| w[0].end == w[1].start));
            let sizes: Vec<usize> = runs.iter().map(ExactSizeIterator::len).collect();
            assert!(sizes.iter().all(|&n| n <= MANY_CHUNK), "{sizes:?}");
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "{sizes:?}");
        }
    }
}
