//! Archives written by the real tools (Docker 20.10, skopeo, umoci; see testdata/README.md and
//! the scripts in testdata/make) flattened and compared file by file with what those tools
//! say the tree is: `docker export` of a container made from the image, and `umoci raw
//! unpack`.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use flatten::snapshot::{Mtime, Snapshot};
use flatten::{Input, Options, Selector};

fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(p)
}

/// Flattens `input` (choosing `image` if given) and describes the result.
fn flatten_to_snapshot(input: &str, image: Option<&str>) -> Snapshot {
    flatten_for(input, image, None)
}

fn flatten_for(input: &str, image: Option<&str>, platform: Option<&str>) -> Snapshot {
    let out = tmp();
    let (input, r) = Input::parse(input).unwrap();
    let mut opts = Options::default();
    opts.selector = Selector {
        image: image.map(str::to_owned).or(r),
        platform: platform.map(|p| flatten::Platform::parse(p).unwrap()),
    };
    let root = out.path().join("root");
    flatten::flatten(&input, &root, &opts, &mut ()).unwrap_or_else(|e| panic!("{e}"));
    Snapshot::from_dir(&root).unwrap()
}

fn tar_snapshot(p: &Path) -> Snapshot {
    Snapshot::from_tar(std::fs::File::open(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Files `testdata/<dir>/<case><suffix>`, by case name.
fn cases(dir: &str, suffix: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(testdata(dir)).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        if let Some(case) = name.strip_suffix(suffix) {
            out.push((case.to_owned(), p));
        }
    }
    out.sort();
    out
}

/// Flattens each docker case from `input(case)` and compares it with its `docker export`.
fn compare_with_exports(input: impl Fn(&str) -> (String, Option<String>)) {
    let exports = cases("docker", ".export.tar");
    assert!(
        exports.len() >= 15,
        "the export pairs are there: {exports:?}"
    );
    let mut failures = Vec::new();
    for (case, export) in &exports {
        let (image, reference) = input(case);
        let ours = flatten_to_snapshot(&image, reference.as_deref());
        // docker export keeps whole seconds.
        let d = export_diff(&ours, &tar_snapshot(export));
        if !d.is_empty() {
            failures.push(format!("{case}:\n  {}", d.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "flatten (left) and docker export (right) differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn docker_save_matches_docker_export() {
    let archive = testdata("docker/cases.tar").to_str().unwrap().to_owned();
    compare_with_exports(|case| (archive.clone(), Some(format!("flatten-test/{case}:latest"))));
}

#[test]
fn the_export_comparison_can_fail() {
    // The comparison above is not vacuous: a different image's export differs.
    let archive = testdata("docker/cases.tar");
    let ours = flatten_to_snapshot(
        archive.to_str().unwrap(),
        Some("flatten-test/whiteout-file:latest"),
    );
    let theirs = tar_snapshot(&testdata("docker/whiteout-dir.export.tar"));
    assert!(!export_diff(&ours, &theirs).is_empty());
    assert!(ours.nodes.len() > 10);
}

#[test]
fn skopeo_oci_layout_matches_docker_export() {
    let layout = testdata("skopeo/oci-layout");
    compare_with_exports(|case| (format!("oci:{}:{case}", layout.display()), None));
}

#[test]
fn skopeo_archives_and_compressed_saves_match_docker_export() {
    let export = tar_snapshot(&testdata("docker/whiteout-file.export.tar"));
    for input in [
        "skopeo/whiteout-file.docker-archive.tar",
        "skopeo/whiteout-file.oci-archive.tar",
        // Plain-tar layers that the manifest calls tar+gzip: compression is sniffed.
        "skopeo/oci-uncompressed",
        "skopeo/oci-zstd",
        "docker/whiteout-file.tar",
        "docker/whiteout-file.tar.gz",
        "docker/whiteout-file.tar.zst",
    ] {
        let ours = flatten_to_snapshot(testdata(input).to_str().unwrap(), None);
        let d = export_diff(&ours, &export);
        assert!(
            d.is_empty(),
            "{input}: flatten (left) and docker export (right) differ:\n{}",
            d.join("\n")
        );
    }
}

/// Compares with a tar of `umoci raw unpack` output (GNU tar, numeric owners, xattrs).
fn compare_with_umoci(input: &str, image: Option<&str>, platform: Option<&str>, reference: &Path) {
    let ours = flatten_for(input, image, platform);
    let theirs = tar_snapshot(reference);
    let d = ours.diff(&theirs, Mtime::Seconds);
    assert!(
        d.is_empty(),
        "{input} {image:?}: flatten (left) and umoci raw unpack (right) differ:\n{}",
        d.join("\n")
    );
    assert!(!ours.nodes.is_empty());
}

#[test]
fn umoci_layouts_match_umoci_raw_unpack() {
    let refs = cases("umoci", ".umoci-rootfs.tar");
    assert!(refs.len() >= 3, "{refs:?}");
    let layout = testdata("umoci/layout");
    for (r, reference) in refs {
        compare_with_umoci(
            &format!("oci:{}:{r}", layout.display()),
            None,
            None,
            &reference,
        );
    }
}

#[test]
fn docker_25_layout_matches_umoci() {
    let archive = testdata("spec/docker25.tar");
    for case in ["spec-a", "spec-b"] {
        let reference = testdata(&format!("spec/{case}.umoci-rootfs.tar"));
        compare_with_umoci(
            archive.to_str().unwrap(),
            Some(&format!("flatten-test/{case}:latest")),
            None,
            &reference,
        );
        compare_with_umoci(
            &format!(
                "docker-archive:{}:flatten-test/{case}:latest",
                archive.display()
            ),
            None,
            None,
            &reference,
        );
    }
}

#[test]
fn containerd_store_save_with_nested_index_and_attestation() {
    let archive = testdata("spec/containerd.tar");
    compare_with_umoci(
        archive.to_str().unwrap(),
        None,
        Some("linux/amd64"),
        &testdata("spec/multi-amd64.umoci-rootfs.tar"),
    );
}

#[test]
fn multi_platform_layout_picks_each_platform() {
    let layout = testdata("spec/multi-platform");
    let l = layout.to_str().unwrap();
    compare_with_umoci(
        l,
        None,
        Some("linux/amd64"),
        &testdata("spec/multi-amd64.umoci-rootfs.tar"),
    );
    compare_with_umoci(
        l,
        None,
        Some("linux/arm64"),
        &testdata("spec/multi-arm64.umoci-rootfs.tar"),
    );
}

#[test]
fn go_containerregistry_tarball() {
    let archive = testdata("spec/ggcr.tar");
    compare_with_umoci(
        archive.to_str().unwrap(),
        None,
        None,
        &testdata("spec/spec-a.umoci-rootfs.tar"),
    );
}
