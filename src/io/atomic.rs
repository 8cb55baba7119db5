//! Atomic file writes, the one home of the error policy's "nothing half-written": every file
//! stride writes goes to a temporary sibling first ([`temp_path`]), is flushed to disk, and only
//! then renamed over the destination; on failure the temporary is removed.

use crate::error::{Error, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A sibling temporary path for atomic writes: `dir/.name.tmp-<pid>`. A path that already is
/// this process's temporary name is its own (writing a temporary file atomically does not
/// double the suffix: `..y.npy.tmp-PID.tmp-PID`).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let suffix = format!(".tmp-{}", std::process::id());
    if name.starts_with('.') && name.ends_with(&suffix) {
        return path.to_path_buf();
    }
    path.with_file_name(format!(".{name}{suffix}"))
}

/// The process id in a name written by [`temp_path`] (any process): `.name.tmp-<pid>`.
pub fn temp_name_pid(name: &str) -> Option<u32> {
    let (stem, pid) = name.rsplit_once(".tmp-")?;
    (name.starts_with('.') && stem.len() > 1)
        .then(|| pid.parse().ok())
        .flatten()
}

/// Writes what `fill` produces to `path` atomically (temporary sibling + fsync + rename).
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        if tmp != path {
            std::fs::rename(&tmp, path)?;
        }
        Ok(())
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(bytes))
}
