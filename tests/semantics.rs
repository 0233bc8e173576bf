//! One test per layering rule of docs/semantics.md, each on a small hand-made image, each
//! also checked against the executable specification.

mod common;

use common::*;
use flatten::snapshot::{Mtime, NodeKind, Snapshot};

/// Applies `layers` for real, checks the spec agrees, returns the tree.
fn flat(layers: &[Vec<u8>]) -> Snapshot {
    let dir = tmp();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    apply(&root, layers).unwrap();
    let real = Snapshot::from_dir(&root).unwrap();
    let model = spec(layers).expect("spec accepts what the applier accepts");
    assert_same(&real, &model, Mtime::Exact);
    // The fallback resolver must give the same tree.
    let walk = dir.path().join("walk");
    std::fs::create_dir(&walk).unwrap();
    apply_with(&walk, layers, flatten::Strategy::Walk).unwrap();
    assert_same(&Snapshot::from_dir(&walk).unwrap(), &real, Mtime::Exact);
    real
}

fn fails(layers: &[Vec<u8>]) -> String {
    let dir = tmp();
    let err = apply(dir.path(), layers).expect_err("must be refused");
    assert!(spec(layers).is_err(), "the spec must refuse it too");
    err.to_string()
}

fn content(s: &Snapshot, p: &str) -> [u8; 32] {
    match &s.nodes[p.as_bytes()].kind {
        NodeKind::File { sha256, .. } => *sha256,
        k => panic!("{p} is a {k:?}"),
    }
}

fn has(s: &Snapshot, p: &str) -> bool {
    s.nodes.contains_key(p.as_bytes())
}

fn sha(b: &[u8]) -> [u8; 32] {
    flatten::snapshot::sha256(b)
}

#[test]
fn layers_apply_bottom_to_top() {
    let s = flat(&[tar(&[E::file("f", b"one")]), tar(&[E::file("f", b"two")])]);
    assert_eq!(content(&s, "f"), sha(b"two"));
}

#[test]
fn later_duplicate_in_one_layer_wins() {
    let s = flat(&[tar(&[
        E::file("f", b"first"),
        E::file("f", b"second").mode(0o600),
    ])]);
    assert_eq!(content(&s, "f"), sha(b"second"));
    assert_eq!(s.nodes[&b"f"[..]].mode, 0o600);
}

#[test]
fn whiteout_removes_lower_file() {
    let s = flat(&[
        tar(&[E::dir("d"), E::file("d/a", b"a"), E::file("d/b", b"b")]),
        tar(&[E::whiteout("d/.wh.a")]),
    ]);
    assert!(!has(&s, "d/a"));
    assert!(has(&s, "d/b"));
}

#[test]
fn whiteout_removes_lower_directory_with_everything_under_it() {
    let s = flat(&[
        tar(&[
            E::dir("d"),
            E::dir("d/sub"),
            E::file("d/sub/x", b"x"),
            E::file("keep", b"k"),
        ]),
        tar(&[E::whiteout(".wh.d")]),
    ]);
    assert_eq!(paths(&s), ["/keep"]);
}

#[test]
fn whiteout_spares_same_layer_entry_before_the_marker() {
    let s = flat(&[
        tar(&[E::file("f", b"lower")]),
        tar(&[E::file("f", b"upper"), E::whiteout(".wh.f")]),
    ]);
    assert_eq!(content(&s, "f"), sha(b"upper"));
}

#[test]
fn whiteout_spares_same_layer_entry_after_the_marker() {
    let s = flat(&[
        tar(&[E::file("f", b"lower")]),
        tar(&[E::whiteout(".wh.f"), E::file("f", b"upper")]),
    ]);
    assert_eq!(content(&s, "f"), sha(b"upper"));
}

#[test]
fn whiteout_of_directory_spares_same_layer_content_inside_it() {
    let s = flat(&[
        tar(&[
            E::dir("d").mode(0o700).owner(5, 5),
            E::file("d/old", b"o"),
            E::file("d/kept", b"lower"),
        ]),
        tar(&[E::file("d/new", b"n"), E::whiteout(".wh.d")]),
    ]);
    assert_eq!(paths(&s), ["/d", "/d/new"]);
    // The lower directory itself is gone: what remains is the bare parent of /d/new.
    let d = &s.nodes[&b"d"[..]];
    assert_eq!((d.mode, d.uid, d.gid), (0o755, 0, 0));
}

#[test]
fn whiteout_markers_of_any_type_never_appear() {
    let s = flat(&[
        tar(&[E::file("a", b""), E::file("b", b""), E::file("c", b"")]),
        tar(&[
            E::dir(".wh.a"),
            E::symlink(".wh.b", "x"),
            E::hardlink(".wh.c", "a"),
            E::whiteout(".wh.nothing"),
        ]),
    ]);
    assert!(paths(&s).is_empty(), "{:?}", paths(&s));
}

#[test]
fn whiteout_of_missing_path_does_nothing() {
    let s = flat(&[
        tar(&[E::file("f", b"")]),
        tar(&[E::whiteout("no/such/.wh.x")]),
    ]);
    assert_eq!(paths(&s), ["/f"]);
}

#[test]
fn opaque_directory_hides_lower_content_keeps_itself_and_same_layer() {
    let s = flat(&[
        tar(&[
            E::dir("d"),
            E::file("d/lower", b""),
            E::dir("d/sub"),
            E::file("d/sub/x", b""),
        ]),
        tar(&[
            E::dir("d").mode(0o750),
            E::file("d/same", b"s"),
            E::whiteout("d/.wh..wh..opq"),
            E::file("d/after", b""),
        ]),
    ]);
    assert_eq!(paths(&s), ["/d", "/d/after", "/d/same"]);
    assert_eq!(s.nodes[&b"d"[..]].mode, 0o750);
}

#[test]
fn opaque_root_hides_everything_lower() {
    let s = flat(&[
        tar(&[E::file("a", b""), E::dir("b")]),
        tar(&[E::whiteout(".wh..wh..opq"), E::file("c", b"")]),
    ]);
    assert_eq!(paths(&s), ["/c"]);
}

#[test]
fn aufs_metadata_is_not_output() {
    let s = flat(&[tar(&[
        E::dir(".wh..wh.aufs"),
        E::file(".wh..wh.aufs/x", b""),
        E::dir(".wh..wh.orph"),
        E::dir(".wh..wh.plnk"),
        E::file("f", b""),
    ])]);
    assert_eq!(paths(&s), ["/f"]);
}

#[test]
fn aufs_plnk_files_serve_as_hardlink_sources() {
    let s = flat(&[tar(&[
        E::dir(".wh..wh.plnk"),
        E::file(".wh..wh.plnk/1234.5678", b"shared").mode(0o640),
        E::hardlink("a", ".wh..wh.plnk/1234.5678"),
        E::hardlink("b", ".wh..wh.plnk/1234.5678"),
    ])]);
    assert_eq!(paths(&s), ["/a", "/b"]);
    assert_eq!(content(&s, "a"), sha(b"shared"));
    assert_eq!(s.nodes[&b"a"[..]].link_group, s.nodes[&b"b"[..]].link_group);
}

#[test]
fn malformed_whiteouts_are_errors() {
    for bad in ["d/.wh.", "d/.wh..", "d/.wh..."] {
        let msg = fails(&[tar(&[E::dir("d"), E::whiteout(bad)])]);
        assert!(msg.contains("malformed whiteout"), "{bad}: {msg}");
        assert!(msg.contains(bad), "the error names the entry: {msg}");
    }
}

#[test]
fn non_directory_replaces_a_whole_subtree() {
    let s = flat(&[
        tar(&[E::dir("d"), E::dir("d/e"), E::file("d/e/f", b"")]),
        tar(&[E::symlink("d", "/elsewhere")]),
    ]);
    assert_eq!(paths(&s), ["/d"]);
    assert_eq!(
        s.nodes[&b"d"[..]].kind,
        NodeKind::Symlink(b"/elsewhere".to_vec())
    );
}

#[test]
fn directory_replaces_a_file() {
    let s = flat(&[
        tar(&[E::file("x", b"f")]),
        tar(&[E::dir("x"), E::file("x/y", b"")]),
    ]);
    assert_eq!(s.nodes[&b"x"[..]].kind, NodeKind::Dir);
    assert!(has(&s, "x/y"));
}

#[test]
fn directory_over_directory_merges_and_upper_metadata_wins() {
    let s = flat(&[
        tar(&[
            E::dir("d").mode(0o700).owner(1, 2).xattr("user.old", b"1"),
            E::file("d/lower", b""),
        ]),
        tar(&[
            E::dir("d")
                .mode(0o751)
                .owner(3, 4)
                .mtime(42)
                .xattr("user.new", b"2"),
            E::file("d/upper", b""),
        ]),
    ]);
    assert_eq!(paths(&s), ["/d", "/d/lower", "/d/upper"]);
    let d = &s.nodes[&b"d"[..]];
    assert_eq!((d.mode, d.uid, d.gid, d.mtime.secs), (0o751, 3, 4, 42));
    assert_eq!(d.xattrs.keys().collect::<Vec<_>>(), [&b"user.new".to_vec()]);
}

#[test]
fn missing_parents_are_created_0755_root() {
    let s = flat(&[tar(&[E::file("a/b/c", b"").owner(7, 7)])]);
    for p in ["a", "a/b"] {
        let n = &s.nodes[p.as_bytes()];
        assert_eq!(
            (n.kind.clone(), n.mode, n.uid, n.gid),
            (NodeKind::Dir, 0o755, 0, 0),
            "{p}"
        );
    }
}

#[test]
fn hardlink_within_a_layer() {
    let s = flat(&[tar(&[
        E::file("a", b"data").mode(0o4755),
        E::hardlink("b", "a"),
    ])]);
    assert_eq!(s.nodes[&b"b"[..]].link_group, Some(b"a".to_vec()));
    assert_eq!(s.nodes[&b"b"[..]].mode, 0o4755);
}

#[test]
fn hardlink_to_a_lower_layer_with_absolute_target() {
    // kaniko writes absolute link targets.
    let s = flat(&[
        tar(&[E::dir("usr"), E::file("usr/a", b"data")]),
        tar(&[E::hardlink("b", "/usr/a")]),
    ]);
    assert_eq!(content(&s, "b"), sha(b"data"));
    assert_eq!(s.nodes[&b"b"[..]].link_group, Some(b"b".to_vec()));
}

#[test]
fn hardlink_keeps_old_content_when_target_is_later_replaced() {
    // go-containerregistry #2002
    let s = flat(&[
        tar(&[E::file("a", b"old"), E::hardlink("b", "a")]),
        tar(&[E::file("a", b"new")]),
    ]);
    assert_eq!(content(&s, "a"), sha(b"new"));
    assert_eq!(content(&s, "b"), sha(b"old"));
    assert_eq!(s.nodes[&b"b"[..]].link_group, None);
}

#[test]
fn hardlink_survives_when_target_is_later_deleted() {
    // go-containerregistry #977
    let s = flat(&[
        tar(&[E::file("a", b"old"), E::hardlink("b", "a")]),
        tar(&[E::whiteout(".wh.a")]),
    ]);
    assert_eq!(paths(&s), ["/b"]);
    assert_eq!(content(&s, "b"), sha(b"old"));
}

#[test]
fn hardlink_to_missing_target_is_an_error() {
    let msg = fails(&[tar(&[E::hardlink("b", "nope")])]);
    assert!(msg.contains("not found"), "{msg}");
}

#[test]
fn hardlink_to_a_directory_is_an_error() {
    fails(&[tar(&[E::dir("d"), E::hardlink("b", "d")])]);
}

#[test]
fn symlinks_are_stored_exactly_as_written() {
    let s = flat(&[tar(&[
        E::symlink("abs", "/etc/passwd"),
        E::symlink("rel", "../../x"),
        E::symlink("dangling", "no/where"),
    ])]);
    assert_eq!(
        s.nodes[&b"abs"[..]].kind,
        NodeKind::Symlink(b"/etc/passwd".to_vec())
    );
    assert_eq!(
        s.nodes[&b"rel"[..]].kind,
        NodeKind::Symlink(b"../../x".to_vec())
    );
}

#[test]
fn paths_through_symlinks_resolve_inside_the_root() {
    let s = flat(&[
        tar(&[
            E::dir("real"),
            E::symlink("abs", "/real"),
            E::symlink("up", "../../../real"),
        ]),
        tar(&[E::file("abs/one", b"1"), E::file("up/two", b"2")]),
    ]);
    assert_eq!(
        paths(&s),
        ["/abs", "/real", "/real/one", "/real/two", "/up"]
    );
}

#[test]
fn whiteout_through_a_symlinked_directory_removes_the_target_inside_the_root() {
    let s = flat(&[
        tar(&[
            E::dir("real"),
            E::file("real/f", b""),
            E::symlink("link", "/real"),
        ]),
        tar(&[E::whiteout("link/.wh.f")]),
    ]);
    assert_eq!(paths(&s), ["/link", "/real"]);
}

#[test]
fn directory_deleted_and_recreated_shows_only_new_content() {
    // go-containerregistry #2191
    let s = flat(&[
        tar(&[E::dir("d"), E::file("d/old", b"")]),
        tar(&[E::whiteout(".wh.d"), E::dir("d"), E::file("d/new", b"")]),
    ]);
    assert_eq!(paths(&s), ["/d", "/d/new"]);
}

#[test]
fn opaque_marker_after_recreated_children() {
    // go-containerregistry #1897: the marker may come after the layer's own files.
    let s = flat(&[
        tar(&[E::dir("d"), E::file("d/a", b"lower"), E::file("d/b", b"")]),
        tar(&[
            E::dir("d"),
            E::file("d/a", b"upper"),
            E::whiteout("d/.wh..wh..opq"),
        ]),
    ]);
    assert_eq!(paths(&s), ["/d", "/d/a"]);
    assert_eq!(content(&s, "d/a"), sha(b"upper"));
}

#[test]
fn metadata_is_reproduced_in_full() {
    let s = flat(&[tar(&[
        E::dir("d").mode(0o1777).mtime(1000),
        E::file("d/suid", b"x")
            .mode(0o6755)
            .owner(1234, 5678)
            .mtime(2000),
        E::file("d/cap", b"x")
            .mode(0o755)
            .owner(1, 1)
            .xattr(
                "security.capability",
                &[1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            )
            .xattr("user.note", b"hi")
            .xattr("trusted.t", b"t"),
        E::symlink("d/link", "suid").owner(3, 3).mtime(3000),
        E::file("d/nanos", b"").pax("mtime", b"1700000000.123456789"),
        E::fifo("d/fifo").mode(0o600),
        E::chardev("d/null", 1, 3).mode(0o666),
    ])]);
    let n = |p: &str| s.nodes[p.as_bytes()].clone();
    assert_eq!((n("d").mode, n("d").mtime.secs), (0o1777, 1000));
    assert_eq!(
        (n("d/suid").mode, n("d/suid").uid, n("d/suid").gid),
        (0o6755, 1234, 5678)
    );
    assert_eq!(n("d/cap").xattrs.len(), 3);
    assert_eq!((n("d/link").uid, n("d/link").mtime.secs), (3, 3000));
    assert_eq!(n("d/nanos").mtime.nanos, 123_456_789);
    assert_eq!(n("d/fifo").kind, NodeKind::Fifo);
    assert_eq!(n("d/null").kind, NodeKind::CharDevice(1, 3));
}

#[test]
fn directory_mtime_is_restored_after_its_contents() {
    let s = flat(&[
        tar(&[E::dir("d").mtime(1000)]),
        tar(&[E::file("d/late", b"")]),
    ]);
    assert_eq!(s.nodes[&b"d"[..]].mtime.secs, 1000);
}

#[test]
fn read_only_directory_still_receives_upper_content() {
    let s = flat(&[
        tar(&[E::dir("ro").mode(0o555)]),
        tar(&[E::file("ro/f", b"")]),
    ]);
    assert!(has(&s, "ro/f"));
    assert_eq!(s.nodes[&b"ro"[..]].mode, 0o555);
}

#[test]
fn root_entry_sets_the_root_metadata_but_never_its_type() {
    let dir = tmp();
    apply(dir.path(), &[tar(&[E::dir("./").mode(0o700)])]).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    let msg = fails(&[tar(&[E::symlink("./", "/etc")])]);
    assert!(msg.contains("root"), "{msg}");
}

#[test]
fn dotdot_in_names_is_an_error() {
    let msg = fails(&[tar(&[E::file("a/../../escape", b"")])]);
    assert!(msg.contains(".."), "{msg}");
}

#[test]
fn directories_made_while_resolving_a_path_belong_to_the_layer() {
    // Found by the property test: resolving `c/b/c` through `c/b -> c/../a` creates `c/c` and
    // `c/a` on the way; a later opaque marker in the same layer must spare them.
    let s = flat(&[
        tar(&[E::symlink("c/b", "c/../a"), E::symlink("a", "/")]),
        tar(&[E::file("c/b/c", b""), E::whiteout("a/.wh..wh..opq")]),
    ]);
    assert_eq!(paths(&s), ["/c", "/c/a", "/c/a/c", "/c/c"]);
}
