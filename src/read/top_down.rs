//! Step 1: reading the layers from the top, writing each file whose content no layer above
//! deletes or replaces.

use std::io::Read;

use super::{Disk, Layers, Outcome};
use crate::error::{Error, Result};
use crate::fs::{Body, Target};
use crate::layer::read::{read_layer, Item, Reading};
use crate::layer::Measured;
use crate::merge::plan::{Record, Source};
use crate::merge::upper::{Upper, UpperId, UPPER_ROOT};
use crate::merge::{classify, Change, RelPath};
use crate::tar::{Data, Header, Kind};
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

    /// Appends the content of `s`, `size` bytes (a sparse file's holes stay holes).
    pub(crate) fn keep(&mut self, s: Source, size: u64, data: Data<'_>) -> Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &self.file);
        let mut put = |at: u64, body: &mut dyn Read, len: u64| -> Result<()> {
            w.seek(SeekFrom::Start(self.len + at))
                .map_err(|e| Error::io("cannot write the spool", e))?;
            let n = std::io::copy(&mut body.take(len), &mut w).map_err(|e| {
                let what = match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => "cannot read entry data",
                    _ => "cannot spool entry data",
                };
                Error::io(what, e)
            })?;
            if n < len {
                return Err(Error::input(format!(
                    "the layer ends inside this file: {n} of {len} bytes"
                )));
            }
            Ok(())
        };
        match data {
            Data::Whole(r) => put(0, r, size)?,
            Data::Sparse { map, pieces } => {
                for p in &map.pieces {
                    put(p.offset, pieces, p.len)?;
                }
            }
        }
        w.flush()
            .map_err(|e| Error::io("cannot write the spool", e))?;
        drop(w);
        self.at.insert(s, self.len);
        self.len += size;
        Ok(())
    }
}

/// Step 1: reading layers from the top.
pub(super) struct Reader {
    /// Where content goes.
    pub(super) keep: Keep,
    pub(super) cancel: crate::Cancel,
    pub(super) upper: Upper,
    /// What is on disk at each node of `upper`.
    pub(super) disk: Vec<Disk>,
    pub(super) records: Vec<Vec<Record>>,
    pub(super) export_rules: bool,
    pub(super) out: Outcome,
}

impl Reader {
    /// Reads layer `index` through the one layer reader, noting each entry and writing (or
    /// spooling) the content of files that no layer above hides.
    pub(super) fn read_layer(
        &mut self,
        layers: &dyn Layers,
        index: usize,
        verify: bool,
        observer: &mut dyn Observer,
    ) -> Result<Measured> {
        let how = Reading {
            verify,
            export_rules: self.export_rules,
            cancel: self.cancel.clone(),
        };
        let mut records = Vec::new();
        let measured = read_layer(layers, index, &how, observer, &mut |item| {
            let record = self.entry(index, item)?;
            records.push(record);
            Ok(())
        })?;
        self.records[index] = records;
        Ok(measured)
    }

    /// Notes one entry (and places its content) and returns its record.
    fn entry(&mut self, index: usize, item: Item<'_>) -> Result<Record> {
        let Item {
            number,
            header,
            in_place,
            data,
        } = item;
        let body = match (in_place, data) {
            (Some((region, at)), _) => Body::Range {
                file: &region.file,
                offset: region.offset + at,
            },
            (None, Data::Whole(r)) => Body::Stream(r),
            (None, Data::Sparse { map, pieces }) => Body::Sparse { map, pieces },
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
            Change::Put(p) | Change::Whiteout(p) | Change::Opaque(p) | Change::AufsLink(p) => {
                self.upper.node(p)
            }
            Change::AufsMeta => UPPER_ROOT,
        };
        let mut record = Record::new(&change, node, header.kind, header.size, header.meta);
        record.data_at = in_place.map(|(_, at)| at);
        Ok(record)
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
                let data = match body {
                    // Read in place when the tar is written.
                    Body::Range { .. } => return Ok(false),
                    Body::Stream(r) => Data::Whole(r),
                    Body::Sparse { map, pieces } => Data::Sparse { map, pieces },
                };
                spool.keep(source, h.size, data)?;
                self.out.written += h.size;
                return Ok(true);
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
