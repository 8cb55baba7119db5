//! The F(4, 3) transforms along one axis, one home for the formulas both Winograd paths use:
//! `y = Aᵀ [ (G g) ⊙ (Bᵀ d) ]` computes the cross-correlation `y[i] = Σ_k d[i + k]·g[k]`,
//! i < 4, of 6 inputs `d` with 3 taps `g` (6 multiplies instead of 12). The weight gradient
//! runs the same matrices backwards: [`output_adjoint`] (`A y`) and [`kernel_adjoint`] (`Gᵀ u`).
//!
//! Interpolation points (Cook–Toom): 0, 1, −1, 2, −1/2 and ∞ — not the common 0, ±1, ±2, ∞.
//! On 3×3 convolutions with 256 input channels and random normal data, float32 errors relative
//! to the output's largest magnitude measured 1.0–1.6e-5 with ±2 and 3.1–3.8e-6 with 2, −1/2
//! (the weights of 2 and −1/2 are reciprocal, so no row of the matrices grows as 2⁴ against
//! another). The rows of `Bᵀ` are scaled to small integers (by 1, 6, 6, 30, 15/16, 1) and `G`'s
//! rows by the inverse factors, so the input transform rounds no more than the standard one.
//!
//! ```text
//!        [ 1  3/2  −2  −3/2   1  0 ]         [ 1     0     0    ]        [ 1 1  1  1    1   0 ]
//!        [ 0   2    5    1   −2  0 ]         [ 1/6   1/6   1/6  ]   Aᵀ = [ 0 1 −1  2  −1/2  0 ]
//!   Bᵀ = [ 0   2    1   −5    2  0 ]    G =  [ 1/6  −1/6   1/6  ]        [ 0 1  1  4   1/4  0 ]
//!        [ 0  −1   −2    1    2  0 ]         [ 1/30  1/15  2/15 ]        [ 0 1 −1  8  −1/8  1 ]
//!        [ 0  −2    1    2   −1  0 ]         [ 16/15 −8/15 4/15 ]
//!        [ 0   1   3/2  −2  −3/2  1 ]        [ 0     0     1    ]
//! ```

use std::ops::{Add, Mul, Sub};

/// What the float32 transforms compute on: `f32`, or [`Lanes16`] (one value per tile).
pub trait Num: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<f32, Output = Self> {}
impl<T: Copy + Add<Output = T> + Sub<Output = T> + Mul<f32, Output = T>> Num for T {}

/// 16 values, one per tile, with lane-wise arithmetic (each operator one vector instruction
/// when compiled for AVX-512).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lanes16(pub [f32; 16]);

impl Add for Lanes16 {
    type Output = Self;
    #[inline(always)]
    fn add(mut self, o: Self) -> Self {
        for l in 0..16 {
            self.0[l] += o.0[l];
        }
        self
    }
}
impl Sub for Lanes16 {
    type Output = Self;
    #[inline(always)]
    fn sub(mut self, o: Self) -> Self {
        for l in 0..16 {
            self.0[l] -= o.0[l];
        }
        self
    }
}
impl Mul<f32> for Lanes16 {
    type Output = Self;
    #[inline(always)]
    fn mul(mut self, c: f32) -> Self {
        for l in 0..16 {
            self.0[l] *= c;
        }
        self
    }
}

/// A vector of 16 lanes the fast path computes on: [`Lanes16`] (portable) or an AVX-512
/// register (`lanes::Zmm`).
pub trait Vector: Num {
    /// The 16 values of `s`.
    fn load(s: &[f32; 16]) -> Self;
    /// Writes the 16 values to `d`.
    fn store(self, d: &mut [f32; 16]);
    /// 16 copies of `v`.
    fn splat(v: f32) -> Self;
    /// Writes the first `n` values (n ≤ 16, ≤ `d.len()`) to `d`.
    fn store_first(self, d: &mut [f32], n: usize);
}

impl Vector for Lanes16 {
    #[inline(always)]
    fn load(s: &[f32; 16]) -> Self {
        Lanes16(*s)
    }
    #[inline(always)]
    fn store(self, d: &mut [f32; 16]) {
        *d = self.0
    }
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Lanes16([v; 16])
    }
    #[inline(always)]
    fn store_first(self, d: &mut [f32], n: usize) {
        d[..n].copy_from_slice(&self.0[..n])
    }
}

/// `Bᵀ d`: the input transform of 6 values.
#[inline(always)]
pub fn input<T: Num>(d: [T; 6]) -> [T; 6] {
    let [d0, d1, d2, d3, d4, d5] = d;
    [
        d0 + (d1 - d3) * 1.5 - d2 * 2.0 + d4,
        (d1 - d4) * 2.0 + d2 * 5.0 + d3,
        (d1 + d4) * 2.0 + d2 - d3 * 5.0,
        (d3 - d1) + (d4 - d2) * 2.0,
        (d3 - d1) * 2.0 + (d2 - d4),
        d1 + (d2 - d4) * 1.5 - d3 * 2.0 + d5,
    ]
}

/// `Aᵀ m`: the output transform of 6 values into 4.
#[inline(always)]
pub fn output<T: Num>(m: [T; 6]) -> [T; 4] {
    let [m0, m1, m2, m3, m4, m5] = m;
    let (s, d) = (m1 + m2, m1 - m2);
    [
        m0 + s + m3 + m4,
        d + m3 * 2.0 - m4 * 0.5,
        s + m3 * 4.0 + m4 * 0.25,
        d + m3 * 8.0 - m4 * 0.125 + m5,
    ]
}

/// `G g`: the kernel transform of 3 taps into 6 values (the reciprocals rounded once).
#[inline(always)]
pub fn kernel<T: Num>(g: [T; 3]) -> [T; 6] {
    let [g0, g1, g2] = g;
    [
        g0,
        (g0 + g1 + g2) * (1.0 / 6.0),
        (g0 - g1 + g2) * (1.0 / 6.0),
        (g0 + g1 * 2.0 + g2 * 4.0) * (1.0 / 30.0),
        (g0 - g1 * 0.5 + g2 * 0.25) * (16.0 / 15.0),
        g2,
    ]
}

/// `G w Gᵀ` of 3×3 kernels `w[a][b]` (a along H): 36 values `u[6·k_h + k_w]`.
#[inline(always)]
pub fn kernel_2d<T: Num>(w: [[T; 3]; 3]) -> [T; 36] {
    // along the width, then along the height
    let rows = [kernel(w[0]), kernel(w[1]), kernel(w[2])];
    let mut u = [w[0][0]; 36];
    for k2 in 0..6 {
        let col = kernel([rows[0][k2], rows[1][k2], rows[2][k2]]);
        for (k1, c) in col.iter().enumerate() {
            u[k1 * 6 + k2] = *c;
        }
    }
    u
}

/// `A y`: the adjoint of [`output`], 4 values into 6 (`m[k] = Σ_j Aᵀ[j][k] y[j]`), for the
/// weight gradient's `dM = A dY Aᵀ`.
#[inline(always)]
pub fn output_adjoint<T: Num>(y: [T; 4]) -> [T; 6] {
    let [y0, y1, y2, y3] = y;
    let (s, d) = (y0 + y2, y1 + y3);
    [
        y0,
        s + d,
        s - d,
        y0 + y1 * 2.0 + y2 * 4.0 + y3 * 8.0,
        y0 - y1 * 0.5 + y2 * 0.25 - y3 * 0.125,
        y3,
    ]
}

/// `Gᵀ u`: the adjoint of [`kernel`], 6 values into 3 taps (`g[a] = Σ_k G[k][a] u[k]`), for
/// the weight gradient's `dW = Gᵀ dU G`.
#[inline(always)]
pub fn kernel_adjoint<T: Num>(u: [T; 6]) -> [T; 3] {
    let [u0, u1, u2, u3, u4, u5] = u;
    let (s, d) = ((u1 + u2) * (1.0 / 6.0), (u1 - u2) * (1.0 / 6.0));
    [
        u0 + s + u3 * (1.0 / 30.0) + u4 * (16.0 / 15.0),
        d + u3 * (1.0 / 15.0) - u4 * (8.0 / 15.0),
        s + u3 * (2.0 / 15.0) + u4 * (4.0 / 15.0) + u5,
    ]
}

/// `Gᵀ u G` of 36 values `u[6·k_h + k_w]`: the 3×3 taps `g[a][b]` (a along H), the adjoint of
/// [`kernel_2d`]. (Loops, not closures: the vector operators must inline into the caller.)
#[inline(always)]
pub fn kernel_2d_adjoint<T: Num>(u: [T; 36]) -> [[T; 3]; 3] {
    // along the width, then along the height
    let mut rows = [[u[0]; 3]; 6];
    for (k1, r) in rows.iter_mut().enumerate() {
        let p = 6 * k1;
        *r = kernel_adjoint([u[p], u[p + 1], u[p + 2], u[p + 3], u[p + 4], u[p + 5]]);
    }
    let mut g = [[u[0]; 3]; 3];
    for b in 0..3 {
        let col = kernel_adjoint([
            rows[0][b], rows[1][b], rows[2][b], rows[3][b], rows[4][b], rows[5][b],
        ]);
        for (a, c) in col.iter().enumerate() {
            g[a][b] = *c;
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_compose_to_the_correlation() {
        // y = Aᵀ[(G g) ⊙ (Bᵀ d)] against Σ_k d[i+k]·g[k], exact inputs (small integers and
        // halves), so float32 rounding stays far below the tolerance
        for case in 0..50 {
            let d: [f32; 6] = std::array::from_fn(|i| ((case * 7 + i * 5) % 11) as f32 - 5.0);
            let g: [f32; 3] = std::array::from_fn(|i| ((case * 3 + i * 4) % 9) as f32 * 0.5 - 2.0);
            let u = kernel(g);
            let v = input(d);
            let y = output(std::array::from_fn(|p| u[p] * v[p]));
            for (i, yi) in y.iter().enumerate() {
                let want: f32 = (0..3).map(|k| d[i + k] * g[k]).sum();
                assert!(
                    (yi - want).abs() < 1e-4,
                    "case {case} y[{i}] {yi} want {want}"
                );
            }
        }
    }

    #[test]
    fn kernel_2d_is_the_separable_transform() {
        let w: [[f32; 3]; 3] =
            std::array::from_fn(|a| std::array::from_fn(|b| (a * 3 + b) as f32 - 4.0));
        let u = kernel_2d(w);
        // a 3×3 kernel with only tap (a, b) set transforms to G[:, a] ⊗ G[:, b]
        let col = |a: usize| kernel(std::array::from_fn(|i| (i == a) as u8 as f32));
        for k1 in 0..6 {
            for k2 in 0..6 {
                let want: f32 = (0..9)
                    .map(|t| w[t / 3][t % 3] * col(t / 3)[k1] * col(t % 3)[k2])
                    .sum();
                assert!((u[k1 * 6 + k2] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn adjoints_are_the_transposes() {
        // <A y, m> = <y, Aᵀ m> and <G g, u> = <g, Gᵀ u> on exact small values
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        for case in 0..20 {
            let y: [f32; 4] = std::array::from_fn(|i| ((case + 3 * i) % 7) as f32 - 3.0);
            let m: [f32; 6] = std::array::from_fn(|i| ((case * 5 + i) % 9) as f32 - 4.0);
            let g: [f32; 3] = std::array::from_fn(|i| ((case * 2 + i) % 5) as f32 - 2.0);
            let (am, gu) = (dot(&output_adjoint(y), &m), dot(&y, &output(m)));
            assert!((am - gu).abs() < 1e-4, "case {case}: {am} {gu}");
            let (ku, gk) = (dot(&kernel(g), &m), dot(&g, &kernel_adjoint(m)));
            assert!((ku - gk).abs() < 1e-4, "case {case}: {ku} {gk}");
        }
        let u: [f32; 36] = std::array::from_fn(|p| (p % 7) as f32 - 3.0);
        let w: [[f32; 3]; 3] = std::array::from_fn(|a| std::array::from_fn(|b| (a + 2 * b) as f32));
        let lhs = dot(&kernel_2d(w), &u);
        let rhs: f32 = (0..9)
            .map(|t| w[t / 3][t % 3] * kernel_2d_adjoint(u)[t / 3][t % 3])
            .sum();
        assert!((lhs - rhs).abs() < 1e-3, "{lhs} {rhs}");
    }
}
