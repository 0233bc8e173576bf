//! Path resolution inside the target, as if chrooted into it.
//!
//! Every directory handle the applier writes through comes from here. The common case, a path
//! with no symlink in it, is one `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so the
//! kernel itself guarantees the result lies below the root. Anything else (a symlink on the way,
//! a missing directory to create, a kernel without `openat2`) goes through our own walk: one
//! component at a time with `O_NOFOLLOW`, symlink targets read and spliced into the remaining
//! path, `..` and absolute targets stopping at the root. The kernel never follows a link for us.
//!
//! Results are cached by their *physical* path (the real directories from the root, which contain
//! no symlink by construction); the owner of the resolver invalidates a subtree when it removes it.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};

use crate::error::{Error, IoContext, Result};
use crate::vocabulary::path::{is_under, join, show, RelPath, MAX_SYMLINKS};

const CACHE_LIMIT: usize = 512;

/// An open directory inside the root and its physical path (no symlinks, `""` for the root).
#[derive(Clone)]
pub struct Dir {
    pub fd: Arc<OwnedFd>,
    pub path: Vec<u8>,
}

impl Dir {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The physical path of `name` inside this directory.
    pub fn child(&self, name: &[u8]) -> Vec<u8> {
        join(&self.path, name)
    }
}

/// Which resolution strategy to use; `Walk` exists so tests can exercise the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// `openat2` where the kernel has it, the walk otherwise.
    #[default]
    Auto,
    /// Always our own component-by-component walk.
    Walk,
}

/// Called for each directory the walk creates: `(parent, name, physical path)`.
pub type OnCreate<'a> = &'a mut dyn FnMut(BorrowedFd<'_>, &[u8], &[u8]) -> Result<()>;

pub struct Resolver {
    root: Arc<OwnedFd>,
    openat2: bool,
    cache: HashMap<Vec<u8>, Arc<OwnedFd>>,
}

fn dir_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

impl Resolver {
    pub fn new(root: OwnedFd, strategy: Strategy) -> Self {
        Resolver {
            root: Arc::new(root),
            openat2: strategy == Strategy::Auto,
            cache: HashMap::new(),
        }
    }

    pub fn root(&self) -> Dir {
        Dir {
            fd: self.root.clone(),
            path: Vec::new(),
        }
    }

    /// Forgets every cached directory at or below the physical path `prefix`.
    pub fn invalidate(&mut self, prefix: &[u8]) {
        if prefix.is_empty() {
            self.cache.clear();
        } else {
            self.cache.retain(|k, _| !is_under(k, prefix));
        }
    }

    /// Resolves `path` to a directory. Missing directories are created when `on_create` is
    /// given; without it a missing or non-directory component gives `Ok(None)`.
    pub fn dir(&mut self, path: &RelPath, on_create: Option<OnCreate<'_>>) -> Result<Option<Dir>> {
        if path.is_root() {
            return Ok(Some(self.root()));
        }
        if let Some(fd) = self.cache.get(path.as_bytes()) {
            return Ok(Some(Dir {
                fd: fd.clone(),
                path: path.as_bytes().to_vec(),
            }));
        }
        if self.openat2 {
            let how = OpenHow::new().flags(dir_flags()).resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
            match openat2(self.root.as_fd(), path.as_bytes(), how) {
                Ok(fd) => return Ok(Some(self.remember(path.as_bytes().to_vec(), fd))),
                Err(Errno::ENOSYS) | Err(Errno::EPERM) => self.openat2 = false,
                // A symlink, a missing or non-directory component, a long path: walk.
                Err(_) => {}
            }
        }
        self.walk(path, on_create)
    }

    /// Caches a directory just made, so the entries that follow into it cost no walk.
    pub fn remember(&mut self, path: Vec<u8>, fd: OwnedFd) -> Dir {
        let fd = Arc::new(fd);
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(path.clone(), fd.clone());
        Dir { fd, path }
    }

    /// Re-opens a physical (symlink-free) path from the root.
    fn reopen(&mut self, phys: &[u8]) -> Result<Dir> {
        if phys.is_empty() {
            return Ok(self.root());
        }
        if let Some(fd) = self.cache.get(phys) {
            return Ok(Dir {
                fd: fd.clone(),
                path: phys.to_vec(),
            });
        }
        let mut cur: Option<OwnedFd> = None;
        let mut cur_path = Vec::new();
        for comp in phys.split(|&b| b == b'/') {
            let at = match &cur {
                Some(fd) => fd.as_fd(),
                None => self.root.as_fd(),
            };
            let fd = openat(at, comp, dir_flags(), Mode::empty())
                .ctx(|| format!("cannot reopen {}", show(phys)))?;
            cur = Some(fd);
            cur_path = join(&cur_path, comp);
        }
        Ok(match cur {
            Some(fd) => self.remember(cur_path, fd),
            None => self.root(),
        })
    }

    fn walk(&mut self, path: &RelPath, mut on_create: Option<OnCreate<'_>>) -> Result<Option<Dir>> {
        // Start from the parent when it is cached (the common case for a deep tree, whose
        // paths are too long for one openat2), else from the root.
        let parent = path.parent();
        let (mut cur, rest) = match self.cache.get(parent.as_bytes()) {
            Some(fd) if !parent.is_root() => (
                Dir {
                    fd: fd.clone(),
                    path: parent.as_bytes().to_vec(),
                },
                path.file_name()
                    .map(|n| RelPath::root().join(n))
                    .unwrap_or_default(),
            ),
            _ => (self.root(), path.clone()),
        };
        // Components still to resolve, last one on top.
        let mut pending: Vec<Vec<u8>> = rest.components().rev().map(<[u8]>::to_vec).collect();
        let mut links = 0usize;
        while let Some(comp) = pending.pop() {
            match comp.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    let up = match cur.path.iter().rposition(|&b| b == b'/') {
                        Some(i) => cur.path[..i].to_vec(),
                        None => Vec::new(),
                    };
                    cur = self.reopen(&up)?;
                    continue;
                }
                _ => {}
            }
            let here = cur.child(&comp);
            match fstatat(cur.fd(), comp.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
                    SFlag::S_IFDIR => {
                        let fd = openat(cur.fd(), comp.as_slice(), dir_flags(), Mode::empty())
                            .ctx(|| format!("cannot open directory {}", show(&here)))?;
                        cur = self.remember(here, fd);
                    }
                    SFlag::S_IFLNK => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(Error::io(
                                format!("too many levels of symlinks resolving {path}"),
                                io::Error::from_raw_os_error(libc::ELOOP),
                            )
                            .with_kind(crate::ErrorKind::Input));
                        }
                        let target = nix::fcntl::readlinkat(cur.fd(), comp.as_slice())
                            .ctx(|| format!("cannot read symlink {}", show(&here)))?;
                        let target =
                            std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec();
                        if target.starts_with(b"/") {
                            cur = self.root();
                        }
                        pending.extend(
                            target
                                .split(|&b| b == b'/')
                                .rev()
                                .filter(|c| !c.is_empty())
                                .map(<[u8]>::to_vec),
                        );
                    }
                    _ => {
                        if on_create.is_none() {
                            return Ok(None);
                        }
                        return Err(Error::input(format!(
                            "cannot create {path}: {} is not a directory",
                            show(&here)
                        )));
                    }
                },
                Err(Errno::ENOENT) => {
                    let Some(create) = on_create.as_mut() else {
                        return Ok(None);
                    };
                    nix::sys::stat::mkdirat(
                        cur.fd(),
                        comp.as_slice(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .ctx(|| format!("cannot create directory {}", show(&here)))?;
                    create(cur.fd(), &comp, &here)?;
                    let fd = openat(cur.fd(), comp.as_slice(), dir_flags(), Mode::empty())
                        .ctx(|| format!("cannot open directory {}", show(&here)))?;
                    cur = self.remember(here, fd);
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot look up {}", show(&here)),
                        io::Error::from(e),
                    ))
                }
            }
        }
        Ok(Some(cur))
    }
}
