//! Single images for `stride predict` and `stride features`: a PNG, JPEG or BMP (decoded by the
//! `image` crate; any colour type or bit depth: converted to grayscale, alpha composited on black, resized by area averaging when its size differs) or a
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

/// Decodes an image file (PNG, JPEG, BMP: whatever the `image` crate reads, recognised by its
/// contents) into grayscale `[0, 1]` values, row-major, with its width and height. The file is
/// read with a bounded read (a regular file within the memory limit), and the decoder may not
/// allocate more than a fifth of the memory limit (room for the f32 copy), checked from the
/// header before decoding.
fn read_image(path: &Path) -> Result<(Vec<f32>, usize, usize, Vec<String>)> {
    let bytes = crate::limits::read_file(path, None)?;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(crate::limits::max_bytes()? / 5);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| {
        // the decoders' messages may span lines: one line for the user
        let why = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        bad(
            path,
            format!("is not a readable image ({why}); give a PNG, JPEG or BMP file"),
        )
    })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut notes = Vec::new();
    let colour = img.color();
    if colour.has_color() {
        notes.push("converted colour to grayscale (ITU-R 601 luma)".to_string());
    }
    if colour.has_alpha() {
        notes.push("composited the alpha channel on black".to_string());
    }
    let rgba = img.to_rgba32f();
    let px = rgba
        .pixels()
        .map(|p| {
            let [r, g, b, a] = p.0;
            let luma = if colour.has_color() {
                0.299 * r + 0.587 * g + 0.114 * b
            } else {
                r
            };
            luma * a
        })
        .collect();
    Ok((px, w, h, notes))
}

/// True when the image's border is mostly bright: a dark item on a light background, the
/// opposite of Fashion-MNIST (light items on black), so inverting it would help. The border
/// (outermost rows and columns) is the background of a centred item; the mean of the whole
/// image is not (a bright pullover fills most of a real Fashion-MNIST image).
pub fn light_background(x: &Tensor) -> bool {
    let s = x.shape();
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    let px = &x.data()[..h * w];
    let border: Vec<f32> = (0..h)
        .flat_map(|r| (0..w).map(move |c| (r, c)))
        .filter(|&(r, c)| r == 0 || c == 0 || r + 1 == h || c + 1 == w)
        .map(|(r, c)| px[r * w + c])
        .collect();
    border.iter().sum::<f32>() / border.len().max(1) as f32 > 0.5
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
        "png" | "jpg" | "jpeg" | "bmp" => read_image(path)?,
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
                    "{} is not an image file stride reads (.png, .jpg, .bmp or .npy); convert it to a {w}×{h} grayscale PNG",
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

    #[test]
    fn light_background_looks_at_the_border() {
        // a bright item filling the middle of a black image: not a light background
        let mut px = vec![0.0f32; 36];
        for r in 1..5 {
            for c in 1..5 {
                px[r * 6 + c] = 1.0;
            }
        }
        let item = Tensor::new(vec![1, 6, 6], px.clone()).unwrap();
        assert!(!light_background(&item));
        let inverted = Tensor::new(vec![1, 6, 6], px.iter().map(|v| 1.0 - v).collect()).unwrap();
        assert!(light_background(&inverted));
    }
}
