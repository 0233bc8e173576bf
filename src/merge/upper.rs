//! What the layers above say about each path, for reading layers from the top down.
//!
//! The writer reads the top layer first, so that when it reaches an entry it already knows
//! whether a layer above deletes or replaces it; only then is the content worth writing. The
//! test is literal: it looks at the entry's name as written, not at where symlinks of lower
//! layers would lead it. That is exact for every image a real tool makes (a diff of two
//! directories never names a path through a symlink) and only decides what is written
//! early: [`super::plan`] decides the tree, and the writer moves or fetches what this test
//! guessed wrong.

use std::collections::BTreeMap;

use super::RelPath;

/// A node of the tree of names seen so far.
pub type UpperId = u32;

/// The root's node.
pub const UPPER_ROOT: UpperId = 0;

#[derive(Debug, Default)]
struct Node {
    parent: UpperId,
    name: Box<[u8]>,
    children: BTreeMap<Box<[u8]>, UpperId>,
    /// The highest layer (from 1; 0 for none) with an entry of any type at this path,
    any: u32,
    /// with a non-directory at this path,
    nondir: u32,
    /// with a whiteout of this path,
    whiteout: u32,
    /// with an opaque marker in this directory.
    opaque: u32,
}

/// The names read so far, with what the highest layer did to each.
#[derive(Debug)]
pub struct Upper {
    nodes: Vec<Node>,
    /// The last path looked up and the node of each of its components (with where the
    /// component ends): a tar lists a directory's entries together, so the next path
    /// shares most of it, and a lookup costs one comparison instead of a walk.
    last: Vec<u8>,
    last_nodes: Vec<(usize, UpperId)>,
}

impl Default for Upper {
    fn default() -> Self {
        Upper {
            nodes: vec![Node::default()],
            last: Vec::new(),
            last_nodes: Vec::new(),
        }
    }
}

impl Upper {
    pub fn new() -> Upper {
        Upper::default()
    }

    /// The node for `path`, made if new.
    pub fn node(&mut self, path: &RelPath) -> UpperId {
        let bytes = path.as_bytes();
        let common = bytes
            .iter()
            .zip(&self.last)
            .take_while(|(a, b)| a == b)
            .count();
        let mut cur = UPPER_ROOT;
        let mut chain = std::mem::take(&mut self.last_nodes);
        let mut reused = 0;
        let mut start = 0;
        for c in path.components() {
            let end = start + c.len();
            match chain.get(reused) {
                Some(&(e, id)) if e == end && end <= common => {
                    cur = id;
                    reused += 1;
                    start = end + 1;
                    continue;
                }
                _ => {}
            }
            chain.truncate(reused);
            cur = match self.nodes[cur as usize].children.get(c) {
                Some(&id) => id,
                None => {
                    let id = self.nodes.len() as UpperId;
                    self.nodes.push(Node {
                        parent: cur,
                        name: c.into(),
                        ..Node::default()
                    });
                    self.nodes[cur as usize].children.insert(c.into(), id);
                    id
                }
            };
            chain.push((end, cur));
            reused += 1;
            start = end + 1;
        }
        chain.truncate(reused);
        self.last_nodes = chain;
        self.last.clear();
        self.last.extend_from_slice(bytes);
        cur
    }

    /// The path of node `id`.
    pub fn path(&self, id: UpperId) -> RelPath {
        let mut names = Vec::new();
        let mut cur = id;
        while cur != UPPER_ROOT {
            names.push(&self.nodes[cur as usize].name[..]);
            cur = self.nodes[cur as usize].parent;
        }
        let mut out = Vec::new();
        for n in names.iter().rev() {
            if !out.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(n);
        }
        RelPath::from_normalised(out)
    }

    /// Whether a layer above `layer` (from 0) removes or replaces what an entry of `layer` at
    /// `id` writes: a whiteout of it or of a directory above it, an opaque directory above
    /// it, a non-directory above it, or an entry at the path itself (a directory over a
    /// directory merges instead).
    pub fn masked(&self, id: UpperId, layer: usize, is_dir: bool) -> bool {
        let l = layer as u32 + 1;
        let n = &self.nodes[id as usize];
        if n.whiteout > l || n.nondir > l || (n.any > l && !is_dir) {
            return true;
        }
        let mut cur = id;
        while cur != UPPER_ROOT {
            cur = self.nodes[cur as usize].parent;
            let a = &self.nodes[cur as usize];
            if a.whiteout > l || a.opaque > l || a.nondir > l {
                return true;
            }
        }
        false
    }

    /// Layer `layer` has an entry at `id`.
    pub fn note_entry(&mut self, id: UpperId, layer: usize, is_dir: bool) {
        let l = layer as u32 + 1;
        let n = &mut self.nodes[id as usize];
        n.any = n.any.max(l);
        if !is_dir {
            n.nondir = n.nondir.max(l);
        }
    }

    /// Layer `layer` whites out `id`.
    pub fn note_whiteout(&mut self, id: UpperId, layer: usize) {
        let n = &mut self.nodes[id as usize];
        n.whiteout = n.whiteout.max(layer as u32 + 1);
    }

    /// Layer `layer` makes directory `id` opaque.
    pub fn note_opaque(&mut self, id: UpperId, layer: usize) {
        let n = &mut self.nodes[id as usize];
        n.opaque = n.opaque.max(layer as u32 + 1);
    }

    /// The last component of node `id`'s path (empty for the root).
    pub fn name(&self, id: UpperId) -> &[u8] {
        &self.nodes[id as usize].name
    }

    pub fn parent(&self, id: UpperId) -> UpperId {
        self.nodes[id as usize].parent
    }

    pub fn child(&self, id: UpperId, name: &[u8]) -> Option<UpperId> {
        self.nodes[id as usize].children.get(name).copied()
    }

    pub fn children(&self, id: UpperId) -> impl Iterator<Item = (&[u8], UpperId)> {
        self.nodes[id as usize]
            .children
            .iter()
            .map(|(k, v)| (&k[..], *v))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn nodes_are_found_again_whatever_came_between() {
        let mut u = Upper::new();
        let paths = [
            "a/b/c", "a/b/d", "a/bc", "a/b", "x", "a/b/c/e", "a", "", "a/b/c",
        ];
        let ids: Vec<UpperId> = paths.iter().map(|q| u.node(&p(q))).collect();
        for (q, id) in paths.iter().zip(&ids) {
            assert_eq!(u.path(*id).as_bytes(), q.as_bytes());
            assert_eq!(u.node(&p(q)), *id, "{q}");
        }
        assert_eq!(ids[0], ids[8]);
        assert_ne!(ids[0], ids[2]);
    }

    #[test]
    fn masks_come_only_from_higher_layers() {
        let mut u = Upper::new();
        let a = u.node(&p("a"));
        u.note_entry(a, 2, false);
        let ab = u.node(&p("a/b"));
        assert!(
            u.masked(ab, 1, false),
            "a file above replaces the directory"
        );
        assert!(
            !u.masked(ab, 2, false),
            "the same layer is not masked by itself"
        );
        assert!(u.masked(a, 0, true), "a file replaces a directory");
    }

    #[test]
    fn directories_merge_files_do_not() {
        let mut u = Upper::new();
        let d = u.node(&p("d"));
        u.note_entry(d, 3, true);
        assert!(!u.masked(d, 1, true));
        assert!(u.masked(d, 1, false));
        let x = u.node(&p("d/x"));
        assert!(!u.masked(x, 1, false));
    }

    #[test]
    fn whiteouts_and_opaque_markers() {
        let mut u = Upper::new();
        let d = u.node(&p("d"));
        u.note_opaque(d, 2);
        let x = u.node(&p("d/x"));
        assert!(u.masked(x, 1, false));
        assert!(!u.masked(d, 1, true), "an opaque directory keeps itself");
        let w = u.node(&p("w"));
        u.note_whiteout(w, 2);
        let wy = u.node(&p("w/y"));
        assert!(u.masked(w, 0, true) && u.masked(wy, 0, false));
        assert!(!u.masked(wy, 2, false));
    }
}
