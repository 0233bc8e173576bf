//! The tar rules the reader holds to, one hand-made layer per rule: what real tools do not
//! write (malformed PAX records, broken sparse maps) and the corners of PAX they rarely do
//! (global headers, empty values, duplicates). Every command sees a layer alike: each
//! malformed one is refused by the directory, `-o`, `ls` and `inspect` with the same line.

mod common;

use common::tarw::record;
use common::*;
use flatten::snapshot::Snapshot;

/// Flattens one layer into a directory and describes it.
fn flattened(entries: &[E]) -> Snapshot {
    let t = tmp();
    let dir = t.path().join("root");
    std::fs::create_dir(&dir).unwrap();
    apply(&dir, &[tar(entries)]).unwrap_or_else(|e| panic!("{e}"));
    Snapshot::from_dir(&dir).unwrap()
}

/// The error every command gives for an image of one layer; they must all give it.
fn refused(entries: &[E]) -> String {
    refused_layer(tar(entries))
}

fn refused_layer(layer: Vec<u8>) -> String {
    let t = tmp();
    let image = docker_archive(t.path(), "img.tar", &[layer]);
    let image = image.to_str().unwrap();
    let out = t.path().join("out");
    let runs = [
        bin()
            .args(["-q", image])
            .arg(t.path().join("root"))
            .output(),
        bin().args(["-q", image, "-o"]).arg(&out).output(),
        bin().args(["ls", image]).output(),
        bin().args(["inspect", image]).output(),
        bin()
            .args(["-q", "--no-verify", image])
            .arg(t.path().join("root2"))
            .output(),
    ];
    let mut messages = Vec::new();
    for r in runs {
        let r = r.unwrap();
        let err = String::from_utf8_lossy(&r.stderr).trim().to_owned();
        // A directory or -o also says what it left behind.
        let err = match err.rfind("; ") {
            Some(i)
                if err[i..].contains(" is incomplete (")
                    || err[i..].contains(" was not written (") =>
            {
                err[..i].to_owned()
            }
            _ => err,
        };
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(!err.contains("panicked"), "{err}");
        messages.push(err);
    }
    assert!(
        messages.iter().all(|m| *m == messages[0]),
        "every command says the same: {messages:#?}"
    );
    messages.swap_remove(0)
}

fn xattr<'s>(s: &'s Snapshot, path: &str, name: &str) -> Option<&'s Vec<u8>> {
    s.nodes[path.as_bytes()].xattrs.get(name.as_bytes())
}

#[test]
fn pax_values_may_hold_newlines_and_nuls() {
    if !require_root("pax_values_may_hold_newlines_and_nuls") {
        return;
    }
    // cap_dac_override,cap_fowner+ep: a v2 capability whose permitted set is 0x0a.
    let mut value = vec![0u8; 20];
    value[..5].copy_from_slice(b"\x01\x00\x00\x02\x0a");
    let s = flattened(&[
        E::file("f", b"x").xattr("security.capability", &value),
        E::file("g", b"y").xattr("user.bin", b"a\nb\0c\n"),
    ]);
    assert_eq!(xattr(&s, "f", "security.capability").unwrap(), &value);
    assert_eq!(xattr(&s, "g", "user.bin").unwrap(), b"a\nb\0c\n");
}

#[test]
fn a_later_duplicate_record_wins() {
    let s = flattened(&[E::file("f", b"x")
        .pax("mtime", b"100")
        .pax("mtime", b"200.5")
        .pax("uid", b"7")
        .pax("uid", b"0")]);
    let f = &s.nodes[&b"f"[..]];
    assert_eq!((f.mtime.secs, f.mtime.nanos), (200, 500_000_000));
    assert_eq!(f.uid, 0);
}

#[test]
fn an_empty_value_unsets_the_keyword() {
    // The header's own mtime (1_600_000_000) stands again once the record is emptied.
    let s = flattened(&[E::file("f", b"x").pax("mtime", b"5").pax("mtime", b"")]);
    assert_eq!(s.nodes[&b"f"[..]].mtime.secs, 1_600_000_000);
}

#[test]
fn an_empty_xattr_value_is_an_empty_xattr() {
    // How GNU tar stores an xattr set with an empty value (BuildKit's user.overlay.* ones),
    // and how GNU tar, Go and Python read it back.
    if !require_root("an_empty_xattr_value_is_an_empty_xattr") {
        return;
    }
    let s = flattened(&[E::file("g", b"y").pax("SCHILY.xattr.user.overlay.x", b"")]);
    assert_eq!(
        xattr(&s, "g", "user.overlay.x").map(Vec::as_slice),
        Some(&b""[..])
    );
}

#[test]
fn global_headers_hold_for_every_entry_after_them() {
    let s = flattened(&[
        E::file("before", b"x"),
        E::file("a", b"x").global(&[("mtime", b"42"), ("comment", b"ignored")]),
        E::file("b", b"x"),
        // A local record overrides the global one; an empty global value deletes it.
        E::file("c", b"x").pax("mtime", b"7"),
        E::file("d", b"x").global(&[("mtime", b"")]),
    ]);
    let mtime = |p: &str| s.nodes[p.as_bytes()].mtime.secs;
    assert_eq!(mtime("before"), 1_600_000_000);
    assert_eq!((mtime("a"), mtime("b"), mtime("c")), (42, 42, 7));
    assert_eq!(mtime("d"), 1_600_000_000);
}

#[test]
fn unknown_keywords_are_ignored() {
    let s = flattened(&[E::file("f", b"x")
        .pax("LIBARCHIVE.creationtime", b"1")
        .pax("SCHILY.fflags", b"nodump")
        .pax("hdrcharset", b"BINARY")
        .pax("comment", b"any\nbytes\0")]);
    assert!(s.nodes.contains_key(&b"f"[..]));
}

#[test]
fn a_pax_name_longer_than_the_header_field_is_used() {
    let long = format!(
        "d/{}/{}/{}",
        "n".repeat(100),
        "o".repeat(100),
        "p".repeat(200)
    );
    let s = flattened(&[E::file(&long, b"x")]);
    assert!(s.nodes.contains_key(long.as_bytes()));
}

#[test]
fn malformed_pax_records_are_refused_naming_layer_and_entry() {
    for (why, data) in [
        ("runs past the header", b"99 path=x\n".to_vec()),
        ("too short", b"3 path=x\n".to_vec()),
        ("no '='", b"8 pathx\n".to_vec()),
        ("no length", b"path=x\n".to_vec()),
        (
            "garbage after",
            [record(b"mtime", b"1"), b"junk".to_vec()].concat(),
        ),
    ] {
        let msg = refused(&[E::file("ok", b"1"), E::file("victim", b"2").raw_pax(&data)]);
        assert!(
            msg.contains("layer 1") && msg.contains("victim") && msg.contains("PAX"),
            "{why}: {msg}"
        );
    }
}

/// A PAX 0.1 sparse file: `map` (offset, size pairs) of a file of `size` bytes, its stored
/// pieces `data`.
fn sparse_01(name: &str, size: u64, map: &[(u64, u64)], data: &[u8]) -> E {
    let text: Vec<String> = map.iter().map(|(o, l)| format!("{o},{l}")).collect();
    E::file(name, data)
        .pax("GNU.sparse.size", size.to_string().as_bytes())
        .pax("GNU.sparse.numblocks", map.len().to_string().as_bytes())
        .pax("GNU.sparse.map", text.join(",").as_bytes())
}

/// A PAX 1.0 sparse file, its map at the start of the data.
fn sparse_10(name: &str, size: u64, count: u64, map: &[(u64, u64)], data: &[u8]) -> E {
    let mut stored = format!("{count}\n").into_bytes();
    for (o, l) in map {
        stored.extend(format!("{o}\n{l}\n").bytes());
    }
    stored.resize(stored.len().div_ceil(512) * 512, 0);
    stored.extend_from_slice(data);
    E::file("GNUSparseFile.0/x", &stored)
        .pax("GNU.sparse.major", b"1")
        .pax("GNU.sparse.minor", b"0")
        .pax("GNU.sparse.name", name.as_bytes())
        .pax("GNU.sparse.realsize", size.to_string().as_bytes())
}

#[test]
fn sparse_files_read_in_pax_forms() {
    let s = flattened(&[
        sparse_01("a", 10, &[(1, 2), (6, 1)], b"abc"),
        sparse_10("b", 10, 2, &[(1, 2), (6, 1)], b"abc"),
    ]);
    let expect = b"\0ab\0\0\0c\0\0\0";
    for p in ["a", "b"] {
        match &s.nodes[p.as_bytes()].kind {
            flatten::snapshot::NodeKind::File { size, sha256 } => {
                assert_eq!(*size, 10);
                assert_eq!(*sha256, flatten::snapshot::sha256(expect), "{p}");
            }
            other => panic!("{p}: {other:?}"),
        }
    }
}

#[test]
fn broken_sparse_maps_are_refused() {
    for (why, entry, says) in [
        (
            "unsorted",
            sparse_01("s", 10, &[(6, 1), (1, 2)], b"abc"),
            "out of order",
        ),
        (
            "overlapping",
            sparse_01("s", 10, &[(1, 3), (2, 1)], b"abcd"),
            "overlaps",
        ),
        (
            "past the size",
            sparse_01("s", 10, &[(8, 3)], b"abc"),
            "runs past",
        ),
        (
            "more data than stored",
            sparse_01("s", 10, &[(0, 5)], b"abc"),
            "holds 3",
        ),
        (
            "huge size",
            sparse_01("s", u64::MAX, &[(0, 3)], b"abc"),
            "too large",
        ),
        (
            "a huge count claimed by a small map",
            sparse_10("s", 10, 1_000_000_000_000, &[(0, 3)], b"abc"),
            "sparse map",
        ),
        (
            "numblocks that disagrees",
            sparse_01("s", 10, &[(0, 3)], b"abc").pax("GNU.sparse.numblocks", b"99999999999"),
            "numblocks",
        ),
    ] {
        let msg = refused(&[E::file("ok", b"1"), entry]);
        assert!(
            msg.contains("layer 1") && msg.contains(says),
            "{why}: {msg}"
        );
    }
}

#[test]
fn a_layer_cut_inside_a_file_is_refused_everywhere() {
    let mut layer = tar(&[E::file("a", b"1"), E::file("big", &[7u8; 3000])]);
    layer.truncate(512 + 512 + 512 + 1000);
    let msg = refused_layer(layer);
    assert!(msg.contains("big") && msg.contains("ends inside"), "{msg}");
}

#[test]
fn a_layer_without_its_last_padding_is_read_everywhere() {
    // umoci 0.4.7 stops right after the last file's content.
    let mut layer = tar(&[E::file("a", b"1"), E::file("last", b"12345")]);
    layer.truncate(512 + 512 + 512 + 5);
    let t = tmp();
    let image = docker_archive(t.path(), "img.tar", &[layer]);
    let image = image.to_str().unwrap();
    ok(bin().args(["-q", image]).arg(t.path().join("root")));
    ok(bin()
        .args(["-q", image, "-o"])
        .arg(t.path().join("out.tar")));
    ok(bin().args(["ls", image]));
    ok(bin().args(["inspect", image]));
    let s = Snapshot::from_dir(&t.path().join("root")).unwrap();
    assert_eq!(paths(&s), ["/a", "/last"]);
}
