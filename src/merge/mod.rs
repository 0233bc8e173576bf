//! The layering rules as pure code: what an entry name means (a path to write, a whiteout, an
//! opaque marker, AUFS bookkeeping) and which lower content a whiteout may remove.
//!
//! Nothing here touches the disk. [`crate::apply`] asks these functions what to do and
//! [`crate::fs`] does it; [`spec`] is an independent in-memory model of the same rules that the
//! property tests compare the real applier against. The rules are written out in `docs/semantics.md`.

pub mod path;
pub mod spec;

use std::collections::BTreeSet;

pub use path::RelPath;

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
            "whiteout marker {:?} used as a directory",
            String::from_utf8_lossy(inner)
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
                "malformed whiteout {:?}",
                String::from_utf8_lossy(base)
            )));
        }
        return Ok(Change::Whiteout(path.parent().join(victim)));
    }
    Ok(Change::Put(path))
}

/// The paths one layer has written so far, so that its whiteouts spare them.
///
/// A whiteout or opaque marker removes only what lower layers left; whatever the same layer
/// writes stays, whether it comes before or after the marker in the tar.
#[derive(Debug, Default)]
pub struct LayerPaths {
    written: BTreeSet<Vec<u8>>,
}

/// How a path relates to what the current layer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Nothing at or below the path: lower content only, remove it whole.
    Untouched,
    /// The layer wrote this very path (and maybe more below it).
    Written,
    /// The layer wrote only below the path: the path is a directory kept as a parent.
    Below,
}

impl LayerPaths {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, path: &[u8]) {
        self.written.insert(path.to_vec());
    }

    pub fn clear(&mut self) {
        self.written.clear();
    }

    pub fn presence(&self, path: &[u8]) -> Presence {
        if path.is_empty() {
            return if self.written.is_empty() {
                Presence::Untouched
            } else {
                Presence::Below
            };
        }
        if self.written.contains(path) {
            return Presence::Written;
        }
        // Descendants of `p` are exactly the keys in [p + "/", p + "0"): '0' follows '/'.
        let mut lo = path.to_vec();
        lo.push(b'/');
        let mut hi = path.to_vec();
        hi.push(b'0');
        if self.written.range(lo..hi).next().is_some() {
            Presence::Below
        } else {
            Presence::Untouched
        }
    }
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

    #[test]
    fn presence_is_by_component() {
        let mut w = LayerPaths::new();
        w.insert(b"a/b");
        assert_eq!(w.presence(b"a/b"), Presence::Written);
        assert_eq!(w.presence(b"a"), Presence::Below);
        assert_eq!(w.presence(b""), Presence::Below);
        assert_eq!(w.presence(b"a/bc"), Presence::Untouched);
        assert_eq!(w.presence(b"a-"), Presence::Untouched);
        assert_eq!(w.presence(b"a/b/c"), Presence::Untouched);
    }
}
