//! Per-thread scratch buffers reused across calls: freshly allocated big buffers cost
//! thousands of page faults per call (glibc returns freed blocks to the kernel).
//!
//! The buffer is taken out of its thread-local slot for the duration of the call, so a nested
//! call on the same thread (a rayon task stolen while a parallel GEMM waits) finds the slot
//! empty and allocates its own instead of panicking on a double borrow.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A thread-local slot holding a reusable buffer.
pub type Slot = LocalKey<RefCell<Vec<f32>>>;

/// Runs `f` with a buffer of at least `len` values from `slot` (contents unspecified).
pub fn with<R>(slot: &'static Slot, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut v = slot.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if v.len() < len {
        v.resize(len, 0.0);
    }
    let r = f(&mut v[..len]);
    slot.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < v.len() {
            *b = v;
        }
    });
    r
}
