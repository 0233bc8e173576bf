//! The last steps of a new file on a thread of their own: for a small file, all of it.
//!
//! A file written by the reader still needs its mode, its times and a close: two or three
//! syscalls that need nothing but the open file. A small file is cheaper to copy than to
//! make: its content is copied out of the stream and the file is made here, created, written
//! and finished. The reader then only walks the tar, makes directories and writes large
//! files, and the many small files of a layer (a stretch of `/usr/share/zoneinfo`, dpkg's
//! lists) are made on the core that the inflater leaves idle, instead of behind the reader.
//! The thread yields to the inflater (`vocabulary::background`).
//!
//! An error here surfaces at the next file handed over, or at [`Settler::wait`], naming the
//! layer and entry it happened at.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::ts;
use crate::error::{Error, ErrorKind, IoContext, LayerRef, Result};
use crate::tar::Timestamp;
use crate::vocabulary::path::show;

/// Files handed over at once: one wake-up of the other thread per batch, not per file.
const BATCH: usize = 64;
/// Content bytes handed over at once, at most (and a file larger than this is written by
/// the reader).
const BATCH_BYTES: usize = 1 << 20;
/// Batches in flight, bounding the open files at `BATCH * (DEPTH + 1)` or so, and the
/// copied content at `BATCH_BYTES * (DEPTH + 2)`.
const DEPTH: usize = 4;
/// The largest file made whole on the settling thread: below this, copying the content costs
/// less than the syscalls that move with it.
pub(super) const SMALL: u64 = 64 << 10;

/// A new file waiting for the settling thread.
pub(super) struct Unsettled {
    pub made: Made,
    /// The mode to set after writing, when the file was not created with it.
    pub mode: Option<u32>,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    /// Its name, for an error.
    pub phys: Vec<u8>,
    /// The layer whose entry it is, placed as the entry names it (none for what is made
    /// from the plan), for an error.
    pub layer: Option<Arc<LayerRef>>,
}

/// How far a new file is made.
pub(super) enum Made {
    /// Created and written (or a directory whose entries are all made): it is open.
    Written(File),
    /// To be created as `name` in `dir`, with permission bits `perm`, holding `content`.
    Whole {
        dir: Arc<OwnedFd>,
        name: Box<[u8]>,
        perm: u32,
        content: Vec<u8>,
    },
}

impl Unsettled {
    fn settle(self) -> Result<()> {
        let phys = &self.phys;
        let file = match self.made {
            Made::Written(file) => file,
            Made::Whole {
                dir,
                name,
                perm,
                content,
            } => {
                let fd = openat(
                    &*dir,
                    &*name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(perm),
                )
                .ctx(|| format!("cannot create {}", show(phys)))?;
                let mut file = File::from(fd);
                file.write_all(&content)
                    .ctx(|| format!("cannot write {}", show(phys)))?;
                file
            }
        };
        let fd = file.as_fd();
        if let Some(mode) = self.mode {
            nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))
                .ctx(|| format!("cannot set mode of {}", show(phys)))?;
        }
        nix::sys::stat::futimens(fd, &ts(self.atime), &ts(self.mtime))
            .ctx(|| format!("cannot set times of {}", show(phys)))
    }

    /// Settles it; an error of a file from a layer names the layer and the entry.
    fn settle_placed(self) -> Result<()> {
        let phys = self.phys.clone();
        let layer = self.layer.clone();
        self.settle().map_err(|e| match &layer {
            Some(l) => e.at_entry(&phys).in_layer(l),
            None => e,
        })
    }
}

/// Settles files on another thread, started with the first batch.
#[derive(Default)]
pub(super) struct Settler {
    batch: Vec<Unsettled>,
    batch_bytes: usize,
    worker: Option<Worker>,
    /// No thread could be started: files are settled here.
    inline: bool,
}

impl Settler {
    /// Settles `file`, now or later. An error of an earlier file surfaces here (else by
    /// [`Settler::wait`] at the latest): after it, nothing more is made.
    pub fn push(&mut self, file: Unsettled) -> Result<()> {
        if let Some(w) = &self.worker {
            if w.failed.load(Ordering::Relaxed) {
                return self.wait();
            }
        }
        if let Made::Whole { content, .. } = &file.made {
            self.batch_bytes += content.len();
        }
        self.batch.push(file);
        if self.batch.len() < BATCH && self.batch_bytes < BATCH_BYTES {
            return Ok(());
        }
        self.batch_bytes = 0;
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if self.worker.is_none() && !self.inline {
            self.worker = spawn().ok();
            self.inline = self.worker.is_none();
        }
        let batch = match &self.worker {
            Some(w) => match w.tx.send(batch) {
                Ok(()) => return Ok(()),
                // The thread is gone (it panicked): the work is done here.
                Err(returned) => returned.0,
            },
            None => batch,
        };
        batch.into_iter().try_for_each(Unsettled::settle_placed)
    }

    /// Settles what is left and waits for the thread: the first error, if any. The next
    /// file handed over starts a new thread.
    pub fn wait(&mut self) -> Result<()> {
        let mut first = Ok(());
        if let Some(Worker { tx, handle, .. }) = self.worker.take() {
            drop(tx);
            first = handle.join().unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Io,
                    "the thread setting file times panicked",
                ))
            });
        }
        self.batch_bytes = 0;
        for file in self.batch.drain(..) {
            // After an error the rest are only closed (or not made).
            if first.is_ok() {
                first = file.settle_placed();
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

struct Worker {
    tx: SyncSender<Vec<Unsettled>>,
    handle: JoinHandle<Result<()>>,
    /// Set at the thread's first error, so that the reader stops handing over files.
    failed: Arc<AtomicBool>,
}

fn spawn() -> std::io::Result<Worker> {
    let (tx, rx) = sync_channel::<Vec<Unsettled>>(DEPTH);
    let failed = Arc::new(AtomicBool::new(false));
    let flag = failed.clone();
    let handle = std::thread::Builder::new()
        .name("settle".into())
        .spawn(move || {
            crate::vocabulary::background::lower_priority();
            let mut first = Ok(());
            for batch in rx {
                for file in batch {
                    // After an error the rest are only closed (or not made).
                    if first.is_ok() {
                        first = file.settle_placed();
                        if first.is_err() {
                            flag.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            first
        })?;
    Ok(Worker { tx, handle, failed })
}
