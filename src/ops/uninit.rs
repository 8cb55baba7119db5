//! Outputs that need not be initialised. Kernels that write every output value take
//! `&mut [MaybeUninit<f32>]`, so a fresh output skips its zero fill (for big outputs the fill
//! and its page faults cost as much as the kernel itself: 1×1's 25 MB input gradient ran 1.5×
//! faster without it). The views between the two forms live here, one home for their
//! `unsafe`.

use std::mem::MaybeUninit;

/// `y` viewed as possibly uninitialised values, for a kernel that only stores floats into it
/// (so `y` stays valid).
pub fn as_uninit(y: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; every value is initialised and callers only store floats
    unsafe { &mut *(y as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// `y` filled with zeros, viewed as floats: for the forms that add into their output.
pub fn zeroed(y: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    y.iter_mut().for_each(|v| {
        v.write(0.0);
    });
    // SAFETY: every value was just written
    unsafe { assume_init(y) }
}

/// `y` as floats once every value has been written.
///
/// # Safety
/// Every value of `y` must be initialised.
pub unsafe fn assume_init(y: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: same layout; initialised by the caller's contract
    unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// An output that parallel tasks write in disjoint cells (their own tiles, channels or
/// planes): the one home of the `Send`/`Sync` promise such kernels make. [`Self::at`] checks
/// each range against the length; callers promise no other task touches it.
#[derive(Clone, Copy)]
pub struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: only addresses are handed out; the writers of disjoint cells are the callers of
// `at`, whose `unsafe` blocks state that no other task writes the same cells.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// `y` shared between tasks.
    pub fn new(y: &mut [f32]) -> Self {
        SharedOut {
            ptr: y.as_mut_ptr(),
            len: y.len(),
        }
    }

    /// `y`, whose values need not be initialised, shared between tasks that write them.
    pub fn uninit(y: &mut [MaybeUninit<f32>]) -> Self {
        SharedOut {
            ptr: y.as_mut_ptr().cast::<f32>(),
            len: y.len(),
        }
    }

    /// The address of cells `i..i + n` (asserted inside the output).
    pub fn at(&self, i: usize, n: usize) -> *mut f32 {
        assert!(i + n <= self.len, "cells {i}..{} of {}", i + n, self.len);
        self.ptr.wrapping_add(i)
    }
}
