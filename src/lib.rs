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
//! - [`train`]: the training loop (emits events), [`shards`]: its data-parallel step,
//!   [`checkpoint`]: `.safetensors` save/load;
//! - [`analysis`]: shapes, parameters, MACs/FLOPs, memory, receptive fields;
//! - [`explain`]: step-by-step narration of an op on small inputs;
//! - [`io`]: `.npy` files, inline literals, atomic writes;
//! - [`onnx`]: ONNX export and import, PyTorch `state_dict` weights, [`onnx::load_model`];
//! - [`viz`]: pictures as PNG (feature maps, kernels, the training chart); [`learn_kernel`]:
//!   learning a kernel by gradient descent;
//! - [`bench`](mod@bench): the timing protocol, the standard shapes and their timed passes;
//! - [`rng`]: the seeded random numbers; [`error`]: the typed errors.
//!
//! The library never prints; the `stride` binary (`src/main.rs`, `src/cli/`) parses arguments,
//! calls one library function and renders the result. The `examples/` folder has runnable
//! programs (`cargo run --release --example onnx_predict`).
//!
//! ```
//! use stride::nn::{init::Init, models::{resolve, Model}};
//! // a network from a text spec, run on a batch of two 28×28 images
//! let (spec, _, _) = resolve("conv(6,k=5,p=2) relu maxpool(2) flatten linear(10)")?;
//! let mut model = Model::build(&spec, Init::Default, 0)?;
//! let logits = stride::train::predict(&mut model, stride::Tensor::zeros(&[2, 1, 28, 28]))?;
//! assert_eq!(logits.shape(), &[2, 10]);
//! // and out to ONNX for ONNX Runtime, OpenVINO or TensorRT
//! let bytes = stride::onnx::export(&model, "tiny")?;
//! assert!(bytes.len() > 4 * model.net.num_params());
//! # Ok::<(), stride::Error>(())
//! ```

pub mod analysis;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod explain;
pub mod geometry;
pub mod io;
pub mod learn_kernel;
pub mod limits;
pub mod nn;
pub mod onnx;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod rundir;
pub mod shards;
pub mod tensor;
pub mod train;
pub mod viz;

pub use error::{Error, Result};
pub use tensor::Tensor;
