//! The crate's error type: a kind (which decides the process exit code) and a
//! one-line message that names what failed and where.

use std::fmt;

/// What kind of failure an [`Error`] is; the binary maps it to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad configuration, arguments, or a target table that does not fit the
    /// source (fix the job, then re-run).
    Config,
    /// Source data that cannot be delivered exactly (a value out of range,
    /// rows StarRocks rejected, a corrupt file).
    Data,
    /// A server, network or storage failure that outlasted the retry budget;
    /// re-running the same job resumes it.
    Infra,
    /// Delivered rows do not match what was sent.
    Verify,
    /// A bug or an unexpected state.
    Internal,
}

/// A starload error.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of the given kind.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error { kind, msg: msg.into() }
    }
    /// A configuration error.
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, msg)
    }
    /// A data error.
    pub fn data(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Data, msg)
    }
    /// An infrastructure error.
    pub fn infra(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Infra, msg)
    }
    /// A verification error.
    pub fn verify(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Verify, msg)
    }
    /// An internal error.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, msg)
    }
    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message, without a kind prefix.
    pub fn message(&self) -> &str {
        &self.msg
    }
    /// Prefixes the message with context (`"{ctx}: {msg}"`).
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.msg = format!("{ctx}: {}", self.msg);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, always: multi-line causes are folded.
        let one_line = self.msg.replace(['\n', '\r'], " ");
        f.write_str(one_line.trim())
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::infra(e.to_string())
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::infra(crate::source::describe_store_error(&e))
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as D;
        let root = e.find_root();
        match root {
            D::ObjectStore(os) => Error::infra(crate::source::describe_store_error(os)),
            D::ParquetError(p) => Error::data(format!("cannot read Parquet: {p}")),
            D::ArrowError(a, _) => Error::data(format!("cannot decode: {a}")),
            D::Plan(_) | D::SchemaError(..) | D::SQL(..) => Error::config(root.to_string()),
            // Errors of starload's own stream stages, without DataFusion's prefix.
            D::External(x) => Error::data(x.to_string()),
            _ => Error::new(ErrorKind::Data, root.to_string()),
        }
    }
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Error::data(format!("cannot read Parquet: {e}"))
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::data(e.to_string())
    }
}

thread_local! {
    static EXPECTED_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, catching a panic that a dependency is known to raise on some
/// input (which the caller turns into an error naming the input): the
/// panic hook [`install_panic_hook`] installs stays quiet for it, so the
/// user sees that error, not a panic message and backtrace before it.
pub fn catch_expected_panic<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    EXPECTED_PANIC.set(true);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    EXPECTED_PANIC.set(false);
    r
}

/// Keeps the default panic hook for every panic but those caught by
/// [`catch_expected_panic`] (for the binary; a library leaves the hook to
/// its application).
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !EXPECTED_PANIC.get() {
            default(info)
        }
    }));
}

/// The message a panic carried (`panic!("…")` gives a `String` or a
/// `&str`).
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}
