//! Data parallelism on scoped std threads (the crate has no async runtime and no thread pool
//! dependency): signing and verifying are CPU-bound and embarrassingly parallel.

/// Items per thread below which spawning costs more than it saves.
const MIN_PER_THREAD: usize = 16;

/// `items.iter().map(f).collect()`, spread over the available cores, order preserved.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let threads = cores.min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            // A panic in a worker is a bug; re-raise it on the caller's thread unchanged.
            out.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preserves_order_for_every_size() {
        for n in [0usize, 1, 15, 16, 33, 1000] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(
                par_map(&items, |x| x * 2),
                items.iter().map(|x| x * 2).collect::<Vec<_>>()
            );
        }
    }
}
