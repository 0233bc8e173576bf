//! OCI image layouts (`oci-layout`, `index.json`, `blobs/`), in a directory or an archive,
//! including nested indexes and multi-platform images.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::platform::Platform;
use super::{parse_config, Candidate, Resolved, ResolvedLayer, Target as Choice, JSON_LIMIT};
use crate::digest::{digest_of, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::image::store::Store;
use crate::layer::Expected;

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// How deep indexes may nest, and how many blobs one resolution may read.
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    fn is_attestation(&self) -> bool {
        self.annotation(REFERENCE_TYPE) == Some("attestation-manifest")
            || self.platform.as_ref().is_some_and(Platform::is_unknown)
    }

    fn names(&self) -> Vec<String> {
        [CONTAINERD_NAME, REF_NAME]
            .iter()
            .filter_map(|k| self.annotation(k).map(str::to_owned))
            .collect()
    }

    fn size(&self) -> Result<Option<u64>> {
        match self.size {
            None => Ok(None),
            Some(s) => u64::try_from(s).map(Some).map_err(|_| {
                Error::input(format!("descriptor {} has a negative size", self.digest))
            }),
        }
    }
}

/// An index or a manifest: which one is told by the fields present.
#[derive(Debug, Deserialize)]
struct AnyManifest {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

pub fn candidates(store: &dyn Store) -> Result<Vec<Candidate>> {
    let raw = store.read_small("index.json", JSON_LIMIT)?;
    let index: AnyManifest = serde_json::from_slice(&raw)
        .map_err(|e| Error::caused(ErrorKind::Input, "index.json is malformed", e))?;
    let descs: Vec<Descriptor> = index
        .manifests
        .ok_or_else(|| Error::input("index.json has no manifests"))?
        .into_iter()
        .filter(|d| !d.is_attestation())
        .collect();
    let mut out = Vec::new();
    let mut nameless = Vec::new();
    for d in descs {
        let names = d.names();
        if names.is_empty() {
            nameless.push(d);
        } else {
            out.push(candidate(names, vec![d]));
        }
    }
    // Unnamed manifests that each name a platform are the platforms of one image.
    if !nameless.is_empty() && nameless.iter().all(|d| d.platform.is_some()) {
        out.push(candidate(Vec::new(), nameless));
    } else {
        out.extend(nameless.into_iter().map(|d| candidate(Vec::new(), vec![d])));
    }
    Ok(out)
}

fn candidate(names: Vec<String>, descs: Vec<Descriptor>) -> Candidate {
    Candidate {
        names,
        digests: descs
            .iter()
            .filter_map(|d| Digest::parse(&d.digest).ok())
            .collect(),
        choice: Choice::Oci(descs),
    }
}

/// Reads a blob named by a descriptor, checking its digest and size.
fn read_blob(store: &dyn Store, d: &Descriptor, verify: bool) -> Result<(Digest, Vec<u8>)> {
    let digest = Digest::parse(&d.digest)?;
    let size = d.size()?;
    // Said to be too large: refused before a byte is read (or fetched).
    if let Some(s) = size.filter(|s| *s > JSON_LIMIT) {
        return Err(Error::input(format!(
            "blob {digest} is {s} bytes; manifests and configs are read up to {JSON_LIMIT}"
        )));
    }
    let limit = size.unwrap_or(JSON_LIMIT);
    let raw = store.read_small(&digest.blob_path(), limit)?;
    if verify {
        if let Some(s) = size {
            if s != raw.len() as u64 {
                return Err(Error::new(
                    ErrorKind::Verification,
                    format!(
                        "blob {digest}: size mismatch: expected {s}, got {}",
                        raw.len()
                    ),
                ));
            }
        }
        let got = digest_of(digest.algorithm(), &raw);
        if got != digest {
            return Err(Error::new(
                ErrorKind::Verification,
                format!("blob {digest}: digest mismatch: got {got}"),
            ));
        }
    }
    Ok((digest, raw))
}

/// Picks the manifest for `want` among `descs`, descending through nested indexes.
pub fn resolve(
    store: &dyn Store,
    descs: &[Descriptor],
    want: &Platform,
    explicit: bool,
    verify: bool,
) -> Result<Resolved> {
    let mut seen = Vec::new();
    match pick(store, descs, want, explicit, verify, 0, &mut seen)? {
        Some(r) => Ok(r),
        None => {
            seen.sort();
            seen.dedup();
            // Choosing is the user's part: exit 2, like an unknown --image.
            Err(Error::usage(format!(
                "the image has no manifest for platform {want} (it has: {}); choose one with --platform",
                if seen.is_empty() { "none".to_owned() } else { seen.join(", ") }
            )))
        }
    }
}

fn pick(
    store: &dyn Store,
    descs: &[Descriptor],
    want: &Platform,
    explicit: bool,
    verify: bool,
    depth: usize,
    seen: &mut Vec<String>,
) -> Result<Option<Resolved>> {
    if depth > MAX_DEPTH {
        return Err(Error::input("image indexes nest too deeply"));
    }
    let usable: Vec<&Descriptor> = descs.iter().filter(|d| !d.is_attestation()).collect();
    let only_one = usable.len() == 1;
    for d in usable {
        if let Some(p) = &d.platform {
            seen.push(p.to_string());
            // A lone manifest is taken whatever its platform, unless one was asked for.
            let take_anyway = only_one && !explicit;
            if !take_anyway && !p.satisfies(want) {
                continue;
            }
        }
        let (digest, raw) = read_blob(store, d, verify)?;
        let m: AnyManifest = serde_json::from_slice(&raw).map_err(|e| {
            Error::caused(
                ErrorKind::Input,
                format!("manifest {digest} is malformed"),
                e,
            )
        })?;
        if let Some(children) = m.manifests {
            if let Some(r) = pick(store, &children, want, explicit, verify, depth + 1, seen)? {
                return Ok(Some(r));
            }
            continue;
        }
        let (Some(config), Some(layers)) = (m.config, m.layers) else {
            return Err(Error::input(format!(
                "{digest} is neither an image index nor an image manifest"
            )));
        };
        let resolved = manifest(store, digest, &config, &layers, d.platform.clone(), verify)?;
        if explicit && d.platform.is_none() {
            if let (Some(os), Some(arch)) = (&resolved.config.os, &resolved.config.architecture) {
                let has = Platform {
                    os: os.clone(),
                    architecture: arch.clone(),
                    variant: resolved.config.variant.clone(),
                };
                if !has.satisfies(want) {
                    seen.push(has.to_string());
                    continue;
                }
            }
        }
        return Ok(Some(resolved));
    }
    Ok(None)
}

fn manifest(
    store: &dyn Store,
    digest: Digest,
    config: &Descriptor,
    layers: &[Descriptor],
    platform: Option<Platform>,
    verify: bool,
) -> Result<Resolved> {
    let (_, raw) = read_blob(store, config, verify)?;
    let (config_parsed, config_digest) = parse_config(&raw)?;
    let diff_ids = super::diff_ids(&config_parsed, layers.len())?;
    let layers = layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            let blob = Digest::parse(&d.digest)?;
            Ok(ResolvedLayer {
                path: blob.blob_path(),
                media_type: d.media_type.clone(),
                expected: Expected {
                    blob: Some(blob),
                    named: None,
                    diff_id,
                    size: d.size()?,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Resolved {
        config: config_parsed,
        config_digest,
        manifest_digest: Some(digest),
        platform,
        layers,
    })
}
