//! The one way a layer is read, by every command: its blob opened, decoded and hashed ahead
//! on other threads, its entries walked by [`crate::tar::Archive`], each given to a visitor
//! with its number and content, and what was measured returned for the digest check.
//!
//! With digests checked, every byte a visitor sees comes from the one read that is hashed:
//! what is written is what was verified. Only a plain layer read without digests is read
//! in place, so that its files can be copied by the kernel and dead ones seeked past.

use std::fs::File;
use std::io::{BufRead, Read};

use super::ahead::{decode_ahead, plain_ahead};
use super::region::RegionReader;
use super::{sniff, Compression, Layers, Measured};
use crate::digest::Tap;
use crate::error::{Error, ErrorKind, Result};
use crate::layer::region::Region;
use crate::tar::{Archive, Data, Header, Source, SparseMap};
use crate::Observer;

/// How to read a layer.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// Hash the blob and its tar stream for the digest check. Without it, a plain layer
    /// that lies whole in a file here is read in place.
    pub verify: bool,
    /// Keep only what `docker export` keeps of each header: whole-second mtimes, no atime,
    /// no xattr but `security.capability`.
    pub export_rules: bool,
    /// Stops the reading between entries when cancelled.
    pub cancel: crate::Cancel,
}

/// One entry of a layer, as given to a visitor.
pub struct Item<'e> {
    /// The entry's number in its layer, from 0; headers that are not entries (PAX, GNU long
    /// names) are not counted.
    pub number: u32,
    pub header: Header,
    /// Where the content lies in the layer's file, when the layer is read in place and the
    /// content is stored whole: it may be copied from there instead of read from `data`.
    pub in_place: Option<(&'e Region, u64)>,
    /// The content (what the visitor leaves unread is skipped).
    pub data: Data<'e>,
}

/// Where a new file's content comes from.
pub enum Body<'a> {
    /// Read it from a stream (a decoded layer).
    Stream(&'a mut dyn BufRead),
    /// Copy it, in the kernel, from this offset of a file (a plain layer read in place).
    Range { file: &'a File, offset: u64 },
    /// A sparse file: its pieces read in order from `pieces`, each written where the map
    /// says; the holes between them are left as holes.
    Sparse {
        map: &'a SparseMap,
        pieces: &'a mut dyn BufRead,
    },
}

impl<'e> Item<'e> {
    /// The content as it is best copied: from where it lies when read in place, else from
    /// the stream (a sparse file's pieces with their map).
    pub fn body(in_place: Option<(&'e Region, u64)>, data: Data<'e>) -> Body<'e> {
        match (in_place, data) {
            (Some((region, at)), _) => Body::Range {
                file: &region.file,
                offset: region.offset + at,
            },
            (None, Data::Whole(r)) => Body::Stream(r),
            (None, Data::Sparse { map, pieces }) => Body::Sparse { map, pieces },
        }
    }
}

/// Told of each entry of a layer.
pub type Visit<'a> = dyn FnMut(Item<'_>) -> Result<()> + 'a;

/// Where layer `index` lies when it is an uncompressed tar in one file here.
pub fn plain_region(layers: &dyn Layers, index: usize) -> Result<Option<Region>> {
    let Some(region) = layers.region(index)? else {
        return Ok(None);
    };
    let mut head = Vec::with_capacity(8);
    RegionReader::new(region.clone())
        .take(8)
        .read_to_end(&mut head)
        .map_err(|e| Error::io("cannot read layer", e).with_kind(ErrorKind::Input))?;
    Ok((sniff(&head)? == Compression::None).then_some(region))
}

/// Reads layer `index` of `layers`, giving each entry to `visit`, and returns what was
/// measured (the caller checks it with [`Measured::verify`]). Errors name the layer and,
/// where there is one, the entry.
pub fn read_layer(
    layers: &dyn Layers,
    index: usize,
    how: &Reading,
    observer: &mut dyn Observer,
    visit: &mut Visit<'_>,
) -> Result<Measured> {
    let layer = layers.layer_ref(index);
    let in_place = if how.verify {
        None
    } else {
        plain_region(layers, index).map_err(|e| e.in_layer(&layer))?
    };
    match in_place {
        Some(region) => read_in_place(&region, how, observer, visit),
        None => read_stream(layers, index, how, observer, visit),
    }
    .map_err(|e| e.in_layer(&layer))
}

/// A plain layer without digests: headers read with seeks, dead content seeked past,
/// progress told by the entries' positions.
fn read_in_place(
    region: &Region,
    how: &Reading,
    observer: &mut dyn Observer,
    visit: &mut Visit<'_>,
) -> Result<Measured> {
    let mut src = RegionReader::new(region.clone());
    let mut told = 0u64;
    walk(&mut src, how, Some(region), visit, &mut |at| {
        observer.advance(at.saturating_sub(told));
        told = told.max(at);
    })?;
    observer.advance(region.len.saturating_sub(told));
    let (digest, _) = Tap::counting().result();
    Ok(Measured {
        compression: Compression::None,
        blob: digest.clone(),
        blob_size: region.len,
        diff_id: digest,
        size: region.len,
    })
}

/// Any layer as one stream: the blob read and hashed on one thread, inflated on another,
/// the tar stream hashed and walked on this one.
fn read_stream(
    layers: &dyn Layers,
    index: usize,
    how: &Reading,
    observer: &mut dyn Observer,
    visit: &mut Visit<'_>,
) -> Result<Measured> {
    let expected = layers.expected(index);
    let blob = Progress {
        inner: layers.open(index)?,
        observer,
    };
    // A plain blob is its own tar: read and hashed once, with no decoding stage.
    let plain = super::algo(&expected.blob) == super::algo(&expected.diff_id)
        && plain_region(layers, index)?.is_some();
    std::thread::scope(|scope| {
        let mut ahead = if plain {
            plain_ahead(scope, Box::new(blob), &expected, how.verify)
        } else {
            decode_ahead(scope, Box::new(blob), &expected, how.verify)
        };
        match walk(&mut ahead, how, None, visit, &mut |_| {}) {
            Ok(()) => ahead.finish(),
            Err(e) => {
                ahead.abort();
                Err(e)
            }
        }
    })
}

/// Walks the entries of one layer's tar stream.
fn walk(
    src: &mut dyn Source,
    how: &Reading,
    region: Option<&Region>,
    visit: &mut Visit<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut archive = Archive::new(src);
    let mut number = 0u32;
    while let Some(entry) = archive.next_entry()? {
        how.cancel.check(|| "interrupted".into())?;
        let mut header = entry.header;
        if how.export_rules {
            header.meta.mtime.nanos = 0;
            header.meta.atime = None;
            header
                .meta
                .xattrs
                .retain(|(k, _)| k == b"security.capability");
        }
        if let Some(at) = entry.data_at {
            progress(at + header.size);
        }
        let in_place = region.zip(entry.data_at);
        let done = visit(Item {
            number,
            header,
            in_place,
            data: archive.data(),
        });
        done.map_err(|e| e.at_entry(archive.last_name()))?;
        number += 1;
    }
    Ok(())
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
