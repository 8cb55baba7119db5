//! `stride train`: trains a preset or a spec'd network on Fashion-MNIST (or any MNIST-format
//! folder), with a progress bar per epoch, and writes a run folder (checkpoint, metrics.csv,
//! chart.png). `--resume DIR` continues a run from its last checkpoint.

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use stride::data::{Dataset, Split, CLASSES, DEFAULT_DIR};
use stride::nn::init::Init;
use stride::nn::models;
use stride::optim::OptimConfig;
use stride::train::{self, Event, RunConfig, Session};

/// `println!` that never fails: progress output must not cost the run, so once stdout is closed
/// (`stride train ... | head -1`) the lines are dropped and training goes on.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride train lenet5                      # d2l recipe: SGD lr 0.9, batch 256, 10 epochs, Xavier\n  \
  stride train lenet5-relu --epochs 5 --out runs/relu\n  \
  stride train 'conv(8,k=3,p=1) relu maxpool(2) flatten linear(10)' --limit 5000 --epochs 2\n  \
  stride train @mynet.txt --optimizer sgd --lr 0.1 --momentum 0.9\n  \
  stride train --resume runs/relu --epochs 10\n\n\
Presets: lenet5, lenet5-relu, convnet.")]
pub struct TrainArgs {
    /// A preset (lenet5, lenet5-relu, convnet), an inline spec, or @file / a path with a spec.
    #[arg(value_name = "MODEL", required_unless_present = "resume")]
    model: Option<String>,
    /// Number of epochs (with --resume: the new total).
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    #[arg(long, value_name = "B", default_value_t = 256)]
    batch_size: usize,
    /// Learning rate (default: the model's; 0.9 for lenet5, 1e-3 otherwise).
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// sgd or adam (default: the model's; sgd for lenet5, adam otherwise).
    #[arg(long, value_name = "OPT")]
    optimizer: Option<String>,
    /// Learning-rate schedule: constant or cosine (default: the model's; cosine for convnet).
    #[arg(long, value_name = "S")]
    lr_schedule: Option<String>,
    /// SGD momentum.
    #[arg(long, value_name = "M", default_value_t = 0.0)]
    momentum: f64,
    /// L2 weight decay (SGD and Adam, PyTorch's `weight_decay`).
    #[arg(long, value_name = "WD", default_value_t = 0.0)]
    weight_decay: f64,
    /// Weight init: default (PyTorch), xavier, xavier-normal, kaiming, kaiming-normal.
    #[arg(long, value_name = "INIT")]
    init: Option<String>,
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Run folder (default: runs/<model>-<timestamp>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Folder with the MNIST-format IDX files.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    data: PathBuf,
    /// Use only the first N training images (quick runs).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "lr", "lr_schedule", "optimizer", "init", "seed", "limit", "out"])]
    resume: Option<PathBuf>,
}

/// Sets the size of the global rayon pool (default: all cores).
pub fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(t) = threads {
        if t == 0 {
            return Err(stride::Error::arg("threads", "must be at least 1").into());
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .context("cannot start the thread pool")?;
    }
    Ok(())
}

/// `YYYYMMDD-HHMMSS` (UTC) for run folder names.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Loads both splits (the training one limited to `limit` images).
pub fn load_data(dir: &Path, limit: Option<usize>) -> anyhow::Result<(Dataset, Dataset)> {
    let mut tr = Dataset::load(dir, Split::Train, CLASSES.len())?;
    if let Some(n) = limit {
        if n == 0 {
            return Err(stride::Error::arg("limit", "must be at least 1").into());
        }
        tr.truncate(n);
    }
    let te = Dataset::load(dir, Split::Test, CLASSES.len())?;
    Ok((tr, te))
}

fn new_session(a: &TrainArgs) -> anyhow::Result<(Session, PathBuf)> {
    let model_arg = a.model.as_deref().unwrap_or_default();
    let (spec, name, defaults) = models::resolve(model_arg)?;
    let init: Init = match &a.init {
        Some(s) => s.parse()?,
        None => defaults.init,
    };
    let kind = a.optimizer.clone().unwrap_or(defaults.optimizer);
    let optim = OptimConfig::new(&kind, a.lr.unwrap_or(defaults.lr))?
        .with_schedule(a.lr_schedule.as_deref().unwrap_or(&defaults.schedule))?;
    let optim = optim.with_momentum(a.momentum, a.weight_decay)?;
    let cfg = RunConfig {
        name: name.clone(),
        init,
        optim,
        epochs: a.epochs.unwrap_or(10),
        batch_size: a.batch_size,
        seed: a.seed,
        limit: a.limit,
    };
    let session = Session::new(&spec, &cfg)?;
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{name}-{}", timestamp())));
    Ok((session, dir))
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    set_threads(a.threads)?;
    let (mut s, dir) = match &a.resume {
        Some(d) => {
            // the run folder, whether the folder or its checkpoint file was given
            let dir = match d.is_file() {
                true => d.parent().map_or(PathBuf::from("."), Path::to_path_buf),
                false => d.clone(),
            };
            (Session::resume(d, a.epochs)?, dir)
        }
        None => new_session(&a)?,
    };
    let (tr, te) = load_data(&a.data, s.meta.limit)?;
    // the folder is checked before the first epoch: a new run never replaces another's
    // checkpoint, a resumed one starts by removing what a killed run left behind
    let created = match &a.resume {
        Some(_) => {
            stride::rundir::prepare_resume(&dir)?;
            false
        }
        None => stride::rundir::prepare_new(&dir)?,
    };
    let m = &s.meta;
    say!(
        "{}: {}, {} lr {}{}{}, batch {}, {} training / {} test images, {} → {}",
        m.model,
        stride::analysis::count(s.model.net.num_params() as u64, "parameter"),
        m.optim.kind,
        m.optim.lr,
        if m.optim.schedule != "constant" {
            format!(" ({} schedule)", m.optim.schedule)
        } else {
            String::new()
        } + &if m.optim.momentum != 0.0 {
            format!(" momentum {}", m.optim.momentum)
        } else {
            String::new()
        },
        if m.optim.weight_decay != 0.0 {
            format!(" weight decay {}", m.optim.weight_decay)
        } else {
            String::new()
        },
        m.batch_size,
        stride::analysis::thousands(tr.n as u64),
        stride::analysis::thousands(te.n as u64),
        stride::analysis::count(rayon::current_num_threads() as u64, "thread"),
        dir.display()
    );
    if m.epoch >= m.epochs {
        say!(
            "already trained for {} of {} epochs; pass --epochs N to train longer",
            m.epoch,
            m.epochs
        );
        return Ok(());
    }
    if m.epoch > 0 {
        say!("resuming after epoch {}", m.epoch);
    }
    let style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
        .expect("template")
        .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    let result = train::run(&mut s, &tr, &te, Some(&dir), &mut |ev| match ev {
        Event::EpochStart {
            epoch,
            epochs,
            steps,
        } => {
            let b = ProgressBar::new(steps as u64).with_style(style.clone());
            b.set_prefix(format!("{epoch}/{epochs}"));
            bar = Some(b);
        }
        Event::Step {
            step,
            loss,
            acc,
            images_per_s,
            ..
        } => {
            if let Some(b) = &bar {
                b.set_position(step as u64);
                b.set_message(format!(
                    "loss {loss:.4} acc {acc:.4} {images_per_s:.0} img/s"
                ));
            }
        }
        Event::Evaluating { .. } => {
            if let Some(b) = &bar {
                b.set_message("evaluating on the test set".to_string());
            }
        }
        Event::EpochEnd(m) => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            say!(
                "epoch {:>2}: train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.2} s, {:.0} img/s",
                m.epoch, m.train_loss, m.train_acc, m.test_loss, m.test_acc, m.seconds, m.images_per_s
            );
        }
        Event::Saved { .. } => {}
    });
    if result.is_err() && created {
        // a new run that failed before its first save leaves no folder (only removed if empty)
        let _ = std::fs::remove_dir(&dir);
    }
    result?;
    say!(
        "wrote {} (checkpoint.safetensors, metrics.csv, chart.png)",
        dir.display()
    );
    Ok(())
}
