//! Receptive fields through a stack of windows (conv or pool layers), per spatial axis.
//!
//! Track for each layer: `size` (input pixels one output cell sees), `jump` (input pixels
//! between neighbouring output cells) and `start` (input coordinate of the first pixel seen by
//! output cell 0; negative = in the padding). Through a layer with kernel k, stride s,
//! dilation d and begin padding p, using geometry's `tap_coord`:
//! `first = tap_coord(0, 0) = -p`, `last = tap_coord(0, k-1) = d(k-1) - p`,
//! `size' = size + (last - first)·jump`, `jump' = jump·s`, `start' = start + first·jump`.

use super::{count, thousands};
use crate::error::{Error, Result};
use crate::explain::{Explanation, Step};
use crate::geometry::tap_coord;

/// One window layer as far as receptive fields care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RfLayer {
    pub name: String,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pad_begin: usize,
    /// A pooling window: it grows the field but has no weights.
    pub pool: bool,
}

/// The receptive field of one output cell along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rf {
    /// Input pixels seen.
    pub size: usize,
    /// Input pixels between neighbouring output cells.
    pub jump: usize,
    /// Input coordinate of the first pixel seen by output cell 0.
    pub start: isize,
}

impl Rf {
    /// The input itself: each pixel sees itself.
    pub fn input() -> Self {
        Rf {
            size: 1,
            jump: 1,
            start: 0,
        }
    }

    /// The field after one more layer.
    pub fn through(&self, l: &RfLayer) -> Rf {
        let first = tap_coord(0, 0, l.stride, l.dilation, l.pad_begin);
        let last = tap_coord(0, l.kernel.max(1) - 1, l.stride, l.dilation, l.pad_begin);
        Rf {
            size: self.size + (last - first) as usize * self.jump,
            jump: self.jump * l.stride,
            start: self.start + first * self.jump as isize,
        }
    }
}

/// The field after each layer of a stack (entry `i` = after layer `i`).
pub fn through_stack(layers: &[RfLayer]) -> Vec<Rf> {
    let mut rf = Rf::input();
    layers
        .iter()
        .map(|l| {
            rf = rf.through(l);
            rf
        })
        .collect()
}

fn check(layers: &[RfLayer]) -> Result<()> {
    if layers.is_empty() {
        return Err(Error::arg("kernels", "give at least one layer, e.g. 3,3"));
    }
    for l in layers {
        if l.kernel == 0 || l.stride == 0 || l.dilation == 0 {
            return Err(Error::arg(
                "kernels",
                format!("{}: kernel, stride and dilation must be at least 1", l.name),
            ));
        }
    }
    // the recurrence in 128 bits first: every figure must fit 62 bits for the tables below
    let (mut size, mut jump, mut start) = (1i128, 1i128, 0i128);
    let limit = 1i128 << 62;
    for l in layers {
        let span = (l.kernel as i128 - 1) * l.dilation as i128;
        size += span * jump;
        start -= l.pad_begin as i128 * jump;
        jump *= l.stride as i128;
        if size > limit || jump > limit || start.abs() > limit {
            return Err(Error::TooLarge {
                what: "kernels".into(),
                msg: format!(
                    "at {} the receptive field passes 2^62 pixels; use smaller kernels, strides or dilations",
                    l.name
                ),
            });
        }
    }
    Ok(())
}

/// The layer-by-layer table: size, jump, start, with the recurrence filled in.
pub fn table(layers: &[RfLayer]) -> Result<Explanation> {
    check(layers)?;
    let mut st = Step::new("Receptive field, layer by layer").line(
        "size' = size + dilation·(kernel-1)·jump,  jump' = jump·stride,  start' = start - pad·jump",
    );
    st = st.line(format!(
        "{:<10} {:>6} {:>6} {:>8} {:>4} {:>6} {:>6} {:>6}",
        "layer", "kernel", "stride", "dilation", "pad", "size", "jump", "start"
    ));
    st = st.line(format!(
        "{:<10} {:>6} {:>6} {:>8} {:>4} {:>6} {:>6} {:>6}",
        "input", "", "", "", "", 1, 1, 0
    ));
    let mut rf = Rf::input();
    for l in layers {
        let next = rf.through(l);
        st = st.line(format!(
            "{:<10} {:>6} {:>6} {:>8} {:>4} {:>6} {:>6} {:>6}",
            l.name, l.kernel, l.stride, l.dilation, l.pad_begin, next.size, next.jump, next.start
        ));
        rf = next;
    }
    st = st.conclude(format!(
        "one output cell sees {0}×{0} input pixels (per axis {0}); neighbouring cells are {1} apart; \
         the first output cell's field starts at input coordinate {2} (0 = the first pixel, negative = in the padding)",
        rf.size, count(rf.jump as u64, "pixel"), rf.start
    ));
    Ok(Explanation {
        title: "Receptive field".into(),
        steps: vec![st],
    })
}

/// The course's comparisons (the notebook "Convolutional Neural Networks (CNN): High Level")
/// for `c` channels in and out: the stack against one layer with the same field, and a 1×1
/// channel reduction in front of that layer.
pub fn alternatives(layers: &[RfLayer], c: usize) -> Result<Vec<Step>> {
    check(layers)?;
    let rf = through_stack(layers).last().copied().expect("non-empty");
    // counts in 128 bits, checked: c² · f² passes 64 bits for large c; pooling layers
    // have no weights
    let too_large = || Error::TooLarge {
        what: "channels".into(),
        msg: "the weight counts pass 2^128; use fewer channels".into(),
    };
    let mul = |v: &[u128]| {
        v.iter()
            .try_fold(1u128, |a, &b| a.checked_mul(b))
            .ok_or_else(too_large)
    };
    let c = c as u128;
    let weighted: Vec<&RfLayer> = layers.iter().filter(|l| !l.pool).collect();
    let stack_params = weighted.iter().try_fold(0u128, |a, l| {
        let k = l.kernel as u128;
        a.checked_add(mul(&[c, c, k, k])?).ok_or_else(too_large)
    })?;
    let f = rf.size as u128;
    let single = mul(&[c, c, f, f])?;
    let mut steps = vec![];
    if weighted.is_empty() {
        return Ok(steps);
    }
    let plain = layers.iter().all(|l| l.stride == 1 && l.dilation == 1);
    let terms: Vec<String> = layers
        .iter()
        .map(|l| {
            if l.pool {
                format!("0 ({}: pooling, no weights)", l.name)
            } else {
                format!("{c}·{c}·{}²", l.kernel)
            }
        })
        .collect();
    let extra = weighted.len() - 1;
    let mut st = Step::new(format!(
        "Stacked layers against one {f}×{f} layer ({} in and out, 2-D)",
        count(c, "channel")
    ))
    .line(format!(
        "the stack: {} = {}",
        terms.join(" + "),
        count(stack_params, "weight")
    ))
    .line(format!("one {f}×{f} layer: {c}·{c}·{f}² = {}", count(single, "weight")))
    .line(format!(
        "the single layer needs {:.2}× the weights of the stack; the stack also adds {extra} more non-linearit{}",
        single as f64 / stack_params as f64,
        if extra == 1 { "y" } else { "ies" }
    ));
    if plain {
        st = st.line(format!(
            "at stride 1 each weight is one multiply-accumulate per output pixel: {} against {} MACs per pixel",
            thousands(stack_params),
            thousands(single)
        ));
    }
    steps.push(st);
    // a 1×1 reduction to a quarter of the channels; with fewer than 4 channels there is
    // nothing to reduce
    let r = c / 4;
    if r == 0 {
        return Ok(steps);
    }
    let reduced = mul(&[c, r])?
        .checked_add(mul(&[r, c, f, f])?)
        .ok_or_else(too_large)?;
    steps.push(
        Step::new(format!("A 1×1 reduction to {} before the {f}×{f} layer", count(r, "channel")))
            .line(format!(
                "1×1: {c}·{r} = {}; then {f}×{f}: {r}·{c}·{f}² = {}",
                count(c * r, "weight"),
                count(r * c * f * f, "weight")
            ))
            .line(format!(
                "total {} against {} without the reduction ({:.2}×); the 1×1 layer keeps the spatial size \
                 and changes only the number of feature maps",
                thousands(reduced),
                thousands(single),
                single as f64 / reduced as f64
            )),
    );
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(k: usize, s: usize, d: usize, p: usize) -> RfLayer {
        RfLayer {
            name: "conv".into(),
            kernel: k,
            stride: s,
            dilation: d,
            pad_begin: p,
            pool: false,
        }
    }

    #[test]
    fn course_table_3_5_7() {
        // the course notebook: stacked 3×3 layers see 3, 5, 7 pixels
        let rf = through_stack(&[conv(3, 1, 1, 0), conv(3, 1, 1, 0), conv(3, 1, 1, 0)]);
        let sizes: Vec<usize> = rf.iter().map(|r| r.size).collect();
        assert_eq!(sizes, vec![3, 5, 7]);
    }

    #[test]
    fn stride_pool_dilation() {
        // conv3 p1 → pool2 s2 → conv3 p1: size 3, 4, 8; jump 1, 2, 2; start -1, -1, -3
        let rf = through_stack(&[conv(3, 1, 1, 1), conv(2, 2, 1, 0), conv(3, 1, 1, 1)]);
        assert_eq!(
            rf[2],
            Rf {
                size: 8,
                jump: 2,
                start: -3
            }
        );
        // dilation 2 on a 3-tap kernel spans 5
        assert_eq!(Rf::input().through(&conv(3, 1, 2, 0)).size, 5);
    }
}

/// The input pixels output position `o` sees along one axis of an input of length `input`:
/// `start + o·jump ..= start + o·jump + size - 1`, clipped to the input; `None` when the whole
/// field lies in the padding.
pub fn input_span(
    rf: &crate::analysis::summary::RfAxis,
    o: usize,
    input: usize,
) -> Option<[usize; 2]> {
    let first = rf.start + (o as u64 * rf.jump) as i64;
    let last = first + rf.size as i64 - 1;
    let (lo, hi) = (first.max(0), last.min(input as i64 - 1));
    (lo <= hi).then_some([lo as usize, hi as usize])
}

#[cfg(test)]
mod span_tests {
    use super::*;
    use crate::analysis::summary::RfAxis;

    #[test]
    fn spans_step_by_the_jump_and_clip_to_the_input() {
        // two 3×3 stride-1 layers with padding 1: size 5, jump 1, start -2
        let rf = RfAxis {
            size: 5,
            jump: 1,
            start: -2,
        };
        assert_eq!(input_span(&rf, 0, 8), Some([0, 2]));
        assert_eq!(input_span(&rf, 3, 8), Some([1, 5]));
        assert_eq!(input_span(&rf, 7, 8), Some([5, 7]));
        let strided = RfAxis {
            size: 2,
            jump: 2,
            start: 0,
        };
        assert_eq!(input_span(&strided, 2, 8), Some([4, 5]));
    }
}
