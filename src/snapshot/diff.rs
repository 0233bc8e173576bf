//! Comparing two trees, one line per difference, in path order.

use std::collections::BTreeMap;

use super::{Mtime, NodeKind, Snapshot};

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
                    "{p}: symlink target \"{}\" vs \"{}\"",
                    quote(x),
                    quote(y)
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
                let names = |x: &BTreeMap<Vec<u8>, Vec<u8>>| {
                    x.keys().map(|n| quote(n)).collect::<Vec<_>>().join(",")
                };
                let what = if ax.keys().eq(bx.keys()) {
                    "xattr values differ"
                } else {
                    "xattrs"
                };
                out.push(format!("{p}: {what} ({} vs {})", names(&ax), names(&bx)));
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
