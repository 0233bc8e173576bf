//! Helpers shared by the integration tests: hand-made layers and images, and tree comparison.

#![allow(dead_code)]

pub mod tarw;

use std::path::{Path, PathBuf};

use flatten::digest::sha256_of;
use flatten::snapshot::{Mtime, Snapshot};

pub use tarw::{tar, E};

/// A docker-archive (`docker save` legacy layout, Docker 20.10 style) holding one image made
/// of `layers` (uncompressed tars or compressed blobs), written to `dir/name`.
pub fn docker_archive(dir: &Path, name: &str, layers: &[Vec<u8>]) -> PathBuf {
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut diff_ids = Vec::new();
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let raw = decompress(l);
        diff_ids.push(sha256_of(&raw).to_string());
        let id = format!("{:064x}", i + 1);
        members.push((format!("{id}/layer.tar"), l.clone()));
        members.push((format!("{id}/VERSION"), b"1.0".to_vec()));
        paths.push(format!("{id}/layer.tar"));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_of(&config).hex());
    members.push((config_name.clone(), config));
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": ["test/image:latest"], "Layers": paths}]);
    members.push(("manifest.json".into(), serde_json::to_vec(&manifest).unwrap()));
    let entries: Vec<E> = members.iter().map(|(n, d)| E::file(n, d)).collect();
    let path = dir.join(name);
    std::fs::write(&path, tar(&entries)).unwrap();
    path
}

/// The uncompressed form of a layer blob.
pub fn decompress(blob: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match blob {
        [0x1f, 0x8b, ..] => {
            flate2::read::MultiGzDecoder::new(blob).read_to_end(&mut out).unwrap();
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            zstd::stream::read::Decoder::new(blob).unwrap().read_to_end(&mut out).unwrap();
        }
        _ => out = blob.to_vec(),
    }
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 1).unwrap()
}

/// Applies uncompressed layers straight through the library's applier into `dir`.
pub fn apply(dir: &Path, layers: &[Vec<u8>]) -> flatten::Result<()> {
    apply_with(dir, layers, flatten::Strategy::Auto)
}

pub fn apply_with(dir: &Path, layers: &[Vec<u8>], strategy: flatten::Strategy) -> flatten::Result<()> {
    let mut a = flatten::apply::Applier::new(dir, strategy)?;
    for (i, l) in layers.iter().enumerate() {
        let layer = flatten::error::LayerRef { index: i, digest: None };
        a.apply_layer(&layer, Box::new(std::io::Cursor::new(l.clone())), &Default::default(), false)?;
    }
    a.finish()?;
    Ok(())
}

/// What the executable specification makes of `layers`.
pub fn spec(layers: &[Vec<u8>]) -> Result<Snapshot, String> {
    let mut s = flatten::merge::spec::Spec::new();
    for l in layers {
        s.apply_layer(&l[..])?;
    }
    Ok(s.snapshot())
}

/// Panics with a readable list if the trees differ.
pub fn assert_same(left: &Snapshot, right: &Snapshot, mtime: Mtime) {
    let d = left.diff(right, mtime);
    assert!(d.is_empty(), "trees differ:\n{}", d.join("\n"));
}

/// A fresh temporary directory.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Paths (with `/` prefix) present in a snapshot.
pub fn paths(s: &Snapshot) -> Vec<String> {
    s.nodes.keys().map(|k| format!("/{}", String::from_utf8_lossy(k))).collect()
}
