//! PAX extended headers (POSIX.1-2001 `pax`): records read by their length prefix, so that a
//! value may hold any byte (a newline in a binary xattr, a NUL), and the rules for combining
//! them: a later record wins, an empty value deletes the keyword (an xattr's sets an empty
//! value), global (`g`) records hold for every entry after them until changed.

/// One record's keyword and value, borrowed from the header's data.
pub type Record<'a> = (&'a [u8], &'a [u8]);

/// The records of an extended header's data, in order. Each is `LEN KEY=VALUE\n`, where
/// `LEN` counts the whole record in decimal; NUL bytes after the last record are padding.
pub fn records(data: &[u8]) -> Records<'_> {
    Records { data, at: 0 }
}

/// Iterator of [`records`].
pub struct Records<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.data[self.at..];
        if rest.iter().all(|&b| b == 0) {
            return None;
        }
        let at = self.at;
        let bad = |why: &str| Some(Err(format!("malformed PAX record at byte {at}: {why}")));
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || rest.get(digits) != Some(&b' ') {
            self.at = self.data.len();
            return bad("it does not start with its length");
        }
        let len = match std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(len) if len > digits + 1 && len <= rest.len() => len,
            Some(len) if len > rest.len() => {
                self.at = self.data.len();
                return bad(&format!(
                    "its length {len} runs past the header's {} bytes",
                    self.data.len()
                ));
            }
            _ => {
                self.at = self.data.len();
                return bad("its length is too small");
            }
        };
        let record = &rest[digits + 1..len];
        self.at += len;
        let Some((&b'\n', body)) = record.split_last() else {
            return bad("it does not end with a newline where its length says");
        };
        let Some(eq) = body.iter().position(|&b| b == b'=') else {
            return bad("it has no '='");
        };
        if eq == 0 {
            return bad("its keyword is empty");
        }
        Some(Ok((&body[..eq], &body[eq + 1..])))
    }
}

/// The prefix of the keywords that carry an extended attribute each.
pub const XATTR: &[u8] = b"SCHILY.xattr.";

/// Keywords and values in force, in the order they were first set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Keywords {
    /// Sets `key` to `value`, replacing an earlier value; an empty value deletes it, but
    /// for an xattr, whose value may be empty (GNU tar writes `SCHILY.xattr.NAME=` for one,
    /// and GNU tar, Go and Python read it back as an empty value).
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        if value.is_empty() && !key.starts_with(XATTR) {
            self.entries.retain(|(k, _)| k != key);
        } else if let Some(slot) = self.entries.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value.to_vec();
        } else {
            self.entries.push((key.to_vec(), value.to_vec()));
        }
    }

    /// The value in force for `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The bytes held, keywords and values.
    pub fn bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }

    /// True when no keyword is in force.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every keyword that starts with `prefix`, with the rest of its name, in order.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.entries
            .iter()
            .filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_slice())))
    }
}

/// The sparse map of GNU's PAX format 0.0, which repeats two keywords in order
/// (`GNU.sparse.offset`, `GNU.sparse.numbytes`, ...): kept as a list, not as keywords.
pub const SPARSE_OFFSET: &[u8] = b"GNU.sparse.offset";
/// A piece's size in a PAX 0.0 sparse map.
pub const SPARSE_NUMBYTES: &[u8] = b"GNU.sparse.numbytes";

/// Applies the records of one extended header to `into`; the repeated keywords of a format
/// 0.0 sparse map go to `pairs` in order instead.
pub fn apply(data: &[u8], into: &mut Keywords, pairs: &mut Vec<u64>) -> Result<(), String> {
    for record in records(data) {
        let (key, value) = record?;
        if key == SPARSE_OFFSET || key == SPARSE_NUMBYTES {
            let want_offset = pairs.len() % 2 == 0;
            if want_offset != (key == SPARSE_OFFSET) {
                return Err("GNU.sparse.offset and GNU.sparse.numbytes do not alternate".into());
            }
            pairs.push(decimal(value).ok_or_else(|| {
                format!(
                    "bad {} in PAX header: \"{}\"",
                    crate::vocabulary::quote::quote(key),
                    crate::vocabulary::quote::quote(value)
                )
            })?);
        } else {
            into.set(key, value);
        }
    }
    Ok(())
}

/// A PAX decimal number (`size`, `uid`, sparse numbers): digits only.
pub fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(data: &[u8]) -> Result<Vec<Record<'_>>, String> {
        records(data).collect()
    }

    /// One record with its length right.
    fn rec(key: &str, value: &[u8]) -> Vec<u8> {
        let body = [key.as_bytes(), b"=", value, b"\n"].concat();
        let mut len = body.len() + 2;
        while format!("{len} ").len() + body.len() != len {
            len += 1;
        }
        [format!("{len} ").into_bytes(), body].concat()
    }

    #[test]
    fn values_hold_any_byte() {
        let value = b"\x01\x00\x00\x02\x0a\x00\n=";
        let data = rec("SCHILY.xattr.security.capability", value);
        assert_eq!(
            all(&data).unwrap(),
            vec![(&b"SCHILY.xattr.security.capability"[..], &value[..])]
        );
    }

    #[test]
    fn empty_values_and_padding() {
        let data = [rec("SCHILY.xattr.user.overlay.x", b""), vec![0; 7]].concat();
        assert_eq!(
            all(&data).unwrap(),
            vec![(&b"SCHILY.xattr.user.overlay.x"[..], &b""[..])]
        );
        assert_eq!(all(b"").unwrap(), vec![]);
    }

    #[test]
    fn bad_lengths_are_errors() {
        for bad in [
            &b"30 path=a\n"[..], // runs past the data
            b"5 path=a\n",       // too short: no newline where it says
            b"path=a\n",         // no length
            b"9 path=a\n junk",  // garbage after the last record
            b"8 patha\n",        // no '='
            b"1 ",               // shorter than its own length field
            b"7 =abc\n",         // empty keyword
        ] {
            assert!(all(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn later_wins_and_empty_deletes() {
        let mut k = Keywords::default();
        let mut pairs = Vec::new();
        apply(b"9 path=a\n9 path=b\n", &mut k, &mut pairs).unwrap();
        assert_eq!(k.get(b"path"), Some(&b"b"[..]));
        apply(b"8 path=\n", &mut k, &mut pairs).unwrap();
        assert_eq!(k.get(b"path"), None);
        apply(&rec("SCHILY.xattr.user.e", b""), &mut k, &mut pairs).unwrap();
        assert_eq!(k.get(b"SCHILY.xattr.user.e"), Some(&b""[..]));
    }

    #[test]
    fn sparse_pairs_keep_their_order() {
        let mut k = Keywords::default();
        let mut pairs = Vec::new();
        let data = [
            rec("GNU.sparse.offset", b"5"),
            rec("GNU.sparse.numbytes", b"10"),
            rec("GNU.sparse.offset", b"9"),
            rec("GNU.sparse.numbytes", b"11"),
        ]
        .concat();
        apply(&data, &mut k, &mut pairs).unwrap();
        assert_eq!(pairs, vec![5, 10, 9, 11]);
        let odd = rec("GNU.sparse.numbytes", b"10");
        assert!(apply(&odd, &mut k, &mut Vec::new()).is_err());
    }
}
