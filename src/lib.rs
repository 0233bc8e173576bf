//! `flatten` turns a saved container image into its root filesystem: the layers applied in
//! manifest order, bottom to top, whiteouts honoured, so that the result is the tree that
//! `docker export` of a container made from the image gives.
//!
//! The pipeline, one module per step, each importing only from the steps above it
//! (`docs/architecture.md` draws it):
//! - [`vocabulary`]: the words every step shares: paths inside the root, node kinds,
//!   errors, progress and cancellation;
//! - [`digest`] and [`tar`]: digests, and the one tar reader (every tar form real tools write);
//! - `layer`: one layer: its compression sniffed, decoded and hashed ahead on other threads,
//!   its entries walked (`layer::read`, the one reader of layers every command uses);
//! - `image`: recognise the input (docker-archive, OCI layout or archive, stdin), choose the
//!   image and platform, list its layers with the digests they must have;
//! - `merge`: the whiteout and replacement rules as pure code: names, the upper layers'
//!   marks, the plan of the final tree;
//! - `read`: read once: layers top-down into records and a plan, keeping the content that
//!   survives;
//! - [`output`]: a directory ([`output::dir`], through `fs`, which confines every write to
//!   the target), a tar stream ([`output::tar`]), a listing ([`output::list`]);
//! - [`mod@inspect`] and [`snapshot`]: describing an image, and comparing trees (`flatten diff`);
//! - `spec` (feature `testing`): an in-memory model of the rules that the tests hold the real
//!   applier to.
//!
//! The entry points: [`flatten()`] (a directory), [`write_tar`] (one tar stream), [`list`]
//! (the paths, as `ls` shows them) and [`inspect()`] (names, configuration, every layer read
//! and checked). Each reads the image once, through the same reader.
//!
//! ```
//! use flatten::{flatten, Input, Options};
//! # let image = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/example/hello.tar");
//! # let dir = tempfile::tempdir().unwrap();
//! # let rootfs = dir.path().join("rootfs");
//! let (input, _) = Input::parse(image)?;
//! let report = flatten(&input, &rootfs, &Options::default(), &mut ())?;
//! assert!(rootfs.join("hello.txt").exists());
//! println!("{} layers, {} entries", report.layers, report.entries);
//! # Ok::<(), flatten::Error>(())
//! ```

#![deny(missing_docs)]

pub mod digest;
mod fs;
mod image;
pub mod inspect;
mod layer;
mod merge;
pub mod output;
mod read;
pub mod snapshot;
#[cfg(feature = "testing")]
pub mod spec;
pub mod tar;
pub mod vocabulary;

pub use vocabulary::error;

pub use error::{Error, ErrorKind, LayerRef, Result};
pub use fs::{Strategy, Unreproduced};
pub use image::config::RunConfig;
pub use image::reference::Reference;
#[cfg(feature = "registry")]
pub use image::registry::{Access, Credentials};
pub use image::{Image, Input, Platform, Selector};
pub use inspect::inspect;
pub use layer::{Layers, INFLATER};
pub use merge::Listed;
pub use output::list::list;
pub use output::tar::write_tar;
pub use vocabulary::progress::{Cancel, Download, Observer};

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use error::IoContext;

/// How to flatten. Start from [`Options::default`] and set what differs: fields may be
/// added.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Which image and platform.
    pub selector: Selector,
    /// Check every digest the image names (on by default).
    pub verify: bool,
    /// How paths are resolved in the target (the walk exists for tests).
    pub strategy: Strategy,
    /// Add what `docker create` adds and keep only what `docker export` keeps, so the tree is
    /// that of `docker export` of a new container made from the image.
    pub docker_export: bool,
    /// Stops the run when cancelled (from a signal handler, another thread).
    pub cancel: Cancel,
}

impl Options {
    /// These options, choosing the image and platform by `selector`.
    pub fn selector(mut self, selector: Selector) -> Self {
        self.selector = selector;
        self
    }

    /// These options, checking digests or not.
    pub fn verify(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            selector: Selector::default(),
            verify: true,
            strategy: Strategy::Auto,
            docker_export: false,
            cancel: Cancel::new(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// Layers applied.
    pub layers: usize,
    /// Tar entries read, from all layers.
    pub entries: u64,
    /// Uncompressed bytes read from all layers.
    pub bytes: u64,
    /// File content written: each surviving file's bytes, once.
    pub written: u64,
    /// File content that upper layers delete or replace, read past without writing it.
    pub skipped: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// What an unprivileged run could not reproduce.
    pub unreproduced: Unreproduced,
}

/// Flattens the image `input` (as chosen by `options.selector`) into `target`, which must be
/// missing or an empty directory.
pub fn flatten(
    input: &Input,
    target: &Path,
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<Report> {
    let image = Image::open(input, &options.selector, options.verify)?;
    prepare_target(target)?;
    flatten_image(&image, target, options, observer)
}

/// Applies the layers of an opened image into `target`, an existing empty directory. On error
/// the target holds whatever was written up to then.
pub fn flatten_image(
    image: &Image,
    target: &Path,
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<Report> {
    let start = Instant::now();
    let workdir = || {
        image
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
    };
    let settings = output::dir::Settings {
        verify: options.verify,
        strategy: options.strategy,
        docker_export: options.docker_export.then(workdir),
        cancel: options.cancel.clone(),
    };
    let outcome = output::dir::apply(image, target, &settings, observer)?;
    Ok(Report {
        layers: image.layers.len(),
        entries: outcome.entries,
        bytes: outcome.bytes,
        written: outcome.written,
        skipped: outcome.skipped,
        elapsed: start.elapsed(),
        unreproduced: outcome.unreproduced,
    })
}

/// The target must be missing (it is created) or an empty directory: nothing a user had is
/// ever overwritten or deleted.
pub fn prepare_target(target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir(target).ctx(|| format!("cannot create target {}", target.display()))
        }
        Err(e) => Err(Error::io(
            format!("cannot use target {}", target.display()),
            e,
        )),
        Ok(_) => {
            let meta = std::fs::metadata(target)
                .ctx(|| format!("cannot use target {}", target.display()))?;
            if !meta.is_dir() {
                return Err(Error::new(
                    ErrorKind::Target,
                    format!("target {} exists and is not a directory", target.display()),
                ));
            }
            let mut entries = std::fs::read_dir(target)
                .ctx(|| format!("cannot read target {}", target.display()))?;
            if entries.next().is_some() {
                return Err(Error::new(
                    ErrorKind::Target,
                    format!(
                        "target {} is not empty; flatten writes only into a new or empty directory",
                        target.display()
                    ),
                ));
            }
            Ok(())
        }
    }
}
