//! Bad input of every kind ends with a clear error (what, which layer, which entry) and a
//! non-zero exit, never a panic.

mod common;

use common::*;

fn base() -> Vec<u8> {
    tar(&[
        E::dir("etc"),
        E::file("etc/a", b"aaaa"),
        E::file("etc/b", b"bbbb"),
    ])
}

/// Runs the binary and returns (exit code, the one stderr line).
fn fails(image: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = tmp();
    let (code, stderr) = run(image.to_str().unwrap(), &out.path().join("root"), args);
    assert_ne!(code, 0);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    (code, stderr)
}

#[test]
fn truncated_layer() {
    let d = tmp();
    let mut l = base();
    l.truncate(700);
    let (code, msg) = fails(&docker_archive(d.path(), "x.tar", &[l]), &[]);
    assert_eq!(code, 1);
    assert!(msg.contains("layer 1"), "{msg}");
}

#[test]
fn truncated_gzip_layer() {
    let d = tmp();
    let mut l = gzip(&base());
    l.truncate(l.len() / 2);
    let (_, msg) = fails(
        &docker_archive_with(d.path(), "x.tar", &[l], false),
        &["--no-verify"],
    );
    assert!(msg.contains("layer 1"), "{msg}");
}

#[test]
fn layer_that_is_not_a_tar() {
    let d = tmp();
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let (_, msg) = fails(&docker_archive(d.path(), "x.tar", &[junk]), &[]);
    assert!(msg.contains("layer 1"), "{msg}");
}

#[test]
fn corrupt_header_checksum_names_the_layer() {
    let d = tmp();
    let mut l = base();
    l[600 - 88] ^= 0x10; // inside the second header (etc/a): its checksum no longer matches
    let (_, msg) = fails(&docker_archive(d.path(), "x.tar", &[l]), &["--no-verify"]);
    assert!(msg.contains("layer 1"), "{msg}");
}

#[test]
fn lying_size_in_a_header() {
    let d = tmp();
    let mut l = base();
    // etc/a claims 8 GiB (base-256 would be allowed too; octal is enough here).
    let h = 512;
    l[h + 124..h + 136].copy_from_slice(b"77777777777\0");
    l[h + 148..h + 156].copy_from_slice(b"        ");
    let sum: u32 = l[h..h + 512].iter().map(|&b| u32::from(b)).sum();
    l[h + 148..h + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let (_, msg) = fails(&docker_archive(d.path(), "x.tar", &[l]), &["--no-verify"]);
    assert!(msg.contains("layer 1") && msg.contains("etc/a"), "{msg}");
}

#[test]
fn truncated_archive() {
    let d = tmp();
    let a = docker_archive(d.path(), "x.tar", &[base()]);
    let bytes = std::fs::read(&a).unwrap();
    std::fs::write(&a, &bytes[..bytes.len() / 3]).unwrap();
    fails(&a, &[]);
}

#[test]
fn missing_layer_and_missing_config() {
    let d = tmp();
    let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [flatten::digest::sha256_of(b"").to_string()]}});
    let m = serde_json::json!([{"Config": "c.json", "Layers": ["nope/layer.tar"]}]);
    write_tar(
        &d.path().join("a.tar"),
        &[
            ("c.json".into(), serde_json::to_vec(&config).unwrap()),
            ("manifest.json".into(), serde_json::to_vec(&m).unwrap()),
        ],
    );
    let (_, msg) = fails(&d.path().join("a.tar"), &[]);
    assert!(
        msg.contains("layer 1") && msg.contains("nope/layer.tar") && msg.contains("missing"),
        "{msg}"
    );
    let m = serde_json::json!([{"Config": "gone.json", "Layers": []}]);
    write_tar(
        &d.path().join("b.tar"),
        &[("manifest.json".into(), serde_json::to_vec(&m).unwrap())],
    );
    let (_, msg) = fails(&d.path().join("b.tar"), &[]);
    assert!(
        msg.contains("gone.json") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn a_manifest_naming_thousands_of_layers_is_refused() {
    let d = tmp();
    let mut blobs = Blobs::default();
    let layer = base();
    let m = blobs.image(&vec![layer; 1001], "amd64");
    write_dir(&d.path().join("oci"), &blobs.layout(vec![m]));
    let (code, msg) = fails(&d.path().join("oci"), &[]);
    assert_eq!(code, 1);
    assert!(
        msg.contains("1001 layers") && msg.contains("at most 1000"),
        "{msg}"
    );
}

#[test]
fn a_config_said_to_be_gigabytes_is_refused_unread() {
    let d = tmp();
    let mut blobs = Blobs::default();
    let m = blobs.image(&[base()], "amd64");
    let hex = m["digest"].as_str().unwrap()[7..].to_owned();
    let mut manifest: serde_json::Value = serde_json::from_slice(&blobs.0[&hex]).unwrap();
    manifest["config"]["size"] = serde_json::json!(3u64 << 30);
    let m = blobs.add(
        "application/vnd.oci.image.manifest.v1+json",
        serde_json::to_vec(&manifest).unwrap(),
    );
    write_dir(&d.path().join("oci"), &blobs.layout(vec![m]));
    let (code, msg) = fails(&d.path().join("oci"), &[]);
    assert_eq!(code, 1);
    assert!(msg.contains("3221225472 bytes"), "{msg}");
}

#[test]
fn malformed_and_deeply_nested_manifests() {
    let d = tmp();
    write_tar(
        &d.path().join("a.tar"),
        &[("manifest.json".into(), b"[{\"Config\": ".to_vec())],
    );
    let (_, msg) = fails(&d.path().join("a.tar"), &[]);
    assert!(msg.contains("manifest.json is malformed"), "{msg}");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    write_tar(
        &d.path().join("b.tar"),
        &[("manifest.json".into(), deep.into_bytes())],
    );
    let (_, msg) = fails(&d.path().join("b.tar"), &[]);
    assert!(msg.contains("malformed"), "{msg}");
    let index = format!("{}{}", r#"{"manifests": ["#.repeat(2000), "]}".repeat(2000));
    write_dir(
        d.path().join("oci").as_path(),
        &[("index.json".into(), index.into_bytes())],
    );
    fails(&d.path().join("oci"), &[]);
}

#[test]
fn not_an_image_at_all() {
    let d = tmp();
    std::fs::write(d.path().join("x"), b"hello").unwrap();
    let (_, msg) = fails(&d.path().join("x"), &[]);
    assert!(msg.contains("x"), "{msg}");
    write_tar(
        &d.path().join("y.tar"),
        &[("readme".into(), b"hi".to_vec())],
    );
    let (_, msg) = fails(&d.path().join("y.tar"), &[]);
    assert!(msg.contains("not a container image"), "{msg}");
    let (code, msg) = fails(&d.path().join("does-not-exist"), &[]);
    assert_eq!(code, 1, "{msg}");
}

#[test]
fn usage_errors_exit_2() {
    let d = tmp();
    let a = docker_archive(d.path(), "x.tar", &[base()]);
    let (code, _) = fails(&a, &["--platform", "linux"]);
    assert_eq!(code, 2);
    let (code, _) = fails(&a, &["--bogus"]);
    assert_eq!(code, 2);
    std::fs::create_dir(d.path().join("full")).unwrap();
    std::fs::write(d.path().join("full/keep"), b"mine").unwrap();
    let (code, stderr) = run(a.to_str().unwrap(), &d.path().join("full"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(std::fs::read(d.path().join("full/keep")).unwrap(), b"mine");
}

/// A layer as umoci 0.4.7's `insert` writes it: the last file's content and then nothing,
/// no padding and no end-of-archive blocks.
fn unpadded_layer() -> Vec<u8> {
    let mut t = tar(&[E::file("a", b"first"), E::file("last", b"ends here")]);
    // Drop the two end blocks and the padding after "ends here".
    t.truncate(t.len() - 1024);
    let cut = t.len() - 512 + b"ends here".len();
    t.truncate(cut);
    t
}

#[test]
fn a_layer_that_lacks_only_its_final_padding_is_read_whole_plain_or_gzip() {
    for compress in [false, true] {
        let d = tmp();
        let layer = unpadded_layer();
        let blob = if compress { gzip(&layer) } else { layer };
        let image = docker_archive(d.path(), "i.tar", &[blob]);
        let out = d.path().join("root");
        let (code, stderr) = run(image.to_str().unwrap(), &out, &[]);
        assert_eq!(code, 0, "compressed {compress}: {stderr}");
        assert_eq!(std::fs::read(out.join("last")).unwrap(), b"ends here");
    }
}

#[test]
fn a_layer_cut_inside_a_file_is_refused_even_when_the_file_is_dead() {
    // The cut file is deleted by the layer above, so its bytes are never written: the cut
    // must still be seen (here without digests to catch it).
    for compress in [false, true] {
        let d = tmp();
        let mut layer = tar(&[E::file("a", b"first"), E::file("big", &[7; 3000])]);
        layer.truncate(layer.len() - 1024 - 2000);
        let blob = if compress { gzip(&layer) } else { layer };
        let upper = tar(&[E::whiteout(".wh.big")]);
        let image = docker_archive_with(d.path(), "i.tar", &[blob, upper], false);
        let (code, msg) = fails(&image, &["--no-verify"]);
        assert_eq!(code, 1, "{msg}");
        assert!(
            msg.contains("layer 1") && msg.contains("big"),
            "compressed {compress}: {msg}"
        );
    }
}
