//! Progress and cancellation: how a long run tells its caller where it is, and how the
//! caller stops it. The library changes no process-wide state for either: the caller owns
//! the [`Cancel`] token (the command line sets it from its signal handler).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Told about progress; `()` ignores it.
pub trait Observer: Send {
    /// Layer `index` of `count` starts; `size` is its stored size if known.
    fn layer_start(&mut self, _index: usize, _count: usize, _size: Option<u64>) {}
    /// `bytes` more of the current layer's blob were read.
    fn advance(&mut self, _bytes: u64) {}
    /// Layer `index` is read.
    fn layer_done(&mut self, _index: usize) {}
    /// `bytes` more of an archive that must be had whole before it can be read (standard
    /// input, a pipe, a compressed archive) were copied to a temporary file.
    fn spooled(&mut self, _bytes: u64) {}
    /// A blob (`what`, its digest) starts being fetched from a registry, beside the
    /// reading; the handle is told how the fetch goes, from the thread that fetches.
    fn download(&mut self, _what: &str, _size: Option<u64>) -> Box<dyn Download> {
        Box::new(())
    }
}

impl Observer for () {}

/// How one fetch goes, told from the thread doing it; `()` ignores it.
pub trait Download: Send {
    /// `bytes` more arrived (or were found in the cache).
    fn advance(&mut self, _bytes: u64) {}
    /// The fetch ended, well or not.
    fn finish(&mut self) {}
}

impl Download for () {}

/// Asks a run to stop: checked between entries and between chunks of a file's content, so a
/// run stops within a moment, with an `Interrupted` error. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token nobody has cancelled yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks every run holding this token (or a clone) to stop. Only stores to an atomic, so
    /// a signal handler may call it.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// An `Interrupted` error, saying `what` was going on, if the run is to stop.
    pub fn check(&self, what: impl FnOnce() -> String) -> crate::Result<()> {
        if self.is_cancelled() {
            return Err(crate::Error::new(crate::ErrorKind::Interrupted, what()));
        }
        Ok(())
    }
}
