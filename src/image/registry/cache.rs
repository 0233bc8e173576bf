//! The blob cache: what a pull fetched, kept by digest under `$XDG_CACHE_HOME/flatten` (or
//! `~/.cache/flatten`) as `blobs/ALGORITHM/HEX`, so the next run fetches only what changed.
//!
//! A blob enters the cache only after its digest and size were checked, by a rename from
//! `tmp/` (so a half-written blob is never there under its name); what comes out of it
//! is checked again before it is used, and a blob that fails is fetched anew.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::TempPath;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Temporary files older than this in `tmp/` were left by a run that was killed.
const STALE: Duration = Duration::from_secs(24 * 3600);

/// Where fetched blobs are kept, if anywhere.
#[derive(Debug)]
pub(crate) struct Cache {
    root: Option<PathBuf>,
}

/// A blob being written: a file to write it into, and (in the cache) the name it has until
/// it is verified and kept; dropped unkept, it is deleted.
pub(crate) struct Spool {
    pub file: File,
    pub temp: Option<TempPath>,
}

impl Cache {
    /// The cache at `root` (made if missing); `None`, or a directory that cannot be made,
    /// means blobs go to unnamed temporary files and are gone after the run.
    pub fn open(root: Option<&Path>) -> Cache {
        let root = root.and_then(|r| {
            for sub in ["blobs/sha256", "blobs/sha512", "tmp"] {
                std::fs::create_dir_all(r.join(sub)).ok()?;
            }
            Some(r.to_path_buf())
        });
        if let Some(r) = &root {
            sweep(&r.join("tmp"));
        }
        Cache { root }
    }

    fn path(&self, digest: &Digest) -> Option<PathBuf> {
        // The digest was parsed (known algorithm, lowercase hex of its length), so the
        // name it makes stays inside the cache.
        Some(self.root.as_ref()?.join(digest.blob_path()))
    }

    /// The cached blob, if there is one.
    pub fn get(&self, digest: &Digest) -> Option<File> {
        File::open(self.path(digest)?)
            .ok()
            .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
    }

    /// A new file to fetch a blob into: in the cache's `tmp/`, or unnamed in `$TMPDIR`.
    pub fn spool(&self) -> Result<Spool> {
        match &self.root {
            Some(root) => {
                let named = tempfile::Builder::new()
                    .prefix(".blob-")
                    .tempfile_in(root.join("tmp"))
                    .map_err(|e| {
                        Error::io(
                            format!(
                                "cannot make a file in the cache {}",
                                crate::vocabulary::quote::quote_path(root)
                            ),
                            e,
                        )
                    })?;
                let (file, temp) = named.into_parts();
                Ok(Spool {
                    file,
                    temp: Some(temp),
                })
            }
            None => {
                let file = tempfile::tempfile().map_err(|e| {
                    Error::io(
                        "cannot make a temporary file (set TMPDIR to a writable directory)",
                        e,
                    )
                })?;
                Ok(Spool { file, temp: None })
            }
        }
    }

    /// Keeps a verified blob under its digest (a blob already there is the same bytes).
    pub fn keep(&self, temp: Option<TempPath>, digest: &Digest) {
        if let (Some(temp), Some(path)) = (temp, self.path(digest)) {
            // A cache we cannot write to costs the next run a fetch, not this run its result.
            let _ = temp.persist(path);
        }
    }

    /// Removes a cached blob found to be wrong.
    pub fn forget(&self, digest: &Digest) {
        if let Some(path) = self.path(digest) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Keeps small verified bytes (a manifest, a config) under their digest.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) {
        if self.root.is_none() || self.get(digest).is_some() {
            return;
        }
        if let Ok(spool) = self.spool() {
            if std::io::Write::write_all(&mut &spool.file, bytes).is_ok() {
                self.keep(spool.temp, digest);
            }
        }
    }
}

/// Removes what killed runs left in `tmp/`.
fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE));
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// `$XDG_CACHE_HOME/flatten`, else `~/.cache/flatten`.
pub fn default_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|h| h.join(".cache")))
        .map(|c| c.join("flatten"))
}
