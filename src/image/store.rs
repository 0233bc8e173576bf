//! The files of an image, wherever they are: members of a tar archive or files of a directory.
//! Every name is resolved inside the archive or directory; nothing outside it is ever read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::layer::region::{Region, RegionReader};
use crate::tar::Kind;
use crate::vocabulary::path::RelPath;

/// Read access to the files of an image.
pub trait Store: Send + Sync {
    /// Where the file at `path` lies, if it lies whole in one file here.
    fn region(&self, _path: &str) -> Result<Option<Region>> {
        Ok(None)
    }
    /// Opens the file at `path` (relative to the top of the archive or directory).
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>>;
    /// The size of the file at `path`, if it exists.
    fn size(&self, path: &str) -> Option<u64>;
    /// A short description for messages.
    fn describe(&self) -> String;

    /// Whether every blob's reader ends only once the blob matched its digest and size
    /// (the store checked it itself).
    fn checks_blobs(&self) -> bool {
        false
    }

    /// The blobs (paths and sizes) that will be read, in the order they will be: a store
    /// that must fetch them starts now, telling `observer`.
    fn fetch_ahead(
        &self,
        _blobs: &[(String, Option<u64>)],
        _observer: &mut dyn crate::Observer,
    ) -> Result<()> {
        Ok(())
    }

    /// Reads a small file whole, refusing one larger than `limit`.
    fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        read_limited(&mut self.open(path)?, limit, || path.to_owned())
    }
}

/// Reads at most `limit` bytes of `r` (named `what()` in errors), refusing more.
pub(crate) fn read_limited(
    r: &mut dyn Read,
    limit: u64,
    what: impl Fn() -> String,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .ctx(|| format!("cannot read {}", what()))?;
    if buf.len() as u64 > limit {
        return Err(Error::input(format!(
            "{} is larger than {limit} bytes",
            what()
        )));
    }
    Ok(buf)
}

/// Normalises a path given by the image (a manifest entry, a digest path).
fn archive_path(path: &str) -> Result<RelPath> {
    RelPath::parse(path.as_bytes())
        .map_err(|e| Error::input(format!("bad path {path:?} in the image: {}", e.message())))
}

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Other,
}

/// A tar archive indexed once, its members then read in place with positioned reads.
pub struct TarStore {
    file: Arc<File>,
    members: HashMap<Vec<u8>, Member>,
    name: String,
}

/// How many archive-internal links one lookup may follow.
const MAX_LINKS: usize = 40;

impl TarStore {
    /// Indexes the tar archive in `file` (which must be seekable and uncompressed).
    pub fn index(file: File, name: String) -> Result<TarStore> {
        let file = Arc::new(file);
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot read archive {name}"), e))?
            .len();
        let mut members = HashMap::new();
        let mut src = RegionReader::new(Region {
            file: file.clone(),
            offset: 0,
            len,
        });
        let mut archive = crate::tar::Archive::new(&mut src);
        let bad = |e: Error| {
            Error::new(
                ErrorKind::Input,
                format!("{name} is not a valid tar archive: {e}"),
            )
        };
        while let Some(entry) = archive.next_entry().map_err(bad)? {
            let h = entry.header;
            let path = match RelPath::parse(&h.name) {
                Ok(p) => p,
                Err(_) => continue, // a name we would never look up
            };
            if let (Kind::File, Some(offset)) = (&h.kind, entry.data_at) {
                // A download or copy cut short: say so, and where, rather than miss what
                // came after (the manifest is usually last).
                if offset.saturating_add(h.size) > len {
                    return Err(Error::input(format!(
                        "{name} ends early at byte {len}, inside {} ({} of its {} bytes are missing)",
                        crate::vocabulary::quote::quote(path.as_bytes()),
                        offset.saturating_add(h.size) - len,
                        h.size
                    )));
                }
            }
            let member = match (h.kind, entry.data_at) {
                (Kind::File, Some(offset)) => Member::File {
                    offset,
                    size: h.size,
                },
                (Kind::Symlink(target), _) => Member::Symlink(target),
                (Kind::Hardlink(target), _) => Member::Hardlink(target),
                _ => Member::Other,
            };
            members.insert(path.as_bytes().to_vec(), member);
        }
        Ok(TarStore {
            file,
            members,
            name,
        })
    }

    /// Finds the file behind `path`, following links while they stay inside the archive.
    fn lookup(&self, path: &str) -> Result<(u64, u64)> {
        let mut cur = archive_path(path)?.as_bytes().to_vec();
        for _ in 0..MAX_LINKS {
            match self.members.get(&cur) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Symlink(target)) => {
                    cur = resolve_link(&cur, target)
                        .ok_or_else(|| Error::input(format!("{path} links outside the archive")))?;
                }
                Some(Member::Hardlink(target)) => {
                    cur = RelPath::parse(target)
                        .map_err(|_| Error::input(format!("{path} links outside the archive")))?
                        .as_bytes()
                        .to_vec();
                }
                Some(Member::Other) => {
                    return Err(Error::input(format!(
                        "{path} is not a file in {}",
                        self.name
                    )))
                }
                None => {
                    return Err(Error::input(format!(
                        "{path} is missing from {}",
                        self.name
                    )))
                }
            }
        }
        Err(Error::input(format!("too many links resolving {path}")))
    }
}

/// Resolves a symlink target relative to the link's directory, lexically; `None` if it climbs
/// above the top of the archive.
fn resolve_link(link: &[u8], target: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = if target.starts_with(b"/") {
        Vec::new()
    } else {
        let mut p: Vec<&[u8]> = link.split(|&b| b == b'/').collect();
        p.pop();
        p
    };
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

/// A member of an archive, read with `pread` so several can be open at once.
struct Slice {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for Slice {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.end.saturating_sub(self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive is truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Store for TarStore {
    fn region(&self, path: &str) -> Result<Option<Region>> {
        let (offset, len) = self.lookup(path)?;
        Ok(Some(Region {
            file: self.file.clone(),
            offset,
            len,
        }))
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>> {
        let (offset, size) = self.lookup(path)?;
        Ok(Box::new(Slice {
            file: self.file.clone(),
            pos: offset,
            end: offset.saturating_add(size),
        }))
    }

    fn size(&self, path: &str) -> Option<u64> {
        self.lookup(path).ok().map(|(_, s)| s)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// An image laid out in a directory (an OCI layout, an unpacked `docker save`).
pub struct DirStore {
    root: OwnedFd,
    path: PathBuf,
}

impl DirStore {
    pub fn open(path: &Path) -> Result<DirStore> {
        let root = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("cannot open {}", path.display()))?;
        Ok(DirStore {
            root,
            path: path.to_owned(),
        })
    }

    fn open_file(&self, path: &str) -> Result<File> {
        self.open_file_with(path, OFlag::O_RDONLY | OFlag::O_NOCTTY)
    }

    /// Opens `path` inside the layout with `flags` (`O_PATH` to look without reading).
    fn open_file_with(&self, path: &str, flags: OFlag) -> Result<File> {
        let rel = archive_path(path)?;
        let flags = flags | OFlag::O_CLOEXEC;
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = match openat2(self.root.as_fd(), rel.as_bytes(), how) {
            Err(Errno::ENOSYS) | Err(Errno::EPERM) => {
                // No openat2: refuse symlinks rather than follow them unchecked.
                let mut dir = self
                    .root
                    .try_clone()
                    .ctx(|| "cannot duplicate a handle".into())?;
                let comps: Vec<&[u8]> = rel.components().collect();
                let (last, parents) = comps
                    .split_last()
                    .ok_or_else(|| Error::input("empty path"))?;
                for c in parents {
                    dir = openat(
                        dir.as_fd(),
                        *c,
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .ctx(|| format!("cannot open {path} in {}", self.path.display()))?;
                }
                openat(dir.as_fd(), *last, flags | OFlag::O_NOFOLLOW, Mode::empty())
            }
            r => r,
        };
        match fd {
            Ok(fd) => {
                let f = File::from(fd);
                let meta = f.metadata().ctx(|| format!("cannot stat {path}"))?;
                if !meta.is_file() {
                    return Err(Error::input(format!(
                        "{path} is not a file in {}",
                        self.path.display()
                    )));
                }
                Ok(f)
            }
            Err(Errno::ENOENT) => Err(Error::input(format!(
                "{path} is missing from {}",
                self.path.display()
            ))),
            Err(e) => Err(Error::io(
                format!("cannot open {path} in {}", self.path.display()),
                e.into(),
            )),
        }
    }
}

impl Store for DirStore {
    fn region(&self, path: &str) -> Result<Option<Region>> {
        let file = self.open_file(path)?;
        let len = file.metadata().ctx(|| format!("cannot read {path}"))?.len();
        Ok(Some(Region {
            file: Arc::new(file),
            offset: 0,
            len,
        }))
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.open_file(path)?))
    }

    /// Looked at through `O_PATH`, so that a file there but unreadable counts as there and
    /// reading it then says why it cannot be read (not that it is missing).
    fn size(&self, path: &str) -> Option<u64> {
        self.open_file_with(path, OFlag::O_PATH)
            .ok()?
            .metadata()
            .ok()
            .map(|m| m.len())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_link;

    #[test]
    fn links_stay_inside() {
        assert_eq!(
            resolve_link(b"a/layer.tar", b"../b/layer.tar"),
            Some(b"b/layer.tar".to_vec())
        );
        assert_eq!(resolve_link(b"a/layer.tar", b"../../etc/passwd"), None);
        assert_eq!(resolve_link(b"a/x", b"/b/y"), Some(b"b/y".to_vec()));
    }
}
