//! The direct convolution: the literal sum of the course material, the reference every other
//! algorithm is tested against. Accumulates in f64.
//!
//! `y[n, oc, o] = b[oc] + Σ_{ic in group(oc)} Σ_{tap} x[n, ic, src(o, tap)] · w[oc, ic - g·Cin/g, tap]`
//! where `src` comes from the geometry module (padding taps read 0 or the mode's copy).

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
