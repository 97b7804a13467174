//! The recorder's handles of the series recorded on this thread, so that a
//! record costs a table lookup and an atomic add rather than the recorder's
//! registry lookup (its key built, hashed and compared under a lock): that
//! lookup cost a Prometheus recorder about 80 ns per call, 13–30 % of the
//! pipeline (see `BENCHMARKS.md`).
//!
//! Handles are kept only for the global recorder (`metrics::set_global_recorder`):
//! it is installed once and lives as long as the process, so the handles it
//! gave stay its own. A local recorder (`metrics::with_local_recorder`, as
//! tests use) is asked at every record, with a key built once per thread:
//! another local recorder may later stand at the same address, and handles
//! kept from the first would send its records astray. The global recorder
//! is recognised by its address, read once from a thread that has no local
//! recorder. Handles are taken only for the series actually recorded (a
//! series appears in the recorder at its first record, as with the
//! `metrics` macros).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder};

/// A series: the metric name and up to three label values, each by the
/// address and length of its `'static` text. The same text at another
/// address is another slot of the same series (the recorder gives the
/// same handle), so a slot never mixes two series.
type Slot = [(usize, usize); 4];

/// What the `metrics` macros pass as metadata.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

#[derive(Default)]
struct Table {
    /// The global recorder's handles, once it is known.
    counters: HashMap<Slot, Counter, foldhash::fast::FixedState>,
    histograms: HashMap<Slot, Histogram, foldhash::fast::FixedState>,
    /// Keys, whatever the recorder (they do not depend on it).
    keys: HashMap<Slot, Key, foldhash::fast::FixedState>,
    /// Addresses of recorders found not to be the global one while no
    /// global recorder was known (so they are not looked at again).
    local: HashSet<usize, foldhash::fast::FixedState>,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

/// The global recorder's address, once one is installed (a global
/// recorder cannot be replaced).
static GLOBAL: OnceLock<usize> = OnceLock::new();

fn address(recorder: &dyn Recorder) -> Option<usize> {
    // A recorder without state has no address of its own.
    (std::mem::size_of_val(recorder) != 0)
        .then(|| std::ptr::from_ref(recorder).cast::<()>() as usize)
}

/// Whether the recorder at `address` is the global one: asked of a
/// fresh thread (which has no local recorder) until one is installed.
fn is_global(table: &mut Table, address: usize) -> bool {
    if let Some(global) = GLOBAL.get() {
        return *global == address;
    }
    if table.local.contains(&address) {
        return false;
    }
    let seen = std::thread::spawn(|| metrics::with_recorder(self::address))
        .join()
        .ok()
        .flatten();
    if let Some(global) = seen {
        let _ = GLOBAL.set(global);
    }
    if seen == Some(address) {
        true
    } else {
        table.local.insert(address);
        false
    }
}

fn slot<const N: usize>(name: &'static str, labels: &[(&'static str, &'static str); N]) -> Slot {
    let mut slot = [(name.as_ptr() as usize, name.len()), (0, 0), (0, 0), (0, 0)];
    for (i, (_, value)) in labels.iter().take(3).enumerate() {
        slot[i + 1] = (value.as_ptr() as usize, value.len());
    }
    slot
}

fn key<const N: usize>(name: &'static str, labels: &[(&'static str, &'static str); N]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::from_static_parts(k, v))
        .collect();
    Key::from_parts(name, labels)
}

/// Runs `f` with the table and whether the handles it keeps are those
/// of `recorder` (the global recorder's).
fn with_table<T>(recorder: &dyn Recorder, f: impl FnOnce(&mut Table, bool) -> T) -> T {
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let keep = address(recorder).is_some_and(|at| is_global(&mut table, at));
        f(&mut table, keep)
    })
}

/// Adds `n` to the counter `name{labels}`.
pub(super) fn counter<const N: usize>(
    name: &'static str,
    labels: [(&'static str, &'static str); N],
    n: u64,
) {
    metrics::with_recorder(|recorder| {
        with_table(recorder, |table, keep| {
            let slot = slot(name, &labels);
            if keep {
                if let Some(counter) = table.counters.get(&slot) {
                    counter.increment(n);
                    return;
                }
            }
            let key = table.keys.entry(slot).or_insert_with(|| key(name, &labels));
            let counter = recorder.register_counter(key, &METADATA);
            counter.increment(n);
            if keep {
                table.counters.insert(slot, counter);
            }
        });
    });
}

/// Records `value` in the histogram `name{labels}`.
pub(super) fn histogram<const N: usize>(
    name: &'static str,
    labels: [(&'static str, &'static str); N],
    value: f64,
) {
    let record = |histogram: &Histogram| histogram.record(value);
    metrics::with_recorder(|recorder| {
        with_table(recorder, |table, keep| {
            let slot = slot(name, &labels);
            if keep {
                if let Some(histogram) = table.histograms.get(&slot) {
                    record(histogram);
                    return;
                }
            }
            let key = table.keys.entry(slot).or_insert_with(|| key(name, &labels));
            let histogram = recorder.register_histogram(key, &METADATA);
            record(&histogram);
            if keep {
                table.histograms.insert(slot, histogram);
            }
        });
    });
}
