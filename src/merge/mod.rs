//! The layering rules as pure code: what an entry name means (a path to write, a whiteout, an
//! opaque marker, AUFS bookkeeping), what the layers above hide ([`upper`]), and the merged
//! tree ([`plan`]).
//!
//! Nothing here touches the disk. `crate::read` asks these modules what to keep and
//! `crate::fs` writes it; `crate::spec` (feature `testing`) is an independent, naive in-memory model of the same
//! rules that the property tests hold the plan and the written tree to. The rules are written
//! out in `docs/semantics.md`.

pub mod plan;
pub mod upper;

pub use crate::vocabulary::path::RelPath;

use crate::error::{Error, Result};

/// The prefix that makes an entry a whiteout marker.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The base name that makes its directory opaque.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Top-level names starting with this are AUFS metadata, never output.
pub const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
/// The AUFS directory whose files may serve as hardlink targets.
pub const AUFS_PLNK_DIR: &[u8] = b".wh..wh.plnk";

/// What `docker create` puts into every container (moby's init layer): empty `0755 root`
/// files that replace a file or symlink of the image but not a directory,
pub const DOCKER_INIT_FILES: &[&str] = &[
    ".dockerenv",
    "dev/console",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
];
/// directories made where the image has none,
pub const DOCKER_INIT_DIRS: &[&str] = &["dev/pts", "dev/shm", "proc", "sys"];
/// and this symlink, placed like the files.
pub const DOCKER_INIT_MTAB: (&str, &str) = ("etc/mtab", "/proc/mounts");

/// One path of the merged tree, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Relative path, no leading `/`.
    pub path: Vec<u8>,
    /// What it is.
    pub kind: crate::vocabulary::node::NodeKind,
    /// Its mode, owner, times and xattrs.
    pub meta: crate::tar::Meta,
    /// The layer (from 0) that wrote the path last.
    pub layer: usize,
    /// For the second and later names of one inode, in listing order: the first name.
    pub hardlink_to: Option<Vec<u8>>,
    /// For the first name of a file: the entry its content comes from (listings made by
    /// `plan::Plan::list`).
    pub content: Option<plan::Source>,
}

/// What one layer entry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Write the entry at this path (replacing or merging with what is there).
    Put(RelPath),
    /// Remove this path, as lower layers left it.
    Whiteout(RelPath),
    /// Hide everything lower layers put under this directory.
    Opaque(RelPath),
    /// A file under `/.wh..wh.plnk/`: not output, but a hardlink may point at it.
    AufsLink(RelPath),
    /// Other AUFS metadata (`/.wh..wh.aufs`, `/.wh..wh.orph/…`): ignored.
    AufsMeta,
}

/// Reads an entry name. Leading `/` and `./` are dropped; `..` components, NUL bytes and
/// malformed whiteouts are errors.
pub fn classify(name: &[u8]) -> Result<Change> {
    let path = RelPath::parse(name)?;
    let comps: Vec<&[u8]> = path.components().collect();
    if let Some(first) = comps.first() {
        if first.starts_with(AUFS_META_PREFIX) && first != &OPAQUE_MARKER {
            if *first == AUFS_PLNK_DIR && comps.len() > 1 {
                return Ok(Change::AufsLink(path));
            }
            return Ok(Change::AufsMeta);
        }
    }
    // A marker is a leaf: a path that goes through one would put it into the output.
    if let Some(inner) = comps
        .iter()
        .take(comps.len().saturating_sub(1))
        .find(|c| c.starts_with(WHITEOUT_PREFIX))
    {
        return Err(Error::input(format!(
            "whiteout marker \"{}\" used as a directory",
            crate::vocabulary::quote::quote(inner)
        )));
    }
    let Some(base) = path.file_name() else {
        return Ok(Change::Put(path));
    };
    if base == OPAQUE_MARKER {
        return Ok(Change::Opaque(path.parent()));
    }
    if let Some(victim) = base.strip_prefix(WHITEOUT_PREFIX) {
        if victim.is_empty() || victim == b"." || victim == b".." {
            return Err(Error::input(format!(
                "malformed whiteout \"{}\"",
                crate::vocabulary::quote::quote(base)
            )));
        }
        return Ok(Change::Whiteout(path.parent().join(victim)));
    }
    Ok(Change::Put(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(p: &str) -> Change {
        Change::Put(RelPath::parse(p.as_bytes()).unwrap())
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(classify(b"./a/b/").unwrap(), put("a/b"));
        assert_eq!(classify(b"/a//b").unwrap(), put("a/b"));
        assert_eq!(classify(b"./").unwrap(), Change::Put(RelPath::root()));
        assert!(classify(b"a/../b").is_err());
        assert!(classify(b"a\0b").is_err());
    }

    #[test]
    fn whiteouts_and_markers() {
        assert_eq!(
            classify(b"a/.wh.b").unwrap(),
            Change::Whiteout(RelPath::parse(b"a/b").unwrap())
        );
        assert_eq!(
            classify(b"a/.wh..wh..opq").unwrap(),
            Change::Opaque(RelPath::parse(b"a").unwrap())
        );
        assert_eq!(
            classify(b".wh..wh..opq").unwrap(),
            Change::Opaque(RelPath::root())
        );
        for bad in [&b"a/.wh."[..], b"a/.wh..", b"a/.wh...", b".wh.x/y"] {
            assert!(classify(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn aufs_metadata() {
        assert_eq!(classify(b".wh..wh.aufs").unwrap(), Change::AufsMeta);
        assert_eq!(classify(b".wh..wh.orph/x").unwrap(), Change::AufsMeta);
        assert_eq!(classify(b".wh..wh.plnk").unwrap(), Change::AufsMeta);
        assert_eq!(
            classify(b".wh..wh.plnk/1.2").unwrap(),
            Change::AufsLink(RelPath::parse(b".wh..wh.plnk/1.2").unwrap())
        );
    }
}
