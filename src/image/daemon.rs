//! `docker-daemon:REF`: an image read from the local Docker Engine over its API socket,
//! through the image export endpoint (`GET /images/REF/get`, what `docker save` uses), with
//! no docker CLI. The answer is a `docker save` archive, read like any other.
//!
//! The socket is `$DOCKER_HOST` (`unix:///path`) or `/var/run/docker.sock`. The HTTP spoken
//! is the little the endpoint needs: one request, `Connection: close`, a body sent whole,
//! by length or in chunks. The daemon is trusted no more than an archive is: the header
//! block is bounded, chunk sizes are checked, and what it sends is verified like any image.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::vocabulary::quote::{quote, quote_path};

/// The most the status line and headers may take.
const MAX_HEAD: usize = 64 << 10;
/// The most of an error answer's body that is read for its message.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// Where the Docker Engine listens: `$DOCKER_HOST` if it names a Unix socket, else the
/// default socket.
fn socket() -> Result<PathBuf> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => match host.strip_prefix("unix://") {
            Some(path) => Ok(PathBuf::from(path)),
            None => Err(Error::usage(format!(
                "DOCKER_HOST={} is not a Unix socket (unix:///path); flatten reads the Docker \
                 daemon only through its socket",
                quote(host.as_bytes())
            ))),
        },
        _ => Ok(PathBuf::from("/var/run/docker.sock")),
    }
}

/// `REF` as a path segment of the API: its characters kept where the API's router takes
/// them (`/`, `:`, `@` included), the rest percent-encoded.
fn encode(reference: &str) -> String {
    let mut out = String::with_capacity(reference.len());
    for b in reference.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The image `reference` as the daemon exports it: a `docker save` tar stream.
pub fn export(reference: &str) -> Result<Box<dyn Read + Send>> {
    let path = socket()?;
    let shown = || quote_path(&path);
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        Error::io(
            format!(
                "cannot reach the Docker daemon at {} (set DOCKER_HOST)",
                shown()
            ),
            e,
        )
    })?;
    let request = format!(
        "GET /images/{}/get HTTP/1.1\r\nHost: docker\r\nUser-Agent: flatten/{}\r\nConnection: close\r\n\r\n",
        encode(reference),
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).map_err(|e| {
        Error::io(
            format!("cannot talk to the Docker daemon at {}", shown()),
            e,
        )
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let head = read_head(&mut reader).map_err(|e| {
        Error::io(
            format!("bad answer from the Docker daemon at {}", shown()),
            e,
        )
    })?;
    let body: Box<dyn Read + Send> = match head.framing {
        Framing::Chunked => Box::new(Chunked::new(reader)),
        Framing::Length(n) => Box::new(Exact {
            inner: reader.take(n),
            left: n,
        }),
        Framing::Close => Box::new(reader),
    };
    if head.status == 200 {
        return Ok(body);
    }
    // The daemon says why in a JSON object: {"message": "..."}.
    let mut text = Vec::new();
    let _ = body.take(MAX_ERROR_BODY).read_to_end(&mut text);
    let message = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&text).trim().to_owned());
    // A name the daemon cannot parse is the user's to fix, as an unknown --image is (Docker
    // 20.10 says so with a 500, later ones with a 400).
    let kind = match head.status {
        _ if message.contains("invalid reference format") => ErrorKind::Usage,
        400 => ErrorKind::Usage,
        404 => ErrorKind::Input,
        _ => ErrorKind::Io,
    };
    Err(Error::new(
        kind,
        format!(
            "the Docker daemon at {} cannot export {}: {} (HTTP {})",
            shown(),
            quote(reference.as_bytes()),
            crate::vocabulary::quote::printable(&message),
            head.status
        ),
    ))
}

/// How the body is delimited.
enum Framing {
    Chunked,
    Length(u64),
    Close,
}

struct Head {
    status: u16,
    framing: Framing,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Reads the status line and headers, at most [`MAX_HEAD`] bytes.
fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    let mut used = 0usize;
    let mut line = Vec::new();
    let mut next_line = |r: &mut dyn BufRead, line: &mut Vec<u8>| -> io::Result<()> {
        line.clear();
        let n = r.take((MAX_HEAD - used) as u64).read_until(b'\n', line)?;
        used += n;
        if !line.ends_with(b"\n") {
            return Err(bad("the answer's headers are cut short or too long"));
        }
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
        Ok(())
    };
    next_line(r, &mut line)?;
    let status_line = String::from_utf8_lossy(&line).into_owned();
    let mut parts = status_line.splitn(3, ' ');
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code
            .parse::<u16>()
            .map_err(|_| bad(format!("bad status line {}", quote(line.as_slice()))))?,
        _ => return Err(bad(format!("bad status line {}", quote(line.as_slice())))),
    };
    let mut framing = Framing::Close;
    loop {
        next_line(r, &mut line)?;
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let Some((name, value)) = text.split_once(':') else {
            return Err(bad(format!("bad header line {}", quote(line.as_slice()))));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.eq_ignore_ascii_case("chunked") {
                framing = Framing::Chunked;
            } else {
                return Err(bad(format!("unsupported transfer encoding {value}")));
            }
        } else if name.eq_ignore_ascii_case("content-length")
            && !matches!(framing, Framing::Chunked)
        {
            let n = value
                .parse::<u64>()
                .map_err(|_| bad(format!("bad content length {value}")))?;
            framing = Framing::Length(n);
        }
    }
    Ok(Head { status, framing })
}

/// A body of known length: ending before it is an error, not the end.
struct Exact<R> {
    inner: std::io::Take<R>,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the Docker daemon's answer ends {} bytes early", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A body in HTTP/1.1 chunks.
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk; `None` before a size line.
    left: Option<u64>,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: None,
            done: false,
        }
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        self.inner
            .by_ref()
            .take(1024)
            .read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\n") {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the Docker daemon's answer ends inside a chunk header",
            ));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(line)
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            match self.left {
                None => {
                    let line = self.line()?;
                    let digits = line.split(|b| *b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                        .ok_or_else(|| bad(format!("bad chunk size {}", quote(&line))))?;
                    if size == 0 {
                        // Trailers, if any, up to the empty line.
                        while !self.line()?.is_empty() {}
                        self.done = true;
                        return Ok(0);
                    }
                    self.left = Some(size);
                }
                Some(0) => {
                    if !self.line()?.is_empty() {
                        return Err(bad("a chunk longer than its size"));
                    }
                    self.left = None;
                }
                Some(left) => {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the Docker daemon's answer ends inside a chunk",
                        ));
                    }
                    self.left = Some(left - n as u64);
                    return Ok(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(answer: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        let mut r = BufReader::new(answer);
        let head = read_head(&mut r)?;
        let mut out = Vec::new();
        match head.framing {
            Framing::Chunked => Chunked::new(r).read_to_end(&mut out)?,
            Framing::Length(n) => Exact {
                inner: r.take(n),
                left: n,
            }
            .read_to_end(&mut out)?,
            Framing::Close => r.read_to_end(&mut out)?,
        };
        Ok((head.status, out))
    }

    #[test]
    fn chunked_and_sized_bodies() {
        let a = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(body(a).unwrap(), (200, b"hello!".to_vec()));
        let b = b"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(body(b).unwrap(), (404, b"abc".to_vec()));
    }

    #[test]
    fn a_lying_or_cut_answer_is_an_error() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert!(body(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn references_are_encoded_as_path_segments() {
        assert_eq!(encode("flatten-test/x:latest"), "flatten-test/x:latest");
        assert_eq!(encode("a b?c#d"), "a%20b%3Fc%23d");
        assert_eq!(encode("x@sha256:00ff"), "x@sha256:00ff");
    }
}
