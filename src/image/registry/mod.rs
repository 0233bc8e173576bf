//! `docker://`: an image read straight from a registry, through the OCI distribution API.
//!
//! The registry is made to look like an OCI image layout, so that choosing the image,
//! descending indexes to the platform, and every digest check are the ones every other
//! source goes through ([`super::oci`]): `index.json` names the manifest the reference
//! resolved to, and `blobs/ALG/HEX` are manifests (fetched from `/manifests/`), configs and
//! layers (from `/blobs/`). Layers start fetching, a few at a time, as soon as the image is
//! chosen, and are read while they arrive.
//!
//! Modules: `auth` (credentials and challenges), `tls`, `http` (requests, redirects,
//! retries), `cache` (the blob cache), `fetch` (blobs fetched beside the reading).

pub mod auth;
mod cache;
mod fetch;
mod http;
pub mod tls;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use auth::{AuthFiles, Credentials};
use fetch::{Blob, Queue};
use http::{Client, Get};

use super::reference::Reference;
use super::store::{read_limited, Store};
use crate::digest::{sha256_of, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::layer::region::Region;
use crate::vocabulary::progress::{Cancel, Download, Observer};

/// Manifests and indexes larger than this are refused before they are parsed (the limit
/// distribution and containers/image keep).
pub const MANIFEST_LIMIT: u64 = 4 << 20;

/// The manifest forms we read, in the order we prefer them.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// How to reach registries: who we are, how TLS is checked, where fetched blobs are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Credentials for the registry (`--creds`); otherwise looked up in `auth_files`.
    pub creds: Option<Credentials>,
    /// Where credentials are looked up when `creds` is not given.
    pub auth_files: AuthFiles,
    /// Check certificates and refuse plain HTTP (`--tls-verify`, on by default).
    pub tls_verify: bool,
    /// The registry's CAs and client certificate (`--cert-dir`), instead of
    /// `/etc/containers/certs.d/HOST:PORT` and `/etc/docker/certs.d/HOST:PORT`.
    pub cert_dir: Option<PathBuf>,
    /// The blob cache's directory; `None` fetches everything anew and keeps nothing.
    pub cache: Option<PathBuf>,
    /// How many blobs are fetched at once (at least 1).
    pub fetchers: usize,
}

impl Default for Access {
    /// Credentials from the usual files, certificates checked, the usual cache.
    fn default() -> Access {
        Access {
            creds: None,
            auth_files: AuthFiles::from_env(),
            tls_verify: true,
            cert_dir: None,
            cache: cache::default_dir(),
            fetchers: fetch::CONCURRENT,
        }
    }
}

/// A registry's repository, seen as an OCI layout.
pub struct RegistryStore {
    reference: Reference,
    shown: String,
    access: Access,
    cancel: Cancel,
    client: Mutex<Option<Arc<Client>>>,
    cache: Arc<cache::Cache>,
    /// The `index.json` we present: one descriptor, the manifest the reference names.
    index: Vec<u8>,
    /// Manifests fetched (verified), and the digests known to name manifests.
    manifests: Mutex<HashMap<Digest, Vec<u8>>>,
    manifest_digests: Mutex<HashSet<Digest>>,
    /// Blobs being fetched or fetched.
    blobs: Mutex<HashMap<Digest, Arc<Blob>>>,
    queue: Arc<Queue>,
    /// Stops the fetchers when the store is dropped.
    stop: Cancel,
}

impl RegistryStore {
    /// Resolves `reference` to its manifest (from the registry; a digest reference may come
    /// from the cache without asking it).
    pub fn open(reference: &Reference, access: &Access, cancel: &Cancel) -> Result<RegistryStore> {
        let store = RegistryStore {
            reference: reference.clone(),
            shown: format!("docker://{reference}"),
            access: access.clone(),
            cancel: cancel.clone(),
            client: Mutex::new(None),
            cache: Arc::new(cache::Cache::open(access.cache.as_deref())),
            index: Vec::new(),
            manifests: Mutex::new(HashMap::new()),
            manifest_digests: Mutex::new(HashSet::new()),
            blobs: Mutex::new(HashMap::new()),
            queue: Arc::new(Queue::default()),
            stop: Cancel::new(),
        };
        let (digest, raw, media_type) = store.top_manifest()?;
        let descriptor = serde_json::json!({
            "mediaType": media_type,
            "digest": digest.to_string(),
            "size": raw.len(),
            "annotations": { super::oci::CONTAINERD_NAME: reference.to_string() },
        });
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [descriptor],
        }))
        .map_err(|e| Error::caused(ErrorKind::Input, "cannot describe the manifest", e))?;
        store.remember_manifest(&digest, raw)?;
        let mut store = store;
        store.index = index;
        Ok(store)
    }

    fn client(&self) -> Result<Arc<Client>> {
        let mut c = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = c.as_ref() {
            return Ok(c.clone());
        }
        let client = Arc::new(Client::new(&self.reference, &self.access, &self.cancel)?);
        *c = Some(client.clone());
        Ok(client)
    }

    /// The manifest the reference names: its digest, bytes and media type.
    fn top_manifest(&self) -> Result<(Digest, Vec<u8>, String)> {
        if let Some(d) = &self.reference.digest {
            let digest = Digest::parse(d)?;
            if let Some(raw) = self.cached_small(&digest, MANIFEST_LIMIT) {
                let media_type = media_type_of(&raw).unwrap_or_default();
                return Ok((digest, raw, media_type));
            }
        }
        let wanted = self
            .reference
            .digest
            .clone()
            .or_else(|| self.reference.tag.clone())
            .unwrap_or_else(|| "latest".to_owned());
        let (raw, media_type, header) = self.fetch_manifest(&wanted)?;
        let digest = sha256_of(&raw);
        let expect = match &self.reference.digest {
            Some(d) => Some(Digest::parse(d)?),
            None => header.as_deref().and_then(|h| Digest::parse(h).ok()),
        };
        if let Some(expect) = expect {
            if expect.algorithm() == digest.algorithm() && expect != digest {
                return Err(Error::new(
                    ErrorKind::Verification,
                    format!(
                        "{}: the manifest's digest is {digest}, not {expect}",
                        self.shown
                    ),
                ));
            }
            if expect.algorithm() != digest.algorithm() {
                verify(&expect, &raw, &self.shown)?;
                return Ok((expect, raw, media_type));
            }
        }
        Ok((digest, raw, media_type))
    }

    /// GETs a manifest: its bytes, its media type, and the digest the registry says it has.
    fn fetch_manifest(&self, reference: &str) -> Result<(Vec<u8>, String, Option<String>)> {
        let client = self.client()?;
        let mut response = client.get(&Get {
            path: &format!("manifests/{reference}"),
            accept: Some(ACCEPT),
            from: 0,
        })?;
        let header = |k: &str| {
            response
                .headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let said_digest = header("docker-content-digest");
        let raw = read_limited(&mut response.body_mut().as_reader(), MANIFEST_LIMIT, || {
            format!("{}: the manifest", self.shown)
        })?;
        let media_type = media_type_of(&raw).unwrap_or_else(|| {
            content_type
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        });
        if media_type.starts_with("application/vnd.docker.distribution.manifest.v1") {
            return Err(Error::input(format!(
                "{} is a Docker schema 1 image, which flatten does not read (it is deprecated; push it again with a current Docker)",
                self.shown
            )));
        }
        Ok((raw, media_type, said_digest))
    }

    /// Keeps a verified manifest; an index's children are manifests too.
    fn remember_manifest(&self, digest: &Digest, raw: Vec<u8>) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Children {
            #[serde(default)]
            manifests: Vec<Child>,
        }
        #[derive(serde::Deserialize)]
        struct Child {
            digest: String,
        }
        if let Ok(children) = serde_json::from_slice::<Children>(&raw) {
            let mut known = self
                .manifest_digests
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for c in children.manifests {
                if let Ok(d) = Digest::parse(&c.digest) {
                    known.insert(d);
                }
            }
        }
        self.cache.put(digest, &raw);
        self.manifest_digests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone());
        self.manifests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), raw);
        Ok(())
    }

    /// A small blob from the cache, if there and still what its digest says.
    fn cached_small(&self, digest: &Digest, limit: u64) -> Option<Vec<u8>> {
        let file = self.cache.get(digest)?;
        let raw = read_limited(&mut &file, limit, String::new).ok()?;
        verify(digest, &raw, "").ok()?;
        Some(raw)
    }

    /// A manifest or config, verified, from memory, the cache or the registry.
    fn small_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        if let Some(raw) = self
            .manifests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
        {
            return Ok(raw.clone());
        }
        let is_manifest = self
            .manifest_digests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(digest);
        let raw = match self.cached_small(digest, limit) {
            Some(raw) => raw,
            None if is_manifest => {
                let (raw, _, _) = self.fetch_manifest(&digest.to_string())?;
                verify(digest, &raw, &self.shown)?;
                raw
            }
            // A config: fetched as layers are (resumed, retried, verified, cached).
            None => {
                let blob = self.blob(&digest.blob_path(), None, limit, None)?;
                read_limited(&mut blob.follow(&self.cancel), limit, || {
                    format!(
                        "{}: blob {}",
                        self.shown,
                        crate::error::short_digest(&digest.to_string())
                    )
                })?
            }
        };
        if is_manifest {
            self.remember_manifest(digest, raw.clone())?;
        }
        Ok(raw)
    }

    /// The blob at `path` (`blobs/ALG/HEX`), started if not yet.
    fn blob(
        &self,
        path: &str,
        size: Option<u64>,
        limit: u64,
        observer: Option<&mut dyn Observer>,
    ) -> Result<Arc<Blob>> {
        let digest = blob_digest(path)?;
        let mut blobs = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = blobs.get(&digest) {
            return Ok(b.clone());
        }
        let blob = Blob::new(digest.clone(), size, limit);
        blobs.insert(digest.clone(), blob.clone());
        drop(blobs);
        let bar: Box<dyn Download> = match observer {
            Some(o) => o.download(&digest.to_string(), size),
            None => Box::new(()),
        };
        let start = self
            .queue
            .push(blob.clone(), bar, self.access.fetchers.max(1));
        if start {
            self.spawn_fetcher()?;
        }
        Ok(blob)
    }

    /// Starts a fetcher, already counted as running.
    fn spawn_fetcher(&self) -> Result<()> {
        let started = self.client().and_then(|client| {
            let (cache, queue, stop, user) = (
                self.cache.clone(),
                self.queue.clone(),
                self.stop.clone(),
                self.cancel.clone(),
            );
            std::thread::Builder::new()
                .name("fetch".into())
                .spawn(move || fetch::worker(&client, &cache, &queue, &[&stop, &user]))
                .map_err(|e| Error::io("cannot start a thread to fetch layers", e))
        });
        if started.is_err() {
            self.queue.not_started();
        }
        started.map(drop)
    }
}

impl Drop for RegistryStore {
    fn drop(&mut self) {
        self.stop.cancel();
        for blob in self
            .blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            blob.abandon();
        }
    }
}

impl Store for RegistryStore {
    fn region(&self, path: &str) -> Result<Option<Region>> {
        let Ok(digest) = blob_digest(path) else {
            return Ok(None);
        };
        let blobs = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        Ok(blobs
            .get(&digest)
            .and_then(|b| b.done())
            .map(|(file, len)| Region {
                file,
                offset: 0,
                len,
            }))
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>> {
        if path == "index.json" {
            return Ok(Box::new(std::io::Cursor::new(self.index.clone())));
        }
        let blob = self.blob(path, None, u64::MAX, None)?;
        Ok(Box::new(blob.follow(&self.cancel)))
    }

    fn size(&self, path: &str) -> Option<u64> {
        if path == "index.json" {
            return Some(self.index.len() as u64);
        }
        let digest = blob_digest(path).ok()?;
        self.blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
            .and_then(|b| b.size)
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    /// A blob's reader ends only once the fetcher checked it (or its cached copy).
    fn checks_blobs(&self) -> bool {
        true
    }

    fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        if path == "index.json" {
            return Ok(self.index.clone());
        }
        self.small_blob(&blob_digest(path)?, limit)
    }

    fn fetch_ahead(
        &self,
        blobs: &[(String, Option<u64>)],
        observer: &mut dyn Observer,
    ) -> Result<()> {
        for (path, size) in blobs {
            self.blob(path, *size, u64::MAX, Some(&mut *observer))?;
        }
        Ok(())
    }
}

/// `blobs/sha256/HEX` → the digest it names.
fn blob_digest(path: &str) -> Result<Digest> {
    let rest = path
        .strip_prefix("blobs/")
        .and_then(|r| r.split_once('/'))
        .ok_or_else(|| Error::input(format!("no blob {path:?} in a registry")))?;
    Digest::parse(&format!("{}:{}", rest.0, rest.1))
}

fn media_type_of(raw: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct M {
        media_type: Option<String>,
        schema_version: Option<u32>,
    }
    let m: M = serde_json::from_slice(raw).ok()?;
    if m.schema_version == Some(1) {
        return Some("application/vnd.docker.distribution.manifest.v1+json".to_owned());
    }
    m.media_type
}

fn verify(digest: &Digest, raw: &[u8], source: &str) -> Result<()> {
    let got = crate::digest::digest_of(digest.algorithm(), raw);
    if &got != digest {
        return Err(Error::new(
            ErrorKind::Verification,
            format!(
                "{source}: the registry sent wrong bytes for {}: their digest is {}",
                crate::error::short_digest(&digest.to_string()),
                crate::error::short_digest(&got.to_string())
            ),
        ));
    }
    Ok(())
}
