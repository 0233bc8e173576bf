//! The README's recipe for checking a flattened image against Docker, on real pairs of
//! `docker save` and `docker export` (testdata/docker-recipe, made by
//! testdata/make/docker_recipe.sh with Docker 20.10):
//!
//!     flatten img.tar rootfs
//!     docker export "$(docker create img)" > export.tar
//!     flatten diff --mtime seconds --ignore-docker-init rootfs export.tar
//!
//! must find no difference, on images without /etc, with user.* xattrs, and with a WORKDIR.

mod common;

use common::*;

/// Each case: its image, and the WORKDIR to name when `docker create` made it.
const CASES: &[(&str, Option<&str>)] = &[
    ("no-etc", None),
    ("user-xattrs", None),
    ("init-shadow", None),
    ("workdir", None),
    ("workdir-existing", None),
    ("workdir-missing", Some("/srv/made/by/create")),
];

fn image(case: &str) -> String {
    format!(
        "docker-archive:{}:flatten-test/{case}:latest",
        testdata("docker-recipe/images.tar")
    )
}

fn export(case: &str) -> String {
    testdata(&format!("docker-recipe/{case}.export.tar"))
}

/// `flatten diff --mtime seconds --ignore-docker-init [--workdir W] A B`: (exit, stdout).
fn recipe_diff(a: &std::path::Path, case: &str, workdir: Option<&str>) -> (i32, String) {
    let mut c = bin();
    c.args(["diff", "--mtime", "seconds", "--ignore-docker-init"]);
    if let Some(w) = workdir {
        c.args(["--workdir", w]);
    }
    let out = c.arg(a).arg(export(case)).output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn the_readme_recipe_finds_no_difference_on_real_docker_exports() {
    let d = tmp();
    for &(case, workdir) in CASES {
        // The tar output needs no privileges: every user can check this.
        let tar = d.path().join(format!("{case}.tar"));
        ok(bin().args(["-q", "-o"]).arg(&tar).arg(image(case)));
        assert_eq!(
            recipe_diff(&tar, case, workdir),
            (0, String::new()),
            "{case}, -o"
        );
        // The directory, as the README shows it: owners and capabilities need root.
        if nix::unistd::Uid::effective().is_root() {
            let dir = d.path().join(case);
            ok(bin().arg("-q").arg(image(case)).arg(&dir));
            assert_eq!(
                recipe_diff(&dir, case, workdir),
                (0, String::new()),
                "{case}, dir"
            );
        }
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("the_readme_recipe…: directories not compared (needs root); -o compared");
    }
}

#[test]
fn what_the_recipe_leaves_out_is_really_there() {
    // Without --ignore-docker-init the same comparisons find what docker create added and
    // docker export dropped: the test above cannot pass by comparing nothing.
    let d = tmp();
    let diff = |case: &str| {
        let tar = d.path().join(format!("{case}.tar"));
        ok(bin().args(["-q", "-o"]).arg(&tar).arg(image(case)));
        let out = bin()
            .args(["diff", "--mtime", "seconds"])
            .arg(&tar)
            .arg(export(case))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stdout).unwrap()
    };
    let no_etc = diff("no-etc");
    for line in [
        "/.dockerenv: only in B",
        "/etc: only in B",
        "/etc/hosts: only in B",
    ] {
        assert!(no_etc.contains(line), "{line} in {no_etc}");
    }
    let xattrs = diff("user-xattrs");
    assert!(
        xattrs.contains("/x/user-file: xattrs (user.a,user.b vs )"),
        "{xattrs}"
    );
    // The WORKDIR's directories, without --workdir.
    diff("workdir-missing");
    let tar = d.path().join("workdir-missing.tar");
    let (code, out) = recipe_diff(&tar, "workdir-missing", None);
    assert_eq!(code, 1);
    assert!(out.contains("/srv/made/by/create: only in B"), "{out}");
}
