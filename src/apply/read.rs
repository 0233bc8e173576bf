//! Step 1: reading the layers from the top, writing each file whose content no layer above
//! deletes or replaces.

use std::io::Read;
use std::sync::atomic::Ordering;

use super::{Disk, Layers, Outcome, INTERRUPTED};
use crate::error::{Error, ErrorKind, Result};
use crate::fs::resolve::show;
use crate::fs::{Body, Target};
use crate::image::store::Region;
use crate::layer::ahead::decode_ahead;
use crate::layer::entry::{read_header, Header, Kind, Parsed};
use crate::layer::region::RegionReader;
use crate::layer::{sniff, Compression, Decoded, Expected, Measured, PadToBlock};
use crate::merge::plan::{Record, Source};
use crate::merge::upper::{Upper, UpperId, UPPER_ROOT};
use crate::merge::{classify, Change, RelPath};
use crate::Observer;

/// What step 1 does with the content of the files it reads.
pub(crate) enum Keep {
    /// Writes it at its path (directory output).
    Target(Target),
    /// Copies it into a spool, by entry (tar output). Plain layers are not copied: their
    /// content is read in place when the tar is written.
    Spool(Spool),
    /// Nothing: only the headers are wanted (a listing).
    Nothing,
}

/// File contents of compressed layers, kept for writing a tar after the plan is made.
pub(crate) struct Spool {
    file: std::fs::File,
    len: u64,
    at: std::collections::HashMap<Source, u64>,
}

impl Spool {
    pub(crate) fn new(file: std::fs::File) -> Spool {
        Spool {
            file,
            len: 0,
            at: Default::default(),
        }
    }

    /// Where the content of `s` is, if kept.
    pub(crate) fn offset(&self, s: Source) -> Option<u64> {
        self.at.get(&s).copied()
    }

    pub(crate) fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// Appends the content of `s`.
    pub(crate) fn keep(&mut self, s: Source, size: u64, body: &mut dyn Read) -> Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &self.file);
        w.seek(SeekFrom::Start(self.len))
            .map_err(|e| Error::io("cannot write the spool", e))?;
        let n = std::io::copy(&mut body.take(size), &mut w)
            .map_err(|e| Error::io("cannot spool entry data", e))?;
        w.flush()
            .map_err(|e| Error::io("cannot write the spool", e))?;
        if n < size {
            return Err(Error::input(format!(
                "the layer ends inside this file: {n} of {size} bytes"
            )));
        }
        self.at.insert(s, self.len);
        self.len += n;
        Ok(())
    }
}

/// Step 1: reading layers from the top.
pub(super) struct Reader {
    /// Where content goes.
    pub(super) keep: Keep,
    pub(super) upper: Upper,
    /// What is on disk at each node of `upper`.
    pub(super) disk: Vec<Disk>,
    pub(super) records: Vec<Vec<Record>>,
    pub(super) export_rules: bool,
    pub(super) out: Outcome,
}

/// Where layer `index` lies when it is an uncompressed tar in one file here.
pub(crate) fn plain(layers: &dyn Layers, index: usize) -> Result<Option<Region>> {
    let Some(region) = layers.region(index)? else {
        return Ok(None);
    };
    let mut head = [0u8; 8];
    let n = read_full(&mut RegionReader::new(region.clone()), &mut head)
        .map_err(|e| Error::io("cannot read layer", e).with_kind(ErrorKind::Input))?;
    Ok((sniff(&head[..n])? == Compression::None).then_some(region))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Told of each entry: its number, header, content, and where the content lies in the layer.
type EntryFn<'a> = dyn FnMut(u32, Header, &mut dyn Read, Option<u64>) -> Result<()> + 'a;

/// Reads the entries of one uncompressed layer, calling `each` with the entry's number (as
/// in [`Source::entry`]), its header, its content and where that lies in the layer. Entries that carry nothing for the tree
/// (PAX global headers) are not numbered. Content `each` does not read is skipped (by a seek,
/// where the archive was opened with seeks).
pub(crate) fn for_each_entry<R: Read>(
    entries: std::io::Result<tar::Entries<'_, R>>,
    export_rules: bool,
    each: &mut EntryFn<'_>,
) -> Result<Option<DataEnd>> {
    let entries = entries
        .map_err(|e| Error::io("cannot read the layer as tar", e).with_kind(ErrorKind::Input))?;
    let mut last: Vec<u8> = Vec::new();
    let mut number = 0u32;
    let mut end = None;
    for entry in entries {
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err(Error::new(ErrorKind::Interrupted, "interrupted"));
        }
        let mut entry = entry.map_err(|e| {
            let after = if last.is_empty() {
                "at its start".to_owned()
            } else {
                format!("after entry {}", show(&last))
            };
            Error::io(format!("corrupt tar {after}"), e).with_kind(ErrorKind::Input)
        })?;
        last = entry.path_bytes().into_owned();
        let name = last.clone();
        let mut header = match read_header(&mut entry).map_err(|e| e.at_entry(&name))? {
            Parsed::Entry(h) => h,
            Parsed::Skip => continue,
        };
        if export_rules {
            header.meta.mtime.nanos = 0;
            header.meta.atime = None;
            header
                .meta
                .xattrs
                .retain(|(k, _)| k == b"security.capability");
        }
        // Where the content lies in the layer, unless the tar stores it in pieces.
        let data_at =
            (!entry.header().entry_type().is_gnu_sparse()).then(|| entry.raw_file_position());
        if let Some(at) = data_at {
            end = Some(DataEnd {
                at: at + header.size,
                size: header.size,
                name: name.clone(),
            });
        }
        each(number, header, &mut entry, data_at).map_err(|e| e.at_entry(&name))?;
        number += 1;
    }
    Ok(end)
}

/// Where the content of a layer's last entry ends, to tell a layer cut inside it from one
/// that only lacks the padding after it (umoci 0.4.7 writes those).
pub(crate) struct DataEnd {
    at: u64,
    size: u64,
    name: Vec<u8>,
}

impl DataEnd {
    /// An error if the layer, `len` bytes long, ends before this entry's content does.
    pub(crate) fn check(end: Option<DataEnd>, len: u64) -> Result<()> {
        match end {
            Some(e) if e.at > len => Err(Error::input(format!(
                "the layer ends inside this file: {} of {} bytes",
                e.size - (e.at - len).min(e.size),
                e.size
            ))
            .at_entry(&e.name)),
            _ => Ok(()),
        }
    }
}

impl Reader {
    /// A compressed layer (or one the store cannot seek in): decoded and hashed on another
    /// thread, ahead of the writer.
    pub(super) fn read_compressed_layer(
        &mut self,
        layers: &dyn Layers,
        index: usize,
        expected: &Expected,
        verify: bool,
        observer: &mut dyn Observer,
    ) -> Result<Measured> {
        let blob = Progress {
            inner: layers.open(index)?,
            observer,
        };
        std::thread::scope(|scope| {
            let mut ahead = decode_ahead(scope, Box::new(blob), expected, verify);
            let mut padded = PadToBlock::new(&mut ahead);
            let read = {
                let mut archive = tar::Archive::new(&mut padded);
                self.read_layer(index, archive.entries(), None, None)
            };
            let read = read.and_then(|end| match padded.real_len() {
                Some(len) => DataEnd::check(end, len),
                None => Ok(()),
            });
            match read {
                Ok(()) => ahead.finish(),
                Err(e) => {
                    ahead.abort();
                    Err(e)
                }
            }
        })
    }

    /// An uncompressed layer the store can seek in: read for its entries, seeking past the
    /// content of dead files, while another thread hashes the whole blob when it must be
    /// checked.
    pub(super) fn read_plain_layer(
        &mut self,
        layers: &dyn Layers,
        index: usize,
        region: Region,
        expected: &Expected,
        verify: bool,
        observer: &mut dyn Observer,
    ) -> Result<Measured> {
        // Progress is told by whoever reads the whole blob: the hashing thread, or else the
        // entries as they are read.
        let (hashing, reading) = if verify {
            (Some(observer), None)
        } else {
            (None, Some(observer))
        };
        std::thread::scope(|scope| {
            let hasher = hashing.map(|observer| {
                let raw = layers.open(index);
                scope.spawn(move || -> Result<Measured> {
                    let blob = Progress {
                        inner: raw?,
                        observer,
                    };
                    let mut d = Decoded::hashing(Box::new(blob), expected, true)?;
                    std::io::copy(d.reader(), &mut std::io::sink()).map_err(|e| {
                        Error::io("cannot read layer", e).with_kind(ErrorKind::Input)
                    })?;
                    d.finish()
                })
            });
            let mut blob = RegionReader::new(region.clone());
            let mut archive = tar::Archive::new(&mut blob);
            let read = self
                .read_layer(index, archive.entries_with_seek(), Some(&region), reading)
                .and_then(|end| DataEnd::check(end, region.len));
            let measured = match hasher {
                Some(h) => h.join().unwrap_or_else(|_| {
                    Err(Error::new(ErrorKind::Io, "the hashing thread panicked"))
                }),
                None => {
                    let size = region.len;
                    let (digest, _) = crate::digest::Tap::counting().result();
                    Ok(Measured {
                        compression: Compression::None,
                        blob: digest.clone(),
                        blob_size: size,
                        diff_id: digest,
                        size,
                    })
                }
            };
            // A corrupt tar is reported where it breaks, before a digest mismatch.
            read?;
            measured
        })
    }

    /// Reads one layer's entries; `region` is where a plain layer lies, for copying file
    /// contents in the kernel.
    fn read_layer<R: Read>(
        &mut self,
        index: usize,
        entries: std::io::Result<tar::Entries<'_, R>>,
        region: Option<&Region>,
        mut progress: Option<&mut dyn Observer>,
    ) -> Result<Option<DataEnd>> {
        let mut records = Vec::new();
        let export_rules = self.export_rules;
        let mut told = 0u64;
        let end = for_each_entry(
            entries,
            export_rules,
            &mut |number, header, stream, data_at| {
                if let (Some(p), Some(at)) = (progress.as_deref_mut(), data_at) {
                    let now = at + header.size;
                    p.advance(now.saturating_sub(told));
                    told = told.max(now);
                }
                let body = match (region, data_at) {
                    (Some(r), Some(at)) => Body::Range {
                        file: &r.file,
                        offset: r.offset + at,
                    },
                    _ => Body::Stream(stream),
                };
                self.out.entries += 1;
                let change = classify(&header.name)?;
                let source = Source {
                    layer: index as u32,
                    entry: number,
                };
                let is_dir = header.kind == Kind::Dir;
                match &change {
                    Change::Put(p) => {
                        let id = self.upper.node(p);
                        let masked = self.upper.masked(id, index, is_dir);
                        self.upper.note_entry(id, index, is_dir);
                        if header.kind == Kind::File
                            && (masked || !self.place(id, p, &header, source, body)?)
                        {
                            self.out.skipped += header.size;
                        }
                    }
                    // Not a path of the tree: not noted, so it masks nothing.
                    Change::AufsLink(p) if header.kind == Kind::File => {
                        let id = self.upper.node(p);
                        if self.upper.masked(id, index, false)
                            || !self.place(id, p, &header, source, body)?
                        {
                            self.out.skipped += header.size;
                        }
                    }
                    Change::Whiteout(p) => {
                        self.out.whiteouts += 1;
                        let id = self.upper.node(p);
                        self.upper.note_whiteout(id, index);
                    }
                    Change::Opaque(p) => {
                        self.out.whiteouts += 1;
                        let id = self.upper.node(p);
                        self.upper.note_opaque(id, index);
                    }
                    Change::AufsLink(_) | Change::AufsMeta => {}
                }
                let node = match &change {
                    Change::Put(p)
                    | Change::Whiteout(p)
                    | Change::Opaque(p)
                    | Change::AufsLink(p) => self.upper.node(p),
                    Change::AufsMeta => UPPER_ROOT,
                };
                let mut record = Record::new(&change, node, header.kind, header.size, header.meta);
                record.data_at = region.and(data_at);
                records.push(record);
                Ok(())
            },
        )?;
        self.records[index] = records;
        Ok(end)
    }

    /// Writes a file that no layer above hides, at its path as named, if what is already on
    /// disk allows it: parents that are directories (or missing), and at the path nothing or
    /// an earlier entry of the same layer. Returns whether it was written.
    fn place(
        &mut self,
        id: UpperId,
        path: &RelPath,
        h: &Header,
        source: Source,
        body: Body<'_>,
    ) -> Result<bool> {
        let target = match &mut self.keep {
            Keep::Target(t) => t,
            Keep::Spool(spool) => {
                return match body {
                    // Read in place when the tar is written.
                    Body::Range { .. } => Ok(false),
                    Body::Stream(r) => {
                        spool.keep(source, h.size, r)?;
                        self.out.written += h.size;
                        Ok(true)
                    }
                };
            }
            Keep::Nothing => return Ok(false),
        };
        if path.is_root() {
            return Ok(false);
        }
        self.disk.resize(self.upper.len(), Disk::Absent);
        let mut cur = id;
        while cur != UPPER_ROOT {
            cur = self.upper.parent(cur);
            if let Disk::File(_) = self.disk[cur as usize] {
                return Ok(false);
            }
        }
        let replace = match self.disk[id as usize] {
            Disk::Absent => false,
            Disk::File(s) if s.layer == source.layer => true,
            Disk::File(_) | Disk::Dir => return Ok(false),
        };
        target.write_at(path, &h.meta, h.size, body, replace)?;
        self.out.written += h.size;
        self.disk[id as usize] = Disk::File(source);
        let mut cur = id;
        while cur != UPPER_ROOT {
            cur = self.upper.parent(cur);
            self.disk[cur as usize] = Disk::Dir;
        }
        Ok(true)
    }
}

struct Progress<'a> {
    inner: Box<dyn Read + Send + 'a>,
    observer: &'a mut dyn Observer,
}

impl Read for Progress<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observer.advance(n as u64);
        Ok(n)
    }
}
