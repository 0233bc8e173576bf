//! What an image is, without writing it: names, run configuration, and each layer read to the
//! end (digests checked, entries and whiteouts counted), with the build history lined up with
//! the layers as `docker history` shows it.

use serde::Serialize;

use crate::error::Result;
use crate::image::config::RunConfig;
use crate::image::Image;
use crate::layer::read::{read_layer, Reading};
use crate::merge::{classify, Change};

/// Everything `flatten inspect` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The names the archive gives the image (tags, references).
    pub names: Vec<String>,
    /// `docker-archive` or `oci`.
    pub format: &'static str,
    /// The manifest's digest, where there is one.
    pub manifest_digest: Option<String>,
    /// The configuration's digest (the image ID).
    pub config_digest: String,
    /// The configuration's `os`.
    pub os: Option<String>,
    /// The configuration's `architecture`.
    pub architecture: Option<String>,
    /// The configuration's `variant`.
    pub variant: Option<String>,
    /// When the image was made, as the configuration says.
    pub created: Option<String>,
    /// How a container of it runs.
    pub config: RunConfig,
    /// Every layer, bottom first.
    pub layers: Vec<LayerInfo>,
    /// The build steps, lined up with the layers they made.
    pub history: Vec<Step>,
}

/// One layer, as read.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Its number, from 1 at the bottom (the manifest's order; see [`crate::error::LayerRef`]).
    pub number: usize,
    /// Where the image keeps it.
    pub path: String,
    /// The media type the manifest gives (not trusted: compression is sniffed).
    pub media_type: Option<String>,
    /// The blob's digest, as computed.
    pub digest: String,
    /// The uncompressed tar's digest, as computed.
    pub diff_id: String,
    /// `Some(true)` when every digest the image names for this layer matched, `Some(false)`
    /// when one did not (see `problem`), `None` when the image names none.
    pub verified: Option<bool>,
    /// What did not verify, if anything.
    pub problem: Option<String>,
    /// `none`, `gzip` or `zstd`, as sniffed.
    pub compression: &'static str,
    /// Bytes of the stored blob.
    pub compressed_size: u64,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// Tar entries (extended headers not counted).
    pub entries: u64,
    /// Whiteout and opaque markers among them.
    pub whiteouts: u64,
}

/// One build step and the layer it made, if any.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// When the step ran.
    pub created: Option<String>,
    /// The instruction (`RUN ...`).
    pub created_by: Option<String>,
    /// The step's comment.
    pub comment: Option<String>,
    /// The number of the layer this step made (1 at the bottom); `None` for steps that
    /// made none.
    pub layer: Option<usize>,
}

/// Reads every layer of `image` to describe it, through the same reader as every command.
/// Stops when `cancel` is cancelled.
///
/// ```
/// use flatten::{inspect, Cancel, Image, Input, Options};
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/example/hello.tar");
/// let options = Options::default();
/// let (input, _) = Input::parse(path)?;
/// let image = Image::open(&input, &options.selector, options.verify)?;
/// let report = inspect(&image, &Cancel::new())?;
/// assert!(report.layers.iter().all(|l| l.verified != Some(false)));
/// # Ok::<(), flatten::Error>(())
/// ```
pub fn inspect(image: &Image, cancel: &crate::Cancel) -> Result<Inspection> {
    let mut layers = Vec::with_capacity(image.layers.len());
    for (index, l) in image.layers.iter().enumerate() {
        let how = Reading {
            verify: true,
            export_rules: false,
            cancel: cancel.clone(),
        };
        let (mut entries, mut whiteouts) = (0u64, 0u64);
        let m = read_layer(image, index, &how, &mut (), &mut |item| {
            entries += 1;
            if matches!(
                classify(&item.header.name)?,
                Change::Whiteout(_) | Change::Opaque(_)
            ) {
                whiteouts += 1;
            }
            Ok(())
        })?;
        let e = &l.expected;
        let named =
            e.blob.is_some() || e.named.is_some() || e.diff_id.is_some() || e.size.is_some();
        let problem = m.verify(e).err().map(|e| e.message().to_owned());
        layers.push(LayerInfo {
            number: index + 1,
            path: l.path.clone(),
            media_type: l.media_type.clone(),
            digest: m.blob.to_string(),
            diff_id: m.diff_id.to_string(),
            verified: named.then_some(problem.is_none()),
            problem,
            compression: m.compression.name(),
            compressed_size: m.blob_size,
            size: m.size,
            entries,
            whiteouts,
        });
    }
    let mut next = 0;
    let history = image
        .config
        .history
        .iter()
        .map(|h| {
            let layer = (!h.empty_layer && next < layers.len()).then(|| {
                next += 1;
                next
            });
            Step {
                created: h.created.clone(),
                created_by: h.created_by.clone(),
                comment: h.comment.clone(),
                layer,
            }
        })
        .collect();
    let c = &image.config;
    Ok(Inspection {
        names: image.names.clone(),
        format: match image.layout {
            crate::image::Layout::Docker => "docker-archive",
            crate::image::Layout::Oci => "oci",
            crate::image::Layout::Registry => "registry",
        },
        manifest_digest: image.manifest_digest.as_ref().map(ToString::to_string),
        config_digest: image.config_digest.to_string(),
        os: c.os.clone(),
        architecture: c.architecture.clone(),
        variant: c.variant.clone(),
        created: c.created.clone(),
        config: c.config.clone().unwrap_or_default(),
        layers,
        history,
    })
}
