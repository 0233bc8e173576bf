//! A comparable description of a filesystem tree: every path with its type, metadata, content
//! digest, link target, device numbers, hardlink group and xattrs. Made from a directory, a tar
//! stream (a `docker export`, `umoci` output) or the in-memory specification, so that any two
//! can be compared entry by entry.

mod diff;
mod read;

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::tar::Timestamp;
pub use crate::vocabulary::node::NodeKind;
pub use diff::{docker_init_paths, DiffOptions, Difference, Side, What};

/// One path of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time.
    pub mtime: Timestamp,
    /// Extended attributes (`security.selinux` left out), by name.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The smallest path of this node's hardlink group, when it has more than one name.
    pub link_group: Option<Vec<u8>>,
}

/// A whole tree, by path (relative, no leading slash; the root itself is not included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every path but the root, relative, in byte order.
    pub nodes: BTreeMap<Vec<u8>, Node>,
}

/// How to compare modification times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mtime {
    #[default]
    /// To the nanosecond.
    Exact,
    /// In whole seconds (as `docker export` keeps them).
    Seconds,
    /// Not at all.
    Ignore,
}

/// The SHA-256 of `data`, as a file's content digest.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl Snapshot {
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
}
