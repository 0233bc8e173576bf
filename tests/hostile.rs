//! Hostile layers: nothing escapes the target. Each test builds the attack by hand (no tool
//! writes these), applies it as root with canary files beside the target, and requires the
//! canaries to come out unchanged (content, mode, owner, mtime, xattrs, link count) and
//! nothing new to appear outside the target. Tests are named after the advisory they model.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;
use flatten::snapshot::{Mtime, Snapshot};

/// A sandbox: `outside/` with canaries, and `root/`, the target.
struct Sandbox {
    dir: tempfile::TempDir,
    before: Snapshot,
    nlinks: Vec<(PathBuf, u64)>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tmp();
        let out = dir.path().join("outside");
        std::fs::create_dir(&out).unwrap();
        std::fs::create_dir(out.join("dir")).unwrap();
        std::fs::write(out.join("canary"), b"do not touch").unwrap();
        std::fs::write(out.join("dir/canary"), b"nor this").unwrap();
        std::os::unix::fs::symlink("canary", out.join("link")).unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let before = Snapshot::from_dir(dir.path()).unwrap();
        let nlinks = ["outside/canary", "outside/dir/canary"]
            .iter()
            .map(|p| {
                let p = dir.path().join(p);
                let n = std::fs::metadata(&p).unwrap().nlink();
                (p, n)
            })
            .collect();
        Sandbox {
            dir,
            before,
            nlinks,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn outside(&self) -> String {
        self.dir.path().join("outside").to_str().unwrap().to_owned()
    }

    /// Applies the layers with both resolvers; returns the first result.
    fn apply(&self, layers: &[Vec<u8>]) -> flatten::Result<()> {
        let r = apply_with(&self.root(), layers, flatten::Strategy::Auto);
        self.check_outside();
        let walk = self.dir.path().join("root-walk");
        std::fs::create_dir(&walk).unwrap();
        let w = apply_with(&walk, layers, flatten::Strategy::Walk);
        assert_eq!(r.is_ok(), w.is_ok(), "both resolvers agree: {r:?} vs {w:?}");
        std::fs::remove_dir_all(&walk).unwrap();
        self.check_outside();
        r
    }

    /// Everything but the target is as it was.
    fn check_outside(&self) {
        let mut now = Snapshot::from_dir(self.dir.path()).unwrap();
        let mut before = self.before.clone();
        for s in [&mut now, &mut before] {
            s.nodes
                .retain(|k, _| !k.starts_with(b"root/") && !k.starts_with(b"root-walk"));
        }
        // The target's own metadata may change (a root entry); its existence may not.
        now.nodes.remove(&b"root"[..]);
        before.nodes.remove(&b"root"[..]);
        assert_same(&before, &now, Mtime::Exact);
        for (p, n) in &self.nlinks {
            assert_eq!(
                std::fs::metadata(p).unwrap().nlink(),
                *n,
                "link count of {}",
                p.display()
            );
        }
        assert!(
            std::fs::symlink_metadata(self.root()).unwrap().is_dir(),
            "the target stays a directory"
        );
    }

    /// Where the canary's directory, named by its absolute host path, lands inside the root.
    fn outside_in_root(&self) -> PathBuf {
        self.root().join(self.outside().trim_start_matches('/'))
    }

    fn tree(&self) -> Vec<String> {
        paths(&Snapshot::from_dir(&self.root()).unwrap())
    }
}

fn content(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn rustsec_2018_0002_dotdot_names_are_refused() {
    let s = Sandbox::new();
    for name in ["../outside/canary", "a/../../outside/canary", "./../x"] {
        let err = s.apply(&[tar(&[E::file(name, b"pwned")])]).unwrap_err();
        assert!(err.to_string().contains(".."), "{err}");
    }
}

#[test]
fn docker_cve_2014_6407_absolute_names_stay_inside() {
    let s = Sandbox::new();
    let abs = format!("{}/canary", s.outside());
    s.apply(&[tar(&[
        E::file(&abs, b"inside"),
        E::file("/etc/passwd", b"inside"),
    ])])
    .unwrap();
    assert_eq!(
        content(&s.root().join(abs.trim_start_matches('/'))),
        b"inside"
    );
    assert_eq!(content(&s.root().join("etc/passwd")), b"inside");
}

#[test]
fn docker_cve_2014_9356_symlink_from_lower_layer_cannot_lead_out() {
    let s = Sandbox::new();
    s.apply(&[
        tar(&[
            E::symlink("abs", &s.outside()),
            E::symlink("rel", "../../../../../../"),
            E::symlink("dotdot", ".."),
        ]),
        tar(&[
            E::file("abs/canary", b"1"),
            E::file("rel/outside/canary", b"2"),
            E::file("dotdot/escaped", b"3"),
        ]),
    ])
    .unwrap();
    // Each landed inside the root, where the link resolves when chrooted.
    assert_eq!(content(&s.outside_in_root().join("canary")), b"1");
    assert_eq!(content(&s.root().join("outside/canary")), b"2");
    assert_eq!(content(&s.root().join("escaped")), b"3");
}

#[test]
fn umoci_cve_2021_29136_symlink_in_the_same_layer_cannot_lead_out() {
    let s = Sandbox::new();
    s.apply(&[tar(&[
        E::symlink("x", &format!("{}/dir", s.outside())),
        E::file("x/canary", b"pwned"),
        E::dir("x").mode(0o777),
    ])])
    .unwrap();
    // The directory entry replaced the symlink; it did not chmod what the link pointed at.
    assert!(std::fs::symlink_metadata(s.root().join("x"))
        .unwrap()
        .is_dir());
}

#[test]
fn symlink_chains_and_loops_stay_inside_or_fail() {
    let s = Sandbox::new();
    s.apply(&[
        tar(&[
            E::symlink("a", "b"),
            E::symlink("b", "c"),
            E::symlink("c", "../../../outside"),
        ]),
        tar(&[E::file("a/canary", b"in")]),
    ])
    .unwrap();
    assert_eq!(content(&s.root().join("outside/canary")), b"in");
    let s = Sandbox::new();
    let err = s
        .apply(&[tar(&[
            E::symlink("l1", "l2"),
            E::symlink("l2", "l1"),
            E::file("l1/x", b""),
        ])])
        .unwrap_err();
    assert!(err.to_string().contains("symlinks"), "{err}");
}

#[test]
fn docker_cve_2014_9357_hardlinks_cannot_reach_outside() {
    let s = Sandbox::new();
    // `..` is refused outright; an absolute target resolves inside the root (and is missing);
    // a target through a symlink to outside resolves inside the root too.
    let abs = format!("{}/canary", s.outside());
    for l in [
        tar(&[E::hardlink("h", "../outside/canary")]),
        tar(&[E::hardlink("h", &abs)]),
        tar(&[E::symlink("l", &s.outside()), E::hardlink("h", "l/canary")]),
        tar(&[E::symlink("l", "../outside"), E::hardlink("h", "l/canary")]),
    ] {
        assert!(s.apply(&[l]).is_err());
    }
    // A link to a symlink links the symlink, not what it points at.
    let s = Sandbox::new();
    s.apply(&[tar(&[E::symlink("l", &abs), E::hardlink("h", "l")])])
        .unwrap();
    assert!(std::fs::symlink_metadata(s.root().join("h"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn containerd_cve_2021_32760_metadata_never_follows_a_symlink() {
    // A file, device or fifo entry over a symlink replaces the symlink: no chmod, chown,
    // xattr or write reaches what it pointed at.
    let s = Sandbox::new();
    let canary = format!("{}/canary", s.outside());
    s.apply(&[
        tar(&[
            E::symlink("f", &canary),
            E::symlink("p", &canary),
            E::symlink("d", &canary),
        ]),
        tar(&[
            E::file("f", b"new")
                .mode(0o777)
                .owner(9, 9)
                .xattr("user.x", b"1"),
            E::fifo("p").mode(0o777),
            E::dir("d").mode(0o777),
        ]),
    ])
    .unwrap();
    assert_eq!(content(&s.root().join("f")), b"new");
}

#[test]
fn whiteouts_through_symlinks_stay_inside() {
    let s = Sandbox::new();
    s.apply(&[
        tar(&[E::symlink("l", &s.outside()), E::symlink("r", "../outside")]),
        tar(&[
            E::whiteout("l/.wh.canary"),
            E::whiteout("r/.wh.dir"),
            E::whiteout("l/.wh..wh..opq"),
            E::whiteout("r/.wh..wh..opq"),
        ]),
    ])
    .unwrap();
    // A whiteout of the symlink itself removes the link, never its target.
    let s = Sandbox::new();
    s.apply(&[
        tar(&[E::symlink("l", &s.outside())]),
        tar(&[E::whiteout(".wh.l")]),
    ])
    .unwrap();
    assert!(s.tree().is_empty());
}

#[test]
fn entries_addressing_the_root_with_another_type_are_refused() {
    for e in [
        E::symlink("./", "/"),
        E::file(".", b"x"),
        E::fifo("/"),
        E::hardlink("./", "x"),
    ] {
        let s = Sandbox::new();
        assert!(s.apply(&[tar(&[E::file("x", b""), e])]).is_err());
    }
    let s = Sandbox::new();
    assert!(s.apply(&[tar(&[E::whiteout(".wh..")])]).is_err());
}

#[test]
fn long_names_in_pax_and_gnu_headers_are_checked_like_short_ones() {
    let s = Sandbox::new();
    let long_escape = format!("{}/../../outside/canary", "d".repeat(150));
    assert!(s.apply(&[tar(&[E::file(&long_escape, b"pwned")])]).is_err());
    let long_ok = format!("{}/f", "d".repeat(150));
    s.apply(&[tar(&[E::file(&long_ok, b"ok")])]).unwrap();
    assert_eq!(content(&s.root().join(&long_ok)), b"ok");
    // A PAX path that disagrees with the ustar name: the PAX one counts, and is checked.
    let e = E::file("harmless", b"pwned").pax("path", b"../outside/canary");
    assert!(s.apply(&[tar(&[e])]).is_err());
}

/// `depth` nested directories `d/d/d/…` with a file at the bottom.
fn deep(depth: usize) -> Vec<E> {
    let mut entries = Vec::with_capacity(depth + 1);
    let mut p = String::new();
    for _ in 0..depth {
        if !p.is_empty() {
            p.push('/');
        }
        p.push('d');
        entries.push(E::dir(&p));
    }
    entries.push(E::file(&format!("{p}/bottom"), b"deep"));
    entries
}

#[test]
fn deep_trees_apply_and_are_removed_cleanly() {
    // 4000 levels: paths far beyond PATH_MAX, which openat2 refuses; the walk from the cached
    // parent handles them, and removal and the final metadata pass do not recurse. They need
    // a file handle per level, which the library leaves to its caller (the CLI raises it).
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    let s = Sandbox::new();
    s.apply(&[
        tar(&deep(4000)),
        tar(&[E::whiteout(".wh.d"), E::file("after", b"")]),
    ])
    .unwrap();
    assert_eq!(s.tree(), ["/after"]);
    let s = Sandbox::new();
    s.apply(&[tar(&deep(4000))]).unwrap();
}

#[test]
fn overlong_names_fail_cleanly() {
    let s = Sandbox::new();
    let err = s
        .apply(&[tar(&[E::file(&"n".repeat(300), b"")])])
        .unwrap_err();
    assert!(err.to_string().contains("too long"), "{err}");
}

/// A file entry whose ustar size is `ustar` but whose PAX record says `pax`; its data is a
/// whole tar header for "smuggled" (plus padding), which a parser that trusts the wrong size
/// would read as an entry.
fn smuggling_layer(ustar: usize) -> Vec<u8> {
    let smuggled = tar(&[E::file("smuggled", b"")]);
    let payload = smuggled[..1024].to_vec();
    let mut e = E::file("outer", &payload).pax("size", payload.len().to_string().as_bytes());
    e.data = payload;
    let mut bytes = tar(&[e]);
    // Rewrite the ustar size of the "outer" header (the second 512-byte block) and its checksum.
    let h = 1024;
    let size = format!("{ustar:011o}\0");
    bytes[h + 124..h + 136].copy_from_slice(size.as_bytes());
    bytes[h + 148..h + 156].copy_from_slice(b"        ");
    let sum: u32 = bytes[h..h + 512].iter().map(|&b| u32::from(b)).sum();
    bytes[h + 148..h + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    bytes
}

#[test]
fn tarmageddon_cve_2025_62518_pax_size_wins_over_a_zero_ustar_size() {
    let s = Sandbox::new();
    s.apply(&[smuggling_layer(0)]).unwrap();
    assert_eq!(s.tree(), ["/outer"]);
    assert_eq!(
        std::fs::metadata(s.root().join("outer")).unwrap().len(),
        1024
    );
}

#[test]
fn rustsec_2026_0068_pax_size_wins_over_a_nonzero_ustar_size() {
    let s = Sandbox::new();
    s.apply(&[smuggling_layer(512)]).unwrap();
    assert_eq!(s.tree(), ["/outer"]);
}

#[test]
fn rustsec_2026_0067_directory_entries_never_chmod_through_a_symlink() {
    let s = Sandbox::new();
    let dir = format!("{}/dir", s.outside());
    s.apply(&[
        tar(&[E::symlink("d", &dir), E::symlink("e", "../outside/dir")]),
        tar(&[
            E::dir("d").mode(0o777).owner(5, 5).xattr("user.x", b"1"),
            E::dir("e/").mode(0o700),
        ]),
    ])
    .unwrap();
}

#[test]
fn moby_cve_2026_17106_links_cannot_carry_writes_out() {
    let s = Sandbox::new();
    s.apply(&[
        tar(&[
            E::file("inside", b"i"),
            E::symlink("out", &s.outside()),
            E::symlink("up", "../../outside"),
        ]),
        tar(&[
            // The new name of a hardlink goes through a symlink: it lands inside the root.
            E::hardlink("out/canary", "inside"),
            E::hardlink("up/dir/canary", "/inside"),
            // A hardlink to a symlink that points out, then a file written over it.
            E::hardlink("alias", "out"),
            E::file("alias/canary", b"pwned"),
        ]),
    ])
    .unwrap();
    assert_eq!(content(&s.outside_in_root().join("canary")), b"pwned");
}

#[test]
fn extended_headers_claiming_gigabytes_do_not_allocate_them() {
    // A PAX header whose size field (base-256) claims 2^40 bytes, followed by almost nothing.
    let mut h = tar(&[E::file("x", b"")]);
    h.truncate(512);
    h[156] = b'x';
    let mut size = [0u8; 12];
    size[0] = 0x80;
    size[6] = 0x01; // 2^40
    h[124..136].copy_from_slice(&size);
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h.extend_from_slice(&[b'1'; 600]);
    let s = Sandbox::new();
    assert!(s.apply(&[h]).is_err());
}

/// A GNU long-name ('L') header naming `name`, then a file entry with a short stand-in name.
fn gnu_long_name(name: &str, data: &[u8]) -> Vec<E> {
    let mut long = E::file("././@LongLink", &[name.as_bytes(), b"\0"].concat());
    long.typeflag = b'L';
    vec![long, E::file("short-stand-in", data)]
}

#[test]
fn gnu_long_names_are_checked_like_short_ones() {
    let s = Sandbox::new();
    let escape = format!("{}/../../../outside/canary", "g".repeat(120));
    assert!(s.apply(&[tar(&gnu_long_name(&escape, b"pwned"))]).is_err());
    let ok = format!("{}/file", "g".repeat(120));
    s.apply(&[tar(&gnu_long_name(&ok, b"ok"))]).unwrap();
    assert_eq!(content(&s.root().join(&ok)), b"ok");
    assert!(!s.root().join("short-stand-in").exists());
}
