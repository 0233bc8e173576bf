//! Steps 3 and 4: reconciling what step 1 wrote with the plan, then writing the rest of the
//! tree from it.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::Disk;
use super::Layers;
use crate::error::{Error, ErrorKind, Result};
use crate::fs::{Body, Target};
use crate::layer::read::{read_layer, Reading};
use crate::merge::plan::{NodeKind, Origin, Plan, Source, ROOT};
use crate::merge::upper::{Upper, UpperId, UPPER_ROOT};
use crate::tar::{Data, Kind};
use crate::vocabulary::path::{join, show};

/// What reconciling did with a file step 1 wrote.
enum Fate {
    /// The plan keeps it where it is.
    Stays,
    /// The plan wants it elsewhere: it waits in staging.
    Staged,
    /// Nothing needs it.
    Removed,
}

/// Where the content of a node of the plan is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Nowhere yet.
    Unplaced,
    /// At its first name; the path is kept when other names must link to it.
    Placed(Option<Vec<u8>>),
    /// In the staging directory under this name.
    Staged,
    /// A device an unprivileged run cannot make (nor link to).
    Skipped,
}

/// Steps 3 and 4.
pub(super) struct Writer<'a, 'r> {
    target: &'a mut Target,
    plan: &'a Plan<'r>,
    upper: &'a Upper,
    disk: &'a mut Vec<Disk>,
    state: Vec<State>,
    links: Vec<u32>,
    root: OwnedFd,
    staging_name: Vec<u8>,
    staging: Option<OwnedFd>,
}

impl<'a, 'r> Writer<'a, 'r> {
    pub(super) fn new(
        target: &'a mut Target,
        plan: &'a Plan<'r>,
        upper: &'a Upper,
        disk: &'a mut Vec<Disk>,
    ) -> Result<Self> {
        disk.resize(upper.len(), Disk::Absent);
        // A name neither the tree nor anything written uses.
        let mut staging_name = b".flatten-staging".to_vec();
        let mut n = 0;
        while plan.child(ROOT, &staging_name).is_some()
            || upper.child(UPPER_ROOT, &staging_name).is_some()
        {
            n += 1;
            staging_name = format!(".flatten-staging-{n}").into_bytes();
        }
        Ok(Writer {
            root: target.open_root()?,
            target,
            plan,
            upper,
            disk,
            state: vec![State::Unplaced; plan.inode_count()],
            links: plan.link_counts(),
            staging_name,
            staging: None,
        })
    }

    /// Makes the staging directory, if not yet made.
    fn make_staging(&mut self) -> Result<()> {
        if self.staging.is_none() {
            let name = self.staging_name.clone();
            self.target.mkdir(self.root.as_fd(), &name, &name)?;
            self.staging = Some(self.target.open_dir(self.root.as_fd(), &name, &name)?);
        }
        Ok(())
    }

    fn staged_name(inode: u32) -> Vec<u8> {
        inode.to_string().into_bytes()
    }

    /// The surviving file inodes, by the entry their content comes from.
    fn live_files(&self) -> HashMap<Source, u32> {
        let mut live = HashMap::new();
        for i in 0..self.plan.inode_count() as u32 {
            if self.links[i as usize] == 0 {
                continue; // replaced or deleted by a later entry
            }
            if let Origin::Entry(s) = self.plan.inode(i).origin {
                if self.plan.record(s).kind == Kind::File {
                    live.insert(s, i);
                }
            }
        }
        live
    }

    /// Step 3: keeps what step 1 wrote at its final path, stages what belongs elsewhere,
    /// removes the rest.
    /// Returns how many files were staged.
    pub(super) fn reconcile(&mut self) -> Result<u64> {
        struct Frame {
            name: Box<[u8]>,
            unode: UpperId,
            plan_dir: Option<u32>,
            todo: Vec<(Box<[u8]>, UpperId)>,
        }
        let live = self.live_files();
        let mut moved = 0;
        let on_disk = |w: &Self, u: UpperId| -> Vec<(Box<[u8]>, UpperId)> {
            w.upper
                .children(u)
                .filter(|(_, c)| w.disk[*c as usize] != Disk::Absent)
                .map(|(n, c)| (n.into(), c))
                .collect()
        };
        // Directories are opened only where something must change: for a real image, nowhere.
        let mut stack = vec![Frame {
            name: Box::default(),
            unode: UPPER_ROOT,
            plan_dir: Some(ROOT),
            todo: on_disk(self, UPPER_ROOT),
        }];
        // The path of the directory on top of the stack: frames keep only their names, so a
        // deep tree costs memory in its depth, not in the square of it.
        let mut path: Vec<u8> = Vec::new();
        while let Some(top) = stack.last_mut() {
            let Some((name, cu)) = top.todo.pop() else {
                let done = stack.pop().expect("not empty");
                let here = path.clone();
                pop_name(&mut path);
                if let (None, false) = (done.plan_dir, stack.is_empty()) {
                    // Not a directory of the tree: everything below it is gone by now.
                    let at = self.target.dir(&path)?;
                    self.target.rmdir(at.fd(), &done.name, &here)?;
                    self.disk[done.unode as usize] = Disk::Absent;
                }
                continue;
            };
            let phys = join(&path, &name);
            let in_plan = top.plan_dir.and_then(|d| self.plan.child(d, &name));
            match self.disk[cu as usize] {
                Disk::Absent => {}
                Disk::Dir => {
                    let plan_dir =
                        in_plan.filter(|&c| matches!(self.plan.kind(c), NodeKind::Dir { .. }));
                    let todo = on_disk(self, cu);
                    path = phys;
                    stack.push(Frame {
                        name,
                        unode: cu,
                        plan_dir,
                        todo,
                    });
                }
                Disk::File(s) => {
                    match self.reconcile_file(s, in_plan, &path, &name, &phys, &live)? {
                        Fate::Stays => {}
                        Fate::Staged => {
                            moved += 1;
                            self.disk[cu as usize] = Disk::Absent;
                        }
                        Fate::Removed => self.disk[cu as usize] = Disk::Absent,
                    }
                }
            }
        }
        Ok(moved)
    }

    /// The inode whose first name a file step 1 wrote from entry `s` is, when the plan
    /// keeps it right there.
    fn home(&self, s: Source, in_plan: Option<u32>) -> Option<u32> {
        match in_plan.map(|c| self.plan.kind(c)) {
            Some(NodeKind::Leaf { inode })
                if self.plan.inode(*inode).origin == Origin::Entry(s) =>
            {
                Some(*inode)
            }
            _ => None,
        }
    }

    /// One file step 1 wrote at `name` in directory `path`: it stays if the plan keeps it
    /// there, waits in staging if the plan wants it elsewhere, else goes.
    fn reconcile_file(
        &mut self,
        s: Source,
        in_plan: Option<u32>,
        path: &[u8],
        name: &[u8],
        phys: &[u8],
        live: &HashMap<Source, u32>,
    ) -> Result<Fate> {
        if let Some(inode) = self.home(s, in_plan) {
            let keep = (self.links[inode as usize] > 1).then(|| phys.to_vec());
            self.state[inode as usize] = State::Placed(keep);
            return Ok(Fate::Stays);
        }
        let at = self.target.dir(path)?;
        match live.get(&s) {
            Some(&inode) if self.state[inode as usize] == State::Unplaced => {
                let staged = Self::staged_name(inode);
                self.make_staging()?;
                let staging = self.staging.as_ref().expect("made").as_fd();
                self.target.rename(at.fd(), name, staging, &staged, phys)?;
                self.state[inode as usize] = State::Staged;
                Ok(Fate::Staged)
            }
            _ => {
                self.target.unlink(at.fd(), name, phys)?;
                Ok(Fate::Removed)
            }
        }
    }

    /// Reads again, into staging, the content of surviving files that step 1 skipped.
    /// Returns how many layers were read again.
    pub(super) fn fetch_missing(&mut self, layers: &dyn Layers, verify: bool) -> Result<usize> {
        let mut missing: BTreeMap<u32, BTreeMap<u32, u32>> = BTreeMap::new();
        for i in 0..self.plan.inode_count() as u32 {
            if self.state[i as usize] != State::Unplaced || self.links[i as usize] == 0 {
                continue;
            }
            if let Origin::Entry(s) = self.plan.inode(i).origin {
                let r = self.plan.record(s);
                if r.kind == Kind::File && r.size > 0 {
                    missing.entry(s.layer).or_default().insert(s.entry, i);
                }
            }
        }
        for (&layer, wanted) in &missing {
            let index = layer as usize;
            let lref = layers.layer_ref(index);
            let expected = layers.expected(index);
            self.make_staging()?;
            let staging = self.staging.as_ref().expect("made").as_fd();
            let cancel = self.target.cancel().clone();
            let target = &mut *self.target;
            let state = &mut self.state;
            let plan = self.plan;
            let how = Reading {
                verify,
                export_rules: false,
                cancel,
            };
            let measured = read_layer(layers, index, &how, &mut (), &mut |item| {
                if let Some(&inode) = wanted.get(&item.number) {
                    let r = plan.record(Source {
                        layer,
                        entry: item.number,
                    });
                    let name = Self::staged_name(inode);
                    let body = match item.data {
                        Data::Whole(r) => Body::Stream(r),
                        Data::Sparse { map, pieces } => Body::Sparse { map, pieces },
                    };
                    target.write_new(staging.as_fd(), &name, &name, &r.meta, r.size, body)?;
                    state[inode as usize] = State::Staged;
                }
                Ok(())
            })?;
            if verify {
                measured.verify(&expected).map_err(|e| e.in_layer(&lref))?;
            }
            if let Some((_, &inode)) = wanted
                .iter()
                .find(|(_, &i)| self.state[i as usize] != State::Staged)
            {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("layer {layer} changed while read: inode {inode} not found again"),
                ));
            }
        }
        Ok(missing.len())
    }

    /// Step 4: the tree, depth first, each directory's mode and times after its contents.
    pub(super) fn write_tree(&mut self) -> Result<()> {
        struct Frame {
            dir: u32,
            unode: Option<UpperId>,
            fd: OwnedFd,
            todo: Vec<(Box<[u8]>, u32)>,
        }
        let plan = self.plan;
        let children = |d: u32| -> Vec<(Box<[u8]>, u32)> {
            let mut v: Vec<(Box<[u8]>, u32)> =
                plan.children(d).map(|(n, c)| (n.into(), c)).collect();
            v.reverse();
            v
        };
        let root_origin = match plan.kind(ROOT) {
            NodeKind::Dir { origin, .. } => *origin,
            NodeKind::Leaf { .. } => unreachable!("the root is a directory"),
        };
        let root_meta =
            matches!(root_origin, Origin::Entry(_)).then(|| plan.origin_meta(root_origin));
        if let Some(meta) = &root_meta {
            self.target.dir_owner_xattrs(self.root.as_fd(), b"", meta)?;
        }
        let mut stack = vec![Frame {
            dir: ROOT,
            unode: Some(UPPER_ROOT),
            fd: self.target.open_root()?,
            todo: children(ROOT),
        }];
        let mut path: Vec<u8> = Vec::new();
        while let Some(top) = stack.last_mut() {
            if self.target.cancelled() {
                return Err(Error::new(ErrorKind::Interrupted, "interrupted"));
            }
            let Some((name, id)) = top.todo.pop() else {
                let done = stack.pop().expect("not empty");
                if done.dir != ROOT {
                    let NodeKind::Dir { origin, .. } = plan.kind(done.dir) else {
                        unreachable!("frames are directories")
                    };
                    let meta = plan.origin_meta(*origin);
                    self.target.dir_mode_times(done.fd, &path, &meta)?;
                }
                pop_name(&mut path);
                continue;
            };
            let phys = join(&path, &name);
            let unode = top.unode.and_then(|u| self.upper.child(u, &name));
            let here = unode.map_or(Disk::Absent, |u| self.disk[u as usize]);
            let at = top.fd.as_fd();
            match plan.kind(id) {
                NodeKind::Dir { origin, .. } => {
                    if here != Disk::Dir {
                        self.target.mkdir(at, &name, &phys)?;
                    }
                    let dfd = self.target.open_dir(at, &name, &phys)?;
                    self.target
                        .dir_owner_xattrs(dfd.as_fd(), &phys, &plan.origin_meta(*origin))?;
                    stack.push(Frame {
                        dir: id,
                        unode: unode.filter(|_| here == Disk::Dir),
                        fd: dfd,
                        todo: children(id),
                    });
                    path = phys;
                }
                NodeKind::Leaf { inode } => self.write_leaf(*inode, at, &name, &phys, here)?,
            }
        }
        if self.staging.take().is_some() {
            let name = self.staging_name.clone();
            self.target.rmdir(self.root.as_fd(), &name, &name)?;
        }
        if let Some(meta) = &root_meta {
            let root = self.target.open_root()?;
            self.target.dir_mode_times(root, b"", meta)?;
        }
        Ok(())
    }

    /// A non-directory at `name` in `at`: a hardlink to the inode's first name, a staged
    /// file moved into place, or a new leaf; nothing if step 1 already put it there.
    fn write_leaf(
        &mut self,
        inode: u32,
        at: BorrowedFd<'_>,
        name: &[u8],
        phys: &[u8],
        here: Disk,
    ) -> Result<()> {
        let plan = self.plan;
        let origin = plan.inode(inode).origin;
        let multi = self.links[inode as usize] > 1;
        let keep = |p: &[u8]| multi.then(|| p.to_vec());
        match &self.state[inode as usize] {
            State::Skipped => {}
            State::Placed(home) => {
                let at_home = matches!((origin, here), (Origin::Entry(s), Disk::File(d)) if s == d);
                if !at_home {
                    let home = home.clone().ok_or_else(|| {
                        Error::new(ErrorKind::Io, format!("{} has no first name", show(phys)))
                    })?;
                    self.target.link(&home, at, name, phys)?;
                }
            }
            State::Staged => {
                let staging = self.staging.as_ref().expect("staged files").as_fd();
                let staged = Self::staged_name(inode);
                self.target.rename(staging, &staged, at, name, phys)?;
                self.state[inode as usize] = State::Placed(keep(phys));
            }
            State::Unplaced => {
                let kind = plan.origin_kind(origin);
                let meta = plan.origin_meta(origin);
                let made = self.target.make_leaf(at, name, phys, &kind, &meta)?;
                self.state[inode as usize] = if made {
                    State::Placed(keep(phys))
                } else {
                    State::Skipped
                };
            }
        }
        Ok(())
    }
}

/// Drops the last component of a physical path.
fn pop_name(path: &mut Vec<u8>) {
    let cut = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
    path.truncate(cut);
}
