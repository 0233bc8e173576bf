//! One layer entry read from its tar header (ustar, GNU and PAX), in the form the rest of the
//! crate works with: what it is and the metadata to give it.

use std::io::Read;

use crate::error::{Error, Result};

/// Seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn from_secs(secs: i64) -> Self {
        Timestamp { secs, nanos: 0 }
    }

    /// Parses a PAX time (`1700000000`, `1700000000.123456789`, `-1.5`).
    pub fn parse_pax(v: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(v).ok()?;
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let secs: i64 = int.parse().ok()?;
        let mut nanos: u32 = 0;
        for (i, b) in frac.bytes().take(9).enumerate() {
            nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
        }
        Some(if !neg {
            Timestamp { secs, nanos }
        } else if nanos == 0 {
            Timestamp {
                secs: -secs,
                nanos: 0,
            }
        } else {
            Timestamp {
                secs: -secs - 1,
                nanos: 1_000_000_000 - nanos,
            }
        })
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nanos == 0 {
            write!(f, "{}", self.secs)
        } else {
            write!(f, "{}.{:09}", self.secs, self.nanos)
        }
    }
}

/// What an entry creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// The target exactly as stored.
    Symlink(Vec<u8>),
    /// The target, a path inside the root.
    Hardlink(Vec<u8>),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink(_) => "symlink",
            Kind::Hardlink(_) => "hardlink",
            Kind::CharDevice { .. } => "character device",
            Kind::BlockDevice { .. } => "block device",
            Kind::Fifo => "fifo",
        }
    }
}

/// Ownership, permissions, times and extended attributes of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// Permission bits including setuid, setgid and sticky (`0o7777` at most).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    pub atime: Option<Timestamp>,
    /// `SCHILY.xattr.*` records, in header order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A layer entry without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as stored (PAX `path` and GNU long names applied).
    pub name: Vec<u8>,
    /// How many bytes of content the header announces.
    pub size: u64,
    pub kind: Kind,
    pub meta: Meta,
}

/// What to do with a header that is not an entry of the tree.
pub enum Parsed {
    Entry(Header),
    /// A PAX global header or similar: carries nothing for the tree.
    Skip,
}

const PAX_XATTR: &[u8] = b"SCHILY.xattr.";

/// Reads the header of `entry` into our model.
pub fn read_header<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Parsed> {
    let name = entry.path_bytes().into_owned();
    let bad =
        |what: &str, e: std::io::Error| Error::input(format!("bad {what} in tar header: {e}"));
    let h = entry.header();
    let raw_type = h.entry_type();
    let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
    let uid = h.uid().map_err(|e| bad("uid", e))?;
    let gid = h.gid().map_err(|e| bad("gid", e))?;
    let mut mtime = Timestamp::from_secs(h.mtime().map_err(|e| bad("mtime", e))? as i64);
    let kind = match raw_type {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            // Old (V7) archives mark directories with a trailing slash on a plain-file header.
            if raw_type.as_byte() == b'\0' && name.ends_with(b"/") {
                Kind::Dir
            } else {
                Kind::File
            }
        }
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink | tar::EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| Error::input("link without a target"))?
                .into_owned();
            if target.contains(&0) {
                return Err(Error::input("link target contains a NUL byte"));
            }
            if raw_type == tar::EntryType::Symlink {
                Kind::Symlink(target)
            } else {
                Kind::Hardlink(target)
            }
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            let major = h
                .device_major()
                .map_err(|e| bad("device major", e))?
                .unwrap_or(0);
            let minor = h
                .device_minor()
                .map_err(|e| bad("device minor", e))?
                .unwrap_or(0);
            if raw_type == tar::EntryType::Char {
                Kind::CharDevice { major, minor }
            } else {
                Kind::BlockDevice { major, minor }
            }
        }
        tar::EntryType::Fifo => Kind::Fifo,
        tar::EntryType::XGlobalHeader => return Ok(Parsed::Skip),
        other => {
            return Err(Error::input(format!(
                "unsupported entry type {:?}",
                char::from(other.as_byte())
            )))
        }
    };
    let to_id = |v: u64, what: &str| {
        u32::try_from(v)
            .ok()
            .filter(|&v| v != u32::MAX)
            .ok_or_else(|| Error::input(format!("{what} {v} is out of range")))
    };
    let mut meta = Meta {
        mode,
        uid: to_id(uid, "uid")?,
        gid: to_id(gid, "gid")?,
        mtime,
        atime: None,
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions().map_err(|e| bad("PAX header", e))? {
        for ext in pax {
            let ext = ext.map_err(|e| bad("PAX record", e))?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            if let Some(attr) = key.strip_prefix(PAX_XATTR) {
                if attr.is_empty() || attr.contains(&0) {
                    return Err(Error::input("malformed xattr name in PAX header"));
                }
                meta.xattrs.retain(|(k, _)| k != attr);
                meta.xattrs.push((attr.to_vec(), value.to_vec()));
            } else if key == b"mtime" {
                mtime = Timestamp::parse_pax(value)
                    .ok_or_else(|| Error::input("malformed PAX mtime"))?;
                meta.mtime = mtime;
            } else if key == b"atime" {
                meta.atime = Timestamp::parse_pax(value);
            }
        }
    }
    let size = entry.size();
    Ok(Parsed::Entry(Header {
        name,
        size,
        kind,
        meta,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(
            Timestamp::parse_pax(b"12.5"),
            Some(Timestamp {
                secs: 12,
                nanos: 500_000_000
            })
        );
        assert_eq!(
            Timestamp::parse_pax(b"-1.25"),
            Some(Timestamp {
                secs: -2,
                nanos: 750_000_000
            })
        );
        assert_eq!(Timestamp::parse_pax(b"7"), Some(Timestamp::from_secs(7)));
        assert_eq!(Timestamp::parse_pax(b"x"), None);
        assert_eq!(Timestamp::parse_pax(b"1.2.3"), None);
    }
}
