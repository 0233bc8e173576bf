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
/// Chunks in flight: enough to ride out a slow write, little enough to stay small.
const DEPTH: usize = 4;

/// The uncompressed stream of a layer decoded on another thread; read it, then call
/// [`Ahead::finish`] for the digests.
pub struct Ahead<'scope> {
    rx: Receiver<io::Result<Vec<u8>>>,
    /// Hashes the uncompressed stream here, so the decoder thread only inflates and hashes
    /// the blob: the two threads share the work more evenly.
    diff: Option<Tap>,
    /// Where the decoder says whether `diff` is needed, once it has seen the blob.
    diff_rx: Option<Receiver<Option<Tap>>>,
    back: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    stop: Arc<AtomicBool>,
    handle: ScopedJoinHandle<'scope, Result<Measured>>,
}

/// Starts decoding `blob` on a thread of `scope`.
pub fn decode_ahead<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    blob: Box<dyn Read + Send + 'env>,
    expected: &Expected,
    hash: bool,
) -> Ahead<'scope> {
    let (tx, rx) = sync_channel(DEPTH);
    // Emptied chunks come back to be filled again: no allocation, zeroing or page fault per
    // megabyte.
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    let stop = Arc::new(AtomicBool::new(false));
    let expected = expected.clone();
    let halt = stop.clone();
    let (diff_tx, diff_rx) = sync_channel::<Option<Tap>>(1);
    let handle = scope.spawn(move || -> Result<Measured> {
        let mut decoded = if hash {
            let (d, tap) = Decoded::hashing_blob(blob, &expected)?;
            let _ = diff_tx.send(tap);
            d
        } else {
            let _ = diff_tx.send(None);
            Decoded::hashing(blob, &expected, false)?
        };
        let mut listening = true;
        loop {
            if halt.load(Ordering::Relaxed) {
                return Err(Error::new(ErrorKind::Interrupted, "stopped"));
            }
            let mut buf = back_rx.try_recv().unwrap_or_default();
            buf.resize(CHUNK, 0);
            let mut len = 0;
            let eof = loop {
                match decoded.reader().read(&mut buf[len..]) {
                    Ok(0) => break true,
                    Ok(n) => {
                        len += n;
                        if len == buf.len() {
                            break false;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // The reader reports it where it happens, in the tar it is reading.
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(
                            Error::io("cannot decode the layer", e).with_kind(ErrorKind::Input)
                        );
                    }
                }
            };
            buf.truncate(len);
            // Once the reader has what it needs (the end-of-archive marker), the rest is
            // only hashed.
            if listening && len > 0 && tx.send(Ok(buf)).is_err() {
                listening = false;
            }
            if eof {
                break;
            }
        }
        drop(tx);
        decoded.finish()
    });
    Ahead {
        rx,
        diff: None,
        diff_rx: Some(diff_rx),
        back: back_tx,
        chunk: Vec::new(),
        pos: 0,
        stop,
        handle,
    }
}

impl Ahead<'_> {
    /// Reads the rest of the stream (past the end of the archive: padding, a trailing gzip
    /// member) so that it is hashed, waits for the decoder, and returns what was measured.
    pub fn finish(mut self) -> Result<Measured> {
        let mut sink = [0u8; 1 << 16];
        while self.read(&mut sink).map_err(|e| {
            Error::io("cannot read the end of the layer", e).with_kind(ErrorKind::Input)
        })? > 0
        {}
        drop(self.rx);
        let mut measured = self
            .handle
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Io, "the decoder thread panicked")))?;
        if let Some(tap) = self.diff {
            let (digest, size) = tap.result();
            measured.diff_id = digest;
            measured.size = size;
        }
        Ok(measured)
    }

    /// Stops the decoder (after an error of the reader's own).
    pub fn abort(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx);
        let _ = self.handle.join();
    }
}

impl Read for Ahead<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    if let Some(rx) = self.diff_rx.take() {
                        self.diff = rx.recv().ok().flatten();
                    }
                    if let Some(tap) = &self.diff {
                        tap.update(&chunk);
                    }
                    let done = std::mem::replace(&mut self.chunk, chunk);
                    let _ = self.back.try_send(done);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
