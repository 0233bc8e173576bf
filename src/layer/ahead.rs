//! Decoding on its own thread, ahead of the writer.
//!
//! Inflating and hashing a layer takes one core; writing the tree takes another (mostly in the
//! kernel). A bounded channel of large chunks between them lets both run at once while
//! holding at most a few megabytes.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use super::{Decoded, Expected, Measured};
use crate::digest::Tap;
use crate::error::{Error, ErrorKind, Result};

const CHUNK: usize = 1 << 20;
/// What is read and hashed at a time: small enough to stay in a core's L2 cache.
const PIECE: usize = 128 << 10;
/// Chunks in flight between the decoder and the reader: enough to ride out a slow write,
/// little enough to stay small (the decoder is the slower side throughout).
const DEPTH: usize = 4;
/// Chunks in flight from the hasher of a plain layer. Layers alternate between stretches of
/// small files, where the writer is the slower side, and stretches it passes over (files a
/// layer above deletes), where the hasher is: 16 MiB lets the hasher run ahead through the
/// first into the second (with 4, each side waited for the other a tenth of the time).
const PLAIN_DEPTH: usize = 16;

/// The uncompressed stream of a layer decoded on another thread; read it, then call
/// [`Ahead::finish`] for the digests.
pub struct Ahead<'scope> {
    /// The uncompressed stream, hashed here (for the `diff_id`) as it is handed out, so
    /// that the decoder thread only inflates: the threads share the work more evenly.
    chunks: Chunks,
    stop: Arc<AtomicBool>,
    /// Set once the whole stream is decoded (what is left is in the chunks in flight).
    decoded: Arc<AtomicBool>,
    end: End<'scope>,
}

/// What gives the digests once the stream is read.
enum End<'scope> {
    /// The decoder thread.
    Decoder(ScopedJoinHandle<'scope, Result<Measured>>),
    /// A plain blob hashed by the reading thread alone: its tar stream is itself.
    Plain(Tap),
}

/// Which digests a reading computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// None (`--no-verify`): sizes are counted.
    Off,
    /// The uncompressed stream only: the source checked the blob (a registry's fetcher), so
    /// the blob's digest is the one expected. The stream's digest (the `diff_id`, named by
    /// the checked config) still covers every byte this reading sees.
    Stream,
    /// The blob and the uncompressed stream.
    Both,
}

/// Starts decoding `blob` on a thread of `scope`.
pub fn decode_ahead<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    blob: Box<dyn Read + Send + 'env>,
    expected: &Expected,
    hashing: Hashing,
) -> Ahead<'scope> {
    let (tx, rx) = sync_channel(DEPTH);
    // Emptied chunks come back to be filled again: no allocation, zeroing or page fault per
    // megabyte.
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    let stop = Arc::new(AtomicBool::new(false));
    let decoded_flag = Arc::new(AtomicBool::new(false));
    let done_flag = decoded_flag.clone();
    let expected = expected.clone();
    let halt = stop.clone();
    let (diff_tx, diff_rx) = sync_channel::<Option<Tap>>(1);
    // The stored blob is read and hashed on a thread of its own, ahead of the inflater: three
    // stages (read and hash, inflate, hash and write), each on the core that is free.
    let blob_tap = (hashing == Hashing::Both).then(|| Tap::new(super::algo(&expected.blob)));
    let blob: Box<dyn Read + Send + 'env> = match &blob_tap {
        Some(tap) => Box::new(hash_ahead(
            scope,
            blob,
            tap.clone(),
            stop.clone(),
            DEPTH,
            Arc::new(AtomicBool::new(false)),
        )),
        None => blob,
    };
    let blob_result = blob_tap.clone();
    let handle = scope.spawn(move || -> Result<Measured> {
        let mut decoded = Decoded::hashing(blob, &expected, false)?;
        // The uncompressed stream is hashed by the reader of this one; a plain blob is its
        // own tar, hashed once above (when the two digests use one algorithm).
        let shared = decoded.compression() == super::Compression::None
            && super::algo(&expected.blob) == super::algo(&expected.diff_id);
        let hash_stream = match hashing {
            Hashing::Off => false,
            Hashing::Stream => true,
            Hashing::Both => !shared,
        };
        let _ = diff_tx.send(hash_stream.then(|| Tap::new(super::algo(&expected.diff_id))));
        let mut listening = true;
        loop {
            if halt.load(Ordering::Relaxed) {
                return Err(Error::new(ErrorKind::Interrupted, "stopped"));
            }
            let mut buf = back_rx.try_recv().unwrap_or_default();
            let (len, eof) = match fill(decoded.reader(), &mut buf) {
                Ok(filled) => filled,
                Err(e) => {
                    // The reader reports it where it happens, in the tar it is reading.
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(Error::io("cannot decode the layer", e).with_kind(ErrorKind::Input));
                }
            };
            // Once the reader has what it needs (the end-of-archive marker), the rest is
            // only hashed.
            if listening && len > 0 && tx.send(Ok(buf)).is_err() {
                listening = false;
            }
            if eof {
                break;
            }
        }
        done_flag.store(true, Ordering::Relaxed);
        drop(tx);
        let mut measured = decoded.finish()?;
        if let (Hashing::Stream, Some(checked)) = (hashing, &expected.blob) {
            measured.blob = checked.clone();
        }
        if let Some(tap) = blob_result {
            let (digest, size) = tap.result();
            if shared {
                measured.diff_id = digest.clone();
                measured.size = size;
            }
            measured.blob = digest;
            measured.blob_size = size;
        }
        Ok(measured)
    });
    Ahead {
        chunks: Chunks {
            rx,
            back: back_tx,
            chunk: Vec::new(),
            pos: 0,
            tap: None,
            tap_rx: Some(diff_rx),
        },
        stop,
        decoded: decoded_flag,
        end: End::Decoder(handle),
    }
}

/// Reads a plain (uncompressed) blob on a thread of `scope`, hashing it once for both its
/// digests when they use one algorithm (else use [`decode_ahead`]): no decoder stage, each
/// chunk handed on as read. Its stream is itself, so even a blob the source checked is
/// hashed here, as the stream: what is written is what was verified, whatever happened to
/// the file between the source's check and this reading.
pub fn plain_ahead<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    blob: Box<dyn Read + Send + 'env>,
    expected: &Expected,
    hashing: Hashing,
) -> Ahead<'scope> {
    let stop = Arc::new(AtomicBool::new(false));
    let tap = if hashing != Hashing::Off {
        Tap::new(super::algo(&expected.blob))
    } else {
        Tap::counting()
    };
    let decoded = Arc::new(AtomicBool::new(false));
    Ahead {
        chunks: hash_ahead(
            scope,
            blob,
            tap.clone(),
            stop.clone(),
            PLAIN_DEPTH,
            decoded.clone(),
        ),
        stop,
        decoded,
        end: End::Plain(tap),
    }
}

/// Fills `buf` with up to one chunk from `r`; returns how much, and whether `r` ended.
fn fill(r: &mut dyn Read, buf: &mut Vec<u8>) -> io::Result<(usize, bool)> {
    buf.resize(CHUNK, 0);
    let mut len = 0;
    let eof = loop {
        match r.read(&mut buf[len..]) {
            Ok(0) => break true,
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    break false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    buf.truncate(len);
    Ok((len, eof))
}

/// Reads `blob` on a thread of `scope` in large chunks, hashing them into `tap`; the returned
/// reader gives them out. The whole blob is read and hashed even if its reader stops early.
fn hash_ahead<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    mut blob: Box<dyn Read + Send + 'env>,
    tap: Tap,
    stop: Arc<AtomicBool>,
    depth: usize,
    read_all: Arc<AtomicBool>,
) -> Chunks {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(depth);
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(depth + 2);
    scope.spawn(move || {
        let mut listening = true;
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let mut buf = back_rx.try_recv().unwrap_or_default();
            buf.resize(CHUNK, 0);
            // Read and hash a piece at a time, so that the hash reads what the read just
            // wrote while it is still in this core's cache.
            let mut n = 0;
            let mut eof = false;
            while n < CHUNK {
                let end = (n + PIECE).min(CHUNK);
                match blob.read(&mut buf[n..end]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(k) => {
                        tap.update(&buf[n..n + k]);
                        n += k;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            buf.truncate(n);
            if eof {
                read_all.store(true, Ordering::Relaxed);
            }
            if n > 0 && listening && tx.send(Ok(buf)).is_err() {
                listening = false;
            }
            if eof {
                return;
            }
        }
    });
    Chunks {
        rx,
        back: back_tx,
        chunk: Vec::new(),
        pos: 0,
        tap: None,
        tap_rx: None,
    }
}

/// Chunks received from a thread, read as one stream; emptied chunks go back to be refilled.
struct Chunks {
    rx: Receiver<io::Result<Vec<u8>>>,
    back: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    /// Hashes every chunk received,
    tap: Option<Tap>,
    /// once the sender says, before its first chunk, whether to and how.
    tap_rx: Option<Receiver<Option<Tap>>>,
}

impl Chunks {
    /// The rest of the current chunk, the next one received if it is used up; empty at the
    /// end of the stream.
    fn fill(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    if let Some(rx) = self.tap_rx.take() {
                        self.tap = rx.recv().ok().flatten();
                    }
                    if let Some(tap) = &self.tap {
                        tap.update(&chunk);
                    }
                    let done = std::mem::replace(&mut self.chunk, chunk);
                    let _ = self.back.try_send(done);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.chunk[self.pos..])
    }
}

impl Read for Chunks {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let chunk = self.fill()?;
        let n = out.len().min(chunk.len());
        out[..n].copy_from_slice(&chunk[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl io::BufRead for Chunks {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.fill()
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}

impl Ahead<'_> {
    /// Set once the whole stream is decoded: the threads are done but for what the reader
    /// has still to take.
    pub fn decoded_flag(&self) -> Arc<AtomicBool> {
        self.decoded.clone()
    }

    /// Reads the rest of the stream (past the end of the archive: padding, a trailing gzip
    /// member) so that it is hashed, waits for the decoder, and returns what was measured.
    pub fn finish(mut self) -> Result<Measured> {
        let mut sink = [0u8; 1 << 16];
        while self.read(&mut sink).map_err(|e| {
            Error::io("cannot read the end of the layer", e).with_kind(ErrorKind::Input)
        })? > 0
        {}
        drop(self.chunks.rx);
        let handle = match self.end {
            End::Decoder(handle) => handle,
            End::Plain(tap) => {
                // The reading thread is done: the stream ended, so every chunk was hashed.
                let (digest, size) = tap.result();
                return Ok(Measured {
                    compression: super::Compression::None,
                    blob: digest.clone(),
                    blob_size: size,
                    diff_id: digest,
                    size,
                });
            }
        };
        let mut measured = handle
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Io, "the decoder thread panicked")))?;
        if let Some(tap) = self.chunks.tap {
            let (digest, size) = tap.result();
            measured.diff_id = digest;
            measured.size = size;
        }
        Ok(measured)
    }

    /// Stops the decoder (after an error of the reader's own).
    pub fn abort(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.chunks.rx);
        if let End::Decoder(handle) = self.end {
            let _ = handle.join();
        }
    }
}

impl Read for Ahead<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.chunks.read(out)
    }
}

/// Dead content is passed over chunk by chunk, never copied.
impl crate::tar::Source for Ahead<'_> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        use io::BufRead;
        let mut done = 0;
        while done < n {
            let have = self.chunks.fill_buf()?.len();
            if have == 0 {
                break;
            }
            let k = have.min((n - done).min(usize::MAX as u64) as usize);
            self.chunks.consume(k);
            done += k as u64;
        }
        Ok(done)
    }

    fn lends(&self) -> bool {
        true
    }

    fn peek(&mut self) -> io::Result<&[u8]> {
        self.chunks.fill()
    }

    fn advance(&mut self, n: usize) {
        io::BufRead::consume(&mut self.chunks, n);
    }
}
