//! The memory limit: every command computes what it will allocate before allocating, and
//! refuses (exit 2, naming the size and the fix) past a share of physical memory — a quarter
//! of it by default — instead of aborting in the allocator. The `STRIDE_MAX_MEMORY`
//! environment variable overrides the limit: bytes with an optional K/M/G/T suffix
//! (`STRIDE_MAX_MEMORY=48G`) or a share of physical memory (`STRIDE_MAX_MEMORY=75%`).
//! Also here: bounded file reads, so a file that claims or holds more than the limit
//! (`/dev/zero`, a gzip bomb) is refused while it is read.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The environment variable that overrides the limit.
pub const ENV: &str = "STRIDE_MAX_MEMORY";

/// Default share of physical memory a command may use.
pub const DEFAULT_SHARE: f64 = 0.25;

/// Physical memory in bytes (8 GiB when the system does not say).
pub fn physical_memory() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads system configuration values.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && size > 0 {
            return (pages as u64).saturating_mul(size as u64);
        }
    }
    8 << 30
}

/// Parses a limit: `123`, `64K`, `512M`, `48G`, `1T` (powers of 1024) or `75%`.
pub fn parse(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(p) = t.strip_suffix('%') {
        let share: f64 = p.trim().parse().ok()?;
        return (share > 0.0 && share <= 100.0)
            .then(|| (physical_memory() as f64 * share / 100.0) as u64);
    }
    let (num, shift) = match t.char_indices().last()? {
        (i, 'k' | 'K') => (&t[..i], 10),
        (i, 'm' | 'M') => (&t[..i], 20),
        (i, 'g' | 'G') => (&t[..i], 30),
        (i, 't' | 'T') => (&t[..i], 40),
        _ => (t, 0),
    };
    let v: f64 = num.trim().parse().ok()?;
    let bytes = v * (1u64 << shift) as f64;
    (v.is_finite() && v > 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// The limit in bytes: `STRIDE_MAX_MEMORY`, else [`DEFAULT_SHARE`] of physical memory.
pub fn max_bytes() -> Result<u64> {
    match std::env::var(ENV) {
        Ok(v) => parse(&v).ok_or_else(|| {
            Error::arg(
                ENV,
                format!("cannot read '{v}'; give bytes like 8G, 512M, 1T or a share like 50%"),
            )
        }),
        Err(_) => Ok((physical_memory() as f64 * DEFAULT_SHARE) as u64),
    }
}

/// `1.5 GiB`-style size.
pub fn human(bytes: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Refuses a request that needs `bytes` (`None`: more than 2^128, an overflow) past the limit.
/// `what` names the argument at fault, `fix` says how to ask for less.
pub fn check(what: &str, bytes: Option<u128>, fix: &str) -> Result<()> {
    let max = max_bytes()?;
    match bytes {
        Some(b) if b <= max as u128 => Ok(()),
        _ => Err(Error::TooLarge {
            what: what.into(),
            msg: format!(
                "needs {} of memory, over the limit of {} ({}; raise it with {ENV}=SIZE); \
                 {fix}",
                bytes.map_or("more than 2^128 bytes".into(), human),
                human(max as u128),
                share_text(),
            ),
        }),
    }
}

fn share_text() -> String {
    match std::env::var(ENV) {
        Ok(v) => format!("set by {ENV}={v}"),
        Err(_) => format!("{:.0}% of physical memory", DEFAULT_SHARE * 100.0),
    }
}

/// Bytes of `counts` f32 values in all: `4 · Σ Π dims`, in u128 (`None` on overflow).
pub fn f32_bytes(tensors: &[&[usize]]) -> Option<u128> {
    tensors.iter().try_fold(0u128, |acc, dims| {
        let n = dims
            .iter()
            .try_fold(1u128, |a, &d| a.checked_mul(d as u128))?;
        acc.checked_add(n.checked_mul(4)?)
    })
}

/// Reads a whole regular file of at most the limit (and at most `cap` bytes when given),
/// refusing devices, pipes and directories (`/dev/zero` would never end).
pub fn read_file(path: &Path, cap: Option<u64>) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::BadFile {
            path: path.to_path_buf(),
            msg: "is not a regular file; give a file path".into(),
        });
    }
    let max = cap.map_or(max_bytes()?, |c| c.min(max_bytes().unwrap_or(c)));
    read_bounded(path, file, max, meta.len())
}

/// Reads `reader` to its end, refusing more than `max` bytes; `hint` pre-sizes the buffer.
pub fn read_bounded(path: &Path, reader: impl Read, max: u64, hint: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(hint.min(max) as usize);
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if out.len() as u64 > max {
        return Err(Error::TooLarge {
            what: path.display().to_string(),
            msg: format!(
                "holds more than {} (the limit for this file; {ENV} raises the memory limit)",
                human(max as u128)
            ),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_shares() {
        assert_eq!(parse("1024"), Some(1024));
        assert_eq!(parse("1K"), Some(1024));
        assert_eq!(parse("2g"), Some(2 << 30));
        assert_eq!(parse("1.5M"), Some(3 << 19));
        assert!(parse("50%").unwrap() > 0);
        for bad in ["", "lots", "-1G", "0", "150%", "1e30T", "nanG"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn counts_bytes_without_overflow() {
        assert_eq!(f32_bytes(&[&[2, 3], &[4]]), Some(40));
        assert_eq!(f32_bytes(&[&[usize::MAX, usize::MAX, usize::MAX]]), None);
        assert!(check("x", None, "use less").is_err());
        assert!(check("x", Some(16), "use less").is_ok());
    }
}
