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

/// Floats per 64-byte cache line (one AVX-512 vector).
const LINE: usize = 16;

/// Runs `f` with a buffer of at least `len` values from `slot` (contents unspecified), starting
/// on a 64-byte boundary: the allocator's 16-byte alignment put each vector of a buffer across
/// two cache lines or not depending on where the buffer happened to land, so a kernel's speed
/// changed from run to run (conv1d's forward: 2.27 or 2.57 ms).
pub fn with<R>(slot: &'static Slot, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut v = slot.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if v.len() < len + LINE - 1 {
        v.resize(len + LINE - 1, 0.0);
    }
    // values from the buffer's start to the next 64-byte boundary
    let skip = v.as_ptr().align_offset(64).min(LINE - 1);
    let r = f(&mut v[skip..skip + len]);
    slot.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < v.len() {
            *b = v;
        }
    });
    r
}
