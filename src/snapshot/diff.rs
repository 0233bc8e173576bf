//! Comparing two trees: typed differences in path order, each shown as one line.

use std::collections::BTreeMap;
use std::fmt;

use super::{Mtime, NodeKind, Snapshot};
use crate::tar::Timestamp;

/// Which tree of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first tree (A).
    A,
    /// The second tree (B).
    B,
}

/// One difference between two trees, at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The path, relative to the root (no leading `/`).
    pub path: Vec<u8>,
    /// What differs there.
    pub what: What,
}

/// What differs at a path; where there are two values, A's comes first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum What {
    /// Only one side has the path; the node type it has there.
    OnlyIn(Side, &'static str),
    /// Different node types.
    Type(&'static str, &'static str),
    /// Regular files with different content; their sizes.
    Content(u64, u64),
    /// Symlinks to different targets.
    SymlinkTarget(Vec<u8>, Vec<u8>),
    /// Device nodes with different numbers (major, minor).
    Device((u32, u32), (u32, u32)),
    /// Permission bits (with setuid, setgid, sticky).
    Mode(u32, u32),
    /// Numeric owners (uid, gid).
    Owner((u32, u32), (u32, u32)),
    /// Modification times.
    Mtime(Timestamp, Timestamp),
    /// Different extended attribute names.
    Xattrs(Vec<Vec<u8>>, Vec<Vec<u8>>),
    /// The same attribute names, some with different values.
    XattrValues(Vec<Vec<u8>>),
    /// Different hardlink groups, each named by its smallest path (none: not linked).
    Hardlinks(Option<Vec<u8>>, Option<Vec<u8>>),
}

impl What {
    /// A short name for the kind of difference (as `diff --json` gives it).
    pub fn name(&self) -> &'static str {
        match self {
            What::OnlyIn(..) => "only_in",
            What::Type(..) => "type",
            What::Content(..) => "content",
            What::SymlinkTarget(..) => "symlink_target",
            What::Device(..) => "device",
            What::Mode(..) => "mode",
            What::Owner(..) => "owner",
            What::Mtime(..) => "mtime",
            What::Xattrs(..) => "xattrs",
            What::XattrValues(..) => "xattr_values",
            What::Hardlinks(..) => "hardlinks",
        }
    }
}

/// `/path: what differs (A vs B)`, names quoted: one line.
impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |x: &[Vec<u8>]| x.iter().map(|n| quote(n)).collect::<Vec<_>>().join(",");
        let group = |x: &Option<Vec<u8>>| x.as_deref().map_or_else(|| "none".to_owned(), show);
        write!(f, "{}: ", show(&self.path))?;
        match &self.what {
            What::OnlyIn(side, kind) => write!(f, "only in {side:?} ({kind})"),
            What::Type(a, b) => write!(f, "type {a} vs {b}"),
            What::Content(a, b) => write!(f, "content differs (size {a} vs {b})"),
            What::SymlinkTarget(a, b) => {
                write!(f, "symlink target \"{}\" vs \"{}\"", quote(a), quote(b))
            }
            What::Device(a, b) => write!(f, "device {}:{} vs {}:{}", a.0, a.1, b.0, b.1),
            What::Mode(a, b) => write!(f, "mode {a:04o} vs {b:04o}"),
            What::Owner(a, b) => write!(f, "owner {}:{} vs {}:{}", a.0, a.1, b.0, b.1),
            What::Mtime(a, b) => write!(f, "mtime {a} vs {b}"),
            What::Xattrs(a, b) => write!(f, "xattrs ({} vs {})", names(a), names(b)),
            What::XattrValues(n) => write!(f, "xattr values differ ({} vs {})", names(n), names(n)),
            What::Hardlinks(a, b) => write!(f, "hardlinked with {} vs {}", group(a), group(b)),
        }
    }
}

impl Snapshot {
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
        self.differences(other, opts)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Every difference between `self` (A) and `other` (B), in path order (bytewise), and
    /// at one path in the order type, mode, owner, mtime, xattrs, hardlinks.
    pub fn differences(&self, other: &Snapshot, opts: &DiffOptions) -> Vec<Difference> {
        let mut out = Vec::new();
        let mut keys: Vec<&Vec<u8>> = self.nodes.keys().chain(other.nodes.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if opts.ignores(k) {
                continue;
            }
            let mut push = |what| {
                out.push(Difference {
                    path: k.clone(),
                    what,
                })
            };
            let one_sided_ok = opts
                .ignore_if_one_sided
                .iter()
                .any(|i| i.as_bytes() == k.as_slice());
            let (a, b) = match (self.nodes.get(k), other.nodes.get(k)) {
                (Some(a), Some(b)) => (a, b),
                _ if one_sided_ok => continue,
                (Some(a), None) => {
                    push(What::OnlyIn(Side::A, a.kind.name()));
                    continue;
                }
                (None, Some(b)) => {
                    push(What::OnlyIn(Side::B, b.kind.name()));
                    continue;
                }
                (None, None) => continue,
            };
            match (&a.kind, &b.kind) {
                (x, y) if x == y => {}
                (NodeKind::File { size: sa, .. }, NodeKind::File { size: sb, .. }) => {
                    push(What::Content(*sa, *sb))
                }
                (NodeKind::Symlink(x), NodeKind::Symlink(y)) => {
                    push(What::SymlinkTarget(x.clone(), y.clone()))
                }
                (NodeKind::CharDevice(a1, a2), NodeKind::CharDevice(b1, b2))
                | (NodeKind::BlockDevice(a1, a2), NodeKind::BlockDevice(b1, b2)) => {
                    push(What::Device((*a1, *a2), (*b1, *b2)))
                }
                (x, y) => push(What::Type(x.name(), y.name())),
            }
            // Symlink permissions mean nothing on Linux and differ between filesystems.
            let symlink =
                matches!(a.kind, NodeKind::Symlink(_)) || matches!(b.kind, NodeKind::Symlink(_));
            if a.mode != b.mode && !symlink {
                push(What::Mode(a.mode, b.mode));
            }
            if (a.uid, a.gid) != (b.uid, b.gid) {
                push(What::Owner((a.uid, a.gid), (b.uid, b.gid)));
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
                push(What::Mtime(a.mtime, b.mtime));
            }
            let kept = |x: &BTreeMap<Vec<u8>, Vec<u8>>| -> BTreeMap<Vec<u8>, Vec<u8>> {
                match &opts.xattrs_kept {
                    None => x.clone(),
                    Some(k) => x
                        .iter()
                        .filter(|(n, _)| k.contains(n))
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect(),
                }
            };
            let (ax, bx) = (kept(&a.xattrs), kept(&b.xattrs));
            if ax != bx {
                let names = |x: &BTreeMap<Vec<u8>, Vec<u8>>| x.keys().cloned().collect();
                push(if ax.keys().eq(bx.keys()) {
                    What::XattrValues(names(&ax))
                } else {
                    What::Xattrs(names(&ax), names(&bx))
                });
            }
            if a.link_group != b.link_group {
                push(What::Hardlinks(a.link_group.clone(), b.link_group.clone()));
            }
        }
        out
    }
}

/// What a comparison leaves out.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// How modification times are compared.
    pub mtime: Mtime,
    /// Paths (without leading `/`) ignored with everything below them.
    pub ignore: Vec<String>,
    /// Paths whose mtime alone is not compared.
    pub ignore_mtime_of: Vec<String>,
    /// Paths ignored when only one side has them.
    pub ignore_if_one_sided: Vec<String>,
    /// When set, only these extended attributes are compared.
    pub xattrs_kept: Option<Vec<Vec<u8>>>,
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
    /// Leaves out what `docker create` adds to a container and what `docker export` drops,
    /// so that a flattened image compares equal to the export of a container made from it
    /// (checked on the real pairs in `testdata/docker-recipe`):
    /// - the files, directories and symlink `docker create` adds, whatever either side has
    ///   there (it replaces the image's `/etc/hosts` with an empty file);
    /// - `/dev` and `/etc` when only one side has them (it makes them where the image has
    ///   none), and their mtimes (it stamps the directories it writes into);
    /// - every extended attribute but `security.capability`, the only one export keeps.
    pub fn ignore_docker_init(&mut self) {
        self.ignore
            .extend(docker_init_paths().iter().map(|p| p.to_string()));
        self.ignore_mtime_of
            .extend(["dev", "etc"].map(str::to_owned));
        self.ignore_if_one_sided
            .extend(["dev", "etc"].map(str::to_owned));
        self.xattrs_kept = Some(vec![b"security.capability".to_vec()]);
    }

    /// Also leaves out the directories `docker create` makes for a WORKDIR the image lacks
    /// (each directory of `workdir`, when only one side has it) and their mtimes (it stamps
    /// the one it makes them in).
    pub fn docker_workdir(&mut self, workdir: &str) {
        let mut path = String::new();
        for c in workdir.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(c);
            self.ignore_if_one_sided.push(path.clone());
            self.ignore_mtime_of.push(path.clone());
        }
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

use crate::vocabulary::path::show;
use crate::vocabulary::quote::quote;
