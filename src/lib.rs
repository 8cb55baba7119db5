//! stride: a convolutional-neural-network engine built from first principles.
//!
//! - [`tensor`]: the dense f32 `Tensor`;
//! - [`geometry`]: the sliding-window formulas every op shares;
//! - [`ops`]: convolution (direct, im2col, Toeplitz) and friends, forward next to backward;
//! - [`explain`]: step-by-step narration of an op on small inputs;
//! - [`io`]: `.npy` files and inline literals.
//!
//! The library never prints; the `stride` binary parses arguments and renders results.

pub mod analysis;
pub mod bench;
pub mod chart;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod explain;
pub mod geometry;
pub mod io;
pub mod limits;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod rundir;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use tensor::Tensor;
