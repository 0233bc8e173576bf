//! Our tar reader (`flatten::tar`) against two others, on archives written at test time by
//! Python's `tarfile` and by GNU tar (`tests/interop/gen.py`): every form real tools write
//! (V7, ustar, GNU, oldgnu, PAX with global headers, binary xattrs, base-256 numbers, GNU
//! sparse files in the old GNU form and PAX 0.0, 0.1 and 1.0).
//!
//! - against Python's `tarfile` (`tests/interop/dump.py`): every entry, field by field;
//! - against GNU tar, the reference when they disagree: `tar -x --to-command` gives GNU tar's
//!   name, size, mode, owner, exact mtime and content of every regular file, and (as root)
//!   `tar -x --xattrs --xattrs-include='*'` into a directory gives the rest: kinds, link
//!   targets, device numbers, xattrs, modes, owners and times as GNU tar applies them.
//!
//! Every disagreement known is listed in `PYTHON_DIFFERS` or `WE_DIFFER_FROM_GNU_TAR` with
//! the reason; the tests fail on any other, and on a listed one that went away.
//!
//! Plus hand-made malformed archives (bad PAX records, impossible sparse maps) that must be
//! refused with an error, not a panic.
//!
//! Needs Debian's `/usr/bin/python3` (not whatever `python3` is first on PATH) and GNU tar;
//! without python3 the tests that need it say they skipped, except in CI (`CI` set), where
//! `.ci/run` installs it and its absence fails them. The extraction check needs root (CI runs as
//! root); elsewhere it is skipped, saying so.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use flatten::tar::{Archive, Kind, Stream};
use sha2::{Digest, Sha256};

/// Debian's interpreter: the archives must not depend on a pyenv or venv Python.
const PYTHON: &str = "/usr/bin/python3";

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

// ---------------------------------------------------------------------------------------------
// One view of an entry, whoever read it

#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    /// Trailing slashes removed (tarfile removes them; we keep the name as stored).
    name: Vec<u8>,
    kind: String,
    size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: (i64, u32),
    atime: Option<(i64, u32)>,
    link: Option<Vec<u8>>,
    dev: Option<(u64, u64)>,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    sha256: String,
}

fn show(b: &[u8]) -> String {
    let mut s = String::new();
    for c in b.utf8_chunks() {
        s.push_str(c.valid());
        for x in c.invalid() {
            write!(s, "\\x{x:02x}").unwrap();
        }
    }
    s
}

fn show_xattrs(x: &BTreeMap<Vec<u8>, Vec<u8>>) -> String {
    let items: Vec<String> = x
        .iter()
        .map(|(k, v)| format!("{}={:?}", show(k), show(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// The fields that differ, as (field, ours, theirs).
fn fields_differ(ours: &View, theirs: &View) -> Vec<(&'static str, String, String)> {
    let mut d = Vec::new();
    macro_rules! cmp {
        ($f:ident, $show:expr) => {
            if ours.$f != theirs.$f {
                d.push((stringify!($f), $show(&ours.$f), $show(&theirs.$f)));
            }
        };
    }
    cmp!(name, |v: &Vec<u8>| show(v));
    cmp!(kind, |v: &String| v.clone());
    cmp!(size, |v: &u64| v.to_string());
    cmp!(mode, |v: &u32| format!("{v:o}"));
    cmp!(uid, |v: &u64| v.to_string());
    cmp!(gid, |v: &u64| v.to_string());
    cmp!(mtime, |v: &(i64, u32)| format!("{}.{:09}", v.0, v.1));
    cmp!(atime, |v: &Option<(i64, u32)>| format!("{v:?}"));
    cmp!(link, |v: &Option<Vec<u8>>| v
        .as_deref()
        .map_or("-".into(), show));
    cmp!(dev, |v: &Option<(u64, u64)>| format!("{v:?}"));
    cmp!(xattrs, show_xattrs);
    cmp!(sha256, |v: &String| v[..16.min(v.len())].to_owned());
    d
}

fn sha256(r: &mut dyn Read) -> Result<String, String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) => return Err(format!("reading content: {e}")),
        }
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn trim_slashes(mut n: Vec<u8>) -> Vec<u8> {
    while n.len() > 1 && n.ends_with(b"/") {
        n.pop();
    }
    n
}

/// Our reader's view of an archive (every entry, content read through `data().into_reader()`),
/// or its error.
fn ours(bytes: &[u8]) -> Result<Vec<View>, String> {
    let mut src = Stream(bytes);
    let mut archive = Archive::new(&mut src);
    let mut out = Vec::new();
    while let Some(entry) = archive.next_entry().map_err(|e| e.to_string())? {
        let h = entry.header;
        let (kind, link, dev) = match &h.kind {
            Kind::File => ("file", None, None),
            Kind::Dir => ("dir", None, None),
            Kind::Symlink(t) => ("symlink", Some(t.clone()), None),
            Kind::Hardlink(t) => ("hardlink", Some(t.clone()), None),
            Kind::CharDevice { major, minor } => {
                ("char", None, Some((u64::from(*major), u64::from(*minor))))
            }
            Kind::BlockDevice { major, minor } => {
                ("block", None, Some((u64::from(*major), u64::from(*minor))))
            }
            Kind::Fifo => ("fifo", None, None),
        };
        let sha = sha256(&mut archive.data().into_reader())
            .map_err(|e| format!("{}: {e}", show(&h.name)))?;
        out.push(View {
            name: trim_slashes(h.name),
            kind: kind.into(),
            size: h.size,
            mode: h.meta.mode,
            uid: h.meta.uid.into(),
            gid: h.meta.gid.into(),
            mtime: (h.meta.mtime.secs, h.meta.mtime.nanos),
            atime: h.meta.atime.map(|t| (t.secs, t.nanos)),
            link,
            dev,
            xattrs: h.meta.xattrs.into_iter().collect(),
            sha256: sha,
        });
    }
    Ok(out)
}

fn json_time(v: &serde_json::Value) -> Option<(i64, u32)> {
    let a = v.as_array()?;
    Some((a[0].as_i64()?, a[1].as_u64()? as u32))
}

fn python_view(e: &serde_json::Value) -> View {
    let s = |k: &str| e[k].as_str().unwrap_or_else(|| panic!("{k} in {e}"));
    let n = |k: &str| e[k].as_u64().unwrap_or_else(|| panic!("{k} in {e}"));
    View {
        name: unhex(s("name")),
        kind: s("kind").into(),
        size: n("size"),
        mode: n("mode") as u32,
        uid: n("uid"),
        gid: n("gid"),
        mtime: json_time(&e["mtime"]).unwrap(),
        atime: json_time(&e["atime"]),
        link: e["link"].as_str().map(unhex),
        dev: e["dev"]
            .as_array()
            .map(|d| (d[0].as_u64().unwrap(), d[1].as_u64().unwrap())),
        xattrs: e["xattrs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (unhex(k), unhex(v.as_str().unwrap())))
            .collect(),
        sha256: s("sha256").into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The archives, made once for all the tests

struct Fixture {
    dir: tempfile::TempDir,
    /// Archive file names, sorted.
    names: Vec<String>,
    /// Python's view of each, or its error.
    python: HashMap<String, Result<Vec<View>, String>>,
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("archives").join(name)
    }
}

/// True when Debian's python3 is here. Outside CI a test that needs it may then skip
/// (saying so); in CI (`CI` set, where `.ci/run` installs it) its absence is a failure.
fn have_python(test: &str) -> bool {
    if Path::new(PYTHON).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs {PYTHON} in CI (apt-get install python3)"
    );
    eprintln!("{test}: skipped, needs {PYTHON} (apt-get install python3)");
    false
}

fn python_command() -> Command {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: this test needs Debian's python3 (apt-get install python3), \
         not whichever python3 is first on PATH"
    );
    Command::new(PYTHON)
}

fn check_gnu_tar() {
    let out = Command::new("tar")
        .arg("--version")
        .output()
        .expect("GNU tar is missing: this test needs it (apt-get install tar)");
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.contains("GNU tar"), "`tar` is not GNU tar: {v}");
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        check_gnu_tar();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("archives");
        std::fs::create_dir(&out).unwrap();
        let gen = python_command()
            .arg(script("gen.py"))
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            gen.status.success(),
            "gen.py failed: {}",
            String::from_utf8_lossy(&gen.stderr)
        );
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tar"))
            .collect();
        names.sort();
        assert!(
            names.len() >= 20,
            "gen.py wrote too few archives: {names:?}"
        );
        let dump = python_command()
            .arg(script("dump.py"))
            .args(&names)
            .current_dir(&out)
            .output()
            .unwrap();
        assert!(
            dump.status.success(),
            "dump.py failed: {}",
            String::from_utf8_lossy(&dump.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&dump.stdout).unwrap();
        let python = names
            .iter()
            .map(|n| {
                let v = &json[n.as_str()];
                let view = match v["error"].as_str() {
                    Some(e) => Err(e.to_owned()),
                    None => Ok(v["entries"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(python_view)
                        .collect()),
                };
                (n.clone(), view)
            })
            .collect();
        for n in &names {
            seed(n, &std::fs::read(out.join(n)).unwrap());
        }
        Fixture { dir, names, python }
    })
}

/// With `TAR_INTEROP_SEEDS=DIR`, every archive the tests make is also written to DIR: that is
/// how fuzz/corpus/tar/ was seeded (see fuzz/README.md).
fn seed(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("TAR_INTEROP_SEEDS") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn read_ours(f: &Fixture, name: &str) -> Vec<View> {
    let bytes = std::fs::read(f.path(name)).unwrap();
    ours(&bytes).unwrap_or_else(|e| panic!("our reader refuses {name}: {e}"))
}

/// A disagreement: archive, entry (our name for it), field.
type Key = (String, String, String);

/// Who is right where readers disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// OUR BUG: GNU tar (and Python) read it otherwise; name the failing test in `why`.
    /// None at present: the last, empty xattr values, was fixed in 44ffb9c.
    #[allow(dead_code)]
    OursWrong,
    /// Python's tarfile is wrong: GNU tar reads it as we do.
    PythonWrong,
    /// GNU tar is wrong (a bug of GNU tar 1.34, or against POSIX); Python reads it as we do.
    GnuTarWrong,
    /// GNU tar says the header is malformed and keeps the value it had; we (and Python)
    /// follow POSIX.
    GnuTarRefuses,
    /// An empty PAX value of a keyword that replaces a header field: POSIX says it deletes
    /// the keyword; each reader makes something else of it. No real writer produces it.
    NoConsensus,
}

struct Known {
    archive: &'static str,
    /// The entry as we name it.
    entry: &'static str,
    field: &'static str,
    verdict: Verdict,
    why: &'static str,
}

fn matches(k: &Known, key: &Key) -> bool {
    key.0 == k.archive && key.1 == k.entry && key.2 == k.field
}

/// Checks the disagreements found against the known ones: none new, and (if every check ran,
/// `complete`) none gone.
fn check_known(what: &str, found: &[(Key, String)], known: &[Known], complete: bool) {
    let mut report = String::new();
    for (key, text) in found {
        if !known.iter().any(|k| matches(k, key)) {
            writeln!(report, "  NEW: {text}").unwrap();
        }
    }
    for k in known.iter().filter(|_| complete) {
        if !found.iter().any(|(key, _)| matches(k, key)) {
            writeln!(
                report,
                "  GONE (remove it from the list): {} {} {}",
                k.archive, k.entry, k.field
            )
            .unwrap();
        }
    }
    let all: String = found.iter().map(|(_, t)| format!("  {t}\n")).collect();
    assert!(
        report.is_empty(),
        "{what}:\n{report}\nall disagreements found:\n{all}"
    );
    eprintln!("{what}: {} disagreements, all known:", found.len());
    for (key, text) in found {
        let k = known.iter().find(|k| matches(k, key)).unwrap();
        let mark = if k.verdict == Verdict::OursWrong {
            "OUR BUG "
        } else {
            ""
        };
        eprintln!("  {mark}{:?}: {text}\n      {}", k.verdict, k.why);
    }
}

// ---------------------------------------------------------------------------------------------
// The archives are in the forms meant

/// The header blocks of an archive, found by walking it (old GNU extension blocks skipped).
fn headers(a: &[u8]) -> Vec<&[u8]> {
    let num = |f: &[u8]| -> u64 {
        if f[0] & 0x80 != 0 {
            return f[1..].iter().fold(0, |n, &b| n << 8 | u64::from(b));
        }
        let t: String = f
            .iter()
            .map(|&b| b as char)
            .filter(char::is_ascii_digit)
            .collect();
        u64::from_str_radix(&t, 8).unwrap_or(0)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= a.len() && a[at..at + 512].iter().any(|&b| b != 0) {
        let h = &a[at..at + 512];
        out.push(h);
        at += 512;
        if h[156] == b'S' && h[482] != 0 {
            while a[at + 504] != 0 {
                at += 512;
            }
            at += 512;
        }
        at += (num(&h[124..136]) as usize).div_ceil(512) * 512;
    }
    out
}

fn contains(a: &[u8], needle: &[u8]) -> bool {
    a.windows(needle.len()).any(|w| w == needle)
}

/// Each archive holds the form it is meant to test: a tool or a filesystem that writes it
/// otherwise (a sparse file stored dense where holes are not detected, say) must not make the
/// comparison silently weaker.
#[test]
fn archives_are_in_the_forms_meant() {
    if !have_python("archives_are_in_the_forms_meant") {
        return;
    }
    let f = fixture();
    let read = |n: &str| std::fs::read(f.path(n)).unwrap();
    let flags = |n: &str| -> Vec<u8> { headers(&read(n)).iter().map(|h| h[156]).collect() };
    let count = |v: &[u8], t: u8| v.iter().filter(|&&x| x == t).count();
    let mut bad = Vec::new();
    let mut want = |ok: bool, what: &str| {
        if !ok {
            bad.push(what.to_owned());
        }
    };
    for n in ["gnu-sparse-gnu.tar", "gnu-sparse-oldgnu.tar"] {
        let a = read(n);
        let h = headers(&a);
        want(
            h.iter().filter(|h| h[156] == b'S').count() == 5,
            &format!("{n}: 5 'S' headers"),
        );
        want(
            h.iter().any(|h| h[156] == b'S' && h[482] != 0),
            &format!("{n}: an 'S' header with extension blocks"),
        );
    }
    want(
        contains(&read("gnu-sparse-pax-0.0.tar"), b"GNU.sparse.offset="),
        "PAX 0.0 map records",
    );
    let one = read("gnu-sparse-pax-0.1.tar");
    want(contains(&one, b"GNU.sparse.map="), "PAX 0.1 map record");
    want(
        contains(&one, b"GNU.sparse.name=./sss") && contains(&one, b" path=./GNUSparseFile."),
        "PAX 0.1 GNU.sparse.name and a path record for the long name",
    );
    want(
        contains(&read("gnu-sparse-pax-1.0.tar"), b"GNU.sparse.major=1\n"),
        "PAX 1.0 records",
    );
    want(
        count(&flags("py-global.tar"), b'g') == 1,
        "py-global: a 'g'",
    );
    want(
        count(&flags("py-global-twice.tar"), b'g') == 2,
        "py-global-twice: two 'g'",
    );
    for n in ["py-gnu.tar", "gnu-gnu.tar", "gnu-oldgnu.tar"] {
        let t = flags(n);
        want(
            count(&t, b'L') > 0 && count(&t, b'K') > 0,
            &format!("{n}: 'L' and 'K'"),
        );
    }
    for n in ["py-gnu.tar", "gnu-bignum-gnu.tar", "gnu-negtime-gnu.tar"] {
        let a = read(n);
        let h = headers(&a);
        want(
            h.iter().any(|h| h[108] & 0x80 != 0 || h[136] & 0x80 != 0),
            &format!("{n}: base-256 numbers"),
        );
    }
    let pax = read("py-pax.tar");
    want(
        contains(&pax, b"hdrcharset=BINARY"),
        "py-pax: hdrcharset=BINARY",
    );
    for n in ["py-pax.tar", "gnu-posix.tar"] {
        let a = read(n);
        want(
            contains(&a, b"SCHILY.xattr.user.bin=\x01\n\x00\xff\n\n"),
            &format!("{n}: a binary xattr value"),
        );
        want(
            contains(&a, b"SCHILY.xattr.user.empty=\n"),
            &format!("{n}: an empty xattr value"),
        );
    }
    for n in ["py-ustar.tar", "gnu-ustar.tar"] {
        let a = read(n);
        let h = headers(&a);
        want(
            h.iter().any(|h| &h[257..263] == b"ustar\0" && h[345] != 0),
            &format!("{n}: a name split into prefix and name"),
        );
    }
    want(
        headers(&read("gnu-v7.tar"))
            .iter()
            .all(|h| h[257..265].iter().all(|&b| b == 0)),
        "gnu-v7: no magic",
    );
    assert!(bad.is_empty(), "archives not in the form meant: {bad:#?}");
}

// ---------------------------------------------------------------------------------------------
// Ours against Python's tarfile

/// Where Python's tarfile reads an archive differently from us. `gnu_tar_agrees` checks the
/// same entries against GNU tar, which decides who is right.
const PYTHON_DIFFERS: &[Known] = &[
    Known {
        archive: "gnu-sparse-pax-0.1.tar",
        entry: "./ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss",
        field: "name",
        verdict: Verdict::PythonWrong,
        why: "GNU tar 0.1 writes GNU.sparse.name (the real name), then `path` (its \
              GNUSparseFile.N/ name, for a long name); tarfile applies records in order so \
              `path` wins; GNU tar (and Go) name the file by GNU.sparse.name, as we do",
    },
    Known {
        archive: "py-pax.tar",
        entry: "empty-mtime",
        field: "mtime",
        verdict: Verdict::PythonWrong,
        why: "`mtime=` (empty): tarfile's float('') fails and it takes 0; POSIX deletes the \
              keyword so the header's mtime holds, as GNU tar (which calls it malformed) \
              and we read it",
    },
    Known {
        archive: "py-pax.tar",
        entry: "empty-path",
        field: "name",
        verdict: Verdict::NoConsensus,
        why: "`path=` (empty): tarfile names the entry '', GNU tar '.' (\"Substituting `.' \
              for empty member name\"), we keep the header's name (POSIX: an empty value \
              deletes the keyword)",
    },
];

#[test]
fn python_tarfile_agrees() {
    if !have_python("python_tarfile_agrees") {
        return;
    }
    let f = fixture();
    let mut found: Vec<(Key, String)> = Vec::new();
    for name in &f.names {
        let ours = read_ours(f, name);
        let theirs = match &f.python[name] {
            Ok(v) => v,
            Err(e) => {
                found.push((
                    (name.clone(), String::new(), "refused".into()),
                    format!("{name}: tarfile refuses it: {e}"),
                ));
                continue;
            }
        };
        if ours.len() != theirs.len() {
            found.push((
                (name.clone(), String::new(), "count".into()),
                format!("{name}: {} entries, tarfile {}", ours.len(), theirs.len()),
            ));
        }
        for (o, t) in ours.iter().zip(theirs) {
            for (field, a, b) in fields_differ(o, t) {
                let entry = show(&o.name);
                let text = format!("{name}: {entry}: {field}: ours {a}, tarfile {b}");
                found.push(((name.clone(), entry, field.into()), text));
            }
        }
    }
    check_known("ours vs Python's tarfile", &found, PYTHON_DIFFERS, true);
}

// ---------------------------------------------------------------------------------------------
// Ours against GNU tar

/// GNU tar 1.34 applies the SCHILY.xattr records of a global header with an empty name.
const GNU_GLOBAL_XATTR: &str = "GNU tar 1.34 cannot apply SCHILY.xattr.* from a global 'g' \
     header (\"setxattrat: Cannot set '' extended attribute\"); tarfile applies it, as we do";

/// Where we read an archive differently from GNU tar, with who is right.
const WE_DIFFER_FROM_GNU_TAR: &[Known] = &[
    Known {
        archive: "py-global.tar",
        entry: "g-delete",
        field: "owner",
        verdict: Verdict::GnuTarRefuses,
        why: "`uid=` (empty) in the entry's 'x' header after a global uid=4242: GNU tar \
              says \"Malformed extended header: invalid uid=\" and keeps 4242; POSIX deletes \
              the keyword, the header's uid (0) holds, as tarfile and we read it",
    },
    Known {
        archive: "py-global.tar",
        entry: "g-plain",
        field: "xattrs",
        verdict: Verdict::GnuTarWrong,
        why: GNU_GLOBAL_XATTR,
    },
    Known {
        archive: "py-global.tar",
        entry: "g-own-x",
        field: "xattrs",
        verdict: Verdict::GnuTarWrong,
        why: GNU_GLOBAL_XATTR,
    },
    Known {
        archive: "py-global-twice.tar",
        entry: "g1-a",
        field: "xattrs",
        verdict: Verdict::GnuTarWrong,
        why: GNU_GLOBAL_XATTR,
    },
    Known {
        archive: "py-global-twice.tar",
        entry: "g2-b",
        field: "xattrs",
        verdict: Verdict::GnuTarWrong,
        why: GNU_GLOBAL_XATTR,
    },
    Known {
        archive: "py-global-twice.tar",
        entry: "g2-b",
        field: "owner",
        verdict: Verdict::GnuTarWrong,
        why: "a second global header (gid=22) after a first (uid=11): GNU tar drops every \
              earlier global record (uid back to the header's 0); POSIX keeps a global value \
              until a later global record of the same keyword replaces it, as tarfile and we do",
    },
    Known {
        archive: "py-pax.tar",
        entry: "empty-path",
        field: "exists",
        verdict: Verdict::NoConsensus,
        why: "`path=` (empty): GNU tar names the file '.', and cannot extract it; we keep the \
              header's name (see PYTHON_DIFFERS)",
    },
    Known {
        archive: "py-pax.tar",
        entry: ".",
        field: "extra",
        verdict: Verdict::NoConsensus,
        why: "the same entry, as GNU tar names it",
    },
];

/// One regular file as GNU tar's `--to-command` sees it.
#[derive(Debug)]
struct GnuFile {
    name: Vec<u8>,
    size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: (i64, u32),
    sha256: String,
}

/// A decimal time, `-1.5`, as seconds (floor) and nanoseconds.
fn decimal_time(s: &str) -> (i64, u32) {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let int: i64 = int.parse().unwrap();
    let mut digits = frac.to_owned();
    digits.truncate(9);
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: u32 = digits.parse().unwrap();
    match (neg, nanos) {
        (false, _) => (int, nanos),
        (true, 0) => (-int, 0),
        (true, n) => (-int - 1, 1_000_000_000 - n),
    }
}

const TO_COMMAND: &str = r#"sh -c 'printf "%s\0%s\0%s\0%s\0%s\0%s\0" "$TAR_FILENAME" "$TAR_SIZE" "$TAR_MODE" "$TAR_UID" "$TAR_GID" "$TAR_MTIME"; sha256sum'"#;

/// GNU tar's reading of every regular file of `archive`, and what it said on stderr.
fn gnu_files(archive: &Path, scratch: &Path) -> (Vec<GnuFile>, String) {
    let out = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(scratch)
        .arg(format!("--to-command={TO_COMMAND}"))
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut files = Vec::new();
    let mut rest = &out.stdout[..];
    while !rest.is_empty() {
        let mut fields = Vec::new();
        for _ in 0..6 {
            let end = rest.iter().position(|&b| b == 0).expect("a NUL");
            fields.push(&rest[..end]);
            rest = &rest[end + 1..];
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .expect("sha256sum's line");
        let sha = std::str::from_utf8(&rest[..64]).unwrap().to_owned();
        rest = &rest[end + 1..];
        let text = |i: usize| std::str::from_utf8(fields[i]).unwrap();
        files.push(GnuFile {
            name: fields[0].to_vec(),
            size: text(1).parse().unwrap(),
            mode: u32::from_str_radix(text(2), 8).unwrap() & 0o7777,
            uid: text(3).parse().unwrap(),
            gid: text(4).parse().unwrap(),
            mtime: decimal_time(text(5)),
            sha256: sha,
        });
    }
    (files, stderr)
}

/// `TAR_FILENAME` is the name as stored less any leading `/`; ours is the name as stored.
fn same_name(ours: &[u8], gnu: &[u8]) -> bool {
    ours == gnu || ours.strip_prefix(b"/") == Some(gnu)
}

/// Filesystem limits: times and device numbers outside them cannot be checked on disk (the
/// `--to-command` check has the exact times of regular files).
fn time_fits(secs: i64) -> bool {
    (-(1i64 << 31)..(1i64 << 32)).contains(&secs)
}
fn dev_fits((major, minor): (u64, u64)) -> bool {
    major < 4096 && minor < (1 << 20)
}

fn xattrs_of(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    use std::ffi::CString;
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 65536];
    // SAFETY: the buffers are as long as we say.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "llistxattr {}", path.display());
    names.truncate(n as usize);
    let mut out = BTreeMap::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cn = CString::new(name).unwrap();
        let mut value = vec![0u8; 65536];
        // SAFETY: as above.
        let n = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cn.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert!(n >= 0, "lgetxattr {}", path.display());
        value.truncate(n as usize);
        out.insert(name.to_vec(), value);
    }
    out
}

/// Compares our view of `archive` with the tree GNU tar extracts from it, as root.
fn check_tree(
    name: &str,
    ours: &[View],
    archive: &Path,
    root: &Path,
    found: &mut Vec<(Key, String)>,
) -> String {
    std::fs::create_dir(root).unwrap();
    let out = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(root)
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--same-owner",
            "--same-permissions",
            "--numeric-owner",
        ])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The last entry of each name is what is on disk.
    let mut last: HashMap<&[u8], usize> = HashMap::new();
    for (i, v) in ours.iter().enumerate() {
        last.insert(&v.name, i);
    }
    let mut differ = |v: &View, field: &str, a: String, b: String| {
        let entry = show(&v.name);
        let text = format!("{name}: {entry}: {field}: ours {a}, GNU tar's tree {b}");
        found.push(((name.into(), entry, field.into()), text));
    };
    let at = |n: &[u8]| {
        root.join(std::ffi::OsStr::from_bytes(
            n.strip_prefix(b"/").unwrap_or(n),
        ))
    };
    for (i, v) in ours.iter().enumerate() {
        if last[v.name.as_slice()] != i || v.dev.is_some_and(|d| !dev_fits(d)) {
            continue;
        }
        let path = at(&v.name);
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            differ(v, "exists", "yes".into(), "missing".into());
            continue;
        };
        let ft = md.file_type();
        let kind = if ft.is_file() {
            "file"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        if v.kind == "hardlink" {
            let target = at(v.link.as_ref().unwrap());
            let same = std::fs::symlink_metadata(&target).is_ok_and(|t| t.ino() == md.ino());
            if !same {
                differ(
                    v,
                    "link",
                    format!("hard link to {}", show(v.link.as_ref().unwrap())),
                    "another inode".into(),
                );
            }
            continue; // its metadata is its target's
        }
        if kind != v.kind {
            differ(v, "kind", v.kind.clone(), kind.into());
            continue;
        }
        if kind != "symlink" && md.mode() & 0o7777 != v.mode {
            differ(
                v,
                "mode",
                format!("{:o}", v.mode),
                format!("{:o}", md.mode() & 0o7777),
            );
        }
        if (u64::from(md.uid()), u64::from(md.gid())) != (v.uid, v.gid) {
            differ(
                v,
                "owner",
                format!("{}:{}", v.uid, v.gid),
                format!("{}:{}", md.uid(), md.gid()),
            );
        }
        let mtime = (md.mtime(), md.mtime_nsec() as u32);
        if time_fits(v.mtime.0) && kind != "symlink" && mtime != v.mtime {
            differ(
                v,
                "mtime",
                format!("{}.{:09}", v.mtime.0, v.mtime.1),
                format!("{}.{:09}", mtime.0, mtime.1),
            );
        }
        if kind != "symlink" {
            let disk = xattrs_of(&path);
            if disk != v.xattrs {
                differ(v, "xattrs", show_xattrs(&v.xattrs), show_xattrs(&disk));
            }
        }
        match kind {
            "file" => {
                let sha = sha256(&mut std::fs::File::open(&path).unwrap()).unwrap();
                if md.len() != v.size {
                    differ(v, "size", v.size.to_string(), md.len().to_string());
                }
                if sha != v.sha256 {
                    differ(v, "sha256", v.sha256[..16].into(), sha[..16].into());
                }
            }
            "symlink" => {
                let t = std::fs::read_link(&path).unwrap();
                if t.as_os_str().as_bytes() != v.link.as_deref().unwrap() {
                    differ(
                        v,
                        "link",
                        show(v.link.as_deref().unwrap()),
                        show(t.as_os_str().as_bytes()),
                    );
                }
            }
            "char" | "block" => {
                let dev = v.dev.unwrap();
                let disk = (
                    nix::sys::stat::major(md.rdev()),
                    nix::sys::stat::minor(md.rdev()),
                );
                if disk != dev {
                    differ(v, "dev", format!("{dev:?}"), format!("{disk:?}"));
                }
            }
            _ => {}
        }
    }
    stderr
}

#[test]
fn gnu_tar_agrees() {
    if !have_python("gnu_tar_agrees") {
        return;
    }
    let f = fixture();
    let root = common::require_root("gnu_tar_agrees (extraction)");
    let scratch = tempfile::tempdir().unwrap();
    let mut found: Vec<(Key, String)> = Vec::new();
    let mut notes = String::new();
    for (i, name) in f.names.iter().enumerate() {
        let ours = read_ours(f, name);
        let archive = f.path(name);

        // Regular files, as --to-command sees them.
        let (files, stderr) = gnu_files(&archive, scratch.path());
        if !stderr.is_empty() {
            writeln!(notes, "{name} (--to-command): {}", stderr.trim()).unwrap();
        }
        // Matched by name, in order: GNU tar leaves out a file it cannot name.
        let mut unused: Vec<&GnuFile> = files.iter().collect();
        for v in ours.iter().filter(|v| v.kind == "file") {
            let entry = show(&v.name);
            let mut differ = |field: &str, a: String, b: String| {
                let text = format!("{name}: {entry}: {field}: ours {a}, GNU tar {b}");
                found.push(((name.clone(), entry.clone(), field.into()), text));
            };
            let Some(at) = unused.iter().position(|g| same_name(&v.name, &g.name)) else {
                differ("exists", "a file".into(), "none of that name".into());
                continue;
            };
            let g = unused.remove(at);
            if v.size != g.size {
                differ("size", v.size.to_string(), g.size.to_string());
            }
            if v.mode != g.mode {
                differ("mode", format!("{:o}", v.mode), format!("{:o}", g.mode));
            }
            if (v.uid, v.gid) != (g.uid, g.gid) {
                differ(
                    "owner",
                    format!("{}:{}", v.uid, v.gid),
                    format!("{}:{}", g.uid, g.gid),
                );
            }
            if v.mtime != g.mtime {
                differ("mtime", format!("{:?}", v.mtime), format!("{:?}", g.mtime));
            }
            if v.sha256 != g.sha256 {
                differ("sha256", v.sha256[..16].into(), g.sha256[..16].into());
            }
        }
        for g in unused {
            let text = format!("{name}: GNU tar has a file {} we do not", show(&g.name));
            found.push(((name.clone(), show(&g.name), "extra".into()), text));
        }

        // Everything, as extracted.
        if root {
            let stderr = check_tree(
                name,
                &ours,
                &archive,
                &scratch.path().join(format!("tree-{i}")),
                &mut found,
            );
            if !stderr.is_empty() {
                writeln!(notes, "{name} (extraction): {}", stderr.trim()).unwrap();
            }
        }
    }
    eprintln!("GNU tar said:\n{notes}");
    // Without root, only --to-command ran: what only the extraction finds is not there.
    check_known("ours vs GNU tar", &found, WE_DIFFER_FROM_GNU_TAR, root);
}

// ---------------------------------------------------------------------------------------------
// Hand-made archives

/// A ustar header block (GNU's magic for `S`), checksum computed.
fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = typeflag;
    if typeflag == b'S' {
        h[257..265].copy_from_slice(b"ustar  \0");
    } else {
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
    }
    checksum(&mut h);
    h
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{v:0w$o}\0", w = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

fn checksum(h: &mut [u8]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A header and its data, padded to whole blocks.
fn member(h: &[u8; 512], data: &[u8]) -> Vec<u8> {
    let mut m = h.to_vec();
    m.extend_from_slice(data);
    m.resize(m.len().div_ceil(512) * 512, 0);
    m
}

/// One PAX record, its length right.
fn record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = [key.as_bytes(), b"=", value, b"\n"].concat();
    let mut len = body.len() + 2;
    while format!("{len} ").len() + body.len() != len {
        len += 1;
    }
    [format!("{len} ").into_bytes(), body].concat()
}

/// An extended header ('x' or 'g') holding `data` as it is.
fn ext(typeflag: u8, data: &[u8]) -> Vec<u8> {
    member(&header(b"PaxHeaders/f", typeflag, data.len() as u64), data)
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    member(&header(name.as_bytes(), b'0', data.len() as u64), data)
}

fn archive(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut a = parts.concat();
    a.extend_from_slice(&[0; 1024]);
    a
}

/// An old GNU sparse (`S`) member: its pieces in the header (up to 4), `realsize`, the
/// extension flag, and the stored data.
fn old_gnu(
    name: &str,
    pieces: &[(u64, u64)],
    realsize: u64,
    extended: bool,
    data: &[u8],
) -> Vec<u8> {
    let mut h = header(name.as_bytes(), b'S', data.len() as u64);
    for (i, &(off, len)) in pieces.iter().enumerate() {
        octal(&mut h[386 + i * 24..398 + i * 24], off);
        octal(&mut h[398 + i * 24..410 + i * 24], len);
    }
    h[482] = u8::from(extended);
    octal(&mut h[483..495], realsize);
    checksum(&mut h);
    member(&h, data)
}

/// Our reader on `bytes`, a panic turned into an error saying so.
fn ours_no_panic(bytes: &[u8]) -> Result<Vec<View>, String> {
    match std::panic::catch_unwind(|| ours(bytes)) {
        Ok(r) => r,
        Err(p) => Err(format!(
            "PANIC: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}

/// Found by `gnu_tar_agrees` and `python_tarfile_agrees`, fixed in 44ffb9c: a PAX record
/// `SCHILY.xattr.user.empty=` is how GNU tar stores an xattr whose value is empty (e.g.
/// `setfattr -n user.empty f; tar --format=posix --xattrs -cf a.tar f`), and GNU tar extracts
/// it as an empty xattr again; Python's tarfile reads it as an empty value too. Our reader took
/// the empty value for "delete the keyword" and lost the xattr.
#[test]
fn an_empty_xattr_value_is_kept() {
    let a = archive(&[
        ext(
            b'x',
            &[
                record("SCHILY.xattr.user.empty", b""),
                record("SCHILY.xattr.user.set", b"v"),
            ]
            .concat(),
        ),
        file("f", b"data"),
    ]);
    seed("empty-xattr.tar", &a);
    let got = ours(&a).unwrap();
    let want: BTreeMap<Vec<u8>, Vec<u8>> = [
        (b"user.empty".to_vec(), Vec::new()),
        (b"user.set".to_vec(), b"v".to_vec()),
    ]
    .into_iter()
    .collect();
    assert!(
        got[0].xattrs == want,
        "the empty xattr user.empty must be kept, as GNU tar and tarfile keep it: ours {}, \
         expected {}",
        show_xattrs(&got[0].xattrs),
        show_xattrs(&want)
    );
}

#[test]
fn malformed_archives_are_errors() {
    if !have_python("malformed_archives_are_errors") {
        return;
    }
    let f = fixture();
    let pad = |s: &[u8]| {
        let mut v = s.to_vec();
        v.resize(512, 0);
        v
    };
    let sparse01 = |size: u64, numblocks: &str, map: &str, data: &[u8]| {
        archive(&[
            ext(
                b'x',
                &[
                    record("GNU.sparse.size", size.to_string().as_bytes()),
                    record("GNU.sparse.numblocks", numblocks.as_bytes()),
                    record("GNU.sparse.name", b"sparse"),
                    record("GNU.sparse.map", map.as_bytes()),
                ]
                .concat(),
            ),
            file("GNUSparseFile.1/sparse", data),
        ])
    };
    let sparse00 = |size: u64, numblocks: &str, pairs: &[(&str, &str)], data: &[u8]| {
        let mut recs = vec![
            record("GNU.sparse.size", size.to_string().as_bytes()),
            record("GNU.sparse.numblocks", numblocks.as_bytes()),
        ];
        for (k, v) in pairs {
            recs.push(record(k, v.as_bytes()));
        }
        archive(&[ext(b'x', &recs.concat()), file("sparse", data)])
    };
    let sparse10 = |realsize: u64, map: &[u8], data: &[u8]| {
        let body = [pad(map), data.to_vec()].concat();
        archive(&[
            ext(
                b'x',
                &[
                    record("GNU.sparse.major", b"1"),
                    record("GNU.sparse.minor", b"0"),
                    record("GNU.sparse.name", b"sparse"),
                    record("GNU.sparse.realsize", realsize.to_string().as_bytes()),
                ]
                .concat(),
            ),
            file("GNUSparseFile.1/sparse", &body),
        ])
    };

    // Edits of GNU tar's own archives, checksums recomputed.
    let gnu = |name: &str| std::fs::read(f.path(name)).unwrap();
    let find = |a: &[u8], name: &[u8]| {
        (0..a.len())
            .step_by(512)
            .find(|&at| a[at..at + 100].starts_with(name) && a[at + 100] != b'/')
            .unwrap()
    };
    // The old GNU header of ./many: its first two pieces swapped.
    let mut old_swapped = gnu("gnu-sparse-gnu.tar");
    let at = find(&old_swapped, b"./many\0");
    let (a, b) = (at + 386, at + 410);
    let first: Vec<u8> = old_swapped[a..b].to_vec();
    old_swapped.copy_within(b..b + 24, a);
    old_swapped[b..b + 24].copy_from_slice(&first);
    checksum(&mut old_swapped[at..at + 512]);
    // ... its real size smaller than its last piece's end.
    let mut old_small = gnu("gnu-sparse-gnu.tar");
    let at = find(&old_small, b"./many\0");
    octal(&mut old_small[at + 483..at + 495], 20_000);
    checksum(&mut old_small[at..at + 512]);
    // The PAX 1.0 map of ./many (data, no checksum): its first two pieces swapped.
    let mut ten_swapped = gnu("gnu-sparse-pax-1.0.tar");
    let text = b"31\n0\n4096\n16384\n4096\n";
    let at = ten_swapped
        .windows(text.len())
        .position(|w| w == text)
        .expect("GNU tar's 1.0 map of ./many");
    ten_swapped[at..at + text.len()].copy_from_slice(b"31\n16384\n4096\n0\n4096\n");
    // The PAX 0.1 map of ./many: ',' for the first ',' becomes a digit (the record length
    // stays right, the map no longer pairs up).
    let mut one_broken = gnu("gnu-sparse-pax-0.1.tar");
    let text = b"GNU.sparse.map=0,4096,16384,";
    let at = one_broken
        .windows(text.len())
        .position(|w| w == text)
        .expect("GNU tar's 0.1 map of ./many");
    one_broken[at + 16] = b'9';

    // A chain of extension blocks that never ends (each says another follows).
    let mut endless = old_gnu("sparse", &[(0, 10)], 10, true, b"");
    endless.truncate(512);
    for _ in 0..8 {
        let mut ext_block = [0u8; 512];
        ext_block[504] = 1;
        endless.extend_from_slice(&ext_block);
    }

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // PAX records
        (
            "PAX record whose length runs past the header",
            archive(&[ext(b'x', b"99 path=a\n"), file("f", b"")]),
            "runs past",
        ),
        (
            "PAX record length too short (no newline where it ends)",
            archive(&[ext(b'x', b"5 path=abc\n"), file("f", b"")]),
            "newline",
        ),
        (
            "PAX record length smaller than its own length field",
            archive(&[ext(b'x', b"2 x\n"), file("f", b"")]),
            "too small",
        ),
        (
            "PAX record without '='",
            archive(&[ext(b'x', b"12 pathabcd\n"), file("f", b"")]),
            "no '='",
        ),
        (
            "PAX record without a length",
            archive(&[ext(b'x', b"path=a\n"), file("f", b"")]),
            "length",
        ),
        (
            "PAX record with a length beyond u64",
            archive(&[
                ext(b'x', b"999999999999999999999999 path=a\n"),
                file("f", b""),
            ]),
            "malformed PAX record",
        ),
        (
            "PAX record with an empty keyword",
            archive(&[ext(b'x', b"6 =ab\n"), file("f", b"")]),
            "keyword",
        ),
        (
            "global header with a record whose length runs past it",
            archive(&[ext(b'g', b"99 uid=1\n"), file("f", b"")]),
            "runs past",
        ),
        (
            "PAX header followed by the end of the archive",
            archive(&[ext(b'x', &record("path", b"a"))]),
            "extended header",
        ),
        // PAX 0.1 maps
        (
            "0.1 map unsorted",
            sparse01(2000, "2", "1000,10,0,10", &[b'a'; 20]),
            "out of order",
        ),
        (
            "0.1 map overlapping",
            sparse01(2000, "2", "0,10,5,10", &[b'a'; 20]),
            "overlaps",
        ),
        (
            "0.1 map past the real size",
            sparse01(100, "1", "95,10", &[b'a'; 10]),
            "runs past",
        ),
        (
            "0.1 numblocks huge",
            sparse01(100, "18446744073709551615", "0,10", &[b'a'; 10]),
            "numblocks",
        ),
        (
            "0.1 numblocks beyond u64",
            sparse01(100, "99999999999999999999999", "0,10", &[b'a'; 10]),
            "numblocks",
        ),
        (
            "0.1 map with an odd count of numbers (edited GNU tar archive)",
            one_broken,
            "GNU.sparse.map",
        ),
        (
            "0.1 map naming more data than stored",
            sparse01(2000, "1", "0,100", &[b'a'; 10]),
            "holds",
        ),
        // PAX 0.0 maps
        (
            "0.0 pairs unsorted",
            sparse00(
                2000,
                "2",
                &[
                    ("GNU.sparse.offset", "1000"),
                    ("GNU.sparse.numbytes", "10"),
                    ("GNU.sparse.offset", "0"),
                    ("GNU.sparse.numbytes", "10"),
                ],
                &[b'a'; 20],
            ),
            "out of order",
        ),
        (
            "0.0 numblocks huge, no pairs",
            sparse00(100, "99999999999999", &[], b""),
            "numblocks",
        ),
        (
            "0.0 offset without numbytes",
            sparse00(100, "1", &[("GNU.sparse.offset", "0")], b""),
            "numbytes",
        ),
        (
            "0.0 numbytes before offset",
            sparse00(100, "1", &[("GNU.sparse.numbytes", "1")], b"a"),
            "alternate",
        ),
        // PAX 1.0 maps
        (
            // A whole block of numbers, and a count that wants many more blocks than stored.
            "1.0 map count huge",
            sparse10(
                100,
                &[&b"99999999999999999\n"[..], &b"0\n".repeat(247)].concat(),
                b"",
            ),
            "runs past",
        ),
        (
            "1.0 map shorter than its count (NUL padding inside it)",
            sparse10(100, b"3\n0\n10\n", &[b'a'; 10]),
            "sparse map",
        ),
        (
            "1.0 map count beyond u64",
            sparse10(100, b"99999999999999999999999\n0\n10\n", &[b'a'; 10]),
            "sparse map",
        ),
        (
            "1.0 map unsorted (edited GNU tar archive)",
            ten_swapped,
            "out of order",
        ),
        (
            "1.0 map past the real size",
            sparse10(100, b"1\n95\n10\n", &[b'a'; 10]),
            "runs past",
        ),
        (
            "1.0 map without its realsize",
            archive(&[
                ext(
                    b'x',
                    &[
                        record("GNU.sparse.major", b"1"),
                        record("GNU.sparse.minor", b"0"),
                    ]
                    .concat(),
                ),
                file("sparse", &pad(b"0\n")),
            ]),
            "realsize",
        ),
        // Old GNU maps
        (
            "old GNU map unsorted (edited GNU tar archive)",
            old_swapped,
            "out of order",
        ),
        (
            "old GNU real size smaller than the map (edited GNU tar archive)",
            old_small,
            "runs past",
        ),
        (
            "old GNU map overlapping",
            archive(&[old_gnu(
                "sparse",
                &[(0, 10), (5, 10)],
                100,
                false,
                &[b'a'; 20],
            )]),
            "overlaps",
        ),
        (
            "old GNU extension blocks that never end",
            endless,
            "ends inside a sparse header",
        ),
        (
            "old GNU data shorter than the map says (archive cut)",
            old_gnu("sparse", &[(0, 600)], 1000, false, &[b'a'; 600])[..700].to_vec(),
            "ends",
        ),
    ];

    let mut failures = String::new();
    for (what, bytes, want) in &cases {
        let file: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        seed(&format!("bad-{file}.tar"), bytes);
        match ours_no_panic(bytes) {
            Ok(v) => writeln!(failures, "  {what}: accepted ({} entries)", v.len()).unwrap(),
            Err(e) if e.starts_with("PANIC") => writeln!(failures, "  {what}: {e}").unwrap(),
            Err(e) if !e.contains(want) => {
                writeln!(failures, "  {what}: error without {want:?}: {e}").unwrap()
            }
            Err(e) => eprintln!("{what}: {e}"),
        }
    }
    assert!(failures.is_empty(), "malformed archives:\n{failures}");
}
