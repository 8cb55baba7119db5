//! Text rendering of tensors and explanations: matrices with aligned columns.

use stride::explain::{fmt_num, Explanation, NUMBERING};
use stride::tensor::fmt_shape;
use stride::Tensor;

/// Characters a printed matrix row may take before it is split into bands of columns.
const LINE: usize = 110;
/// Columns beyond which a mostly-zero matrix shows its zeros as `·`.
const WIDE: usize = 12;

/// Most values a command prints; larger results go to a file (`--output`). Printing takes
/// about 40 bytes of memory per value and is unreadable long before this.
pub const MAX_PRINT: usize = 1 << 20;

/// Refuses to print a result of more than [`MAX_PRINT`] values, naming `--output`.
pub fn printable(t: &Tensor) -> stride::Result<()> {
    if t.numel() > MAX_PRINT {
        return Err(stride::Error::TooLarge {
            what: "output".into(),
            msg: format!(
                "the result {} has {} values, too many to print (at most {MAX_PRINT}); write it \
                 to a file with --output Y.npy",
                fmt_shape(t.shape()),
                t.numel()
            ),
        });
    }
    Ok(())
}

/// Renders `t` as matrices: the last `min(spatial, 2)` axes form each matrix (a 1-D signal is
/// one row); leading axes label the blocks, e.g. `output[0, 1]`.
pub fn tensor(name: &str, t: &Tensor, spatial: usize) -> String {
    let shape = t.shape();
    let r = shape.len();
    let mat_axes = spatial.clamp(1, 2).min(r);
    let (rows, cols) = match mat_axes {
        0 => (1, 1),
        1 => (1, shape[r - 1]),
        _ => (shape[r - 2], shape[r - 1]),
    };
    // a long column vector prints as a row (saying so) rather than one number per line
    let (rows, cols, column_as_row) = if cols == 1 && rows > WIDE {
        (1, rows, true)
    } else {
        (rows, cols, false)
    };
    let block = rows * cols;
    let lead = &shape[..r - mat_axes];
    // a wide, mostly-zero matrix (a Toeplitz matrix) shows its zeros as `·` so the kernel's
    // copies stand out
    let zeros = t.data().iter().filter(|&&v| v == 0.0).count();
    let sparse = cols > WIDE && zeros * 3 > t.numel() * 2;
    let cells: Vec<String> = t
        .data()
        .iter()
        .map(|&v| {
            if sparse && v == 0.0 {
                "·".into()
            } else {
                fmt_num(v)
            }
        })
        .collect();
    let width = cells.iter().map(|c| c.chars().count()).max().unwrap_or(1);
    // wide matrices print in bands of columns that fit a terminal line
    let band = (LINE / (width + 2)).max(1);
    let mut out = String::new();
    let nblocks = t.numel().checked_div(block).unwrap_or(0);
    for bi in 0..nblocks {
        // leading multi-index of this block
        let mut idx = vec![0; lead.len()];
        let mut rem = bi;
        for a in (0..lead.len()).rev() {
            idx[a] = rem % lead[a];
            rem /= lead[a];
        }
        if bi == 0 {
            let note = if column_as_row {
                ", a column shown as a row"
            } else {
                ""
            };
            out.push_str(&format!("{name} {}{note}:\n", fmt_shape(shape)));
        }
        if nblocks > 1 {
            // block indices 1-based, as every position a learner reads
            let ix: Vec<String> = idx.iter().map(|i| (i + 1).to_string()).collect();
            out.push_str(&format!("[{}]\n", ix.join(", ")));
        }
        for c0 in (0..cols).step_by(band) {
            let c1 = (c0 + band).min(cols);
            if cols > band {
                out.push_str(&format!("  columns {}–{} of {cols}:\n", c0 + 1, c1));
            }
            for rr in 0..rows {
                let row: Vec<String> = (c0..c1)
                    .map(|c| format!("{:>width$}", cells[bi * block + rr * cols + c]))
                    .collect();
                out.push_str(&format!("  [ {} ]\n", row.join("  ")));
            }
        }
    }
    out
}

/// Renders an explanation: numbered steps, their text, then their tensors.
pub fn explanation(ex: &Explanation) -> String {
    let mut out = format!("== {} ==\n({NUMBERING})\n", ex.title);
    for (i, st) in ex.steps.iter().enumerate() {
        out.push_str(&format!("\nStep {}. {}\n", i + 1, st.heading));
        for l in &st.lines {
            out.push_str(&format!("  {l}\n"));
        }
        for s in &st.tensors {
            for l in tensor(&s.name, &s.tensor, s.spatial).lines() {
                out.push_str(&format!("  {l}\n"));
            }
        }
        for l in &st.after {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out
}
