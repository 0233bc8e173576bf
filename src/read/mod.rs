//! Read once: every output starts here. The layers are read top layer first through the
//! one reader of layers ([`crate::layer::read`]); each entry's header is kept as a
//! [`Record`], and a file's content is kept ([`Keep`]: written at its path, spooled, or not
//! at all) unless a layer above (already read) deletes or replaces it ([`Upper`]). Then
//! the rules run bottom-up over the records alone ([`Plan`]), giving the final tree and,
//! for each file, the entry its content comes from. The outputs ([`crate::output`]) take
//! it from there.
//!
//! Modules: `top_down` (the reading and the keeping); the plan is [`crate::merge::plan`].

mod top_down;

use crate::error::Result;
use crate::layer::Layers;
use crate::merge::plan::{Plan, Record};
use crate::merge::upper::Upper;
use crate::Observer;
pub use top_down::Keep;
use top_down::Reader;

/// How to read.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Check each layer against the digests the image gives.
    pub verify: bool,
    /// Keep only what `docker export` keeps and add what `docker create` adds, with this
    /// WORKDIR (see `docs/commands.md`).
    pub docker_export: Option<Option<String>>,
    /// Stops the run between entries and chunks when cancelled.
    pub cancel: crate::Cancel,
}

/// What the reading counted.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub entries: u64,
    pub whiteouts: u64,
    /// Uncompressed bytes read from all layers.
    pub bytes: u64,
    /// Content bytes kept (each surviving file once, unless a guess was wrong).
    pub written: u64,
    /// Content bytes of files that upper layers delete or replace, read past unkept.
    pub skipped: u64,
}

/// What step 1 gathered.
pub(crate) struct Gathered<K> {
    pub keep: K,
    pub upper: Upper,
    pub records: Vec<Vec<Record>>,
    pub out: Counts,
}

/// Step 1: reads every layer from the top, keeping (`keep`) the content that no layer above
/// deletes or replaces.
pub(crate) fn read_layers<K: Keep>(
    layers: &dyn Layers,
    settings: &Settings,
    observer: &mut dyn Observer,
    keep: K,
) -> Result<Gathered<K>> {
    let mut a = Reader {
        keep,
        cancel: settings.cancel.clone(),
        upper: Upper::new(),
        records: vec![Vec::new(); layers.count()],
        export_rules: settings.docker_export.is_some(),
        out: Counts::default(),
    };
    a.read_all(layers, settings.verify, observer)?;
    Ok(Gathered {
        keep: a.keep,
        upper: a.upper,
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
