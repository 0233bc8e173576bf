//! The applier: reads each layer's entries in tar order and turns them, through the rules in
//! [`crate::merge`], into writes and removals on the [`Target`].

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, ErrorKind, LayerRef, Result};
use crate::fs::{Strategy, Target, Unreproduced};
use crate::layer::entry::{read_header, Kind, Parsed};
use crate::layer::{Decoded, Expected, Measured};
use crate::merge::{classify, Change, RelPath, AUFS_PLNK_DIR};

/// Set from a signal handler to stop between entries.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Counts of one layer's work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    pub whiteouts: u64,
}

/// Applies layers, bottom first, into one directory.
pub struct Applier {
    target: Target,
}

impl Applier {
    /// Starts writing into `dir`, an existing empty directory.
    pub fn new(dir: &Path, strategy: Strategy) -> Result<Applier> {
        Ok(Applier {
            target: Target::open(dir, strategy)?,
        })
    }

    /// Applies one layer blob (plain, gzip or zstd) and checks it against `expected` when
    /// `verify` is set. Errors carry the layer and the entry.
    pub fn apply_layer(
        &mut self,
        layer: &LayerRef,
        blob: Box<dyn Read + Send + '_>,
        expected: &Expected,
        verify: bool,
    ) -> Result<(Measured, LayerStats)> {
        let mut decoded = Decoded::new(blob, expected).map_err(|e| e.in_layer(layer))?;
        let stats = self
            .entries(decoded.reader())
            .map_err(|e| e.in_layer(layer))?;
        let measured = decoded.finish().map_err(|e| e.in_layer(layer))?;
        if verify {
            measured.verify(expected).map_err(|e| e.in_layer(layer))?;
        }
        Ok((measured, stats))
    }

    /// Applies an uncompressed layer tar stream.
    pub fn entries(&mut self, tar: &mut dyn Read) -> Result<LayerStats> {
        self.target.begin_layer();
        let mut stats = LayerStats::default();
        let mut aufs_links = false;
        let mut archive = tar::Archive::new(tar);
        let entries = archive.entries().map_err(|e| {
            Error::io("cannot read the layer as tar", e).with_kind(ErrorKind::Input)
        })?;
        let mut last: Vec<u8> = Vec::new();
        for entry in entries {
            if INTERRUPTED.load(Ordering::Relaxed) {
                return Err(Error::new(ErrorKind::Interrupted, "interrupted"));
            }
            let mut entry = entry.map_err(|e| {
                let after = if last.is_empty() {
                    "at its start".to_owned()
                } else {
                    format!("after entry {}", crate::fs::resolve::show(&last))
                };
                Error::io(format!("corrupt tar {after}"), e).with_kind(ErrorKind::Input)
            })?;
            let name = entry.path_bytes().into_owned();
            last.clone_from(&name);
            let at = |e: Error| e.at_entry(&name);
            let header = match read_header(&mut entry).map_err(at)? {
                Parsed::Entry(h) => h,
                Parsed::Skip => continue,
            };
            stats.entries += 1;
            match classify(&header.name).map_err(at)? {
                Change::Put(path) => self.target.put(&path, &header, &mut entry).map_err(at)?,
                Change::Whiteout(path) => {
                    stats.whiteouts += 1;
                    self.target.whiteout(&path).map_err(at)?;
                }
                Change::Opaque(path) => {
                    stats.whiteouts += 1;
                    self.target.opaque(&path).map_err(at)?;
                }
                Change::AufsLink(path) => {
                    // Kept out of sight under its own (never output) name until the layer
                    // ends, so that hardlinks into it resolve.
                    if header.kind == Kind::File {
                        self.target.put(&path, &header, &mut entry).map_err(at)?;
                        aufs_links = true;
                    }
                }
                Change::AufsMeta => {}
            }
        }
        if aufs_links {
            self.target.remove(&RelPath::root().join(AUFS_PLNK_DIR))?;
        }
        Ok(stats)
    }

    /// Gives directories their final modes and times; returns what could not be reproduced.
    pub fn finish(self) -> Result<Unreproduced> {
        self.target.finish()
    }
}
