//! Issue 12: as a person meets the tool. Every message is one line of printable text, names
//! are quoted as GNU tar quotes them, JSON keeps every name exactly, and exit codes mean one
//! thing each. Each test runs the binary and checks stdout, stderr and the exit code.

mod common;

use common::*;

/// Runs the binary; (exit code, stdout, stderr).
fn run_bin(args: &[&std::ffi::OsStr]) -> (i32, Vec<u8>, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    )
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// One line, ending in a newline, with nothing a terminal would act on.
fn assert_one_printable_line(stderr: &str) {
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    let line = &stderr[..stderr.len() - 1];
    assert!(
        !line.chars().any(|c| c.is_control()),
        "a control character in {line:?}"
    );
}

/// Names that a terminal or a line-based reader would take for something else.
const NEWLINE: &[u8] = b"two\nlines";
const ESCAPE: &[u8] = b"\x1b[31mred";
const NOT_UTF8_A: &[u8] = b"latin1-\xe9";
const NOT_UTF8_B: &[u8] = b"latin1-\xe8";

fn odd_names_image(dir: &std::path::Path) -> std::path::PathBuf {
    let layer = tar(&[
        E::file("x", b"").raw_name(NEWLINE),
        E::file("x", b"").raw_name(ESCAPE),
        E::file("x", b"1").raw_name(NOT_UTF8_A),
        E::file("x", b"22").raw_name(NOT_UTF8_B),
        E::symlink("link", "\x1b]0;title\x07"),
    ]);
    docker_archive(dir, "odd.tar", &[layer])
}

#[test]
fn ls_quotes_names_as_gnu_tar_does_one_line_each() {
    let d = tmp();
    let image = odd_names_image(d.path());
    let (code, stdout, stderr) = run_bin(&[os("ls"), image.as_os_str()]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    let text = String::from_utf8(stdout).expect("ls prints UTF-8");
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split_once(' ').unwrap().1)
        .map(|l| l.rsplit_once("  [layer").unwrap().0)
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert!(names.contains(&"two\\nlines"), "{text}");
    assert!(names.contains(&"\\033[31mred"), "{text}");
    assert!(names.contains(&"latin1-\\351"), "{text}");
    assert!(names.contains(&"latin1-\\350"), "{text}");
    assert_eq!(text.lines().count(), 5, "five names, a line each: {text}");
    assert!(text.contains("link -> \\033]0;title\\a"), "{text}");
    assert!(!text.contains('\x1b'));
}

#[test]
fn ls_json_keeps_every_name_exactly() {
    let d = tmp();
    let image = odd_names_image(d.path());
    let (code, stdout, _) = run_bin(&[os("ls"), os("--json"), image.as_os_str()]);
    assert_eq!(code, 0);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&stdout).unwrap();
    let exact = |e: &serde_json::Value| -> Vec<u8> {
        use base64::Engine;
        match e.get("path_bytes") {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b.as_str().unwrap())
                .unwrap(),
            None => e["path"].as_str().unwrap().as_bytes().to_vec(),
        }
    };
    let got: Vec<Vec<u8>> = listed.iter().map(exact).collect();
    for want in [NEWLINE, ESCAPE, NOT_UTF8_A, NOT_UTF8_B] {
        let want = [b"/", want].concat();
        assert!(
            got.contains(&want),
            "{:?} missing",
            String::from_utf8_lossy(&want)
        );
    }
    // A UTF-8 name is the string itself, whatever it holds; only others carry bytes.
    let newline = listed.iter().find(|e| e["path"] == "/two\nlines").unwrap();
    assert!(newline.get("path_bytes").is_none());
    let a = listed
        .iter()
        .find(|e| e["path"] == "/latin1-\\351")
        .unwrap();
    assert!(a.get("path_bytes").is_some());
}

#[test]
fn an_error_about_a_hostile_name_is_one_printable_line() {
    let d = tmp();
    let layer = tar(&[E::file("x", b"").raw_name(b"\x1b[2J\x1b[31m/../../evil\nname")]);
    let image = docker_archive(d.path(), "evil.tar", &[layer]);
    let target = d.path().join("out");
    let (code, stdout, stderr) = run_bin(&[image.as_os_str(), target.as_os_str()]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_one_printable_line(&stderr);
    assert!(
        stderr.starts_with("flatten: layer 1 (sha256:")
            && stderr.contains("entry \"\\033[2J\\033[31m/../../evil\\nname\"")
            && stderr.contains("'..'"),
        "{stderr}"
    );
}

#[test]
fn random_bytes_are_refused_in_one_printable_line() {
    let d = tmp();
    let junk = d.path().join("junk.bin");
    // Bytes that hold every control character, as a file of random data would.
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 256) as u8).collect();
    std::fs::write(&junk, &bytes).unwrap();
    let (code, _, stderr) = run_bin(&[junk.as_os_str(), d.path().join("out").as_os_str()]);
    assert_eq!(code, 1, "{stderr}");
    assert_one_printable_line(&stderr);
}

#[test]
fn diff_lines_quote_names() {
    let d = tmp();
    let a = d.path().join("a");
    let b = d.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    use std::os::unix::ffi::OsStrExt;
    std::fs::write(a.join(std::ffi::OsStr::from_bytes(NEWLINE)), b"").unwrap();
    std::fs::write(a.join(std::ffi::OsStr::from_bytes(NOT_UTF8_A)), b"").unwrap();
    let (code, stdout, stderr) = run_bin(&[os("diff"), a.as_os_str(), b.as_os_str()]);
    assert_eq!((code, stderr.as_str()), (1, ""));
    assert_eq!(
        String::from_utf8(stdout).unwrap(),
        "/latin1-\\351: only in A (file)\n/two\\nlines: only in A (file)\n"
    );
}

#[test]
fn inspect_exits_1_when_a_digest_fails() {
    // tests/inspect.rs::inspect_says_which_layer_failed_to_verify checks the report; here,
    // that the exit code is the one flattening gives for the same image.
    let d = tmp();
    let image = docker_archive(d.path(), "x.tar", &[tar(&[E::file("f", b"abc")])]);
    // Alter the file's content in place: the tar stays valid, its digest does not.
    let mut bytes = std::fs::read(&image).unwrap();
    let at = bytes.windows(3).position(|w| w == b"abc").unwrap();
    bytes[at] = b'X';
    std::fs::write(&image, &bytes).unwrap();
    let (code, stdout, stderr) = run_bin(&[os("inspect"), image.as_os_str()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(String::from_utf8_lossy(&stdout).contains(" NO "));
    assert!(
        stderr.starts_with("flatten: layer 1: diff_id mismatch: expected sha256:"),
        "the line flattening gives: {stderr}"
    );
    assert_one_printable_line(&stderr);
    let (code, _, _) = run_bin(&[image.as_os_str(), d.path().join("out").as_os_str()]);
    assert_eq!(code, 1);
}

#[test]
fn choosing_what_is_not_there_is_a_usage_error() {
    let d = tmp();
    let image = docker_archive(d.path(), "x.tar", &[tar(&[E::file("f", b"")])]);
    let out = d.path().join("out");
    let (code, _, stderr) = run_bin(&[
        os("--image"),
        os("no/such:tag"),
        image.as_os_str(),
        out.as_os_str(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_one_printable_line(&stderr);
    let mut b = Blobs::default();
    let m = b.image(&[tar(&[E::file("f", b"")])], "amd64");
    let m = with_platform(m, "linux", "amd64", None);
    let layout = d.path().join("layout");
    write_dir(&layout, &b.layout(vec![m]));
    let (code, _, stderr) = run_bin(&[
        os("--platform"),
        os("linux/s390x"),
        layout.as_os_str(),
        out.as_os_str(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no manifest for platform linux/s390x"),
        "{stderr}"
    );
    let (code, _, stderr) = run_bin(&[os("containers-storage:alpine"), out.as_os_str()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("unknown transport \"containers-storage:\""),
        "{stderr}"
    );
}

#[test]
fn completions_and_a_man_page() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, stdout, stderr) = run_bin(&[os("completions"), os(shell)]);
        assert_eq!((code, stderr.as_str()), (0, ""), "{shell}");
        let text = String::from_utf8(stdout).unwrap();
        assert!(
            text.contains("flatten") && text.contains("inspect"),
            "{shell}"
        );
    }
    let (code, stdout, _) = run_bin(&[os("man")]);
    assert_eq!(code, 0);
    let roff = String::from_utf8(stdout).unwrap();
    assert!(roff.contains(".TH flatten 1") && roff.contains("docker export"));
}

#[test]
fn usage_errors_name_what_is_wrong() {
    let (code, stdout, stderr) = run_bin(&[os("img.tar"), os("rootfs"), os("extra")]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert_eq!(
        stderr,
        "flatten: unexpected argument 'extra': give IMAGE and TARGET only (see --help)\n"
    );
    let (code, _, stderr) = run_bin(&[os("--bogus"), os("img.tar"), os("rootfs")]);
    assert_eq!(code, 2);
    assert_one_printable_line(&stderr);
    assert!(stderr.contains("'--bogus'"), "{stderr}");
    // Help about help is help.
    let (code, stdout, _) = run_bin(&[os("help"), os("--help")]);
    assert_eq!(code, 0);
    assert!(String::from_utf8(stdout)
        .unwrap()
        .contains("Usage: flatten"));
}

#[test]
fn a_file_named_like_a_subcommand_is_flattened_after_double_dash() {
    let d = tmp();
    let image = docker_archive(d.path(), "ls", &[tar(&[E::file("f", b"x")])]);
    let out = bin()
        .current_dir(d.path())
        .args(["-q", "--", "ls", "rootfs"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(d.path().join("rootfs/f")).unwrap(), b"x");
    assert!(image.exists());
}

#[test]
fn diff_json_gives_each_difference_with_exact_names() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let d = tmp();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let odd = std::ffi::OsStr::from_bytes(NOT_UTF8_A);
    std::fs::write(a.join(odd), b"").unwrap();
    std::fs::write(a.join("m"), b"").unwrap();
    std::fs::write(b.join("m"), b"").unwrap();
    std::fs::set_permissions(a.join("m"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(b.join("m"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink("t\nx", a.join("s")).unwrap();
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(NOT_UTF8_B), b.join("s")).unwrap();
    let (code, stdout, stderr) = run_bin(&[
        os("diff"),
        os("--json"),
        os("--mtime"),
        os("ignore"),
        a.as_os_str(),
        b.as_os_str(),
    ]);
    assert_eq!((code, stderr.as_str()), (1, ""));
    let got: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(
        got,
        serde_json::json!([
            {"path": "/latin1-\\351", "path_bytes": "L2xhdGluMS3p", "what": "only_in",
             "side": "A", "type": "file"},
            {"path": "/m", "what": "mode", "a": "0600", "b": "0644"},
            {"path": "/s", "what": "symlink_target", "a": "t\nx",
             "b": "latin1-\\350", "b_bytes": "bGF0aW4xLeg="},
        ])
    );
}

#[test]
fn inspect_shows_the_configs_strings_printable() {
    let d = tmp();
    let mut b = Blobs::default();
    let layer = tar(&[E::file("f", b"")]);
    let m = b.image(std::slice::from_ref(&layer), "amd64");
    // The config with hostile strings.
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["A=\u{1b}[2Jcleared"], "Labels": {"l": "two\nlines"}},
        "rootfs": {"type": "layers", "diff_ids": [flatten::digest::sha256_of(&layer).to_string()]},
        "history": [{"created_by": "RUN printf '\u{1b}]0;title\u{7}'"}],
    });
    let m = b.with_config(&m, config);
    write_dir(d.path(), &b.layout(vec![m]));
    let (code, stdout, stderr) = run_bin(&[os("inspect"), d.path().as_os_str()]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    let text = String::from_utf8(stdout).unwrap();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains("env:          A=\\033[2Jcleared"), "{text}");
    assert!(text.contains("label:        l=two\\nlines"), "{text}");
}
