//! Step 1: reading the layers from the top, keeping each file whose content no layer above
//! deletes or replaces.

use super::{Counts, Layers};
use crate::error::Result;
use crate::layer::read::{read_each, Body, Item, LayerVisitor, Reading};
use crate::layer::Measured;
use crate::merge::plan::{Record, Source};
use crate::merge::upper::{Upper, UpperId, UPPER_ROOT};
use crate::merge::{classify, Change, RelPath};
use crate::tar::{Header, Kind};
use crate::Observer;

/// Where step 1 keeps the content of the files that no layer above hides: each output has
/// its own (the directory writes them at their paths, the tar output spools them, the
/// listing keeps nothing).
pub trait Keep {
    /// Keeps the content of file `h`, named `path` (node `id` of `upper`) by entry `source`.
    /// Returns whether it was kept; a file not kept is counted as skipped, and an output
    /// that needs it after all reads it again.
    fn keep(
        &mut self,
        upper: &Upper,
        id: UpperId,
        path: &RelPath,
        h: &Header,
        source: Source,
        body: Body<'_>,
    ) -> Result<bool>;

    /// Makes symlink `h` to `to`, named `path` (node `id` of `upper`) by entry `source`,
    /// now, where the output allows it; returns whether it did. By default nothing is made:
    /// the output makes every symlink from the plan, after the reading.
    fn keep_symlink(
        &mut self,
        _upper: &Upper,
        _id: UpperId,
        _path: &RelPath,
        _h: &Header,
        _to: &[u8],
        _source: Source,
    ) -> Result<bool> {
        Ok(false)
    }
}

/// Keeps nothing: only the headers are wanted (a listing).
impl Keep for () {
    fn keep(
        &mut self,
        _: &Upper,
        _: UpperId,
        _: &RelPath,
        _: &Header,
        _: Source,
        _: Body<'_>,
    ) -> Result<bool> {
        Ok(false)
    }
}

/// Step 1: reading layers from the top.
pub(super) struct Reader<K> {
    /// Where content goes.
    pub(super) keep: K,
    pub(super) cancel: crate::Cancel,
    pub(super) upper: Upper,
    pub(super) records: Vec<Vec<Record>>,
    pub(super) export_rules: bool,
    pub(super) out: Counts,
}

impl<K: Keep> Reader<K> {
    /// Reads every layer, top first, through the one layer reader (the next one decoded
    /// while this one is walked), noting each entry and writing (or spooling) the content
    /// of files that no layer above hides; each layer checked against its digests.
    pub(super) fn read_all(
        &mut self,
        layers: &dyn Layers,
        verify: bool,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let how = Reading {
            verify,
            export_rules: self.export_rules,
            cancel: self.cancel.clone(),
        };
        let order: Vec<usize> = (0..layers.count()).rev().collect();
        let mut visitor = Visitor {
            reader: self,
            layers,
            verify,
        };
        read_each(layers, &order, &how, observer, &mut visitor)
    }

    /// Notes one entry (and places its content) and returns its record.
    fn entry(&mut self, index: usize, item: Item<'_>) -> Result<Record> {
        let Item {
            number,
            header,
            in_place,
            data,
        } = item;
        let body = Item::body(in_place, data);
        self.out.entries += 1;
        let change = classify(&header.name)?;
        let source = Source {
            layer: index as u32,
            entry: number,
        };
        let is_dir = header.kind == Kind::Dir;
        // The node of the path the entry names, looked up once.
        let id = match &change {
            Change::Put(p) | Change::Whiteout(p) | Change::Opaque(p) | Change::AufsLink(p) => {
                self.upper.node(p)
            }
            Change::AufsMeta => UPPER_ROOT,
        };
        match &change {
            Change::Put(p) => {
                let masked = self.upper.masked(id, index, is_dir);
                self.upper.note_entry(id, index, is_dir);
                match header.kind {
                    Kind::File if masked || !self.place(id, p, &header, source, body)? => {
                        self.out.skipped += header.size;
                    }
                    // A symlink that no layer above hides is final: made now, it costs the
                    // end of the run nothing.
                    Kind::Symlink(ref to) if !masked => {
                        self.keep
                            .keep_symlink(&self.upper, id, p, &header, to, source)?;
                    }
                    _ => {}
                }
            }
            // Not a path of the tree: not noted, so it masks nothing.
            Change::AufsLink(p) if header.kind == Kind::File => {
                if self.upper.masked(id, index, false)
                    || !self.place(id, p, &header, source, body)?
                {
                    self.out.skipped += header.size;
                }
            }
            Change::Whiteout(_) => {
                self.out.whiteouts += 1;
                self.upper.note_whiteout(id, index);
            }
            Change::Opaque(_) => {
                self.out.whiteouts += 1;
                self.upper.note_opaque(id, index);
            }
            Change::AufsLink(_) | Change::AufsMeta => {}
        }
        let mut record = Record::new(&change, id, header.kind, header.size, header.meta);
        record.data_at = in_place.map(|(_, at)| at);
        Ok(record)
    }

    /// Keeps a file that no layer above hides.
    fn place(
        &mut self,
        id: UpperId,
        path: &RelPath,
        h: &Header,
        source: Source,
        body: Body<'_>,
    ) -> Result<bool> {
        let kept = self.keep.keep(&self.upper, id, path, h, source, body)?;
        if kept {
            self.out.written += h.size;
        }
        Ok(kept)
    }
}

/// The reader as the layer reader's visitor: entries noted, each layer's records kept and
/// its digests checked at its end.
struct Visitor<'r, 'l, K> {
    reader: &'r mut Reader<K>,
    layers: &'l dyn Layers,
    verify: bool,
}

impl<K: Keep> LayerVisitor for Visitor<'_, '_, K> {
    fn entry(&mut self, index: usize, item: Item<'_>) -> Result<()> {
        let record = self.reader.entry(index, item)?;
        self.reader.records[index].push(record);
        Ok(())
    }

    fn done(&mut self, index: usize, measured: Measured) -> Result<()> {
        if self.verify {
            measured
                .verify(&self.layers.expected(index))
                .map_err(|e| e.in_layer(&self.layers.layer_ref(index)))?;
        }
        self.reader.out.bytes += measured.size;
        Ok(())
    }
}
