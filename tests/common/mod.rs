//! Helpers shared by the integration tests: hand-made layers and images, and tree comparison.

#![allow(dead_code)]

pub mod registry;
pub mod tarw;

use std::path::{Path, PathBuf};

use flatten::digest::sha256_of;
use flatten::snapshot::{DiffOptions, Mtime, Snapshot};

pub use tarw::{tar, E};

/// A docker-archive (`docker save` legacy layout, Docker 20.10 style) holding one image made
/// of `layers` (uncompressed tars or compressed blobs), written to `dir/name`.
pub fn docker_archive(dir: &Path, name: &str, layers: &[Vec<u8>]) -> PathBuf {
    docker_archive_with(dir, name, layers, true)
}

/// Like [`docker_archive`]; without `diff_ids` the config's are made up (for --no-verify
/// tests whose layers are too large to hash quickly).
pub fn docker_archive_with(dir: &Path, name: &str, layers: &[Vec<u8>], diff_ids: bool) -> PathBuf {
    let compute = diff_ids;
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut diff_ids = Vec::new();
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        if compute {
            diff_ids.push(sha256_of(&decompress(l)).to_string());
        } else {
            diff_ids.push(format!("sha256:{:064x}", i));
        }
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
    members.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
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
            flate2::read::MultiGzDecoder::new(blob)
                .read_to_end(&mut out)
                .unwrap();
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            zstd::stream::read::Decoder::new(blob)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
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

pub fn apply_with(
    dir: &Path,
    layers: &[Vec<u8>],
    strategy: flatten::Strategy,
) -> flatten::Result<()> {
    let settings = flatten::output::dir::Settings {
        strategy,
        ..Default::default()
    };
    flatten::output::dir::apply(
        &flatten::output::dir::InMemory::new(layers)?,
        dir,
        &settings,
        &mut (),
    )?;
    Ok(())
}

/// What the executable specification makes of `layers`.
pub fn spec(layers: &[Vec<u8>]) -> Result<Snapshot, String> {
    let mut s = flatten::spec::Spec::new();
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
    s.nodes
        .keys()
        .map(|k| format!("/{}", String::from_utf8_lossy(k)))
        .collect()
}

/// Blobs of an OCI layout being built, by digest.
#[derive(Default)]
pub struct Blobs(pub std::collections::BTreeMap<String, Vec<u8>>);

impl Blobs {
    /// Stores `data`, returning its descriptor.
    pub fn add(&mut self, media_type: &str, data: Vec<u8>) -> serde_json::Value {
        let d = sha256_of(&data);
        let desc = serde_json::json!({"mediaType": media_type, "digest": d.to_string(), "size": data.len()});
        self.0.insert(d.hex().to_owned(), data);
        desc
    }

    /// Stores an image (config and manifest) made of `layers` blobs; returns the manifest's
    /// descriptor.
    pub fn image(&mut self, layers: &[Vec<u8>], arch: &str) -> serde_json::Value {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| sha256_of(&decompress(l)).to_string())
            .collect();
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Env": ["PATH=/bin"], "WorkingDir": "/w"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = self.add(
            "application/vnd.oci.image.config.v1+json",
            serde_json::to_vec(&config).unwrap(),
        );
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| self.add("application/vnd.oci.image.layer.v1.tar", l.clone()))
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": layers,
        });
        self.add(
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::to_vec(&manifest).unwrap(),
        )
    }

    /// The image of manifest `m` with its config replaced by `config`; returns the new
    /// manifest's descriptor.
    pub fn with_config(
        &mut self,
        m: &serde_json::Value,
        config: serde_json::Value,
    ) -> serde_json::Value {
        let hex = m["digest"].as_str().unwrap()[7..].to_owned();
        let mut manifest: serde_json::Value = serde_json::from_slice(&self.0[&hex]).unwrap();
        manifest["config"] = self.add(
            "application/vnd.oci.image.config.v1+json",
            serde_json::to_vec(&config).unwrap(),
        );
        self.add(
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::to_vec(&manifest).unwrap(),
        )
    }

    /// The files of a layout whose index.json lists `manifests`.
    pub fn layout(&self, manifests: Vec<serde_json::Value>) -> Vec<(String, Vec<u8>)> {
        let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
        let mut files = vec![
            (
                "oci-layout".to_owned(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".to_owned(), serde_json::to_vec(&index).unwrap()),
        ];
        for (hex, data) in &self.0 {
            files.push((format!("blobs/sha256/{hex}"), data.clone()));
        }
        files
    }
}

/// Writes files into a directory.
pub fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, data) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

/// Writes files into a tar archive.
pub fn write_tar(path: &Path, files: &[(String, Vec<u8>)]) {
    let entries: Vec<E> = files.iter().map(|(n, d)| E::file(n, d)).collect();
    std::fs::write(path, tar(&entries)).unwrap();
}

/// Adds an annotation to a descriptor.
pub fn annotate(mut desc: serde_json::Value, key: &str, value: &str) -> serde_json::Value {
    desc["annotations"][key] = serde_json::Value::String(value.to_owned());
    desc
}

/// Adds a platform to a descriptor.
pub fn with_platform(
    mut desc: serde_json::Value,
    os: &str,
    arch: &str,
    variant: Option<&str>,
) -> serde_json::Value {
    desc["platform"] = serde_json::json!({"os": os, "architecture": arch});
    if let Some(v) = variant {
        desc["platform"]["variant"] = serde_json::Value::String(v.to_owned());
    }
    desc
}

/// The built `flatten` binary.
pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_flatten"))
}

/// Runs `flatten IMAGE TARGET ARGS…` and returns (exit code, stderr).
pub fn run(image: &str, target: &Path, args: &[&str]) -> (i32, String) {
    let out = bin().arg(image).arg(target).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// True when running as root. Outside CI a test that needs root may then skip (saying so);
/// in CI (`CI` set) not being root is a failure, never a silent skip.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test} needs root in CI");
    eprintln!("{test}: skipped, needs root");
    false
}

/// A path under the committed `testdata/`, as a string.
pub fn testdata(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(p)
        .to_str()
        .unwrap()
        .to_owned()
}

/// `cmd` run as `nobody` when we are root (CI), else as ourselves.
pub fn as_user(cmd: &mut std::process::Command) -> std::process::Command {
    let mut c = if nix::unistd::Uid::effective().is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(cmd.get_program());
        c
    } else {
        std::process::Command::new(cmd.get_program())
    };
    c.args(cmd.get_args());
    c
}

/// Runs `cmd`, requires success (showing its stderr otherwise) and returns its output.
pub fn ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A temporary directory that `nobody` may write into, for the unprivileged runs.
pub fn shared_tmp() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// Makes `path` readable by everyone (the archives the unprivileged runs read).
pub fn readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// How a flattened tree differs from a `docker export` of the same image, leaving out what
/// `docker create` adds (mtimes compared to the second, as the export tar keeps them).
pub fn export_diff(ours: &Snapshot, export: &Snapshot) -> Vec<String> {
    let mut opts = DiffOptions {
        mtime: Mtime::Seconds,
        ..DiffOptions::default()
    };
    opts.ignore_docker_init();
    ours.diff_with(export, &opts)
}
