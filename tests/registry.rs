//! `docker://` against real registries (Debian's docker-registry, distribution 2.8) started
//! on loopback by `tests/registry/harness.py` and seeded with skopeo from the committed
//! images: anonymous, Basic over TLS with a private CA, token auth, and a proxy that
//! misbehaves on purpose. Each test is one rule; what is pulled is compared with what
//! `docker export` gave for the same image.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::registry::{registries, Registries};
use common::*;
use flatten::snapshot::{Mtime, Snapshot};

/// `flatten ARGS…` with a cache of its own and no credentials from this machine's files.
struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Run {
        Run { dir: tmp() }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn cmd(&self) -> Command {
        let mut c = bin();
        c.env("XDG_CACHE_HOME", self.cache())
            .env("REGISTRY_AUTH_FILE", self.dir.path().join("no-auth.json"))
            .env("DOCKER_CONFIG", self.dir.path().join("no-docker-config"))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy");
        c
    }

    /// Runs with `args`; the output.
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Flattens `image` with `args` into a new directory; its snapshot.
    fn flatten(&self, image: &str, args: &[&str]) -> Snapshot {
        let target = self.dir.path().join(format!("root{}", unique()));
        let out = self
            .cmd()
            .arg("-q")
            .args(args)
            .arg(image)
            .arg(&target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Snapshot::from_dir(&target).unwrap()
    }

    /// Runs `image` into a new directory expecting failure: (exit code, the one line).
    fn fails(&self, image: &str, args: &[&str]) -> (i32, String) {
        let target = self.dir.path().join(format!("root{}", unique()));
        let out = self
            .cmd()
            .arg("-q")
            .args(args)
            .arg(image)
            .arg(&target)
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{image} did not fail");
        assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
        (out.status.code().unwrap_or(-1), stderr)
    }
}

fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The tree `docker export` gave for a container of testdata image `case`.
fn export(case: &str) -> Snapshot {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/docker/{case}.export.tar"));
    Snapshot::from_tar(std::fs::File::open(p).unwrap()).unwrap()
}

/// Asserts that `ours` is the tree `docker export` gave for testdata image `case`.
fn assert_export(ours: &Snapshot, case: &str) {
    let diff = export_diff(ours, &export(case));
    assert!(diff.is_empty(), "{case}: {diff:#?}");
}

/// Asserts that each platform of `image` is the tree of the same platform of the committed
/// multi-platform layout.
fn assert_platforms(run: &Run, image: &str) {
    let layout = format!("oci:{}", testdata("spec/multi-platform"));
    for platform in ["linux/amd64", "linux/arm64/v8"] {
        let ours = run.flatten(image, &[INSECURE, "--platform", platform]);
        let local = run.flatten(&layout, &["--platform", platform]);
        assert_same(&local, &ours, Mtime::Exact);
    }
}

fn plain(r: &Registries, repo: &str) -> String {
    format!("docker://{}/{repo}", r.plain)
}

const INSECURE: &str = "--tls-verify=false";

#[test]
fn registry_images_are_the_trees_docker_export_gives() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    for case in [
        "whiteout-file",
        "opaque-dir",
        "hardlink-layer",
        "symlinks",
        "type-change",
    ] {
        assert_export(&run.flatten(&plain(r, case), &[INSECURE]), case);
    }
}

#[test]
fn zstd_layers_from_a_registry() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    let ours = run.flatten(&plain(r, "zstd/whiteout-file:latest"), &[INSECURE]);
    assert_export(&ours, "whiteout-file");
}

#[test]
fn docker_schema_2_manifests_and_manifest_lists() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    assert_export(
        &run.flatten(&plain(r, "v2s2/whiteout-file"), &[INSECURE]),
        "whiteout-file",
    );
    assert_platforms(&run, &plain(r, "v2s2/multi"));
}

#[test]
fn the_platform_is_chosen_from_a_registry_index() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    assert_platforms(&run, &plain(r, "multi"));
    let (code, line) = run.fails(&plain(r, "multi"), &[INSECURE, "--platform", "linux/s390x"]);
    assert_eq!(code, 2, "{line}");
    assert!(
        line.contains("linux/arm64/v8") && line.contains("--platform"),
        "{line}"
    );
}

#[test]
fn every_command_reads_docker_references() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    let image = plain(r, "whiteout-file");
    let local = format!("oci:{}:whiteout-file", testdata("skopeo/oci-layout"));
    let ok = |args: &[&str]| {
        let out = run.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    assert_eq!(ok(&["ls", INSECURE, &image]), ok(&["ls", &local]));
    assert_eq!(
        ok(&["-q", INSECURE, &image, "-o", "-"]),
        ok(&["-q", &local, "-o", "-"])
    );
    let inspect = String::from_utf8(ok(&["inspect", INSECURE, &image])).unwrap();
    assert!(
        inspect.contains(&format!("{}/whiteout-file:latest", r.plain)),
        "{inspect}"
    );
    assert!(
        inspect.contains(r.manifest("plain/whiteout-file:latest")),
        "{inspect}"
    );
    assert!(inspect.contains("format:       registry"), "{inspect}");
}

#[test]
fn a_digest_reference_names_exactly_one_manifest() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    let digest = r.manifest("plain/whiteout-file:latest");
    let ours = run.flatten(&plain(r, &format!("whiteout-file@{digest}")), &[INSECURE]);
    assert_export(&ours, "whiteout-file");
    // The same digest under a repository that holds other bytes for it: refused.
    let other = r.manifest("plain/opaque-dir:latest");
    let (code, line) = run.fails(&plain(r, &format!("whiteout-file@{other}")), &[INSECURE]);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("has no image"), "{line}");
}

/// Blob GETs through the proxy for `repo` (each test uses a repository of its own).
fn blob_gets(r: &Registries, repo: &str) -> Vec<String> {
    std::fs::read_to_string(&r.proxy_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("GET ") && l.contains(&format!("/{repo}/blobs/")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn fetched_blobs_are_cached_verified_and_reused() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    // Through the proxy's pass-through mode, whose log tells what was fetched.
    let image = format!("docker://{}/ok/symlinks", r.proxy);
    let first = run.flatten(&image, &[INSECURE]);
    let fetched = blob_gets(r, "ok/symlinks").len();
    assert!(fetched >= 2, "config and layers fetched: {fetched}");
    let blobs = run.cache().join("flatten/blobs/sha256");
    let cached = std::fs::read_dir(&blobs).unwrap().count();
    assert!(cached >= fetched, "{cached} cached of {fetched} fetched");
    assert_eq!(
        std::fs::read_dir(run.cache().join("flatten/tmp"))
            .unwrap()
            .count(),
        0
    );

    // Again: nothing fetched, the same tree.
    let second = run.flatten(&image, &[INSECURE]);
    assert_same(&first, &second, Mtime::Exact);
    assert_eq!(blob_gets(r, "ok/symlinks").len(), fetched);

    // A cached blob that is no longer what its name says is fetched anew, not used.
    let mut largest = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect::<Vec<_>>();
    largest.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = largest.last().unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(victim, &bytes).unwrap();
    let third = run.flatten(&image, &[INSECURE]);
    assert_same(&first, &third, Mtime::Exact);
    assert_eq!(blob_gets(r, "ok/symlinks").len(), fetched + 1);

    // --no-cache fetches everything and keeps nothing.
    let other = Run::new();
    other.flatten(&image, &[INSECURE, "--no-cache"]);
    assert_eq!(blob_gets(r, "ok/symlinks").len(), 2 * fetched + 1);
    assert!(!other.cache().join("flatten/blobs").exists());
}

#[test]
fn basic_auth_over_tls_with_the_registrys_own_ca() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    let image = format!("docker://{}/whiteout-file", r.basic);
    let cert_dir = r.cert_dir.to_str().unwrap();
    let ours = run.flatten(
        &image,
        &["--creds", "alice:wonderland", "--cert-dir", cert_dir],
    );
    assert_export(&ours, "whiteout-file");

    // Certificates are checked: without the CA, the system's roots do not know it.
    let (code, line) = run.fails(&image, &["--creds", "alice:wonderland"]);
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("certificate"), "{line}");
    // ... unless the user says not to.
    run.flatten(&image, &["--creds", "alice:wonderland", INSECURE]);

    // Wrong or missing credentials: exit 4, the password never shown.
    let (code, line) = run.fails(
        &image,
        &["--creds", "alice:hunter2-secret", "--cert-dir", cert_dir],
    );
    assert_eq!(code, 4, "{line}");
    assert!(
        line.contains("refused the credentials of user \"alice\""),
        "{line}"
    );
    assert!(!line.contains("hunter2"), "{line}");
    let (code, line) = run.fails(&image, &["--cert-dir", cert_dir]);
    assert_eq!(code, 4, "{line}");
    assert!(
        line.contains("needs credentials") && line.contains("--creds"),
        "{line}"
    );
}

#[test]
fn credentials_come_from_the_files_docker_and_podman_keep() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    let d = tmp();
    let auth = |user: &str, pass: &str| {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!(r#"{{"auths": {{"{}": {{"auth": "{b}"}}}}}}"#, r.basic)
    };
    // Pulls from the Basic registry with `env` and `args`, no --creds unless in `args`.
    let pulls = |env: &[(&str, &std::ffi::OsStr)], args: &[&str]| {
        let mut cmd = run.cmd();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .args(["-q", "--cert-dir", r.cert_dir.to_str().unwrap()])
            .args(args)
            .arg(format!("docker://{}/whiteout-file", r.basic))
            .arg(d.path().join(format!("t{}", unique())))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{env:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // containers-auth.json named by $REGISTRY_AUTH_FILE.
    let file = d.path().join("auth.json");
    std::fs::write(&file, auth("alice", "wonderland")).unwrap();
    pulls(&[("REGISTRY_AUTH_FILE", file.as_os_str())], &[]);

    // Docker's config.json in $DOCKER_CONFIG.
    let docker = d.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    std::fs::write(docker.join("config.json"), auth("alice", "wonderland")).unwrap();
    pulls(&[("DOCKER_CONFIG", docker.as_os_str())], &[]);

    // A credential helper (credsStore), asked for this registry by name.
    let helpers = d.path().join("bin");
    std::fs::create_dir(&helpers).unwrap();
    let helper = helpers.join("docker-credential-flattentest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = \"{}\" ] || exit 1\n\
             echo '{{\"ServerURL\":\"'$server'\",\"Username\":\"alice\",\"Secret\":\"wonderland\"}}'\n",
            r.basic
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let helper_docker = d.path().join("helper-docker");
    std::fs::create_dir(&helper_docker).unwrap();
    std::fs::write(
        helper_docker.join("config.json"),
        r#"{"credsStore": "flattentest"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    pulls(
        &[
            ("DOCKER_CONFIG", helper_docker.as_os_str()),
            ("PATH", path.as_ref()),
        ],
        &[],
    );

    // --creds wins over the files.
    std::fs::write(&file, auth("alice", "wrong")).unwrap();
    pulls(
        &[("REGISTRY_AUTH_FILE", file.as_os_str())],
        &["--creds", "alice:wonderland"],
    );
}

#[test]
fn certs_d_holds_a_registrys_ca_as_docker_reads_it() {
    let Some(r) = registries() else { return };
    if !require_root("certs_d_holds_a_registrys_ca_as_docker_reads_it") {
        return;
    }
    let run = Run::new();
    let dir = PathBuf::from("/etc/containers/certs.d").join(&r.basic);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&r.ca, dir.join("ca.crt")).unwrap();
    let out = run
        .cmd()
        .args(["-q", "--creds", "alice:wonderland"])
        .arg(format!("docker://{}/whiteout-file", r.basic))
        .arg(run.dir.path().join("t"))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn token_auth_anonymous_and_with_credentials() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    let public = format!("docker://{}/public/whiteout-file", r.token);
    let private = format!("docker://{}/private/whiteout-file", r.token);
    let ours = run.flatten(&public, &[INSECURE]);
    assert_export(&ours, "whiteout-file");

    let (code, line) = run.fails(&private, &[INSECURE]);
    assert_eq!(code, 4, "{line}");
    assert!(line.contains("needs credentials"), "{line}");

    run.flatten(&private, &[INSECURE, "--creds", "bob:builder"]);

    let (code, line) = run.fails(&private, &[INSECURE, "--creds", "bob:not-the-password"]);
    assert_eq!(code, 4, "{line}");
    assert!(
        line.contains("refused the credentials of user \"bob\""),
        "{line}"
    );
    assert!(!line.contains("not-the-password"), "{line}");
}

#[test]
fn registry_failures_are_one_line_with_a_meaningful_status() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    let proxy = |mode: &str| format!("docker://{}/{mode}/whiteout-file", r.proxy);
    let cases: &[(String, i32, &str)] = &[
        (
            format!("docker://{}/whiteout-file", r.down),
            3,
            "connection refused",
        ),
        (
            plain(r, "whiteout-file:no-such-tag"),
            1,
            "has no image no-such-tag",
        ),
        (plain(r, "no-such-repository"), 1, "has no image latest"),
        (proxy("corrupt"), 1, "digest"),
        (proxy("corrupt-manifest"), 1, "digest"),
        (proxy("long"), 1, "sent more than"),
        (proxy("big-manifest"), 1, "larger than 4194304 bytes"),
        (proxy("drop-always"), 3, "broke"),
        (proxy("429"), 3, "kept failing (429)"),
        (proxy("500"), 3, "kept failing (503)"),
        (proxy("redirect-loop"), 1, "redirected more than"),
        (proxy("redirect-ftp"), 1, "not an http(s) address"),
    ];
    for (image, code, says) in cases {
        let (got, line) = run.fails(image, &[INSECURE]);
        assert_eq!(got, *code, "{image}: {line}");
        assert!(line.contains(says), "{image}: {line}");
    }
    // Plain HTTP is refused unless the user allowed it.
    let (code, line) = run.fails(&plain(r, "whiteout-file"), &[]);
    assert_eq!(code, 3, "{line}");
}

#[test]
fn broken_transfers_are_resumed_and_429_waited_out() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    for mode in ["drop-once", "no-range-drop-once", "slow-429"] {
        let image = format!("docker://{}/{mode}/whiteout-file", r.proxy);
        assert_export(&run.flatten(&image, &[INSECURE]), "whiteout-file");
    }
    let resumed = blob_gets(r, "drop-once/whiteout-file")
        .iter()
        .any(|l| l.contains("range=bytes="));
    assert!(resumed, "a range request resumed the broken transfer");
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    let image = format!("docker://{}/redirect/whiteout-file", r.proxy);
    // The object store answers 400 "credentials leaked" to a request that carries them.
    let ours = run.flatten(&image, &[INSECURE, "--creds", "carol:secret"]);
    assert_export(&ours, "whiteout-file");
    let log = std::fs::read_to_string(&r.proxy_log).unwrap();
    let objects: Vec<&str> = log.lines().filter(|l| l.contains("/_objects/")).collect();
    assert!(!objects.is_empty());
    assert!(
        objects.iter().all(|l| l.contains("auth=no")),
        "{objects:#?}"
    );
}

#[test]
fn an_interrupted_pull_stops_at_once_and_leaves_no_temporary_file() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    // Every transfer breaks, so the pull is still fetching (and waiting to retry) when the
    // signal comes.
    let child = run
        .cmd()
        .args([
            INSECURE,
            &format!("docker://{}/drop-always/type-change", r.proxy),
        ])
        .arg(run.dir.path().join("root"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "slow to stop"
    );
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let tmp = run.cache().join("flatten/tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
}

#[test]
fn the_uncompressed_stream_is_checked_against_the_configs_diff_id() {
    let Some(r) = registries() else { return };
    let run = Run::new();
    // An image whose config names another diff_id than its layer has, pushed by skopeo
    // (which copies blobs as they are).
    let mut blobs = Blobs::default();
    let layer = gzip(&tar(&[E::file("a", b"a")]));
    let m = blobs.image(&[layer], "amd64");
    let lie = format!("sha256:{}", "0".repeat(64));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [lie]},
    });
    let m = blobs.with_config(&m, config);
    let layout = run.dir.path().join("layout");
    write_dir(
        &layout,
        &blobs.layout(vec![annotate(
            m,
            "org.opencontainers.image.ref.name",
            "lie",
        )]),
    );
    ok(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:lie", layout.display()))
        .arg(format!("docker://{}/diff-id-lie:latest", r.plain)));
    let (code, line) = run.fails(&plain(r, "diff-id-lie"), &[INSECURE]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("diff_id mismatch") && line.contains("layer 1"),
        "{line}"
    );
}
