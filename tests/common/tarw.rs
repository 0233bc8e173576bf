//! A minimal tar writer for hand-made layers: ustar headers plus PAX records for long names,
//! xattrs and fractional times. Unlike `tar::Builder` it writes any name it is given (`..`,
//! absolute paths, NUL-free garbage), which hostile-input tests need.

#![allow(dead_code)]

#[derive(Clone, Debug)]
pub struct E {
    pub name: Vec<u8>,
    pub typeflag: u8,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub data: Vec<u8>,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub pax: Vec<(String, Vec<u8>)>,
    /// PAX header data written exactly as given (for malformed records).
    pub raw_pax: Option<Vec<u8>>,
    /// PAX global header data written before this entry.
    pub global: Option<Vec<u8>>,
    pub dev: (u32, u32),
}

impl E {
    fn new(name: &str, typeflag: u8, mode: u32) -> E {
        E {
            name: name.as_bytes().to_vec(),
            typeflag,
            link: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            data: Vec::new(),
            xattrs: Vec::new(),
            pax: Vec::new(),
            raw_pax: None,
            global: None,
            dev: (0, 0),
        }
    }
    pub fn file(name: &str, data: &[u8]) -> E {
        let mut e = E::new(name, b'0', 0o644);
        e.data = data.to_vec();
        e
    }
    pub fn dir(name: &str) -> E {
        E::new(name, b'5', 0o755)
    }
    pub fn symlink(name: &str, target: &str) -> E {
        let mut e = E::new(name, b'2', 0o777);
        e.link = target.as_bytes().to_vec();
        e
    }
    pub fn hardlink(name: &str, target: &str) -> E {
        let mut e = E::new(name, b'1', 0o644);
        e.link = target.as_bytes().to_vec();
        e
    }
    pub fn fifo(name: &str) -> E {
        E::new(name, b'6', 0o644)
    }
    pub fn chardev(name: &str, major: u32, minor: u32) -> E {
        let mut e = E::new(name, b'3', 0o666);
        e.dev = (major, minor);
        e
    }
    pub fn whiteout(name: &str) -> E {
        E::file(name, b"")
    }
    pub fn mode(mut self, m: u32) -> E {
        self.mode = m;
        self
    }
    pub fn owner(mut self, uid: u32, gid: u32) -> E {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, t: u64) -> E {
        self.mtime = t;
        self
    }
    pub fn xattr(mut self, k: &str, v: &[u8]) -> E {
        self.xattrs.push((k.to_owned(), v.to_vec()));
        self
    }
    pub fn pax(mut self, k: &str, v: &[u8]) -> E {
        self.pax.push((k.to_owned(), v.to_vec()));
        self
    }
    /// Writes `data` as this entry's PAX header, exactly.
    pub fn raw_pax(mut self, data: &[u8]) -> E {
        self.raw_pax = Some(data.to_vec());
        self
    }
    /// Writes a PAX global header with these records before this entry.
    pub fn global(mut self, records: &[(&str, &[u8])]) -> E {
        let mut g = Vec::new();
        for (k, v) in records {
            g.extend(record(k.as_bytes(), v));
        }
        self.global = Some(g);
        self
    }
    pub fn raw_name(mut self, n: &[u8]) -> E {
        self.name = n.to_vec();
        self
    }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    let b = s.as_bytes();
    let w = field.len() - 1;
    let b = &b[b.len() - w..];
    field[..w].copy_from_slice(b);
    field[w] = 0;
}

fn header(name: &[u8], typeflag: u8, link: &[u8], e: &E, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(e.mode));
    octal(&mut h[108..116], u64::from(e.uid));
    octal(&mut h[116..124], u64::from(e.gid));
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], e.mtime);
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], u64::from(e.dev.0));
    octal(&mut h[337..345], u64::from(e.dev.1));
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    octal(&mut h[148..155], u64::from(sum));
    h[155] = b' ';
    h
}

fn pad(out: &mut Vec<u8>) {
    let r = out.len() % 512;
    if r != 0 {
        out.extend(std::iter::repeat_n(0, 512 - r));
    }
}

/// One PAX record with its length right.
pub fn record(k: &[u8], v: &[u8]) -> Vec<u8> {
    let body_len = 1 + k.len() + 1 + v.len() + 1;
    let mut len = body_len + 1;
    while format!("{len}").len() + body_len != len {
        len = format!("{len}").len() + body_len;
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(k);
    r.push(b'=');
    r.extend_from_slice(v);
    r.push(b'\n');
    r
}

/// Serialises entries into a tar with its end-of-archive marker.
pub fn tar(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut pax = Vec::new();
        if e.name.len() > 100 {
            pax.extend(record(b"path", &e.name));
        }
        if e.link.len() > 100 {
            pax.extend(record(b"linkpath", &e.link));
        }
        for (k, v) in &e.xattrs {
            pax.extend(record(format!("SCHILY.xattr.{k}").as_bytes(), v));
        }
        for (k, v) in &e.pax {
            pax.extend(record(k.as_bytes(), v));
        }
        if let Some(g) = &e.global {
            out.extend_from_slice(&header(b"././@GlobalHead", b'g', b"", e, g.len() as u64));
            out.extend_from_slice(g);
            pad(&mut out);
        }
        if let Some(raw) = &e.raw_pax {
            pax = raw.clone();
        }
        if !pax.is_empty() {
            out.extend_from_slice(&header(b"././@PaxHeader", b'x', b"", e, pax.len() as u64));
            out.extend(pax);
            pad(&mut out);
        }
        out.extend_from_slice(&header(
            &e.name,
            e.typeflag,
            &e.link,
            e,
            e.data.len() as u64,
        ));
        out.extend_from_slice(&e.data);
        pad(&mut out);
    }
    out.extend(std::iter::repeat_n(0, 1024));
    out
}
