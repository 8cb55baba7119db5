//! Run folders (`stride train --out DIR`): what may be written where, and how an epoch's files
//! are committed so that a kill at any moment leaves a consistent folder.
//!
//! Layout: each save writes the checkpoint, `metrics.csv` and `chart.png` into a fresh hidden
//! generation folder `.epoch-NNNN-PID/`, then switches the symbolic link `.current` to it with
//! one atomic rename. The names users open — `checkpoint.safetensors`, `metrics.csv`,
//! `chart.png` — are fixed links into `.current/`, so they always show one generation: the
//! checkpoint and the metrics can never be an epoch apart. Older generations are removed after
//! the switch; leftovers of a killed run (generations, `.name.tmp-PID` files) are removed by the
//! next save or resume. Folders written before this layout (plain files) are converted on their
//! next save. Without symbolic links (non-Unix) the files are written in place, each atomically.

use crate::checkpoint::FILE;
use crate::error::{Error, Result};
use crate::io::npy::temp_name_pid;
use std::path::{Path, PathBuf};

/// The files of a run, in the order they are linked.
pub const FILES: [&str; 3] = [FILE, "metrics.csv", "chart.png"];

/// The link to the current generation.
const CURRENT: &str = ".current";
const GEN_PREFIX: &str = ".epoch-";

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `dir` can hold a new run before any work: it must not hold a run already (that
/// would replace its checkpoint) and must be creatable and writable. Creates `dir`; returns
/// whether it was created (so a failed run can remove it again).
pub fn prepare_new(dir: &Path) -> Result<bool> {
    if FILES.iter().any(|f| dir.join(f).exists()) || dir.join(CURRENT).exists() {
        return Err(Error::arg(
            "out",
            format!(
                "{} already holds a run; continue it with `stride train --resume {}` or pass a fresh --out",
                dir.display(),
                dir.display()
            ),
        ));
    }
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| not_writable(dir, e))?;
    probe(dir)?;
    Ok(created)
}

/// Before resuming in `dir`: checks it is writable and removes what killed runs left behind.
pub fn prepare_resume(dir: &Path) -> Result<()> {
    probe(dir)?;
    clean(dir, None)
}

fn not_writable(dir: &Path, e: std::io::Error) -> Error {
    Error::arg(
        "out",
        format!(
            "cannot write the run folder {} ({e}); pass a --out folder you can write to",
            dir.display()
        ),
    )
}

/// Writes and removes a small file in `dir`.
fn probe(dir: &Path) -> Result<()> {
    let p = crate::io::npy::temp_path(&dir.join("probe"));
    std::fs::write(&p, b"stride").map_err(|e| not_writable(dir, e))?;
    let _ = std::fs::remove_file(&p);
    Ok(())
}

/// Removes temporary files of processes that are gone and generations other than `keep`.
fn clean(dir: &Path, keep: Option<&str>) -> Result<()> {
    let current = std::fs::read_link(dir.join(CURRENT)).ok();
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if let Some(pid) = temp_name_pid(&name) {
            if !other_process_alive(pid) {
                let _ = std::fs::remove_file(&path);
            }
        } else if name.starts_with(GEN_PREFIX)
            && Some(name.as_str()) != keep
            && current.as_deref() != Some(Path::new(&name))
        {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    Ok(())
}

/// Whether another process `pid` is running (false for this one: its own leftovers may go);
/// true when the system cannot tell.
fn other_process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        Path::new("/proc").join(pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

/// Commits one epoch's files: `write(folder)` writes every file of [`FILES`] into `folder`.
pub fn commit(dir: &Path, epoch: usize, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    #[cfg(unix)]
    {
        let name = format!("{GEN_PREFIX}{epoch:04}-{}", std::process::id());
        let generation = dir.join(&name);
        if generation.exists() {
            std::fs::remove_dir_all(&generation).map_err(io(&generation))?;
        }
        std::fs::create_dir(&generation).map_err(io(&generation))?;
        write(&generation)?;
        sync_dir(&generation)?;
        // the fixed names point into `.current` (dangling until the first switch)
        for f in FILES {
            let target = Path::new(CURRENT).join(f);
            if std::fs::read_link(dir.join(f)).ok().as_deref() != Some(target.as_path()) {
                link(dir, &target, f)?;
            }
        }
        // the switch: one atomic rename
        link(dir, Path::new(&name), CURRENT)?;
        sync_dir(dir)?;
        clean(dir, Some(&name))
    }
    #[cfg(not(unix))]
    {
        let _ = epoch;
        write(dir)
    }
}

/// Makes `dir/name` a symbolic link to `target`, atomically (a temporary link renamed over it).
#[cfg(unix)]
fn link(dir: &Path, target: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    let tmp: PathBuf = crate::io::npy::temp_path(&path);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

/// Makes the entries of `dir` durable (so the switch survives a power cut, not only a kill).
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}
