//! Layers fetched beside the reading: each blob goes to a file (in the cache, or unnamed),
//! a few at a time in the order the reader will want them, while the reader follows the
//! file as it grows. A dropped connection is resumed with a range request; a blob longer
//! than its descriptor says is cut off; a blob is kept in the cache only once its digest
//! is checked, and the reader sees its end only then: a blob that fails its check ends
//! the reading with that error, whatever was read before.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::cache::Cache;
use super::http::{Client, Get};
use crate::digest::{Digest, Tap};
use crate::error::{Error, ErrorKind, Result};
use crate::vocabulary::progress::{Cancel, Download};

/// How many blobs are fetched at once by default (Docker fetches 3).
pub const CONCURRENT: usize = 3;
/// How many times a broken transfer of one blob is resumed before it fails.
const RESUMES: u32 = 5;
/// The size of each read from the network and write to the file.
const PIECE: usize = 128 << 10;

/// A blob on its way to a local file.
pub(crate) struct Blob {
    pub digest: Digest,
    pub size: Option<u64>,
    /// Where a blob of unknown size is cut off (a config is read whole, up to a limit).
    pub limit: u64,
    state: Mutex<State>,
    grew: Condvar,
}

struct State {
    file: Option<Arc<File>>,
    written: u64,
    outcome: Outcome,
    /// The name of the cache's temporary file while the blob is being fetched into it.
    temp: Option<std::path::PathBuf>,
}

enum Outcome {
    Waiting,
    Running,
    Done,
    Failed(ErrorKind, String),
}

impl Blob {
    pub fn new(digest: Digest, size: Option<u64>, limit: u64) -> Arc<Blob> {
        Arc::new(Blob {
            digest,
            size,
            limit,
            state: Mutex::new(State {
                file: None,
                written: 0,
                outcome: Outcome::Waiting,
                temp: None,
            }),
            grew: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The whole verified file, once fetched.
    pub fn done(&self) -> Option<(Arc<File>, u64)> {
        let s = self.lock();
        match (&s.outcome, &s.file) {
            (Outcome::Done, Some(f)) => Some((f.clone(), s.written)),
            _ => None,
        }
    }

    /// Removes the temporary file of a fetch that will not finish (the run is ending: the
    /// thread fetching it may be blocked on the network, and would not clean up in time).
    pub fn abandon(&self) {
        if let Some(path) = self.lock().temp.take() {
            let _ = std::fs::remove_file(path);
        }
    }

    fn fail(&self, e: &Error) {
        let mut s = self.lock();
        if matches!(s.outcome, Outcome::Waiting | Outcome::Running) {
            s.outcome = Outcome::Failed(e.kind(), e.to_string());
        }
        self.grew.notify_all();
    }

    /// A reader of the blob from its start, waiting for bytes still on their way.
    pub fn follow(self: &Arc<Blob>, cancel: &Cancel) -> Follow {
        Follow {
            blob: self.clone(),
            pos: 0,
            cancel: cancel.clone(),
        }
    }
}

/// Reads a blob as it is fetched.
pub(crate) struct Follow {
    blob: Arc<Blob>,
    pos: u64,
    cancel: Cancel,
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.blob.lock();
        loop {
            if let (Some(file), true) = (&s.file, self.pos < s.written) {
                let file = file.clone();
                let n = (s.written - self.pos).min(buf.len() as u64) as usize;
                drop(s);
                let n = file.read_at(&mut buf[..n], self.pos)?;
                self.pos += n as u64;
                return Ok(n);
            }
            match &s.outcome {
                Outcome::Done => return Ok(0),
                Outcome::Failed(kind, message) => {
                    return Err(io::Error::other(Error::new(*kind, message.clone())))
                }
                Outcome::Waiting | Outcome::Running => {}
            }
            if self.cancel.is_cancelled() {
                // Not io's Interrupted, which readers retry: ours, which ends the run.
                return Err(io::Error::other(Error::new(
                    ErrorKind::Interrupted,
                    "interrupted while a blob was being fetched",
                )));
            }
            s = self
                .blob
                .grew
                .wait_timeout(s, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A blob larger than this is fetched alone: on a link that bounds the pull, the blob the
/// reader will want first then gets the whole link, instead of sharing it with ones it
/// wants later (which would leave their reading for after the last byte: 0.44 s against
/// 0.08 s for the debian benchmark at 1 Gbit/s). Small blobs, where a round trip costs
/// more than the bytes, are fetched beside it.
const LARGE: u64 = 8 << 20;

/// The blobs waiting for a fetcher, in the order the reader wants them.
#[derive(Default)]
pub(crate) struct Queue {
    state: Mutex<Waiting>,
    /// Told when a large blob is fetched.
    freed: Condvar,
}

#[derive(Default)]
struct Waiting {
    blobs: VecDeque<(Arc<Blob>, Box<dyn Download>)>,
    /// How many fetchers run (counted under this lock, so that a fetcher never leaves
    /// while a blob is queued unseen).
    running: usize,
    /// Whether a large blob is being fetched.
    large: bool,
}

impl Blob {
    fn is_large(&self) -> bool {
        self.size.unwrap_or(self.limit) > LARGE
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a blob; true if a fetcher should be started for it (fewer than `limit` run).
    pub fn push(&self, blob: Arc<Blob>, bar: Box<dyn Download>, limit: usize) -> bool {
        let mut q = self.lock();
        q.blobs.push_back((blob, bar));
        let start = q.running < limit;
        if start {
            q.running += 1;
        }
        start
    }

    /// A fetcher could not be started after all.
    pub fn not_started(&self) {
        self.lock().running -= 1;
    }

    /// The next blob to fetch, and whether it is large; `None` when there is none left (or
    /// the run stops), and the fetcher leaves.
    fn next(&self, stop: &[&Cancel]) -> Option<(Arc<Blob>, Box<dyn Download>, bool)> {
        let mut q = self.lock();
        loop {
            let busy = q.large;
            let eligible = q.blobs.iter().position(|(b, _)| !busy || !b.is_large());
            let stopped = stop.iter().any(|s| s.is_cancelled());
            match eligible {
                Some(i) if !stopped => {
                    let (blob, bar) = q.blobs.remove(i)?;
                    let large = blob.is_large();
                    q.large |= large;
                    return Some((blob, bar, large));
                }
                None if !stopped && !q.blobs.is_empty() => {
                    q = self
                        .freed
                        .wait_timeout(q, Duration::from_millis(100))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                _ => {
                    q.running -= 1;
                    return None;
                }
            }
        }
    }

    /// The large blob being fetched is done.
    fn large_done(&self) {
        self.lock().large = false;
        self.freed.notify_all();
    }
}

/// Fetches blobs from `queue` until it is empty or one of `stop` is cancelled (the store
/// was dropped, or the user interrupted the run).
pub(crate) fn worker(client: &Client, cache: &Cache, queue: &Queue, stop: &[&Cancel]) {
    while let Some((blob, mut bar, large)) = queue.next(stop) {
        if let Err(e) = fetch(client, cache, &blob, &mut *bar, stop) {
            blob.fail(&e);
        }
        bar.finish();
        if large {
            queue.large_done();
        }
    }
}

/// Fetches one blob (or finds it in the cache), verified.
fn fetch(
    client: &Client,
    cache: &Cache,
    blob: &Blob,
    bar: &mut dyn Download,
    stop: &[&Cancel],
) -> Result<()> {
    if let Some(file) = cache.get(&blob.digest) {
        // Never trusted unverified: hashed here (beside the reading, a fraction of the time
        // inflating takes), and fetched anew if it is not what its name says.
        if let Some(len) = cached_len(&file, blob, stop)? {
            bar.advance(len);
            let mut s = blob.lock();
            s.file = Some(Arc::new(file));
            s.written = len;
            s.outcome = Outcome::Done;
            blob.grew.notify_all();
            return Ok(());
        }
        cache.forget(&blob.digest);
    }
    let spool = cache.spool()?;
    let file = Arc::new(spool.file);
    {
        let mut s = blob.lock();
        s.file = Some(file.clone());
        s.outcome = Outcome::Running;
        s.temp = spool.temp.as_ref().map(|t| t.to_path_buf());
    }
    let shown = crate::error::short_digest(&blob.digest.to_string()).to_owned();
    let tap = Tap::new(blob.digest.algorithm());
    let mut got: u64 = 0;
    let mut broken = 0;
    let path = format!("blobs/{}", blob.digest);
    let mut piece = vec![0u8; PIECE];
    loop {
        let mut response = client.get(&Get {
            path: &path,
            accept: None,
            from: got,
        })?;
        // A server that ignores the range sends it all again: skip what we have.
        let mut skip = if got > 0 && response.status().as_u16() == 206 {
            let start = content_range_start(&response);
            if start != Some(got) {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!("{} resumed blob {shown} at the wrong place", client.name),
                ));
            }
            0
        } else {
            got
        };
        let mut body = response.body_mut().as_reader();
        let ended = loop {
            for s in stop {
                s.check(|| format!("interrupted while fetching blob {shown}"))?;
            }
            let n = match body.read(&mut piece) {
                Ok(0) => break None,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Some(e),
            };
            let mut data = &piece[..n];
            if skip > 0 {
                let drop_n = (skip as usize).min(data.len());
                data = &data[drop_n..];
                skip -= drop_n as u64;
                if data.is_empty() {
                    continue;
                }
            }
            if let Some(size) = blob.size.or(Some(blob.limit)) {
                if got + data.len() as u64 > size {
                    return Err(Error::new(
                        ErrorKind::Verification,
                        format!(
                            "{} sent more than the {size} bytes of blob {shown}",
                            client.name
                        ),
                    ));
                }
            }
            file.write_all_at(data, got)
                .map_err(|e| Error::io("cannot write a fetched blob to its temporary file", e))?;
            tap.update(data);
            got += data.len() as u64;
            bar.advance(data.len() as u64);
            blob.lock().written = got;
            blob.grew.notify_all();
        };
        let short = blob.size.is_some_and(|s| got < s);
        match ended {
            None if !short => break,
            why => {
                broken += 1;
                if broken > RESUMES {
                    let why = why.map_or_else(
                        || "the connection closed early".to_owned(),
                        |e| e.to_string(),
                    );
                    return Err(Error::new(
                        ErrorKind::Network,
                        format!(
                            "{}: the transfer of blob {shown} broke {broken} times, last at byte {got}: {}",
                            client.name,
                            crate::vocabulary::quote::printable(&why)
                        ),
                    ));
                }
                client.pause(broken, None)?;
            }
        }
    }
    let (digest, _) = tap.result();
    if digest != blob.digest {
        return Err(Error::new(
            ErrorKind::Verification,
            format!(
                "{} sent wrong bytes for blob {shown}: their digest is {}",
                client.name,
                crate::error::short_digest(&digest.to_string())
            ),
        ));
    }
    let mut s = blob.lock();
    if s.temp.take().is_none() && spool.temp.is_some() {
        // Abandoned: the run is over.
        return Ok(());
    }
    cache.keep(spool.temp, &blob.digest);
    s.outcome = Outcome::Done;
    blob.grew.notify_all();
    Ok(())
}

/// The length of a cached blob, if its size and digest are right.
fn cached_len(file: &File, blob: &Blob, stop: &[&Cancel]) -> Result<Option<u64>> {
    let tap = Tap::new(blob.digest.algorithm());
    let mut piece = vec![0u8; PIECE];
    let mut len = 0u64;
    loop {
        for s in stop {
            s.check(|| "interrupted while checking the cache".to_owned())?;
        }
        let n = match file.read_at(&mut piece, len) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        };
        tap.update(&piece[..n]);
        len += n as u64;
        if len > blob.size.unwrap_or(blob.limit) {
            return Ok(None);
        }
    }
    let ok = blob.size.is_none_or(|s| s == len) && tap.result().0 == blob.digest;
    Ok(ok.then_some(len))
}

/// `bytes 100-199/200` → 100.
fn content_range_start(r: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = r.headers().get("content-range")?.to_str().ok()?;
    let range = v.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}
