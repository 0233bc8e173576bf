//! The merged tree as one tar stream, in the order `docker export` uses: depth first, names
//! in byte order, each directory (with a trailing `/`) before its contents, no root entry.
//! Numeric owners, hardlinks as links to the first name, PAX records for long names,
//! xattrs, sub-second mtimes and out-of-range numbers. The same tree always gives the same
//! bytes: no user or group names, no times of the run, fixed header names.

use std::io::{self, Write};

#[cfg(doc)]
use crate::merge::plan::Plan;
use crate::merge::Listed;
use crate::vocabulary::node::NodeKind;

const BLOCK: usize = 512;

/// A file's content, written by the caller: where it comes from is theirs to know.
pub type Content<'a> = dyn FnMut(&Listed, &mut dyn Write) -> io::Result<()> + 'a;

/// Writes `entries` (a listing in `docker export`'s order, as [`Plan::list`] gives) to
/// `out`, each file's bytes from `content`. What `docker export` keeps of each entry was
/// decided when the layers were read (`crate::layer::read`, the export rules).
pub fn write(entries: &[Listed], content: &mut Content<'_>, out: &mut dyn Write) -> io::Result<()> {
    for e in entries {
        entry(e, content, out)?;
    }
    out.write_all(&[0; 2 * BLOCK])?;
    out.flush()
}

fn entry(e: &Listed, content: &mut Content<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut name = e.path.clone();
    let (typeflag, link, size, dev) = match (&e.kind, &e.hardlink_to) {
        (_, Some(first)) => (b'1', first.clone(), 0, (0, 0)),
        (NodeKind::File { size, .. }, None) => (b'0', Vec::new(), *size, (0, 0)),
        (NodeKind::Dir, None) => {
            name.push(b'/');
            (b'5', Vec::new(), 0, (0, 0))
        }
        (NodeKind::Symlink(t), None) => (b'2', t.clone(), 0, (0, 0)),
        (NodeKind::CharDevice(a, b), None) => (b'3', Vec::new(), 0, (*a, *b)),
        (NodeKind::BlockDevice(a, b), None) => (b'4', Vec::new(), 0, (*a, *b)),
        (NodeKind::Fifo, None) => (b'6', Vec::new(), 0, (0, 0)),
    };
    let m = &e.meta;
    let mut pax = Vec::new();
    if name.len() > 100 {
        record(&mut pax, b"path", &name);
    }
    if link.len() > 100 {
        record(&mut pax, b"linkpath", &link);
    }
    let fits = |v: u64, digits: u32| v < 8u64.pow(digits);
    if !fits(size, 11) {
        record(&mut pax, b"size", size.to_string().as_bytes());
    }
    if !fits(u64::from(m.uid), 7) {
        record(&mut pax, b"uid", m.uid.to_string().as_bytes());
    }
    if !fits(u64::from(m.gid), 7) {
        record(&mut pax, b"gid", m.gid.to_string().as_bytes());
    }
    if m.mtime.nanos != 0 || m.mtime.secs < 0 || !fits(m.mtime.secs as u64, 11) {
        record(&mut pax, b"mtime", m.mtime.to_string().as_bytes());
    }
    let mut xattrs = m.xattrs.clone();
    xattrs.sort();
    for (k, v) in &xattrs {
        record(&mut pax, &[&b"SCHILY.xattr."[..], k].concat(), v);
    }
    if !pax.is_empty() {
        let h = header(
            b"././@PaxHeader",
            b'x',
            b"",
            0o644,
            0,
            0,
            pax.len() as u64,
            0,
            (0, 0),
        );
        out.write_all(&h)?;
        out.write_all(&pax)?;
        pad(out, pax.len() as u64)?;
    }
    let mtime = if m.mtime.secs < 0 {
        0
    } else {
        m.mtime.secs as u64
    };
    let h = header(
        &name, typeflag, &link, m.mode, m.uid, m.gid, size, mtime, dev,
    );
    out.write_all(&h)?;
    if size > 0 {
        content(e, out)?;
        pad(out, size)?;
    }
    Ok(())
}

fn pad(out: &mut dyn Write, len: u64) -> io::Result<()> {
    let r = (len % BLOCK as u64) as usize;
    if r != 0 {
        out.write_all(&[0; BLOCK][..BLOCK - r])?;
    }
    Ok(())
}

/// One PAX record: `<len> <key>=<value>\n`, where `<len>` counts itself.
fn record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = len.to_string().len() + body;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A ustar header; numbers that do not fit are written as 0 (the PAX record carries them),
/// names longer than 100 bytes are cut (likewise).
#[allow(clippy::too_many_arguments)]
fn header(
    name: &[u8],
    typeflag: u8,
    link: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: u64,
    dev: (u32, u32),
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let put = |h: &mut [u8; BLOCK], at: usize, len: usize, v: u64| {
        let digits = len - 1;
        let v = if v < 8u64.pow(digits as u32) { v } else { 0 };
        let s = format!("{v:0digits$o}");
        h[at..at + digits].copy_from_slice(s.as_bytes());
    };
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    put(&mut h, 100, 8, u64::from(mode & 0o7777));
    put(&mut h, 108, 8, u64::from(uid));
    put(&mut h, 116, 8, u64::from(gid));
    put(&mut h, 124, 12, size);
    put(&mut h, 136, 12, mtime);
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put(&mut h, 329, 8, u64::from(dev.0));
    put(&mut h, 337, 8, u64::from(dev.1));
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::record;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut v = Vec::new();
        record(&mut v, b"path", b"a");
        assert_eq!(v, b"9 path=a\n");
        let mut v = Vec::new();
        record(&mut v, b"k", &[b'x'; 95]);
        assert_eq!(&v[..4], b"102 ");
        assert_eq!(v.len(), 102);
    }
}
