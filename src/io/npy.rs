//! `.npy` files through the `npyz` crate: f32 read and written, f64 read and converted; any
//! other dtype, Fortran order, a corrupt header or truncated data is a clear error.
//! Writes go to a temporary file in the same folder that is renamed into place, so a failure
//! never leaves a half-written file behind.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use npyz::{DType, Order, TypeChar, WriterBuilder};
use std::io::BufReader;
use std::path::Path;

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Reads a C-ordered f32 or f64 `.npy` file.
pub fn read(path: &Path) -> Result<Tensor> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let npy = npyz::NpyFile::new(BufReader::new(file)).map_err(|e| {
        bad(
            path,
            format!("not a valid .npy file ({e}); save arrays with numpy.save"),
        )
    })?;
    if npy.order() == Order::Fortran {
        return Err(bad(
            path,
            "array is stored in Fortran order; save a C-ordered copy (numpy.ascontiguousarray)",
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = npy.dtype();
    let ts = match &dtype {
        DType::Plain(ts) => ts.clone(),
        _ => {
            return Err(bad(
                path,
                format!(
                    "dtype {} is not supported; save as float32 (astype('float32'))",
                    dtype.descr()
                ),
            ))
        }
    };
    let truncated = |e: std::io::Error| bad(path, format!("data is truncated or unreadable ({e})"));
    let data: Vec<f32> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 4) => npy.into_vec::<f32>().map_err(truncated)?,
        (TypeChar::Float, 8) => npy
            .into_vec::<f64>()
            .map_err(truncated)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        _ => {
            return Err(bad(
                path,
                format!(
                    "dtype {ts} is not supported; stride reads float32 or float64 arrays \
                     (convert with astype('float32'))"
                ),
            ))
        }
    };
    Tensor::new(shape, data).map_err(|_| bad(path, "data length does not match the header's shape"))
}

pub use super::atomic::temp_path;

/// Writes a tensor as a little-endian f32 `.npy` file, atomically.
pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    super::atomic::write_with(path, |w| {
        let mut writer = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&shape)
            .writer(w)
            .begin_nd()?;
        writer.extend(t.data().iter().copied())?;
        writer.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let t = Tensor::new(vec![2, 3], vec![1., 2., 3., 4., 5., -6.5]).unwrap();
        write(&p, &t).unwrap();
        assert_eq!(read(&p).unwrap(), t);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.npy");
        std::fs::write(&p, b"hello world").unwrap();
        assert!(read(&p)
            .unwrap_err()
            .to_string()
            .contains("not a valid .npy"));
    }
}
