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
//!
//! Modules: `read` (step 1, through [`crate::layer::read`], the one reader of layers),
//! `write` (steps 3 and 4); layers come from [`Layers`];
//! step 2 is [`crate::merge::plan`].

mod read;
mod write;

use std::path::Path;

use crate::error::Result;
use crate::fs::{Strategy, Target, Unreproduced};
pub use crate::layer::{InMemory, Layers};
use crate::merge::plan::{Plan, Record, Source};
use crate::merge::upper::Upper;
use crate::Observer;
use read::Reader;
pub(crate) use read::{Keep, Spool};
use write::Writer;

/// How to apply.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Check each layer against the digests the image gives.
    pub verify: bool,
    pub strategy: Strategy,
    /// Keep only what `docker export` keeps and add what `docker create` adds, with this
    /// WORKDIR (see `docs/commands.md`).
    pub docker_export: Option<Option<String>>,
    /// Stops the run between entries and chunks when cancelled.
    pub cancel: crate::Cancel,
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
pub(crate) enum Disk {
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
    let target = Target::open(dir, settings.strategy, settings.cancel.clone())?;
    let Gathered {
        keep,
        upper,
        mut disk,
        records,
        mut out,
    } = read_layers(layers, settings, observer, Keep::Target(target))?;
    let Keep::Target(mut target) = keep else {
        unreachable!("given a target")
    };
    let mut plan = plan(layers, &records, &upper)?;
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

/// What step 1 gathered.
pub(crate) struct Gathered {
    pub keep: Keep,
    pub upper: Upper,
    pub disk: Vec<Disk>,
    pub records: Vec<Vec<Record>>,
    pub out: Outcome,
}

/// Step 1: reads every layer from the top, keeping (`keep`) the content that no layer above
/// deletes or replaces.
pub(crate) fn read_layers(
    layers: &dyn Layers,
    settings: &Settings,
    observer: &mut dyn Observer,
    keep: Keep,
) -> Result<Gathered> {
    let mut a = Reader {
        keep,
        cancel: settings.cancel.clone(),
        upper: Upper::new(),
        disk: vec![Disk::Absent],
        records: vec![Vec::new(); layers.count()],
        export_rules: settings.docker_export.is_some(),
        out: Outcome::default(),
    };
    let count = layers.count();
    for index in (0..count).rev() {
        observer.layer_start(index, count, layers.size(index));
        let measured = a.read_layer(layers, index, settings.verify, observer)?;
        if settings.verify {
            measured
                .verify(&layers.expected(index))
                .map_err(|e| e.in_layer(&layers.layer_ref(index)))?;
        }
        a.out.bytes += measured.size;
        observer.layer_done(index);
    }
    Ok(Gathered {
        keep: a.keep,
        upper: a.upper,
        disk: a.disk,
        records: a.records,
        out: a.out,
    })
}

/// Step 2: the merged tree of what step 1 read; an error names its layer and entry.
pub(crate) fn plan<'r>(
    layers: &dyn Layers,
    records: &'r [Vec<Record>],
    upper: &'r Upper,
) -> Result<Plan<'r>> {
    Plan::build(records, upper).map_err(|(s, e)| {
        let node = records[s.layer as usize][s.entry as usize].node;
        e.at_entry(upper.path(node).display().as_bytes())
            .in_layer(&layers.layer_ref(s.layer as usize))
    })
}
