//! What the user named: a path (recognised by its content), a skopeo-style transport name, or
//! `-` for standard input; and turning it into a [`Store`] to read from.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use super::store::{DirStore, Store, TarStore};
use crate::error::{Error, IoContext, Result};
use crate::layer::{sniff, Compression};
use crate::vocabulary::progress::{Cancel, Observer};

/// The form an image comes in, as far as the user said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file or directory recognised by its content.
    Path(PathBuf),
    /// `-`: an archive on standard input (spooled to a temporary file first: every writer puts
    /// the manifest after the layers).
    Stdin,
    /// `docker-archive:FILE`: read `manifest.json`, even if an OCI index is there too.
    DockerArchive(PathBuf),
    /// `oci:DIR`: an OCI image layout directory.
    OciDir(PathBuf),
    /// `oci-archive:FILE`: a tar of an OCI image layout.
    OciArchive(PathBuf),
    /// `docker-daemon:REF`: the image REF of the local Docker Engine, exported through its
    /// API socket (`GET /images/REF/get`, what `docker save` uses).
    DockerDaemon(String),
    /// `docker://[HOST[:PORT]/]REPO[:TAG|@DIGEST]`: an image on a registry, reached as
    /// `access` says.
    #[cfg(feature = "registry")]
    Registry {
        /// The image, normalised as Docker does (`debian` is `docker.io/library/debian:latest`).
        reference: super::reference::Reference,
        /// Credentials, TLS and cache settings.
        access: Box<super::registry::Access>,
    },
}

/// Which manifest format to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `manifest.json` (`docker save`, skopeo/podman docker-archive, go-containerregistry).
    Docker,
    /// `index.json` (OCI image layout, Docker 25+ `docker save`).
    Oci,
    /// A registry's repository (`docker://`), read as an OCI layout.
    Registry,
}

impl Input {
    /// Parses `docker-archive:FILE[:REF]`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `-` or a
    /// path. Returns the reference given after the path, if any.
    pub fn parse(s: &str) -> Result<(Input, Option<String>)> {
        if s == "-" {
            return Ok((Input::Stdin, None));
        }
        if let Some(reference) = s.strip_prefix("docker://") {
            #[cfg(feature = "registry")]
            return Ok((
                Input::Registry {
                    reference: super::reference::Reference::parse(reference)?,
                    access: Box::default(),
                },
                None,
            ));
            #[cfg(not(feature = "registry"))]
            return Err(Error::usage(format!(
                "docker://{reference}: this flatten was built without the registry feature"
            )));
        }
        if let Some(reference) = s.strip_prefix("docker-daemon:") {
            if reference.is_empty() {
                return Err(Error::usage(
                    "docker-daemon: needs an image, as in docker-daemon:debian:12",
                ));
            }
            return Ok((Input::DockerDaemon(reference.to_owned()), None));
        }
        for (prefix, make) in [
            (
                "docker-archive:",
                Input::DockerArchive as fn(PathBuf) -> Input,
            ),
            ("oci-archive:", Input::OciArchive),
            ("oci:", Input::OciDir),
        ] {
            if let Some(rest) = s.strip_prefix(prefix) {
                let (path, reference) = match rest.split_once(':') {
                    Some((p, r)) if !r.is_empty() => (p, Some(r.to_owned())),
                    Some((p, _)) => (p, None),
                    None => (rest, None),
                };
                if path.is_empty() {
                    return Err(Error::usage(format!("{s:?} names no file")));
                }
                return Ok((make(PathBuf::from(path)), reference));
            }
        }
        // `containers-storage:x`, `dir:x`: a transport we do not read, unless a file of
        // that very name exists.
        if let Some((scheme, _)) = s.split_once(':') {
            let word = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-+.".contains(c));
            if word && std::fs::symlink_metadata(s).is_err() {
                return Err(Error::usage(format!(
                    "unknown transport \"{scheme}:\" (flatten reads docker://, docker-archive:, oci:, oci-archive: and docker-daemon:, or a path)"
                )));
            }
        }
        Ok((Input::Path(PathBuf::from(s)), None))
    }

    /// Opens the input and tells which layout to read.
    pub fn open(&self) -> Result<(Box<dyn Store>, Layout)> {
        self.open_observed(&mut (), &Cancel::new())
    }

    /// Like [`Input::open`], telling `observer` how much of an archive that has to be copied
    /// first (standard input, a pipe, a compressed archive) is copied, and stopping when
    /// `cancel` says.
    pub fn open_observed(
        &self,
        observer: &mut dyn Observer,
        cancel: &Cancel,
    ) -> Result<(Box<dyn Store>, Layout)> {
        let mut sp = Spooler { observer, cancel };
        let sp = &mut sp;
        match self {
            #[cfg(feature = "registry")]
            Input::Registry { reference, access } => {
                let store = super::registry::RegistryStore::open(reference, access, cancel)?;
                Ok((Box::new(store), Layout::Registry))
            }
            Input::DockerDaemon(reference) => {
                let name = format!(
                    "docker-daemon:{}",
                    crate::vocabulary::quote::quote(reference.as_bytes())
                );
                let stream = super::daemon::export(reference)?;
                let store = tar_store(spool(stream, &name, sp)?, &name)?;
                detect(&store, Some(Layout::Docker))?;
                Ok((Box::new(store), Layout::Docker))
            }
            Input::Stdin => {
                let store = tar_store(spool(io::stdin(), "standard input", sp)?, "standard input")?;
                let layout = detect(&store, None)?;
                Ok((Box::new(store), layout))
            }
            Input::Path(p) => {
                let meta = std::fs::metadata(p).ctx(|| format!("cannot open {}", p.display()))?;
                if meta.is_dir() {
                    let store = DirStore::open(p)?;
                    let layout = detect(&store, None)?;
                    Ok((Box::new(store), layout))
                } else {
                    let store = open_archive(p, sp)?;
                    let layout = detect(&store, None)?;
                    Ok((Box::new(store), layout))
                }
            }
            Input::DockerArchive(p) => {
                let store: Box<dyn Store> = if p.is_dir() {
                    Box::new(DirStore::open(p)?)
                } else {
                    Box::new(open_archive(p, sp)?)
                };
                detect(&*store, Some(Layout::Docker))?;
                Ok((store, Layout::Docker))
            }
            Input::OciDir(p) => {
                let store = DirStore::open(p)?;
                detect(&store, Some(Layout::Oci))?;
                Ok((Box::new(store), Layout::Oci))
            }
            Input::OciArchive(p) => {
                let store = open_archive(p, sp)?;
                detect(&store, Some(Layout::Oci))?;
                Ok((Box::new(store), Layout::Oci))
            }
        }
    }
}

/// An OCI index wins over `manifest.json` when both are there (Docker 25+): it can hold
/// several platforms and nested indexes that `manifest.json` cannot describe.
fn detect(store: &dyn Store, want: Option<Layout>) -> Result<Layout> {
    let has_index = store.size("index.json").is_some();
    let has_manifest = store.size("manifest.json").is_some();
    let found = match want {
        Some(Layout::Docker) if has_manifest => Some(Layout::Docker),
        Some(Layout::Oci) if has_index => Some(Layout::Oci),
        Some(_) => None,
        None if has_index => Some(Layout::Oci),
        None if has_manifest => Some(Layout::Docker),
        None => None,
    };
    found.ok_or_else(|| {
        let what = match want {
            Some(Layout::Docker) => "manifest.json",
            Some(Layout::Oci | Layout::Registry) => "index.json",
            None => "manifest.json or index.json",
        };
        Error::input(format!(
            "{} is not a container image: no {what}",
            store.describe()
        ))
    })
}

/// Opens an archive file; a compressed one is inflated into a temporary file first, and so
/// is one that cannot be read twice (a pipe such as `<(cat img.tar)`, a character device),
/// as standard input is.
fn open_archive(path: &Path, sp: &mut Spooler<'_>) -> Result<TarStore> {
    let name = crate::vocabulary::quote::quote_path(path);
    let mut file = File::open(path).ctx(|| format!("cannot open {name}"))?;
    let regular = file
        .metadata()
        .ctx(|| format!("cannot open {name}"))?
        .is_file();
    if !regular {
        return tar_store(spool(file, &name, sp)?, &name);
    }
    let mut head = [0u8; 8];
    let n = read_head(&mut file, &mut head).ctx(|| format!("cannot read {name}"))?;
    file.rewind().ctx(|| format!("cannot read {name}"))?;
    if sniff(&head[..n])? == Compression::None {
        return TarStore::index(file, name);
    }
    tar_store(spool(file, &name, sp)?, &name)
}

fn read_head(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Copies `r` to `out`, telling a failure to read the input from a failure to write the
/// temporary file.
fn copy_into(r: &mut dyn Read, out: &mut File, name: &str, sp: &mut Spooler<'_>) -> Result<()> {
    use std::io::Write;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        sp.cancel
            .check(|| format!("interrupted while copying {name} to a temporary file"))?;
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("cannot read {name}"), e)),
        };
        out.write_all(&buf[..n]).map_err(|e| spool_error(name, e))?;
        sp.observer.spooled(n as u64);
    }
}

/// The temporary file could not be made or filled: name the directory and the way out.
fn spool_error(name: &str, e: io::Error) -> Error {
    let dir = std::env::temp_dir();
    Error::io(
        format!(
            "cannot copy {name} to a temporary file in {} (set TMPDIR to a directory with room for the whole archive)",
            crate::vocabulary::quote::quote_path(&dir)
        ),
        e,
    )
}

fn tar_store(file: File, name: &str) -> Result<TarStore> {
    TarStore::index(file, name.to_owned())
}

/// Copies a stream (inflating it if it is compressed) into an unlinked temporary file.
/// Where spooling reports progress, and what stops it.
struct Spooler<'a> {
    observer: &'a mut dyn Observer,
    cancel: &'a Cancel,
}

fn spool(r: impl Read + Send, name: &str, sp: &mut Spooler<'_>) -> Result<File> {
    let mut r = BufReader::with_capacity(1 << 20, r);
    let head = r.fill_buf().ctx(|| format!("cannot read {name}"))?;
    let compression = sniff(head)?;
    let mut out = tempfile::tempfile().map_err(|e| spool_error(name, e))?;
    match compression {
        Compression::None => copy_into(&mut r, &mut out, name, sp)?,
        Compression::Gzip => copy_into(&mut crate::layer::gunzip(r), &mut out, name, sp)?,
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(r)
                .ctx(|| format!("cannot read {name}"))?;
            copy_into(&mut d, &mut out, name, sp)?
        }
    }
    out.rewind()
        .ctx(|| "cannot rewind the temporary file".into())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_names() {
        assert_eq!(
            Input::parse("docker-archive:x.tar:busybox:latest").unwrap(),
            (
                Input::DockerArchive("x.tar".into()),
                Some("busybox:latest".into())
            )
        );
        assert_eq!(
            Input::parse("oci:dir").unwrap(),
            (Input::OciDir("dir".into()), None)
        );
        assert_eq!(
            Input::parse("oci-archive:a.tar:v1").unwrap(),
            (Input::OciArchive("a.tar".into()), Some("v1".into()))
        );
        assert_eq!(Input::parse("-").unwrap(), (Input::Stdin, None));
        assert_eq!(
            Input::parse("./img.tar").unwrap(),
            (Input::Path("./img.tar".into()), None)
        );
        assert!(Input::parse("oci:").is_err());
    }
}
