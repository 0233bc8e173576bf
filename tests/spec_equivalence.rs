//! The oracle: random layer stacks applied by the real applier give exactly the tree the
//! executable specification gives (or both refuse the input).

mod common;

use common::*;
use flatten::snapshot::{Mtime, Snapshot};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "c"])
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(name(), 1..=3).prop_map(|v| v.join("/"))
}

/// Non-directories mostly get names directories never have, so that most stacks apply
/// cleanly; sometimes they take a directory's name, to exercise replacement.
fn leaf_path() -> impl Strategy<Value = String> {
    (
        dir_path(),
        prop::sample::select(vec!["x", "y", "x", "y", "a", "b", "c"]),
    )
        .prop_map(|(d, n)| {
            if d.is_empty() {
                n.to_owned()
            } else {
                format!("{d}/{n}")
            }
        })
}

fn dir_path() -> impl Strategy<Value = String> {
    prop::collection::vec(name(), 0..=2).prop_map(|v| v.join("/"))
}

fn meta(e: E) -> impl Strategy<Value = E> {
    (
        prop::sample::select(vec![0o644u32, 0o755, 0o4755, 0o600, 0o2711]),
        0u32..3,
        0u64..4,
        prop::option::of(prop::sample::select(vec!["1", "2"])),
    )
        .prop_map(move |(mode, uid, mtime, x)| {
            let mut e = e.clone().mode(mode).owner(uid, uid).mtime(mtime);
            if let Some(v) = x {
                e = e.xattr("user.k", v.as_bytes());
            }
            e
        })
}

/// One entry, or a file and a hardlink to it (links to random paths mostly miss).
fn entries() -> impl Strategy<Value = Vec<E>> {
    prop_oneof![
        6 => entry().prop_map(|e| vec![e]),
        1 => (leaf_path(), leaf_path(), any::<bool>()).prop_map(|(f, l, abs)| {
            vec![E::file(&f, b"linked").mode(0o640), E::hardlink(&l, &if abs { format!("/{f}") } else { f.clone() })]
        }),
    ]
}

fn entry() -> impl Strategy<Value = E> {
    prop_oneof![
        4 => (leaf_path(), prop::sample::select(vec!["", "x", "yy"])).prop_flat_map(|(p, c)| meta(E::file(&p, c.as_bytes()))),
        3 => path().prop_flat_map(|p| meta(E::dir(&p))),
        2 => (leaf_path(), prop::sample::select(vec!["a", "/a", "../a", "b/c", "/", "..", "a/b", "c/../a", "/b/../c", "c"]))
            .prop_map(|(p, t)| E::symlink(&p, t)),
        1 => (leaf_path(), leaf_path(), any::<bool>()).prop_map(|(p, t, abs)| E::hardlink(&p, &if abs { format!("/{t}") } else { t })),
        3 => (dir_path(), prop::sample::select(vec!["a", "b", "c", "x", "y"])).prop_map(|(d, n)| E::whiteout(&if d.is_empty() { format!(".wh.{n}") } else { format!("{d}/.wh.{n}") })),
        1 => dir_path().prop_map(|d| E::whiteout(&if d.is_empty() { ".wh..wh..opq".to_owned() } else { format!("{d}/.wh..wh..opq") })),
        1 => leaf_path().prop_map(|p| E::fifo(&p)),
    ]
}

fn layers() -> impl Strategy<Value = Vec<Vec<E>>> {
    prop::collection::vec(
        prop::collection::vec(entries(), 1..8).prop_map(|v| v.concat()),
        1..5,
    )
}

fn describe(layers: &[Vec<E>]) -> String {
    let mut s = String::new();
    for (i, l) in layers.iter().enumerate() {
        s += &format!("layer {i}:\n");
        for e in l {
            s += &format!(
                "  {} {:?} -> {:?} mode {:o} uid {} mtime {} xattrs {:?}\n",
                e.typeflag as char,
                String::from_utf8_lossy(&e.name),
                String::from_utf8_lossy(&e.link),
                e.mode,
                e.uid,
                e.mtime,
                e.xattrs
            );
        }
    }
    s
}

/// Drops the entries the spec refuses (a hardlink to nothing, a file as a parent), so that
/// most generated stacks apply cleanly and exercise the rules rather than the first error.
/// With `keep_errors`, the stack is left as generated.
fn repair(mut layers: Vec<Vec<E>>, keep_errors: bool) -> Vec<Vec<E>> {
    if keep_errors {
        return layers;
    }
    for _ in 0..64 {
        let mut s = flatten::spec::Spec::new();
        let failed = layers
            .iter()
            .enumerate()
            .find_map(|(li, l)| s.apply_layer_at(&tar(l)[..]).err().map(|(ei, _)| (li, ei)));
        match failed {
            Some((li, ei)) if ei < layers[li].len() => {
                layers[li].remove(ei);
            }
            _ => break,
        }
    }
    layers
}

fn check(layers: Vec<Vec<E>>, strategy: flatten::Strategy) -> Result<(), TestCaseError> {
    let tars: Vec<Vec<u8>> = layers.iter().map(|l| tar(l)).collect();
    let dir = tmp();
    let real =
        apply_with(dir.path(), &tars, strategy).map(|()| Snapshot::from_dir(dir.path()).unwrap());
    let model = spec(&tars);
    match (real, model) {
        (Ok(r), Ok(m)) => {
            let d = r.diff(&m, Mtime::Exact);
            prop_assert!(
                d.is_empty(),
                "applier (left) and spec (right) differ:\n{}\n{}",
                d.join("\n"),
                describe(&layers)
            );
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => prop_assert!(
            false,
            "spec refused ({e}) what the applier accepted:\n{}",
            describe(&layers)
        ),
        (Err(e), Ok(_)) => prop_assert!(
            false,
            "applier refused ({e}) what the spec accepted:\n{}",
            describe(&layers)
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn applier_matches_spec(layers in layers(), keep_errors in prop::bool::weighted(0.2)) {
        check(repair(layers, keep_errors), flatten::Strategy::Auto)?;
    }

    #[test]
    fn walking_resolver_matches_spec(layers in layers(), keep_errors in prop::bool::weighted(0.2)) {
        check(repair(layers, keep_errors), flatten::Strategy::Walk)?;
    }
}
