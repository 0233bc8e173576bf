//! Tar forms that real tools write into layers (testdata/tarforms, made by
//! testdata/make/tarforms.sh with GNU tar, setcap, setfacl, umoci, skopeo and Docker), read
//! by every command: the directory, `-o`, `ls` and `inspect` see the same files as GNU tar's
//! own extraction.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use flatten::snapshot::{DiffOptions, Mtime, Snapshot};

const SPARSE_FORMS: [&str; 4] = [
    "sparse-gnu",
    "sparse-pax-0.0",
    "sparse-pax-0.1",
    "sparse-pax-1.0",
];

/// The two stored forms of each image: an OCI layout (gzip layers, by umoci) and a
/// docker-archive (plain layers, by skopeo).
fn forms(name: &str) -> [String; 2] {
    [
        format!("oci:{}", testdata(&format!("tarforms/{name}.oci"))),
        testdata(&format!("tarforms/{name}.docker-archive.tar")),
    ]
}

fn reference(name: &str) -> Snapshot {
    let p = testdata(&format!("tarforms/{name}.rootfs.tar"));
    Snapshot::from_tar(std::fs::File::open(&p).unwrap()).unwrap()
}

fn tar_snapshot(p: &Path) -> Snapshot {
    Snapshot::from_tar(std::fs::File::open(p).unwrap()).unwrap()
}

/// Flattens `image` to a directory and to a tar; both must be `expected`, and `ls` must list
/// exactly their paths.
fn every_output_is(image: &str, expected: &Snapshot, extra: &[&str]) {
    let t = tmp();
    let dir = t.path().join("root");
    let tar = t.path().join("out.tar");
    ok(bin().args(extra).args(["-q", image]).arg(&dir));
    ok(bin().args(extra).args(["-q", image, "-o"]).arg(&tar));
    let from_dir = Snapshot::from_dir(&dir).unwrap();
    let from_tar = tar_snapshot(&tar);
    for (what, got) in [("directory", &from_dir), ("-o tar", &from_tar)] {
        let d = got.diff(expected, Mtime::Exact);
        assert!(d.is_empty(), "{image} {extra:?} {what}:\n{}", d.join("\n"));
    }
    let ls = ok(bin().args(["ls", "--json"]).args(extra).arg(image));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&ls.stdout).unwrap();
    let mut listed: Vec<String> = listed
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, paths(&from_dir), "{image}: ls and the directory");
    ok(bin().args(["inspect", image]));
}

/// The first path where two listings part.
fn first_difference(a: &[String], b: &[String]) -> String {
    let i = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    format!("{:?} / {:?}", a.get(i), b.get(i))
}

#[test]
fn binary_xattr_values_with_newlines_are_kept() {
    let expected = reference("xattr-newline");
    let caps = expected
        .nodes
        .values()
        .filter_map(|n| n.xattrs.get(&b"security.capability"[..]))
        .collect::<Vec<_>>();
    assert!(
        caps.len() >= 2 && caps.iter().all(|v| v.contains(&b'\n')),
        "the reference holds capability values with a 0x0a byte: {caps:?}"
    );
    assert!(
        expected
            .nodes
            .values()
            .any(|n| n.xattrs.contains_key(&b"system.posix_acl_access"[..])),
        "and an ACL"
    );
    for image in forms("xattr-newline") {
        every_output_is(&image, &expected, &[]);
        every_output_is(&image, &expected, &["--no-verify"]);
    }
}

#[test]
fn gnu_sparse_files_in_every_form() {
    for form in SPARSE_FORMS {
        let expected = reference(form);
        assert!(expected.nodes.len() >= 6, "{form}");
        for image in forms(form) {
            every_output_is(&image, &expected, &[]);
            every_output_is(&image, &expected, &["--no-verify"]);
        }
    }
}

#[test]
fn sparse_holes_stay_holes_on_disk() {
    for form in SPARSE_FORMS {
        for image in forms(form) {
            let t = tmp();
            let dir = t.path().join("root");
            ok(bin().args(["-q", &image]).arg(&dir));
            let empty = std::fs::metadata(dir.join("sparse/empty")).unwrap();
            assert_eq!(empty.len(), 16384, "{image}: logical size");
            assert_eq!(
                empty.blocks(),
                0,
                "{image}: a file that is all hole has no blocks"
            );
            let holes = std::fs::metadata(dir.join("sparse/holes")).unwrap();
            assert!(
                holes.blocks() * 512 < holes.len() / 2,
                "{image}: sparse/holes has {} blocks for {} bytes",
                holes.blocks(),
                holes.len()
            );
        }
    }
}

#[test]
fn docker_build_add_of_setcap_files_matches_docker_export() {
    let t = tmp();
    let dir = t.path().join("root");
    let image = testdata("tarforms/docker-add-caps.tar");
    ok(bin().args(["-q", &image]).arg(&dir));
    let ours = Snapshot::from_dir(&dir).unwrap();
    let export = tar_snapshot(Path::new(&testdata("tarforms/docker-add-caps.export.tar")));
    let mut opts = DiffOptions {
        mtime: Mtime::Seconds,
        ..DiffOptions::default()
    };
    opts.ignore_docker_init();
    // The image has no /etc: docker create makes it for the files it adds there.
    opts.ignore_if_one_sided.push("etc".to_owned());
    let d = ours.diff_with(&export, &opts);
    assert!(
        d.is_empty(),
        "flatten (left), docker export (right):\n{}",
        d.join("\n")
    );
    let caps: Vec<_> = ours
        .nodes
        .values()
        .filter_map(|n| n.xattrs.get(&b"security.capability"[..]))
        .collect();
    assert!(
        caps.len() >= 2 && caps.iter().any(|v| v.contains(&b'\n')),
        "Docker's layer carries capabilities with a 0x0a byte: {caps:?}"
    );
}

/// Every committed image, through every command: all succeed, or all fail alike; and `ls`,
/// `-o` and the directory name the same paths.
#[test]
fn every_command_reads_every_image_alike() {
    let mut images: Vec<(String, Vec<String>)> = Vec::new();
    let cases = testdata("docker/cases.tar");
    for line in std::fs::read_to_string(testdata("docker/layers.txt"))
        .unwrap()
        .lines()
    {
        if let Some(tag) = line
            .split_whitespace()
            .find(|w| w.starts_with("flatten-test/") && w.ends_with(":latest"))
        {
            let args = vec!["--image".to_owned(), tag.to_owned()];
            if !images.iter().any(|(_, a)| *a == args) {
                images.push((cases.clone(), args));
            }
        }
    }
    assert!(
        images.len() >= 15,
        "the docker cases are listed: {images:?}"
    );
    for p in [
        "docker/whiteout-file.tar",
        "docker/whiteout-file.tar.gz",
        "docker/whiteout-file.tar.zst",
        "skopeo/whiteout-file.docker-archive.tar",
        "skopeo/whiteout-file.oci-archive.tar",
        "spec/ggcr.tar",
        "tarforms/docker-add-caps.tar",
        "example/hello.tar",
    ] {
        images.push((testdata(p), vec![]));
    }
    for name in ["xattr-newline"].iter().chain(SPARSE_FORMS.iter()) {
        for f in forms(name) {
            images.push((f, vec![]));
        }
    }
    for r in ["step1", "cases", "opaque"] {
        images.push((format!("oci:{}:{r}", testdata("umoci/layout")), vec![]));
    }
    for r in ["whiteout-file", "hardlink-2002", "type-change"] {
        for l in ["oci-layout", "oci-uncompressed", "oci-zstd"] {
            images.push((
                format!("oci:{}:{r}", testdata(&format!("skopeo/{l}"))),
                vec![],
            ));
        }
    }
    for (name, platform) in [
        ("spec/docker25.tar", "--image=flatten-test/spec-b:latest"),
        ("spec/containerd.tar", "--platform=linux/amd64"),
        ("spec/multi-platform", "--platform=linux/arm64"),
    ] {
        images.push((testdata(name), vec![platform.to_owned()]));
    }
    let mut failures = Vec::new();
    for (image, args) in &images {
        for verify in [true, false] {
            let mut args = args.clone();
            if !verify {
                args.push("--no-verify".to_owned());
            }
            if let Err(e) = commands_agree(image, &args) {
                failures.push(format!("{image} {args:?}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn commands_agree(image: &str, args: &[String]) -> Result<(), String> {
    let t = tmp();
    let dir = t.path().join("root");
    let tar = t.path().join("out.tar");
    let run = |extra: &[&str], tail: Option<&Path>| {
        let mut c = bin();
        c.args(extra).args(args).arg(image);
        if extra.first().is_some_and(|e| !e.starts_with('-')) {
            c = bin();
            c.args(extra).args(args).arg(image);
        }
        if let Some(p) = tail {
            c.arg(p);
        }
        c.output().unwrap()
    };
    let to_dir = run(&["-q"], Some(&dir));
    let to_tar = run(&["-q", "-o", tar.to_str().unwrap()], None);
    let ls = run(&["ls", "--json"], None);
    let inspect = run(&["inspect", "--json"], None);
    let codes = [&to_dir, &to_tar, &ls, &inspect].map(|o| o.status.code());
    if codes != [Some(0); 4] {
        let errs = [&to_dir, &to_tar, &ls, &inspect]
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned());
        if codes.iter().all(|c| *c == codes[0]) && errs.iter().all(|e| *e == errs[0]) {
            return Ok(());
        }
        return Err(format!("commands disagree: {codes:?} {errs:?}"));
    }
    let from_dir = paths(&Snapshot::from_dir(&dir).map_err(|e| e.to_string())?);
    let from_tar = paths(&tar_snapshot(&tar));
    let listed: Vec<serde_json::Value> =
        serde_json::from_slice(&ls.stdout).map_err(|e| e.to_string())?;
    // ls lists in `tar -t` order (a directory's contents before its next sibling).
    let mut listed: Vec<String> = listed
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    if from_dir != from_tar || from_dir != listed {
        return Err(format!(
            "paths differ: directory/-o {}, directory/ls {}",
            first_difference(&from_dir, &from_tar),
            first_difference(&from_dir, &listed)
        ));
    }
    if from_dir.is_empty() {
        return Err("an empty tree".into());
    }
    Ok(())
}
