//! Parallel sums with a fixed order, so that the same inputs and thread count give the same
//! bits. Float addition is not associative: rayon's `fold` + `reduce` groups partial sums by
//! how work happened to be stolen, which changes from run to run. Here the work items are cut
//! into a fixed number of contiguous slots (a function of the item count and the thread count
//! only), each slot accumulates its items in order into its own partial, and the partials are
//! added in slot order on one thread.

use rayon::prelude::*;

/// Sums per-item contributions into `out` (overwritten): `add(item, partial)` adds item's
/// contribution to a partial of `out.len()` values. Items `0..items` go to at most
/// `2 × threads` slots of consecutive items; `out = Σ_slot partial[slot]` in slot order.
pub fn sum_in_order<F>(items: usize, out: &mut [f32], add: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let len = out.len();
    out.fill(0.0);
    if items == 0 || len == 0 {
        return;
    }
    let slots = items.min(2 * rayon::current_num_threads()).max(1);
    let per = items.div_ceil(slots);
    let slots = items.div_ceil(per);
    if slots == 1 {
        (0..items).for_each(|i| add(i, out));
        return;
    }
    // partials: (slots, len)
    let mut partials = vec![0.0f32; slots * len];
    partials
        .par_chunks_mut(len)
        .enumerate()
        .for_each(|(slot, part)| {
            for item in slot * per..((slot + 1) * per).min(items) {
                add(item, part);
            }
        });
    // for each slot, in order
    for part in partials.chunks(len) {
        out.iter_mut().zip(part).for_each(|(o, p)| *o += p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_item_once_and_repeats_exactly() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let run = || {
            let mut out = vec![0.0f32; 3];
            sum_in_order(101, &mut out, |i, p| {
                p[0] += 1.0;
                p[1] += i as f32;
                p[2] += 0.1 * (i as f32).sin();
            });
            out
        };
        let a = pool.install(run);
        assert_eq!(a[0], 101.0);
        assert_eq!(a[1], (0..101).sum::<usize>() as f32);
        for _ in 0..5 {
            assert_eq!(pool.install(run), a);
        }
    }
}
