//! `.npy` files through the `npyz` crate: f32 read and written, f64 read and converted; any
//! other dtype, Fortran order, a corrupt header or truncated data is a clear error.
//! Writes go to a temporary file in the same folder that is renamed into place, so a failure
//! never leaves a half-written file behind.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use npyz::{DType, Order, TypeChar, WriterBuilder};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

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

/// A sibling temporary path for atomic writes: `dir/.name.tmp-<pid>`.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` produced by `fill` to `path` atomically (temporary file, then rename).
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = temp_path(path);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(e));
    }
    Ok(())
}

/// Writes a tensor as a little-endian f32 `.npy` file, atomically.
pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    write_atomic(path, |w| {
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
