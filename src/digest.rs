//! Content digests (`sha256:<hex>`, `sha512:<hex>`): parsing that refuses anything else, and
//! hashing readers that compute them while the data streams past.

use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
/// The hash functions images name digests with.
pub enum Algorithm {
    /// SHA-256, what every image uses.
    Sha256,
    /// SHA-512, which OCI allows.
    Sha512,
}

impl Algorithm {
    /// The algorithm as a digest names it (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest: a known algorithm and lowercase hex of the right length, so that it is
/// safe to use as a file name (`blobs/sha256/<hex>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `ALGORITHM:HEX`, refusing anything but lowercase hex of the right length (so a digest can name a file safely).
    pub fn parse(s: &str) -> Result<Digest> {
        let bad = || Error::input(format!("malformed digest {s:?}"));
        let (algo, hex) = s.split_once(':').ok_or_else(bad)?;
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => {
                return Err(Error::input(format!(
                    "unsupported digest algorithm in {s:?}"
                )))
            }
        };
        if hex.len() != algorithm.hex_len()
            || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad());
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// A sha256 digest from bare hex (as in `<hex>.tar` file names), if it is one.
    pub fn from_sha256_hex(hex: &str) -> Option<Digest> {
        Digest::parse(&format!("sha256:{hex}")).ok()
    }

    /// Which hash function made it.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hash in lowercase hex, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Where an OCI layout keeps this blob.
    pub fn blob_path(&self) -> String {
        format!("blobs/{}/{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

enum State {
    Sha256(Sha256),
    Sha512(Sha512),
    /// Counting bytes only, for runs that check no digest.
    Off,
}

/// A running hash and byte count, shared between a [`HashingReader`] and whoever wants the
/// result after the reader has been moved into a decoder.
#[derive(Clone)]
pub struct Tap(Arc<Mutex<(State, u64)>>);

impl Tap {
    /// A tap hashing with `algorithm`.
    pub fn new(algorithm: Algorithm) -> Tap {
        let s = match algorithm {
            Algorithm::Sha256 => State::Sha256(Sha256::new()),
            Algorithm::Sha512 => State::Sha512(Sha512::new()),
        };
        Tap(Arc::new(Mutex::new((s, 0))))
    }

    /// A tap that only counts; its digest is empty.
    pub fn counting() -> Tap {
        Tap(Arc::new(Mutex::new((State::Off, 0))))
    }

    /// Hashes (and counts) `data`.
    pub fn update(&self, data: &[u8]) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.1 += data.len() as u64;
        match &mut g.0 {
            State::Sha256(h) => h.update(data),
            State::Sha512(h) => h.update(data),
            State::Off => {}
        }
    }

    /// The digest of everything read so far, and its length.
    pub fn result(&self) -> (Digest, u64) {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (algorithm, hex) = match &g.0 {
            State::Sha256(h) => (Algorithm::Sha256, hex(&h.clone().finalize())),
            State::Sha512(h) => (Algorithm::Sha512, hex(&h.clone().finalize())),
            State::Off => (Algorithm::Sha256, String::new()),
        };
        (Digest { algorithm, hex }, g.1)
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// Hashes what passes through it into a [`Tap`].
pub struct HashingReader<R> {
    inner: R,
    tap: Tap,
}

impl<R: Read> HashingReader<R> {
    /// Reads `inner`, feeding every byte read to `tap`.
    pub fn new(inner: R, tap: Tap) -> Self {
        HashingReader { inner, tap }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tap.update(&buf[..n]);
        Ok(n)
    }
}

/// The sha256 of a byte string, as a digest.
pub fn sha256_of(data: &[u8]) -> Digest {
    digest_of(Algorithm::Sha256, data)
}

/// The digest of a byte string with `algorithm` (to check a blob read whole against its
/// name).
pub fn digest_of(algorithm: Algorithm, data: &[u8]) -> Digest {
    let hex = match algorithm {
        Algorithm::Sha256 => hex(&Sha256::digest(data)),
        Algorithm::Sha512 => hex(&Sha512::digest(data)),
    };
    Digest { algorithm, hex }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_paths_and_bad_hex() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert!(Digest::parse(&ok).is_ok());
        assert_eq!(
            Digest::parse(&ok).unwrap().blob_path(),
            format!("blobs/sha256/{}", "a".repeat(64))
        );
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:ABC",
            "md5:00",
            "sha256",
            "",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
    }

    #[test]
    fn hashing_reader() {
        let tap = Tap::new(Algorithm::Sha256);
        let mut r = HashingReader::new(&b"abc"[..], tap.clone());
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (d, n) = tap.result();
        assert_eq!(n, 3);
        assert_eq!(
            d.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
