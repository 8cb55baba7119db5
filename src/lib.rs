//! stride: a convolutional-neural-network engine built from first principles.
//!
//! - [`tensor`]: the dense f32 `Tensor`;
//! - [`geometry`]: the sliding-window formulas every op shares;
//! - [`ops`]: convolution (direct, im2col, Toeplitz) and friends, forward next to backward;
//! - [`explain`]: step-by-step narration of an op on small inputs;
//! - [`io`]: `.npy` files and inline literals;
//! - [`nn`]: layers, networks described as text specs, presets; [`train`], [`optim`], [`data`]
//!   (Fashion-MNIST), [`checkpoint`]; [`analysis`]: shapes, parameters, FLOPs, receptive fields;
//! - [`onnx`]: ONNX export and import, PyTorch `state_dict` weights, [`onnx::load_model`].
//!
//! The library never prints; the `stride` binary parses arguments and renders results. The
//! `examples/` folder has runnable programs (`cargo run --release --example onnx_predict`).
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
pub mod chart;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod explain;
pub mod geometry;
pub mod io;
pub mod nn;
pub mod onnx;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use tensor::Tensor;
