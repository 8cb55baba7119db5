//! stride: a convolutional-neural-network engine built from first principles.
//!
//! What each module holds:
//! - [`tensor`]: the dense f32 [`Tensor`] (shape + row-major data);
//! - [`geometry`]: the sliding-window formulas every op shares (output sizes, padding, where a
//!   window reads);
//! - [`ops`]: the pure maths, forward next to backward: convolution and its algorithms (and the
//!   `auto` policy), transposed convolution, pooling, activations, linear, losses, norms, GEMM,
//!   the SIMD gate;
//! - [`nn`]: stateful layers, `Sequential`, the model spec language and presets;
//! - [`optim`]: SGD and Adam with PyTorch's update rules;
//! - [`data`]: the IDX (MNIST-format) reader and mini-batches;
//! - [`train`]: the training loop (emits events), [`checkpoint`]: `.safetensors` save/load,
//!   [`chart`]: the training chart as PNG;
//! - [`analysis`]: shapes, parameters, MACs/FLOPs, memory, receptive fields;
//! - [`explain`]: step-by-step narration of an op on small inputs;
//! - [`io`]: `.npy` files, inline literals, atomic writes;
//! - [`bench`](mod@bench): the timing protocol, the standard shapes and their timed passes;
//! - [`rng`]: the seeded random numbers; [`error`]: the typed errors.
//!
//! The library never prints; the `stride` binary (`src/main.rs`, `src/cli/`) parses arguments,
//! calls one library function and renders the result.

pub mod analysis;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod explain;
pub mod geometry;
pub mod io;
pub mod learn_kernel;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod tensor;
pub mod train;
pub mod viz;

pub use error::{Error, Result};
pub use tensor::Tensor;
