//! The one way a layer is read, by every command: its blob opened, decoded and hashed ahead
//! on other threads, its entries walked by [`crate::tar::Archive`], each given to a visitor
//! with its number and content, and what was measured returned for the digest check.
//!
//! With digests checked, every byte a visitor sees comes from the one read that is hashed:
//! what is written is what was verified. Only a plain layer read without digests is read
//! in place, so that its files can be copied by the kernel and dead ones seeked past.

use std::fs::File;
use std::io::{BufRead, Read};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::Scope;

use super::ahead::{decode_ahead, plain_ahead, Ahead, Hashing};
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
    struct One<'v, 'a> {
        visit: &'v mut Visit<'a>,
        measured: Option<Measured>,
    }
    impl LayerVisitor for One<'_, '_> {
        fn entry(&mut self, _: usize, item: Item<'_>) -> Result<()> {
            (self.visit)(item)
        }
        fn done(&mut self, _: usize, measured: Measured) -> Result<()> {
            self.measured = Some(measured);
            Ok(())
        }
    }
    let mut one = One {
        visit,
        measured: None,
    };
    read_each(layers, &[index], how, observer, &mut one)?;
    one.measured
        .ok_or_else(|| Error::new(ErrorKind::Io, "the layer was not read"))
}

/// Told of each entry of several layers, and of each layer's end.
pub trait LayerVisitor {
    /// An entry of layer `index`.
    fn entry(&mut self, index: usize, item: Item<'_>) -> Result<()>;
    /// Layer `index` was read whole; what was measured (not yet checked).
    fn done(&mut self, index: usize, measured: Measured) -> Result<()>;
}

/// Reads the layers in `order` as [`read_layer`] reads one, the next one's decoding started
/// while this one is walked: at each layer's end the inflater goes on to the next instead
/// of waiting for the walk to drain what it decoded. Memory stays bounded by the chunks in
/// flight of two layers. The observer hears `layer_start`, `advance` and `layer_done`.
pub fn read_each(
    layers: &dyn Layers,
    order: &[usize],
    how: &Reading,
    observer: &mut dyn Observer,
    visitor: &mut dyn LayerVisitor,
) -> Result<()> {
    let count = layers.count();
    std::thread::scope(|scope| {
        let mut next = None;
        for (k, &index) in order.iter().enumerate() {
            let current = next
                .take()
                .unwrap_or_else(|| start(scope, layers, index, how));
            let following = order.get(k + 1).copied();
            observer.layer_start(index, count, layers.size(index));
            let layer = layers.layer_ref(index);
            // The next layer starts decoding once this one's decoding is done (a layer that
            // cannot even be opened says so when its turn comes).
            let mut early = None;
            let read = current.and_then(|c| {
                c.run(
                    how,
                    observer,
                    &mut |item| visitor.entry(index, item),
                    &mut |decoded| {
                        if decoded && early.is_none() {
                            early = following.map(|i| start(scope, layers, i, how));
                        }
                    },
                )
            });
            next = early.or_else(|| following.map(|i| start(scope, layers, i, how)));
            let measured = match read {
                Ok(m) => m,
                Err(e) => {
                    if let Some(Ok(n)) = next.take() {
                        n.abort();
                    }
                    return Err(e.in_layer(&layer));
                }
            };
            if let Err(e) = visitor.done(index, measured) {
                if let Some(Ok(n)) = next.take() {
                    n.abort();
                }
                return Err(e);
            }
            observer.layer_done(index);
        }
        Ok(())
    })
}

/// A layer whose reading has begun.
enum Started<'scope> {
    /// A plain layer without digests, read in place.
    InPlace(Region),
    /// Any layer as one stream: the blob read and hashed on one thread, inflated on
    /// another; `fetched` counts the blob's bytes read so far, for the progress bar.
    Stream {
        ahead: Ahead<'scope>,
        fetched: Arc<AtomicU64>,
    },
}

/// Begins reading layer `index`: opens it and starts its threads.
fn start<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    layers: &'env dyn Layers,
    index: usize,
    how: &Reading,
) -> Result<Started<'scope>> {
    let layer = layers.layer_ref(index);
    let begin = || -> Result<Started<'scope>> {
        if !how.verify {
            if let Some(region) = plain_region(layers, index)? {
                return Ok(Started::InPlace(region));
            }
        }
        let expected = layers.expected(index);
        let fetched = Arc::new(AtomicU64::new(0));
        let blob = Counted {
            inner: layers.open(index)?,
            count: fetched.clone(),
        };
        // A plain blob is its own tar: read and hashed once, with no decoding stage.
        let plain = super::algo(&expected.blob) == super::algo(&expected.diff_id)
            && plain_region(layers, index)?.is_some();
        let hashing = match (how.verify, layers.blob_checked(index)) {
            (false, _) => Hashing::Off,
            (true, true) => Hashing::Stream,
            (true, false) => Hashing::Both,
        };
        let ahead = if plain {
            plain_ahead(scope, Box::new(blob), &expected, hashing)
        } else {
            decode_ahead(scope, Box::new(blob), &expected, hashing)
        };
        Ok(Started::Stream { ahead, fetched })
    };
    begin().map_err(|e| e.in_layer(&layer))
}

impl Started<'_> {
    /// Walks the layer's entries to its end; what was measured. `tick` hears, between
    /// entries, whether the layer is decoded to its end.
    fn run(
        self,
        how: &Reading,
        observer: &mut dyn Observer,
        visit: &mut Visit<'_>,
        tick: &mut dyn FnMut(bool),
    ) -> Result<Measured> {
        match self {
            Started::InPlace(region) => read_in_place(&region, how, observer, visit),
            Started::Stream { mut ahead, fetched } => {
                let mut told = 0u64;
                let mut tell = |observer: &mut dyn Observer| {
                    let now = fetched.load(Ordering::Relaxed);
                    observer.advance(now.saturating_sub(told));
                    told = told.max(now);
                };
                let decoded = ahead.decoded_flag();
                let walked = walk(&mut ahead, how, None, visit, &mut |_| {
                    tell(observer);
                    tick(decoded.load(Ordering::Relaxed));
                });
                match walked {
                    Ok(()) => {
                        let measured = ahead.finish();
                        tell(observer);
                        measured
                    }
                    Err(e) => {
                        ahead.abort();
                        Err(e)
                    }
                }
            }
        }
    }

    /// Stops its threads (the reading ended before its turn).
    fn abort(self) {
        if let Started::Stream { ahead, .. } = self {
            ahead.abort();
        }
    }
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

/// Counts what is read through it (on the thread that reads the blob), for the progress
/// bar the reading thread updates.
struct Counted<'a> {
    inner: Box<dyn Read + Send + 'a>,
    count: Arc<AtomicU64>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
