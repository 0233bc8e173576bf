//! The applier: writes the merged tree once, each file from the one layer entry whose content
//! survives.
//!
//! 1. **Read, top layer first.** Each entry's header is kept as a [`Record`]. A file's content
//!    is written at its path, with its metadata, unless a layer above (already read) deletes
//!    or replaces it ([`Upper`]); the bytes of dead files are read past, never written.
//! 2. **Plan.** The rules run bottom-up over the records alone ([`Plan`]), giving the final
//!    tree and, for each file, the entry its content comes from.
//! 3. **Reconcile.** What step 1 wrote is checked against the plan: files at their final path
//!    stay; a file needed elsewhere (the path guess of step 1 was wrong, as when a lower layer
//!    turns a directory into a symlink) waits in a staging directory; anything else is removed.
//!    A surviving file whose content step 1 skipped (a hardlink kept it alive) is read again
//!    from its layer into staging. For real images these lists are empty.
//! 4. **Write the rest**, depth first from the plan: directories, symlinks, devices, fifos,
//!    hardlinks and staged files, each directory's mode and times after its contents.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::IoContext;
use crate::error::{Error, ErrorKind, LayerRef, Result};
use crate::fs::resolve::{join, show};
use crate::fs::{Body, Strategy, Target, Unreproduced};
use crate::image::store::Region;
use crate::layer::ahead::decode_ahead;
use crate::layer::entry::{read_header, Header, Kind, Parsed};
use crate::layer::region::RegionReader;
use crate::layer::{sniff, Compression, Decoded, Expected, Measured};
use crate::merge::plan::{NodeKind, Origin, Plan, Record, Source, ROOT};
use crate::merge::upper::{Upper, UpperId, UPPER_ROOT};
use crate::merge::{classify, Change, RelPath};
use crate::Observer;

/// Set from a signal handler to stop between entries.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The layers of an image, bottom first, as the applier reads them.
pub trait Layers {
    fn count(&self) -> usize;
    /// The stored blob of layer `index` (plain, gzip or zstd).
    fn open(&self, index: usize) -> Result<Box<dyn Read + Send + '_>>;
    /// How errors name layer `index`.
    fn layer_ref(&self, index: usize) -> LayerRef;
    /// The digests layer `index` must have.
    fn expected(&self, index: usize) -> Expected;
    /// The stored size of layer `index`, when known (for progress).
    fn size(&self, _index: usize) -> Option<u64> {
        None
    }
    /// Where the blob of layer `index` lies, if whole in one file here: a plain layer is then
    /// read in place.
    fn region(&self, _index: usize) -> Result<Option<Region>> {
        Ok(None)
    }
}

impl Layers for crate::Image {
    fn count(&self) -> usize {
        self.layers.len()
    }
    fn open(&self, index: usize) -> Result<Box<dyn Read + Send + '_>> {
        self.open_layer(index)
    }
    fn layer_ref(&self, index: usize) -> LayerRef {
        crate::Image::layer_ref(self, index)
    }
    fn expected(&self, index: usize) -> Expected {
        self.layers[index].expected.clone()
    }
    fn size(&self, index: usize) -> Option<u64> {
        self.layer_size(index)
    }
    fn region(&self, index: usize) -> Result<Option<Region>> {
        self.layer_region(index)
    }
}

/// Layer blobs, bottom first, with no digests to check: for tests and tools that make layers
/// themselves. They are kept in an unlinked temporary file so that they are read like the
/// layers of a stored image.
pub struct InMemory {
    file: Arc<File>,
    spans: Vec<(u64, u64)>,
}

impl InMemory {
    pub fn new(blobs: &[Vec<u8>]) -> Result<InMemory> {
        let mut file = tempfile::tempfile().ctx(|| "cannot make a temporary file".into())?;
        let mut spans = Vec::new();
        let mut at = 0u64;
        for b in blobs {
            file.write_all(b)
                .ctx(|| "cannot write a temporary file".into())?;
            spans.push((at, b.len() as u64));
            at += b.len() as u64;
        }
        Ok(InMemory {
            file: Arc::new(file),
            spans,
        })
    }
}

impl Layers for InMemory {
    fn count(&self) -> usize {
        self.spans.len()
    }
    fn open(&self, index: usize) -> Result<Box<dyn Read + Send + '_>> {
        let region = self.region(index)?.expect("always in place");
        Ok(Box::new(RegionReader::new(region)))
    }
    fn layer_ref(&self, index: usize) -> LayerRef {
        LayerRef {
            index,
            digest: None,
        }
    }
    fn expected(&self, _index: usize) -> Expected {
        Expected::default()
    }
    fn region(&self, index: usize) -> Result<Option<Region>> {
        let (offset, len) = self.spans[index];
        Ok(Some(Region {
            file: self.file.clone(),
            offset,
            len,
        }))
    }
}

/// How to apply.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Check each layer against the digests the image gives.
    pub verify: bool,
    pub strategy: Strategy,
    /// Keep only what `docker export` keeps and add what `docker create` adds, with this
    /// WORKDIR (see `docs/commands.md`).
    pub docker_export: Option<Option<String>>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub entries: u64,
    pub whiteouts: u64,
    /// Uncompressed bytes read from all layers.
    pub bytes: u64,
    /// Content bytes written (each surviving file once, unless a guess was wrong).
    pub written: u64,
    /// Content bytes of files that upper layers delete or replace, read past unwritten.
    pub skipped: u64,
    /// Files written where the names alone placed them, then moved to where the rules put
    /// them (a path through a lower layer's symlink).
    pub moved: u64,
    /// Layers read a second time for content the first reading skipped (a hardlink kept a
    /// replaced file alive).
    pub reread: usize,
    pub unreproduced: Unreproduced,
}

/// What step 1 left at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disk {
    Absent,
    Dir,
    File(Source),
}

/// Applies `layers` into `dir`, an existing empty directory. On error the directory holds
/// whatever was written up to then.
pub fn apply(
    layers: &dyn Layers,
    dir: &Path,
    settings: &Settings,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let mut a = Applier {
        target: Target::open(dir, settings.strategy)?,
        upper: Upper::new(),
        disk: vec![Disk::Absent],
        records: vec![Vec::new(); layers.count()],
        export_rules: settings.docker_export.is_some(),
        out: Outcome::default(),
    };
    let count = layers.count();
    for index in (0..count).rev() {
        observer.layer_start(index, count, layers.size(index));
        let layer = layers.layer_ref(index);
        let expected = layers.expected(index);
        let measured = match plain(layers, index)? {
            Some(blob) => {
                a.read_plain_layer(layers, index, blob, &expected, settings.verify, observer)
            }
            None => a.read_compressed_layer(layers, index, &expected, settings.verify, observer),
        }
        .map_err(|e| e.in_layer(&layer))?;
        if settings.verify {
            measured.verify(&expected).map_err(|e| e.in_layer(&layer))?;
        }
        a.out.bytes += measured.size;
        observer.layer_done(index);
    }
    let Applier {
        mut target,
        upper,
        mut disk,
        records,
        mut out,
        ..
    } = a;
    let mut plan = Plan::build(&records, &upper).map_err(|(s, e)| {
        let node = records[s.layer as usize][s.entry as usize].node;
        e.at_entry(upper.path(node).display().as_bytes())
            .in_layer(&layers.layer_ref(s.layer as usize))
    })?;
    if let Some(workdir) = &settings.docker_export {
        plan.add_docker_init(workdir.as_deref())?;
    }
    let mut w = Writer::new(&mut target, &plan, &upper, &mut disk)?;
    out.moved = w.reconcile()?;
    out.reread = w.fetch_missing(layers, settings.verify)?;
    w.write_tree()?;
    out.unreproduced = target.finish();
    Ok(out)
}

/// Step 1: reading layers from the top.
struct Applier {
    target: Target,
    upper: Upper,
    /// What is on disk at each node of `upper`.
    disk: Vec<Disk>,
    records: Vec<Vec<Record>>,
    export_rules: bool,
    out: Outcome,
}

/// Where layer `index` lies when it is an uncompressed tar in one file here.
fn plain(layers: &dyn Layers, index: usize) -> Result<Option<Region>> {
    let Some(region) = layers.region(index)? else {
        return Ok(None);
    };
    let mut head = [0u8; 8];
    let n = read_full(&mut RegionReader::new(region.clone()), &mut head)
        .map_err(|e| Error::io("cannot read layer", e).with_kind(ErrorKind::Input))?;
    Ok((sniff(&head[..n])? == Compression::None).then_some(region))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Told of each entry: its number, header, content, and where the content lies in the layer.
type EntryFn<'a> = dyn FnMut(u32, Header, &mut dyn Read, Option<u64>) -> Result<()> + 'a;

/// Reads the entries of one uncompressed layer, calling `each` with the entry's number (as
/// in [`Source::entry`]), its header, its content and where that lies in the layer. Entries that carry nothing for the tree
/// (PAX global headers) are not numbered. Content `each` does not read is skipped (by a seek,
/// where the archive was opened with seeks).
fn for_each_entry<R: Read>(
    entries: std::io::Result<tar::Entries<'_, R>>,
    export_rules: bool,
    each: &mut EntryFn<'_>,
) -> Result<()> {
    let entries = entries
        .map_err(|e| Error::io("cannot read the layer as tar", e).with_kind(ErrorKind::Input))?;
    let mut last: Vec<u8> = Vec::new();
    let mut number = 0u32;
    for entry in entries {
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err(Error::new(ErrorKind::Interrupted, "interrupted"));
        }
        let mut entry = entry.map_err(|e| {
            let after = if last.is_empty() {
                "at its start".to_owned()
            } else {
                format!("after entry {}", show(&last))
            };
            Error::io(format!("corrupt tar {after}"), e).with_kind(ErrorKind::Input)
        })?;
        last = entry.path_bytes().into_owned();
        let name = last.clone();
        let mut header = match read_header(&mut entry).map_err(|e| e.at_entry(&name))? {
            Parsed::Entry(h) => h,
            Parsed::Skip => continue,
        };
        if export_rules {
            header.meta.mtime.nanos = 0;
            header.meta.atime = None;
            header
                .meta
                .xattrs
                .retain(|(k, _)| k == b"security.capability");
        }
        // Where the content lies in the layer, unless the tar stores it in pieces.
        let data_at =
            (!entry.header().entry_type().is_gnu_sparse()).then(|| entry.raw_file_position());
        each(number, header, &mut entry, data_at).map_err(|e| e.at_entry(&name))?;
        number += 1;
    }
    Ok(())
}

impl Applier {
    /// A compressed layer (or one the store cannot seek in): decoded and hashed on another
    /// thread, ahead of the writer.
    fn read_compressed_layer(
        &mut self,
        layers: &dyn Layers,
        index: usize,
        expected: &Expected,
        verify: bool,
        observer: &mut dyn Observer,
    ) -> Result<Measured> {
        let blob = Progress {
            inner: layers.open(index)?,
            observer,
        };
        std::thread::scope(|scope| {
            let mut ahead = decode_ahead(scope, Box::new(blob), expected, verify);
            let mut archive = tar::Archive::new(&mut ahead);
            match self.read_layer(index, archive.entries(), None) {
                Ok(()) => ahead.finish(),
                Err(e) => {
                    ahead.abort();
                    Err(e)
                }
            }
        })
    }

    /// An uncompressed layer the store can seek in: read for its entries, seeking past the
    /// content of dead files, while another thread hashes the whole blob when it must be
    /// checked.
    fn read_plain_layer(
        &mut self,
        layers: &dyn Layers,
        index: usize,
        region: Region,
        expected: &Expected,
        verify: bool,
        observer: &mut dyn Observer,
    ) -> Result<Measured> {
        std::thread::scope(|scope| {
            let hasher = verify.then(|| {
                let raw = layers.open(index);
                scope.spawn(move || -> Result<Measured> {
                    let blob = Progress {
                        inner: raw?,
                        observer,
                    };
                    let mut d = Decoded::hashing(Box::new(blob), expected, true)?;
                    std::io::copy(d.reader(), &mut std::io::sink()).map_err(|e| {
                        Error::io("cannot read layer", e).with_kind(ErrorKind::Input)
                    })?;
                    d.finish()
                })
            });
            let mut blob = RegionReader::new(region.clone());
            let mut archive = tar::Archive::new(&mut blob);
            let read = self.read_layer(index, archive.entries_with_seek(), Some(&region));
            let measured = match hasher {
                Some(h) => h.join().unwrap_or_else(|_| {
                    Err(Error::new(ErrorKind::Io, "the hashing thread panicked"))
                }),
                None => {
                    let size = region.len;
                    let (digest, _) = crate::digest::Tap::counting().result();
                    Ok(Measured {
                        compression: Compression::None,
                        blob: digest.clone(),
                        blob_size: size,
                        diff_id: digest,
                        size,
                    })
                }
            };
            // A corrupt tar is reported where it breaks, before a digest mismatch.
            read?;
            measured
        })
    }

    /// Reads one layer's entries; `region` is where a plain layer lies, for copying file
    /// contents in the kernel.
    fn read_layer<R: Read>(
        &mut self,
        index: usize,
        entries: std::io::Result<tar::Entries<'_, R>>,
        region: Option<&Region>,
    ) -> Result<()> {
        let mut records = Vec::new();
        let export_rules = self.export_rules;
        for_each_entry(
            entries,
            export_rules,
            &mut |number, header, stream, data_at| {
                let body = match (region, data_at) {
                    (Some(r), Some(at)) => Body::Range {
                        file: &r.file,
                        offset: r.offset + at,
                    },
                    _ => Body::Stream(stream),
                };
                self.out.entries += 1;
                let change = classify(&header.name)?;
                let source = Source {
                    layer: index as u32,
                    entry: number,
                };
                let is_dir = header.kind == Kind::Dir;
                match &change {
                    Change::Put(p) => {
                        let id = self.upper.node(p);
                        let masked = self.upper.masked(id, index, is_dir);
                        self.upper.note_entry(id, index, is_dir);
                        if header.kind == Kind::File
                            && (masked || !self.place(id, p, &header, source, body)?)
                        {
                            self.out.skipped += header.size;
                        }
                    }
                    // Not a path of the tree: not noted, so it masks nothing.
                    Change::AufsLink(p) if header.kind == Kind::File => {
                        let id = self.upper.node(p);
                        if self.upper.masked(id, index, false)
                            || !self.place(id, p, &header, source, body)?
                        {
                            self.out.skipped += header.size;
                        }
                    }
                    Change::Whiteout(p) => {
                        self.out.whiteouts += 1;
                        let id = self.upper.node(p);
                        self.upper.note_whiteout(id, index);
                    }
                    Change::Opaque(p) => {
                        self.out.whiteouts += 1;
                        let id = self.upper.node(p);
                        self.upper.note_opaque(id, index);
                    }
                    Change::AufsLink(_) | Change::AufsMeta => {}
                }
                let node = match &change {
                    Change::Put(p)
                    | Change::Whiteout(p)
                    | Change::Opaque(p)
                    | Change::AufsLink(p) => self.upper.node(p),
                    Change::AufsMeta => UPPER_ROOT,
                };
                records.push(Record::new(
                    &change,
                    node,
                    header.kind,
                    header.size,
                    header.meta,
                ));
                Ok(())
            },
        )?;
        self.records[index] = records;
        Ok(())
    }

    /// Writes a file that no layer above hides, at its path as named, if what is already on
    /// disk allows it: parents that are directories (or missing), and at the path nothing or
    /// an earlier entry of the same layer. Returns whether it was written.
    fn place(
        &mut self,
        id: UpperId,
        path: &RelPath,
        h: &Header,
        source: Source,
        body: Body<'_>,
    ) -> Result<bool> {
        if path.is_root() {
            return Ok(false);
        }
        self.disk.resize(self.upper.len(), Disk::Absent);
        let mut cur = id;
        while cur != UPPER_ROOT {
            cur = self.upper.parent(cur);
            if let Disk::File(_) = self.disk[cur as usize] {
                return Ok(false);
            }
        }
        let replace = match self.disk[id as usize] {
            Disk::Absent => false,
            Disk::File(s) if s.layer == source.layer => true,
            Disk::File(_) | Disk::Dir => return Ok(false),
        };
        self.target.write_at(path, &h.meta, h.size, body, replace)?;
        self.out.written += h.size;
        self.disk[id as usize] = Disk::File(source);
        let mut cur = id;
        while cur != UPPER_ROOT {
            cur = self.upper.parent(cur);
            self.disk[cur as usize] = Disk::Dir;
        }
        Ok(true)
    }
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
struct Writer<'a, 'r> {
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
    fn new(
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

    /// The staging directory, made when first needed.
    fn staging(&mut self) -> Result<BorrowedFd<'_>> {
        if self.staging.is_none() {
            let name = self.staging_name.clone();
            self.target.mkdir(self.root.as_fd(), &name, &name)?;
            self.staging = Some(self.target.open_dir(self.root.as_fd(), &name, &name)?);
        }
        Ok(self.staging.as_ref().expect("just made").as_fd())
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
    fn reconcile(&mut self) -> Result<u64> {
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
                    let home = match in_plan.map(|c| self.plan.kind(c)) {
                        Some(NodeKind::Leaf { inode })
                            if self.plan.inode(*inode).origin == Origin::Entry(s) =>
                        {
                            Some(*inode)
                        }
                        _ => None,
                    };
                    if let Some(inode) = home {
                        let keep = (self.links[inode as usize] > 1).then(|| phys.clone());
                        self.state[inode as usize] = State::Placed(keep);
                        continue;
                    }
                    let at = self.target.dir(&path)?;
                    match live.get(&s) {
                        Some(&inode) if self.state[inode as usize] == State::Unplaced => {
                            let staged = Self::staged_name(inode);
                            self.staging()?;
                            let staging = self.staging.as_ref().expect("made").as_fd();
                            self.target
                                .rename(at.fd(), &name, staging, &staged, &phys)?;
                            self.state[inode as usize] = State::Staged;
                            moved += 1;
                        }
                        _ => self.target.unlink(at.fd(), &name, &phys)?,
                    }
                    self.disk[cu as usize] = Disk::Absent;
                }
            }
        }
        Ok(moved)
    }

    /// Reads again, into staging, the content of surviving files that step 1 skipped.
    /// Returns how many layers were read again.
    fn fetch_missing(&mut self, layers: &dyn Layers, verify: bool) -> Result<usize> {
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
            self.staging()?;
            let staging = self.staging.as_ref().expect("made").as_fd();
            let mut decoded = Decoded::hashing(layers.open(index)?, &expected, verify)
                .map_err(|e| e.in_layer(&lref))?;
            let target = &mut *self.target;
            let state = &mut self.state;
            let mut archive = tar::Archive::new(decoded.reader());
            for_each_entry(archive.entries(), false, &mut |number, _, body, _| {
                if let Some(&inode) = wanted.get(&number) {
                    let r = self.plan.record(Source {
                        layer,
                        entry: number,
                    });
                    let name = Self::staged_name(inode);
                    target.write_new(
                        staging.as_fd(),
                        &name,
                        &name,
                        &r.meta,
                        r.size,
                        Body::Stream(body),
                    )?;
                    state[inode as usize] = State::Staged;
                }
                Ok(())
            })
            .map_err(|e| e.in_layer(&lref))?;
            let measured = decoded.finish().map_err(|e| e.in_layer(&lref))?;
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
    fn write_tree(&mut self) -> Result<()> {
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
            let Some((name, id)) = top.todo.pop() else {
                let done = stack.pop().expect("not empty");
                if done.dir != ROOT {
                    let NodeKind::Dir { origin, .. } = plan.kind(done.dir) else {
                        unreachable!("frames are directories")
                    };
                    let meta = plan.origin_meta(*origin);
                    self.target.dir_mode_times(done.fd.as_fd(), &path, &meta)?;
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
                NodeKind::Leaf { inode } => {
                    let inode = *inode;
                    let origin = plan.inode(inode).origin;
                    let multi = self.links[inode as usize] > 1;
                    let keep = |p: &[u8]| multi.then(|| p.to_vec());
                    match &self.state[inode as usize] {
                        State::Skipped => {}
                        State::Placed(home) => {
                            let at_home = matches!((origin, here), (Origin::Entry(s), Disk::File(d)) if s == d);
                            if !at_home {
                                let home = home.clone().ok_or_else(|| {
                                    Error::new(
                                        ErrorKind::Io,
                                        format!("{} has no first name", show(&phys)),
                                    )
                                })?;
                                self.target.link(&home, at, &name, &phys)?;
                            }
                        }
                        State::Staged => {
                            let staging = self.staging.as_ref().expect("staged files").as_fd();
                            let staged = Self::staged_name(inode);
                            self.target.rename(staging, &staged, at, &name, &phys)?;
                            self.state[inode as usize] = State::Placed(keep(&phys));
                        }
                        State::Unplaced => {
                            let kind = plan.origin_kind(origin);
                            let meta = plan.origin_meta(origin);
                            let made = self.target.make_leaf(at, &name, &phys, &kind, &meta)?;
                            self.state[inode as usize] = if made {
                                State::Placed(keep(&phys))
                            } else {
                                State::Skipped
                            };
                        }
                    }
                }
            }
        }
        if self.staging.take().is_some() {
            let name = self.staging_name.clone();
            self.target.rmdir(self.root.as_fd(), &name, &name)?;
        }
        if let Some(meta) = &root_meta {
            self.target.dir_mode_times(self.root.as_fd(), b"", meta)?;
        }
        Ok(())
    }
}

/// Drops the last component of a physical path.
fn pop_name(path: &mut Vec<u8>) {
    let cut = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
    path.truncate(cut);
}

struct Progress<'a> {
    inner: Box<dyn Read + Send + 'a>,
    observer: &'a mut dyn Observer,
}

impl Read for Progress<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observer.advance(n as u64);
        Ok(n)
    }
}
