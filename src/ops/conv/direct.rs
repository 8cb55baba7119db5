//! The direct convolution: the literal sum of the course material, the reference every other
//! algorithm is tested against. Accumulates in f64.
//!
//! `y[n, oc, o] = b[oc] + Σ_{ic in group(oc)} Σ_{tap} x[n, ic, src(o, tap)] · w[oc, ic - g·Cin/g, tap]`
//! where `src` comes from the geometry module (padding taps read 0 or the mode's copy).
//! Backward ("Convolution operation in practice" (3), the pen-and-paper CNN exercise (2)): `backward_input` scatters each term back to the pixel
//! it read, `backward_weight` correlates the input with the output gradient, `backward_bias` sums.

use super::ConvShape;

/// Forward pass. `x`: (N, Cin, D, H, W), `w`: (Cout, Cin/g, kd, kh, kw), `y`: (N, Cout, od, oh, ow).
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let win = &s.window;
    let [ad, ah, aw] = &win.axes;
    let (in_len, out_len, taps) = (win.in_len(), win.out_len(), win.taps());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    // for each image and output channel
    for n in 0..s.batch {
        for oc in 0..s.cout {
            let g = oc / cout_g;
            let y_plane = &mut y[(n * s.cout + oc) * out_len..][..out_len];
            // for each output cell
            for od in 0..ad.output {
                for oh in 0..ah.output {
                    for ow in 0..aw.output {
                        let mut acc = bias.map_or(0.0, |b| b[oc] as f64);
                        // for each input channel of the group and each kernel tap
                        for icg in 0..cin_g {
                            let ic = g * cin_g + icg;
                            let x_plane = &x[(n * s.cin + ic) * in_len..][..in_len];
                            let w_taps = &w[(oc * cin_g + icg) * taps..][..taps];
                            for td in 0..ad.kernel {
                                let Some(d) = ad.source_mode(od, td, s.mode) else {
                                    continue;
                                };
                                for th in 0..ah.kernel {
                                    let Some(h) = ah.source_mode(oh, th, s.mode) else {
                                        continue;
                                    };
                                    for tw in 0..aw.kernel {
                                        let Some(wi) = aw.source_mode(ow, tw, s.mode) else {
                                            continue;
                                        };
                                        let xv = x_plane[(d * ah.input + h) * aw.input + wi];
                                        let wv = w_taps[(td * ah.kernel + th) * aw.kernel + tw];
                                        acc += xv as f64 * wv as f64;
                                    }
                                }
                            }
                        }
                        y_plane[(od * ah.output + oh) * aw.output + ow] = acc as f32;
                    }
                }
            }
        }
    }
}

/// Gradient with respect to the input (the seeds' derivation, written as the adjoint of the
/// forward sum): every term `x[src(o, tap)] · w[tap]` of the forward sends
/// `gy[o] · w[tap]` back to the pixel it read,
/// `gx[n, ic, i] = Σ_{oc in group(ic)} Σ_{(o, tap): src(o, tap) = i} gy[n, oc, o] · w[oc, ic - g·Cin/g, tap]`.
/// A padding tap that copies a pixel (reflect, replicate, circular) sends its share to that
/// pixel; a zero-padding tap sends nothing. Overwrites `gx: (N, Cin, D, H, W)`; `w` is the weight
/// as the forward used it (already flipped for `--flip`).
pub fn backward_input(s: &ConvShape, gy: &[f32], w: &[f32], gx: &mut [f32]) {
    let win = &s.window;
    let (in_len, out_len, taps) = (win.in_len(), win.out_len(), win.taps());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    let mut acc = vec![0.0f64; in_len];
    // for each image and input channel
    for n in 0..s.batch {
        for ic in 0..s.cin {
            let (g, icg) = (ic / cin_g, ic % cin_g);
            acc.fill(0.0);
            // for each output channel of the group, output cell and kernel tap
            for oc in g * cout_g..(g + 1) * cout_g {
                let gy_plane = &gy[(n * s.cout + oc) * out_len..][..out_len];
                let w_taps = &w[(oc * cin_g + icg) * taps..][..taps];
                for (o, &g_o) in gy_plane.iter().enumerate() {
                    for (tap, &wv) in w_taps.iter().enumerate() {
                        if let Some(src) = win.source(o, tap, s.mode) {
                            acc[src] += g_o as f64 * wv as f64;
                        }
                    }
                }
            }
            let gx_plane = &mut gx[(n * s.cin + ic) * in_len..][..in_len];
            for (d, a) in gx_plane.iter_mut().zip(&acc) {
                *d = *a as f32;
            }
        }
    }
}

/// Gradient with respect to the weight (the pen-and-paper CNN exercise, definition (2)): the correlation of the input
/// with the output gradient, `gw[oc, icg, tap] = Σ_n Σ_o gy[n, oc, o] · x[n, ic, src(o, tap)]`.
/// Overwrites `gw: (Cout, Cin/g, kd, kh, kw)` (the gradient of the weight as the forward used it).
pub fn backward_weight(s: &ConvShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let win = &s.window;
    let (in_len, out_len, taps) = (win.in_len(), win.out_len(), win.taps());
    let (cin_g, cout_g) = (s.cin_g(), s.cout_g());
    // for each weight entry
    for oc in 0..s.cout {
        let g = oc / cout_g;
        for icg in 0..cin_g {
            let ic = g * cin_g + icg;
            for tap in 0..taps {
                let mut acc = 0.0f64;
                // for each image and output cell
                for n in 0..s.batch {
                    let x_plane = &x[(n * s.cin + ic) * in_len..][..in_len];
                    let gy_plane = &gy[(n * s.cout + oc) * out_len..][..out_len];
                    for (o, &g_o) in gy_plane.iter().enumerate() {
                        if let Some(src) = win.source(o, tap, s.mode) {
                            acc += g_o as f64 * x_plane[src] as f64;
                        }
                    }
                }
                gw[(oc * cin_g + icg) * taps + tap] = acc as f32;
            }
        }
    }
}

/// Gradient with respect to a per-channel bias: `gb[c] = Σ_n Σ_o gy[n, c, o]` over
/// `gy: (batch, channels, *)`. Overwrites `gb: (channels)`.
pub fn backward_bias(gy: &[f32], batch: usize, channels: usize, gb: &mut [f32]) {
    let plane = gy.len() / (batch * channels).max(1);
    for (c, out) in gb.iter_mut().enumerate().take(channels) {
        let mut acc = 0.0f64;
        for n in 0..batch {
            acc += gy[(n * channels + c) * plane..][..plane]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>();
        }
        *out = acc as f32;
    }
}
