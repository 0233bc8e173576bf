//! `flatten` run by an ordinary user: it still works, owners stay the user's, device nodes and
//! privileged xattrs are skipped, and one line says so. In CI (root) the test drops to
//! `nobody` with setpriv; run by a user, it runs as that user.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::*;

#[test]
fn unprivileged_run_reproduces_all_it_can_and_says_what_it_could_not() {
    let d = shared_tmp();
    let image = docker_archive(
        d.path(),
        "img.tar",
        &[
            tar(&[
                E::dir("ro").mode(0o555),
                E::file("owned", b"x").owner(1234, 5678).mode(0o4755),
                E::chardev("null", 1, 3),
                E::file("cap", b"x").xattr("trusted.t", b"1"),
            ]),
            tar(&[
                E::file("ro/inside", b"later"),
                E::dir("ro").mode(0o555).mtime(77),
            ]),
        ],
    );
    readable(&image);
    let target = d.path().join("root");
    let out = as_user(bin().arg("-q").arg(&image).arg(&target))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one summary line: {stderr}");
    assert!(stderr.contains("not reproduced"), "{stderr}");
    assert!(
        stderr.contains("owners of") && stderr.contains("1 device node"),
        "{stderr}"
    );

    let me = std::fs::metadata(&target).unwrap().uid();
    let owned = std::fs::metadata(target.join("owned")).unwrap();
    assert_eq!(owned.uid(), me);
    assert_eq!(owned.mode() & 0o7777, 0o4755);
    assert!(!target.join("null").exists());
    assert_eq!(std::fs::read(target.join("ro/inside")).unwrap(), b"later");
    let ro = std::fs::metadata(target.join("ro")).unwrap();
    assert_eq!((ro.mode() & 0o7777, ro.mtime()), (0o555, 77));
}

#[test]
fn unprivileged_run_is_just_as_confined() {
    // The canary is the user's own and writable: only confinement protects it.
    let d = shared_tmp();
    let outside = d.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("canary"), b"mine").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(
        outside.join("canary"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let o = outside.to_str().unwrap();
    let image = docker_archive(
        d.path(),
        "evil.tar",
        &[
            tar(&[
                E::symlink("abs", o),
                E::symlink("rel", "../outside"),
                E::symlink("f", &format!("{o}/canary")),
            ]),
            tar(&[
                E::file("abs/canary", b"pwned"),
                E::file("rel/canary", b"pwned"),
                E::file("f", b"pwned").mode(0o777),
                E::whiteout("abs/.wh.canary"),
            ]),
        ],
    );
    readable(&image);
    let target = d.path().join("root");
    ok(&mut as_user(bin().arg("-q").arg(&image).arg(&target)));
    assert_eq!(std::fs::read(outside.join("canary")).unwrap(), b"mine");
    assert_eq!(
        std::fs::metadata(outside.join("canary"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o666
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    assert_eq!(
        std::fs::read(target.join("outside/canary")).unwrap(),
        b"pwned"
    );
}
