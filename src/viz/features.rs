//! Feature-map and kernel pictures of a model (d2l's "look at the activations for a sweater
//! and a coat"): the input images, every convolution and pooling layer's output as a
//! labelled grid (one row per image, one cell per channel), and every convolution's kernels
//! (one row per filter, one cell per input channel). Works for any spec: 1-D maps are drawn
//! as strips, 3-D maps by their middle depth slice. Positions and channels are 1-based.

use super::colormap::ColorMap;
use super::grid::{Cell, Grid, Row};
use crate::error::{Error, Result};
use crate::nn::models::Model;
use crate::nn::spec::LayerSpec;
use crate::tensor::{fmt_shape, Tensor};

/// Cells per row when one image's channels are laid out (more wrap to the next row).
const WRAP: usize = 8;
/// Most channels (and filters, and kernel input channels) drawn per layer; the title says
/// when some are left out.
pub const MAX_CHANNELS: usize = 32;
const MAX_FILTERS: usize = 16;

/// One input image for [`features`]: its label ("test image 7: Coat") and pixels
/// `(C, *spatial)`, shaped as the model's input.
#[derive(Clone, Debug)]
pub struct Input {
    pub label: String,
    pub x: Tensor,
}

/// A picture: a file name (`03-layer2-features.png`), what it shows, and its grid.
#[derive(Clone, Debug)]
pub struct Picture {
    pub file: String,
    pub about: String,
    pub grid: Grid,
}

impl Picture {
    /// The PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>> {
        self.grid.render()
    }
}

/// The `(h, w)` plane drawn for spatial dims `sp` and how to pick its values from one
/// channel's data: 1-D → a `1 × L` strip, 2-D as is, 3-D → the middle depth slice.
fn plane(sp: &[usize]) -> (usize, usize, usize) {
    match sp {
        [l] => (1, *l, 0),
        [h, w] => (*h, *w, 0),
        [d, h, w] => (*h, *w, (d / 2) * h * w),
        _ => (1, sp.iter().product(), 0),
    }
}

/// Cells of one `(C, *spatial)` block, channels `0..take` labelled `label(c)` (1-based).
fn cells(data: &[f32], sp: &[usize], take: usize, label: impl Fn(usize) -> String) -> Vec<Cell> {
    let (h, w, off) = plane(sp);
    let len: usize = sp.iter().product();
    (0..take)
        .map(|c| Cell {
            label: label(c),
            h,
            w,
            values: data[c * len + off..][..h * w].to_vec(),
        })
        .collect()
}

/// Rows for a batch `(N, C, *spatial)`: one row per image (a single image wraps every
/// [`WRAP`] channels), each row labelled with its image.
fn batch_rows(y: &Tensor, inputs: &[Input], take: usize, prefix: &str) -> Vec<Row> {
    let (n, c) = (y.shape()[0], y.shape()[1]);
    let sp = &y.shape()[2..];
    let per: usize = c * sp.iter().product::<usize>();
    let mut rows = vec![];
    for (i, input) in inputs.iter().enumerate().take(n) {
        let all = cells(&y.data()[i * per..][..per], sp, take, |k| {
            format!("{prefix}{}", k + 1)
        });
        if inputs.len() == 1 {
            for (j, chunk) in all.chunks(WRAP).enumerate() {
                let label = if j == 0 {
                    input.label.clone()
                } else {
                    String::new()
                };
                rows.push(Row {
                    label,
                    cells: chunk.to_vec(),
                });
            }
        } else {
            rows.push(Row {
                label: input.label.clone(),
                cells: all,
            });
        }
    }
    rows
}

fn cut_note(shown: usize, all: usize, what: &str) -> String {
    if shown < all {
        format!(" (first {shown} of {all} {what})")
    } else {
        String::new()
    }
}

/// The kernels of a convolution weight `(Cout, Cin/groups, *k)`: one row per filter.
fn kernel_grid(layer: usize, describe: &str, w: &Tensor) -> Grid {
    let (cout, cin) = (w.shape()[0], w.shape()[1]);
    let k = &w.shape()[2..];
    let (rows_n, cols_n) = (cout.min(MAX_FILTERS), cin.min(MAX_FILTERS));
    let per = cin * k.iter().product::<usize>();
    let rows = if cin == 1 {
        // one kernel per filter: the filters side by side, wrapped
        let all = cells(&w.data()[..rows_n * per], k, rows_n, |f| {
            format!("filter {}", f + 1)
        });
        all.chunks(WRAP)
            .map(|c| Row {
                label: String::new(),
                cells: c.to_vec(),
            })
            .collect()
    } else {
        (0..rows_n)
            .map(|f| Row {
                label: format!("filter {}", f + 1),
                cells: cells(&w.data()[f * per..][..per], k, cols_n, |c| {
                    format!("in {}", c + 1)
                }),
            })
            .collect()
    };
    Grid {
        title: format!(
            "Layer {layer} kernels: {describe}, weight {}{}{}",
            fmt_shape(w.shape()),
            cut_note(rows_n, cout, "filters"),
            cut_note(cols_n, cin, "input channels")
        ),
        rows,
        map: ColorMap::Diverging,
        cell_px: 60,
    }
}

/// Runs `inputs` through `model` and returns the pictures: the input, then per selected layer
/// (1-based numbers as in `stride summary`; all convolution and pooling layers when `layers`
/// is `None`) its feature maps, and for convolutions its kernels.
pub fn features(
    model: &mut Model,
    inputs: &[Input],
    layers: Option<&[usize]>,
) -> Result<Vec<Picture>> {
    let n_layers = model.spec.layers.len();
    if let Some(sel) = layers {
        if let Some(&bad) = sel.iter().find(|&&l| l == 0 || l > n_layers) {
            return Err(Error::arg(
                "layers",
                format!("layer {bad} does not exist; the model has layers 1 to {n_layers} (see `stride summary`)"),
            ));
        }
    }
    if inputs.is_empty() {
        return Err(Error::arg("image", "give at least one image"));
    }
    let want = |i: usize| match layers {
        Some(sel) => sel.contains(&(i + 1)),
        None => matches!(
            model.spec.layers[i],
            LayerSpec::Conv { .. } | LayerSpec::Pool { .. }
        ),
    };
    let last = (0..n_layers).rev().find(|&i| want(i)).map_or(0, |i| i + 1);
    let mut shape = vec![inputs.len()];
    shape.extend(&model.spec.input);
    let mut data = Vec::with_capacity(shape.iter().product());
    for input in inputs {
        if input.x.shape() != model.spec.input.as_slice() {
            return Err(Error::arg(
                "input",
                format!(
                    "{} is {} but the model takes {}",
                    input.label,
                    fmt_shape(input.x.shape()),
                    fmt_shape(&model.spec.input)
                ),
            ));
        }
        data.extend_from_slice(input.x.data());
    }
    let mut x = Tensor::new(shape, data)?;
    let c_in = x.shape()[1];
    let mut pics = vec![Picture {
        file: "00-input.png".into(),
        about: "the input".into(),
        grid: Grid {
            title: format!("Input {}", fmt_shape(&model.spec.input)),
            rows: batch_rows(&x, inputs, c_in.min(MAX_CHANNELS), "channel "),
            map: if c_in == 1 {
                ColorMap::Gray
            } else {
                ColorMap::Viridis
            },
            cell_px: 112,
        },
    }];
    for i in 0..last {
        x = model.net.layers[i].forward(x, false)?;
        if !want(i) || x.rank() < 3 {
            continue;
        }
        let describe = model.net.layers[i].describe();
        let c = x.shape()[1];
        let take = c.min(MAX_CHANNELS);
        pics.push(Picture {
            file: format!("{:02}-layer{}-features.png", pics.len(), i + 1),
            about: format!("layer {} feature maps", i + 1),
            grid: Grid {
                title: format!(
                    "Layer {}: {describe} → {}{}",
                    i + 1,
                    fmt_shape(&x.shape()[1..]),
                    cut_note(take, c, "channels")
                ),
                rows: batch_rows(&x, inputs, take, "ch "),
                map: ColorMap::Viridis,
                cell_px: 84,
            },
        });
        if matches!(model.spec.layers[i], LayerSpec::Conv { .. }) {
            let params = model.net.layers[i].params();
            if let Some(w) = params.iter().find(|p| p.name == "weight") {
                pics.push(Picture {
                    file: format!("{:02}-layer{}-kernels.png", pics.len(), i + 1),
                    about: format!("layer {} kernels", i + 1),
                    grid: kernel_grid(i + 1, &describe, &w.value),
                });
            }
        }
    }
    Ok(pics)
}
