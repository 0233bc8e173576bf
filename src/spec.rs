//! The executable specification: the layering rules applied naively to an in-memory tree.
//!
//! It shares nothing with the real applier but [`classify`] (what a name means) and the tar
//! header reader. Every node remembers the layer that wrote it, and the rules read directly:
//! a whiteout or opaque marker in layer L removes what layers below L wrote, keeping L's own
//! nodes (and, as bare `0755 root` parents, the lower directories they sit in). Paths resolve
//! as if chrooted. The property tests build random layer stacks and require the real applier
//! to produce exactly the tree this model does, or both to fail.

use std::collections::BTreeMap;
use std::io::Read;

use crate::merge::{classify, Change, RelPath, AUFS_PLNK_DIR};
use crate::snapshot::{Node as SnapNode, NodeKind, Snapshot};
use crate::tar::{Kind, Meta};
use crate::vocabulary::path::MAX_SYMLINKS;
use sha2::{Digest as _, Sha256};

/// What the model keeps of a file's content: enough to compare, not the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Content {
    size: u64,
    sha256: [u8; 32],
}

#[derive(Debug, Clone)]
enum Leaf {
    File(Content),
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

impl Leaf {
    fn kind(&self) -> NodeKind {
        match self {
            Leaf::File(c) => NodeKind::File {
                size: c.size,
                sha256: c.sha256,
            },
            Leaf::Symlink(t) => NodeKind::Symlink(t.clone()),
            Leaf::Char(a, b) => NodeKind::CharDevice(*a, *b),
            Leaf::Block(a, b) => NodeKind::BlockDevice(*a, *b),
            Leaf::Fifo => NodeKind::Fifo,
        }
    }
}

#[derive(Debug, Clone)]
struct Inode {
    leaf: Leaf,
    meta: Meta,
}

#[derive(Debug, Clone)]
struct Dir {
    meta: Meta,
    layer: usize,
    children: BTreeMap<Vec<u8>, Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Dir(Dir),
    Leaf { inode: usize, layer: usize },
}

fn implicit_meta() -> Meta {
    Meta {
        mode: 0o755,
        ..Meta::default()
    }
}

/// The in-memory tree.
#[derive(Debug, Clone)]
pub struct Spec {
    root: Dir,
    inodes: Vec<Inode>,
    layer: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            root: Dir {
                meta: implicit_meta(),
                layer: 0,
                children: BTreeMap::new(),
            },
            inodes: Vec::new(),
            layer: 0,
        }
    }
}

type Phys = Vec<Vec<u8>>;

impl Spec {
    /// An empty tree, before the first layer.
    pub fn new() -> Spec {
        Spec::default()
    }

    /// Applies the next layer (an uncompressed tar). On error the tree is left as it got.
    pub fn apply_layer(&mut self, tar: impl Read) -> Result<(), String> {
        self.apply_layer_at(tar).map_err(|(_, e)| e)
    }

    /// Like [`Spec::apply_layer`], but an error also tells which entry (from 0) failed.
    pub fn apply_layer_at(&mut self, tar: impl Read) -> Result<(), (usize, String)> {
        let mut index = 0;
        let mut src = crate::tar::Stream(tar);
        self.layer += 1;
        let mut plnk = false;
        let read = crate::tar::for_each(&mut src, &mut |entry, content| {
            let h = entry.header;
            let mut c = Content {
                size: h.size,
                sha256: [0; 32],
            };
            if h.kind == Kind::File {
                let mut hasher = Sha256::new();
                c.size = std::io::copy(content, &mut hasher)
                    .map_err(|e| crate::Error::io("cannot read", e))?;
                c.sha256 = hasher.finalize().into();
            }
            let err = crate::Error::input;
            match classify(&h.name)? {
                Change::Put(p) => self.put(&p, &h.kind, &h.meta, c).map_err(err)?,
                Change::AufsLink(p) if h.kind == Kind::File => {
                    self.put(&p, &h.kind, &h.meta, c).map_err(err)?;
                    plnk = true;
                }
                Change::AufsLink(_) | Change::AufsMeta => {}
                Change::Whiteout(p) => match p.file_name() {
                    None => self.opaque(&p).map_err(err)?,
                    Some(name) => {
                        if let Some(parent) = self.resolve(&p.parent(), false).map_err(err)? {
                            self.prune(&parent, name);
                        }
                    }
                },
                Change::Opaque(p) => self.opaque(&p).map_err(err)?,
            }
            index += 1;
            Ok(())
        });
        read.map_err(|e| (index, e.to_string()))?;
        if plnk {
            self.root.children.remove(AUFS_PLNK_DIR);
        }
        Ok(())
    }

    fn dir(&self, phys: &Phys) -> &Dir {
        let mut d = &self.root;
        for c in phys {
            match d.children.get(c) {
                Some(Node::Dir(next)) => d = next,
                _ => unreachable!("physical paths name directories"),
            }
        }
        d
    }

    fn dir_mut(&mut self, phys: &Phys) -> &mut Dir {
        let mut d = &mut self.root;
        for c in phys {
            match d.children.get_mut(c) {
                Some(Node::Dir(next)) => d = next,
                _ => unreachable!("physical paths name directories"),
            }
        }
        d
    }

    /// Resolves `path` to a directory as if chrooted; creates missing ones when `create`.
    fn resolve(&mut self, path: &RelPath, create: bool) -> Result<Option<Phys>, String> {
        let mut pending: Vec<Vec<u8>> = path.components().rev().map(<[u8]>::to_vec).collect();
        let mut cur: Phys = Vec::new();
        let mut links = 0;
        let layer = self.layer;
        let inodes = &self.inodes;
        // Descend from a directory held by reference; only a symlink or `..` sends us back to
        // the root to find the new current directory (a walk per step would be cubic).
        'restart: loop {
            let mut dir = &mut self.root;
            for c in &cur {
                match dir.children.get_mut(c) {
                    Some(Node::Dir(next)) => dir = next,
                    _ => unreachable!("physical paths name directories"),
                }
            }
            while let Some(c) = pending.pop() {
                if c.is_empty() || c == b"." {
                    continue;
                }
                if c == b".." {
                    cur.pop();
                    continue 'restart;
                }
                let target = match dir.children.get(&c) {
                    Some(Node::Dir(_)) => None,
                    Some(Node::Leaf { inode, .. }) => match &inodes[*inode].leaf {
                        Leaf::Symlink(t) => Some(t.clone()),
                        _ if create => return Err(format!("{path}: not a directory")),
                        _ => return Ok(None),
                    },
                    None if create => {
                        dir.children.insert(
                            c.clone(),
                            Node::Dir(Dir {
                                meta: implicit_meta(),
                                layer,
                                children: BTreeMap::new(),
                            }),
                        );
                        None
                    }
                    None => return Ok(None),
                };
                match target {
                    None => {
                        dir = match dir.children.get_mut(&c) {
                            Some(Node::Dir(next)) => next,
                            _ => unreachable!("just found or made a directory"),
                        };
                        cur.push(c);
                    }
                    Some(t) => {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(format!("{path}: too many symlinks"));
                        }
                        if t.starts_with(b"/") {
                            cur.clear();
                        }
                        pending.extend(t.split(|&b| b == b'/').rev().map(<[u8]>::to_vec));
                        continue 'restart;
                    }
                }
            }
            return Ok(Some(cur));
        }
    }

    fn put(
        &mut self,
        path: &RelPath,
        kind: &Kind,
        meta: &Meta,
        content: Content,
    ) -> Result<(), String> {
        let Some(name) = path.file_name() else {
            if *kind != Kind::Dir {
                return Err("non-directory at the root".into());
            }
            self.root.meta = meta.clone();
            return Ok(());
        };
        let parent = self
            .resolve(&path.parent(), true)?
            .ok_or_else(|| format!("{path}: no parent"))?;
        let layer = self.layer;
        if *kind == Kind::Dir {
            let d = self.dir_mut(&parent);
            match d.children.get_mut(name) {
                Some(Node::Dir(existing)) => {
                    existing.meta = meta.clone();
                    existing.layer = layer;
                }
                _ => {
                    d.children.insert(
                        name.to_vec(),
                        Node::Dir(Dir {
                            meta: meta.clone(),
                            layer,
                            children: BTreeMap::new(),
                        }),
                    );
                }
            }
            return Ok(());
        }
        self.dir_mut(&parent).children.remove(name);
        let leaf = match kind {
            Kind::File => Leaf::File(content),
            Kind::Symlink(t) if t.is_empty() => return Err(format!("{path}: empty symlink")),
            Kind::Symlink(t) => Leaf::Symlink(t.clone()),
            Kind::CharDevice { major, minor } => Leaf::Char(*major, *minor),
            Kind::BlockDevice { major, minor } => Leaf::Block(*major, *minor),
            Kind::Fifo => Leaf::Fifo,
            Kind::Hardlink(t) => {
                let tpath = RelPath::parse(t).map_err(|e| e.to_string())?;
                let tname = tpath.file_name().ok_or("hardlink to the root")?;
                let tdir = self
                    .resolve(&tpath.parent(), false)?
                    .ok_or_else(|| format!("{path}: hardlink target missing"))?;
                let inode = match self.dir(&tdir).children.get(tname) {
                    Some(Node::Leaf { inode, .. }) => *inode,
                    Some(Node::Dir(_)) => return Err(format!("{path}: hardlink to a directory")),
                    None => return Err(format!("{path}: hardlink target missing")),
                };
                self.dir_mut(&parent)
                    .children
                    .insert(name.to_vec(), Node::Leaf { inode, layer });
                return Ok(());
            }
            Kind::Dir => unreachable!(),
        };
        self.inodes.push(Inode {
            leaf,
            meta: meta.clone(),
        });
        let inode = self.inodes.len() - 1;
        self.dir_mut(&parent)
            .children
            .insert(name.to_vec(), Node::Leaf { inode, layer });
        Ok(())
    }

    fn opaque(&mut self, path: &RelPath) -> Result<(), String> {
        if let Some(dir) = self.resolve(path, false)? {
            let names: Vec<Vec<u8>> = self.dir(&dir).children.keys().cloned().collect();
            for n in names {
                self.prune(&dir, &n);
            }
        }
        Ok(())
    }

    /// Removes what lower layers wrote at `parent/name`, keeping this layer's nodes.
    fn prune(&mut self, parent: &Phys, name: &[u8]) {
        let layer = self.layer;
        let d = self.dir_mut(parent);
        let Some(node) = d.children.get_mut(name) else {
            return;
        };
        if !has_layer(node, layer) {
            d.children.remove(name);
            return;
        }
        if let Node::Dir(dir) = node {
            if dir.layer != layer {
                dir.meta = implicit_meta();
                dir.layer = layer;
            }
            let names: Vec<Vec<u8>> = dir.children.keys().cloned().collect();
            let mut here = parent.clone();
            here.push(name.to_vec());
            for n in names {
                self.prune(&here, &n);
            }
        }
    }

    /// The tree in comparable form.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        let mut groups: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
        let mut stack: Vec<(Vec<u8>, &Dir)> = vec![(Vec::new(), &self.root)];
        while let Some((prefix, dir)) = stack.pop() {
            for (name, node) in &dir.children {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    [prefix.as_slice(), b"/", name].concat()
                };
                let (kind, meta) = match node {
                    Node::Dir(d) => {
                        stack.push((path.clone(), d));
                        (NodeKind::Dir, &d.meta)
                    }
                    Node::Leaf { inode, .. } => {
                        groups.entry(*inode).or_default().push(path.clone());
                        let i = &self.inodes[*inode];
                        let kind = i.leaf.kind();
                        (kind, &i.meta)
                    }
                };
                snap.nodes.insert(
                    path,
                    SnapNode {
                        kind,
                        mode: meta.mode,
                        uid: meta.uid,
                        gid: meta.gid,
                        mtime: meta.mtime,
                        xattrs: meta.xattrs.iter().cloned().collect(),
                        link_group: None,
                    },
                );
            }
        }
        snap.set_groups(groups.into_values());
        snap
    }
}

fn has_layer(node: &Node, layer: usize) -> bool {
    match node {
        Node::Leaf { layer: l, .. } => *l == layer,
        Node::Dir(d) => d.layer == layer || d.children.values().any(|c| has_layer(c, layer)),
    }
}

fn push_children<'a>(prefix: &[u8], dir: &'a Dir, pending: &mut Vec<(Vec<u8>, &'a Node)>) {
    for (name, node) in dir.children.iter().rev() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            [prefix, b"/", name].concat()
        };
        pending.push((path, node));
    }
}

pub use crate::merge::Listed;

impl Spec {
    /// The tree in `tar -t` order: depth first, each directory before its contents, names in
    /// byte order (the order `docker export` uses). The root itself is not listed.
    pub fn list(&self) -> Vec<Listed> {
        let mut out = Vec::new();
        let mut first_name: std::collections::HashMap<usize, Vec<u8>> =
            std::collections::HashMap::new();
        // Children are pushed in reverse so that they pop in order.
        let mut pending: Vec<(Vec<u8>, &Node)> = Vec::new();
        push_children(b"", &self.root, &mut pending);
        while let Some((path, node)) = pending.pop() {
            match node {
                Node::Dir(d) => {
                    out.push(Listed {
                        path: path.clone(),
                        kind: NodeKind::Dir,
                        meta: d.meta.clone(),
                        layer: d.layer.saturating_sub(1),
                        hardlink_to: None,
                        content: None,
                    });
                    push_children(&path, d, &mut pending);
                }
                Node::Leaf { inode, layer } => {
                    let i = &self.inodes[*inode];
                    let kind = i.leaf.kind();
                    let hardlink_to = match first_name.get(inode) {
                        Some(first) => Some(first.clone()),
                        None => {
                            first_name.insert(*inode, path.clone());
                            None
                        }
                    };
                    out.push(Listed {
                        path,
                        kind,
                        meta: i.meta.clone(),
                        layer: layer.saturating_sub(1),
                        hardlink_to,
                        content: None,
                    });
                }
            }
        }
        out
    }
}

/// What stands at a path, for rules that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Missing,
    Dir,
    Other,
}

impl Spec {
    fn standing(&mut self, path: &RelPath) -> Result<Standing, String> {
        let Some(name) = path.file_name() else {
            return Ok(Standing::Dir);
        };
        let Some(parent) = self.resolve(&path.parent(), false)? else {
            return Ok(Standing::Missing);
        };
        Ok(match self.dir(&parent).children.get(name) {
            None => Standing::Missing,
            Some(Node::Dir(_)) => Standing::Dir,
            Some(Node::Leaf { .. }) => Standing::Other,
        })
    }

    /// Adds, as one more layer, what `docker create` adds to a container made from the
    /// image, as moby does: the init files replace a file or symlink the image has there (a
    /// directory stays); `/etc/mtab` becomes a link to `/proc/mounts` likewise; the mount
    /// points are made where there is no directory; `workdir` (the config's WorkingDir) is
    /// made if missing, resolved inside the root. Everything made is `0755 root:root`.
    pub fn add_docker_init(&mut self, workdir: Option<&str>) -> Result<(), String> {
        self.layer += 1;
        let bare = Meta {
            mode: 0o755,
            ..Meta::default()
        };
        let empty = Content {
            size: 0,
            sha256: crate::snapshot::sha256(b""),
        };
        for f in crate::merge::DOCKER_INIT_FILES {
            let p = RelPath::parse(f.as_bytes()).map_err(|e| e.to_string())?;
            if self.standing(&p)? != Standing::Dir {
                self.put(&p, &Kind::File, &bare, empty)?;
            }
        }
        let mtab = RelPath::parse(b"etc/mtab").map_err(|e| e.to_string())?;
        if self.standing(&mtab)? != Standing::Dir {
            self.put(
                &mtab,
                &Kind::Symlink(b"/proc/mounts".to_vec()),
                &Meta {
                    mode: 0o777,
                    ..Meta::default()
                },
                empty,
            )?;
        }
        for d in crate::merge::DOCKER_INIT_DIRS {
            let p = RelPath::parse(d.as_bytes()).map_err(|e| e.to_string())?;
            if self.standing(&p)? != Standing::Dir {
                self.put(&p, &Kind::Dir, &bare, empty)?;
            }
        }
        if let Some(w) = workdir.filter(|w| !w.trim_matches('/').is_empty()) {
            let p = RelPath::parse(w.as_bytes()).map_err(|e| format!("WORKDIR {w:?}: {e}"))?;
            self.resolve(&p, true)?;
        }
        Ok(())
    }
}
