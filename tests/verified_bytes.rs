//! What is written is what was verified: with digests checked (the default), no byte of a
//! file's content may reach the output unless the digest check covered that very read.
//!
//! The archive is served through `tests/fuse/flaky.py`, a FUSE filesystem that answers the
//! bytes of a byte range (the content of the file `big`, inside the layer, inside the archive)
//! true on some reads and altered on others: altered on every read after the first
//! (`first-true`), on the first only (`first-altered`), on every other read (`alternate`,
//! `alternate-altered`), always (`altered`) or never (`true`). Reads are counted per byte and
//! reach the filesystem every time (direct I/O, no page cache). A program that reads each byte
//! once, hashes it and writes that same byte either gets true bytes (and writes the true tree)
//! or altered ones (and the digest check refuses the image). A program that hashes one read
//! and copies from another can be given true bytes to hash and altered ones to write.
//!
//! Every run of `flatten IMG DIR`, `flatten IMG -o TAR`, `flatten ls IMG` and `flatten inspect
//! IMG`, on a plain layer and on a gzip one, must be refused (exit 1 and one line naming the
//! digest mismatch; inspect prints its report too) or give exactly what the untouched
//! archive gives. Exit 0 with other content is the failure this test is for.
//!
//! The archives: `plain` (one plain layer; flaky range all of big's content), `plain-tail` (the
//! same archive; big's content but its first 256 KiB, see [`Case`]) and `gzip` (the layer gzip
//! compressed in stored blocks; big's content in pieces, altered keeping gzip's CRC-32). Every
//! archive is also flattened directly, and through the mount in mode `true`, which must give
//! the true output, so the test cannot pass by refusing everything.
//!
//! Needs root, /dev/fuse, Debian's /usr/bin/python3 and python3-fusepy (apt-get install
//! python3-fusepy fuse3). Without them the test says so and passes, except in CI (`CI` set),
//! where it fails. `VERIFIED_BYTES_ONLY=TEXT` runs only the runs whose CASE-MODE-RUN tag
//! (`plain-tail-first-true-dir`) contains TEXT; `VERIFIED_BYTES_KEEP=1` keeps the work
//! directory (archives, outputs, flaky.py's logs of every read of the flaky ranges).

mod common;

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use flatten::snapshot::{Mtime, NodeKind, Snapshot};

/// Debian's interpreter, where python3-fusepy is installed (not whatever `python3` comes first
/// on PATH).
const PYTHON: &str = "/usr/bin/python3";

/// The size of `big`: large enough that every reader of it makes several requests.
const BIG: usize = 1 << 20;

/// Empty files in the layer before `big`. Writing them keeps the writer busy while the hash of
/// the layer gets ahead of it: today's two readers then reach `big` in the order that lets the
/// harness show the bug in every run (see [`Case`]).
const EMPTY_BEFORE: usize = 3000;

/// How much of the start of `big`'s content the `plain-tail` case leaves true: a reader may read
/// that much ahead with big's header and throw it away (today's reads 64 KiB of headers at a
/// time), a read whose order against the hash's is a race.
const TAIL_FROM: u64 = 256 << 10;

/// The flaky modes (see tests/fuse/flaky.py).
const MODES: &[&str] = &[
    "true",
    "altered",
    "first-true",
    "first-altered",
    "alternate",
    "alternate-altered",
];

/// Modes whose first read of a byte is altered: a run must refuse (or never read).
fn first_read_altered(mode: &str) -> bool {
    matches!(mode, "altered" | "first-altered" | "alternate-altered")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuse/flaky.py")
}

// ---------------------------------------------------------------------------------------------
// Prerequisites

/// Whether the test can run here. Missing prerequisites fail the test in CI and skip it
/// (saying so) elsewhere.
fn prerequisites(test: &str) -> bool {
    let why = if !nix::unistd::Uid::effective().is_root() {
        Some("needs root to mount FUSE".to_owned())
    } else if !Path::new("/dev/fuse").exists() {
        Some("/dev/fuse is missing".to_owned())
    } else if !Path::new(PYTHON).exists() {
        Some(format!("{PYTHON} is missing"))
    } else {
        match Command::new(PYTHON).args(["-c", "import fusepy"]).output() {
            Ok(o) if o.status.success() => probe_mount().err(),
            Ok(o) => Some(format!(
                "python3-fusepy is not usable by {PYTHON} ({}); apt-get install python3-fusepy fuse3",
                String::from_utf8_lossy(&o.stderr).trim().lines().last().unwrap_or("")
            )),
            Err(e) => Some(format!("cannot run {PYTHON}: {e}")),
        }
    };
    let Some(why) = why else { return true };
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {why} (CI must run this test: .ci/run installs python3-fusepy and fuse3)"
    );
    eprintln!("{test}: skipped, {why}");
    false
}

/// Mounts flaky.py once over a one-file directory and reads the file back.
fn probe_mount() -> Result<(), String> {
    let d = tmp();
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("probe"), b"probe").unwrap();
    let m = Mount::start(d.path(), &src, "probe", &[], "true", None, "probe")?;
    let got = std::fs::read(m.file()).map_err(|e| format!("cannot read through FUSE: {e}"))?;
    if got != b"probe" {
        return Err(format!("FUSE served {got:?}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The FUSE mount

/// A running flaky.py and its mount; unmounted, and the process reaped, when dropped (also
/// while a failing test unwinds).
struct Mount {
    child: Option<Child>,
    point: PathBuf,
    name: String,
    log: PathBuf,
    stderr: PathBuf,
}

impl Mount {
    /// Serves `src/name` at `work/mnt-TAG/name`, with `ranges` of it flaky in `mode`; altered
    /// bytes are `payload`'s (the ranges' replacement, end to end) or, without one, xor 0xff.
    /// Returns once the file is visible through the mount.
    fn start(
        work: &Path,
        src: &Path,
        name: &str,
        ranges: &[(u64, u64)],
        mode: &str,
        payload: Option<&Path>,
        tag: &str,
    ) -> Result<Mount, String> {
        let point = work.join(format!("mnt-{tag}"));
        std::fs::create_dir(&point).unwrap();
        let log = work.join(format!("flaky-{tag}.log"));
        let stdout = work.join(format!("flaky-{tag}.out"));
        let stderr = work.join(format!("flaky-{tag}.err"));
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script())
            .arg(src)
            .arg(&point)
            .args(["--file", name, "--mode", mode])
            .arg("--log")
            .arg(&log);
        for (start, end) in ranges {
            cmd.arg("--range").arg(format!("{name}:{start}:{end}"));
        }
        if let Some(p) = payload {
            cmd.arg("--payload").arg(p);
        }
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start flaky.py: {e}"))?;
        let mut m = Mount {
            child: Some(child),
            point,
            name: name.to_owned(),
            log,
            stderr,
        };
        let want = std::fs::metadata(src.join(name)).unwrap().len();
        let parent_dev = std::fs::metadata(work).unwrap().dev();
        let start = Instant::now();
        loop {
            if let Ok(meta) = std::fs::metadata(m.file()) {
                let on_fuse = std::fs::metadata(&m.point).unwrap().dev() != parent_dev;
                if on_fuse && meta.len() == want {
                    return Ok(m);
                }
            }
            let exited = m.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || start.elapsed() > Duration::from_secs(30) {
                let err = std::fs::read_to_string(&m.stderr).unwrap_or_default();
                let what = match exited {
                    Some(s) => format!("flaky.py exited ({s})"),
                    None => "flaky.py did not mount within 30 s".to_owned(),
                };
                m.stop();
                return Err(format!("{what}: {}", err.trim()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The served file, through the mount.
    fn file(&self) -> PathBuf {
        self.point.join(&self.name)
    }

    /// (true, altered) bytes of the flaky ranges served so far, from flaky.py's log.
    fn served(&self) -> (u64, u64) {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut sum = (0, 0);
        for word in log.split_whitespace() {
            if let Some(n) = word.strip_prefix("true=") {
                sum.0 += n.parse::<u64>().unwrap();
            } else if let Some(n) = word.strip_prefix("altered=") {
                sum.1 += n.parse::<u64>().unwrap();
            }
        }
        sum
    }

    /// Unmounts and reaps flaky.py. Never panics (it runs while unwinding).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let unmounted = [
            ("fusermount3", &["-u"][..]),
            ("fusermount", &["-u"][..]),
            ("umount", &[][..]),
            ("umount", &["-l"][..]),
        ]
        .iter()
        .any(|(prog, args)| {
            Command::new(prog)
                .args(*args)
                .arg(&self.point)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if unmounted && start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    // Not unmounted, or stuck: end it; its mount goes with it (or lazily).
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = Command::new("umount")
                        .arg("-l")
                        .arg(&self.point)
                        .stderr(Stdio::null())
                        .status();
                    break;
                }
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// The images

/// `len` bytes that look random (so gzip stores them and each piece occurs once in an
/// archive).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The layer: a few files, many empty ones, `big`, and a few after it.
fn layer(big: &[u8]) -> Vec<u8> {
    let mut es = vec![
        E::dir("etc"),
        E::file("etc/hostname", b"flaky\n"),
        E::file("etc/motd", b"hello\n").mode(0o600),
        E::dir("small"),
    ];
    for i in 0..EMPTY_BEFORE {
        es.push(E::file(&format!("small/{i:04}"), b""));
    }
    es.push(E::file("big", big).mode(0o640).owner(1000, 1000));
    es.push(E::file("after", b"written after big\n"));
    es.push(E::symlink("big-link", "big"));
    tar(&es)
}

/// A gzip stream of stored (uncompressed) deflate blocks, so `big`'s content lies in the
/// archive verbatim, in pieces between block headers.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Where `content` lies in `archive`, found by searching (the content is noise, so it occurs
/// once, which is checked): its start and end.
fn find_content(archive: &[u8], content: &[u8]) -> (u64, u64) {
    let probe = &content[..64];
    let find = |from: usize| -> Option<usize> {
        let mut at = from;
        while at + probe.len() <= archive.len() {
            at += archive[at..].iter().position(|&b| b == probe[0])?;
            if archive[at..].starts_with(probe) {
                return Some(at);
            }
            at += 1;
        }
        None
    };
    let at = find(0).expect("big's content is in the archive verbatim");
    assert!(
        find(at + 1).is_none(),
        "big's content occurs twice in the archive"
    );
    assert!(archive[at..].starts_with(content));
    (at as u64, (at + content.len()) as u64)
}

/// Where bytes `from..to` of the data a gzip stream of stored deflate blocks (`gzip_stored`)
/// carries lie in `archive`, the stream starting at `at`: the pieces between block headers, in
/// order.
fn stored_ranges(archive: &[u8], at: usize, from: u64, to: u64) -> Vec<(u64, u64)> {
    let gz = &archive[at..];
    assert_eq!(
        &gz[..4],
        &[0x1f, 0x8b, 8, 0],
        "a gzip header without optional fields"
    );
    let (mut pos, mut data) = (10usize, 0u64);
    let mut ranges = Vec::new();
    loop {
        let head = gz[pos];
        assert_eq!(head & 0b110, 0, "not a stored block at {pos}");
        let len = u16::from_le_bytes([gz[pos + 1], gz[pos + 2]]);
        let nlen = u16::from_le_bytes([gz[pos + 3], gz[pos + 4]]);
        assert_eq!(len, !nlen, "bad stored block header at {pos}");
        let (start, end) = (data, data + u64::from(len));
        let (a, b) = (start.max(from), end.min(to));
        if a < b {
            let base = (at + pos + 5) as u64 - start;
            ranges.push((base + a, base + b));
        }
        pos += 5 + usize::from(len);
        data = end;
        if head & 1 == 1 {
            break;
        }
    }
    ranges
}

/// The regular-file members of a ustar archive (as tests/common/tarw.rs writes them, short
/// names): path, offset of the content, content.
fn members(archive: &[u8]) -> Vec<(String, u64, &[u8])> {
    let octal = |field: &[u8]| -> usize {
        let s = std::str::from_utf8(field).unwrap();
        usize::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap()
    };
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 512 <= archive.len() && archive[at..at + 512].iter().any(|&b| b != 0) {
        let h = &archive[at..at + 512];
        let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = String::from_utf8(h[..name_end].to_vec()).unwrap();
        let size = octal(&h[124..136]);
        let data = at + 512;
        if h[156] == b'0' {
            out.push((name, data as u64, &archive[data..data + size]));
        }
        at = data + size.div_ceil(512) * 512;
    }
    out
}

/// The offset and content of the one member whose path ends with `suffix`.
fn member<'a>(archive: &'a [u8], suffix: &str) -> (u64, &'a [u8]) {
    let found: Vec<_> = members(archive)
        .into_iter()
        .filter(|(name, _, _)| name.ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "members ending with {suffix}");
    (found[0].1, found[0].2)
}

/// gzip's CRC-32.
fn crc32(data: &[u8]) -> u32 {
    !crc_update(!0, data)
}

/// CRC-32 register update; from 0 and without the final inversion it is linear over xor.
fn crc_update(mut c: u32, data: &[u8]) -> u32 {
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    c
}

/// `content` with every byte inverted except the last four, which are chosen so that the
/// result has the same CRC-32 (and length) as `content`: a gzip stream carrying it instead
/// decodes without error, and only the image's digests can tell.
fn altered_same_crc(content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut delta = vec![0xffu8; n];
    delta[n - 4..].fill(0);
    // crc32(content ^ delta ^ x) == crc32(content) iff lin(x) == lin(delta), where lin is the
    // CRC from 0: x is zero but in the last four bytes, where lin is invertible on 32 bits.
    let lin = |d: &[u8]| crc_update(0, d);
    let mut pivots: [Option<(u32, u32)>; 32] = [None; 32];
    for i in 0..32 {
        let (mut v, mut c) = (lin(&(1u32 << i).to_le_bytes()), 1u32 << i);
        while v != 0 {
            let top = 31 - v.leading_zeros() as usize;
            match pivots[top] {
                Some((pv, pc)) => {
                    v ^= pv;
                    c ^= pc;
                }
                None => {
                    pivots[top] = Some((v, c));
                    break;
                }
            }
        }
    }
    let (mut t, mut x) = (lin(&delta), 0u32);
    while t != 0 {
        let (pv, pc) = pivots[31 - t.leading_zeros() as usize].expect("invertible");
        t ^= pv;
        x ^= pc;
    }
    delta[n - 4..].copy_from_slice(&x.to_le_bytes());
    let out: Vec<u8> = content.iter().zip(&delta).map(|(a, d)| a ^ d).collect();
    assert_eq!(crc32(&out), crc32(content));
    out
}

/// One archive served through flaky.py, with a choice of flaky ranges.
///
/// - `plain`: a plain layer, the flaky range all of big's content.
/// - `plain-tail`: the same archive, the flaky range big's content but its first
///   [`TAIL_FROM`] bytes. Today's code reads big's content three ways: with big's header (the
///   first 64 KiB, ahead, thrown away), to hash it (on another thread) and to copy it (during
///   the layer's reading for a directory, after it for -o). Leaving the read-ahead out of the
///   range, the hash is the first read of every flaky byte in every run, so today's bug shows
///   in every run in `first-true`.
/// - `gzip`: a gzip layer (stored blocks), the flaky ranges all pieces of big's content, the
///   altered bytes chosen to keep gzip's CRC-32.
struct Case {
    label: &'static str,
    /// The archive's directory and file name.
    src: PathBuf,
    name: String,
    /// The flaky ranges of the archive.
    ranges: Vec<(u64, u64)>,
    /// What altered reads of the ranges give (end to end), if not xor 0xff.
    payload: Option<PathBuf>,
}

fn build_cases(work: &Path, big: &[u8]) -> Vec<Case> {
    let src = work.join("src");
    std::fs::create_dir(&src).unwrap();
    let layer = layer(big);
    let mut cases = Vec::new();

    // A plain layer: big's content is one range of the archive, where the tar headers (of the
    // archive, then of the layer) say it is.
    let plain = docker_archive(&src, "plain.tar", std::slice::from_ref(&layer));
    let bytes = std::fs::read(&plain).unwrap();
    let (layer_at, stored) = member(&bytes, "/layer.tar");
    assert_eq!(stored, &layer[..]);
    let (big_at, _) = member(stored, "big");
    let at = layer_at + big_at;
    let end = at + big.len() as u64;
    assert_eq!(find_content(&bytes, big), (at, end));
    let ranges = vec![(at, end)];
    cases.push(Case {
        label: "plain",
        src: src.clone(),
        name: "plain.tar".into(),
        ranges,
        payload: None,
    });
    cases.push(Case {
        label: "plain-tail",
        src: src.clone(),
        name: "plain.tar".into(),
        ranges: vec![(at + TAIL_FROM, end)],
        payload: None,
    });

    // A gzip layer of stored blocks: big's content is many ranges between block headers. The
    // altered content keeps gzip's CRC-32, so the stream decodes cleanly either way and only
    // the digests can tell.
    let gz = docker_archive(&src, "gzip.tar", &[gzip_stored(&layer)]);
    let bytes = std::fs::read(&gz).unwrap();
    let (big_at, _) = member(&layer, "big");
    let (blob_at, blob) = member(&bytes, "/layer.tar");
    let ranges = stored_ranges(&bytes, blob_at as usize, big_at, big_at + big.len() as u64);
    assert!(ranges.len() > 1, "big in several stored blocks: {ranges:?}");
    let pieces: Vec<u8> = ranges
        .iter()
        .flat_map(|&(s, e)| bytes[s as usize..e as usize].iter().copied())
        .collect();
    assert_eq!(pieces, big, "the pieces make up big's content");
    let altered = altered_same_crc(big);
    let payload = work.join("gzip-payload");
    std::fs::write(&payload, &altered).unwrap();
    // The archive as altered reads give it holds a gzip layer that decodes, to another big.
    let mut changed = bytes.clone();
    let mut k = 0;
    for &(s, e) in &ranges {
        let (s, e) = (s as usize, e as usize);
        changed[s..e].copy_from_slice(&altered[k..k + e - s]);
        k += e - s;
    }
    let blob_at = blob_at as usize;
    let decoded = decompress(&changed[blob_at..blob_at + blob.len()]);
    assert_eq!(decoded.len(), layer.len());
    assert_ne!(decoded, layer);
    cases.push(Case {
        label: "gzip",
        src,
        name: "gzip.tar".into(),
        ranges,
        payload: Some(payload),
    });
    cases
}

// ---------------------------------------------------------------------------------------------
// The runs

#[derive(Clone, Copy, Debug, PartialEq)]
enum Run {
    Dir,
    Tar,
    Ls,
    Inspect,
}

const RUNS: &[Run] = &[Run::Dir, Run::Tar, Run::Ls, Run::Inspect];

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::Dir => "flatten IMG DIR",
            Run::Tar => "flatten IMG -o TAR",
            Run::Ls => "flatten ls IMG",
            Run::Inspect => "flatten inspect IMG",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Run::Dir => "dir",
            Run::Tar => "tar",
            Run::Ls => "ls",
            Run::Inspect => "inspect",
        }
    }
}

/// What a run gave.
enum Got {
    Tree(Snapshot),
    Text(Vec<u8>),
    Json(serde_json::Value),
}

/// Runs `run` on `image` (a path), with its output under `work`: how it exited and, for exit
/// 0, what it gave.
fn execute(run: Run, image: &Path, work: &Path) -> (Output, Option<Got>) {
    std::fs::create_dir_all(work).unwrap();
    let root = work.join("root");
    let out_tar = work.join("out.tar");
    let mut cmd = bin();
    match run {
        Run::Dir => cmd.arg("-q").arg(image).arg(&root),
        Run::Tar => cmd.arg("-q").arg(image).arg("-o").arg(&out_tar),
        Run::Ls => cmd.arg("ls").arg(image),
        Run::Inspect => cmd.arg("inspect").arg("--json").arg(image),
    };
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    if !out.status.success() {
        return (out, None);
    }
    let got = match run {
        Run::Dir => Got::Tree(Snapshot::from_dir(&root).unwrap()),
        Run::Tar => Got::Tree(Snapshot::from_path(&out_tar).unwrap()),
        Run::Ls => Got::Text(out.stdout.clone()),
        Run::Inspect => Got::Json(serde_json::from_slice(&out.stdout).unwrap()),
    };
    (out, Some(got))
}

/// How a run ended, judged against what the untouched archive gives.
enum Verdict {
    /// Exit 0 with exactly the true output.
    Same,
    /// Exit 1 with one line naming the mismatch (or, for inspect, exit 0 reporting it).
    Refused(String),
    /// Anything else.
    Wrong(String),
}

fn judge(out: &Output, got: Option<Got>, truth: &Got) -> Verdict {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some(got) = got else {
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let line = lines.last().copied().unwrap_or("");
        let lower = line.to_lowercase();
        let named = ["digest", "mismatch", "changed"]
            .iter()
            .any(|w| lower.contains(w));
        return if out.status.code() == Some(1) && lines.len() == 1 && named {
            Verdict::Refused(line.to_owned())
        } else {
            Verdict::Wrong(format!(
                "{} without one line naming a digest mismatch: {}",
                out.status,
                stderr.trim()
            ))
        };
    };
    match (truth, &got) {
        (Got::Tree(t), Got::Tree(g)) => {
            let diff = t.diff(g, Mtime::Exact);
            if diff.is_empty() {
                Verdict::Same
            } else {
                Verdict::Wrong(format!("exit 0 with altered content: {}", diff.join("; ")))
            }
        }
        (Got::Text(t), Got::Text(g)) => {
            if t == g {
                Verdict::Same
            } else {
                Verdict::Wrong(format!(
                    "exit 0 with another listing:\n{}",
                    String::from_utf8_lossy(g)
                ))
            }
        }
        (Got::Json(t), Got::Json(g)) => {
            if t == g {
                return Verdict::Same;
            }
            // inspect exits 1 when a layer does not verify: exit 0 must describe the truth.
            Verdict::Wrong(format!("exit 0 with another description: {g}"))
        }
        _ => unreachable!("a run gives what its truth is"),
    }
}

/// What the untouched archive (read directly, not through FUSE) gives for each run.
fn truths(image: &Path, work: &Path, big: &[u8]) -> Vec<Got> {
    let truths: Vec<Got> = RUNS
        .iter()
        .map(|&run| {
            let (out, got) = execute(run, image, &work.join(run.tag()));
            assert!(
                out.status.success(),
                "{} on the untouched {}: {}",
                run.name(),
                image.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            got.unwrap()
        })
        .collect();
    // Not vacuous: the true trees have big, with its true content.
    for t in &truths[..2] {
        let Got::Tree(t) = t else { unreachable!() };
        assert_eq!(
            t.nodes[&b"big".to_vec()].kind,
            NodeKind::File {
                size: big.len() as u64,
                sha256: flatten::snapshot::sha256(big)
            },
            "{}",
            image.display()
        );
    }
    truths
}

#[test]
fn what_is_written_is_what_was_verified() {
    let test = "what_is_written_is_what_was_verified";
    if !prerequisites(test) {
        return;
    }
    let started = Instant::now();
    let d = tmp();
    let work = d.path();
    // VERIFIED_BYTES_KEEP=1 keeps the archives, outputs and flaky.py's logs, to look at.
    let keep = std::env::var_os("VERIFIED_BYTES_KEEP").is_some();
    let big = noise(BIG, 0x5eed_f1a4);
    let cases = build_cases(work, &big);
    // VERIFIED_BYTES_ONLY=TEXT runs only the runs whose CASE-MODE-RUN tag contains TEXT.
    let only = std::env::var("VERIFIED_BYTES_ONLY").unwrap_or_default();

    let mut table = Vec::new();
    let mut failures = Vec::new();
    let mut truth: Option<(String, Vec<Got>)> = None;
    for case in &cases {
        let archive = case.src.join(&case.name);
        if truth.as_ref().is_none_or(|(name, _)| *name != case.name) {
            let got = truths(&archive, &work.join(format!("truth-{}", case.label)), &big);
            truth = Some((case.name.clone(), got));
        }
        let truth = &truth.as_ref().unwrap().1;
        let flaky: u64 = case.ranges.iter().map(|(s, e)| e - s).sum();
        for &mode in MODES {
            for (i, &run) in RUNS.iter().enumerate() {
                let tag = format!("{}-{mode}-{}", case.label, run.tag());
                if !tag.contains(&only) {
                    continue;
                }
                // A fresh mount for each run: read counts start from zero.
                let mount = Mount::start(
                    work,
                    &case.src,
                    &case.name,
                    &case.ranges,
                    mode,
                    case.payload.as_deref(),
                    &tag,
                )
                .unwrap_or_else(|e| panic!("{tag}: {e}"));
                let (out, got) = execute(run, &mount.file(), &work.join(format!("run-{tag}")));
                let verdict = judge(&out, got, &truth[i]);
                let (good, bad) = mount.served();
                drop(mount);
                let row = format!(
                    "{:10} {:17} {:19} served true={good:<7} altered={bad:<7}",
                    case.label,
                    mode,
                    run.name()
                );
                let mut fail = |why: String| {
                    failures.push(format!("{row} {why}"));
                    format!("FAIL {why}")
                };
                let said = match verdict {
                    Verdict::Same if mode == "altered" => {
                        fail("the true output, though every read was altered".into())
                    }
                    Verdict::Same => "ok: the true output".into(),
                    Verdict::Refused(why) if mode == "true" => {
                        fail(format!("refused, though every read was true: {why}"))
                    }
                    Verdict::Refused(why) => format!("ok: refused: {why}"),
                    Verdict::Wrong(why) => fail(why),
                };
                // Not vacuous: all of big went through the flaky filesystem, and where first
                // reads are altered, altered bytes were served.
                let mut notes = Vec::new();
                if good + bad < flaky {
                    notes.push(fail(format!(
                        "only {} of big's {flaky} bytes were read through FUSE",
                        good + bad
                    )));
                }
                if first_read_altered(mode) && bad == 0 {
                    notes.push(fail("no altered byte was served".into()));
                }
                let line = format!("{row} {said} {}", notes.join(" "));
                eprintln!("{}", line.trim_end());
                table.push(line);
            }
        }
    }
    eprintln!("{test}: {} runs in {:.1?}", table.len(), started.elapsed());
    if keep {
        eprintln!("{test}: kept {}", d.keep().display());
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs wrote what no digest covered, or misbehaved:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}
