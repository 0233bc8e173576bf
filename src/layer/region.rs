//! A plain layer read in place, from the file that holds it.
//!
//! Headers are read through a small buffer that survives short seeks, so that a run of small
//! files costs one `pread` per buffer, not per header; the content of a dead file is seeked
//! past unread, and a live file's content is copied by the kernel from its byte range
//! ([`crate::fs::Body::Range`]).

use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use std::fs::File;
use std::sync::Arc;

const BUFFER: usize = 64 * 1024;

/// Where a file of the image lies: a byte range of a file on this machine. Lets a plain layer
/// be read with seeks and its file contents copied by the kernel (`copy_file_range`).
#[derive(Clone, Debug)]
pub struct Region {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

/// Reads a [`Region`] with seeks.
pub struct RegionReader {
    region: Region,
    /// Position, from the start of the region.
    pos: u64,
    buf: Vec<u8>,
    /// Region position of `buf[0]`.
    buf_at: u64,
}

impl RegionReader {
    pub fn new(region: Region) -> Self {
        RegionReader {
            region,
            pos: 0,
            buf: Vec::with_capacity(BUFFER),
            buf_at: 0,
        }
    }

    fn read_at(&self, out: &mut [u8], at: u64) -> io::Result<usize> {
        let want = out.len().min(self.region.len.saturating_sub(at) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self
            .region
            .file
            .read_at(&mut out[..want], self.region.offset + at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive is shorter than its index says",
            ));
        }
        Ok(n)
    }
}

impl Read for RegionReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let end = self.buf_at + self.buf.len() as u64;
        if self.pos < self.buf_at || self.pos >= end {
            if out.len() >= BUFFER {
                let n = self.read_at(out, self.pos)?;
                self.pos += n as u64;
                return Ok(n);
            }
            let mut fresh = std::mem::take(&mut self.buf);
            fresh.resize(BUFFER, 0);
            let n = self.read_at(&mut fresh, self.pos)?;
            fresh.truncate(n);
            self.buf = fresh;
            self.buf_at = self.pos;
            if n == 0 {
                return Ok(0);
            }
        }
        let from = (self.pos - self.buf_at) as usize;
        let n = out.len().min(self.buf.len() - from);
        out[..n].copy_from_slice(&self.buf[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RegionReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(n) => self.region.len.checked_add_signed(n),
            SeekFrom::Current(n) => self.pos.checked_add_signed(n),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}

impl crate::tar::Source for RegionReader {
    /// Skips by moving the position: nothing is read.
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let n = n.min(self.region.len.saturating_sub(self.pos));
        self.pos += n;
        Ok(n)
    }
}
