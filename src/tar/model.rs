//! A tar entry in the form the rest of the crate works with: what it is and the metadata to
//! give it, whichever of the tar forms stored it.

/// Seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds (negative before 1970).
    pub secs: i64,
    /// Nanoseconds, below one second.
    pub nanos: u32,
}

impl Timestamp {
    /// Whole seconds.
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
    /// A regular file (its content follows).
    File,
    /// A directory.
    Dir,
    /// The target exactly as stored.
    Symlink(Vec<u8>),
    /// The target, a path inside the root.
    Hardlink(Vec<u8>),
    /// A character device.
    CharDevice {
        /// The device's major number.
        major: u32,
        /// The device's minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// The device's major number.
        major: u32,
        /// The device's minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

impl Kind {
    /// What to call it in a message.
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
    /// Numeric owner (names in the header are ignored, as Docker does).
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time.
    pub mtime: Timestamp,
    /// Access time, where a PAX record gives one.
    pub atime: Option<Timestamp>,
    /// `SCHILY.xattr.*` records, in header order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// An entry without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as stored (PAX `path`, GNU long names and sparse names applied).
    pub name: Vec<u8>,
    /// The size of the file's content (its logical size, holes included, for a sparse
    /// file); 0 for every other kind.
    pub size: u64,
    /// What it creates.
    pub kind: Kind,
    /// Its metadata.
    pub meta: Meta,
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
