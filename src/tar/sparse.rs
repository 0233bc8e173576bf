//! GNU sparse files: the map of where a file's data lies (the rest is holes), in each of the
//! forms GNU tar writes (old GNU `S` headers, PAX 0.0, 0.1 and 1.0), checked before any of
//! it is used, and a reader that gives the file's whole content, holes as zeros.

use std::io::{self, Read};

use super::block::number;
use super::pax::decimal;

/// One piece of data: `len` bytes at `offset` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Where in the file it goes.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

/// Where a sparse file's data lies. The pieces are stored one after the other in the
/// archive, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseMap {
    /// The file's logical size, holes included.
    pub size: u64,
    /// The pieces of data, in order (empty ones dropped).
    pub pieces: Vec<Piece>,
}

/// A file may not be larger than `off_t` allows.
const MAX_SIZE: u64 = i64::MAX as u64;

impl SparseMap {
    /// Checks a map as read: pieces in order, not overlapping, inside the file, and together
    /// exactly the `stored` bytes the archive holds for it.
    pub fn new(size: u64, pieces: Vec<Piece>, stored: u64) -> Result<SparseMap, String> {
        if size > MAX_SIZE {
            return Err(format!("sparse file size {size} is too large"));
        }
        let mut end = 0u64;
        let mut total = 0u64;
        for p in &pieces {
            if p.offset < end {
                return Err(format!(
                    "sparse map is out of order or overlaps at offset {}",
                    p.offset
                ));
            }
            end = p
                .offset
                .checked_add(p.len)
                .filter(|&e| e <= size)
                .ok_or_else(|| {
                    format!(
                        "sparse piece of {} bytes at offset {} runs past the file's size {size}",
                        p.len, p.offset
                    )
                })?;
            total += p.len;
        }
        if total != stored {
            return Err(format!(
                "sparse map names {total} bytes of data, the archive holds {stored}"
            ));
        }
        let pieces = pieces.into_iter().filter(|p| p.len > 0).collect();
        Ok(SparseMap { size, pieces })
    }

    /// Bytes stored in the archive.
    pub fn stored(&self) -> u64 {
        self.pieces.iter().map(|p| p.len).sum()
    }
}

/// Appends the pieces of an old GNU map area (24-byte entries of two 12-byte numbers) to
/// `pieces`; an entry whose offset field is empty ends the list.
pub fn old_gnu_pieces(area: &[u8], pieces: &mut Vec<Piece>) -> Result<(), String> {
    for entry in area.chunks_exact(24) {
        if entry[0] == 0 {
            break;
        }
        pieces.push(Piece {
            offset: number(&entry[..12]).map_err(|e| format!("bad sparse offset: {e}"))?,
            len: number(&entry[12..]).map_err(|e| format!("bad sparse size: {e}"))?,
        });
    }
    Ok(())
}

/// Pieces from numbers in pairs (offset, size), as PAX 0.0 and 1.0 give them.
pub fn pairs(numbers: &[u64]) -> Vec<Piece> {
    numbers
        .chunks_exact(2)
        .map(|p| Piece {
            offset: p[0],
            len: p[1],
        })
        .collect()
}

/// The `GNU.sparse.map` of PAX 0.1: `offset,size,offset,size,...`.
pub fn map_01(v: &[u8]) -> Result<Vec<Piece>, String> {
    let numbers = v
        .split(|&b| b == b',')
        .map(decimal)
        .collect::<Option<Vec<u64>>>()
        .ok_or("bad GNU.sparse.map in PAX header")?;
    if numbers.len() % 2 != 0 {
        return Err("GNU.sparse.map has an odd count of numbers".into());
    }
    Ok(pairs(&numbers))
}

/// The longest map text of PAX 1.0 that is read: its memory is what the archive holds.
pub const MAX_MAP_TEXT: u64 = 16 << 20;

/// Reads the map that starts the data of a PAX 1.0 sparse file: decimal numbers, one per line
/// (the count of pieces, then each piece's offset and size), padded to a whole block.
/// Returns the pieces and how many bytes the map took, padding included.
pub fn read_map_10(data: &mut dyn Read, available: u64) -> Result<(Vec<Piece>, u64), String> {
    let mut numbers: Vec<u64> = Vec::new();
    let mut count: Option<u64> = None;
    let mut digits: Vec<u8> = Vec::new();
    let mut used = 0u64;
    let mut block = [0u8; super::block::BLOCK];
    loop {
        let done = count.is_some_and(|c| numbers.len() as u64 == c * 2);
        if done {
            break;
        }
        if used >= MAX_MAP_TEXT {
            return Err("sparse map is larger than 16 MiB".into());
        }
        if used + block.len() as u64 > available {
            return Err("sparse map runs past the file's data".into());
        }
        data.read_exact(&mut block)
            .map_err(|e| format!("cannot read the sparse map: {e}"))?;
        used += block.len() as u64;
        for &b in &block {
            if count.is_some_and(|c| numbers.len() as u64 == c * 2) {
                break;
            }
            match b {
                b'0'..=b'9' if digits.len() < 20 => digits.push(b),
                b'\n' => {
                    let n = decimal(&digits).ok_or("bad number in the sparse map")?;
                    digits.clear();
                    match count {
                        None => count = Some(n),
                        Some(_) => numbers.push(n),
                    }
                }
                _ => return Err("bad number in the sparse map".into()),
            }
        }
    }
    Ok((pairs(&numbers), used))
}

/// A sparse file's whole content: its pieces, read in order from `pieces`, with zeros for the
/// holes between them.
pub struct Expand<'a> {
    map: &'a SparseMap,
    pieces: &'a mut dyn Read,
    pos: u64,
    next: usize,
}

impl<'a> Expand<'a> {
    /// Expands `pieces` (read in order) by `map`.
    pub fn new(map: &'a SparseMap, pieces: &'a mut dyn Read) -> Expand<'a> {
        Expand {
            map,
            pieces,
            pos: 0,
            next: 0,
        }
    }
}

impl Read for Expand<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(p) = self.map.pieces.get(self.next) {
            if self.pos < p.offset + p.len {
                break;
            }
            self.next += 1;
        }
        let (end, data) = match self.map.pieces.get(self.next) {
            Some(p) if self.pos >= p.offset => (p.offset + p.len, true),
            Some(p) => (p.offset, false),
            None => (self.map.size, false),
        };
        let want = buf.len().min((end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = if data {
            match self.pieces.read(&mut buf[..want])? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the archive ends inside a sparse file's data",
                    ))
                }
                n => n,
            }
        } else {
            buf[..want].fill(0);
            want
        };
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(offset: u64, len: u64) -> Piece {
        Piece { offset, len }
    }

    #[test]
    fn maps_are_checked() {
        assert!(SparseMap::new(10, vec![p(0, 2), p(5, 3), p(10, 0)], 5).is_ok());
        assert!(
            SparseMap::new(10, vec![p(5, 3), p(0, 2)], 5).is_err(),
            "unsorted"
        );
        assert!(
            SparseMap::new(10, vec![p(0, 6), p(5, 3)], 9).is_err(),
            "overlap"
        );
        assert!(
            SparseMap::new(10, vec![p(8, 3)], 3).is_err(),
            "past the size"
        );
        assert!(SparseMap::new(10, vec![p(0, 2)], 3).is_err(), "wrong total");
        assert!(SparseMap::new(u64::MAX, vec![], 0).is_err(), "huge");
        assert!(
            SparseMap::new(10, vec![p(u64::MAX, 2)], 2).is_err(),
            "overflow"
        );
    }

    #[test]
    fn expands_with_zeros() {
        let map = SparseMap::new(10, vec![p(1, 2), p(6, 1)], 3).unwrap();
        let mut data: &[u8] = b"abc";
        let mut out = Vec::new();
        Expand::new(&map, &mut data).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"\0ab\0\0\0c\0\0\0");
    }

    #[test]
    fn map_10_is_read_from_blocks() {
        let mut text = b"2\n0\n5\n700\n3\n".to_vec();
        text.resize(512, 0);
        text.extend_from_slice(b"DATA");
        let (pieces, used) = read_map_10(&mut &text[..], text.len() as u64).unwrap();
        assert_eq!(pieces, vec![p(0, 5), p(700, 3)]);
        assert_eq!(used, 512);
        let mut short = b"3\n0\n5\n".to_vec();
        short.resize(1024, 0);
        assert!(
            read_map_10(&mut &short[..], 1024).is_err(),
            "NUL inside the map"
        );
        assert!(read_map_10(&mut &text[..], 100).is_err(), "past the data");
    }

    #[test]
    fn map_01_pairs() {
        assert_eq!(map_01(b"0,5,700,3").unwrap(), vec![p(0, 5), p(700, 3)]);
        assert!(map_01(b"0,5,700").is_err());
        assert!(map_01(b"0,x").is_err());
    }
}
