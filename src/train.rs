//! The training loop. It reports progress as [`Event`]s through a callback (the CLI draws
//! progress bars from them) and, given a run folder, writes after every epoch the checkpoint,
//! `metrics.csv` and `chart.png`, each atomically.
//!
//! Reproducibility: the batch order of epoch `e` and the dropout masks are functions of
//! `(seed, e)` only, and every reduction has a fixed order, so a run repeats bit for bit with
//! the same seed and thread count, and a run resumed from epoch `e` continues exactly as the
//! uninterrupted run would have.

use crate::checkpoint::{self, EpochMetrics, Meta};
use crate::data::{epoch_order, Dataset};
use crate::error::{Error, Result};
use crate::nn::models::Model;
use crate::ops::loss::{argmax, cross_entropy, cross_entropy_backward_over, CrossEntropy};
use crate::optim::Optimizer;
use crate::tensor::Tensor;
use std::path::Path;
use std::time::Instant;

/// Progress of a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// An epoch begins (`epoch` is 1-based).
    EpochStart {
        epoch: usize,
        epochs: usize,
        steps: usize,
    },
    /// A training step finished; loss and accuracy are running means over the epoch so far.
    Step {
        step: usize,
        steps: usize,
        loss: f64,
        acc: f64,
        images_per_s: f64,
    },
    /// The test set is being evaluated.
    Evaluating { epoch: usize },
    /// An epoch finished.
    EpochEnd(&'a EpochMetrics),
    /// The run folder was updated.
    Saved { dir: &'a Path },
}

/// A model, its optimiser and the run's metadata (configuration and history).
pub struct Session {
    pub model: Model,
    pub optim: Box<dyn Optimizer>,
    pub meta: Meta,
}

/// What a new run needs besides the model spec.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Display name of the model (`lenet5`, `custom`).
    pub name: String,
    pub init: crate::nn::init::Init,
    pub optim: crate::optim::OptimConfig,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub limit: Option<usize>,
}

impl Session {
    /// A fresh run: builds and initialises the model (seeded) and its optimiser.
    pub fn new(spec: &crate::nn::spec::ModelSpec, cfg: &RunConfig) -> Result<Session> {
        if cfg.batch_size == 0 {
            return Err(Error::arg("batch-size", "must be at least 1"));
        }
        cfg.optim.validate()?;
        let model = Model::build(spec, cfg.init, cfg.seed)?;
        model.classes()?;
        let meta = Meta {
            format: "stride-checkpoint".into(),
            version: 1,
            model: cfg.name.clone(),
            spec: spec.to_string(),
            epoch: 0,
            epochs: cfg.epochs,
            batch_size: cfg.batch_size,
            seed: cfg.seed,
            init: cfg.init.name().into(),
            limit: cfg.limit,
            optim: cfg.optim.clone(),
            optim_steps: 0,
            params: model.net.param_names(),
            history: Vec::new(),
        };
        Ok(Session {
            model,
            optim: cfg.optim.build(),
            meta,
        })
    }

    /// Continues a run from its checkpoint (a file or run folder); `epochs` raises the target.
    pub fn resume(path: &Path, epochs: Option<usize>) -> Result<Session> {
        let loaded = checkpoint::load(path)?;
        let optim = loaded.optimizer()?;
        let mut meta = loaded.meta;
        if let Some(e) = epochs {
            meta.epochs = e;
        }
        Ok(Session {
            model: loaded.model,
            optim,
            meta,
        })
    }
}

/// Loss and accuracy on a dataset, with per-class accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub acc: f64,
    /// Per class: (correct, total).
    pub per_class: Vec<(usize, usize)>,
}

/// One optimisation step on a batch; returns (mean loss, correct predictions).
pub fn train_step(
    model: &mut Model,
    optim: &mut dyn Optimizer,
    x: Tensor,
    y: &[usize],
) -> Result<(f32, usize)> {
    // on a worker of the pool: the step's parallel loops start there (ops::on_pool)
    crate::ops::on_pool(|| {
        let (loss, correct) = if crate::shards::applies(model, y.len()) {
            // data-parallel: shards of the batch side by side
            crate::shards::forward_backward(model, x, y)?
        } else {
            let ce = forward_loss_backward(&mut model.net, x, y, y.len())?;
            (ce.loss, ce.correct)
        };
        optim.step(model.net.named_params_mut());
        Ok((loss, correct))
    })
}

/// Forward in training mode, cross-entropy loss and backward of the images `x` with labels
/// `y`, part of a batch of `total` images: leaves in `net`'s parameters this part's share of
/// the gradient of the batch's mean loss (the whole of it when `total = y.len()`); returns
/// the part's loss (its images' mean) and correct predictions. The one home of the step's
/// maths, for the whole batch ([`train_step`]) and for each piece of a shard
/// ([`crate::shards`]).
pub fn forward_loss_backward(
    net: &mut crate::nn::Sequential,
    x: Tensor,
    y: &[usize],
    total: usize,
) -> Result<CrossEntropy> {
    let out = net.forward(x, true)?;
    let classes = out.shape()[1];
    let ce = cross_entropy(out.data(), classes, y)?;
    let mut g = out;
    cross_entropy_backward_over(&ce, classes, y, total, g.data_mut());
    net.backward(g)?;
    Ok(ce)
}

/// Class scores (logits) for a batch, in eval mode, keeping nothing for backward.
pub fn predict(model: &mut Model, x: Tensor) -> Result<Tensor> {
    crate::ops::on_pool(|| model.net.infer(x))
}

/// Images per batch when a run evaluates on its test set.
pub const EVAL_BATCH: usize = 1000;

/// Refuses a batch size whose activations and gradients would pass the memory limit.
pub fn check_batch_memory(model: &Model, batch: usize) -> Result<()> {
    crate::limits::check(
        "batch-size",
        model.spec.memory_bytes(batch)?,
        "use a smaller --batch-size or a smaller model",
    )
}

/// Evaluates `model` on `data` in eval mode, in batches of `batch`.
pub fn evaluate(model: &mut Model, data: &Dataset, batch: usize) -> Result<Evaluation> {
    let classes = model.classes()?;
    check_batch_memory(model, batch.clamp(1, data.n.max(1)))?;
    let mut per_class = vec![(0usize, 0usize); classes];
    let mut loss = 0.0f64;
    let idx: Vec<usize> = (0..data.n).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let (x, y) = data.batch(chunk);
        let out = predict(model, x)?;
        let ce = cross_entropy(out.data(), classes, &y)?;
        loss += ce.loss as f64 * chunk.len() as f64;
        for (row, &t) in out.data().chunks(classes).zip(&y) {
            per_class[t].1 += 1;
            if argmax(row) == t {
                per_class[t].0 += 1;
            }
        }
    }
    let n = data.n.max(1) as f64;
    let correct: usize = per_class.iter().map(|c| c.0).sum();
    Ok(Evaluation {
        loss: loss / n,
        acc: correct as f64 / n,
        per_class,
    })
}

/// Trains from epoch `meta.epoch + 1` to `meta.epochs`, evaluating on `test` after each epoch
/// and, when `out_dir` is given, saving the run folder after each epoch.
pub fn run(
    s: &mut Session,
    train: &Dataset,
    test: &Dataset,
    out_dir: Option<&Path>,
    on_event: &mut dyn FnMut(Event),
) -> Result<()> {
    let batch = s.meta.batch_size;
    if batch == 0 {
        return Err(Error::arg("batch-size", "must be at least 1"));
    }
    if train.n == 0 {
        return Err(Error::arg("data", "the training set is empty"));
    }
    check_batch_memory(&s.model, batch.max(EVAL_BATCH))?;
    let steps = train.n.div_ceil(batch);
    for epoch in s.meta.epoch + 1..=s.meta.epochs {
        on_event(Event::EpochStart {
            epoch,
            epochs: s.meta.epochs,
            steps,
        });
        let t0 = Instant::now();
        s.model
            .net
            .reseed(s.meta.seed ^ (epoch as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        let order = epoch_order(train.n, s.meta.seed, epoch);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for (step, chunk) in order.chunks(batch).enumerate() {
            let t = ((epoch - 1) * steps + step) as u64;
            let lr = s.meta.optim.lr_at(t, (s.meta.epochs * steps) as u64);
            s.optim.set_lr(lr);
            let (x, y) = train.batch(chunk);
            let (loss, ok) = train_step(&mut s.model, s.optim.as_mut(), x, &y)?;
            if !loss.is_finite() {
                return Err(Error::arg(
                    "lr",
                    format!(
                        "the loss became {loss} at epoch {epoch}, step {}; training diverged — lower the learning rate",
                        step + 1
                    ),
                ));
            }
            loss_sum += loss as f64 * chunk.len() as f64;
            correct += ok;
            seen += chunk.len();
            on_event(Event::Step {
                step: step + 1,
                steps,
                loss: loss_sum / seen as f64,
                acc: correct as f64 / seen as f64,
                images_per_s: seen as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            });
        }
        let seconds = t0.elapsed().as_secs_f64();
        on_event(Event::Evaluating { epoch });
        let ev = evaluate(&mut s.model, test, EVAL_BATCH)?;
        let m = EpochMetrics {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_acc: correct as f64 / seen as f64,
            test_loss: ev.loss,
            test_acc: ev.acc,
            seconds,
            images_per_s: seen as f64 / seconds.max(1e-9),
        };
        s.meta.history.push(m.clone());
        s.meta.epoch = epoch;
        s.meta.optim_steps = s.optim.steps();
        s.meta.params = s.model.net.param_names();
        on_event(Event::EpochEnd(&m));
        if let Some(dir) = out_dir {
            save_run(dir, s)?;
            on_event(Event::Saved { dir });
        }
    }
    Ok(())
}

/// Writes the run folder: checkpoint, `metrics.csv`, `chart.png`, committed together (see
/// [`crate::rundir`]: a kill at any moment leaves the three files of one epoch).
pub fn save_run(dir: &Path, s: &Session) -> Result<()> {
    let o = &s.meta.optim;
    let schedule = if o.schedule == "constant" {
        ""
    } else {
        " cosine"
    };
    let title = format!("{} ({} lr {}{schedule})", s.meta.model, o.kind, o.lr);
    let chart = crate::viz::chart::render(&title, &s.meta.history)?;
    crate::rundir::commit(dir, s.meta.epoch, |folder| {
        checkpoint::save(
            &folder.join(checkpoint::FILE),
            &s.model,
            s.optim.as_ref(),
            &s.meta,
        )?;
        checkpoint::write_atomic(
            &folder.join("metrics.csv"),
            metrics_csv(&s.meta.history).as_bytes(),
        )?;
        checkpoint::write_atomic(&folder.join("chart.png"), &chart)
    })
}

/// The metrics table as CSV.
pub fn metrics_csv(history: &[EpochMetrics]) -> String {
    let mut s =
        String::from("epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s\n");
    for m in history {
        s += &format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3},{:.1}\n",
            m.epoch, m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.seconds, m.images_per_s
        );
    }
    s
}

/// What [`bench_steps`] measured.
#[derive(Clone, Debug)]
pub struct BenchResult {
    pub images_per_s: f64,
    /// Seconds per step.
    pub step_s: f64,
    /// Per layer: (description, forward s/step, backward s/step) when layer timing was asked.
    pub layers: Vec<(String, f64, f64)>,
    /// Seconds per step outside the layers (loss, optimiser, batch copy), when timed.
    pub other_s: f64,
}

/// Times `steps` training steps on random data of `batch` images (after 2 warm-up steps),
/// optionally per layer.
pub fn bench_steps(
    model: &mut Model,
    optim: &mut dyn Optimizer,
    batch: usize,
    steps: usize,
    per_layer: bool,
) -> Result<BenchResult> {
    let classes = model.classes()?;
    let mut rng = crate::rng::Rng::new(0);
    let mut shape = vec![batch];
    shape.extend(&model.spec.input);
    let numel: usize = shape.iter().product();
    let x = Tensor::new(shape, rng.vec(numel, 0.0, 1.0))?;
    let y: Vec<usize> = (0..batch).map(|_| rng.below(classes)).collect();
    for _ in 0..2 {
        train_step(model, optim, x.clone(), &y)?;
    }
    if per_layer {
        model.net.time_layers();
    }
    let t0 = Instant::now();
    for _ in 0..steps {
        train_step(model, optim, x.clone(), &y)?;
    }
    let total = t0.elapsed().as_secs_f64().max(1e-9);
    let k = steps as f64;
    let layers: Vec<(String, f64, f64)> = match model.net.timings.take() {
        Some(t) => model
            .net
            .layers
            .iter()
            .zip(t)
            .map(|(l, (f, b))| (l.describe(), f / k, b / k))
            .collect(),
        None => Vec::new(),
    };
    let in_layers: f64 = layers.iter().map(|(_, f, b)| f + b).sum();
    Ok(BenchResult {
        images_per_s: (steps * batch) as f64 / total,
        step_s: total / k,
        other_s: if per_layer {
            total / k - in_layers
        } else {
            0.0
        },
        layers,
    })
}
