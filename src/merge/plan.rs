//! The merged tree the writer builds: the rules of `docs/semantics.md` applied to the layers'
//! headers alone, so that the tree can be written once, each file from the one entry whose
//! content survives.
//!
//! It follows the same rules as `crate::spec` (the property tests hold it to the spec), but
//! is built for large images: nodes live in one arena and refer to the layer entries they come
//! from instead of copying them; names are looked up without allocating; `..` is a parent
//! link; and every node knows the last layer that touched it or anything below it, so a
//! whiteout visits only what it removes or what its own layer wrote.

use std::collections::{BTreeMap, HashMap};

use super::upper::{Upper, UpperId, UPPER_ROOT};
use super::{Change, RelPath, AUFS_PLNK_DIR};
use crate::error::{Error, Result};
use crate::tar::{Kind, Meta};
use crate::vocabulary::path::MAX_SYMLINKS;

/// A node of the tree: an index into the arena.
pub type NodeId = u32;

/// The root directory's node.
pub const ROOT: NodeId = 0;

/// What an entry asks for (see [`super::Change`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Put,
    Whiteout,
    Opaque,
    AufsLink,
    AufsMeta,
}

/// One layer entry, as read: what it asks for, of which path (a node of the [`Upper`] tree of
/// names, so that a deep path costs one node, not its whole name per entry), and its header
/// without the name.
#[derive(Debug, Clone)]
pub struct Record {
    pub action: Action,
    pub node: UpperId,
    pub kind: Kind,
    pub size: u64,
    pub meta: Meta,
    /// Where the content lies in a plain layer read in place.
    pub data_at: Option<u64>,
}

impl Record {
    /// What `change` asks of the path at `node`.
    pub fn new(change: &Change, node: UpperId, kind: Kind, size: u64, meta: Meta) -> Record {
        let action = match change {
            Change::Put(_) => Action::Put,
            Change::Whiteout(_) => Action::Whiteout,
            Change::Opaque(_) => Action::Opaque,
            Change::AufsLink(_) => Action::AufsLink,
            Change::AufsMeta => Action::AufsMeta,
        };
        Record {
            action,
            node,
            kind,
            size,
            meta,
            data_at: None,
        }
    }
}

/// Which entry of which layer (both from 0; entries counted as [`Record`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    pub layer: u32,
    pub entry: u32,
}

/// Where a node's metadata (and a file's content) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The entry at this source.
    Entry(Source),
    /// A directory nobody described: `0755 root:root`, dated at the epoch.
    Implicit,
    /// An empty `0755 root:root` file that `docker create` adds.
    InitFile,
    /// The `/etc/mtab -> /proc/mounts` link that `docker create` adds.
    InitMtab,
}

/// A non-directory; hardlinks share one.
#[derive(Debug, Clone, Copy)]
pub struct Inode {
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Dir {
        origin: Origin,
        children: BTreeMap<Box<[u8]>, NodeId>,
    },
    Leaf {
        inode: u32,
    },
}

#[derive(Debug, Clone)]
struct Slot {
    parent: NodeId,
    /// The layer (from 1; 0 before any) that wrote this node.
    layer: u32,
    /// The last layer that wrote this node or anything below it.
    touched: u32,
    kind: NodeKind,
}

/// The tree being merged; `records[layer][entry]` are the entries it refers to.
pub struct Plan<'r> {
    records: &'r [Vec<Record>],
    upper: &'r Upper,
    slots: Vec<Slot>,
    inodes: Vec<Inode>,
    /// The layer being applied, from 1.
    layer: u32,
    /// Directories that names of the [`Upper`] tree resolved to, valid until something is
    /// removed or replaced (which may change where a path leads): most entries share their
    /// parent with the entry before, and a deep one would otherwise cost a walk each.
    resolved: HashMap<UpperId, NodeId>,
    /// Counts removals and replacements, the changes that empty `resolved`.
    generation: u64,
}

/// The metadata of a directory nobody described.
pub fn implicit_meta() -> Meta {
    Meta {
        mode: 0o755,
        ..Meta::default()
    }
}

impl<'r> Plan<'r> {
    pub fn new(records: &'r [Vec<Record>], upper: &'r Upper) -> Plan<'r> {
        Plan {
            records,
            upper,
            slots: vec![Slot {
                parent: ROOT,
                layer: 0,
                touched: 0,
                kind: NodeKind::Dir {
                    origin: Origin::Implicit,
                    children: BTreeMap::new(),
                },
            }],
            inodes: Vec::new(),
            layer: 0,
            resolved: HashMap::new(),
            generation: 0,
        }
    }

    /// Applies every layer of `records`, bottom first.
    pub fn build(
        records: &'r [Vec<Record>],
        upper: &'r Upper,
    ) -> std::result::Result<Plan<'r>, (Source, Error)> {
        let mut plan = Plan::new(records, upper);
        for layer in 0..records.len() {
            plan.apply_layer(layer)?;
        }
        Ok(plan)
    }

    /// Applies layer `layer` (the next one). An error names the entry that caused it.
    pub fn apply_layer(&mut self, layer: usize) -> std::result::Result<(), (Source, Error)> {
        self.layer = layer as u32 + 1;
        let records = self.records;
        let mut plnk = false;
        for (entry, r) in records[layer].iter().enumerate() {
            let source = Source {
                layer: layer as u32,
                entry: entry as u32,
            };
            let at = |e: Error| (source, e);
            let p = || self.upper.path(r.node);
            match r.action {
                Action::Put => self
                    .put_node(r.node, &r.kind, Origin::Entry(source))
                    .map_err(at)?,
                Action::AufsLink if r.kind == Kind::File => {
                    self.put_node(r.node, &r.kind, Origin::Entry(source))
                        .map_err(at)?;
                    plnk = true;
                }
                Action::AufsLink | Action::AufsMeta => {}
                Action::Whiteout => self.whiteout(&p()).map_err(at)?,
                Action::Opaque => self.opaque(&p()).map_err(at)?,
            }
        }
        if plnk {
            self.remove_child(ROOT, AUFS_PLNK_DIR);
        }
        Ok(())
    }

    pub fn record(&self, s: Source) -> &'r Record {
        &self.records[s.layer as usize][s.entry as usize]
    }

    pub fn kind(&self, id: NodeId) -> &NodeKind {
        &self.slots[id as usize].kind
    }

    /// The layer (from 0) that wrote node `id` last; `None` for what no layer wrote.
    pub fn layer_of(&self, id: NodeId) -> Option<usize> {
        (self.slots[id as usize].layer as usize).checked_sub(1)
    }

    pub fn inode(&self, i: u32) -> Inode {
        self.inodes[i as usize]
    }

    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    /// The children of directory `id` in byte order (none for a leaf).
    pub fn children(&self, id: NodeId) -> impl Iterator<Item = (&[u8], NodeId)> {
        let map = match &self.slots[id as usize].kind {
            NodeKind::Dir { children, .. } => Some(children),
            NodeKind::Leaf { .. } => None,
        };
        map.into_iter().flatten().map(|(k, v)| (&k[..], *v))
    }

    pub fn child(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        match &self.slots[dir as usize].kind {
            NodeKind::Dir { children, .. } => children.get(name).copied(),
            NodeKind::Leaf { .. } => None,
        }
    }

    /// What an origin says a node is: the entry's kind, or what `docker create` makes.
    pub fn origin_kind(&self, o: Origin) -> Kind {
        match o {
            Origin::Entry(s) => self.record(s).kind.clone(),
            Origin::Implicit => Kind::Dir,
            Origin::InitFile => Kind::File,
            Origin::InitMtab => Kind::Symlink(super::DOCKER_INIT_MTAB.1.as_bytes().to_vec()),
        }
    }

    /// The metadata an origin gives.
    pub fn origin_meta(&self, o: Origin) -> Meta {
        match o {
            Origin::Entry(s) => self.record(s).meta.clone(),
            Origin::Implicit | Origin::InitFile => implicit_meta(),
            Origin::InitMtab => Meta {
                mode: 0o777,
                ..Meta::default()
            },
        }
    }

    fn symlink_target(&self, inode: u32) -> Option<&'r [u8]> {
        match self.inodes[inode as usize].origin {
            Origin::Entry(s) => match &self.record(s).kind {
                Kind::Symlink(t) => Some(t),
                _ => None,
            },
            Origin::InitMtab => Some(super::DOCKER_INIT_MTAB.1.as_bytes()),
            _ => None,
        }
    }

    fn new_slot(&mut self, parent: NodeId, kind: NodeKind) -> NodeId {
        let id = self.slots.len() as NodeId;
        self.slots.push(Slot {
            parent,
            layer: self.layer,
            touched: self.layer,
            kind,
        });
        id
    }

    /// Marks `id` and its ancestors as touched by the current layer. A node touched by it has
    /// all its ancestors touched, so the walk stops at the first that is.
    fn touch(&mut self, id: NodeId) {
        self.slots[id as usize].touched = self.layer;
        let mut cur = id;
        while cur != ROOT {
            cur = self.slots[cur as usize].parent;
            let s = &mut self.slots[cur as usize];
            if s.touched == self.layer {
                return;
            }
            s.touched = self.layer;
        }
    }

    fn children_mut(&mut self, dir: NodeId) -> &mut BTreeMap<Box<[u8]>, NodeId> {
        match &mut self.slots[dir as usize].kind {
            NodeKind::Dir { children, .. } => children,
            NodeKind::Leaf { .. } => unreachable!("only directories are resolved to"),
        }
    }

    /// Resolves `path` to a directory as if chrooted into the root: `..` stops at the root,
    /// absolute symlink targets start from it. With `create`, missing directories are made
    /// (belonging to the current layer) and a non-directory on the way is an error; without
    /// it, either gives `None`.
    fn resolve(&mut self, path: &RelPath, create: bool) -> Result<Option<NodeId>> {
        // Components to visit, as ranges into `buf`, last first; symlink targets are appended.
        let mut buf: Vec<u8> = path.as_bytes().to_vec();
        let mut pending: Vec<(usize, usize)> = Vec::new();
        push_components(&buf, 0, &mut pending);
        let mut cur = ROOT;
        let mut links = 0;
        while let Some((s, e)) = pending.pop() {
            let c = &buf[s..e];
            if c.is_empty() || c == b"." {
                continue;
            }
            if c == b".." {
                cur = self.slots[cur as usize].parent;
                continue;
            }
            match self.child(cur, c) {
                Some(id) => match &self.slots[id as usize].kind {
                    NodeKind::Dir { .. } => cur = id,
                    NodeKind::Leaf { inode } => match self.symlink_target(*inode) {
                        Some(t) => {
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(Error::input(format!(
                                    "{path}: too many symlinks (a loop?)"
                                )));
                            }
                            if t.starts_with(b"/") {
                                cur = ROOT;
                            }
                            let start = buf.len();
                            buf.extend_from_slice(t);
                            push_components(&buf, start, &mut pending);
                        }
                        None if create => {
                            return Err(Error::input(format!(
                                "cannot create {path}: {} is not a directory",
                                crate::vocabulary::quote::quote(c)
                            )))
                        }
                        None => return Ok(None),
                    },
                },
                None if create => {
                    let name: Box<[u8]> = c.into();
                    let id = self.new_slot(
                        cur,
                        NodeKind::Dir {
                            origin: Origin::Implicit,
                            children: BTreeMap::new(),
                        },
                    );
                    self.children_mut(cur).insert(name, id);
                    self.touch(id);
                    cur = id;
                }
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    /// Removes `dir/name`; what resolved through it may now lead elsewhere.
    fn remove_child(&mut self, dir: NodeId, name: &[u8]) {
        if self.children_mut(dir).remove(name).is_some() {
            self.resolved.clear();
            self.generation += 1;
        }
    }

    /// Puts an entry at the path of node `node` of the tree of names, resolving its parent
    /// from the cache when it can.
    fn put_node(&mut self, node: UpperId, kind: &Kind, origin: Origin) -> Result<()> {
        if node == UPPER_ROOT {
            return self.put(&RelPath::root(), kind, origin);
        }
        let parent_u = self.upper.parent(node);
        let parent = match self.resolved.get(&parent_u) {
            Some(&id) => id,
            None => {
                let path = self.upper.path(parent_u);
                let id = self
                    .resolve(&path, true)?
                    .ok_or_else(|| Error::input(format!("cannot create {path}")))?;
                self.resolved.insert(parent_u, id);
                id
            }
        };
        let upper = self.upper;
        let generation = self.generation;
        self.put_in(parent, upper.name(node), &|| upper.path(node), kind, origin)?;
        // The next entries are likely inside it; but if putting it replaced something (a
        // symlink on the way, say) its name may now lead elsewhere.
        if *kind == Kind::Dir && self.generation == generation {
            if let Some(id) = self.child(parent, upper.name(node)) {
                self.resolved.insert(node, id);
            }
        }
        Ok(())
    }

    fn put(&mut self, path: &RelPath, kind: &Kind, origin: Origin) -> Result<()> {
        let Some(name) = path.file_name() else {
            if *kind != Kind::Dir {
                return Err(Error::input(format!(
                    "a {} cannot replace the root directory",
                    kind.name()
                )));
            }
            if let NodeKind::Dir { origin: o, .. } = &mut self.slots[ROOT as usize].kind {
                *o = origin;
            }
            return Ok(());
        };
        let parent = self
            .resolve(&path.parent(), true)?
            .ok_or_else(|| Error::input(format!("cannot create {path}")))?;
        self.put_in(parent, name, &|| path.clone(), kind, origin)
    }

    /// Puts an entry named `name` in directory `parent`; `path` names it in errors.
    fn put_in(
        &mut self,
        parent: NodeId,
        name: &[u8],
        path: &dyn Fn() -> RelPath,
        kind: &Kind,
        origin: Origin,
    ) -> Result<()> {
        if *kind == Kind::Dir {
            if let Some(id) = self.child(parent, name) {
                if let NodeKind::Dir { origin: o, .. } = &mut self.slots[id as usize].kind {
                    *o = origin;
                    self.slots[id as usize].layer = self.layer;
                    self.touch(id);
                    return Ok(());
                }
            }
            self.remove_child(parent, name);
            let id = self.new_slot(
                parent,
                NodeKind::Dir {
                    origin,
                    children: BTreeMap::new(),
                },
            );
            self.children_mut(parent).insert(name.into(), id);
            self.touch(id);
            return Ok(());
        }
        // Whatever was there goes first: a link cannot point at what it replaces.
        self.remove_child(parent, name);
        let inode = match kind {
            Kind::Symlink(t) if t.is_empty() => {
                return Err(Error::input(format!("{}: empty symlink target", path())))
            }
            Kind::Hardlink(t) => {
                let tpath = RelPath::parse(t).map_err(|e| {
                    Error::input(format!(
                        "bad hardlink target \"{}\": {}",
                        crate::vocabulary::quote::quote(t),
                        e.message()
                    ))
                })?;
                let not_found = || Error::input(format!("hardlink target {tpath} not found"));
                let tname = tpath
                    .file_name()
                    .ok_or_else(|| Error::input("hardlink to the root directory"))?;
                let tdir = self
                    .resolve(&tpath.parent(), false)?
                    .ok_or_else(not_found)?;
                match self
                    .child(tdir, tname)
                    .map(|id| &self.slots[id as usize].kind)
                {
                    Some(NodeKind::Leaf { inode }) => *inode,
                    Some(NodeKind::Dir { .. }) => {
                        return Err(Error::input(format!(
                            "hardlink target {tpath} is a directory"
                        )))
                    }
                    None => return Err(not_found()),
                }
            }
            _ => {
                self.inodes.push(Inode { origin });
                (self.inodes.len() - 1) as u32
            }
        };
        let id = self.new_slot(parent, NodeKind::Leaf { inode });
        self.children_mut(parent).insert(name.into(), id);
        self.touch(id);
        Ok(())
    }

    fn whiteout(&mut self, path: &RelPath) -> Result<()> {
        let Some(name) = path.file_name() else {
            return self.opaque(path);
        };
        if let Some(parent) = self.resolve(&path.parent(), false)? {
            self.prune(parent, name);
        }
        Ok(())
    }

    fn opaque(&mut self, path: &RelPath) -> Result<()> {
        if let Some(dir) = self.resolve(path, false)? {
            let names: Vec<Box<[u8]>> = self.children(dir).map(|(n, _)| n.into()).collect();
            for n in names {
                self.prune(dir, &n);
            }
        }
        Ok(())
    }

    /// Removes what lower layers left at `parent/name`, keeping what this layer wrote; a lower
    /// directory that holds some of it stays as the bare parent this layer would have made.
    fn prune(&mut self, parent: NodeId, name: &[u8]) {
        let mut work: Vec<(NodeId, Box<[u8]>)> = vec![(parent, name.into())];
        while let Some((parent, name)) = work.pop() {
            let Some(id) = self.child(parent, &name) else {
                continue;
            };
            let slot = &mut self.slots[id as usize];
            if slot.touched != self.layer {
                self.remove_child(parent, &name);
                continue;
            }
            if let NodeKind::Dir { origin, children } = &mut slot.kind {
                if slot.layer != self.layer {
                    *origin = Origin::Implicit;
                    slot.layer = self.layer;
                }
                work.extend(children.keys().map(|n| (id, n.clone())));
            }
        }
    }

    /// Adds, as one more layer, what `docker create` adds to a container (see
    /// `crate::spec::Spec::add_docker_init`, which states the rules).
    pub fn add_docker_init(&mut self, workdir: Option<&str>) -> Result<()> {
        self.layer += 1;
        for f in super::DOCKER_INIT_FILES {
            let p = RelPath::parse(f.as_bytes())?;
            if !self.is_dir(&p)? {
                self.put(&p, &Kind::File, Origin::InitFile)?;
            }
        }
        let mtab = RelPath::parse(super::DOCKER_INIT_MTAB.0.as_bytes())?;
        if !self.is_dir(&mtab)? {
            self.put(&mtab, &Kind::Symlink(b"-".to_vec()), Origin::InitMtab)?;
        }
        for d in super::DOCKER_INIT_DIRS {
            let p = RelPath::parse(d.as_bytes())?;
            if !self.is_dir(&p)? {
                self.put(&p, &Kind::Dir, Origin::Implicit)?;
            }
        }
        if let Some(w) = workdir.filter(|w| !w.trim_matches('/').is_empty()) {
            let p = RelPath::parse(w.as_bytes())
                .map_err(|e| Error::input(format!("WORKDIR {w:?}: {}", e.message())))?;
            self.resolve(&p, true)?;
        }
        Ok(())
    }

    /// Whether a directory stands at `path` (a final symlink is not followed).
    fn is_dir(&mut self, path: &RelPath) -> Result<bool> {
        let Some(name) = path.file_name() else {
            return Ok(true);
        };
        let Some(parent) = self.resolve(&path.parent(), false)? else {
            return Ok(false);
        };
        Ok(matches!(
            self.child(parent, name)
                .map(|id| &self.slots[id as usize].kind),
            Some(NodeKind::Dir { .. })
        ))
    }

    /// How many names each inode has in the tree.
    pub fn link_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.inodes.len()];
        let mut stack = vec![ROOT];
        while let Some(d) = stack.pop() {
            for (_, id) in self.children(d) {
                match &self.slots[id as usize].kind {
                    NodeKind::Dir { .. } => stack.push(id),
                    NodeKind::Leaf { inode } => counts[*inode as usize] += 1,
                }
            }
        }
        counts
    }
}

/// Pushes the `/`-separated components of `buf[start..]` onto `pending`, last first.
fn push_components(buf: &[u8], start: usize, pending: &mut Vec<(usize, usize)>) {
    let mut end = buf.len();
    for i in (start..buf.len()).rev() {
        if buf[i] == b'/' {
            pending.push((i + 1, end));
            end = i;
        }
    }
    pending.push((start, end));
}

/// Children still to visit, last first.
type Pending = Vec<(Box<[u8]>, NodeId)>;

impl Plan<'_> {
    /// What a leaf is, for a listing or a tar header (file contents are not hashed here).
    pub fn leaf_kind(&self, inode: u32) -> crate::vocabulary::node::NodeKind {
        use crate::vocabulary::node::NodeKind as N;
        let origin = self.inodes[inode as usize].origin;
        match self.origin_kind(origin) {
            Kind::File => N::File {
                size: match origin {
                    Origin::Entry(s) => self.record(s).size,
                    _ => 0,
                },
                sha256: [0; 32],
            },
            Kind::Symlink(t) => N::Symlink(t),
            Kind::CharDevice { major, minor } => N::CharDevice(major, minor),
            Kind::BlockDevice { major, minor } => N::BlockDevice(major, minor),
            Kind::Fifo => N::Fifo,
            Kind::Dir | Kind::Hardlink(_) => unreachable!("inodes are leaves"),
        }
    }

    /// The tree in `tar -t` order: depth first, each directory before its contents, names
    /// in byte order (the order `docker export` uses); the root itself is not listed. The
    /// second and later names of a node list the first as `hardlink_to`.
    pub fn list(&self) -> Vec<super::Listed> {
        let mut out = Vec::new();
        let mut first_name: HashMap<u32, Vec<u8>> = HashMap::new();
        // (path of the directory, its children still to visit, last first)
        let mut stack: Vec<(Vec<u8>, Pending)> = vec![(Vec::new(), self.todo(ROOT))];
        while let Some((prefix, todo)) = stack.last_mut() {
            let Some((name, id)) = todo.pop() else {
                stack.pop();
                continue;
            };
            let path = if prefix.is_empty() {
                name.to_vec()
            } else {
                [prefix.as_slice(), b"/", &name].concat()
            };
            let layer = self.layer_of(id).unwrap_or(0);
            match self.kind(id) {
                NodeKind::Dir { origin, .. } => {
                    out.push(super::Listed {
                        path: path.clone(),
                        kind: crate::vocabulary::node::NodeKind::Dir,
                        meta: self.origin_meta(*origin),
                        layer,
                        hardlink_to: None,
                        content: None,
                    });
                    let todo = self.todo(id);
                    stack.push((path, todo));
                }
                NodeKind::Leaf { inode } => {
                    let hardlink_to = match first_name.get(inode) {
                        Some(first) => Some(first.clone()),
                        None => {
                            first_name.insert(*inode, path.clone());
                            None
                        }
                    };
                    let origin = self.inodes[*inode as usize].origin;
                    let content = match origin {
                        Origin::Entry(s) if hardlink_to.is_none() => Some(s),
                        _ => None,
                    };
                    out.push(super::Listed {
                        path,
                        kind: self.leaf_kind(*inode),
                        meta: self.origin_meta(origin),
                        layer,
                        hardlink_to,
                        content,
                    });
                }
            }
        }
        out
    }

    /// The children of `dir`, last first (to be popped in order).
    fn todo(&self, dir: NodeId) -> Pending {
        let mut v: Vec<(Box<[u8]>, NodeId)> =
            self.children(dir).map(|(n, c)| (n.into(), c)).collect();
        v.reverse();
        v
    }
}
