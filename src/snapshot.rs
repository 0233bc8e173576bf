//! A comparable description of a filesystem tree: every path with its type, metadata, content
//! digest, link target, device numbers, hardlink group and xattrs. Made from a directory, a tar
//! stream (a `docker export`, `umoci` output) or the in-memory specification, so that any two
//! can be compared entry by entry.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::tar::{Kind, Timestamp};
pub use crate::vocabulary::node::NodeKind;
use crate::vocabulary::path::RelPath;

/// One path of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The smallest path of this node's hardlink group, when it has more than one name.
    pub link_group: Option<Vec<u8>>,
}

/// A whole tree, by path (relative, no leading slash; the root itself is not included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub nodes: BTreeMap<Vec<u8>, Node>,
}

/// How to compare modification times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mtime {
    #[default]
    Exact,
    Seconds,
    Ignore,
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

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
            let shown = |p: &[u8]| format!("{}/{}", root.display(), String::from_utf8_lossy(p));
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
                            String::from_utf8_lossy(&target)
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

    /// Marks each group of names of one inode with the group's smallest path.
    pub fn set_groups(&mut self, groups: impl IntoIterator<Item = Vec<Vec<u8>>>) {
        for mut g in groups {
            g.retain(|p| self.nodes.contains_key(p));
            g.sort();
            g.dedup();
            if g.len() < 2 {
                continue;
            }
            let first = g[0].clone();
            for p in g {
                if let Some(n) = self.nodes.get_mut(&p) {
                    n.link_group = Some(first.clone());
                }
            }
        }
    }

    /// Every difference between `self` (left) and `other` (right), one line each, by path.
    pub fn diff(&self, other: &Snapshot, mtime: Mtime) -> Vec<String> {
        self.diff_with(
            other,
            &DiffOptions {
                mtime,
                ..DiffOptions::default()
            },
        )
    }

    /// Every difference between `self` (A) and `other` (B), one line each, in path order:
    /// `/path: what differs (A vs B)`.
    pub fn diff_with(&self, other: &Snapshot, opts: &DiffOptions) -> Vec<String> {
        let mut out = Vec::new();
        let mut keys: Vec<&Vec<u8>> = self.nodes.keys().chain(other.nodes.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if opts.ignores(k) {
                continue;
            }
            let p = show(k);
            let one_sided_ok = opts
                .ignore_if_one_sided
                .iter()
                .any(|i| i.as_bytes() == k.as_slice());
            let (a, b) = match (self.nodes.get(k), other.nodes.get(k)) {
                (Some(a), Some(b)) => (a, b),
                _ if one_sided_ok => continue,
                (Some(a), None) => {
                    out.push(format!("{p}: only in A ({})", a.kind.name()));
                    continue;
                }
                (None, Some(b)) => {
                    out.push(format!("{p}: only in B ({})", b.kind.name()));
                    continue;
                }
                (None, None) => continue,
            };
            match (&a.kind, &b.kind) {
                (x, y) if x == y => {}
                (NodeKind::File { size: sa, .. }, NodeKind::File { size: sb, .. }) => {
                    out.push(format!("{p}: content differs (size {sa} vs {sb})"))
                }
                (NodeKind::Symlink(x), NodeKind::Symlink(y)) => out.push(format!(
                    "{p}: symlink target {:?} vs {:?}",
                    String::from_utf8_lossy(x),
                    String::from_utf8_lossy(y)
                )),
                (NodeKind::CharDevice(a1, a2), NodeKind::CharDevice(b1, b2))
                | (NodeKind::BlockDevice(a1, a2), NodeKind::BlockDevice(b1, b2)) => {
                    out.push(format!("{p}: device {a1}:{a2} vs {b1}:{b2}"))
                }
                (x, y) => out.push(format!("{p}: type {} vs {}", x.name(), y.name())),
            }
            // Symlink permissions mean nothing on Linux and differ between filesystems.
            let symlink =
                matches!(a.kind, NodeKind::Symlink(_)) || matches!(b.kind, NodeKind::Symlink(_));
            if a.mode != b.mode && !symlink {
                out.push(format!("{p}: mode {:04o} vs {:04o}", a.mode, b.mode));
            }
            if (a.uid, a.gid) != (b.uid, b.gid) {
                out.push(format!(
                    "{p}: owner {}:{} vs {}:{}",
                    a.uid, a.gid, b.uid, b.gid
                ));
            }
            let mtime_differs = match opts.mtime {
                Mtime::Exact => a.mtime != b.mtime,
                Mtime::Seconds => a.mtime.secs != b.mtime.secs,
                Mtime::Ignore => false,
            };
            if mtime_differs
                && !opts
                    .ignore_mtime_of
                    .iter()
                    .any(|m| m.as_bytes() == k.as_slice())
            {
                out.push(format!("{p}: mtime {} vs {}", a.mtime, b.mtime));
            }
            if a.xattrs != b.xattrs {
                let names = |x: &BTreeMap<Vec<u8>, Vec<u8>>| {
                    x.keys()
                        .map(|n| String::from_utf8_lossy(n).into_owned())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let what = if a.xattrs.keys().eq(b.xattrs.keys()) {
                    "xattr values differ"
                } else {
                    "xattrs"
                };
                out.push(format!(
                    "{p}: {what} ({} vs {})",
                    names(&a.xattrs),
                    names(&b.xattrs)
                ));
            }
            if a.link_group != b.link_group {
                let g = |x: &Option<Vec<u8>>| x.as_deref().map_or_else(|| "none".to_owned(), show);
                out.push(format!(
                    "{p}: hardlinked with {} vs {}",
                    g(&a.link_group),
                    g(&b.link_group)
                ));
            }
        }
        out
    }
}

/// What a comparison leaves out.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    pub mtime: Mtime,
    /// Paths (without leading `/`) ignored with everything below them.
    pub ignore: Vec<String>,
    /// Paths whose mtime alone is not compared.
    pub ignore_mtime_of: Vec<String>,
    /// Paths ignored when only one side has them.
    pub ignore_if_one_sided: Vec<String>,
}

/// What `docker create` adds to a container (moby's init layer), which `docker export`
/// includes and an image does not.
pub fn docker_init_paths() -> Vec<&'static str> {
    use crate::merge::{DOCKER_INIT_DIRS, DOCKER_INIT_FILES, DOCKER_INIT_MTAB};
    let mut v: Vec<&str> = DOCKER_INIT_FILES
        .iter()
        .chain(DOCKER_INIT_DIRS)
        .copied()
        .collect();
    v.push(DOCKER_INIT_MTAB.0);
    v
}

impl DiffOptions {
    /// Leaves out what the container runtime adds (and the mtimes of the directories it
    /// adds to: `/`, `/dev`, `/etc`); `/dev` itself only when one side lacks it.
    pub fn ignore_docker_init(&mut self) {
        self.ignore
            .extend(docker_init_paths().iter().map(|p| p.to_string()));
        self.ignore_mtime_of
            .extend(["dev", "etc"].map(str::to_owned));
        self.ignore_if_one_sided.push("dev".to_owned());
    }

    fn ignores(&self, path: &[u8]) -> bool {
        self.ignore
            .iter()
            .any(|i| resolve_under(path, i.trim_matches('/').as_bytes()))
    }
}

fn resolve_under(path: &[u8], prefix: &[u8]) -> bool {
    crate::vocabulary::path::is_under(path, prefix)
}

fn show(p: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(p))
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
