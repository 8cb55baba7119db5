//! Training a network from a spec on Fashion-MNIST with stride as a library: one epoch on the
//! first `--limit` training images (default 6000), then the test accuracy.
//!
//! ```text
//! apt-get install dataset-fashion-mnist      # the four IDX files in /usr/share/datasets/fashion-mnist
//! cargo run --release --example train_fashion -- [--limit N] [--data DIR] [--spec SPEC]
//! ```
//!
//! Without the dataset it says where to get it and exits cleanly.

use std::path::PathBuf;
use stride::data::{Dataset, Split, CLASSES, DEFAULT_DIR};
use stride::nn::init::Init;
use stride::nn::spec::ModelSpec;
use stride::optim::OptimConfig;
use stride::train::{self, Event, RunConfig, Session};

const SPEC: &str = "conv(6,k=5,p=2) relu maxpool(2) conv(16,k=5) relu maxpool(2) \
                    flatten linear(120) relu linear(84) relu linear(10)";

fn main() -> stride::Result<()> {
    let (mut data, mut limit, mut spec) = (PathBuf::from(DEFAULT_DIR), 6000, SPEC.to_string());
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--data", Some(v)) => data = v.into(),
            ("--limit", Some(v)) => {
                limit = v
                    .parse()
                    .map_err(|_| stride::Error::arg("limit", "must be a number"))?
            }
            ("--spec", Some(v)) => spec = v.clone(),
            _ => {
                return Err(stride::Error::arg(
                    "arguments",
                    "use [--limit N] [--data DIR] [--spec SPEC]",
                ))
            }
        }
    }
    let (mut tr, te) = match (
        Dataset::load(&data, Split::Train, 10),
        Dataset::load(&data, Split::Test, 10),
    ) {
        (Ok(tr), Ok(te)) => (tr, te),
        (Err(e), _) | (_, Err(e)) => {
            println!("Fashion-MNIST is not available, nothing to train on: {e}");
            return Ok(());
        }
    };
    tr.truncate(limit.max(1));

    let spec = ModelSpec::parse(&spec, &[1, 28, 28])?;
    let cfg = RunConfig {
        name: "example".into(),
        init: Init::KaimingUniform,
        optim: OptimConfig::new("adam", 1e-3)?,
        epochs: 1,
        batch_size: 128,
        seed: 0,
        limit: Some(limit),
    };
    let mut session = Session::new(&spec, &cfg)?;
    println!(
        "{spec}\n{} parameters, {} training images",
        session.model.net.num_params(),
        tr.n
    );
    train::run(&mut session, &tr, &te, None, &mut |ev| match ev {
        Event::Step {
            step, steps, loss, ..
        } if step % 10 == 0 || step == steps => {
            println!("  step {step}/{steps}: loss {loss:.4}")
        }
        Event::EpochEnd(m) => println!(
            "epoch {}: train acc {:.4}, test acc {:.4} ({:.0} images/s)",
            m.epoch, m.train_acc, m.test_acc, m.images_per_s
        ),
        _ => {}
    })?;
    let ev = train::evaluate(&mut session.model, &te, 1000)?;
    for (c, (ok, n)) in ev.per_class.iter().enumerate() {
        println!(
            "  {:<12} {:.3}",
            CLASSES[c],
            *ok as f64 / (*n).max(1) as f64
        );
    }
    Ok(())
}
