//! The last steps of new nodes on a thread of their own; for small files and symlinks, all
//! of it.
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
//!
//! Files are made only while layers are read, and directories' times handed over only
//! after (step 4, each directory after its entries are made): so whatever is in flight at a
//! wait can be settled in any order, and the reader shares it with the thread.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
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
    /// To be made as symlink `name` in `dir`, pointing at `target`.
    Symlink {
        dir: Arc<OwnedFd>,
        name: Box<[u8]>,
        target: Box<[u8]>,
    },
}

impl Unsettled {
    /// Makes and finishes it; an error of a node from a layer names the layer and the entry.
    fn settle(self) -> Result<()> {
        let Unsettled {
            made,
            mode,
            atime,
            mtime,
            phys,
            layer,
        } = self;
        let run = || -> Result<()> {
            let file = match made {
                Made::Symlink { dir, name, target } => {
                    nix::unistd::symlinkat(&*target, &*dir, &*name)
                        .ctx(|| format!("cannot create symlink {}", show(&phys)))?;
                    return nix::sys::stat::utimensat(
                        &*dir,
                        &*name,
                        &ts(atime),
                        &ts(mtime),
                        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                    )
                    .ctx(|| format!("cannot set times of {}", show(&phys)));
                }
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
                    .ctx(|| format!("cannot create {}", show(&phys)))?;
                    let mut file = File::from(fd);
                    file.write_all(&content)
                        .ctx(|| format!("cannot write {}", show(&phys)))?;
                    file
                }
            };
            let fd = file.as_fd();
            if let Some(mode) = mode {
                nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))
                    .ctx(|| format!("cannot set mode of {}", show(&phys)))?;
            }
            nix::sys::stat::futimens(fd, &ts(atime), &ts(mtime))
                .ctx(|| format!("cannot set times of {}", show(&phys)))
        };
        run().map_err(|e| match &layer {
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
        batch.into_iter().try_for_each(Unsettled::settle)
    }

    /// Settles what is left and waits for the thread: the first error, if any. The
    /// batches still in flight are shared between the thread and this one, so that the
    /// drain at the end of a reading takes both cores. The next file handed over starts a
    /// new thread.
    pub fn wait(&mut self) -> Result<()> {
        let mut first = Ok(());
        self.batch_bytes = 0;
        let own = std::mem::take(&mut self.batch);
        let failed = self.worker.as_ref().map(|w| w.failed.clone());
        settle_batch(
            own,
            &mut first,
            failed.as_deref().unwrap_or(&AtomicBool::new(false)),
        );
        if let Some(Worker {
            tx,
            queue,
            handle,
            failed,
        }) = self.worker.take()
        {
            drop(tx);
            loop {
                let next = lock(&queue).try_recv();
                match next {
                    Ok(batch) => settle_batch(batch, &mut first, &failed),
                    Err(_) => break,
                }
            }
            let theirs = handle.join().unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Io,
                    "the thread making and finishing files panicked",
                ))
            });
            first = theirs.and(first);
        }
        first
    }
}

/// Settles the files of `batch` until the first error (in `first`, or told by `failed`):
/// after it, the rest are only closed (or not made).
fn settle_batch(batch: Vec<Unsettled>, first: &mut Result<()>, failed: &AtomicBool) {
    for file in batch {
        if first.is_ok() && !failed.load(Ordering::Relaxed) {
            *first = file.settle();
            if first.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Settler {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// The batches in flight, taken by the thread (and, at the end, by the reader as well).
type Queue = Arc<Mutex<Receiver<Vec<Unsettled>>>>;

struct Worker {
    tx: SyncSender<Vec<Unsettled>>,
    queue: Queue,
    handle: JoinHandle<Result<()>>,
    /// Set at the first error, so that the reader stops handing over files.
    failed: Arc<AtomicBool>,
}

fn spawn() -> std::io::Result<Worker> {
    let (tx, rx) = sync_channel::<Vec<Unsettled>>(DEPTH);
    let queue: Queue = Arc::new(Mutex::new(rx));
    let failed = Arc::new(AtomicBool::new(false));
    let (theirs, flag) = (queue.clone(), failed.clone());
    let handle = std::thread::Builder::new()
        .name("settle".into())
        .spawn(move || {
            crate::vocabulary::background::lower_priority();
            let mut first = Ok(());
            loop {
                // Held while waiting: the reader takes batches only once it sends no more.
                let next = lock(&theirs).recv();
                match next {
                    Ok(batch) => settle_batch(batch, &mut first, &flag),
                    Err(_) => return first,
                }
            }
        })?;
    Ok(Worker {
        tx,
        queue,
        handle,
        failed,
    })
}
