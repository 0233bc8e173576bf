//! The last steps of a new file (its mode, its times, the close) on a thread of their own.
//!
//! Content takes one `write` or a few; mode, times and close are two or three more syscalls
//! that need nothing but the open file. Handed to a second thread in batches, they run on
//! the core that hashing or inflating leaves idle instead of behind the writer.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use nix::sys::stat::Mode;

use super::ts;
use crate::error::{IoContext, Result};
use crate::tar::Timestamp;
use crate::vocabulary::path::show;

/// Files handed over at once: one wake-up of the other thread per batch, not per file.
const BATCH: usize = 64;
/// Batches in flight, bounding the open files at `BATCH * (DEPTH + 1)` or so.
const DEPTH: usize = 4;

/// A written file waiting for its mode and times.
pub(super) struct Unsettled {
    pub file: File,
    /// The mode to set, when the file was not created with it.
    pub mode: Option<u32>,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    /// Its name, for an error.
    pub phys: Vec<u8>,
}

impl Unsettled {
    fn settle(self) -> Result<()> {
        let fd = self.file.as_fd();
        if let Some(mode) = self.mode {
            nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))
                .ctx(|| format!("cannot set mode of {}", show(&self.phys)))?;
        }
        nix::sys::stat::futimens(fd, &ts(self.atime), &ts(self.mtime))
            .ctx(|| format!("cannot set times of {}", show(&self.phys)))
    }
}

/// Settles files on another thread, started with the first file.
#[derive(Default)]
pub(super) struct Settler {
    batch: Vec<Unsettled>,
    worker: Option<Worker>,
    /// No thread could be started: files are settled here.
    inline: bool,
}

impl Settler {
    /// Settles `file`, now or later; an error surfaces by [`Settler::wait`] at the latest.
    pub fn push(&mut self, file: Unsettled) -> Result<()> {
        self.batch.push(file);
        if self.batch.len() < BATCH {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if self.worker.is_none() && !self.inline {
            self.worker = spawn().ok();
            self.inline = self.worker.is_none();
        }
        let batch = match &self.worker {
            Some((tx, _)) => match tx.send(batch) {
                Ok(()) => return Ok(()),
                // The thread is gone (it panicked): the work is done here.
                Err(returned) => returned.0,
            },
            None => batch,
        };
        batch.into_iter().try_for_each(Unsettled::settle)
    }

    /// Settles what is left and waits for the thread: the first error, if any.
    pub fn wait(&mut self) -> Result<()> {
        let mut first = Ok(());
        if let Some((tx, handle)) = self.worker.take() {
            drop(tx);
            first = handle.join().unwrap_or_else(|_| {
                Err(crate::error::Error::new(
                    crate::error::ErrorKind::Io,
                    "the thread setting file times panicked",
                ))
            });
        }
        for file in self.batch.drain(..) {
            let done = file.settle();
            if first.is_ok() {
                first = done;
            }
        }
        first
    }
}

impl Drop for Settler {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

type Worker = (SyncSender<Vec<Unsettled>>, JoinHandle<Result<()>>);

fn spawn() -> std::io::Result<Worker> {
    let (tx, rx) = sync_channel::<Vec<Unsettled>>(DEPTH);
    let handle = std::thread::Builder::new()
        .name("settle".into())
        .spawn(move || {
            let mut first = Ok(());
            for batch in rx {
                for file in batch {
                    // After an error the rest are only closed.
                    if first.is_ok() {
                        first = file.settle();
                    }
                }
            }
            first
        })?;
    Ok((tx, handle))
}
