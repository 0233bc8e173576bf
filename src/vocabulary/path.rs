//! Paths inside the image root, as every step names them: normalised relative paths, the
//! joining and prefix tests on their bytes, and how a path is shown in a message.

use std::fmt;

use crate::error::{Error, Result};

/// A path inside the root: components joined by `/`, none empty, `.` or `..`, no NUL.
/// The root itself is the empty path.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RelPath(Vec<u8>);

impl RelPath {
    /// The root itself.
    pub fn root() -> Self {
        RelPath(Vec::new())
    }

    /// Parses a tar entry name. Leading `/`, `.` components and repeated or trailing slashes
    /// are dropped (so `/a`, `./a/` and `a//` are all `a`); `..` and NUL are refused, since no
    /// honest writer produces them and they only serve to climb out of the root.
    pub fn parse(name: &[u8]) -> Result<Self> {
        if name.contains(&0) {
            return Err(Error::input("name contains a NUL byte"));
        }
        let mut out = Vec::with_capacity(name.len());
        for comp in name.split(|&b| b == b'/') {
            match comp {
                b"" | b"." => {}
                b".." => return Err(Error::input("name contains a '..' component")),
                c => {
                    if !out.is_empty() {
                        out.push(b'/');
                    }
                    out.extend_from_slice(c);
                }
            }
        }
        Ok(RelPath(out))
    }

    /// A path already in normal form (components joined by `/`, none empty, `.` or `..`).
    pub(crate) fn from_normalised(bytes: Vec<u8>) -> Self {
        debug_assert!(RelPath::parse(&bytes).is_ok_and(|p| p.0 == bytes));
        RelPath(bytes)
    }

    /// The path's bytes, components joined by `/`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True for the root itself.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Its components, from the root down.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// The last component, `None` for the root.
    pub fn file_name(&self) -> Option<&[u8]> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        })
    }

    /// The parent; the root's parent is the root.
    pub fn parent(&self) -> RelPath {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => RelPath(self.0[..i].to_vec()),
            None => RelPath::root(),
        }
    }

    /// Appends one component (which must be a valid name, not containing `/`).
    pub fn join(&self, name: &[u8]) -> RelPath {
        debug_assert!(!name.contains(&b'/') && !name.is_empty());
        let mut v = Vec::with_capacity(self.0.len() + 1 + name.len());
        v.extend_from_slice(&self.0);
        if !v.is_empty() {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        RelPath(v)
    }

    /// True if `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &RelPath) -> bool {
        other.0.is_empty()
            || (self.0.starts_with(&other.0)
                && (self.0.len() == other.0.len() || self.0[other.0.len()] == b'/'))
    }

    /// For messages: `/a/b`, with the middle of a very long path left out.
    pub fn display(&self) -> String {
        show(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// How many symlinks one resolution may follow, as Linux allows.
pub const MAX_SYMLINKS: usize = 40;

/// `dir/name`, or `name` in the root (`dir` empty).
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// True if `path` is `prefix` or below it (`prefix` empty: everything).
pub fn is_under(path: &[u8], prefix: &[u8]) -> bool {
    prefix.is_empty()
        || (path.starts_with(prefix) && (path.len() == prefix.len() || path[prefix.len()] == b'/'))
}

/// A path for messages, quoted ([`super::quote::quote`]); a very long one keeps its two
/// ends, so that an error stays one readable line however deep the tree.
pub fn show(p: &[u8]) -> String {
    const HEAD: usize = 40;
    const TAIL: usize = 80;
    let q = super::quote::quote(p);
    let n = q.chars().count();
    if n <= HEAD + TAIL + 20 {
        return format!("/{q}");
    }
    let head: String = q.chars().take(HEAD).collect();
    let tail: String = q.chars().skip(n - TAIL).collect();
    format!("/{head}…({} characters)…{tail}", n - HEAD - TAIL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_join_and_prefix() {
        let p = RelPath::parse(b"a/b/c").unwrap();
        assert_eq!(p.parent(), RelPath::parse(b"a/b").unwrap());
        assert_eq!(p.file_name(), Some(&b"c"[..]));
        assert_eq!(RelPath::root().join(b"x").as_bytes(), b"x");
        assert!(p.starts_with(&RelPath::parse(b"a").unwrap()));
        assert!(!p.starts_with(&RelPath::parse(b"a/b/cd").unwrap()));
        assert!(!RelPath::parse(b"ab")
            .unwrap()
            .starts_with(&RelPath::parse(b"a").unwrap()));
        assert!(p.starts_with(&RelPath::root()));
    }
}
