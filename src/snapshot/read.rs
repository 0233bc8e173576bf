//! Describing a tree: from a directory (never following a symlink) or from a tar stream.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use sha2::{Digest as _, Sha256};

use super::{Node, NodeKind, Snapshot};
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::tar::{Kind, Timestamp};
use crate::vocabulary::path::RelPath;

impl Snapshot {
    /// Describes the tree under `root` (never following symlinks). Directories are opened
    /// from their parent's handle, so any depth works.
    pub fn from_dir(root: &Path) -> Result<Snapshot> {
        let top = nix::fcntl::open(
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("cannot open {}", root.display()))?;
        let mut nodes = BTreeMap::new();
        let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
        let mut stack: Vec<(OwnedFd, Vec<u8>)> = vec![(top, Vec::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let shown =
                |p: &[u8]| format!("{}/{}", root.display(), crate::vocabulary::quote::quote(p));
            let names = crate::fs::read_dir(dir.as_fd(), b".", &prefix)?;
            for (name, _) in names {
                let rel = if prefix.is_empty() {
                    name.clone()
                } else {
                    [&prefix[..], b"/", &name].concat()
                };
                let st = fstatat(dir.as_fd(), name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .ctx(|| format!("cannot stat {}", shown(&rel)))?;
                let fmt = st.st_mode & libc::S_IFMT;
                let kind = match fmt {
                    libc::S_IFDIR => {
                        let fd = openat(
                            dir.as_fd(),
                            name.as_slice(),
                            OFlag::O_RDONLY
                                | OFlag::O_DIRECTORY
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .ctx(|| format!("cannot open {}", shown(&rel)))?;
                        stack.push((fd, rel.clone()));
                        NodeKind::Dir
                    }
                    libc::S_IFLNK => {
                        let t = nix::fcntl::readlinkat(dir.as_fd(), name.as_slice())
                            .ctx(|| format!("cannot read {}", shown(&rel)))?;
                        NodeKind::Symlink(t.as_bytes().to_vec())
                    }
                    libc::S_IFREG => {
                        let fd = openat(
                            dir.as_fd(),
                            name.as_slice(),
                            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                            Mode::empty(),
                        )
                        .ctx(|| format!("cannot open {}", shown(&rel)))?;
                        let mut h = Sha256::new();
                        let size = std::io::copy(&mut std::fs::File::from(fd), &mut h)
                            .ctx(|| format!("cannot read {}", shown(&rel)))?;
                        NodeKind::File {
                            size,
                            sha256: h.finalize().into(),
                        }
                    }
                    libc::S_IFCHR => NodeKind::CharDevice(major(st.st_rdev), minor(st.st_rdev)),
                    libc::S_IFBLK => NodeKind::BlockDevice(major(st.st_rdev), minor(st.st_rdev)),
                    libc::S_IFIFO => NodeKind::Fifo,
                    _ => continue, // sockets cannot come from a layer
                };
                if fmt != libc::S_IFDIR && st.st_nlink > 1 {
                    inodes
                        .entry((st.st_dev, st.st_ino))
                        .or_default()
                        .push(rel.clone());
                }
                let xattrs = read_xattrs(dir.as_fd(), &name)?;
                nodes.insert(
                    rel,
                    Node {
                        kind,
                        mode: st.st_mode & 0o7777,
                        uid: st.st_uid,
                        gid: st.st_gid,
                        mtime: Timestamp {
                            secs: st.st_mtime,
                            nanos: st.st_mtime_nsec as u32,
                        },
                        xattrs,
                        link_group: None,
                    },
                );
            }
        }
        let mut snap = Snapshot { nodes };
        snap.set_groups(inodes.into_values());
        Ok(snap)
    }

    /// Describes a directory, or a tar file (plain, gzip or zstd, `-` for standard input).
    pub fn from_path(path: &Path) -> Result<Snapshot> {
        if path.as_os_str() == "-" {
            return Snapshot::from_tar(
                crate::layer::Decoded::new(Box::new(std::io::stdin()), &Default::default())?
                    .into_reader(),
            );
        }
        let meta = std::fs::metadata(path).ctx(|| format!("cannot open {}", path.display()))?;
        if meta.is_dir() {
            return Snapshot::from_dir(path);
        }
        let file = std::fs::File::open(path).ctx(|| format!("cannot open {}", path.display()))?;
        let decoded = crate::layer::Decoded::new(Box::new(file), &Default::default())?;
        Snapshot::from_tar(decoded.into_reader()).map_err(|e| e.context(path.display().to_string()))
    }

    /// Describes the tree a tar stream holds, applied naively in order (no whiteouts: for
    /// `docker export` and unpacked-tree tars).
    pub fn from_tar(r: impl Read) -> Result<Snapshot> {
        let mut nodes: BTreeMap<Vec<u8>, Node> = BTreeMap::new();
        let mut groups: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        let mut src = crate::tar::Stream(r);
        crate::tar::for_each(&mut src, &mut |entry, content| {
            let h = entry.header;
            let path = RelPath::parse(&h.name)?;
            if path.is_root() {
                return Ok(());
            }
            let key = path.as_bytes().to_vec();
            let kind = match &h.kind {
                Kind::File => {
                    let mut hasher = Sha256::new();
                    let size = std::io::copy(content, &mut hasher)
                        .map_err(|e| Error::io("cannot read tar", e).with_kind(ErrorKind::Input))?;
                    NodeKind::File {
                        size,
                        sha256: hasher.finalize().into(),
                    }
                }
                Kind::Dir => NodeKind::Dir,
                Kind::Symlink(t) => NodeKind::Symlink(t.clone()),
                Kind::CharDevice { major, minor } => NodeKind::CharDevice(*major, *minor),
                Kind::BlockDevice { major, minor } => NodeKind::BlockDevice(*major, *minor),
                Kind::Fifo => NodeKind::Fifo,
                Kind::Hardlink(t) => {
                    let target = RelPath::parse(t)?.as_bytes().to_vec();
                    let node = nodes.get(&target).cloned().ok_or_else(|| {
                        Error::input(format!(
                            "hardlink to missing {}",
                            crate::vocabulary::path::show(&target)
                        ))
                    })?;
                    let root = groups
                        .iter()
                        .find(|(_, members)| members.contains(&target))
                        .map(|(k, _)| k.clone())
                        .unwrap_or_else(|| target.clone());
                    let g = groups.entry(root).or_insert_with(|| vec![target.clone()]);
                    g.push(key.clone());
                    nodes.insert(key, node);
                    return Ok(());
                }
            };
            nodes.insert(
                key,
                Node {
                    kind,
                    mode: h.meta.mode,
                    uid: h.meta.uid,
                    gid: h.meta.gid,
                    mtime: h.meta.mtime,
                    xattrs: h.meta.xattrs.into_iter().collect(),
                    link_group: None,
                },
            );
            Ok(())
        })?;
        let mut snap = Snapshot { nodes };
        snap.set_groups(groups.into_values());
        Ok(snap)
    }
}

fn major(dev: u64) -> u32 {
    nix::sys::stat::major(dev) as u32
}

fn minor(dev: u64) -> u32 {
    nix::sys::stat::minor(dev) as u32
}

/// The xattrs of `name` in `dir`, reached through the directory handle (no path walk, no
/// symlink followed).
fn read_xattrs(dir: BorrowedFd<'_>, name: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let Ok(names) = crate::fs::xattr::list_at(dir, name) else {
        return Ok(out); // not supported here: nothing to compare
    };
    for attr in names {
        if attr == b"security.selinux" {
            continue;
        }
        // One removed in between is simply not there.
        if let Ok(value) = crate::fs::xattr::get_at(dir, name, &attr) {
            out.insert(attr, value);
        }
    }
    Ok(out)
}
