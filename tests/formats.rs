//! Every input form, compression and selection rule, on archives built here to each format's
//! specification (the archives written by the real tools are tested in `real_tools.rs`).

mod common;

use std::path::Path;

use common::*;
use flatten::snapshot::Snapshot;
use flatten::{flatten as flatten_into, Input, Options, Platform, Selector};

fn base() -> Vec<u8> {
    tar(&[
        E::dir("etc"),
        E::file("etc/os", b"base"),
        E::file("gone", b""),
    ])
}

fn top() -> Vec<u8> {
    tar(&[E::file("etc/app", b"app"), E::whiteout(".wh.gone")])
}

fn expect_tree(root: &Path) {
    let s = Snapshot::from_dir(root).unwrap();
    assert_eq!(paths(&s), ["/etc", "/etc/app", "/etc/os"]);
}

fn flat(input: &str, opts: &Options) -> flatten::Result<tempfile::TempDir> {
    let out = tmp();
    let (input, r) = Input::parse(input).unwrap();
    let mut opts = opts.clone();
    if r.is_some() {
        opts.selector.image = r;
    }
    flatten_into(&input, &out.path().join("root"), &opts, &mut ())?;
    Ok(out)
}

fn flat_ok(input: &str) -> tempfile::TempDir {
    let out = flat(input, &Options::default()).unwrap();
    expect_tree(&out.path().join("root"));
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn docker_save_legacy_layout() {
    let d = tmp();
    let a = docker_archive(d.path(), "img.tar", &[base(), top()]);
    flat_ok(s(&a));
    flat_ok(&format!("docker-archive:{}", s(&a)));
    flat_ok(&format!("docker-archive:{}:test/image:latest", s(&a)));
}

#[test]
fn docker_save_layer_saved_once_and_linked() {
    // Docker links a layer it already wrote: <id>/layer.tar -> ../<other>/layer.tar
    let d = tmp();
    let layer = base();
    let diff = flatten::digest::sha256_of(&layer).to_string();
    let config = serde_json::to_vec(
        &serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [diff, diff]}}),
    )
    .unwrap();
    let manifest = serde_json::json!([{"Config": "c.json", "RepoTags": null, "Layers": ["a/layer.tar", "b/layer.tar"]}]);
    let entries = vec![
        E::file("a/layer.tar", &layer),
        E::symlink("b/layer.tar", "../a/layer.tar"),
        E::file("c.json", &config),
        E::file("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
    ];
    std::fs::write(d.path().join("x.tar"), tar(&entries)).unwrap();
    let out = flat(s(&d.path().join("x.tar")), &Options::default()).unwrap();
    assert_eq!(
        paths(&Snapshot::from_dir(&out.path().join("root")).unwrap()),
        ["/etc", "/etc/os", "/gone"]
    );

    // A link that leaves the archive is refused, naming the layer.
    let entries = vec![
        E::file("a/layer.tar", &layer),
        E::symlink("b/layer.tar", "../../../../etc/passwd"),
        E::file("c.json", &config),
        E::file("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
    ];
    std::fs::write(d.path().join("y.tar"), tar(&entries)).unwrap();
    let err = flat(s(&d.path().join("y.tar")), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layer 2") && err.contains("outside the archive"),
        "{err}"
    );
}

#[test]
fn skopeo_and_gcr_style_layer_names() {
    // skopeo docker-archive: <diff_id hex>.tar; go-containerregistry: <blob hex>.tar.gz
    let d = tmp();
    let (l0, l1) = (base(), gzip(&top()));
    let diff_ids = [
        flatten::digest::sha256_of(&l0),
        flatten::digest::sha256_of(&top()),
    ];
    let names = [
        format!("{}.tar", diff_ids[0].hex()),
        format!("{}.tar.gz", flatten::digest::sha256_of(&l1).hex()),
    ];
    let config = serde_json::to_vec(&serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [diff_ids[0].to_string(), diff_ids[1].to_string()]}})).unwrap();
    let config_name = format!("sha256:{}", flatten::digest::sha256_of(&config).hex());
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": ["x:1"], "Layers": names}]);
    let files = vec![
        (names[0].clone(), l0),
        (names[1].clone(), l1),
        (config_name.clone(), config),
        (
            "manifest.json".to_owned(),
            serde_json::to_vec(&manifest).unwrap(),
        ),
    ];
    write_tar(&d.path().join("x.tar"), &files);
    flat_ok(s(&d.path().join("x.tar")));
}

#[test]
fn kaniko_style_zstd_layer_names() {
    let d = tmp();
    let l = zstd(&base());
    let diff = flatten::digest::sha256_of(&base());
    let name = format!("{}.tar.zst", flatten::digest::sha256_of(&l).hex());
    let config = serde_json::to_vec(
        &serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [diff.to_string()]}}),
    )
    .unwrap();
    let manifest = serde_json::json!([{"Config": "c.json", "RepoTags": ["k:1"], "Layers": [name]}]);
    write_tar(
        &d.path().join("k.tar"),
        &[
            (name.clone(), l),
            ("c.json".into(), config),
            (
                "manifest.json".into(),
                serde_json::to_vec(&manifest).unwrap(),
            ),
        ],
    );
    let out = flat(s(&d.path().join("k.tar")), &Options::default()).unwrap();
    assert_eq!(
        paths(&Snapshot::from_dir(&out.path().join("root")).unwrap()),
        ["/etc", "/etc/os", "/gone"]
    );
}

#[test]
fn oci_layout_directory_with_gzip_and_zstd_layers() {
    let d = tmp();
    let mut b = Blobs::default();
    let m = b.image(&[gzip(&base()), zstd(&top())], "amd64");
    write_dir(
        d.path(),
        &b.layout(vec![annotate(m, "org.opencontainers.image.ref.name", "v1")]),
    );
    flat_ok(s(d.path()));
    flat_ok(&format!("oci:{}", s(d.path())));
    flat_ok(&format!("oci:{}:v1", s(d.path())));
    let err = flat(&format!("oci:{}:v2", s(d.path())), &Options::default()).unwrap_err();
    assert_eq!(err.kind(), flatten::ErrorKind::Usage);
    assert!(
        err.to_string().contains("v1"),
        "the error lists what there is: {err}"
    );
}

#[test]
fn multi_member_gzip_layer() {
    let d = tmp();
    let l = base();
    let mut blob = gzip(&l[..512 * 3]);
    blob.extend(gzip(&l[512 * 3..]));
    let mut b = Blobs::default();
    let m = b.image(&[blob, top()], "amd64");
    write_dir(d.path(), &b.layout(vec![m]));
    flat_ok(s(d.path()));
}

#[test]
fn oci_archive_and_whole_archive_compression() {
    let d = tmp();
    let mut b = Blobs::default();
    let m = b.image(&[base(), top()], "amd64");
    let files = b.layout(vec![m]);
    write_tar(&d.path().join("oci.tar"), &files);
    flat_ok(s(&d.path().join("oci.tar")));
    flat_ok(&format!("oci-archive:{}", s(&d.path().join("oci.tar"))));
    let raw = std::fs::read(d.path().join("oci.tar")).unwrap();
    std::fs::write(d.path().join("oci.tar.gz"), gzip(&raw)).unwrap();
    std::fs::write(d.path().join("oci.tar.zst"), zstd(&raw)).unwrap();
    flat_ok(s(&d.path().join("oci.tar.gz")));
    flat_ok(s(&d.path().join("oci.tar.zst")));
}

#[test]
fn docker_25_layout_with_index_and_manifest_json() {
    let d = tmp();
    let mut b = Blobs::default();
    let m = b.image(&[base(), top()], "amd64");
    let manifest: serde_json::Value =
        serde_json::from_slice(&b.0[&m["digest"].as_str().unwrap()[7..]]).unwrap();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("blobs/sha256/{}", &l["digest"].as_str().unwrap()[7..]))
        .collect();
    let config = format!(
        "blobs/sha256/{}",
        &manifest["config"]["digest"].as_str().unwrap()[7..]
    );
    let m = annotate(
        annotate(m, "io.containerd.image.name", "docker.io/library/app:1"),
        "org.opencontainers.image.ref.name",
        "1",
    );
    let mut files = b.layout(vec![m]);
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(
            &serde_json::json!([{"Config": config, "RepoTags": ["app:1"], "Layers": layers}]),
        )
        .unwrap(),
    ));
    write_tar(&d.path().join("d25.tar"), &files);
    flat_ok(s(&d.path().join("d25.tar")));
    flat_ok(&format!(
        "docker-archive:{}:app:1",
        s(&d.path().join("d25.tar"))
    ));
    let o = Options::default().selector(Selector {
        image: Some("app:1".into()),
        platform: None,
    });
    expect_tree(
        &flat(s(&d.path().join("d25.tar")), &o)
            .unwrap()
            .path()
            .join("root"),
    );
}

/// A multi-platform image whose arm64 variant has different content, behind a nested index
/// (the containerd image store's shape), with an attestation manifest beside them.
fn multi_platform(dir: &Path) {
    let mut b = Blobs::default();
    let amd = with_platform(b.image(&[base(), top()], "amd64"), "linux", "amd64", None);
    let arm = with_platform(
        b.image(&[tar(&[E::file("arm", b"")])], "arm64"),
        "linux",
        "arm64",
        Some("v8"),
    );
    let att = annotate(
        with_platform(
            b.image(&[tar(&[E::file("attestation", b"")])], "unknown"),
            "unknown",
            "unknown",
            None,
        ),
        "vnd.docker.reference.type",
        "attestation-manifest",
    );
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [att, arm, amd]});
    let index = b.add(
        "application/vnd.oci.image.index.v1+json",
        serde_json::to_vec(&index).unwrap(),
    );
    write_dir(
        dir,
        &b.layout(vec![annotate(
            index,
            "io.containerd.image.name",
            "docker.io/library/multi:latest",
        )]),
    );
}

#[test]
fn multi_platform_index_picks_the_host_or_the_asked_platform() {
    let d = tmp();
    multi_platform(d.path());
    if Platform::host().architecture == "amd64" {
        flat_ok(s(d.path()));
    }
    for p in ["linux/arm64", "linux/arm64/v8"] {
        let o = Options::default().selector(Selector {
            image: None,
            platform: Some(Platform::parse(p).unwrap()),
        });
        let out = flat(s(d.path()), &o).unwrap();
        assert_eq!(
            paths(&Snapshot::from_dir(&out.path().join("root")).unwrap()),
            ["/arm"],
            "{p}"
        );
    }
    let o = Options::default().selector(Selector {
        image: None,
        platform: Some(Platform::parse("linux/s390x").unwrap()),
    });
    let err = flat(s(d.path()), &o).unwrap_err().to_string();
    assert!(
        err.contains("linux/amd64")
            && err.contains("linux/arm64/v8")
            && !err.contains("unknown/unknown"),
        "{err}"
    );
    // An attestation is never chosen, even when asked for.
    let o = Options::default().selector(Selector {
        image: None,
        platform: Some(Platform::parse("unknown/unknown").unwrap()),
    });
    assert!(flat(s(d.path()), &o).is_err());
}

#[test]
fn several_images_need_a_choice_and_the_error_lists_them() {
    let d = tmp();
    let mut b = Blobs::default();
    let one = annotate(
        b.image(&[base(), top()], "amd64"),
        "org.opencontainers.image.ref.name",
        "one",
    );
    let two = annotate(
        b.image(&[tar(&[E::file("two", b"")])], "amd64"),
        "org.opencontainers.image.ref.name",
        "two",
    );
    write_dir(d.path(), &b.layout(vec![one, two]));
    let err = flat(s(d.path()), &Options::default()).unwrap_err();
    assert_eq!(err.kind(), flatten::ErrorKind::Usage);
    assert!(
        err.to_string().contains("@0 one") && err.to_string().contains("@1 two"),
        "{err}"
    );
    let pick = |r: &str| {
        Options::default().selector(Selector {
            image: Some(r.into()),
            platform: None,
        })
    };
    expect_tree(&flat(s(d.path()), &pick("one")).unwrap().path().join("root"));
    let out = flat(s(d.path()), &pick("@1")).unwrap();
    assert_eq!(
        paths(&Snapshot::from_dir(&out.path().join("root")).unwrap()),
        ["/two"]
    );
}

#[test]
fn layer_digest_mismatch_names_the_layer_and_no_verify_skips_it() {
    let d = tmp();
    let mut b = Blobs::default();
    let m = b.image(&[base(), top()], "amd64");
    let mut files = b.layout(vec![m]);
    // Corrupt the second layer's blob in place (same size, other content).
    let top_hex = flatten::digest::sha256_of(&top()).hex().to_owned();
    let f = files
        .iter_mut()
        .find(|(n, _)| n.ends_with(&top_hex))
        .unwrap();
    let mut altered = top();
    altered[512] ^= 1; // the content of etc/app: the tar stays valid, the digest does not
    f.1 = altered;
    write_dir(d.path(), &files);
    let err = flat(s(d.path()), &Options::default()).unwrap_err();
    assert_eq!(err.kind(), flatten::ErrorKind::Verification);
    let msg = err.to_string();
    assert!(
        msg.starts_with("layer 2 (sha256:") && msg.contains("mismatch"),
        "{msg}"
    );
    let o = Options::default().verify(false);
    flat(s(d.path()), &o).unwrap();
}

#[test]
fn diff_id_mismatch_is_caught() {
    let d = tmp();
    let mut b = Blobs::default();
    let layers = [base(), top()];
    let m = b.image(&layers, "amd64");
    // The config with a wrong diff_id.
    let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [
        flatten::digest::sha256_of(&layers[0]).to_string(), flatten::digest::sha256_of(b"other").to_string()]}});
    let m = b.with_config(&m, config);
    write_dir(d.path(), &b.layout(vec![m]));
    let msg = flat(s(d.path()), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("layer 2") && msg.contains("diff_id mismatch"),
        "{msg}"
    );
}

#[test]
fn digests_in_manifests_cannot_name_paths() {
    let d = tmp();
    let mut b = Blobs::default();
    let mut m = b.image(&[base()], "amd64");
    m["digest"] = serde_json::Value::String("sha256:../../../../etc/passwd".into());
    write_dir(d.path(), &b.layout(vec![m]));
    let msg = flat(s(d.path()), &Options::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("malformed digest"), "{msg}");
}

#[test]
fn stdin_is_spooled_and_read() {
    let d = tmp();
    let a = docker_archive(d.path(), "img.tar", &[base(), top()]);
    let out = tmp();
    let target = out.path().join("root");
    let status = bin()
        .arg("-")
        .arg(&target)
        .stdin(std::fs::File::open(&a).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    expect_tree(&target);
    // Compressed on stdin too.
    let gz = d.path().join("img.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&a).unwrap())).unwrap();
    let target = out.path().join("root2");
    let status = bin()
        .arg("-")
        .arg(&target)
        .stdin(std::fs::File::open(&gz).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    expect_tree(&target);
}
