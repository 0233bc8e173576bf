//! `flatten ls`: lists exactly the paths (with the same types, modes and owners) that
//! flattening to a directory creates, on every committed test image, without writing.

mod common;

use common::*;
use flatten::snapshot::Snapshot;
use flatten::{Input, Options, Selector};

fn ls_json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = ok(bin().arg("ls").arg("--json").args(args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (path, type letter, mode, uid, gid) of everything, from ls and from a real flatten.
fn check(image: &str, reference: Option<&str>) {
    let mut args = vec![image];
    if let Some(r) = reference {
        args.extend(["--image", r]);
    }
    let listed: Vec<(String, String, u32, u32)> = ls_json(&args)
        .iter()
        .map(|e| {
            let kind = match e["type"].as_str().unwrap() {
                "hardlink" => "file".to_owned(),
                k => k.to_owned(),
            };
            let mode = u32::from_str_radix(e["mode"].as_str().unwrap(), 8).unwrap();
            (
                e["path"].as_str().unwrap().to_owned(),
                kind,
                if kind_is_symlink(e) { 0 } else { mode },
                e["uid"].as_u64().unwrap() as u32,
            )
        })
        .collect();
    let out = tmp();
    let (input, r) = Input::parse(image).unwrap();
    let mut opts = Options::default();
    opts.selector = Selector {
        image: reference.map(str::to_owned).or(r),
        platform: None,
    };
    flatten::flatten(&input, &out.path().join("root"), &opts, &mut ()).unwrap();
    let snap = Snapshot::from_dir(&out.path().join("root")).unwrap();
    let written: Vec<(String, String, u32, u32)> = snap
        .nodes
        .iter()
        .map(|(p, n)| {
            let kind = match n.kind.name() {
                "character device" => "char",
                "block device" => "block",
                k => k,
            };
            let mode = if kind == "symlink" { 0 } else { n.mode };
            (
                format!("/{}", String::from_utf8_lossy(p)),
                kind.to_owned(),
                mode,
                n.uid,
            )
        })
        .collect();
    let mut listed = listed;
    listed.sort();
    assert_eq!(listed, written, "{image} {reference:?}");
}

fn kind_is_symlink(e: &serde_json::Value) -> bool {
    e["type"] == "symlink"
}

#[test]
fn ls_lists_what_flattening_writes_for_every_test_image() {
    let cases = testdata("docker/cases.tar");
    for e in std::fs::read_dir(testdata("docker")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if let Some(case) = name.strip_suffix(".export.tar") {
            check(&cases, Some(&format!("flatten-test/{case}:latest")));
        }
    }
    for r in ["step1", "cases", "opaque"] {
        check(&format!("oci:{}:{r}", testdata("umoci/layout")), None);
    }
    check(&testdata("spec/ggcr.tar"), None);
    check(&testdata("example/hello.tar"), None);
}

#[test]
fn ls_names_the_layer_each_path_came_from_and_filters_by_path() {
    let listed = ls_json(&[&testdata("example/hello.tar")]);
    let layers: Vec<(&str, u64)> = listed
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e["layer"].as_u64().unwrap()))
        .collect();
    assert_eq!(layers, [("/hello.txt", 1), ("/hoge.txt", 2)]);
    let d = tmp();
    let image = docker_archive(
        d.path(),
        "x.tar",
        &[
            tar(&[E::dir("a"), E::file("a/x", b""), E::file("b", b"")]),
            tar(&[E::file("a/y", b"yy")]),
        ],
    );
    let listed = ls_json(&[image.to_str().unwrap(), "/a"]);
    let paths: Vec<&str> = listed.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/a", "/a/x", "/a/y"]);
    assert_eq!(listed[2]["size"], 2);
    // Text form, like tar -tv.
    let out = bin().arg("ls").arg(&image).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("drwxr-xr-x 0/0") && l.contains(" a/  [layer 1]")),
        "{text}"
    );
    let out = bin().arg("ls").arg(&image).arg("nope").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn ls_without_verification_seeks_over_data_and_lists_the_same() {
    let cases = testdata("docker/cases.tar");
    for case in [
        "whiteout-dir",
        "hardlink-2002",
        "long-names",
        "special-files",
    ] {
        let r = format!("flatten-test/{case}:latest");
        let verified = ls_json(&[&cases, "--image", &r]);
        let seeked = ls_json(&[&cases, "--image", &r, "--no-verify"]);
        assert_eq!(verified, seeked, "{case}");
    }
    // Compressed layers cannot be seeked: they are read, with the same result.
    let layout = format!("oci:{}:whiteout-file", testdata("skopeo/oci-layout"));
    assert_eq!(ls_json(&[&layout]), ls_json(&[&layout, "--no-verify"]));
}
