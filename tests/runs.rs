//! Issue 12: how a run begins and ends, as a person or a script meets it. `-o` puts a tar in
//! place only when it is complete; a closed pipe ends a run quietly; a pipe given by path
//! is read like `-`; an archive cut short says where; a target takes one run at a time.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::*;

fn small_image(dir: &std::path::Path) -> std::path::PathBuf {
    docker_archive(
        dir,
        "img.tar",
        &[
            tar(&[E::dir("etc"), E::file("etc/os", b"debian\n")]),
            tar(&[E::file("top", b"1")]),
        ],
    )
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn o_file_appears_only_when_complete() {
    let d = tmp();
    let image = small_image(d.path());
    let out_dir = d.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let dest = out_dir.join("rootfs.tar");
    let run = bin().arg("-o").arg(&dest).arg(&image).output().unwrap();
    assert_eq!(run.status.code(), Some(0));
    assert!(run.stdout.is_empty());
    // The summary, as for a directory (stderr is not a terminal: no bar).
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(
        stderr.starts_with("flatten: 2 layers, 3 entries, ")
            && stderr.ends_with(&format!(" into {}\n", dest.display())),
        "{stderr}"
    );
    assert_eq!(
        names_in(&out_dir),
        ["rootfs.tar"],
        "no temporary file is left"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dest).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o666 & !umask(), "made as File::create would");
    // A failed run leaves the old file as it was, and nothing beside it.
    let before = std::fs::read(&dest).unwrap();
    let mut bytes = std::fs::read(&image).unwrap();
    let at = bytes.windows(7).position(|w| w == b"debian\n").unwrap();
    bytes[at] = b'D';
    let bad = d.path().join("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();
    let run = bin().arg("-o").arg(&dest).arg(&bad).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(
        stderr.contains("mismatch")
            && stderr.ends_with(&format!(
                "; {} was not written (one that was there is left as it was)\n",
                dest.display()
            )),
        "{stderr}"
    );
    assert_eq!(names_in(&out_dir), ["rootfs.tar"]);
    assert_eq!(std::fs::read(&dest).unwrap(), before);
}

fn umask() -> u32 {
    let m = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    nix::sys::stat::umask(m);
    m.bits()
}

#[test]
fn o_into_a_fifo_or_dev_null_writes_in_place() {
    let d = tmp();
    let image = small_image(d.path());
    let run = bin()
        .args(["-q", "-o", "/dev/null"])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    let fifo = d.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut child = bin()
        .args(["-q", "-o"])
        .arg(&fifo)
        .arg(&image)
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    std::fs::File::open(&fifo)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(got.len() % 512, 0);
    assert!(got.windows(6).any(|w| w == b"etc/os"));
}

#[test]
fn o_stdout_into_a_closed_pipe_ends_quietly() {
    let d = tmp();
    // Enough content that the tar cannot fit in the pipe's buffer.
    let big: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let image = docker_archive(d.path(), "big.tar", &[tar(&[E::file("big", &big)])]);
    let mut child = bin()
        .args(["-o", "-"])
        .arg(&image)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one block, then go away, as `| head -c 512` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 512];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no error for a closed pipe"
    );
}

#[test]
fn a_pipe_given_by_path_is_read_like_stdin() {
    // `flatten <(cat img.tar) rootfs`: the shell passes /dev/fd/N, a pipe.
    let d = tmp();
    let image = small_image(d.path());
    let fifo = d.path().join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let target = d.path().join("rootfs");
    let child = bin().arg("-q").arg(&fifo).arg(&target).spawn().unwrap();
    std::fs::write(&fifo, std::fs::read(&image).unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read(target.join("etc/os")).unwrap(), b"debian\n");
}

#[test]
fn an_archive_cut_short_says_where() {
    let d = tmp();
    let image = small_image(d.path());
    let bytes = std::fs::read(&image).unwrap();
    // Cut inside the first layer's member (its data starts after the first header).
    let cut = d.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..512 + 700]).unwrap();
    let out = bin()
        .arg(&cut)
        .arg(d.path().join("rootfs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("ends early at byte 1212, inside ")
            && stderr.contains("/layer.tar")
            && !stderr.contains("manifest.json"),
        "{stderr}"
    );
}

#[test]
fn a_target_takes_one_run_at_a_time() {
    let d = tmp();
    let target = d.path().join("rootfs");
    std::fs::create_dir(&target).unwrap();
    // Hold the lock as a running flatten would.
    let held = std::fs::File::open(&target).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let image = small_image(d.path());
    let out = bin().arg(&image).arg(&target).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "flatten: target {} is being written by another run of flatten\n",
            target.display()
        )
    );
    assert!(names_in(&target).is_empty(), "nothing written");
    drop(held);
    ok(bin().arg("-q").arg(&image).arg(&target));
}

#[test]
fn a_full_tmpdir_is_named_with_the_way_out() {
    if !require_root("a_full_tmpdir_is_named_with_the_way_out") {
        return;
    }
    // A tiny tmpfs as $TMPDIR, and a compressed archive on stdin that must be spooled.
    let d = tmp();
    let small = d.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(status.success());
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    let image = docker_archive(d.path(), "img.tar", &[tar(&[E::file("big", &big)])]);
    let gz = gzip(&std::fs::read(&image).unwrap());
    let mut child = bin()
        .arg("-")
        .arg(d.path().join("rootfs"))
        .env("TMPDIR", &small)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = std::io::Write::write_all(&mut stdin, &gz);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let _ = std::process::Command::new("umount").arg(&small).status();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("to a temporary file in {}", small.display()))
            && stderr.contains("set TMPDIR")
            && stderr.contains("No space left on device"),
        "{stderr}"
    );
}

/// Runs `flatten ARGS` with stderr on a pseudo-terminal and standard input fed slowly from
/// `input`; what the terminal showed.
fn on_a_terminal(args: &[&std::ffi::OsStr], input: Vec<u8>) -> (i32, String) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(pty.slave))
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        // Ends with EIO once the child (the last holder of the other side) is gone.
        let _ = master.read_to_end(&mut seen);
        seen
    });
    let mut stdin = child.stdin.take().unwrap();
    for piece in input.chunks(input.len().div_ceil(6)) {
        std::io::Write::write_all(&mut stdin, piece).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    drop(stdin);
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (
        code,
        String::from_utf8_lossy(&reader.join().unwrap()).into_owned(),
    )
}

#[test]
fn standard_input_shows_progress_while_it_is_copied_on_a_terminal() {
    let d = tmp();
    let image = std::fs::read(small_image(d.path())).unwrap();
    let target = d.path().join("rootfs");
    let (code, seen) = on_a_terminal(
        &[std::ffi::OsStr::new("-"), target.as_os_str()],
        image.clone(),
    );
    assert_eq!(code, 0, "{seen}");
    assert!(
        seen.contains("copying the archive to a temporary file"),
        "{seen:?}"
    );
    assert!(seen.contains("flatten: 2 layers, 3 entries"), "{seen:?}");
    // -q: nothing at all.
    let target = d.path().join("quiet");
    let (code, seen) = on_a_terminal(
        &[
            std::ffi::OsStr::new("-q"),
            std::ffi::OsStr::new("-"),
            target.as_os_str(),
        ],
        image,
    );
    assert_eq!((code, seen.as_str()), (0, ""));
}

#[test]
fn a_signal_stops_the_run_with_128_plus_its_number_and_one_line() {
    use nix::sys::signal::{kill, Signal};
    for (signal, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let d = tmp();
        let image = std::fs::read(small_image(d.path())).unwrap();
        let target = d.path().join("rootfs");
        let mut child = bin()
            .arg("-")
            .arg(&target)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, &image[..1024]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        // The copy notices between reads.
        let _ = std::io::Write::write_all(&mut stdin, &image[1024..2048]);
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(code), "{signal}: {stderr}");
        assert_eq!(
            stderr,
            "flatten: interrupted while copying standard input to a temporary file\n"
        );
        assert!(!target.exists(), "nothing was begun");
    }
}

#[test]
fn a_file_that_cannot_be_read_is_named_with_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    if !require_root("a_file_that_cannot_be_read_is_named_with_the_reason") {
        return;
    }
    // As nobody: an archive, and an OCI layout's index.json, that only root may read.
    let d = shared_tmp();
    let image = small_image(d.path());
    std::fs::set_permissions(&image, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = as_user(bin().arg(&image).arg(d.path().join("a")))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "flatten: cannot open {}: Permission denied (os error 13)\n",
            image.display()
        )
    );
    let mut b = Blobs::default();
    let m = b.image(&[tar(&[E::file("f", b"")])], "amd64");
    let layout = d.path().join("layout");
    write_dir(&layout, &b.layout(vec![m]));
    let readable = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&layout)
        .status()
        .unwrap();
    assert!(readable.success());
    std::fs::set_permissions(
        layout.join("index.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = as_user(bin().arg(&layout).arg(d.path().join("b")))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("index.json") && stderr.contains("Permission denied"),
        "not \"no index.json\": {stderr}"
    );
}
