//! A convolution and its explanation, with stride as a library: the 5×5 input and 3×3 kernel of
//! a pen-and-paper exercise, stride 2 and padding 1, computed by the fast path and then narrated
//! step by step from the direct reference (the numbers narrated are the numbers computed).
//!
//! ```text
//! cargo run --release --example conv_explain
//! ```

use stride::explain::conv::{explain, ExplainKind};
use stride::geometry::PaddingSpec;
use stride::io::literal;
use stride::ops::conv::{conv, ConvAlgo, ConvParams};

fn main() -> stride::Result<()> {
    // a 2-D literal is (H, W): add batch and channel axes → input (1, 1, 5, 5), kernel (1, 1, 3, 3)
    let x = literal::parse(
        "input",
        "[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]",
    )?
    .unsqueeze0()
    .unsqueeze0();
    let w = literal::parse("kernel", "[[4,3,3],[5,5,5],[2,4,3]]")?
        .unsqueeze0()
        .unsqueeze0();
    let p = ConvParams {
        stride: vec![2],
        padding: PaddingSpec::Explicit(vec![(1, 1)]),
        ..Default::default()
    };
    // out = floor((5 + 1 + 1 - 3) / 2) + 1 = 3 per axis
    let y = conv(&x, &w, None, &p, ConvAlgo::Auto)?;
    println!(
        "input {:?} * kernel {:?} → output {:?}",
        x.shape(),
        w.shape(),
        y.shape()
    );
    for row in y.data().chunks(y.shape()[3]) {
        println!("  {row:?}");
    }

    let ex = explain(&x, &w, None, &p, ExplainKind::Direct)?;
    println!("\n{}", ex.title);
    for (i, step) in ex.steps.iter().take(4).enumerate() {
        println!("\n{}. {}", i + 1, step.heading);
        for l in &step.lines {
            println!("   {l}");
        }
        for t in &step.tensors {
            // one line per row of the last axis
            println!("   {} {:?}:", t.name, t.tensor.shape());
            let w = t.tensor.shape().last().copied().unwrap_or(1).max(1);
            for row in t.tensor.data().chunks(w) {
                println!("     {row:?}");
            }
        }
        for l in &step.after {
            println!("   {l}");
        }
    }
    println!(
        "\n… {} steps in all (`stride conv ... --explain` renders them as matrices)",
        ex.steps.len()
    );
    Ok(())
}
