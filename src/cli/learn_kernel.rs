//! `stride learn-kernel`: d2l 6.2.4 — learn a kernel by gradient descent on the squared error
//! of the correlation (see `stride::learn_kernel`); prints the loss and kernel every few steps
//! and the final kernel, or works the first step out with `--explain`.

use super::{args, grad, render};
use clap::Args;
use std::path::PathBuf;
use stride::explain::fmt_num;
use stride::geometry::parse_per_axis;
use stride::learn_kernel::{explain_first_step, learn, LearnConfig};

#[derive(Args, Debug)]
#[command(
    after_help = "Example (d2l 6.2.4: the edge detector [1, -1] learned from an image and its edges):\n  \
  stride learn-kernel --input '[[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1],[1,1,0,0,0,0,1,1]]' \\\n      \
  --target '[[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0],[0,1,0,0,0,-1,0]]' --kernel-size 1,2"
)]
pub struct LearnKernelArgs {
    /// Input X: one single-channel image (inline literal or .npy).
    #[arg(long, value_name = "X")]
    input: String,
    /// Target Y: what X ⋆ K should give (the correlation's shape: no padding, stride 1).
    #[arg(long, value_name = "Y", allow_hyphen_values = true)]
    target: String,
    /// Kernel size per spatial axis: KH,KW (1,2 for a horizontal edge detector).
    #[arg(long, value_name = "KH,KW")]
    kernel_size: String,
    /// Learning rate.
    #[arg(long, value_name = "R", default_value_t = 0.03)]
    lr: f32,
    /// Gradient-descent steps.
    #[arg(long, value_name = "N", default_value_t = 10)]
    steps: usize,
    /// Print the loss and kernel every this many steps.
    #[arg(long, value_name = "N", default_value_t = 2)]
    every: usize,
    /// Seed of the starting kernel (uniform in ±1/√taps).
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Write the learned kernel to this .npy file, shape (1, 1, KH, KW).
    #[arg(long, value_name = "K.npy")]
    output: Option<PathBuf>,
    /// Work the first step out: prediction, loss, the kernel gradient entry by entry, the update.
    #[arg(long)]
    explain: bool,
}

fn kernel_text(k: &stride::Tensor) -> String {
    let v: Vec<String> = k.data().iter().map(|&v| fmt_num(v)).collect();
    format!("[{}]", v.join(", "))
}

pub fn run(a: LearnKernelArgs) -> anyhow::Result<()> {
    let cfg = LearnConfig {
        kernel: parse_per_axis("kernel-size", &a.kernel_size)?,
        lr: a.lr,
        steps: a.steps,
        seed: a.seed,
    };
    let x = args::load_tensor("input", &a.input)?;
    let y = args::load_tensor("target", &a.target)?;
    if a.explain {
        print!(
            "{}",
            render::explanation(&explain_first_step(&x, &y, &cfg)?)
        );
        return Ok(());
    }
    let out = learn(&x, &y, &cfg)?;
    // written (atomically, by the writer every command shares) before anything is printed
    let wrote = match &a.output {
        Some(path) => grad::save_all(&[("output", path.as_path(), out.kernel())])?,
        None => vec![],
    };
    println!(
        "learning a {} kernel: loss = Σ (X ⋆ K − Y)², lr {}, {} steps; start K = {}",
        cfg.kernel
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join("×"),
        fmt_num(cfg.lr),
        cfg.steps,
        kernel_text(&out.start)
    );
    let every = a.every.max(1);
    for r in out
        .steps
        .iter()
        .filter(|r| r.step % every == 0 || r.step == cfg.steps)
    {
        println!(
            "step {:>3}: loss {:>10.4}  K = {}",
            r.step,
            r.loss,
            kernel_text(&r.kernel)
        );
    }
    println!("final loss {:.6}", out.final_loss);
    print!(
        "{}",
        render::tensor("learned kernel", out.kernel(), cfg.kernel.len())
    );
    for line in wrote {
        println!("{line}");
    }
    Ok(())
}
