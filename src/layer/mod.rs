//! One layer as a stream of tar entries: compression read from the first bytes (never from a
//! name or media type), decoded, and hashed on the way so both the blob digest and the
//! uncompressed `diff_id` can be checked once the layer has been read to its end.

pub mod ahead;
#[cfg(feature = "testing")]
mod in_memory;
#[cfg(feature = "isal")]
mod isal;
mod layers;
pub mod read;
pub mod region;

#[cfg(feature = "testing")]
pub use in_memory::InMemory;
pub use layers::Layers;

use std::io::{self, BufRead, BufReader, Read};

use crate::digest::{Algorithm, Digest, HashingReader, Tap};
use crate::error::{Error, ErrorKind, Result};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Tells the compression from the first bytes of a blob.
pub fn sniff(head: &[u8]) -> Result<Compression> {
    Ok(match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            return Err(Error::input("xz-compressed layers are not supported"))
        }
        [b'B', b'Z', b'h', ..] => {
            return Err(Error::input("bzip2-compressed layers are not supported"))
        }
        _ => Compression::None,
    })
}

/// The digests a layer must have; any of them may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// The digest of the blob as stored (an OCI descriptor, a `blobs/sha256/<hex>` path).
    pub blob: Option<Digest>,
    /// A digest taken from a file name like `<hex>.tar.gz`: writers use either the blob's or
    /// the uncompressed digest there, so either may match.
    pub named: Option<Digest>,
    /// The config's `rootfs.diff_ids` entry: the digest of the uncompressed tar.
    pub diff_id: Option<Digest>,
    /// The blob's size, where a descriptor gives it.
    pub size: Option<u64>,
}

/// A layer being decoded; read it through [`Decoded::reader`], then call [`Decoded::finish`].
pub struct Decoded<'a> {
    reader: Box<dyn Read + Send + 'a>,
    compression: Compression,
    blob: Tap,
    diff: Tap,
}

/// What was measured of a layer once read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    pub compression: Compression,
    pub blob: Digest,
    pub blob_size: u64,
    pub diff_id: Digest,
    pub size: u64,
}

const READ_BUFFER: usize = 1 << 20;

/// The gzip inflater this build uses (feature `isal`: the system's ISA-L; otherwise zlib-rs
/// through flate2), as `--version` says.
#[cfg(feature = "isal")]
pub const INFLATER: &str = isal::NAME;
/// The gzip inflater this build uses (feature `isal`: the system's ISA-L; otherwise zlib-rs
/// through flate2), as `--version` says.
#[cfg(not(feature = "isal"))]
pub const INFLATER: &str = "zlib-rs (flate2)";

/// A gzip stream of one member or several, inflated by this build's inflater. Bytes after a
/// member that do not begin another are an error.
pub fn gunzip<'a>(r: impl BufRead + Send + 'a) -> Box<dyn Read + Send + 'a> {
    #[cfg(feature = "isal")]
    return Box::new(isal::GzDecoder::new(r));
    #[cfg(not(feature = "isal"))]
    return Box::new(flate2::bufread::MultiGzDecoder::new(r));
}

impl<'a> Decoded<'a> {
    /// Starts decoding `raw`, hashing with the algorithms the expected digests use.
    pub fn new(raw: Box<dyn Read + Send + 'a>, expected: &Expected) -> Result<Decoded<'a>> {
        Decoded::hashing(raw, expected, true)
    }

    /// Like [`Decoded::new`]; without `hash` only sizes are measured (the digests are empty)
    /// for runs that check none: hashing is the costliest part of reading a plain layer.
    pub fn hashing(
        raw: Box<dyn Read + Send + 'a>,
        expected: &Expected,
        hash: bool,
    ) -> Result<Decoded<'a>> {
        let tap = |d: &Option<Digest>| {
            if hash {
                Tap::new(algo(d))
            } else {
                Tap::counting()
            }
        };
        let blob = tap(&expected.blob);
        let mut diff = tap(&expected.diff_id);
        let mut buffered =
            BufReader::with_capacity(READ_BUFFER, HashingReader::new(raw, blob.clone()));
        let head = buffered
            .fill_buf()
            .map_err(|e| Error::io("cannot read layer", e))?;
        let compression = sniff(head)?;
        let decoded: Box<dyn Read + Send + 'a> = match compression {
            Compression::None => Box::new(buffered),
            Compression::Gzip => gunzip(buffered),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered)
                    .map_err(|e| Error::io("cannot start zstd decoder", e))?,
            ),
        };
        // An uncompressed blob is its own tar: hash it once for both digests.
        let reader: Box<dyn Read + Send + 'a> = if compression == Compression::None
            && algo(&expected.blob) == algo(&expected.diff_id)
        {
            diff = blob.clone();
            decoded
        } else {
            Box::new(HashingReader::new(decoded, diff.clone()))
        };
        Ok(Decoded {
            reader,
            compression,
            blob,
            diff,
        })
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The uncompressed stream, for when the digests are not wanted.
    pub fn into_reader(self) -> Box<dyn Read + Send + 'a> {
        self.reader
    }

    /// The uncompressed tar stream.
    pub fn reader(&mut self) -> &mut (dyn Read + Send + 'a) {
        &mut *self.reader
    }

    /// Reads whatever follows the end-of-archive marker (padding, a trailing gzip member) so
    /// the digests cover the whole blob, and returns them.
    pub fn finish(mut self) -> Result<Measured> {
        io::copy(&mut self.reader, &mut io::sink()).map_err(|e| {
            Error::io("cannot read the end of the layer", e).with_kind(ErrorKind::Input)
        })?;
        let (blob, blob_size) = self.blob.result();
        let (diff_id, size) = self.diff.result();
        Ok(Measured {
            compression: self.compression,
            blob,
            blob_size,
            diff_id,
            size,
        })
    }
}

pub(crate) fn algo(d: &Option<Digest>) -> Algorithm {
    d.as_ref().map_or(Algorithm::Sha256, Digest::algorithm)
}

impl Measured {
    /// Compares what was read with what the image says it is.
    pub fn verify(&self, expected: &Expected) -> Result<()> {
        let mismatch = |what: &str, want: &Digest, got: &Digest| {
            Error::new(
                ErrorKind::Verification,
                format!("{what} mismatch: expected {want}, got {got}"),
            )
        };
        if let Some(want) = &expected.blob {
            if *want != self.blob {
                return Err(mismatch("blob digest", want, &self.blob));
            }
        }
        if let Some(want) = &expected.named {
            if *want != self.blob && *want != self.diff_id {
                return Err(mismatch("digest in the file name", want, &self.blob));
            }
        }
        if let Some(want) = expected.size {
            if want != self.blob_size {
                return Err(Error::new(
                    ErrorKind::Verification,
                    format!(
                        "size mismatch: expected {want} bytes, got {}",
                        self.blob_size
                    ),
                ));
            }
        }
        if let Some(want) = &expected.diff_id {
            if *want != self.diff_id {
                return Err(mismatch("diff_id", want, &self.diff_id));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]).unwrap(), Compression::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]).unwrap(), Compression::Zstd);
        assert_eq!(sniff(b"etc/passwd\0").unwrap(), Compression::None);
        assert_eq!(sniff(b"").unwrap(), Compression::None);
        assert!(sniff(b"BZh91AY").is_err());
    }

    #[test]
    fn multi_member_gzip_is_read_whole() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut blob = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            blob.extend(e.finish().unwrap());
        }
        let mut d = Decoded::new(Box::new(io::Cursor::new(blob)), &Expected::default()).unwrap();
        let mut s = String::new();
        d.reader().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world");
        let m = d.finish().unwrap();
        assert_eq!(m.diff_id, crate::digest::sha256_of(b"hello world"));
    }
}
