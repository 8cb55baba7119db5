//! `Tensor`: a shape and a contiguous row-major `Vec<f32>`. The only place where flat offsets
//! are computed from multi-indices.

use crate::error::{Error, Result};

/// A dense, contiguous, row-major f32 tensor (PyTorch's default layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and data; fails when `data.len()` is not the product of `shape`.
    ///
    /// ```
    /// let t = stride::Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
    /// assert_eq!((t.shape(), t.numel()), (&[2, 3][..], 6));
    /// assert!(stride::Tensor::new(vec![2, 2], vec![1.0]).is_err());
    /// # Ok::<(), stride::Error>(())
    /// ```
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(Error::arg(
                "data",
                format!(
                    "shape {:?} needs {numel} values but {} were given",
                    shape,
                    data.len()
                ),
            ));
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor of zeros. Big ones (≥ 1 Mi values) are filled by all threads: memory that the
    /// allocator reuses is not zeroed by the kernel, and one thread's memset would cost as much
    /// as the operation that fills the tensor.
    pub fn zeros(shape: &[usize]) -> Self {
        let numel: usize = shape.iter().product();
        let data = if numel >= 1 << 20 {
            use rayon::prelude::*;
            let mut v = Vec::with_capacity(numel);
            v.par_extend(rayon::iter::repeat_n(0.0f32, numel));
            v
        } else {
            vec![0.0; numel]
        };
        Tensor {
            shape: shape.to_vec(),
            data,
        }
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Self {
        let numel = shape.iter().product();
        Tensor {
            shape: shape.to_vec(),
            data: vec![value; numel],
        }
    }

    /// The shape, outermost axis first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The values in row-major order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values in row-major order, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor, returning its values.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Flat offset of a multi-index (debug-checked).
    pub fn offset(&self, index: &[usize]) -> usize {
        debug_assert_eq!(index.len(), self.shape.len());
        let mut off = 0;
        for (i, (&ix, &n)) in index.iter().zip(&self.shape).enumerate() {
            debug_assert!(ix < n, "index {ix} out of range {n} on axis {i}");
            off = off * n + ix;
        }
        off
    }

    /// The value at a multi-index.
    pub fn at(&self, index: &[usize]) -> f32 {
        self.data[self.offset(index)]
    }

    /// Sets the value at a multi-index.
    pub fn set(&mut self, index: &[usize], v: f32) {
        let o = self.offset(index);
        self.data[o] = v;
    }

    /// The same values under a new shape with the same number of elements.
    pub fn reshape(self, shape: &[usize]) -> Result<Self> {
        Tensor::new(shape.to_vec(), self.data)
    }

    /// Inserts a leading axis of size 1 (e.g. unbatched → batched).
    pub fn unsqueeze0(mut self) -> Self {
        self.shape.insert(0, 1);
        self
    }

    /// Removes a leading axis of size 1.
    pub fn squeeze0(mut self) -> Self {
        debug_assert_eq!(self.shape[0], 1);
        self.shape.remove(0);
        self
    }

    /// The tensor with every spatial axis (all axes after the first two) reversed: turns a
    /// cross-correlation kernel into a true-convolution kernel and back.
    pub fn flip_spatial(&self) -> Tensor {
        let spatial: usize = self.shape[2..].iter().product();
        let mut out = self.clone();
        // Reversing every spatial axis of a row-major block == reversing the flat block.
        for (src, dst) in self
            .data
            .chunks(spatial.max(1))
            .zip(out.data.chunks_mut(spatial.max(1)))
        {
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
        out
    }

    /// Largest absolute element-wise difference to `other` (shapes must match). NaN where the
    /// two disagree on NaN (one NaN, the other not); two NaNs count as equal.
    pub fn max_abs_diff(&self, other: &Tensor) -> f32 {
        assert_eq!(self.shape, other.shape, "shape mismatch in max_abs_diff");
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| match (a.is_nan(), b.is_nan()) {
                (true, true) => 0.0,
                (false, false) => (a - b).abs(),
                _ => f32::NAN,
            })
            .fold(0.0, |m: f32, d| {
                if d.is_nan() || m.is_nan() {
                    f32::NAN
                } else {
                    m.max(d)
                }
            })
    }

    /// Largest absolute value (0 for an empty tensor).
    pub fn max_abs(&self) -> f32 {
        self.data.iter().fold(0.0f32, |m, v| m.max(v.abs()))
    }

    /// Sum of element-wise products, accumulated in f64.
    pub fn dot(&self, other: &Tensor) -> f64 {
        assert_eq!(self.numel(), other.numel(), "length mismatch in dot");
        self.data
            .iter()
            .zip(&other.data)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum()
    }
}

/// A shape as PyTorch prints it: `(1, 3, 5, 5)`.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_index_access_is_row_major() {
        let mut t = Tensor::new(vec![2, 3, 4], (0..24).map(|v| v as f32).collect()).unwrap();
        // offset of (i, j, k) = (i·3 + j)·4 + k
        assert_eq!(t.offset(&[1, 2, 3]), 23);
        assert_eq!(t.offset(&[1, 0, 2]), 14);
        assert_eq!(t.at(&[0, 1, 2]), 6.0);
        t.set(&[1, 1, 1], -1.0);
        assert_eq!(t.data()[17], -1.0);
        assert_eq!(t.at(&[1, 1, 1]), -1.0);
    }
}
