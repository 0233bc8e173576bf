//! One 512-byte header block: its checksum, its numbers (octal or base-256) and its names,
//! in the three layouts that share it (V7, ustar, GNU).

/// The unit of a tar archive.
pub const BLOCK: usize = 512;

/// What the magic field says the block is; it decides where names and numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// No magic: the original Unix layout, names in one 100-byte field.
    V7,
    /// POSIX ustar (`ustar\0` `00`): a 155-byte prefix completes the name.
    Ustar,
    /// GNU (`ustar  \0`): the prefix bytes hold times and the old sparse map instead.
    Gnu,
}

/// A header block, checked.
pub struct Block<'a> {
    raw: &'a [u8; BLOCK],
    /// Which layout the magic says.
    pub format: Format,
}

/// Why a block is not a header; the reader adds where it is.
pub type BlockError = String;

impl<'a> Block<'a> {
    /// Checks `raw` as a header: its checksum must match, counted unsigned (POSIX) or signed
    /// (as some old tars did).
    pub fn parse(raw: &'a [u8; BLOCK]) -> Result<Block<'a>, BlockError> {
        let stored = octal(&raw[148..156])
            .map_err(|_| "not a tar header (its checksum field is not a number)".to_owned())?;
        let (mut unsigned, mut signed) = (0u64, 0i64);
        for (i, &b) in raw.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += u64::from(b);
            signed += i64::from(b as i8);
        }
        if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
            return Err(format!(
                "not a tar header (checksum {stored:o}, the block sums to {unsigned:o})"
            ));
        }
        let format = match (&raw[257..263], &raw[263..265]) {
            (b"ustar\0", _) => Format::Ustar,
            (b"ustar ", b" \0") => Format::Gnu,
            _ => Format::V7,
        };
        Ok(Block { raw, format })
    }

    /// The entry type byte.
    pub fn typeflag(&self) -> u8 {
        self.raw[156]
    }

    /// The name from the header alone: ustar's prefix and name joined with a slash.
    pub fn name(&self) -> Vec<u8> {
        let name = field(&self.raw[0..100]);
        if self.format == Format::Ustar {
            let prefix = field(&self.raw[345..500]);
            if !prefix.is_empty() {
                return [prefix, b"/", name].concat();
            }
        }
        name.to_vec()
    }

    /// The link target field (100 bytes at most; longer ones come in extensions).
    pub fn link_name(&self) -> Vec<u8> {
        field(&self.raw[157..257]).to_vec()
    }

    /// The mode field, file-type bits included.
    pub fn mode(&self) -> Result<u64, BlockError> {
        self.number(100..108, "mode")
    }

    /// The numeric owner field.
    pub fn uid(&self) -> Result<u64, BlockError> {
        self.number(108..116, "uid")
    }

    /// The numeric group field.
    pub fn gid(&self) -> Result<u64, BlockError> {
        self.number(116..124, "gid")
    }

    /// The size field: bytes stored after the header.
    pub fn size(&self) -> Result<u64, BlockError> {
        self.number(124..136, "size")
    }

    /// The mtime field, in seconds (base-256 may make it negative).
    pub fn mtime(&self) -> Result<i64, BlockError> {
        signed_number(&self.raw[136..148]).map_err(|e| format!("bad mtime in tar header: {e}"))
    }

    /// Device numbers; V7 headers have none.
    pub fn device(&self) -> Result<(u64, u64), BlockError> {
        if self.format == Format::V7 {
            return Ok((0, 0));
        }
        Ok((
            self.number(329..337, "device major")?,
            self.number(337..345, "device minor")?,
        ))
    }

    /// The old GNU sparse map held in the header itself: four pieces, whether extension
    /// blocks follow, and the file's real size.
    pub fn gnu_sparse(&self) -> Result<(&'a [u8], bool, u64), BlockError> {
        let real = self.number(483..495, "sparse real size")?;
        Ok((&self.raw[386..482], self.raw[482] != 0, real))
    }

    fn number(&self, at: std::ops::Range<usize>, what: &str) -> Result<u64, BlockError> {
        number(&self.raw[at]).map_err(|e| format!("bad {what} in tar header: {e}"))
    }
}

/// A NUL-terminated field.
pub fn field(raw: &[u8]) -> &[u8] {
    raw.iter()
        .position(|&b| b == 0)
        .map_or(raw, |end| &raw[..end])
}

/// An unsigned number field: octal (spaces and NULs around it allowed, empty is 0) or, with
/// the high bit of its first byte set, GNU's base-256.
pub fn number(raw: &[u8]) -> Result<u64, String> {
    match signed_number(raw)? {
        n if n < 0 => Err(format!("{n} is negative")),
        n => Ok(n as u64),
    }
}

/// Like [`number`], for the one field that may be negative (mtime).
pub fn signed_number(raw: &[u8]) -> Result<i64, String> {
    if raw.first().is_some_and(|&b| b & 0x80 != 0) {
        return base256(raw);
    }
    octal(raw).and_then(|n| i64::try_from(n).map_err(|_| format!("{n} is too large")))
}

fn octal(raw: &[u8]) -> Result<u64, String> {
    let trimmed = raw
        .iter()
        .position(|&b| b != b' ' && b != 0)
        .map_or(&raw[..0], |start| &raw[start..]);
    let digits = trimmed
        .iter()
        .position(|&b| b == b' ' || b == 0)
        .map_or(trimmed, |end| &trimmed[..end]);
    if trimmed[digits.len()..].iter().any(|&b| b != b' ' && b != 0) {
        return Err(format!("\"{}\" is not an octal number", show(raw)));
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return Err(format!("\"{}\" is not an octal number", show(raw)));
        }
        n = n
            .checked_mul(8)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| format!("\"{}\" is too large", show(raw)))?;
    }
    Ok(n)
}

/// GNU base-256: the first byte's high bit marks it, its next bit is the sign, the rest is a
/// big-endian two's complement number.
fn base256(raw: &[u8]) -> Result<i64, String> {
    let negative = raw[0] & 0x40 != 0;
    let mut n: i128 = if negative { -1 } else { 0 };
    let first = if negative {
        raw[0] | 0x80
    } else {
        raw[0] & 0x7f
    };
    for (i, &b) in raw.iter().enumerate() {
        let b = if i == 0 { first } else { b };
        n = n
            .checked_mul(256)
            .map(|n| {
                if negative {
                    n | i128::from(b)
                } else {
                    n + i128::from(b)
                }
            })
            .filter(|n| i64::try_from(*n).is_ok())
            .ok_or_else(|| "a base-256 number out of range".to_owned())?;
    }
    Ok(n as i64)
}

fn show(raw: &[u8]) -> String {
    crate::vocabulary::quote::quote(field(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields() {
        assert_eq!(number(b"0000644\0"), Ok(0o644));
        assert_eq!(number(b"  644 \0"), Ok(0o644));
        assert_eq!(number(b"\0\0\0\0"), Ok(0));
        assert_eq!(number(b"77777777777\0"), Ok(0o77777777777));
        assert!(number(b"0009\0").is_err());
        assert!(number(b"12 34\0").is_err());
    }

    #[test]
    fn base256_fields() {
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[7] = 1;
        assert_eq!(number(&f), Ok(1 << 32));
        let neg = [0xff; 12];
        assert_eq!(signed_number(&neg), Ok(-1));
        assert!(number(&neg).is_err());
        let mut huge = [0xffu8; 12];
        huge[0] = 0x80;
        assert!(number(&huge).is_err());
    }
}
