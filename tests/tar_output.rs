//! `flatten IMAGE -o FILE`: the tar describes exactly the tree that directory output
//! creates, on every committed test image; it is the same bytes on every run; GNU tar
//! extracts it to the same tree; and it needs no privileges.

mod common;

use common::*;
use flatten::snapshot::{Mtime, Snapshot};

fn images() -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let cases = testdata("docker/cases.tar");
    for e in std::fs::read_dir(testdata("docker")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if let Some(case) = name.strip_suffix(".export.tar") {
            out.push((cases.clone(), Some(format!("flatten-test/{case}:latest"))));
        }
    }
    for r in ["step1", "cases", "opaque"] {
        out.push((format!("oci:{}:{r}", testdata("umoci/layout")), None));
    }
    for i in [
        "spec/ggcr.tar",
        "spec/docker25.tar:flatten-test/spec-b:latest",
        "example/hello.tar",
    ] {
        match i.split_once(':') {
            Some((p, r)) => out.push((testdata(p), Some(r.to_owned()))),
            None => out.push((testdata(i), None)),
        }
    }
    out
}

fn run_ok(args: &[&str]) {
    ok(bin().args(args));
}

#[test]
fn tar_output_describes_the_directory_output_and_is_reproducible() {
    for (image, reference) in images() {
        let d = tmp();
        let mut args = vec![image.as_str()];
        if let Some(r) = &reference {
            args.extend(["--image", r]);
        }
        let dir = d.path().join("root");
        let (t1, t2) = (d.path().join("1.tar"), d.path().join("2.tar"));
        run_ok(&[&args[..], &[dir.to_str().unwrap()]].concat());
        run_ok(&[&args[..], &["-o", t1.to_str().unwrap()]].concat());
        run_ok(&[&args[..], &["-o", t2.to_str().unwrap()]].concat());
        let from_dir = Snapshot::from_dir(&dir).unwrap();
        let from_tar = Snapshot::from_tar(std::fs::File::open(&t1).unwrap()).unwrap();
        let diff = from_dir.diff(&from_tar, Mtime::Exact);
        assert!(
            diff.is_empty(),
            "{image} {reference:?}: directory (left) and tar (right) differ:\n{}",
            diff.join("\n")
        );
        assert_eq!(
            std::fs::read(&t1).unwrap(),
            std::fs::read(&t2).unwrap(),
            "{image} {reference:?}: not reproducible"
        );
    }
}

#[test]
fn gnu_tar_extracts_the_same_tree() {
    if !require_root("gnu_tar_extracts_the_same_tree") {
        return;
    }
    let image = format!("oci:{}:cases", testdata("umoci/layout"));
    let d = tmp();
    let (dir, t, x) = (
        d.path().join("root"),
        d.path().join("o.tar"),
        d.path().join("x"),
    );
    run_ok(&[&image, dir.to_str().unwrap()]);
    run_ok(&[&image, "-o", t.to_str().unwrap()]);
    std::fs::create_dir(&x).unwrap();
    let st = std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
        .arg(&t)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    // GNU tar sets directory mtimes of extracted dirs itself; compare everything else exactly.
    let diff = Snapshot::from_dir(&dir)
        .unwrap()
        .diff(&Snapshot::from_dir(&x).unwrap(), Mtime::Seconds);
    assert!(
        diff.is_empty(),
        "flatten (left) and tar -x of its output (right) differ:\n{}",
        diff.join("\n")
    );
}

#[test]
fn tar_output_needs_no_privileges_and_keeps_owners_and_devices() {
    let d = shared_tmp();
    let image = docker_archive(
        d.path(),
        "img.tar",
        &[tar(&[
            E::file("owned", b"x").owner(1234, 5678),
            E::chardev("null", 1, 3),
            E::file("long/".repeat(40).trim_end_matches('/'), b""),
        ])],
    );
    readable(&image);
    let t = d.path().join("out.tar");
    ok(&mut as_user(bin().arg(&image).arg("-o").arg(&t)));
    let s = Snapshot::from_tar(std::fs::File::open(&t).unwrap()).unwrap();
    let owned = &s.nodes[&b"owned"[..]];
    assert_eq!((owned.uid, owned.gid), (1234, 5678));
    assert_eq!(
        s.nodes[&b"null"[..]].kind,
        flatten::snapshot::NodeKind::CharDevice(1, 3)
    );
    assert!(
        s.nodes.keys().any(|k| k.len() > 150),
        "long names survive via PAX"
    );
}

#[test]
fn docker_export_mode_gives_what_docker_export_gives() {
    use flatten::snapshot::{docker_init_paths, DiffOptions};
    let cases = testdata("docker/cases.tar");
    let mut failures = Vec::new();
    let mut count = 0;
    for e in std::fs::read_dir(testdata("docker")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let Some(case) = name.strip_suffix(".export.tar") else {
            continue;
        };
        count += 1;
        let d = tmp();
        let t = d.path().join("x.tar");
        let reference = format!("flatten-test/{case}:latest");
        run_ok(&[
            &cases,
            "--image",
            &reference,
            "-o",
            t.to_str().unwrap(),
            "--docker-export",
        ]);
        let ours = Snapshot::from_tar(std::fs::File::open(&t).unwrap()).unwrap();
        let theirs =
            Snapshot::from_tar(std::fs::File::open(testdata(&format!("docker/{name}"))).unwrap())
                .unwrap();
        // Everything must match to the second, but the times Docker gave what it created
        // (the time of `docker create`) and the directories it created them in.
        let mut opts = DiffOptions {
            mtime: Mtime::Seconds,
            ..DiffOptions::default()
        };
        opts.ignore_mtime_of = docker_init_paths()
            .into_iter()
            .chain(["dev", "etc"])
            .map(str::to_owned)
            .collect();
        let d = ours.diff_with(&theirs, &opts);
        if !d.is_empty() {
            failures.push(format!("{case}:\n  {}", d.join("\n  ")));
        }
    }
    assert!(count >= 15);
    assert!(
        failures.is_empty(),
        "flatten --docker-export (A) and docker export (B) differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn docker_export_mode_makes_the_workdir_and_keeps_image_directories() {
    let d = tmp();
    let mut b = Blobs::default();
    // The image has /etc/hosts as a directory (it stays) and /etc/hostname as a symlink (it
    // is replaced); its WORKDIR (/w, from Blobs::image) does not exist yet.
    let m = b.image(
        &[tar(&[
            E::dir("etc"),
            E::dir("etc/hosts"),
            E::symlink("etc/hostname", "/x"),
            E::file("proc", b""),
        ])],
        "amd64",
    );
    write_dir(d.path(), &b.layout(vec![m]));
    let t = d.path().join("x.tar");
    run_ok(&[
        d.path().to_str().unwrap(),
        "-o",
        t.to_str().unwrap(),
        "--docker-export",
    ]);
    let s = Snapshot::from_tar(std::fs::File::open(&t).unwrap()).unwrap();
    let kind = |p: &str| s.nodes[p.as_bytes()].kind.name();
    assert_eq!(kind("etc/hosts"), "directory");
    assert_eq!(kind("etc/hostname"), "file");
    assert_eq!(kind("proc"), "directory");
    assert_eq!(kind("w"), "directory");
    assert_eq!(
        s.nodes[&b"etc/mtab"[..]].kind,
        flatten::snapshot::NodeKind::Symlink(b"/proc/mounts".to_vec())
    );
    let f = &s.nodes[&b".dockerenv"[..]];
    assert_eq!((f.mode, f.uid, f.gid), (0o755, 0, 0));
}

#[test]
fn tar_output_writes_what_hardlinks_keep_alive_and_nothing_upper_layers_delete() {
    // Plain and gzip layers: a file replaced above but kept by a hardlink (read again), a
    // file deleted above (never spooled), a path through a lower symlink.
    let layers = [
        tar(&[
            E::file("a", b"old content"),
            E::hardlink("l", "a"),
            E::file("gone", &[7; 5000]),
            E::dir("b"),
            E::symlink("s", "b"),
        ]),
        tar(&[
            E::file("a", b"new"),
            E::whiteout(".wh.gone"),
            E::file("s/f", b"through the link"),
        ]),
    ];
    for compress in [false, true] {
        let d = tmp();
        let blobs: Vec<Vec<u8>> = layers
            .iter()
            .map(|l| if compress { gzip(l) } else { l.clone() })
            .collect();
        let image = docker_archive(d.path(), "i.tar", &blobs);
        let dir = d.path().join("root");
        let out = d.path().join("out.tar");
        run_ok(&[image.to_str().unwrap(), dir.to_str().unwrap()]);
        run_ok(&[image.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        let from_dir = Snapshot::from_dir(&dir).unwrap();
        let from_tar = Snapshot::from_tar(std::fs::File::open(&out).unwrap()).unwrap();
        assert_same(&from_dir, &from_tar, Mtime::Exact);
        let model = spec(&layers).unwrap();
        assert_same(&from_dir, &model, Mtime::Exact);
    }
}
