//! Read once: every output starts here. The layers are read top layer first through the
//! one reader of layers ([`crate::layer::read`]); each entry's header is kept as a
//! [`Record`], and a file's content is kept (`Keep`: written at its path, spooled, or not
//! at all) unless a layer above (already read) deletes or replaces it ([`Upper`]). Then
//! the rules run bottom-up over the records alone ([`Plan`]), giving the final tree and,
//! for each file, the entry its content comes from. The outputs ([`crate::output`]) take
//! it from there.
//!
//! Modules: `top_down` (the reading and the keeping); the plan is [`crate::merge::plan`].

mod top_down;

use crate::error::Result;
use crate::fs::{Strategy, Unreproduced};
use crate::layer::Layers;
use crate::merge::plan::{Plan, Record, Source};
use crate::merge::upper::Upper;
use crate::Observer;
use top_down::Reader;
pub(crate) use top_down::{Keep, Spool};

/// How to read (and, for a directory, write).
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
