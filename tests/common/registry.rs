//! Real registries on loopback for the `docker://` tests: `tests/registry/harness.py` (see
//! `tests/registry/README.md`), started once per test binary and stopped when it exits.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tempfile::TempDir;

/// What the harness started (its `env.json`). Addresses are `127.0.0.1:PORT`.
#[derive(Debug)]
pub struct Registries {
    /// distribution 2.8 over HTTP, anonymous, read-write.
    pub plain: String,
    /// HTTPS (certificate of [`Registries::ca`]), Basic auth `alice` / `wonderland`.
    pub basic: String,
    /// HTTP, token auth through [`Registries::token_service`]: `bob` / `builder` may do
    /// anything, anonymous may only pull `public/*`.
    pub token: String,
    /// `http://127.0.0.1:PORT` (`/token`, and `/stats` for the requests counted by user).
    pub token_service: String,
    /// The misbehaving proxy in front of `plain`: `/v2/<behaviour>/<repo>/...`.
    pub proxy: String,
    /// A port where nothing listens.
    pub down: String,
    /// The test CA that signed `basic`'s certificate.
    pub ca: PathBuf,
    /// A directory holding `ca.crt` (skopeo's `--cert-dir`, a `certs.d/HOST:PORT`).
    pub cert_dir: PathBuf,
    /// The proxy's request log: `METHOD PATH auth=yes|no range=…|-`, one a line.
    pub proxy_log: PathBuf,
    /// Manifest digest of each pushed image, e.g. `plain/whiteout-file:latest`.
    pub manifests: BTreeMap<String, String>,
    dir: TempDir,
    // Closed only when the test process exits, which is what stops the harness.
    _stdin: ChildStdin,
    _child: Child,
}

impl Registries {
    /// The directory the harness works in (certificates, registry logs and storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The digest of `key` (`"plain/whiteout-file:latest"`, ...), panicking if not pushed.
    pub fn manifest(&self, key: &str) -> &str {
        self.manifests
            .get(key)
            .unwrap_or_else(|| panic!("no pushed image {key}: {:?}", self.manifests.keys()))
    }
}

const PACKAGES: &str =
    "apt-get install docker-registry skopeo apache2-utils python3-cryptography openssl";

/// The harness's registries, started on first use; `None` (after saying the test is skipped)
/// when the tools are missing outside CI. In CI (`CI` set) missing tools are a failure.
pub fn registries() -> Option<&'static Registries> {
    static REGISTRIES: OnceLock<Option<Registries>> = OnceLock::new();
    REGISTRIES.get_or_init(start).as_ref()
}

fn installed(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn start() -> Option<Registries> {
    let missing: Vec<&str> = [
        ("docker-registry", "--version"),
        ("skopeo", "--version"),
        ("openssl", "version"),
        ("/usr/bin/python3", "--version"),
    ]
    .into_iter()
    .filter(|(p, a)| !installed(p, a))
    .map(|(p, _)| p)
    .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the registry tests need {missing:?} in CI ({PACKAGES})"
        );
        eprintln!("registry tests: skipped, {missing:?} missing ({PACKAGES})");
        return None;
    }

    let dir = tempfile::Builder::new()
        .prefix("flatten-registry")
        .tempdir()
        .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("/usr/bin/python3")
        .arg(root.join("tests/registry/harness.py"))
        .arg(dir.path())
        // The test process never drops its statics: the harness removes the directory.
        .arg("--remove-dir-on-exit")
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run /usr/bin/python3 tests/registry/harness.py");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Drained for as long as the harness runs; read in full when it failed to start.
    let errors = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        all
    });

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Reads on after READY, so the harness never writes into a closed pipe.
        for line in std::io::BufReader::new(stdout).lines() {
            match line {
                Ok(l) if l.trim() == "READY" => {
                    let _ = tx.send(true);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(false);
    });
    let ready = rx.recv_timeout(Duration::from_secs(120)).unwrap_or(false);
    if !ready {
        let _ = child.kill();
        let status = child.wait().ok();
        let errors = errors.join().unwrap_or_default();
        panic!(
            "the registry harness did not come up ({status:?}):\n{}",
            String::from_utf8_lossy(&errors)
        );
    }

    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("env.json")).unwrap()).unwrap();
    let s = |k: &str| {
        env[k]
            .as_str()
            .unwrap_or_else(|| panic!("env.json has no {k}: {env}"))
            .to_owned()
    };
    let manifests = env["manifests"]
        .as_object()
        .expect("env.json has no manifests")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    Some(Registries {
        plain: s("plain"),
        basic: s("basic"),
        token: s("token"),
        token_service: s("token_service"),
        proxy: s("proxy"),
        down: s("down"),
        ca: s("ca").into(),
        cert_dir: s("cert_dir").into(),
        proxy_log: s("proxy_log").into(),
        manifests,
        dir,
        _stdin: stdin,
        _child: child,
    })
}
