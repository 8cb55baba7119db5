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
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // npyz's header grammar can hang or overflow on hostile headers: check it strictly first
    super::npy_header::check(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .map_err(|m| {
            bad(
                path,
                format!("not a valid .npy file: {m}; save arrays with numpy.save"),
            )
        })?;
    let npy = npyz::NpyFile::new(BufReader::new(file)).map_err(|e| {
        // npyz's messages can span lines (a header that is not a dict): keep the first
        let e = e.to_string();
        let first = e.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bad(
            path,
            format!(
                "not a valid .npy file ({}); save arrays with numpy.save",
                first.trim()
            ),
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
    // the header's claim, checked before allocating: the values must fit the memory limit and
    // the file must hold them
    let count = shape
        .iter()
        .try_fold(1u128, |a, &d| a.checked_mul(d as u128));
    crate::limits::check(
        &path.display().to_string(),
        count.and_then(|c| c.checked_mul(4)),
        "its header claims a larger array than fits; check the file",
    )?;
    let need = count.and_then(|c| c.checked_mul(ts.size_field() as u128));
    if need.is_none_or(|n| n > file_len as u128) {
        return Err(bad(
            path,
            format!(
                "is truncated: its header's shape {shape:?} needs {} bytes of data but the file has {file_len} bytes in all",
                need.map_or("more than 2^128".into(), |n| n.to_string())
            ),
        ));
    }
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

pub use super::atomic::{temp_name_pid, temp_path};

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
