//! One error type for the whole library: a kind that decides the exit code, a message, and the
//! context a user needs to find the problem (which layer, which entry).

use std::fmt;
use std::io;

/// What went wrong, broadly; decides the exit code of the command-line tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The command line or the options do not make sense (exit 2).
    Usage,
    /// The image, one of its files or one of its layers is malformed or unsupported.
    Input,
    /// A digest did not match: the image is corrupt or was tampered with.
    Verification,
    /// The target cannot be used (not empty, not a directory).
    Target,
    /// The operating system refused an operation.
    Io,
    /// The user interrupted the run.
    Interrupted,
    /// A registry could not be reached, or kept failing (refused connections, broken
    /// transfers, 429 and 5xx answers after every retry): trying later may work (exit 3).
    Network,
    /// A registry refused access: credentials missing, wrong, or not enough (exit 4).
    Denied,
}

/// Which layer an error happened in: its number and digest.
///
/// Layers are numbered as every output of the tool numbers them: in the manifest's order,
/// from 1 at the bottom (the base) to N at the top, the order `docker history` lists
/// bottom-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// Its number: 1 is the bottom layer.
    pub number: usize,
    /// Its digest, where the image names one.
    pub digest: Option<String>,
}

impl fmt::Display for LayerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "layer {}", self.number)?;
        if let Some(d) = &self.digest {
            write!(f, " ({})", short_digest(d))?;
        }
        Ok(())
    }
}

/// `sha256:0123456789ab` instead of the full 71 characters.
pub fn short_digest(d: &str) -> &str {
    match d.find(':') {
        Some(i) if d.len() > i + 13 => &d[..i + 13],
        _ => d,
    }
}

/// The error of every fallible function in this crate.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    layer: Option<LayerRef>,
    entry: Option<String>,
    /// What caused it, kept whole (an OS error, a JSON parser's), not flattened to text.
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The result of every fallible function here.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            layer: None,
            entry: None,
            source: None,
        }
    }

    /// The caller asked for something that makes no sense.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    /// The image is malformed or unsupported.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Input, message)
    }

    /// An OS error while doing `what`; the kind stays `Io` unless the error says the input is bad.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        // An error of ours carried through a reader (a fetch that failed) comes out whole:
        // It says what went wrong better than `what` could: it is the error.
        if source.get_ref().is_some_and(|e| e.is::<Error>()) {
            if let Some(Ok(inner)) = source.into_inner().map(|e| e.downcast::<Error>()) {
                return *inner;
            }
            unreachable!("checked to be ours just above");
        }
        let kind = match source.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => ErrorKind::Input,
            io::ErrorKind::Interrupted => ErrorKind::Interrupted,
            _ => ErrorKind::Io,
        };
        Self::caused(kind, what, source)
    }

    /// `what` went wrong because of `source`, which is kept as this error's source.
    pub fn caused(
        kind: ErrorKind,
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            source: Some(Box::new(source)),
            ..Self::new(kind, what)
        }
    }

    /// This error as the cause of a wider one, `what` (shown `what: this error`), of the
    /// same kind.
    pub fn context(self, what: impl Into<String>) -> Self {
        Self::caused(self.kind, what, self)
    }

    /// This error, of another kind.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Attach the layer, unless a more precise one is already there.
    pub fn in_layer(mut self, layer: &LayerRef) -> Self {
        if self.layer.is_none() {
            self.layer = Some(layer.clone());
        }
        self
    }

    /// Attach the entry name (quoted, as every name is shown), unless one is already there.
    pub fn at_entry(mut self, entry: &[u8]) -> Self {
        if self.entry.is_none() {
            let shown = crate::vocabulary::path::show(entry);
            self.entry = Some(shown[1..].to_owned());
        }
        self
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The layer it happened in, if one.
    pub fn layer(&self) -> Option<&LayerRef> {
        self.layer.as_ref()
    }

    /// The entry it happened at, if one (as shown).
    pub fn entry(&self) -> Option<&str> {
        self.entry.as_deref()
    }

    /// What went wrong, without layer, entry or cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The underlying OS error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.source.as_ref()?.downcast_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.layer {
            write!(f, "{l}: ")?;
        }
        if let Some(e) = &self.entry {
            write!(f, "entry \"{e}\": ")?;
        }
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Adds `what` context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), io::Error::from(e)))
    }
}
