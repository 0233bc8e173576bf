//! The tree is written once: content that a layer above deletes or replaces is never
//! written, and what the top-down reading guesses wrong is moved or fetched again, never
//! wrong. Each test checks the tree against the executable specification too.

mod common;

use common::*;
use flatten::output::dir::{apply, InMemory, Outcome, Settings};
use flatten::snapshot::{Mtime, Snapshot};

/// Applies `layers`, requires the spec's tree, returns what the run did.
fn run(layers: &[Vec<u8>]) -> Outcome {
    let dir = tmp();
    let out = apply(
        &InMemory::new(layers).unwrap(),
        dir.path(),
        &Settings::default(),
        &mut (),
    )
    .unwrap();
    let model = spec(layers).expect("the spec accepts it");
    assert_same(
        &Snapshot::from_dir(dir.path()).unwrap(),
        &model,
        Mtime::Exact,
    );
    out
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

#[test]
fn content_deleted_or_replaced_above_is_never_written() {
    let out = run(&[
        tar(&[
            E::file("keep", &bytes(1000, 1)),
            E::file("gone", &bytes(2000, 2)),
            E::dir("d"),
            E::file("d/inner", &bytes(4000, 3)),
            E::dir("o"),
            E::file("o/hidden", &bytes(8000, 4)),
            E::file("replaced", &bytes(16000, 5)),
            E::dir("f"),
            E::file("f/under", &bytes(32000, 6)),
        ]),
        tar(&[
            E::whiteout(".wh.gone"),
            E::whiteout(".wh.d"),
            E::dir("o"),
            E::whiteout("o/.wh..wh..opq"),
            E::file("o/new", &bytes(10, 7)),
            E::file("replaced", &bytes(20, 8)),
            E::file("f", &bytes(30, 9)),
        ]),
    ]);
    assert_eq!(out.written, 1000 + 10 + 20 + 30);
    assert_eq!(out.skipped, 2000 + 4000 + 8000 + 16000 + 32000);
    assert_eq!((out.moved, out.reread), (0, 0));
}

#[test]
fn a_directory_over_a_directory_keeps_the_lower_content() {
    let out = run(&[
        tar(&[E::dir("d").mode(0o700), E::file("d/low", &bytes(100, 1))]),
        tar(&[E::dir("d").mode(0o755), E::file("d/high", &bytes(10, 2))]),
    ]);
    assert_eq!((out.written, out.skipped), (110, 0));
}

#[test]
fn a_later_duplicate_in_one_layer_is_written_over_the_earlier() {
    let out = run(&[tar(&[
        E::file("f", &bytes(100, 1)),
        E::file("f", &bytes(10, 2)),
    ])]);
    assert_eq!(
        out.written, 110,
        "the earlier one is written, then replaced"
    );
}

#[test]
fn an_entry_through_a_lower_symlink_is_moved_not_rewritten() {
    // The upper layer names `a/f`; below, `a` is a symlink to `b`: the file belongs in `b`.
    let out = run(&[
        tar(&[E::dir("b"), E::symlink("a", "b")]),
        tar(&[E::file("a/f", &bytes(100, 1))]),
    ]);
    assert_eq!((out.written, out.moved, out.reread), (100, 1, 0));
}

#[test]
fn a_file_kept_alive_by_a_hardlink_is_fetched_again() {
    // go-containerregistry #2002: the link keeps the old content when its target is replaced.
    let out = run(&[
        tar(&[E::file("a", &bytes(100, 1)), E::hardlink("l", "a")]),
        tar(&[E::file("a", &bytes(10, 2))]),
    ]);
    assert_eq!(out.reread, 1);
    // Across layers: the link is in a middle layer, the replacement above it.
    let out = run(&[
        tar(&[E::file("a", &bytes(100, 1))]),
        tar(&[E::hardlink("l", "a")]),
        tar(&[E::file("a", &bytes(10, 2))]),
    ]);
    assert_eq!(out.reread, 1);
}

#[test]
fn a_whiteout_in_the_same_layer_spares_its_own_content() {
    let out = run(&[
        tar(&[E::dir("d"), E::file("d/x", &bytes(100, 1))]),
        tar(&[E::file("d/y", &bytes(10, 2)), E::whiteout(".wh.d")]),
    ]);
    assert_eq!((out.written, out.skipped), (10, 100));
}

#[test]
fn a_path_resolves_anew_after_a_directory_replaces_the_symlink_it_went_through() {
    // Found by the property test: `a/a` goes through `a -> /` and so replaces the link `a`
    // itself with a directory; `a/a/x` must then land in the new `/a/a`, not where `a/a`
    // led before.
    run(&[tar(&[
        E::symlink("a", "/"),
        E::dir("a/a"),
        E::symlink("a/a/x", "a"),
    ])]);
}

/// A symlink that no layer above hides is made while its layer is read, like a file; the
/// same rules then hold for it: replaced by a later entry of its layer, replacing one, hiding
/// what a lower layer has under its name, and a hardlink to it made from the plan.
#[test]
fn symlinks_are_made_while_read_under_the_rules_of_files() {
    let out = run(&[
        tar(&[
            E::dir("low"),
            E::file("low/f", &bytes(10, 1)),
            E::symlink("hidden", "low"),
            E::symlink("deleted", "low/f"),
            E::symlink("s", "low/f"),
            E::hardlink("s-link", "s"),
        ]),
        tar(&[
            E::symlink("low", "/elsewhere").mtime(7),
            E::whiteout(".wh.deleted"),
            E::symlink("a", "x"),
            E::file("a", &bytes(20, 2)),
            E::file("b", &bytes(30, 3)),
            E::symlink("b", "y").mtime(9),
            E::symlink("c", "z"),
            E::dir("c"),
            E::file("c/under", &bytes(40, 4)),
            E::dir("hidden"),
        ]),
    ]);
    // c/under was not written through the symlink c: it was read again once c became a
    // directory; low/f is hidden by the symlink above it.
    assert_eq!(out.written, 20 + 30);
    assert_eq!(out.reread, 1);
}
