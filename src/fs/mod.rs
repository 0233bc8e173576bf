//! The target directory: every write the applier makes, confined to it, with metadata applied
//! in the only order that keeps it all.
//!
//! Order per entry: content, owner, extended attributes (after `chown`, which would clear
//! `security.capability`), mode (after `chown`, which clears setuid/setgid), times. A
//! directory gets its mode and times once everything below it is written, so that writing its
//! contents neither changes its mtime nor is refused by a read-only mode.
//!
//! Operations take a directory handle and a name: the applier walks the tree it builds from
//! handles it opened itself with `O_NOFOLLOW`. Only paths named by a layer (where a file is
//! first written, and the first name of a hardlinked node) are resolved, by [`resolve`].

pub mod resolve;
mod settle;
pub mod xattr;

use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use crate::error::{Error, ErrorKind, IoContext, LayerRef, Result};
pub use crate::layer::read::Body;
use crate::tar::{Kind, Meta, SparseMap, Timestamp};
use crate::vocabulary::path::show;
use crate::vocabulary::path::RelPath;
use resolve::Resolver;
pub use resolve::{Dir, Strategy};

/// What an unprivileged run (or a filesystem without xattr support) could not reproduce.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unreproduced {
    /// Entries whose owner is not the invoking user's.
    pub owners: u64,
    /// Device nodes skipped.
    pub devices: u64,
    /// Extended attributes refused by the kernel or the filesystem.
    pub xattrs: u64,
    /// One example per kind, for the summary line.
    pub examples: Vec<String>,
}

impl Unreproduced {
    /// True when everything was reproduced.
    pub fn is_empty(&self) -> bool {
        self.owners == 0 && self.devices == 0 && self.xattrs == 0
    }

    fn example(&mut self, s: String) {
        if self.examples.len() < 3 {
            self.examples.push(s);
        }
    }
}

/// A byte range of a file, read with `pread`.
struct FileRange<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = buf.len().min(self.end.saturating_sub(self.at) as usize);
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// The most `copy_file_range` copies at once, so an interrupt is noticed within a moment.
const COPY_CHUNK: u64 = 8 << 20;

/// The directory being written.
pub struct Target {
    res: Resolver,
    privileged: bool,
    /// Who we are: the owner new files get, and which owners an unprivileged run could not
    /// give.
    me: (u32, u32),
    /// The process umask, to tell when a new file already has its final mode.
    umask: u32,
    /// Whether `copy_file_range` works between the archive and the target (not across
    /// filesystems): after one refusal, contents go through a buffer.
    kernel_copy: bool,
    /// Checked between chunks of a file's content.
    cancel: crate::Cancel,
    unreproduced: Unreproduced,
    /// For copying through user space where the kernel cannot copy.
    buf: Vec<u8>,
    /// Finishes new nodes off this thread (their mode, times and close; small files and
    /// symlinks made whole), so that the reader only walks the tar and writes large files.
    settler: settle::Settler,
}

/// A file's content ended before its size.
fn short_content(written: u64, size: u64) -> Result<()> {
    if written < size {
        return Err(Error::input(format!(
            "the layer ends inside this file: {written} of {size} bytes"
        )));
    }
    Ok(())
}

fn ts(t: Timestamp) -> TimeSpec {
    TimeSpec::new(t.secs, i64::from(t.nanos))
}

fn open_dir_rw(dir: BorrowedFd<'_>, name: &[u8]) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM) | Some(libc::ENOTSUP) | Some(libc::EACCES) | Some(libc::EINVAL)
    )
}

impl Target {
    /// Opens `path`, which must be an existing directory (the caller checks it is empty).
    pub fn open(path: &Path, strategy: Strategy, cancel: crate::Cancel) -> Result<Target> {
        let root = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("cannot open target {}", path.display()))?;
        // One run per target: a second one fails at once instead of racing the first
        // (`File exists`). Emptiness is checked again under the lock, so that a run that
        // waited for another never writes over what it made.
        let shown = || crate::vocabulary::quote::quote_path(path);
        match rustix::fs::flock(&root, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(Error::new(
                    ErrorKind::Target,
                    format!(
                        "target {} is being written by another run of flatten",
                        shown()
                    ),
                ))
            }
            Err(e) => {
                return Err(Error::io(
                    format!("cannot lock target {}", shown()),
                    io::Error::from(e),
                ))
            }
        }
        // Read through the handle that was locked, not the path, which may have changed.
        let unreadable = |e: rustix::io::Errno| {
            Error::io(
                format!("cannot read target {}", shown()),
                io::Error::from(e),
            )
        };
        let entries = rustix::fs::Dir::read_from(&root).map_err(unreadable)?;
        let mut empty = true;
        for entry in entries {
            let name = entry.map_err(unreadable)?;
            if !matches!(name.file_name().to_bytes(), b"." | b"..") {
                empty = false;
                break;
            }
        }
        if !empty {
            return Err(Error::new(
                ErrorKind::Target,
                format!(
                    "target {} is not empty; flatten writes only into a new or empty directory",
                    shown()
                ),
            ));
        }
        let umask = current_umask();
        Ok(Target {
            res: Resolver::new(root, strategy),
            privileged: Uid::effective().is_root(),
            me: (Uid::effective().as_raw(), Gid::effective().as_raw()),
            umask,
            kernel_copy: true,
            cancel,
            unreproduced: Unreproduced::default(),
            buf: vec![0; 256 * 1024],
            settler: settle::Settler::default(),
        })
    }

    /// The root directory, opened for reading and metadata changes.
    pub fn open_root(&self) -> Result<OwnedFd> {
        open_dir_rw(self.res.root().fd(), b".").ctx(|| "cannot open the target".into())
    }

    /// The directory at a physical path (one with no symlink on it, such as every directory
    /// the applier made).
    pub fn dir(&mut self, phys: &[u8]) -> Result<Dir> {
        let path = RelPath::parse(phys)?;
        self.res
            .dir(&path, None)?
            .ok_or_else(|| Error::new(ErrorKind::Io, format!("directory {} vanished", show(phys))))
    }

    /// Opens directory `name` in `at`, never following a symlink.
    pub fn open_dir(&self, at: BorrowedFd<'_>, name: &[u8], phys: &[u8]) -> Result<OwnedFd> {
        open_dir_rw(at, name).ctx(|| format!("cannot open directory {}", show(phys)))
    }

    /// Makes directory `name` in `at` (`0700` until its mode is set at the end).
    pub fn mkdir(&mut self, at: BorrowedFd<'_>, name: &[u8], phys: &[u8]) -> Result<()> {
        nix::sys::stat::mkdirat(at, name, Mode::from_bits_truncate(0o700))
            .ctx(|| format!("cannot create directory {}", show(phys)))
    }

    /// Removes the non-directory `name` in `at`.
    pub fn unlink(&mut self, at: BorrowedFd<'_>, name: &[u8], phys: &[u8]) -> Result<()> {
        nix::unistd::unlinkat(at, name, UnlinkatFlags::NoRemoveDir)
            .ctx(|| format!("cannot remove {}", show(phys)))
    }

    /// Removes the empty directory `name` in `at`.
    pub fn rmdir(&mut self, at: BorrowedFd<'_>, name: &[u8], phys: &[u8]) -> Result<()> {
        self.res.invalidate(phys);
        nix::unistd::unlinkat(at, name, UnlinkatFlags::RemoveDir)
            .ctx(|| format!("cannot remove {}", show(phys)))
    }

    /// Moves `from` in `from_at` to `to` in `to_at` (both inside the target).
    pub fn rename(
        &mut self,
        from_at: BorrowedFd<'_>,
        from: &[u8],
        to_at: BorrowedFd<'_>,
        to: &[u8],
        phys: &[u8],
    ) -> Result<()> {
        nix::fcntl::renameat(from_at, from, to_at, to)
            .ctx(|| format!("cannot move a file to {}", show(phys)))
    }

    /// Writes a file at `path` with its content and metadata, making missing parents (as
    /// plain directories: their metadata is set later). `replace` first removes the file a
    /// same-layer entry wrote there. A small file may be made later, on the settling thread:
    /// an error there names `layer`.
    pub fn write_at(
        &mut self,
        path: &RelPath,
        meta: &Meta,
        size: u64,
        body: Body<'_>,
        replace: bool,
        layer: Option<&Arc<LayerRef>>,
    ) -> Result<()> {
        let (parent, name, phys) = self.new_node(path, replace)?;
        match body {
            Body::Stream(r) if size <= settle::SMALL && self.plain_meta(meta) => {
                let mut content = Vec::with_capacity(size as usize);
                r.take(size).read_to_end(&mut content).map_err(|e| {
                    Error::io("cannot read entry data", e).with_kind(ErrorKind::Input)
                })?;
                short_content(content.len() as u64, size)?;
                self.set_owner_fd(None, &phys, meta)?;
                let made = settle::Made::Whole {
                    dir: parent.fd.clone(),
                    name,
                    perm: meta.mode & 0o777,
                    content,
                };
                self.settle(made, self.file_mode(meta), phys, meta, layer)
            }
            body => self.write_new(parent.fd(), &name, &phys, meta, size, body),
        }
    }

    /// Makes symlink `path` to `target`, making missing parents, as [`Target::write_at`]
    /// writes a file; usually on the settling thread.
    pub fn symlink_at(
        &mut self,
        path: &RelPath,
        target: &[u8],
        meta: &Meta,
        replace: bool,
        layer: Option<&Arc<LayerRef>>,
    ) -> Result<()> {
        let (parent, name, phys) = self.new_node(path, replace)?;
        if !self.plain_meta(meta) {
            return self
                .make_leaf(
                    parent.fd(),
                    &name,
                    &phys,
                    &Kind::Symlink(target.to_vec()),
                    meta,
                )
                .map(drop);
        }
        self.set_owner_fd(None, &phys, meta)?;
        let made = settle::Made::Symlink {
            dir: parent.fd.clone(),
            name,
            target: target.into(),
        };
        self.settle(made, None, phys, meta, layer)
    }

    /// The directory that node `path` is made in (made as needed), its name and its
    /// physical path; with `replace`, the node a same-layer entry made there is removed
    /// first (once made: it may be waiting on the settling thread).
    fn new_node(&mut self, path: &RelPath, replace: bool) -> Result<(Dir, Box<[u8]>, Vec<u8>)> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::input("the root directory cannot be replaced"))?;
        let mut made = |_: BorrowedFd<'_>, _: &[u8], _: &[u8]| Ok(());
        let parent = self
            .res
            .dir(&path.parent(), Some(&mut made))?
            .ok_or_else(|| Error::input(format!("cannot create {path}")))?;
        let phys = parent.child(name);
        if replace {
            self.settler.wait()?;
            self.unlink(parent.fd(), name, &phys)?;
        }
        Ok((parent, name.into(), phys))
    }

    /// Whether what a new node needs besides its content and times can be left out here:
    /// no owner to give (or an unprivileged run, which only notes it) and no xattrs. Where
    /// there is, it is given on this thread, where its failures are noted.
    fn plain_meta(&self, meta: &Meta) -> bool {
        meta.xattrs.is_empty() && (!self.privileged || (meta.uid, meta.gid) == self.me)
    }

    /// Creates file `name` in `at` (it must not exist) with its content and metadata.
    pub fn write_new(
        &mut self,
        at: BorrowedFd<'_>,
        name: &[u8],
        phys: &[u8],
        meta: &Meta,
        size: u64,
        body: Body<'_>,
    ) -> Result<()> {
        let fd = openat(
            at,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(meta.mode & 0o777),
        )
        .ctx(|| format!("cannot create {}", show(phys)))?;
        let file = File::from(fd);
        let written = match body {
            Body::Stream(r) => self.copy_stream(&file, r, phys)?,
            Body::Range { file: src, offset } => self.copy_range(&file, src, offset, size, phys)?,
            Body::Sparse { map, pieces } => self.copy_sparse(&file, map, pieces, phys)?,
        };
        short_content(written, size)?;
        self.set_owner_fd(Some(file.as_fd()), phys, meta)?;
        self.set_xattrs_fd(file.as_fd(), phys, meta)?;
        let mode = self.file_mode(meta);
        self.settle(settle::Made::Written(file), mode, phys.to_vec(), meta, None)
    }

    /// Hands a new node to the settling thread for its times, its mode where `mode` says
    /// (and, for a small file or a symlink, its making).
    fn settle(
        &mut self,
        made: settle::Made,
        mode: Option<u32>,
        phys: Vec<u8>,
        meta: &Meta,
        layer: Option<&Arc<LayerRef>>,
    ) -> Result<()> {
        self.settler.push(settle::Unsettled {
            made,
            mode,
            atime: meta.atime.unwrap_or(meta.mtime),
            mtime: meta.mtime,
            phys,
            layer: layer.cloned(),
        })
    }

    /// The mode a new file must still be given: none when it was created with its final
    /// mode (the umask leaves it whole and no chown will clear setuid/setgid), one fchmod
    /// less per file.
    fn file_mode(&self, meta: &Meta) -> Option<u32> {
        let done = meta.mode & 0o7000 == 0 && meta.mode & self.umask == 0;
        (!done).then_some(meta.mode)
    }

    /// Waits until every file written so far has its mode and times: the first error in
    /// setting them, if any.
    pub fn settled(&mut self) -> Result<()> {
        self.settler.wait()
    }

    fn interrupted(&self, phys: &[u8]) -> Result<()> {
        self.cancel
            .check(|| format!("interrupted while writing {}", show(phys)))
    }

    /// Whether the run was asked to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The token that stops the run.
    pub fn cancel(&self) -> &crate::Cancel {
        &self.cancel
    }

    /// Writes `body` to `out` straight from the reader's own buffer: with digests checked,
    /// that is the very chunk that was hashed, written without another copy.
    fn copy_stream(&mut self, mut out: &File, body: &mut dyn BufRead, phys: &[u8]) -> Result<u64> {
        let mut written = 0u64;
        loop {
            self.interrupted(phys)?;
            let next = match body.fill_buf() {
                Ok([]) => return Ok(written),
                Ok(next) => next,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::io("cannot read entry data", e).with_kind(ErrorKind::Input))
                }
            };
            let n = next.len().min(COPY_CHUNK as usize);
            out.write_all(&next[..n])
                .ctx(|| format!("cannot write {}", show(phys)))?;
            body.consume(n);
            written += n as u64;
        }
    }

    /// Copies a byte range of the archive through our buffer (another filesystem, where
    /// `copy_file_range` refuses).
    fn copy_read(&mut self, mut out: &File, mut range: FileRange<'_>, phys: &[u8]) -> Result<u64> {
        let mut written = 0u64;
        loop {
            self.interrupted(phys)?;
            let n = match range.read(&mut self.buf) {
                Ok(0) => return Ok(written),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::io("cannot read entry data", e).with_kind(ErrorKind::Input))
                }
            };
            out.write_all(&self.buf[..n])
                .ctx(|| format!("cannot write {}", show(phys)))?;
            written += n as u64;
        }
    }

    /// Writes each piece of a sparse file at its offset, then gives the file its size: the
    /// holes are never written, so they stay holes where the filesystem has them.
    fn copy_sparse(
        &mut self,
        out: &File,
        map: &SparseMap,
        pieces: &mut dyn BufRead,
        phys: &[u8],
    ) -> Result<u64> {
        use std::io::{Seek, SeekFrom};
        let mut out = out;
        for p in &map.pieces {
            out.seek(SeekFrom::Start(p.offset))
                .ctx(|| format!("cannot write {}", show(phys)))?;
            let n = self.copy_stream(out, &mut pieces.take(p.len), phys)?;
            if n < p.len {
                return Ok(p.offset + n);
            }
        }
        out.set_len(map.size)
            .ctx(|| format!("cannot write {}", show(phys)))?;
        Ok(map.size)
    }

    /// Copies `size` bytes at `offset` of `src` into `out` without bringing them to user
    /// space; where the kernel cannot (another filesystem), through a buffer.
    fn copy_range(
        &mut self,
        out: &File,
        src: &File,
        offset: u64,
        size: u64,
        phys: &[u8],
    ) -> Result<u64> {
        let range = FileRange {
            file: src,
            at: offset,
            end: offset + size,
        };
        if !self.kernel_copy {
            return self.copy_read(out, range, phys);
        }
        let mut off = offset as i64;
        let mut done = 0u64;
        while done < size {
            self.interrupted(phys)?;
            let want = (size - done).min(COPY_CHUNK) as usize;
            match nix::fcntl::copy_file_range(src, Some(&mut off), out, None, want) {
                Ok(0) => return Ok(done),
                Ok(n) => done += n as u64,
                Err(Errno::EINTR) => {}
                Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP)
                    if done == 0 =>
                {
                    self.kernel_copy = false;
                    return self.copy_read(out, range, phys);
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot write {}", show(phys)),
                        io::Error::from(e),
                    ))
                }
            }
        }
        Ok(done)
    }

    /// Creates a node without content (an empty file, a symlink, a device, a fifo) with its
    /// metadata. Returns false for a device an unprivileged run cannot make.
    pub fn make_leaf(
        &mut self,
        at: BorrowedFd<'_>,
        name: &[u8],
        phys: &[u8],
        kind: &Kind,
        meta: &Meta,
    ) -> Result<bool> {
        match kind {
            Kind::File => {
                self.write_new(at, name, phys, meta, 0, Body::Stream(&mut io::empty()))?
            }
            Kind::Symlink(target) => {
                nix::unistd::symlinkat(target.as_slice(), at, name)
                    .ctx(|| format!("cannot create symlink {}", show(phys)))?;
                self.set_meta_at(at, name, phys, meta, false)?;
            }
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                if !self.privileged {
                    self.unreproduced.devices += 1;
                    self.unreproduced
                        .example(format!("device {} skipped", show(phys)));
                    return Ok(false);
                }
                let sflag = if matches!(kind, Kind::CharDevice { .. }) {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let dev = nix::sys::stat::makedev(u64::from(*major), u64::from(*minor));
                nix::sys::stat::mknodat(at, name, sflag, Mode::from_bits_truncate(0o600), dev)
                    .ctx(|| format!("cannot create device {}", show(phys)))?;
                self.set_meta_at(at, name, phys, meta, true)?;
            }
            Kind::Fifo => {
                nix::unistd::mkfifoat(at, name, Mode::from_bits_truncate(0o600))
                    .ctx(|| format!("cannot create fifo {}", show(phys)))?;
                self.set_meta_at(at, name, phys, meta, true)?;
            }
            Kind::Dir | Kind::Hardlink(_) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("{}: a {} is not a leaf", show(phys), kind.name()),
                ))
            }
        }
        Ok(true)
    }

    /// Makes `name` in `at` another name of the node at the physical path `home`.
    pub fn link(
        &mut self,
        home: &[u8],
        at: BorrowedFd<'_>,
        name: &[u8],
        phys: &[u8],
    ) -> Result<()> {
        let home_path = RelPath::parse(home)?;
        let hname = home_path
            .file_name()
            .ok_or_else(|| Error::input("hardlink to the root directory"))?;
        let hdir = self
            .res
            .dir(&home_path.parent(), None)?
            .ok_or_else(|| Error::new(ErrorKind::Io, format!("{} vanished", show(home))))?;
        nix::unistd::linkat(hdir.fd(), hname, at, name, AtFlags::empty())
            .ctx(|| format!("cannot link {} to {}", show(phys), show(home)))
    }

    /// A directory's owner and extended attributes (its mode and times come last, from
    /// [`Target::dir_mode_times`]).
    pub fn dir_owner_xattrs(&mut self, fd: BorrowedFd<'_>, phys: &[u8], meta: &Meta) -> Result<()> {
        self.set_owner_fd(Some(fd), phys, meta)?;
        self.set_xattrs_fd(fd, phys, meta)
    }

    /// A directory's mode and times, once nothing more is written into it.
    /// On the settling thread, after what was handed to it before: every entry of the
    /// directory is made by then, so nothing changes its times after.
    pub fn dir_mode_times(&mut self, fd: OwnedFd, phys: &[u8], meta: &Meta) -> Result<()> {
        let made = settle::Made::Written(File::from(fd));
        self.settle(made, Some(meta.mode), phys.to_vec(), meta, None)
    }

    /// Waits for the last files to be settled; what could not be reproduced.
    pub fn finish(mut self) -> Result<Unreproduced> {
        self.settled()?;
        Ok(std::mem::take(&mut self.unreproduced))
    }

    /// Owner, xattrs, mode (not for symlinks) and times of a non-directory by name.
    fn set_meta_at(
        &mut self,
        at: BorrowedFd<'_>,
        name: &[u8],
        phys: &[u8],
        meta: &Meta,
        chmod: bool,
    ) -> Result<()> {
        if self.privileged && (meta.uid, meta.gid) != self.me {
            if let Err(e) = nix::unistd::fchownat(
                at,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                self.owner_failed(phys, e.into())?;
            }
        } else if !self.privileged {
            self.owner_skipped(phys, meta);
        }
        for (k, v) in &meta.xattrs {
            if let Err(e) = xattr::set_at(at, name, k, v) {
                self.xattr_failed(phys, k, e)?;
            }
        }
        if chmod {
            nix::sys::stat::fchmodat(
                at,
                name,
                Mode::from_bits_truncate(meta.mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .ctx(|| format!("cannot set mode of {}", show(phys)))?;
        }
        let atime = meta.atime.unwrap_or(meta.mtime);
        nix::sys::stat::utimensat(
            at,
            name,
            &ts(atime),
            &ts(meta.mtime),
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .ctx(|| format!("cannot set times of {}", show(phys)))
    }

    /// Gives a new file its owner; `None` for a file still to be made, which must need no
    /// change of owner (an unprivileged run only notes what it cannot give).
    fn set_owner_fd(&mut self, fd: Option<BorrowedFd<'_>>, phys: &[u8], meta: &Meta) -> Result<()> {
        if !self.privileged {
            self.owner_skipped(phys, meta);
            return Ok(());
        }
        // New nodes are ours already (no directory is setgid until the end).
        let Some(fd) = fd.filter(|_| (meta.uid, meta.gid) != self.me) else {
            return Ok(());
        };
        match nix::unistd::fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        ) {
            Ok(()) => Ok(()),
            Err(e) => self.owner_failed(phys, e.into()),
        }
    }

    fn set_xattrs_fd(&mut self, fd: BorrowedFd<'_>, phys: &[u8], meta: &Meta) -> Result<()> {
        for (k, v) in &meta.xattrs {
            if let Err(e) = xattr::fset(fd, k, v) {
                self.xattr_failed(phys, k, e)?;
            }
        }
        Ok(())
    }

    fn owner_skipped(&mut self, phys: &[u8], meta: &Meta) {
        if (meta.uid, meta.gid) != self.me {
            if self.unreproduced.owners == 0 {
                self.unreproduced.example(format!(
                    "owner {}:{} of {}",
                    meta.uid,
                    meta.gid,
                    show(phys)
                ));
            }
            self.unreproduced.owners += 1;
        }
    }

    /// Root in a user namespace cannot give away files to unmapped ids: note it, go on.
    fn owner_failed(&mut self, phys: &[u8], e: io::Error) -> Result<()> {
        if is_unsupported(&e) {
            self.unreproduced.owners += 1;
            self.unreproduced
                .example(format!("owner of {}: {e}", show(phys)));
            Ok(())
        } else {
            Err(Error::io(format!("cannot chown {}", show(phys)), e))
        }
    }

    fn xattr_failed(&mut self, phys: &[u8], name: &[u8], e: io::Error) -> Result<()> {
        if is_unsupported(&e) {
            if self.unreproduced.xattrs == 0 {
                self.unreproduced.example(format!(
                    "xattr {} of {}: {e}",
                    crate::vocabulary::quote::quote(name),
                    show(phys)
                ));
            }
            self.unreproduced.xattrs += 1;
            Ok(())
        } else {
            Err(Error::io(
                format!(
                    "cannot set xattr {} of {}",
                    crate::vocabulary::quote::quote(name),
                    show(phys)
                ),
                e,
            ))
        }
    }
}

/// The entries of directory `name` under `at` (without `.` and `..`), with the type
/// `getdents` reports where it reports one.
pub fn read_dir(
    at: BorrowedFd<'_>,
    name: &[u8],
    phys: &[u8],
) -> Result<Vec<(Vec<u8>, Option<nix::dir::Type>)>> {
    let fd = open_dir_rw(at, name).ctx(|| format!("cannot open directory {}", show(phys)))?;
    let mut d =
        nix::dir::Dir::from_fd(fd).ctx(|| format!("cannot read directory {}", show(phys)))?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e.ctx(|| format!("cannot read directory {}", show(phys)))?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push((n.to_vec(), e.file_type()));
        }
    }
    Ok(out)
}

/// The process umask, read without changing it (setting it to learn it would change it for
/// every thread for a moment). Where the kernel does not say (before Linux 4.7), every bit
/// counts as masked: each file then gets an explicit chmod.
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o777)
}
