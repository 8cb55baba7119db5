//! Receptive fields through a stack of windows (conv or pool layers), per spatial axis.
//!
//! Track for each layer: `size` (input pixels one output cell sees), `jump` (input pixels
//! between neighbouring output cells) and `start` (input coordinate of the first pixel seen by
//! output cell 0; negative = in the padding). Through a layer with kernel k, stride s,
//! dilation d and begin padding p, using geometry's `tap_coord`:
//! `first = tap_coord(0, 0) = -p`, `last = tap_coord(0, k-1) = d(k-1) - p`,
//! `size' = size + (last - first)·jump`, `jump' = jump·s`, `start' = start + first·jump`.

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
        "one output cell sees {0}×{0} input pixels (per axis {0}); neighbouring cells are {1} pixel(s) apart; \
         cell 0's field starts at input coordinate {2}",
        rf.size, rf.jump, rf.start
    ));
    Ok(Explanation {
        title: "Receptive field".into(),
        steps: vec![st],
    })
}

/// The course's comparisons (seed 001) for `c` channels in and out: the stack against one
/// layer with the same field, and a 1×1 channel reduction in front of that layer.
pub fn alternatives(layers: &[RfLayer], c: usize) -> Result<Vec<Step>> {
    check(layers)?;
    let rf = through_stack(layers).last().copied().expect("non-empty");
    // counts in 128 bits, checked: c² · f² passes 64 bits for large c
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
    let stack_params = layers.iter().try_fold(0u128, |a, l| {
        let k = l.kernel as u128;
        a.checked_add(mul(&[c, c, k, k])?).ok_or_else(too_large)
    })?;
    let f = rf.size as u128;
    let single = mul(&[c, c, f, f])?;
    let mut steps = vec![];
    let plain = layers.iter().all(|l| l.stride == 1 && l.dilation == 1);
    let mut st = Step::new(format!("Stacked layers against one {f}×{f} layer ({c} channels in and out, 2-D)"))
        .line(format!(
            "the stack: {} = {stack_params} weights",
            layers
                .iter()
                .map(|l| format!("{c}·{c}·{}²", l.kernel))
                .collect::<Vec<_>>()
                .join(" + ")
        ))
        .line(format!("one {f}×{f} layer: {c}·{c}·{f}² = {single} weights"))
        .line(format!(
            "the single layer needs {:.2}× the weights of the stack; the stack also adds {} more non-linearit{}",
            single as f64 / stack_params as f64,
            layers.len() - 1,
            if layers.len() == 2 { "y" } else { "ies" }
        ));
    if plain {
        st = st.line(format!(
            "at stride 1 each weight is one multiply-accumulate per output pixel: {stack_params} against {single} MACs per pixel"
        ));
    }
    steps.push(st);
    let r = (c / 4).max(1);
    let reduced = mul(&[c, r])?
        .checked_add(mul(&[r, c, f, f])?)
        .ok_or_else(too_large)?;
    steps.push(
        Step::new(format!("A 1×1 reduction to {r} channels before the {f}×{f} layer"))
            .line(format!("1×1: {c}·{r} = {} weights; then {f}×{f}: {r}·{c}·{f}² = {} weights", c * r, r * c * f * f))
            .line(format!(
                "total {reduced} against {single} without the reduction ({:.2}×); the 1×1 layer keeps the spatial size \
                 and changes only the number of feature maps",
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
        }
    }

    #[test]
    fn course_table_3_5_7() {
        // seed 001: stacked 3×3 layers see 3, 5, 7 pixels
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
