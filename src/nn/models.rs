//! Built-in networks and the builder that turns a [`ModelSpec`] into a [`Sequential`] of
//! initialised layers.
//!
//! Presets (input `(1, 28, 28)`, 10 classes):
//! - `lenet5`: d2l's LeNet (ch. 7.6), sigmoid + average pooling, 61,706 parameters; trained with
//!   the d2l recipe (SGD lr 0.9, Xavier-uniform weights);
//! - `lenet5-relu`: the same topology with ReLU and max pooling (Adam lr 1e-3, He-uniform
//!   weights: 0.892 after 10 epochs where PyTorch's default init gave 0.885);
//! - `convnet`: three conv + BatchNorm + ReLU + max-pool stages and a dropout MLP head, for
//!   ≥ 92% on Fashion-MNIST in 10 epochs (Adam lr 1e-3 with cosine decay over the run; with a
//!   constant rate its test accuracy oscillates between 0.91 and 0.924 over the last epochs).

use super::activation::{Act, Dropout};
use super::batchnorm::BatchNorm;
use super::conv::Conv;
use super::init::{fans, init_bias, init_weight, Init};
use super::linear::{Flatten, Linear};
use super::pool::Pool;
use super::spec::{LayerShape, LayerSpec, ModelSpec};
use super::{Layer, Sequential};
use crate::error::{Error, Result};
use crate::ops::activation::Activation;
use crate::ops::pool::activated;
use crate::rng::Rng;
use std::path::Path;

/// The input shape of every preset and the default for user specs: one 28×28 grayscale image.
pub const INPUT: [usize; 3] = [1, 28, 28];

/// A built-in network with its training defaults.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    pub about: &'static str,
    pub spec: &'static str,
    pub optimizer: &'static str,
    pub lr: f64,
    pub init: Init,
    /// Learning-rate schedule (`constant` or `cosine`).
    pub schedule: &'static str,
}

/// The presets.
pub const PRESETS: [Preset; 3] = [
    Preset {
        name: "lenet5",
        about: "d2l LeNet-5: sigmoid, average pooling (61,706 parameters)",
        spec: "conv(6,k=5,p=2) sigmoid avgpool(2) conv(16,k=5) sigmoid avgpool(2) \
               flatten linear(120) sigmoid linear(84) sigmoid linear(10)",
        optimizer: "sgd",
        lr: 0.9,
        init: Init::XavierUniform,
        schedule: "constant",
    },
    Preset {
        name: "lenet5-relu",
        about: "LeNet-5 with ReLU and max pooling, He (Kaiming) init",
        spec: "conv(6,k=5,p=2) relu maxpool(2) conv(16,k=5) relu maxpool(2) \
               flatten linear(120) relu linear(84) relu linear(10)",
        optimizer: "adam",
        lr: 1e-3,
        init: Init::KaimingUniform,
        schedule: "constant",
    },
    Preset {
        name: "convnet",
        about: "small BatchNorm + ReLU convnet, three conv stages (241,994 parameters)",
        spec: "conv(32,k=3,p=1) batchnorm relu maxpool(2) \
               conv(64,k=3,p=1) batchnorm relu maxpool(2) \
               conv(128,k=3,p=1) batchnorm relu maxpool(2) \
               flatten dropout(0.3) linear(128) relu dropout(0.3) linear(10)",
        optimizer: "adam",
        lr: 1e-3,
        init: Init::Default,
        schedule: "cosine",
    },
];

/// Training defaults that come with a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelDefaults {
    pub optimizer: String,
    pub lr: f64,
    pub init: Init,
    pub schedule: String,
}

impl Default for ModelDefaults {
    fn default() -> Self {
        ModelDefaults {
            optimizer: "adam".into(),
            lr: 1e-3,
            init: Init::Default,
            schedule: "constant".into(),
        }
    }
}

/// Largest spec file read.
pub const SPEC_MAX_BYTES: u64 = 1 << 20;

/// Resolves a model argument: a preset name, `@file` or the path of a spec file, or an inline spec.
/// Returns the spec, a display name, and the training defaults.
pub fn resolve(model: &str) -> Result<(ModelSpec, String, ModelDefaults)> {
    if let Some(p) = PRESETS.iter().find(|p| p.name == model) {
        let defaults = ModelDefaults {
            optimizer: p.optimizer.into(),
            lr: p.lr,
            init: p.init,
            schedule: p.schedule.into(),
        };
        return Ok((ModelSpec::parse(p.spec, &INPUT)?, p.name.into(), defaults));
    }
    let file = model.strip_prefix('@').map(Path::new).or_else(|| {
        let p = Path::new(model);
        p.is_file().then_some(p)
    });
    let (text, name) = match file {
        Some(p) => (
            {
                // a spec is text of a few lines: refuse devices and anything over 1 MiB
                let bytes = crate::limits::read_file(p, Some(SPEC_MAX_BYTES))?;
                String::from_utf8(bytes).map_err(|_| Error::BadFile {
                    path: p.to_path_buf(),
                    msg: "is not UTF-8 text; a spec file holds a spec such as \
                          `conv(6,k=5) relu flatten linear(10)`"
                        .into(),
                })?
            },
            p.file_stem()
                .map_or("model".into(), |s| s.to_string_lossy().into_owned()),
        ),
        None => {
            let single = model
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
            let layer_names = [
                "flatten",
                "relu",
                "sigmoid",
                "tanh",
                "batchnorm",
                "bn",
                "dropout",
            ];
            if single && !layer_names.contains(&model) {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
                return Err(Error::arg(
                    "model",
                    format!(
                        "unknown model '{model}'; use a preset ({}), a spec such as \
                         'conv(6,k=5) relu maxpool(2) flatten linear(10)', or @file.txt",
                        names.join(", ")
                    ),
                ));
            }
            (model.to_string(), "custom".into())
        }
    };
    let spec = ModelSpec::parse(&text, &INPUT)?;
    Ok((spec, name, ModelDefaults::default()))
}

/// A network together with the spec it was built from.
pub struct Model {
    pub spec: ModelSpec,
    pub net: Sequential,
    /// Copies of the layers for the other shards of a data-parallel training step
    /// ([`crate::shards`]), made on first use; their weights are copied from `net` each step.
    pub replicas: Vec<Sequential>,
}

impl Model {
    /// Builds the layers of `spec` (shape pass first, so a bad spec fails before any work) and
    /// initialises weights with `init` (biases: PyTorch default) from one seeded generator,
    /// layer by layer in order. Pairs computed together (see `fusions` in this file): a
    /// BatchNorm and the ReLU after it, an activation and the 2×2 pooling after it; both layers
    /// stay in the list, so names, checkpoints and exports do not change.
    ///
    /// ```
    /// use stride::nn::{init::Init, models::{resolve, Model}};
    /// let (spec, _, _) = resolve("lenet5")?;
    /// let mut model = Model::build(&spec, Init::Default, 0)?;
    /// let logits = stride::train::predict(&mut model, stride::Tensor::zeros(&[2, 1, 28, 28]))?;
    /// assert_eq!(logits.shape(), &[2, 10]);
    /// # Ok::<(), stride::Error>(())
    /// ```
    pub fn build(spec: &ModelSpec, init: Init, seed: u64) -> Result<Model> {
        let shapes = spec.shapes()?;
        // parameters, gradients and optimiser state, one image's activations: before allocating
        crate::limits::check(
            "model",
            spec.memory_bytes(1)?,
            "use fewer or smaller layers",
        )?;
        let mut rng = Rng::new(seed);
        let mut layers: Vec<Box<dyn Layer>> = Vec::with_capacity(spec.layers.len());
        let fusions = fusions(spec, &shapes);
        for ((l, s), f) in spec.layers.iter().zip(&shapes).zip(fusions) {
            layers.push(build_layer(l, &s.in_shape, init, f, &mut rng)?);
        }
        Ok(Model {
            spec: spec.clone(),
            net: Sequential::new(layers),
            replicas: Vec::new(),
        })
    }

    /// Number of output classes (size of the last layer's output).
    pub fn classes(&self) -> Result<usize> {
        let out = self.spec.out_shape()?;
        match out.as_slice() {
            [c] => Ok(*c),
            _ => Err(Error::arg(
                "model",
                format!(
                    "the network must end in flat class scores (e.g. linear(10)), not {:?}",
                    out
                ),
            )),
        }
    }
}

/// Which neighbour does part of a layer's work (the layers of a pair stay in the list, one of
/// them passing values through).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fusion {
    None,
    /// A BatchNorm or the ReLU of a BatchNorm–ReLU pair: the BatchNorm computes the ReLU.
    BnRelu,
    /// An activation that the pooling after it computes.
    IntoPool,
    /// A pooling that applies the activation before it first.
    PoolAfter(Activation),
    /// A convolution before an activation–pooling pair: it applies the activation (in cache),
    /// the pooling takes its gradient.
    ConvAct(Activation),
    /// The pooling of such a triple: its input is already activated.
    PoolAfterConv(Activation),
}

/// The fusion of every layer of `spec` (`shapes`: its layer shapes): BatchNorm–ReLU pairs, then
/// activation–pooling pairs whose pooling takes the fused fast path
/// ([`crate::ops::pool::activated::fast_applies`]: 2×2 average or max windows at stride 2),
/// an activation already taken by a BatchNorm excepted; when a convolution comes before such a
/// pair, it applies the activation and the pooling pools only (and still takes the
/// activation's gradient in backward).
fn fusions(spec: &ModelSpec, shapes: &[LayerShape]) -> Vec<Fusion> {
    let layer = |j: usize| spec.layers.get(j);
    let relu = |j: usize| matches!(layer(j), Some(LayerSpec::Act(Activation::Relu)));
    let bn = |j: usize| matches!(layer(j), Some(LayerSpec::BatchNorm { .. }));
    let mut out = vec![Fusion::None; spec.layers.len()];
    for (i, f) in out.iter_mut().enumerate() {
        if (bn(i) && relu(i + 1)) || (relu(i) && i > 0 && bn(i - 1)) {
            *f = Fusion::BnRelu;
        }
    }
    for i in 0..spec.layers.len().saturating_sub(1) {
        let (Some(LayerSpec::Act(a)), Some(pool @ LayerSpec::Pool { .. })) =
            (layer(i), layer(i + 1))
        else {
            continue;
        };
        // the pooling's input as a batch of one
        let in_shape: Vec<usize> = std::iter::once(1)
            .chain(shapes[i + 1].in_shape.clone())
            .collect();
        let fast = (pool.pool_params(in_shape.len() - 2))
            .is_some_and(|p| activated::fast_applies(&in_shape, &p));
        if fast && out[i] == Fusion::None {
            out[i] = Fusion::IntoPool;
            out[i + 1] = Fusion::PoolAfter(*a);
            if i > 0 && matches!(layer(i - 1), Some(LayerSpec::Conv { .. })) {
                out[i - 1] = Fusion::ConvAct(*a);
                out[i + 1] = Fusion::PoolAfterConv(*a);
            }
        }
    }
    out
}

/// One layer for an (unbatched) input shape, with its part of a fused pair.
fn build_layer(
    l: &LayerSpec,
    in_shape: &[usize],
    init: Init,
    fusion: Fusion,
    rng: &mut Rng,
) -> Result<Box<dyn Layer>> {
    Ok(match l {
        LayerSpec::Linear { out, bias } => {
            let mut layer = Linear::new(in_shape[0], *out, *bias);
            init_weight(init, &mut layer.weight.value, rng);
            if let Some(b) = &mut layer.bias {
                init_bias(&mut b.value, in_shape[0], rng);
            }
            Box::new(layer)
        }
        LayerSpec::Flatten => Box::new(Flatten::default()),
        LayerSpec::Act(a) if fusion == Fusion::BnRelu => Box::new(Act::fused(*a)),
        LayerSpec::Act(a) if fusion == Fusion::IntoPool => Box::new(Act::pooled(*a)),
        LayerSpec::Act(a) => Box::new(Act::new(*a)),
        LayerSpec::Dropout { p } => Box::new(Dropout::new(*p)?),
        LayerSpec::BatchNorm { .. } => {
            let spatial = in_shape.len().saturating_sub(1).max(1);
            let mut b = BatchNorm::new(spatial, in_shape[0]);
            b.relu = fusion == Fusion::BnRelu;
            Box::new(b)
        }
        LayerSpec::Conv { bias, .. } => {
            let shape = l.conv_weight_shape(in_shape)?;
            let mut layer = Conv::new(&shape, *bias, l.conv_params().expect("conv"));
            if let Fusion::ConvAct(a) = fusion {
                layer.act = Some(a);
            }
            init_weight(init, &mut layer.weight.value, rng);
            if let Some(b) = &mut layer.bias {
                init_bias(&mut b.value, fans(&shape).0, rng);
            }
            Box::new(layer)
        }
        LayerSpec::Pool { .. } => {
            let nd = in_shape.len() - 1;
            let mut pool = Pool::new(l.pool_params(nd).expect("pool"));
            match fusion {
                Fusion::PoolAfter(a) => pool.act = Some(a),
                Fusion::PoolAfterConv(a) => {
                    pool.act = Some(a);
                    pool.act_applied = true;
                }
                _ => {}
            }
            Box::new(pool)
        }
    })
}
