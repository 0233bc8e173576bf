//! `manifest.json` archives: `docker save` (both the legacy `<id>/layer.tar` layout and Docker
//! 25+'s `blobs/sha256/…` paths), skopeo/podman `docker-archive:` (`<hex>.tar`), and
//! go-containerregistry tarballs (`<hex>.tar.gz`).

use serde::Deserialize;

use super::{parse_config, Candidate, Resolved, ResolvedLayer, Target as Choice, JSON_LIMIT};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::store::Store;
use crate::layer::Expected;

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

pub fn candidates(store: &dyn Store) -> Result<Vec<Candidate>> {
    let raw = store.read_small("manifest.json", JSON_LIMIT)?;
    let entries: Vec<Entry> = serde_json::from_slice(&raw)
        .map_err(|e| Error::caused(crate::ErrorKind::Input, "manifest.json is malformed", e))?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let digests = name_digest(&e.config).into_iter().collect();
            Candidate {
                names: e.repo_tags.clone().unwrap_or_default(),
                digests,
                choice: Choice::Docker(e),
            }
        })
        .collect())
}

/// The digest a file name carries: `blobs/sha256/<hex>`, `<hex>.json`, `<hex>.tar[.gz|.zst]`.
pub fn name_digest(path: &str) -> Option<Digest> {
    let path = path.trim_start_matches("./");
    if let Some(rest) = path.strip_prefix("blobs/") {
        let (algo, hex) = rest.split_once('/')?;
        return Digest::parse(&format!("{algo}:{hex}")).ok();
    }
    let base = path.rsplit('/').next()?;
    let stem = [".tar.gz", ".tar.zst", ".tgz", ".tar", ".json"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .unwrap_or(base);
    Digest::from_sha256_hex(stem.strip_prefix("sha256:").unwrap_or(stem))
}

pub fn resolve(store: &dyn Store, entry: &Entry, verify: bool) -> Result<Resolved> {
    let raw = store.read_small(&entry.config, JSON_LIMIT)?;
    if verify {
        if let Some(want) = name_digest(&entry.config) {
            let got = crate::digest::sha256_of(&raw);
            if want.algorithm() == got.algorithm() && want != got {
                return Err(Error::new(
                    crate::ErrorKind::Verification,
                    format!(
                        "config {}: digest mismatch: expected {want}, got {got}",
                        entry.config
                    ),
                ));
            }
        }
    }
    let (config, config_digest) = parse_config(&raw)?;
    let diff_ids = super::diff_ids(&config, entry.layers.len())?;
    let layers = entry
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(path, diff_id)| {
            let named = name_digest(path);
            let is_blob_path = path.trim_start_matches("./").starts_with("blobs/");
            let expected = Expected {
                blob: if is_blob_path { named.clone() } else { None },
                named: if is_blob_path { None } else { named },
                diff_id,
                size: None,
            };
            ResolvedLayer {
                path: path.clone(),
                media_type: None,
                expected,
            }
        })
        .collect();
    Ok(Resolved {
        config,
        config_digest,
        manifest_digest: None,
        platform: None,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::name_digest;

    #[test]
    fn digests_in_names() {
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        for p in [
            format!("blobs/sha256/{hex}"),
            format!("{hex}.tar"),
            format!("{hex}.tar.gz"),
            format!("{hex}.json"),
            format!("sha256:{hex}.tar.gz"),
        ] {
            assert_eq!(
                name_digest(&p).map(|d| d.hex().to_owned()),
                Some(hex.to_owned()),
                "{p}"
            );
        }
        assert_eq!(name_digest(&format!("{}/layer.tar", &hex[..20])), None);
        assert_eq!(name_digest(&format!("{hex}/layer.tar")), None);
    }
}
