//! Extended attributes, through rustix: set on an open file or on a name inside a directory
//! handle, listed and read back (to compare trees). Names and values are bytes; a
//! value may be empty or hold any byte.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::fs::XattrFlags;

/// `/proc/self/fd/N/name`: `name` inside directory `dir`, reached through the handle, never
/// through a path walk; the `l*` calls do not follow it if it is a symlink.
fn at(dir: BorrowedFd<'_>, name: &[u8]) -> Vec<u8> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    p
}

/// Sets an attribute on an open file or directory.
pub fn fset(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    Ok(rustix::fs::fsetxattr(fd, name, value, XattrFlags::empty())?)
}

/// Sets an attribute on `name` inside directory `dir` without following a final symlink.
pub fn set_at(dir: BorrowedFd<'_>, name: &[u8], attr: &[u8], value: &[u8]) -> io::Result<()> {
    Ok(rustix::fs::lsetxattr(
        at(dir, name).as_slice(),
        attr,
        value,
        XattrFlags::empty(),
    )?)
}

/// Lists the attribute names of `name` inside directory `dir` (a symlink's own).
pub fn list_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<Vec<u8>>> {
    let path = at(dir, name);
    let list = sized(
        || rustix::fs::llistxattr_query(path.as_slice()),
        |buf| rustix::fs::llistxattr(path.as_slice(), buf),
    )?;
    Ok(names(&list))
}

/// The value of attribute `attr` of `name` inside directory `dir` (a symlink's own).
pub fn get_at(dir: BorrowedFd<'_>, name: &[u8], attr: &[u8]) -> io::Result<Vec<u8>> {
    let path = at(dir, name);
    sized(
        || rustix::fs::lgetxattr_query(path.as_slice(), attr),
        |buf| rustix::fs::lgetxattr(path.as_slice(), attr, buf),
    )
}

/// Asks the size, then reads into a buffer of it; again if it grew in between.
fn sized(
    query: impl Fn() -> rustix::io::Result<usize>,
    read: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Vec<u8>> {
    loop {
        let mut buf = vec![0u8; query()?];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The names of a NUL-separated list.
fn names(list: &[u8]) -> Vec<Vec<u8>> {
    list.split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}
