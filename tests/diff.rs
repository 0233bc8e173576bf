//! `flatten diff A B`: every kind of difference is found, one line each, in path order;
//! equal trees give nothing and exit 0; the options leave out what they say.

mod common;

use std::path::Path;

use common::*;

fn base() -> Vec<E> {
    vec![
        E::dir("d").mtime(100),
        E::file("d/f", b"content")
            .mode(0o644)
            .owner(1, 2)
            .mtime(100),
        E::symlink("d/l", "f").mtime(100),
        E::chardev("d/c", 1, 3).mtime(100),
        E::file("d/x", b"x").xattr("user.a", b"1").mtime(100),
        E::file("d/h1", b"h").mtime(100),
        E::hardlink("d/h2", "d/h1"),
        E::file("d/other", b"h").mtime(100),
    ]
}

fn write(dir: &Path, name: &str, entries: &[E]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, tar(entries)).unwrap();
    p.to_str().unwrap().to_owned()
}

fn diff(a: &str, b: &str, args: &[&str]) -> (i32, Vec<String>) {
    let out = bin().arg("diff").args(args).arg(a).arg(b).output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

#[test]
fn equal_trees_are_equal_in_any_form() {
    let d = tmp();
    let a = write(d.path(), "a.tar", &base());
    let (code, lines) = diff(&a, &a, &[]);
    assert_eq!((code, lines.len()), (0, 0), "{lines:?}");
    // The same tree as a directory (flattened) and as a gzip tar.
    let root = d.path().join("root");
    std::fs::create_dir(&root).unwrap();
    apply(&root, &[tar(&base())]).unwrap();
    std::fs::write(d.path().join("a.tar.gz"), gzip(&tar(&base()))).unwrap();
    let (code, lines) = diff(
        root.to_str().unwrap(),
        d.path().join("a.tar.gz").to_str().unwrap(),
        &[],
    );
    assert_eq!((code, lines.len()), (0, 0), "{lines:?}");
}

#[test]
fn each_kind_of_difference_is_one_line() {
    let d = tmp();
    let a = write(d.path(), "a.tar", &base());
    type Plant = Box<dyn Fn(&mut Vec<E>)>;
    let planted: Vec<(&str, Plant)> = vec![
        (
            "/d/new: only in B (file)",
            Box::new(|v| v.push(E::file("d/new", b""))),
        ),
        (
            "/d/f: content differs (size 7 vs 5)",
            Box::new(|v| v[1].data = b"other".to_vec()),
        ),
        ("/d/f: mode 0644 vs 0600", Box::new(|v| v[1].mode = 0o600)),
        ("/d/f: owner 1:2 vs 1:3", Box::new(|v| v[1].gid = 3)),
        ("/d/f: mtime 100 vs 101", Box::new(|v| v[1].mtime = 101)),
        (
            "/d/l: symlink target \"f\" vs \"x\"",
            Box::new(|v| v[2].link = b"x".to_vec()),
        ),
        ("/d/c: device 1:3 vs 1:5", Box::new(|v| v[3].dev = (1, 5))),
        (
            "/d/x: xattr values differ (user.a vs user.a)",
            Box::new(|v| v[4].xattrs[0].1 = b"2".to_vec()),
        ),
        (
            "/d/l: type symlink vs file",
            Box::new(|v| v[2] = E::file("d/l", b"").mtime(100)),
        ),
    ];
    for (want, plant) in planted {
        let mut b = base();
        plant(&mut b);
        let b = write(d.path(), "b.tar", &b);
        let (code, lines) = diff(&a, &b, &[]);
        assert_eq!(code, 1, "{want}");
        assert_eq!(lines, [want]);
    }
    // Hardlink grouping: d/h2 a copy instead of a link.
    let mut b = base();
    b[6] = E::file("d/h2", b"h").mtime(100);
    let (code, lines) = diff(&a, &write(d.path(), "b.tar", &b), &[]);
    assert_eq!(code, 1);
    assert_eq!(
        lines,
        [
            "/d/h1: hardlinked with /d/h1 vs none",
            "/d/h2: hardlinked with /d/h1 vs none"
        ]
    );
}

#[test]
fn options_leave_out_what_they_say() {
    let d = tmp();
    let a = write(d.path(), "a.tar", &base());
    let mut b = base();
    b[1].mtime = 101;
    b[1].pax.push(("mtime".into(), b"101.5".to_vec()));
    b.push(E::file("d/extra/deep", b""));
    b.push(E::file(".dockerenv", b""));
    b.push(E::dir("proc"));
    b.push(E::file("etc/hosts", b""));
    let b = write(d.path(), "b.tar", &b);
    let (_, lines) = diff(
        &a,
        &b,
        &[
            "--mtime",
            "ignore",
            "--ignore",
            "/d/extra",
            "--ignore-docker-init",
        ],
    );
    assert!(lines.is_empty(), "{lines:?}");
    let (_, lines) = diff(
        &a,
        &b,
        &[
            "--mtime",
            "seconds",
            "--ignore",
            "d/extra",
            "--ignore",
            "etc",
            "--ignore-docker-init",
        ],
    );
    assert_eq!(lines, ["/d/f: mtime 100 vs 101.500000000"]);
}

#[test]
fn errors_exit_2() {
    let d = tmp();
    let a = write(d.path(), "a.tar", &base());
    let (code, _) = diff(&a, d.path().join("missing").to_str().unwrap(), &[]);
    assert_eq!(code, 2);
    std::fs::write(
        d.path().join("junk"),
        b"not a tar at all, not at all, definitely not",
    )
    .unwrap();
    let (code, _) = diff(&a, d.path().join("junk").to_str().unwrap(), &[]);
    assert_eq!(code, 2);
}
