//! A run that fails half-way (interrupted, disk full) stops cleanly, exits non-zero with one
//! line that says the target is incomplete, and leaves nothing outside the target.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// One gzip layer holding a `mib` MiB file of zeros and then a file `after`: a gzip member
/// with the header, the same small member of 1 MiB of zeros repeated, and the tail. The
/// diff_id is not computed (that would take longer than the test): run with --no-verify.
fn big_image(dir: &std::path::Path, mib: usize) -> std::path::PathBuf {
    let mut header = tar(&[E::file("big", b"")]);
    header.truncate(512);
    // Patch the size field of the header (and its checksum) to `mib` MiB.
    let size = format!("{:011o}\0", (mib as u64) << 20);
    header[124..136].copy_from_slice(size.as_bytes());
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let zeros = gzip(&vec![0u8; 1 << 20]);
    let mut blob = gzip(&header);
    for _ in 0..mib {
        blob.extend_from_slice(&zeros);
    }
    blob.extend(gzip(&tar(&[E::file("after", b"")])));
    docker_archive_with(dir, "big.tar", &[blob], false)
}

/// A tmpfs of `size` mounted in `dir` (unmount it when done).
fn small_tmpfs(dir: &std::path::Path, size: &str) -> std::path::PathBuf {
    let mnt = dir.join("small");
    std::fs::create_dir(&mnt).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(status.success(), "mount a small tmpfs");
    mnt
}

#[test]
fn interrupted_run_stops_cleanly_and_says_the_target_is_incomplete() {
    let d = tmp();
    let image = big_image(d.path(), 1024);
    let target = d.path().join("root");
    let child = bin()
        .arg("--no-verify")
        .arg(&image)
        .arg(&target)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the file exists the interrupt handler is in place and the write is under way.
    let start = Instant::now();
    while !target.join("big").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "flatten never started writing"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("interrupted")
            && stderr
                .contains("is incomplete (files may be missing, directories are still mode 0700")
            && stderr.ends_with("delete it and run again\n"),
        "says what was left unfinished: {stderr}"
    );
    assert!(!target.join("after").exists());
}

#[test]
fn full_disk_stops_cleanly_and_says_the_target_is_incomplete() {
    if !require_root("full_disk_stops_cleanly") {
        return;
    }
    let d = tmp();
    let image = big_image(d.path(), 64);
    let mnt = small_tmpfs(d.path(), "8M");
    let (code, stderr) = run(image.to_str().unwrap(), &mnt.join("root"), &["--no-verify"]);
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("No space left")
            && stderr.contains("is incomplete")
            && stderr.contains("entry \"big\""),
        "{stderr}"
    );
}

/// Small files are made on a thread beside the reader, and an error there surfaces a few
/// files later: it still names the layer and the entry it happened at, not where the reader
/// had got to.
#[test]
fn full_disk_in_a_small_file_names_its_layer_and_entry() {
    if !require_root("full_disk_in_a_small_file") {
        return;
    }
    let d = tmp();
    let content = vec![7u8; 60 << 10];
    let many: Vec<E> = (0..200)
        .map(|i| E::file(&format!("f{i:03}"), &content))
        .collect();
    let bottom = tar(&[E::file("base", b"base")]);
    let image = docker_archive(d.path(), "small.tar", &[gzip(&bottom), gzip(&tar(&many))]);
    let mnt = small_tmpfs(d.path(), "4M");
    let (code, stderr) = run(image.to_str().unwrap(), &mnt.join("root"), &[]);
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // The file named in the message is the entry named before it.
    let entry = stderr
        .split("entry \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("names an entry: {stderr}"));
    assert!(
        stderr.contains("layer 2")
            && stderr.contains("No space left")
            && (stderr.contains(&format!("cannot write /{entry}:"))
                || stderr.contains(&format!("cannot create /{entry}:"))),
        "{stderr}"
    );
}
