//! The archive reader: header blocks, the extended headers before them (PAX `x` and `g`, GNU
//! long names), sparse maps, and each entry's content, with the position of everything so
//! that a plain layer's file can be copied from where it lies.

use std::io::{self, BufRead, Read};

use super::block::{field, Block, BLOCK};
use super::model::{Header, Kind, Meta, Timestamp};
use super::pax::{self, decimal, Keywords, XATTR};
use super::sparse::{self, Expand, Piece, SparseMap};
use crate::error::{Error, Result};

/// What an archive is read from: a stream, which may know a faster way to skip than reading,
/// and may hold what comes next in memory already (then it is written from there, not
/// copied).
pub trait Source: Read {
    /// Skips up to `n` bytes; returns how many there were (fewer only at the end).
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut buf = [0u8; 8192];
        let mut done = 0;
        while done < n {
            let want = buf.len().min((n - done) as usize);
            match self.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(k) => done += k as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Whether [`Source::peek`] lends the next bytes.
    fn lends(&self) -> bool {
        false
    }

    /// The next bytes, held in memory already (empty at the end); only where
    /// [`Source::lends`].
    fn peek(&mut self) -> io::Result<&[u8]> {
        Ok(&[])
    }

    /// Passes `n` bytes of what [`Source::peek`] lent.
    fn advance(&mut self, _n: usize) {}
}

/// Any reader, skipped by reading.
pub struct Stream<R>(pub R);

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Source for Stream<R> {}

/// The most extended header data (PAX records, GNU long names) read for one entry, and the
/// most that global headers may hold.
pub const MAX_EXTENDED: u64 = 16 << 20;

/// The content of the current entry as stored.
struct Payload<'a> {
    src: &'a mut dyn Source,
    /// Bytes consumed from `src`.
    pos: u64,
    /// Stored bytes of the current entry not yet consumed, of `stored`.
    remaining: u64,
    stored: u64,
    /// Bytes read ahead from a source that does not lend its own, not yet consumed (they
    /// are counted in `remaining`): `held[held_at..]`.
    held: Vec<u8>,
    held_at: usize,
}

/// How much is read ahead at once from a source that does not lend.
const HOLD: usize = 64 * 1024;

impl Read for Payload<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let next = self.fill_buf()?;
            let n = next.len().min(buf.len());
            buf[..n].copy_from_slice(&next[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl io::BufRead for Payload<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let limit = self.remaining.min(usize::MAX as u64) as usize;
        if limit == 0 {
            return Ok(&[]);
        }
        if self.held_at < self.held.len() {
            return Ok(&self.held[self.held_at..]);
        }
        if self.src.lends() {
            if self.src.peek()?.is_empty() {
                return Err(self.cut_short());
            }
            let next = self.src.peek()?;
            return Ok(&next[..next.len().min(limit)]);
        }
        self.held.resize(HOLD.min(limit), 0);
        self.held_at = 0;
        let n = loop {
            match self.src.read(&mut self.held) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r,
            }
        };
        let n = n.inspect_err(|_| self.held.clear())?;
        self.held.truncate(n);
        if n == 0 {
            return Err(self.cut_short());
        }
        Ok(&self.held)
    }

    fn consume(&mut self, n: usize) {
        if self.held_at < self.held.len() {
            self.held_at += n;
        } else {
            self.src.advance(n);
        }
        self.pos += n as u64;
        self.remaining -= n as u64;
    }
}

impl Payload<'_> {
    fn cut_short(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the layer ends inside this file: {} of {} bytes",
                self.stored - self.remaining,
                self.stored
            ),
        )
    }

    /// Consumes what is left of the current entry, and its padding if there is any: a
    /// stream may stop right after the last file's content (umoci 0.4.7 writes such layers).
    fn finish(&mut self) -> io::Result<()> {
        let held = (self.held.len() - self.held_at) as u64;
        self.held.clear();
        self.held_at = 0;
        self.pos += held;
        self.remaining -= held;
        if self.remaining > 0 {
            let n = self.src.skip(self.remaining)?;
            self.pos += n;
            self.remaining -= n;
            if self.remaining > 0 {
                return Err(self.cut_short());
            }
        }
        let pad = (BLOCK as u64 - self.pos % BLOCK as u64) % BLOCK as u64;
        if pad > 0 {
            self.pos += self.src.skip(pad)?;
        }
        Ok(())
    }

    /// The next block, or `None` where the stream ends cleanly before it.
    fn block(&mut self, buf: &mut [u8; BLOCK]) -> io::Result<Option<()>> {
        let mut n = 0;
        while n < BLOCK {
            match self.src.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += n as u64;
        match n {
            0 => Ok(None),
            BLOCK => Ok(Some(())),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the archive ends inside a header, at byte {}", self.pos),
            )),
        }
    }
}

/// One entry, as its headers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What the entry is, its name and metadata.
    pub header: Header,
    /// Where the content starts in the stream, when it is stored whole (not sparse).
    pub data_at: Option<u64>,
}

/// The content of the current entry.
pub enum Data<'b> {
    /// Stored whole, [`Header::size`] bytes.
    Whole(&'b mut dyn BufRead),
    /// A sparse file: its pieces, one after the other, each to go where the map says.
    Sparse {
        /// Where each piece goes.
        map: &'b SparseMap,
        /// The pieces, one after the other.
        pieces: &'b mut dyn BufRead,
    },
}

impl<'b> Data<'b> {
    /// The file's whole content, holes read as zeros.
    pub fn into_reader(self) -> Box<dyn Read + 'b> {
        match self {
            Data::Whole(r) => Box::new(r),
            Data::Sparse { map, pieces } => Box::new(Expand::new(map, pieces)),
        }
    }
}

/// Reads the entries of a tar stream one at a time: call [`Archive::next_entry`], then read the
/// entry's content with [`Archive::data`] if wanted (what is not read is skipped).
pub struct Archive<'a> {
    io: Payload<'a>,
    /// Global PAX keywords, for every entry after their header.
    global: Keywords,
    /// The current entry's sparse map.
    map: Option<SparseMap>,
    /// The last entry's name, to say where a broken header is.
    last: Vec<u8>,
    ended: bool,
}

impl<'a> Archive<'a> {
    /// Reads the archive that `src` starts with.
    pub fn new(src: &'a mut dyn Source) -> Archive<'a> {
        Archive {
            io: Payload {
                src,
                pos: 0,
                remaining: 0,
                stored: 0,
                held: Vec::new(),
                held_at: 0,
            },
            global: Keywords::default(),
            map: None,
            last: Vec::new(),
            ended: false,
        }
    }

    /// The name of the entry [`Archive::next_entry`] returned last, to say where an error
    /// happened.
    pub fn last_name(&self) -> &[u8] {
        &self.last
    }

    /// The content of the entry [`Archive::next_entry`] returned last.
    pub fn data(&mut self) -> Data<'_> {
        match &self.map {
            Some(map) => Data::Sparse {
                map,
                pieces: &mut self.io,
            },
            None => Data::Whole(&mut self.io),
        }
    }

    fn where_(&self) -> String {
        if self.last.is_empty() {
            "at the start of the archive".to_owned()
        } else {
            format!("after entry {}", crate::vocabulary::path::show(&self.last))
        }
    }

    fn io_error(&self, e: io::Error) -> Error {
        Error::io(format!("corrupt tar {}", self.where_()), e)
            .with_kind(crate::error::ErrorKind::Input)
    }

    /// The next entry, or `None` at the end of the archive (a zero block, or the end of the
    /// stream between entries).
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.ended {
            return Ok(None);
        }
        if let Err(e) = self.io.finish() {
            let name = self.last.clone();
            return Err(Error::io("cannot read entry data", e)
                .with_kind(crate::error::ErrorKind::Input)
                .at_entry(&name));
        }
        self.map = None;
        // An error in an extended header is told with the name of the entry it is for.
        let mut ext = Extensions {
            kw: self.global.clone(),
            ..Extensions::default()
        };
        let mut extended = false;
        let mut spent = 0u64;
        let mut raw = [0u8; BLOCK];
        loop {
            let at = self.io.pos;
            match self.io.block(&mut raw) {
                Ok(Some(())) => {}
                Ok(None) if !extended => {
                    self.ended = true;
                    return Ok(None);
                }
                Ok(None) => {
                    return Err(Error::input(format!(
                        "the archive ends after an extended header, {}",
                        self.where_()
                    )))
                }
                Err(e) => return Err(self.io_error(e)),
            }
            if raw.iter().all(|&b| b == 0) {
                if extended {
                    return Err(Error::input(format!(
                        "an extended header is followed by the end of the archive, {}",
                        self.where_()
                    )));
                }
                self.ended = true;
                return Ok(None);
            }
            let block = Block::parse(&raw)
                .map_err(|m| Error::input(format!("{m} at byte {at}, {}", self.where_())))?;
            let typeflag = block.typeflag();
            if matches!(typeflag, b'x' | b'X' | b'g' | b'L' | b'K') {
                extended = true;
                let size = block
                    .size()
                    .map_err(|m| Error::input(format!("{m} at byte {at}, {}", self.where_())))?;
                let data = self.extended(size, &mut spent)?;
                let applied = match typeflag {
                    b'g' => {
                        let mut ignored = Vec::new();
                        let applied = pax::apply(&data, &mut self.global, &mut ignored)
                            .and_then(|()| pax::apply(&data, &mut ext.kw, &mut ignored));
                        if self.global.bytes() > MAX_EXTENDED {
                            return Err(Error::input(format!(
                                "global headers holding over 16 MiB, {}",
                                self.where_()
                            )));
                        }
                        applied
                    }
                    b'L' => {
                        ext.long_name = Some(field(&data).to_vec());
                        Ok(())
                    }
                    b'K' => {
                        ext.long_link = Some(field(&data).to_vec());
                        Ok(())
                    }
                    _ => pax::apply(&data, &mut ext.kw, &mut ext.pairs),
                };
                if let Err(m) = applied {
                    ext.broken.get_or_insert(m);
                }
                continue;
            }
            if typeflag == b'V' {
                // A GNU volume label names the archive, not a file.
                self.io.remaining = block
                    .size()
                    .map_err(|m| Error::input(format!("{m} at byte {at}, {}", self.where_())))?;
                self.io.stored = self.io.remaining;
                self.io.finish().map_err(|e| self.io_error(e))?;
                continue;
            }
            let entry = self.entry(&block, at, ext);
            if let Ok(e) = &entry {
                self.last = e.header.name.clone();
            }
            return entry.map(Some);
        }
    }

    /// Reads the data of an extended header.
    /// `spent` counts the extended header bytes of this entry so far: together they may not
    /// pass [`MAX_EXTENDED`], so that a run of headers cannot grow memory without end.
    fn extended(&mut self, size: u64, spent: &mut u64) -> Result<Vec<u8>> {
        *spent = spent.saturating_add(size);
        if *spent > MAX_EXTENDED {
            return Err(Error::input(format!(
                "extended headers of {} bytes for one entry pass the 16 MiB accepted, {}",
                *spent,
                self.where_()
            )));
        }
        self.io.remaining = size;
        self.io.stored = size;
        let mut data = Vec::new();
        let read = self
            .io
            .read_to_end(&mut data)
            .and_then(|_| self.io.finish());
        read.map_err(|e| self.io_error(e))?;
        Ok(data)
    }

    /// The entry whose header is `block`, its extended headers applied.
    fn entry(&mut self, block: &Block<'_>, at: u64, ext: Extensions) -> Result<Entry> {
        let typeflag = block.typeflag();
        let name = ext.name(block);
        let bad = |m: String| Error::input(m).at_entry(&name);
        if let Some(m) = ext.broken {
            return Err(bad(m));
        }
        if name.is_empty() {
            return Err(Error::input(format!(
                "an entry without a name at byte {at}, {}",
                self.where_()
            )));
        }
        if name.contains(&0) {
            return Err(bad("the name contains a NUL byte".into()));
        }
        let meta = meta(block, &ext.kw).map_err(bad)?;
        let kind = kind(block, &ext, &name).map_err(bad)?;
        // Only files have content; the size field of the others is ignored, as Go's reader
        // (and so Docker) ignores it.
        let stored = match kind {
            Kind::File => pax_number(&ext.kw, b"size", block.size()).map_err(bad)?,
            _ => 0,
        };
        self.io.remaining = stored;
        self.io.stored = stored;
        let data_at = self.io.pos;
        let sparse = if typeflag == b'S' {
            Some(self.old_gnu_map(block, stored).map_err(bad)?)
        } else if kind == Kind::File {
            self.pax_map(&ext.kw, &ext.pairs, stored).map_err(bad)?
        } else {
            None
        };
        let size = sparse.as_ref().map_or(stored, |map| map.size);
        let data_at = sparse.is_none().then_some(data_at);
        self.map = sparse;
        Ok(Entry {
            header: Header {
                name,
                size,
                kind,
                meta,
            },
            data_at,
        })
    }

    /// The map of an old GNU sparse header and its extension blocks.
    fn old_gnu_map(
        &mut self,
        block: &Block<'_>,
        stored: u64,
    ) -> std::result::Result<SparseMap, String> {
        let (area, mut more, size) = block.gnu_sparse()?;
        let mut pieces = Vec::new();
        sparse::old_gnu_pieces(area, &mut pieces)?;
        let mut raw = [0u8; BLOCK];
        while more {
            // Extension blocks come before the data and are not counted in its size.
            match self.io.block(&mut raw) {
                Ok(Some(())) => {}
                Ok(None) => return Err("the archive ends inside a sparse header".into()),
                Err(e) => return Err(e.to_string()),
            }
            sparse::old_gnu_pieces(&raw[..504], &mut pieces)?;
            more = raw[504] != 0;
        }
        SparseMap::new(size, pieces, stored)
    }

    /// The map of a PAX sparse file (GNU formats 0.0, 0.1 and 1.0), if this is one.
    fn pax_map(
        &mut self,
        kw: &Keywords,
        pairs: &[u64],
        stored: u64,
    ) -> std::result::Result<Option<SparseMap>, String> {
        let get = |k: &str| kw.get(k.as_bytes());
        let num = |k: &str| -> std::result::Result<Option<u64>, String> {
            get(k)
                .map(|v| decimal(v).ok_or_else(|| format!("bad {k} in PAX header")))
                .transpose()
        };
        let version = (get("GNU.sparse.major"), get("GNU.sparse.minor"));
        let (pieces, size, map_len) = match version {
            (Some(b"1"), Some(b"0")) => {
                let size = num("GNU.sparse.realsize")?
                    .ok_or("a sparse file without GNU.sparse.realsize")?;
                let (pieces, used) = sparse::read_map_10(&mut self.io, stored)?;
                (pieces, size, used)
            }
            (Some(major), minor) => {
                return Err(format!(
                    "unsupported GNU sparse format {}.{}",
                    crate::vocabulary::quote::quote(major),
                    crate::vocabulary::quote::quote(minor.unwrap_or(b"?"))
                ))
            }
            (None, _) => {
                let pieces: Vec<Piece> = match get("GNU.sparse.map") {
                    Some(map) => sparse::map_01(map)?,
                    None if !pairs.is_empty() => {
                        if pairs.len() % 2 != 0 {
                            return Err("GNU.sparse.offset without its GNU.sparse.numbytes".into());
                        }
                        sparse::pairs(pairs)
                    }
                    None if get("GNU.sparse.numblocks").is_some() => Vec::new(),
                    None => return Ok(None),
                };
                if let Some(n) = num("GNU.sparse.numblocks")? {
                    if n != pieces.len() as u64 {
                        return Err(format!(
                            "GNU.sparse.numblocks says {n} pieces, the map has {}",
                            pieces.len()
                        ));
                    }
                }
                let size =
                    num("GNU.sparse.size")?.ok_or("a sparse file without GNU.sparse.size")?;
                (pieces, size, 0)
            }
        };
        SparseMap::new(size, pieces, stored - map_len).map(Some)
    }
}

/// What the extended headers before an entry said.
#[derive(Default)]
struct Extensions {
    /// PAX keywords in force: the global ones, then the entry's own.
    kw: Keywords,
    /// A PAX 0.0 sparse map's numbers, in order.
    pairs: Vec<u64>,
    /// GNU long name (`L`) and link target (`K`).
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    /// The first malformed record, told once the entry's name is known.
    broken: Option<String>,
}

impl Extensions {
    /// The entry's name: a sparse file's real name, else PAX `path`, else the GNU long name,
    /// else the header's own.
    fn name(&self, block: &Block<'_>) -> Vec<u8> {
        let file = matches!(block.typeflag(), b'0' | b'\0' | b'7' | b'S');
        let sparse_name = self.kw.get(b"GNU.sparse.name").filter(|_| file);
        sparse_name
            .or_else(|| self.kw.get(b"path"))
            .map(<[u8]>::to_vec)
            .or_else(|| self.long_name.clone())
            .unwrap_or_else(|| block.name())
    }

    /// The link target: PAX `linkpath`, else the GNU long link, else the header's own.
    fn link(&self, block: &Block<'_>) -> std::result::Result<Vec<u8>, String> {
        let target = self
            .kw
            .get(b"linkpath")
            .map(<[u8]>::to_vec)
            .or_else(|| self.long_link.clone())
            .unwrap_or_else(|| block.link_name());
        if target.is_empty() {
            return Err("link without a target".into());
        }
        if target.contains(&0) {
            return Err("link target contains a NUL byte".into());
        }
        Ok(target)
    }
}

/// A number from PAX keyword `key`, else from the header.
fn pax_number(
    kw: &Keywords,
    key: &[u8],
    header: std::result::Result<u64, String>,
) -> std::result::Result<u64, String> {
    match kw.get(key) {
        Some(v) => decimal(v).ok_or_else(|| {
            format!(
                "bad PAX {} \"{}\"",
                crate::vocabulary::quote::quote(key),
                crate::vocabulary::quote::quote(v)
            )
        }),
        None => header,
    }
}

/// Mode, owners, times and xattrs, PAX records over header fields.
fn meta(block: &Block<'_>, kw: &Keywords) -> std::result::Result<Meta, String> {
    let id = |key: &[u8], header, what: &str| {
        let v = pax_number(kw, key, header)?;
        u32::try_from(v)
            .ok()
            .filter(|&v| v != u32::MAX)
            .ok_or_else(|| format!("{what} {v} is out of range"))
    };
    let mtime = match kw.get(b"mtime") {
        Some(v) => Timestamp::parse_pax(v).ok_or("malformed PAX mtime")?,
        None => Timestamp::from_secs(block.mtime()?),
    };
    let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (attr, value) in kw.with_prefix(XATTR) {
        if attr.is_empty() || attr.contains(&0) {
            return Err("malformed xattr name in PAX header".into());
        }
        xattrs.push((attr.to_vec(), value.to_vec()));
    }
    Ok(Meta {
        mode: (block.mode()? & 0o7777) as u32,
        uid: id(b"uid", block.uid(), "uid")?,
        gid: id(b"gid", block.gid(), "gid")?,
        mtime,
        atime: kw.get(b"atime").and_then(Timestamp::parse_pax),
        xattrs,
    })
}

/// What the entry creates, by its type byte.
fn kind(block: &Block<'_>, ext: &Extensions, name: &[u8]) -> std::result::Result<Kind, String> {
    let device = || -> std::result::Result<(u32, u32), String> {
        let (major, minor) = block.device()?;
        let fit =
            |n: u64| u32::try_from(n).map_err(|_| format!("device number {n} is out of range"));
        Ok((fit(major)?, fit(minor)?))
    };
    Ok(match block.typeflag() {
        // Old (V7) archives mark directories with a trailing slash on a plain-file header.
        b'\0' if name.ends_with(b"/") => Kind::Dir,
        b'0' | b'\0' | b'7' | b'S' => Kind::File,
        b'5' => Kind::Dir,
        b'2' => Kind::Symlink(ext.link(block)?),
        b'1' => Kind::Hardlink(ext.link(block)?),
        b'3' => {
            let (major, minor) = device()?;
            Kind::CharDevice { major, minor }
        }
        b'4' => {
            let (major, minor) = device()?;
            Kind::BlockDevice { major, minor }
        }
        b'6' => Kind::Fifo,
        other => {
            return Err(format!(
                "unsupported entry type \"{}\"",
                crate::vocabulary::quote::quote(&[other])
            ))
        }
    })
}

/// Every entry of `src` with its content read whole (holes as zeros): for tests and tools.
pub fn for_each(
    src: &mut dyn Source,
    each: &mut dyn FnMut(Entry, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let mut archive = Archive::new(src);
    while let Some(entry) = archive.next_entry()? {
        let done = each(entry, &mut archive.data().into_reader());
        done.map_err(|e| e.at_entry(archive.last_name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header block.
    fn header(name: &str, typeflag: u8, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn member(name: &str, typeflag: u8, data: &[u8]) -> Vec<u8> {
        let mut m = header(name, typeflag, data.len());
        m.extend_from_slice(data);
        m.resize(m.len().div_ceil(BLOCK) * BLOCK, 0);
        m
    }

    fn names(archive: &[u8]) -> Result<Vec<String>> {
        let mut src = Stream(archive);
        let mut out = Vec::new();
        for_each(&mut src, &mut |e, _| {
            out.push(String::from_utf8_lossy(&e.header.name).into_owned());
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn extended_headers_of_one_entry_are_bounded_together() {
        let big = |key: &str| {
            let value = vec![b'v'; 6 << 20];
            let body = [key.as_bytes(), b"=", &value, b"\n"].concat();
            let mut len = body.len() + 2;
            while format!("{len} ").len() + body.len() != len {
                len += 1;
            }
            let rec = [format!("{len} ").into_bytes(), body].concat();
            member("pax", b'x', &rec)
        };
        let mut a = [big("a"), big("b"), big("c")].concat();
        a.extend(member("f", b'0', b"x"));
        let e = names(&a).unwrap_err().to_string();
        assert!(e.contains("16 MiB"), "{e}");
    }

    #[test]
    fn a_bad_checksum_says_where() {
        let mut a = member("a", b'0', b"1");
        let mut b = member("b", b'0', b"2");
        b[0] = b'c';
        a.append(&mut b);
        let e = names(&a).unwrap_err().to_string();
        assert!(
            e.contains("checksum") && e.contains("byte 1024") && e.contains("after entry"),
            "{e}"
        );
    }

    #[test]
    fn an_extended_header_needs_an_entry_after_it() {
        let a = [member("pax", b'x', b"9 path=a\n"), vec![0; 1024]].concat();
        assert!(names(&a).is_err());
        let a = member("pax", b'x', b"9 path=a\n");
        assert!(names(&a).is_err());
    }

    #[test]
    fn gnu_long_names_and_links() {
        let long = "d/".repeat(80) + "f";
        let a = [
            member("././@LongLink", b'L', format!("{long}\0").as_bytes()),
            member("short", b'0', b"x"),
            member("././@LongLink", b'K', b"target\0"),
            member("l", b'2', b""),
        ]
        .concat();
        assert_eq!(names(&a).unwrap(), vec![long, "l".to_owned()]);
    }

    #[test]
    fn only_files_have_content() {
        // A directory's size field is ignored (as Go's reader ignores it): the next header
        // follows it at once.
        let mut a = header("d/", b'5', 700);
        a.extend(member("f", b'0', b"x"));
        assert_eq!(names(&a).unwrap(), vec!["d/", "f"]);
    }
}
