//! Typed errors of the library. Every message names the argument at fault and, where one
//! exists, the fix; the binary prints it on one line and exits with code 2 (bad input) or 1.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument (a parameter, a tensor's shape, a spec string) is invalid.
    /// `arg` is the PyTorch / CLI name of the argument, `msg` says what is wrong and how to fix it.
    #[error("{arg}: {msg}")]
    InvalidArgument { arg: String, msg: String },

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A file was read but its contents are not what they should be (bad `.npy` header, dtype, ...).
    #[error("{}: {msg}", path.display())]
    BadFile { path: PathBuf, msg: String },

    /// The operation is valid but would need more memory than the stated limit.
    #[error("{what}: {msg}")]
    TooLarge { what: String, msg: String },
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn arg(arg: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            arg: arg.into(),
            msg: msg.into(),
        }
    }

    /// True when the error is the user's input (exit code 2), false for runtime failures (exit 1).
    pub fn is_usage(&self) -> bool {
        match self {
            Error::InvalidArgument { .. } | Error::BadFile { .. } | Error::TooLarge { .. } => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ),
        }
    }
}

/// Returns `Err(Error::InvalidArgument)` built from `arg` and a formatted message.
#[macro_export]
macro_rules! bail_arg {
    ($arg:expr, $($fmt:tt)+) => {
        return Err($crate::error::Error::arg($arg, format!($($fmt)+)))
    };
}
