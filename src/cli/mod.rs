//! The command line: one file per subcommand, no maths here. `main` → `run` → exit code:
//! 0 success, 2 bad usage or input (clap errors too), 1 runtime failure.

// Every command prints through these (they shadow std's `print!` / `println!` in this module
// and its children): a closed stdout (`stride summary lenet5 | head -1`) ends the command
// quietly with exit code 0, as `head` expects, instead of std's panic. Every file a command
// writes is complete before it prints; `train`, whose printing must not stop the work, prints
// through a writer that ignores the error instead.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}
macro_rules! println {
    () => {
        print!("\n")
    };
    ($($arg:tt)*) => {{
        print!($($arg)*);
        print!("\n");
    }};
}

mod args;
mod bench;
mod bench_train;
mod conv;
mod conv_flags;
mod conv_transpose;
mod eval;
mod export;
mod features;
mod grad;
mod import;
mod learn_kernel;
mod pool;
mod predict;
mod receptive_field;
mod render;
mod shape;
mod summary;
mod train;

use clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;
use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// stride: convolutional neural networks from first principles.
#[derive(Parser, Debug)]
#[command(name = "stride", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Convolution forward and, with --grad-output, backward (1-D, 2-D or 3-D, PyTorch semantics); --explain shows the worked steps.
    Conv(conv::ConvArgs),
    /// Transposed convolution (PyTorch conv_transpose1d/2d/3d), forward and with --grad-output backward.
    ConvTranspose(conv_transpose::ConvTransposeArgs),
    /// One layer's output shape with the formula filled in, its parameters, cost and memory.
    Shape(shape::ShapeArgs),
    /// How the receptive field grows through a stack of layers, and what the alternatives cost.
    ReceptiveField(receptive_field::RfArgs),
    /// A whole network layer by layer: shapes, parameters, MACs/FLOPs, activation memory, receptive fields.
    Summary(summary::SummaryArgs),
    /// Train a network (preset or spec) on Fashion-MNIST; writes checkpoint, metrics.csv, chart.png.
    Train(train::TrainArgs),
    /// Test accuracy of a checkpoint, overall and per class.
    Eval(eval::EvalArgs),
    /// Classify one image (PNG or .npy) with a checkpoint.
    Predict(predict::PredictArgs),
    /// Benchmarks on the standard shapes (GFLOP/s; ratios to PyTorch given its results).
    Bench(bench::BenchArgs),
    /// PNG pictures of a trained model's input, feature maps (per conv and pooling layer) and kernels.
    Features(features::FeaturesArgs),
    /// Learn a kernel from an input and its target by gradient descent (d2l 6.2.4).
    LearnKernel(learn_kernel::LearnKernelArgs),
    /// A trained model as an ONNX file (opset 17) for ONNX Runtime, OpenVINO, TensorRT.
    Export(export::ExportArgs),
    /// An ONNX model, or PyTorch weights (safetensors) with --spec, as a run folder.
    Import(import::ImportArgs),
    /// Pooling forward and backward: max, min, avg, lp, soft, adaptive, global, k-max, fractional, max-unpool.
    Pool(pool::PoolArgs),
    /// A local web page showing convolution, pooling, their gradients and models step by step.
    Serve(crate::serve::ServeArgs),
}

/// Parses the command line, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // --help, --version, and the help shown when nothing is given: as clap prints them
        Err(e) if !e.use_stderr() || e.kind() == DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
        Err(e) => {
            eprintln!("{}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{e}`, not `{e:#}`: a stride error's message already ends with its cause
            eprintln!("error: {e}");
            let usage = e
                .downcast_ref::<stride::Error>()
                .is_some_and(stride::Error::is_usage);
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Writes to stdout for [`print!`]: on a closed pipe, a quiet exit 0 (nothing left to show);
/// on any other write error, exit 1 with the reason on stderr.
pub fn write_stdout(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Asks glibc to keep freed memory instead of returning it to the kernel: training and the
/// benchmarks free and re-allocate the same large tensors over and over, and handing them back
/// costs a page fault per 4 KiB on the next use (measured: ~28k faults per convnet step, 6-14%
/// of the step time; max-pool backward on 8×64×112×112 at 8 ms instead of 1.5 ms in some
/// benchmark runs). A process-wide setting, so the binary makes it, not the library.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; called before the worker threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// A usage error on one line: clap's message and tip, then where to read more
/// (`error: unexpected argument '--pading' found; tip: a similar argument exists: '--padding';
/// see 'stride conv --help'`).
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    // the subcommand the user named, if any
    let mut command = match std::env::args().nth(1) {
        Some(sub) if Cli::command().find_subcommand(&sub).is_some() => format!("stride {sub}"),
        _ => "stride".to_string(),
    };
    let mut parts = vec![];
    for para in text.split("\n\n") {
        let lines: Vec<&str> = para
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        match lines.first() {
            None => {}
            Some(l) if l.starts_with("For more information") => {}
            Some(l) if l.starts_with("Usage: ") => {
                // the command's words, before its first argument
                let words: Vec<&str> = l["Usage: ".len()..]
                    .split_whitespace()
                    .take_while(|w| !w.starts_with(['-', '[', '<']))
                    .collect();
                command = words.join(" ");
            }
            // a heading and its list ("required arguments were not provided:" + one per line)
            Some(l) if l.ends_with(':') => parts.push(format!("{l} {}", lines[1..].join(", "))),
            Some(_) => parts.push(lines.join(" ")),
        }
    }
    format!("{}; see '{command} --help'", parts.join("; "))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Conv(a) => conv::run(a),
        Command::ConvTranspose(a) => conv_transpose::run(a),
        Command::Shape(a) => shape::run(a),
        Command::ReceptiveField(a) => receptive_field::run(a),
        Command::Summary(a) => summary::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Pool(a) => pool::run(a),
        Command::Features(a) => features::run(a),
        Command::LearnKernel(a) => learn_kernel::run(a),
        Command::Serve(a) => crate::serve::run(a),
        Command::Export(a) => export::run(a),
        Command::Import(a) => import::run(a),
    }
}
