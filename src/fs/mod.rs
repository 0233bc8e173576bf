//! The target directory: every write, removal and metadata change the applier makes, confined
//! to the root by [`resolve`], with metadata applied in the only order that keeps it all.
//!
//! Order per entry: content, owner, extended attributes (after `chown`, which would clear
//! `security.capability`), mode (after `chown`, which clears setuid/setgid), times. Directories
//! get their mode and times at [`Target::finish`], deepest first, so that writing their contents
//! neither changes their mtime nor is refused by a read-only mode.

pub mod resolve;
pub mod xattr;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::layer::entry::{Header, Kind, Meta, Timestamp};
use crate::merge::{LayerPaths, Presence, RelPath};
use resolve::{is_under, show, Resolver};
pub use resolve::{Dir, Strategy};

/// Mode and times a directory gets once everything below it is written.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    atime: Timestamp,
    mtime: Timestamp,
}

/// Directories nobody described (missing parents) are `0755 root:root`, dated at the epoch so
/// that the result does not depend on when it was made.
const IMPLICIT_DIR: DirMeta = DirMeta {
    mode: 0o755,
    atime: Timestamp { secs: 0, nanos: 0 },
    mtime: Timestamp { secs: 0, nanos: 0 },
};

/// What stands at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Missing,
    Dir,
    Other,
}

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
    pub fn is_empty(&self) -> bool {
        self.owners == 0 && self.devices == 0 && self.xattrs == 0
    }

    fn example(&mut self, s: String) {
        if self.examples.len() < 3 {
            self.examples.push(s);
        }
    }
}

/// The directory being written.
pub struct Target {
    res: Resolver,
    privileged: bool,
    /// Who we are, for telling which owners an unprivileged run could not give.
    me: (u32, u32),
    dirs: BTreeMap<Vec<u8>, DirMeta>,
    /// What the current layer wrote, so that its whiteouts spare it.
    written: LayerPaths,
    unreproduced: Unreproduced,
    buf: Vec<u8>,
}

fn ts(t: Timestamp) -> TimeSpec {
    TimeSpec::new(t.secs, i64::from(t.nanos))
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
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
    pub fn open(path: &Path, strategy: Strategy) -> Result<Target> {
        let root = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("cannot open target {}", path.display()))?;
        raise_fd_limit();
        Ok(Target {
            res: Resolver::new(root, strategy),
            privileged: Uid::effective().is_root(),
            me: (Uid::effective().as_raw(), Gid::effective().as_raw()),
            dirs: BTreeMap::new(),
            written: LayerPaths::new(),
            unreproduced: Unreproduced::default(),
            buf: vec![0; 256 * 1024],
        })
    }

    /// True when owners and device nodes can be reproduced.
    pub fn privileged(&self) -> bool {
        self.privileged
    }

    /// Whether `path` is missing, a directory, or something else (not following a final
    /// symlink); a parent that is missing or not a directory makes it missing.
    pub fn standing(&mut self, path: &RelPath) -> Result<Standing> {
        let Some(name) = path.file_name() else {
            return Ok(Standing::Dir);
        };
        let Some(parent) = self.res.dir(&path.parent(), None)? else {
            return Ok(Standing::Missing);
        };
        let st = lstat_at(parent.fd(), name).ctx(|| format!("cannot look up {path}"))?;
        Ok(match st {
            None => Standing::Missing,
            Some(st) if file_type(&st) == SFlag::S_IFDIR => Standing::Dir,
            Some(_) => Standing::Other,
        })
    }

    /// Makes directory `path` and any missing parents (`0755 root`), resolving it inside the
    /// root like an entry's parent.
    pub fn make_dirs(&mut self, path: &RelPath) -> Result<()> {
        self.parent_for_write(path).map(drop)
    }

    /// Starts a new layer: whiteouts from now on spare only what it writes.
    pub fn begin_layer(&mut self) {
        self.written.clear();
    }

    /// Writes one entry at `path`, replacing what is there (a directory over a directory
    /// merges).
    pub fn put(&mut self, path: &RelPath, h: &Header, body: &mut dyn Read) -> Result<()> {
        let Some(name) = path.file_name() else {
            return self.put_root(h);
        };
        let phys = self.put_at(path, name, h, body)?;
        self.written.insert(&phys);
        Ok(())
    }

    fn put_at(
        &mut self,
        path: &RelPath,
        name: &[u8],
        h: &Header,
        body: &mut dyn Read,
    ) -> Result<Vec<u8>> {
        let parent = self.parent_for_write(&path.parent())?;
        let phys = parent.child(name);
        let existing =
            lstat_at(parent.fd(), name).ctx(|| format!("cannot look up {}", show(&phys)))?;
        if h.kind == Kind::Dir {
            let merge = existing
                .as_ref()
                .is_some_and(|st| file_type(st) == SFlag::S_IFDIR);
            if !merge {
                if existing.is_some() {
                    self.remove_at(&parent, name)?;
                }
                nix::sys::stat::mkdirat(parent.fd(), name, Mode::from_bits_truncate(0o700))
                    .ctx(|| format!("cannot create directory {}", show(&phys)))?;
            }
            let fd = self.set_dir_meta(parent.fd(), name, &phys, &h.meta, merge)?;
            self.res.remember(phys.clone(), fd);
            return Ok(phys);
        }
        if existing.is_some() {
            self.remove_at(&parent, name)?;
        }
        match &h.kind {
            Kind::File => self.write_file(&parent, name, &phys, h, body)?,
            Kind::Symlink(target) => {
                nix::unistd::symlinkat(target.as_slice(), parent.fd(), name)
                    .ctx(|| format!("cannot create symlink {}", show(&phys)))?;
                self.set_meta_at(&parent, name, &phys, &h.meta, false)?;
            }
            Kind::Hardlink(target) => self.link(&parent, name, &phys, target)?,
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                if !self.privileged {
                    self.unreproduced.devices += 1;
                    self.unreproduced
                        .example(format!("device {} skipped", show(&phys)));
                    return Ok(phys);
                }
                let kind = if matches!(h.kind, Kind::CharDevice { .. }) {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let dev = nix::sys::stat::makedev(u64::from(*major), u64::from(*minor));
                nix::sys::stat::mknodat(
                    parent.fd(),
                    name,
                    kind,
                    Mode::from_bits_truncate(0o600),
                    dev,
                )
                .ctx(|| format!("cannot create device {}", show(&phys)))?;
                self.set_meta_at(&parent, name, &phys, &h.meta, true)?;
            }
            Kind::Fifo => {
                nix::unistd::mkfifoat(parent.fd(), name, Mode::from_bits_truncate(0o600))
                    .ctx(|| format!("cannot create fifo {}", show(&phys)))?;
                self.set_meta_at(&parent, name, &phys, &h.meta, true)?;
            }
            Kind::Dir => unreachable!("handled above"),
        }
        Ok(phys)
    }

    /// Removes `path` with everything below it, as lower layers left it: whatever this layer
    /// wrote at or below it stays, its directories kept as bare parents.
    pub fn whiteout(&mut self, path: &RelPath) -> Result<()> {
        let Some(name) = path.file_name() else {
            return self.opaque(path);
        };
        let Some(parent) = self.res.dir(&path.parent(), None)? else {
            return Ok(());
        };
        let written = std::mem::take(&mut self.written);
        let r = self.prune_at(&parent, name, &written);
        self.written = written;
        r
    }

    /// Removes what lower layers put under directory `path`; the directory and this layer's
    /// writes stay.
    pub fn opaque(&mut self, path: &RelPath) -> Result<()> {
        let Some(dir) = self.res.dir(path, None)? else {
            return Ok(());
        };
        let written = std::mem::take(&mut self.written);
        let r = self.prune_children(&dir, &written);
        self.written = written;
        r
    }

    /// Removes `path` entirely (used for the AUFS hardlink directory after its layer).
    pub fn remove(&mut self, path: &RelPath) -> Result<()> {
        let Some(name) = path.file_name() else {
            return Err(Error::input("cannot remove the root"));
        };
        match self.res.dir(&path.parent(), None)? {
            Some(parent) => self.remove_at(&parent, name),
            None => Ok(()),
        }
    }

    /// Gives every directory its mode and times, deepest first. Returns what could not be
    /// reproduced.
    pub fn finish(mut self) -> Result<Unreproduced> {
        let dirs = std::mem::take(&mut self.dirs);
        let root =
            open_dir_rw(self.res.root().fd(), b".").ctx(|| "cannot open the target".into())?;
        // One pass over the tree's directories, depth first, each opened from its parent's
        // handle: no path is resolved, however deep the tree.
        struct Frame {
            fd: OwnedFd,
            path: Vec<u8>,
            subdirs: Vec<Vec<u8>>,
        }
        let mut stack = vec![Frame {
            subdirs: subdirs(root.as_fd(), b"")?,
            fd: root,
            path: Vec::new(),
        }];
        while let Some(top) = stack.last_mut() {
            if let Some(name) = top.subdirs.pop() {
                let path = resolve::join(&top.path, &name);
                let fd = open_dir_rw(top.fd.as_fd(), &name)
                    .ctx(|| format!("cannot open directory {}", show(&path)))?;
                stack.push(Frame {
                    subdirs: subdirs(fd.as_fd(), &path)?,
                    fd,
                    path,
                });
                continue;
            }
            let Some(done) = stack.pop() else { break };
            if let Some(m) = dirs.get(&done.path) {
                nix::sys::stat::fchmod(done.fd.as_fd(), Mode::from_bits_truncate(m.mode))
                    .ctx(|| format!("cannot set mode of {}", show(&done.path)))?;
                nix::sys::stat::futimens(done.fd.as_fd(), &ts(m.atime), &ts(m.mtime))
                    .ctx(|| format!("cannot set times of {}", show(&done.path)))?;
            }
        }
        Ok(self.unreproduced)
    }

    fn parent_for_write(&mut self, parent: &RelPath) -> Result<Dir> {
        let privileged = self.privileged;
        let dirs = &mut self.dirs;
        let written = &mut self.written;
        let unrep = &mut self.unreproduced;
        let mut on_create = |at: BorrowedFd<'_>, name: &[u8], phys: &[u8]| -> Result<()> {
            if privileged {
                nix::unistd::fchownat(
                    at,
                    name,
                    Some(Uid::from_raw(0)),
                    Some(Gid::from_raw(0)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .ctx(|| format!("cannot chown {}", show(phys)))?;
            } else {
                unrep.owners += 1;
            }
            dirs.insert(phys.to_vec(), IMPLICIT_DIR);
            // Made by this layer, even where no entry names it (a path through a symlink).
            written.insert(phys);
            Ok(())
        };
        self.res
            .dir(parent, Some(&mut on_create))?
            .ok_or_else(|| Error::input(format!("cannot create {parent}")))
    }

    fn put_root(&mut self, h: &Header) -> Result<()> {
        if h.kind != Kind::Dir {
            return Err(Error::input(format!(
                "a {} cannot replace the root directory",
                h.kind.name()
            )));
        }
        let root = self.res.root();
        self.set_dir_meta(root.fd(), b".", b"", &h.meta, true)
            .map(drop)
    }

    fn write_file(
        &mut self,
        parent: &Dir,
        name: &[u8],
        phys: &[u8],
        h: &Header,
        body: &mut dyn Read,
    ) -> Result<()> {
        let meta = &h.meta;
        let fd = openat(
            parent.fd(),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .ctx(|| format!("cannot create {}", show(phys)))?;
        let mut file = File::from(fd);
        let mut written = 0u64;
        loop {
            if crate::apply::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(Error::new(
                    ErrorKind::Interrupted,
                    format!("interrupted while writing {}", show(phys)),
                ));
            }
            let n = match body.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::io("cannot read entry data", e).with_kind(ErrorKind::Input))
                }
            };
            file.write_all(&self.buf[..n])
                .ctx(|| format!("cannot write {}", show(phys)))?;
            written += n as u64;
        }
        if written < h.size {
            return Err(Error::input(format!(
                "the layer ends inside this file: {} of {} bytes",
                written, h.size
            )));
        }
        self.set_owner_fd(file.as_fd(), phys, meta)?;
        self.set_xattrs_fd(file.as_fd(), phys, meta)?;
        nix::sys::stat::fchmod(file.as_fd(), Mode::from_bits_truncate(meta.mode))
            .ctx(|| format!("cannot set mode of {}", show(phys)))?;
        let atime = meta.atime.unwrap_or(meta.mtime);
        nix::sys::stat::futimens(file.as_fd(), &ts(atime), &ts(meta.mtime))
            .ctx(|| format!("cannot set times of {}", show(phys)))?;
        Ok(())
    }

    fn link(&mut self, parent: &Dir, name: &[u8], phys: &[u8], target: &[u8]) -> Result<()> {
        let tpath = RelPath::parse(target).map_err(|e| {
            Error::input(format!(
                "bad hardlink target {:?}: {}",
                String::from_utf8_lossy(target),
                e.message()
            ))
        })?;
        let not_found = || Error::input(format!("hardlink target {tpath} not found"));
        let tname = tpath
            .file_name()
            .ok_or_else(|| Error::input("hardlink to the root directory"))?;
        let tdir = self.res.dir(&tpath.parent(), None)?.ok_or_else(not_found)?;
        match lstat_at(tdir.fd(), tname).ctx(|| format!("cannot look up {tpath}"))? {
            None => return Err(not_found()),
            Some(st) if file_type(&st) == SFlag::S_IFDIR => {
                return Err(Error::input(format!(
                    "hardlink target {tpath} is a directory"
                )))
            }
            Some(_) => {}
        }
        nix::unistd::linkat(tdir.fd(), tname, parent.fd(), name, AtFlags::empty())
            .ctx(|| format!("cannot link {} to {tpath}", show(phys)))
    }

    /// Owner, xattrs, mode (not for symlinks) and times of a non-directory by name.
    fn set_meta_at(
        &mut self,
        parent: &Dir,
        name: &[u8],
        phys: &[u8],
        meta: &Meta,
        chmod: bool,
    ) -> Result<()> {
        if self.privileged {
            if let Err(e) = nix::unistd::fchownat(
                parent.fd(),
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                self.owner_failed(phys, e.into())?;
            }
        } else {
            self.owner_skipped(phys, meta);
        }
        for (k, v) in &meta.xattrs {
            if let Err(e) = xattr::set_at(parent.fd(), name, k, v) {
                self.xattr_failed(phys, k, e)?;
            }
        }
        if chmod {
            nix::sys::stat::fchmodat(
                parent.fd(),
                name,
                Mode::from_bits_truncate(meta.mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .ctx(|| format!("cannot set mode of {}", show(phys)))?;
        }
        let atime = meta.atime.unwrap_or(meta.mtime);
        nix::sys::stat::utimensat(
            parent.fd(),
            name,
            &ts(atime),
            &ts(meta.mtime),
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .ctx(|| format!("cannot set times of {}", show(phys)))
    }

    /// Owner and xattrs now, mode and times at the end; returns the open directory.
    fn set_dir_meta(
        &mut self,
        at: BorrowedFd<'_>,
        name: &[u8],
        phys: &[u8],
        meta: &Meta,
        merge: bool,
    ) -> Result<OwnedFd> {
        let fd = open_dir_rw(at, name).ctx(|| format!("cannot open directory {}", show(phys)))?;
        self.set_owner_fd(fd.as_fd(), phys, meta)?;
        if merge {
            self.clear_xattrs(fd.as_fd(), phys, meta)?;
        }
        self.set_xattrs_fd(fd.as_fd(), phys, meta)?;
        self.dirs.insert(
            phys.to_vec(),
            DirMeta {
                mode: meta.mode,
                atime: meta.atime.unwrap_or(meta.mtime),
                mtime: meta.mtime,
            },
        );
        Ok(fd)
    }

    /// Drops attributes an earlier layer set that the upper entry does not have.
    fn clear_xattrs(&mut self, fd: BorrowedFd<'_>, phys: &[u8], keep: &Meta) -> Result<()> {
        let names = match xattr::flist(fd) {
            Ok(n) => n,
            Err(e) if is_unsupported(&e) => return Ok(()),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot list xattrs of {}", show(phys)),
                    e,
                ))
            }
        };
        for n in names {
            if n == b"security.selinux" || keep.xattrs.iter().any(|(k, _)| *k == n) {
                continue;
            }
            if let Err(e) = xattr::fremove(fd, &n) {
                if !is_unsupported(&e) && e.raw_os_error() != Some(libc::ENODATA) {
                    return Err(Error::io(
                        format!("cannot remove xattr of {}", show(phys)),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }

    fn set_owner_fd(&mut self, fd: BorrowedFd<'_>, phys: &[u8], meta: &Meta) -> Result<()> {
        if !self.privileged {
            self.owner_skipped(phys, meta);
            return Ok(());
        }
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
                    String::from_utf8_lossy(name),
                    show(phys)
                ));
            }
            self.unreproduced.xattrs += 1;
            Ok(())
        } else {
            Err(Error::io(
                format!(
                    "cannot set xattr {} of {}",
                    String::from_utf8_lossy(name),
                    show(phys)
                ),
                e,
            ))
        }
    }

    fn prune_at(&mut self, parent: &Dir, name: &[u8], written: &LayerPaths) -> Result<()> {
        let phys = parent.child(name);
        let presence = written.presence(&phys);
        if presence == Presence::Untouched {
            return self.remove_at(parent, name);
        }
        let Some(st) =
            lstat_at(parent.fd(), name).ctx(|| format!("cannot look up {}", show(&phys)))?
        else {
            return Ok(());
        };
        if file_type(&st) != SFlag::S_IFDIR {
            // Written by this layer (a stale record below it cannot make it lower content).
            if presence == Presence::Written {
                return Ok(());
            }
            return self.remove_at(parent, name);
        }
        if presence == Presence::Below {
            // A lower directory kept only as the parent of this layer's writes: it becomes
            // the bare parent the layer would have created.
            let fd = open_dir_rw(parent.fd(), name)
                .ctx(|| format!("cannot open directory {}", show(&phys)))?;
            let bare = Meta {
                mode: IMPLICIT_DIR.mode,
                mtime: IMPLICIT_DIR.mtime,
                ..Meta::default()
            };
            if self.privileged {
                self.set_owner_fd(fd.as_fd(), &phys, &bare)?;
            }
            self.clear_xattrs(fd.as_fd(), &phys, &bare)?;
            self.dirs.insert(phys.clone(), IMPLICIT_DIR);
        }
        let dir = self
            .res
            .dir(&RelPath::parse(&phys)?, None)?
            .ok_or_else(|| {
                Error::new(ErrorKind::Io, format!("directory {} vanished", show(&phys)))
            })?;
        self.prune_children(&dir, written)
    }

    fn prune_children(&mut self, dir: &Dir, written: &LayerPaths) -> Result<()> {
        for name in list_dir(dir.fd(), b".", &dir.path)? {
            self.prune_at(dir, &name, written)?;
        }
        Ok(())
    }

    /// Removes `name` and, for a directory, everything below it; never follows a symlink.
    fn remove_at(&mut self, parent: &Dir, name: &[u8]) -> Result<()> {
        let phys = parent.child(name);
        let Some(st) =
            lstat_at(parent.fd(), name).ctx(|| format!("cannot look up {}", show(&phys)))?
        else {
            return Ok(());
        };
        if file_type(&st) == SFlag::S_IFDIR {
            self.res.invalidate(&phys);
            self.forget_dirs(&phys);
            empty_dir(parent.fd(), name, &phys)?;
            nix::unistd::unlinkat(parent.fd(), name, UnlinkatFlags::RemoveDir)
        } else {
            nix::unistd::unlinkat(parent.fd(), name, UnlinkatFlags::NoRemoveDir)
        }
        .ctx(|| format!("cannot remove {}", show(&phys)))
    }

    fn forget_dirs(&mut self, prefix: &[u8]) {
        if prefix.is_empty() {
            self.dirs.clear();
            return;
        }
        let mut lo = prefix.to_vec();
        lo.push(b'/');
        let mut hi = prefix.to_vec();
        hi.push(b'0');
        let doomed: Vec<Vec<u8>> = self.dirs.range(lo..hi).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            self.dirs.remove(&k);
        }
        self.dirs.remove(prefix);
        debug_assert!(!self.dirs.keys().any(|k| is_under(k, prefix)));
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

/// Names in directory `name` under `at`.
fn list_dir(at: BorrowedFd<'_>, name: &[u8], phys: &[u8]) -> Result<Vec<Vec<u8>>> {
    Ok(read_dir(at, name, phys)?
        .into_iter()
        .map(|(n, _)| n)
        .collect())
}

/// Removes everything inside directory `name` under `at`, depth first without recursion
/// (a hostile layer may nest directories as deep as it likes).
fn empty_dir(at: BorrowedFd<'_>, name: &[u8], phys: &[u8]) -> Result<()> {
    struct Frame {
        fd: OwnedFd,
        path: Vec<u8>,
        names: Vec<Vec<u8>>,
    }
    let fd = open_dir_rw(at, name).ctx(|| format!("cannot open directory {}", show(phys)))?;
    let names = list_dir(fd.as_fd(), b".", phys)?;
    let mut stack = vec![Frame {
        fd,
        path: phys.to_vec(),
        names,
    }];
    while let Some(top) = stack.last_mut() {
        let Some(child) = top.names.pop() else {
            let done = stack.pop();
            if let (Some(done), Some(parent)) = (done, stack.last()) {
                let name = done.path.rsplit(|&b| b == b'/').next().unwrap_or_default();
                nix::unistd::unlinkat(parent.fd.as_fd(), name, UnlinkatFlags::RemoveDir)
                    .ctx(|| format!("cannot remove {}", show(&done.path)))?;
            }
            continue;
        };
        let cphys = resolve::join(&top.path, &child);
        let is_dir = lstat_at(top.fd.as_fd(), &child)
            .ctx(|| format!("cannot look up {}", show(&cphys)))?
            .is_some_and(|st| file_type(&st) == SFlag::S_IFDIR);
        if is_dir {
            let fd = open_dir_rw(top.fd.as_fd(), &child)
                .ctx(|| format!("cannot open directory {}", show(&cphys)))?;
            let names = list_dir(fd.as_fd(), b".", &cphys)?;
            stack.push(Frame {
                fd,
                path: cphys,
                names,
            });
        } else {
            nix::unistd::unlinkat(top.fd.as_fd(), child.as_slice(), UnlinkatFlags::NoRemoveDir)
                .ctx(|| format!("cannot remove {}", show(&cphys)))?;
        }
    }
    Ok(())
}

/// The subdirectories of an open directory, by the type its entries report.
fn subdirs(fd: BorrowedFd<'_>, phys: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for (n, t) in read_dir(fd, b".", phys)? {
        let is_dir = match t {
            Some(t) => t == nix::dir::Type::Directory,
            None => lstat_at(fd, &n)
                .ctx(|| format!("cannot look up {}", show(phys)))?
                .is_some_and(|st| file_type(&st) == SFlag::S_IFDIR),
        };
        if is_dir {
            out.push(n);
        }
    }
    Ok(out)
}

/// Deep trees need a handle per level while they are removed: allow as many as we may.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
