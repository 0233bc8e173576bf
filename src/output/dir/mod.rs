//! The directory output: the merged tree written once, each file from the one layer entry
//! whose content survives. Reading (step 1) wrote the surviving files and symlinks where
//! their names put them; then:
//!
//! 3. **Reconcile.** What step 1 wrote is checked against the plan: files at their final path
//!    stay; a file needed elsewhere (the path guess of step 1 was wrong, as when a lower layer
//!    turns a directory into a symlink) waits in a staging directory; anything else is removed.
//!    A surviving file whose content step 1 skipped (a hardlink kept it alive) is read again
//!    from its layer into staging. For real images these lists are empty.
//! 4. **Write the rest**, depth first from the plan: directories, the symlinks step 1 could
//!    not place, devices, fifos, hardlinks and staged files, each directory's mode and times
//!    after its contents.
//!
//! Modules: `write` (steps 3 and 4); everything on disk goes through `crate::fs`.

mod write;

use std::path::Path;
use std::sync::Arc;

use crate::error::{LayerRef, Result};
use crate::fs::Target;
use crate::fs::{Strategy, Unreproduced};
use crate::layer::read::Body;
#[cfg(feature = "testing")]
pub use crate::layer::InMemory;
pub use crate::layer::Layers;
use crate::merge::plan::Source;
use crate::merge::upper::{Upper, UpperId, UPPER_ROOT};
use crate::read::Counts;
use crate::read::{plan, read_layers, Gathered, Keep};
use crate::tar::Header;
use crate::vocabulary::path::RelPath;
use crate::Observer;
use write::Writer;

/// How to write a directory.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Check each layer against the digests the image gives.
    pub verify: bool,
    /// How paths are resolved in the target (the walk exists for tests).
    pub strategy: Strategy,
    /// Keep only what `docker export` keeps and add what `docker create` adds, with this
    /// WORKDIR (see `docs/commands.md`).
    pub docker_export: Option<Option<String>>,
    /// Stops the run between entries and chunks when cancelled.
    pub cancel: crate::Cancel,
}

impl Settings {
    fn reading(&self) -> crate::read::Settings {
        crate::read::Settings {
            verify: self.verify,
            docker_export: self.docker_export.clone(),
            cancel: self.cancel.clone(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Tar entries read, from all layers.
    pub entries: u64,
    /// Whiteout and opaque markers among them.
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
    /// What an unprivileged run could not reproduce.
    pub unreproduced: Unreproduced,
}

/// Applies `layers` into `dir`, an existing empty directory. On error the directory holds
/// whatever was written up to then.
pub fn apply(
    layers: &dyn Layers,
    dir: &Path,
    settings: &Settings,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let target = Target::open(dir, settings.strategy, settings.cancel.clone())?;
    let placer = Placer {
        target,
        disk: vec![Disk::Absent],
        layers: (0..layers.count())
            .map(|i| Arc::new(layers.layer_ref(i)))
            .collect(),
    };
    let Gathered {
        keep: Placer {
            mut target,
            mut disk,
            ..
        },
        upper,
        records,
        out,
    } = read_layers(layers, &settings.reading(), observer, placer)?;
    let Counts {
        entries,
        whiteouts,
        bytes,
        written,
        skipped,
    } = out;
    let mut out = Outcome {
        entries,
        whiteouts,
        bytes,
        written,
        skipped,
        ..Outcome::default()
    };
    target.settled()?;
    let mut plan = plan(layers, &records, &upper)?;
    if let Some(workdir) = &settings.docker_export {
        plan.add_docker_init(workdir.as_deref())?;
    }
    let mut w = Writer::new(&mut target, &plan, &upper, &mut disk)?;
    out.moved = w.reconcile()?;
    out.reread = w.fetch_missing(layers, settings.verify)?;
    w.write_tree()?;
    out.unreproduced = target.finish()?;
    Ok(out)
}

/// What step 1 left at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disk {
    Absent,
    Dir,
    /// A file or a symlink, made from this entry.
    File(Source),
}

/// Keeps a surviving file (or symlink) by making it at its path as named, if what is already on disk
/// allows it: parents that are directories (or missing), and at the path nothing or an
/// earlier entry of the same layer. Where not, the file waits for reconciling.
struct Placer {
    target: Target,
    /// What is on disk at each node of the upper tree.
    disk: Vec<Disk>,
    /// Each layer, for the errors of files made later.
    layers: Vec<Arc<LayerRef>>,
}

impl Placer {
    /// Whether node `id` can be written now by `source`: its parents are directories (or
    /// missing) and nothing is at it but an earlier entry of the same layer (then
    /// `Some(true)`: that one is replaced).
    fn room(&mut self, upper: &Upper, id: UpperId, source: Source) -> Option<bool> {
        self.disk.resize(upper.len(), Disk::Absent);
        let mut cur = id;
        while cur != UPPER_ROOT {
            cur = upper.parent(cur);
            if let Disk::File(_) = self.disk[cur as usize] {
                return None;
            }
        }
        match self.disk[id as usize] {
            Disk::Absent => Some(false),
            Disk::File(s) if s.layer == source.layer => Some(true),
            Disk::File(_) | Disk::Dir => None,
        }
    }

    /// Notes that `source` is now at node `id`, and directories above it.
    fn placed(&mut self, upper: &Upper, id: UpperId, source: Source) {
        self.disk[id as usize] = Disk::File(source);
        let mut cur = id;
        while cur != UPPER_ROOT {
            cur = upper.parent(cur);
            self.disk[cur as usize] = Disk::Dir;
        }
    }

    /// Makes node `id` (named `path`) from `source` with `make`, where [`Placer::room`]
    /// allows it; whether it did.
    fn place(
        &mut self,
        upper: &Upper,
        id: UpperId,
        path: &RelPath,
        source: Source,
        make: impl FnOnce(&mut Target, bool, Option<&Arc<LayerRef>>) -> Result<()>,
    ) -> Result<bool> {
        if path.is_root() {
            return Ok(false);
        }
        let Some(replace) = self.room(upper, id, source) else {
            return Ok(false);
        };
        make(
            &mut self.target,
            replace,
            self.layers.get(source.layer as usize),
        )?;
        self.placed(upper, id, source);
        Ok(true)
    }
}

impl Keep for Placer {
    fn keep(
        &mut self,
        upper: &Upper,
        id: UpperId,
        path: &RelPath,
        h: &Header,
        source: Source,
        body: Body<'_>,
    ) -> Result<bool> {
        self.place(upper, id, path, source, |target, replace, layer| {
            target.write_at(path, &h.meta, h.size, body, replace, layer)
        })
    }

    /// A symlink is made where a file would be written; step 3 keeps it if the plan has
    /// it there, like a file.
    fn keep_symlink(
        &mut self,
        upper: &Upper,
        id: UpperId,
        path: &RelPath,
        h: &Header,
        to: &[u8],
        source: Source,
    ) -> Result<bool> {
        self.place(upper, id, path, source, |target, replace, layer| {
            target.symlink_at(path, to, &h.meta, replace, layer)
        })
    }
}
