//! Single images for `stride predict`: a PNG (any colour type or bit depth: converted to 8-bit
//! grayscale, alpha composited on black, resized by area averaging when its size differs) or a
//! `.npy` array `(H, W)`, `(1, H, W)` or `(1, 1, H, W)`. Result: `(1, H, W)` in `[0, 1]`, plus
//! notes describing any conversion (the library does not print; the CLI shows them).

use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Tensor};
use std::path::Path;

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Decodes a PNG into grayscale `[0, 1]` values, row-major, with its width and height.
fn read_png(path: &Path) -> Result<(Vec<f32>, usize, usize, Vec<String>)> {
    let bytes = crate::limits::read_file(path, None)?;
    // the decoded frame is bounded by the memory limit (with room for the f32 copy)
    let limit = crate::limits::max_bytes()? / 5;
    let mut dec = png::Decoder::new_with_limits(
        std::io::Cursor::new(bytes),
        png::Limits {
            bytes: limit.min(usize::MAX as u64) as usize,
        },
    );
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec
        .read_info()
        .map_err(|e| bad(path, format!("is not a readable PNG ({e})")))?;
    // the decoded frame, checked before allocating (png's limits cover only its own buffers):
    // the frame, then one f32 per pixel
    let frame = reader.output_buffer_size();
    crate::limits::check(
        &path.display().to_string(),
        frame.and_then(|n| (n as u128).checked_mul(5)),
        "the image is too large; resize it to 28×28",
    )?;
    let mut buf = vec![0; frame.unwrap_or(0)];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(path, format!("is not a readable PNG ({e})")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let mut notes = Vec::new();
    let ch = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(bad(path, "has an unexpanded palette")),
    };
    if ch >= 3 {
        notes.push("converted colour to grayscale (ITU-R 601 luma)".to_string());
    }
    if ch == 2 || ch == 4 {
        notes.push("composited the alpha channel on black".to_string());
    }
    let px: Vec<f32> = buf[..w * h * ch]
        .chunks(ch)
        .map(|p| {
            let g = match ch {
                1 | 2 => p[0] as f32,
                _ => 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32,
            } / 255.0;
            if ch == 2 || ch == 4 {
                g * p[ch - 1] as f32 / 255.0
            } else {
                g
            }
        })
        .collect();
    Ok((px, w, h, notes))
}

/// Resizes a grayscale image by area averaging (each output pixel is the mean of the input
/// region it covers, with fractional weights at the edges).
pub fn resize_area(px: &[f32], w: usize, h: usize, ow: usize, oh: usize) -> Vec<f32> {
    // weights of input index i for output index o along one axis: overlap of
    // [o·n/m, (o+1)·n/m) with [i, i+1)
    let axis = |n: usize, m: usize| -> Vec<Vec<(usize, f32)>> {
        (0..m)
            .map(|o| {
                let (a, b) = (
                    o as f64 * n as f64 / m as f64,
                    (o + 1) as f64 * n as f64 / m as f64,
                );
                (a.floor() as usize..(b.ceil() as usize).min(n))
                    .map(|i| {
                        let ov = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
                        (i, (ov / (b - a)) as f32)
                    })
                    .collect()
            })
            .collect()
    };
    let (wx, wy) = (axis(w, ow), axis(h, oh));
    let mut out = vec![0.0; ow * oh];
    for (oy, ry) in wy.iter().enumerate() {
        for (ox, rx) in wx.iter().enumerate() {
            let mut s = 0.0;
            for &(iy, fy) in ry {
                for &(ix, fx) in rx {
                    s += fy * fx * px[iy * w + ix];
                }
            }
            out[oy * ow + ox] = s;
        }
    }
    out
}

/// Loads an image for a model whose input is `(1, h, w)`.
pub fn load(path: &Path, h: usize, w: usize) -> Result<(Tensor, Vec<String>)> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let (px, iw, ih, mut notes) = match ext.as_str() {
        "png" => read_png(path)?,
        "npy" => {
            let t = crate::io::npy::read(path)?;
            let s = t.shape().to_vec();
            let (ih, iw) = match s.as_slice() {
                [ih, iw] | [1, ih, iw] | [1, 1, ih, iw] => (*ih, *iw),
                _ => {
                    return Err(bad(
                        path,
                        format!(
                            "holds {}; give one grayscale image (H, W), (1, H, W) or (1, 1, H, W)",
                            fmt_shape(&s)
                        ),
                    ))
                }
            };
            let mut notes = Vec::new();
            let mut px = t.into_data();
            let nans = px.iter().filter(|v| v.is_nan()).count();
            if nans > 0 {
                px.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = 0.0);
                notes.push(format!("{nans} NaN pixel(s) found: treated as 0 (black)"));
            }
            if px.iter().any(|&v| v > 1.0) {
                px.iter_mut().for_each(|v| *v /= 255.0);
                notes
                    .push("values above 1 found: treated as 0..255 and divided by 255".to_string());
            }
            (px, iw, ih, notes)
        }
        _ => {
            return Err(Error::arg(
                "image",
                format!(
                    "{} is neither .png nor .npy; convert it to a {w}×{h} grayscale PNG",
                    path.display()
                ),
            ))
        }
    };
    if iw == 0 || ih == 0 {
        return Err(bad(
            path,
            format!("is an empty image ({ih}×{iw}); give a {w}×{h} grayscale image"),
        ));
    }
    let px = if (iw, ih) != (w, h) {
        notes.push(format!("resized {iw}×{ih} → {w}×{h} (area averaging)"));
        resize_area(&px, iw, ih, w, h)
    } else {
        px
    };
    Ok((Tensor::new(vec![1, h, w], px)?, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_resize_averages_blocks() {
        let px: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let out = resize_area(&px, 4, 4, 2, 2);
        assert_eq!(out, vec![2.5, 4.5, 10.5, 12.5]);
        assert_eq!(resize_area(&px, 4, 4, 4, 4), px);
    }
}
