//! Finding the image: which form the input has, which image in it the user means, and the
//! ordered list of its layers with the digests each must have.

pub mod config;
pub mod daemon;
pub mod docker;
pub mod input;
pub mod oci;
pub mod platform;
pub mod reference;
#[cfg(feature = "registry")]
pub mod registry;
pub mod store;

use std::io::Read;

pub use config::ImageConfig;
pub use input::{Input, Layout};
pub use platform::Platform;
use store::Store;

use crate::digest::{sha256_of, Digest};
use crate::error::{Error, LayerRef, Result};
use crate::layer::Expected;

/// Manifests, indexes and configs larger than this are refused rather than read.
pub const JSON_LIMIT: u64 = 32 << 20;

/// More layers than this is not an image anyone built (Docker stops at 127, containers
/// storage at 500), but a manifest made to exhaust us.
pub const MAX_LAYERS: usize = 1000;

/// Which image to take from an input that holds several.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// A tag (`RepoTags`, `io.containerd.image.name`, `org.opencontainers.image.ref.name`), a
    /// manifest or config digest, or `@N` for the N-th image (from 0).
    pub image: Option<String>,
    /// The platform; `None` means the host's, and then a single-platform image is taken
    /// whatever its platform.
    pub platform: Option<Platform>,
}

/// One image found in the input, before it is chosen.
pub struct Candidate {
    pub names: Vec<String>,
    pub digests: Vec<Digest>,
    choice: Target,
}

enum Target {
    Docker(docker::Entry),
    Oci(Vec<oci::Descriptor>),
}

/// An image's manifest resolved down to its layers.
pub struct Resolved {
    /// The image configuration (platform, run configuration, history, `diff_ids`).
    pub config: ImageConfig,
    /// The digest of the configuration blob (the image ID).
    pub config_digest: Digest,
    /// The digest of the manifest, where the layout has one.
    pub manifest_digest: Option<Digest>,
    /// The platform the index or manifest names, if any.
    pub platform: Option<Platform>,
    /// The layers, bottom first, with the digests each must have.
    pub layers: Vec<ResolvedLayer>,
}

/// Where a layer is and what it must hash to.
#[derive(Debug, Clone)]
pub struct ResolvedLayer {
    /// Path of the blob inside the archive or layout directory.
    pub path: String,
    pub media_type: Option<String>,
    pub expected: Expected,
}

/// An opened, chosen image.
pub struct Image {
    store: Box<dyn Store>,
    /// The layout it was read from: a `manifest.json` archive or an OCI layout.
    pub layout: Layout,
    /// The names the chosen image goes by.
    pub names: Vec<String>,
    /// The image configuration (platform, run configuration, history, `diff_ids`).
    pub config: ImageConfig,
    /// The digest of the configuration blob (the image ID).
    pub config_digest: Digest,
    /// The digest of the manifest, where the layout has one.
    pub manifest_digest: Option<Digest>,
    /// The platform the index or manifest names, if any.
    pub platform: Option<Platform>,
    /// The layers, bottom first, with the digests each must have.
    pub layers: Vec<ResolvedLayer>,
}

impl Image {
    /// Opens `input` and picks the image `selector` names. With `verify`, every digest the
    /// format names is checked (manifests and configs now, layers as they are read).
    pub fn open(input: &Input, selector: &Selector, verify: bool) -> Result<Image> {
        Self::open_observed(input, selector, verify, &mut (), &crate::Cancel::new())
    }

    /// Like [`Image::open`], telling `observer` how the copying of an archive that must be
    /// had whole (standard input, a pipe, a compressed archive) goes, and stopping it when
    /// `cancel` says.
    pub fn open_observed(
        input: &Input,
        selector: &Selector,
        verify: bool,
        observer: &mut dyn crate::Observer,
        cancel: &crate::Cancel,
    ) -> Result<Image> {
        let (store, layout) = input.open_observed(observer, cancel)?;
        let candidates = match layout {
            Layout::Docker => docker::candidates(&*store)?,
            Layout::Oci | Layout::Registry => oci::candidates(&*store)?,
        };
        let (names, choice) = choose(candidates, selector.image.as_deref(), &store.describe())?;
        let resolved = match &choice {
            Target::Docker(entry) => docker::resolve(&*store, entry, verify)?,
            Target::Oci(descs) => {
                let want = selector.platform.clone().unwrap_or_else(Platform::host);
                oci::resolve(&*store, descs, &want, selector.platform.is_some(), verify)?
            }
        };
        if resolved.layers.len() > MAX_LAYERS {
            return Err(Error::input(format!(
                "the image has {} layers; flatten reads at most {MAX_LAYERS}",
                resolved.layers.len()
            )));
        }
        // Read top layer first: a store that fetches starts with those.
        let ahead: Vec<(String, Option<u64>)> = resolved
            .layers
            .iter()
            .rev()
            .map(|l| (l.path.clone(), l.expected.size))
            .collect();
        store.fetch_ahead(&ahead, observer)?;
        Ok(Image {
            store,
            layout,
            names,
            config: resolved.config,
            config_digest: resolved.config_digest,
            manifest_digest: resolved.manifest_digest,
            platform: resolved.platform,
            layers: resolved.layers,
        })
    }

    /// Opens the raw (possibly compressed) blob of layer `index`.
    pub fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send>> {
        let l = &self.layers[index];
        self.store
            .open(&l.path)
            .map_err(|e| e.in_layer(&self.layer_ref(index)))
    }

    /// Where the blob of layer `index` lies, if in one file here.
    pub fn layer_region(&self, index: usize) -> Result<Option<crate::layer::region::Region>> {
        let l = &self.layers[index];
        self.store
            .region(&l.path)
            .map_err(|e| e.in_layer(&self.layer_ref(index)))
    }

    /// The stored size of layer `index`, if known.
    pub fn layer_size(&self, index: usize) -> Option<u64> {
        let l = &self.layers[index];
        l.expected.size.or_else(|| self.store.size(&l.path))
    }

    /// How errors name layer `index`.
    pub fn layer_ref(&self, index: usize) -> LayerRef {
        let l = &self.layers[index];
        let digest = l
            .expected
            .blob
            .as_ref()
            .or(l.expected.diff_id.as_ref())
            .or(l.expected.named.as_ref())
            .map(ToString::to_string)
            .or_else(|| Some(l.path.clone()));
        LayerRef {
            number: index + 1,
            digest,
        }
    }
}

fn choose(
    candidates: Vec<Candidate>,
    want: Option<&str>,
    source: &str,
) -> Result<(Vec<String>, Target)> {
    let listing = |cands: &[Candidate]| {
        cands
            .iter()
            .enumerate()
            .map(|(i, c)| match c.names.first() {
                Some(n) => format!("@{i} {n}"),
                None => format!(
                    "@{i} {}",
                    c.digests.first().map_or("(unnamed)".into(), |d| {
                        crate::error::short_digest(&d.to_string()).to_owned()
                    })
                ),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if candidates.is_empty() {
        return Err(Error::input(format!("{source} holds no image")));
    }
    let index = match want {
        None if candidates.len() == 1 => 0,
        None => {
            return Err(Error::usage(format!(
                "{source} holds {} images; choose one with --image: {}",
                candidates.len(),
                listing(&candidates)
            )))
        }
        Some(w) => {
            let by_position = w.strip_prefix('@').and_then(|n| n.parse::<usize>().ok());
            let hits: Vec<usize> = candidates
                .iter()
                .enumerate()
                .filter(|(i, c)| {
                    by_position == Some(*i)
                        || c.names.iter().any(|n| same_reference(n, w))
                        || c.digests.iter().any(|d| d.to_string() == w)
                })
                .map(|(i, _)| i)
                .collect();
            match hits.as_slice() {
                [i] => *i,
                [] => {
                    return Err(Error::usage(format!(
                        "{source} holds no image {w:?}; it holds: {}",
                        listing(&candidates)
                    )))
                }
                _ => {
                    return Err(Error::usage(format!(
                        "{w:?} names several images in {source}: {}",
                        listing(&candidates)
                    )))
                }
            }
        }
    };
    let c = candidates
        .into_iter()
        .nth(index)
        .ok_or_else(|| Error::input("no such image"))?;
    Ok((c.names, c.choice))
}

/// `busybox`, `busybox:latest`, `docker.io/library/busybox:latest` are one reference.
fn same_reference(a: &str, b: &str) -> bool {
    fn norm(r: &str) -> String {
        let mut s = r;
        for p in [
            "docker.io/library/",
            "index.docker.io/library/",
            "docker.io/",
            "index.docker.io/",
        ] {
            if let Some(rest) = s.strip_prefix(p) {
                s = rest;
                break;
            }
        }
        let last = s.rsplit('/').next().unwrap_or(s);
        if s.contains('@') || last.contains(':') {
            s.to_owned()
        } else {
            format!("{s}:latest")
        }
    }
    a == b || norm(a) == norm(b)
}

fn parse_config(raw: &[u8]) -> Result<(ImageConfig, Digest)> {
    let config: ImageConfig = serde_json::from_slice(raw)
        .map_err(|e| Error::caused(crate::ErrorKind::Input, "image config is malformed", e))?;
    Ok((config, sha256_of(raw)))
}

/// The config's diff_ids, one per layer.
fn diff_ids(config: &ImageConfig, layers: usize) -> Result<Vec<Option<Digest>>> {
    let ids = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.as_slice())
        .unwrap_or_default();
    if ids.len() != layers {
        return Err(Error::input(format!(
            "the manifest lists {layers} layers but the config has {} diff_ids",
            ids.len()
        )));
    }
    ids.iter().map(|s| Digest::parse(s).map(Some)).collect()
}

impl crate::layer::Layers for Image {
    fn count(&self) -> usize {
        self.layers.len()
    }
    fn open(&self, index: usize) -> Result<Box<dyn std::io::Read + Send + '_>> {
        self.open_layer(index)
    }
    fn layer_ref(&self, index: usize) -> crate::error::LayerRef {
        Image::layer_ref(self, index)
    }
    fn expected(&self, index: usize) -> crate::layer::Expected {
        self.layers[index].expected.clone()
    }
    fn size(&self, index: usize) -> Option<u64> {
        self.layer_size(index)
    }
    fn region(&self, index: usize) -> Result<Option<crate::layer::region::Region>> {
        self.layer_region(index)
    }
    fn blob_checked(&self, index: usize) -> bool {
        self.store.checks_blobs() && self.layers[index].expected.blob.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::same_reference;

    #[test]
    fn references() {
        assert!(same_reference("busybox:latest", "busybox"));
        assert!(same_reference(
            "docker.io/library/busybox:latest",
            "busybox"
        ));
        assert!(same_reference("docker.io/me/app:1", "me/app:1"));
        assert!(!same_reference("busybox:1", "busybox"));
        assert!(same_reference("latest", "latest"));
        assert!(!same_reference("localhost:5000/x", "x"));
    }
}
