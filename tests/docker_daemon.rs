//! `docker-daemon:REF` against a real Docker Engine: a private `dockerd` (Debian's docker.io,
//! installed by .ci/run) started by this test on its own socket, an image loaded into it
//! from the committed `docker save` archive, then read back through the API by every
//! command and compared with reading the archive itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use flatten::snapshot::{Mtime, Snapshot};

/// A private dockerd, stopped when dropped.
struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Option<Daemon> {
        if !require_root("docker_daemon") {
            return None;
        }
        if Command::new("dockerd").arg("--version").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "dockerd is needed in CI (apt-get install docker.io)"
            );
            eprintln!("docker_daemon: skipped, no dockerd (apt-get install docker.io)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("dockerd")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("d.sock");
        // vfs: works on any filesystem, nested or not, and the image is tiny.
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--storage-driver", "vfs"])
            .arg("--data-root")
            .arg(dir.path().join("root"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("d.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .stdout(std::fs::File::create(dir.path().join("d.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("d.err")).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon {
            child,
            socket,
            _dir: dir,
        };
        let start = Instant::now();
        while d
            .docker()
            .arg("info")
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "dockerd did not come up: {}",
                std::fs::read_to_string(d._dir.path().join("d.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(d)
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Debian's docker client (another, newer one may be earlier in PATH).
    fn docker(&self) -> Command {
        let bin = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut c = Command::new(bin);
        c.arg("-H").arg(self.host());
        c
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

#[test]
fn docker_daemon_images_read_like_their_docker_save() {
    let Some(daemon) = Daemon::start() else {
        return;
    };
    let archive = testdata("docker/whiteout-file.tar");
    ok(daemon.docker().arg("load").arg("-i").arg(&archive));
    let image = "docker-daemon:flatten-test/whiteout-file:latest";
    let d = tmp();
    let run = |args: &[&std::ffi::OsStr]| {
        bin()
            .env("DOCKER_HOST", daemon.host())
            .args(args)
            .output()
            .unwrap()
    };
    let os = |s: &str| std::ffi::OsString::from(s);

    // The directory, as from the archive.
    let want = d.path().join("from-archive");
    ok(bin().arg("-q").arg(&archive).arg(&want));
    let got = d.path().join("from-daemon");
    let out = run(&[&os("-q"), &os(image), got.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same(
        &Snapshot::from_dir(&want).unwrap(),
        &Snapshot::from_dir(&got).unwrap(),
        Mtime::Exact,
    );

    // ls and inspect read it too, and -o gives the same tar as from the archive.
    let ls_daemon = run(&[&os("ls"), &os(image)]);
    let ls_archive = ok(bin().arg("ls").arg(&archive));
    assert_eq!(ls_daemon.stdout, ls_archive.stdout);
    let inspect = run(&[&os("inspect"), &os(image)]);
    assert!(inspect.status.success());
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("flatten-test/whiteout-file:latest"));
    let tar_daemon = d.path().join("d.tar");
    let tar_archive = d.path().join("a.tar");
    assert!(
        run(&[&os("-q"), &os(image), &os("-o"), tar_daemon.as_os_str()])
            .status
            .success()
    );
    ok(bin().arg("-q").arg(&archive).arg("-o").arg(&tar_archive));
    assert_eq!(
        std::fs::read(&tar_daemon).unwrap(),
        std::fs::read(&tar_archive).unwrap()
    );

    // A missing image is one clear line, exit 1.
    let out = run(&[
        &os("docker-daemon:flatten-test/no-such:image"),
        d.path().join("x").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot export flatten-test/no-such:image") && stderr.contains("HTTP 404"),
        "{stderr}"
    );

    // A name that is no reference at all is the user's to fix: exit 2.
    let out = run(&[
        &os("docker-daemon:Not/A/Valid/REF:"),
        d.path().join("z").as_os_str(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // No daemon there: says where it looked and how to choose.
    let out = bin()
        .env(
            "DOCKER_HOST",
            format!("unix://{}", d.path().join("none.sock").display()),
        )
        .arg(image)
        .arg(d.path().join("y"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cannot reach the Docker daemon at") && stderr.contains("set DOCKER_HOST"),
        "{stderr}"
    );
}
