//! The IDX file format of MNIST and Fashion-MNIST (LeCun et al.), gzipped or not.
//!
//! Layout: magic `00 00 TT NN` (TT = element type, 0x08 = unsigned byte; NN = number of axes),
//! then NN big-endian u32 sizes, then the elements in row-major order. Gzip is recognised by its
//! own magic (`1f 8b`), whatever the file name. Every deviation is a clear error naming the file.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// An unsigned-byte IDX array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Reads the raw bytes, un-gzipping when the file starts with the gzip magic. Reads are
/// bounded: the file itself by the memory limit, the decompressed stream by what its own
/// header declares (plus one byte, so that extra data is reported) — a gzip bomb stops there.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = crate::limits::read_file(path, None)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let gz_err = |e: std::io::Error| {
        bad(
            path,
            format!(
                "is gzipped but cannot be decompressed ({e}); the download is probably truncated"
            ),
        )
    };
    let mut dec = flate2::read::GzDecoder::new(&raw[..]);
    let mut out = vec![0u8; 4];
    dec.read_exact(&mut out).map_err(gz_err)?;
    let nd = out[3] as usize;
    out.resize(4 + 4 * nd, 0);
    dec.read_exact(&mut out[4..]).map_err(gz_err)?;
    let want = out[4..]
        .chunks(4)
        .try_fold(1u128, |a, d| {
            a.checked_mul(u32::from_be_bytes(d.try_into().expect("4 bytes")) as u128)
        })
        .unwrap_or(u128::MAX);
    crate::limits::check(
        &path.display().to_string(),
        Some(want),
        "its header declares more data than fits; check the file",
    )?;
    let max = (want as u64).saturating_add(1);
    let rest = crate::limits::read_bounded(path, dec, max, want as u64).map_err(|e| match e {
        Error::Io { source, .. } => gz_err(source),
        e => e,
    })?;
    out.extend(rest);
    Ok(out)
}

/// Parses IDX bytes (already decompressed). `path` is used in error messages.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Idx> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(
            path,
            "is not an IDX file (the magic number must start with two zero bytes); \
             expected MNIST-format files like train-images-idx3-ubyte.gz",
        ));
    }
    let (ty, nd) = (bytes[2], bytes[3] as usize);
    if ty != 0x08 {
        let name = match ty {
            0x09 => "signed byte",
            0x0B => "i16",
            0x0C => "i32",
            0x0D => "f32",
            0x0E => "f64",
            _ => "unknown",
        };
        return Err(bad(
            path,
            format!("has IDX element type 0x{ty:02x} ({name}); only unsigned bytes (0x08) are supported"),
        ));
    }
    if nd == 0 {
        return Err(bad(path, "IDX header declares 0 axes"));
    }
    let header = 4 + 4 * nd;
    if bytes.len() < header {
        return Err(bad(
            path,
            format!("is truncated inside its header ({} bytes)", bytes.len()),
        ));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let want = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let have = bytes.len() - header;
    match want {
        Some(w) if w == have => Ok(Idx {
            dims,
            data: bytes[header..].to_vec(),
        }),
        Some(w) if w > have => Err(bad(
            path,
            format!("is truncated: its header {dims:?} needs {w} bytes of data but only {have} are there"),
        )),
        _ => Err(bad(
            path,
            format!("has {have} bytes of data, which does not match its header {dims:?}"),
        )),
    }
}

/// Reads an IDX file, gzipped or not.
pub fn read(path: &Path) -> Result<Idx> {
    parse(path, &read_bytes(path)?)
}

/// Encodes an unsigned-byte IDX array (for tests and tools).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend((d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
