//! The tar output (`-o`): the merged tree as one tar stream, read as for a directory, each
//! surviving file's bytes copied once (from the spool, or in place without digests).
//!
//! Modules: `stream` (the tar format we write, in `docker export`'s order).

mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::error::{Error, IoContext, Result};
use crate::image::Image;
use crate::layer::read::Body;
use crate::layer::read::{plain_region, read_layer, Reading};
use crate::merge::plan::{Plan, Source};
use crate::merge::upper::{Upper, UpperId};
use crate::merge::Listed;
use crate::read::{self, Keep, Settings};
use crate::tar::{Data, Header};
use crate::vocabulary::path::RelPath;
use crate::Options;
use std::io::BufRead;

/// Writes the flattened image to `out` as one tar stream (see `stream`). Needs
/// no privileges: owners and devices go into the headers. Layers are read as for a
/// directory (top-down, then the plan); the content of plain layers is copied from the
/// archive as the tar is written, and that of compressed layers is spooled to an unlinked
/// temporary file in `$TMPDIR`, only for files no upper layer deletes or replaces. With
/// `docker_export`, the result is what `docker export` of a new container made from the
/// image gives: what `docker create` adds, whole-second mtimes, only `security.capability`
/// among xattrs. `options.verify`, `options.docker_export` and `options.cancel` apply.
///
/// `observer` hears of each layer as it is read (the writing that follows is quick).
///
/// ```
/// use flatten::{write_tar, Image, Input, Options};
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/example/hello.tar");
/// let options = Options::default();
/// let (input, _) = Input::parse(path)?;
/// let image = Image::open(&input, &options.selector, options.verify)?;
/// let mut tar = Vec::new();
/// let report = write_tar(&image, &options, &mut tar, &mut ())?;
/// assert_eq!(tar.len() % 512, 0);
/// assert_eq!(report.layers, image.layers.len());
/// # Ok::<(), flatten::Error>(())
/// ```
pub fn write_tar(
    image: &Image,
    options: &Options,
    out: &mut dyn Write,
    observer: &mut dyn crate::Observer,
) -> Result<crate::Report> {
    let start = std::time::Instant::now();
    let (verify, docker_export) = (options.verify, options.docker_export);
    let spool =
        tempfile::tempfile().ctx(|| "cannot create a temporary file (set TMPDIR)".into())?;
    let workdir = image
        .config
        .config
        .as_ref()
        .and_then(|c| c.working_dir.clone());
    let settings = Settings {
        verify,
        docker_export: docker_export.then_some(workdir),
        cancel: options.cancel.clone(),
    };
    let read = read::read_layers(image, &settings, observer, Spool::new(spool))?;
    let counts = read.out.clone();
    let mut spool = read.keep;
    let mut plan = read::plan(image, &read.records, &read.upper)?;
    if let Some(workdir) = &settings.docker_export {
        plan.add_docker_init(workdir.as_deref())?;
    }
    let listing = plan.list();
    spool_missing(image, &plan, &listing, &mut spool, &settings)?;
    // Without digests, plain layers' files are copied from where they lie; with them, every
    // byte comes from the spool, filled by the one read that was hashed.
    let regions = (0..image.layers.len())
        .map(|i| match verify {
            true => Ok(None),
            false => plain_region(image, i),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut content = |e: &Listed, out: &mut dyn Write| -> std::io::Result<()> {
        let s = e
            .content
            .ok_or_else(|| std::io::Error::other("a file without content"))?;
        let r = plan.record(s);
        let (file, at) = match (r.data_at, &regions[s.layer as usize]) {
            (Some(at), Some(region)) => (&*region.file, region.offset + at),
            _ => match spool.offset(s) {
                Some(at) => (spool.file(), at),
                None => return Err(std::io::Error::other("file content was not kept")),
            },
        };
        copy_range(file, at, r.size, &mut buf, out)
    };
    stream::write(&listing, &mut content, out).ctx(|| "cannot write the tar output".into())?;
    Ok(crate::Report {
        layers: image.layers.len(),
        entries: counts.entries,
        bytes: counts.bytes,
        written: counts.written,
        skipped: counts.skipped,
        elapsed: start.elapsed(),
        unreproduced: Default::default(),
    })
}

/// Copies `len` bytes at `at` of `file` to `out`.
fn copy_range(
    file: &std::fs::File,
    at: u64,
    len: u64,
    buf: &mut [u8],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < len {
        let want = buf.len().min((len - done) as usize);
        file.read_exact_at(&mut buf[..want], at + done)?;
        out.write_all(&buf[..want])?;
        done += want as u64;
    }
    Ok(())
}

/// Spools the content of listed files that the top-down reading skipped (a hardlink kept a
/// replaced file alive), reading their layers again.
fn spool_missing(
    image: &Image,
    plan: &Plan<'_>,
    listing: &[Listed],
    spool: &mut Spool,
    settings: &Settings,
) -> Result<()> {
    let verify = settings.verify;
    let mut missing: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for s in listing.iter().filter_map(|e| e.content) {
        let r = plan.record(s);
        if r.size > 0 && r.data_at.is_none() && spool.offset(s).is_none() {
            missing.entry(s.layer).or_default().insert(s.entry);
        }
    }
    for (layer, wanted) in missing {
        let index = layer as usize;
        let how = Reading {
            verify,
            export_rules: false,
            cancel: settings.cancel.clone(),
        };
        let measured = read_layer(image, index, &how, &mut (), &mut |item| {
            if wanted.contains(&item.number) {
                let s = Source {
                    layer,
                    entry: item.number,
                };
                spool.keep(s, item.header.size, item.data)?;
            }
            Ok(())
        })?;
        if verify {
            measured
                .verify(&image.layers[index].expected)
                .map_err(|e| e.in_layer(&image.layer_ref(index)))?;
        }
    }
    Ok(())
}

/// File contents of compressed layers, kept for writing a tar after the plan is made.
struct Spool {
    file: std::fs::File,
    len: u64,
    at: std::collections::HashMap<Source, u64>,
}

impl Spool {
    fn new(file: std::fs::File) -> Spool {
        Spool {
            file,
            len: 0,
            at: Default::default(),
        }
    }

    /// Where the content of `s` is, if kept.
    fn offset(&self, s: Source) -> Option<u64> {
        self.at.get(&s).copied()
    }

    fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// Appends the content of `s`, `size` bytes (a sparse file's holes stay holes).
    fn keep(&mut self, s: Source, size: u64, data: Data<'_>) -> Result<()> {
        match data {
            Data::Whole(r) => self.put(0, r, size)?,
            Data::Sparse { map, pieces } => {
                for p in &map.pieces {
                    self.put(p.offset, pieces, p.len)?;
                }
            }
        }
        self.at.insert(s, self.len);
        self.len += size;
        Ok(())
    }

    /// Writes `len` bytes of `body` at `at` past the spool's end, straight from the reader's
    /// buffer (with digests checked, the chunk that was hashed).
    fn put(&mut self, at: u64, body: &mut dyn BufRead, len: u64) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let mut done = 0u64;
        while done < len {
            let next = body
                .fill_buf()
                .map_err(|e| Error::io("cannot read entry data", e))?;
            if next.is_empty() {
                return Err(Error::input(format!(
                    "the layer ends inside this file: {done} of {len} bytes"
                )));
            }
            let n = next.len().min((len - done) as usize);
            self.file
                .write_all_at(&next[..n], self.len + at + done)
                .map_err(|e| Error::io("cannot spool entry data", e))?;
            body.consume(n);
            done += n as u64;
        }
        Ok(())
    }
}

/// Spools a surviving file's content; a plain layer's file, read in place, is copied from
/// there when the tar is written instead.
impl Keep for Spool {
    fn keep(
        &mut self,
        _: &Upper,
        _: UpperId,
        _: &RelPath,
        h: &Header,
        source: Source,
        body: Body<'_>,
    ) -> Result<bool> {
        let data = match body {
            Body::Range { .. } => return Ok(false),
            Body::Stream(r) => Data::Whole(r),
            Body::Sparse { map, pieces } => Data::Sparse { map, pieces },
        };
        Spool::keep(self, source, h.size, data)?;
        Ok(true)
    }
}
