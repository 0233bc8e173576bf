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
    /// Keep only what `docker export` keeps: whole-second times, `security.capability`.
    export_rules: bool,
}

impl Applier {
    /// Starts writing into `dir`, an existing empty directory.
    pub fn new(dir: &Path, strategy: Strategy) -> Result<Applier> {
        Ok(Applier {
            target: Target::open(dir, strategy)?,
            export_rules: false,
        })
    }

    /// From now on, keep of each entry only what `docker export` keeps: mtimes in whole
    /// seconds and no xattr but `security.capability`.
    pub fn export_rules(&mut self) {
        self.export_rules = true;
    }

    /// Adds what `docker create` adds to a container (see [`crate::merge::DOCKER_INIT_FILES`]
    /// and the rules in `docs/commands.md`), after the image's layers.
    pub fn add_docker_init(&mut self, workdir: Option<&str>) -> Result<()> {
        use crate::fs::Standing;
        use crate::layer::entry::{Header, Meta};
        use crate::merge::{DOCKER_INIT_DIRS, DOCKER_INIT_FILES, DOCKER_INIT_MTAB};
        self.target.begin_layer();
        let header = |name: &str, kind: Kind, mode: u32| Header {
            name: name.as_bytes().to_vec(),
            size: 0,
            kind,
            meta: Meta {
                mode,
                ..Meta::default()
            },
        };
        let path = |p: &str| RelPath::parse(p.as_bytes());
        for f in DOCKER_INIT_FILES {
            if self.target.standing(&path(f)?)? != Standing::Dir {
                self.target.put(
                    &path(f)?,
                    &header(f, Kind::File, 0o755),
                    &mut std::io::empty(),
                )?;
            }
        }
        let (mtab, mounts) = DOCKER_INIT_MTAB;
        if self.target.standing(&path(mtab)?)? != Standing::Dir {
            let h = header(mtab, Kind::Symlink(mounts.as_bytes().to_vec()), 0o777);
            self.target.put(&path(mtab)?, &h, &mut std::io::empty())?;
        }
        for d in DOCKER_INIT_DIRS {
            if self.target.standing(&path(d)?)? != Standing::Dir {
                self.target.put(
                    &path(d)?,
                    &header(d, Kind::Dir, 0o755),
                    &mut std::io::empty(),
                )?;
            }
        }
        if let Some(w) = workdir.filter(|w| !w.trim_matches('/').is_empty()) {
            let p = RelPath::parse(w.as_bytes())
                .map_err(|e| Error::input(format!("WORKDIR {w:?}: {}", e.message())))?;
            self.target.make_dirs(&p)?;
        }
        Ok(())
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
            let mut header = match read_header(&mut entry).map_err(at)? {
                Parsed::Entry(h) => h,
                Parsed::Skip => continue,
            };
            if self.export_rules {
                header.meta.mtime.nanos = 0;
                header.meta.atime = None;
                header
                    .meta
                    .xattrs
                    .retain(|(k, _)| k == b"security.capability");
            }
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
