//! `flatten inspect`: the values in the test images' configs, every layer read and checked,
//! the history lined up with the layers.

mod common;

use common::*;

fn inspect_json(args: &[&str]) -> serde_json::Value {
    let out = ok(bin().arg("inspect").arg("--json").args(args));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn inspect_reports_the_config_of_a_docker_built_image() {
    let j = inspect_json(&[
        "--image",
        "flatten-test/config:latest",
        &testdata("docker/cases.tar"),
    ]);
    let c = &j["config"];
    assert_eq!(
        j["names"],
        serde_json::json!(["flatten-test/config:latest"])
    );
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["echo hello"]));
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["User"], "1234:5678");
    assert!(c["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("GREETING=hello world")));
    assert!(
        c["ExposedPorts"].get("8080/tcp").is_some() && c["ExposedPorts"].get("53/udp").is_some()
    );
    assert_eq!(c["Labels"]["org.example.second"], "two words");
    let layers = j["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4);
    assert!(layers.iter().all(|l| l["verified"] == true));
    assert_eq!(
        layers[3]["whiteouts"], 1,
        "the last layer removes /bin/busybox"
    );
    // History: steps that made no layer (LABEL, ENV, EXPOSE, …) have none; the others are
    // the layers in order.
    let steps: Vec<serde_json::Value> = j["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["layer"].clone())
        .collect();
    let made: Vec<u64> = steps.iter().filter_map(serde_json::Value::as_u64).collect();
    assert_eq!(made, [1, 2, 3, 4], "numbered from 1 at the bottom");
    assert!(steps.iter().filter(|s| s.is_null()).count() >= 5);
}

#[test]
fn inspect_reads_compressed_layers_and_counts_entries_and_whiteouts() {
    let d = tmp();
    let mut b = Blobs::default();
    let l0 = tar(&[E::dir("a"), E::file("a/x", b"x"), E::file("a/y", b"y")]);
    let l1 = tar(&[
        E::whiteout("a/.wh.x"),
        E::whiteout("a/.wh..wh..opq"),
        E::file("z", b""),
    ]);
    let m = b.image(&[gzip(&l0), zstd(&l1)], "amd64");
    write_dir(d.path(), &b.layout(vec![m]));
    let j = inspect_json(&[d.path().to_str().unwrap()]);
    let layers = j["layers"].as_array().unwrap();
    assert_eq!(
        (
            layers[0]["compression"].as_str(),
            layers[1]["compression"].as_str()
        ),
        (Some("gzip"), Some("zstd"))
    );
    assert_eq!(
        (
            layers[0]["entries"].as_u64(),
            layers[0]["whiteouts"].as_u64()
        ),
        (Some(3), Some(0))
    );
    assert_eq!(
        (
            layers[1]["entries"].as_u64(),
            layers[1]["whiteouts"].as_u64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(layers[0]["size"].as_u64(), Some(l0.len() as u64));
    assert_eq!(
        layers[0]["diff_id"],
        flatten::digest::sha256_of(&l0).to_string()
    );
    assert_eq!(j["config"]["WorkingDir"], "/w");
}

#[test]
fn inspect_says_which_layer_failed_to_verify() {
    let d = tmp();
    let mut b = Blobs::default();
    let l0 = tar(&[E::file("f", b"abc")]);
    let m = b.image(std::slice::from_ref(&l0), "amd64");
    let mut files = b.layout(vec![m]);
    let hex = flatten::digest::sha256_of(&l0).hex().to_owned();
    let f = files.iter_mut().find(|(n, _)| n.ends_with(&hex)).unwrap();
    f.1[512] = b'X';
    write_dir(d.path(), &files);
    // The report is printed whole, and the exit code says the image is bad (issue 12).
    let out = bin()
        .args(["inspect", "--json"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("flatten: layer 1: ")
            && stderr.contains("mismatch")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["layers"][0]["verified"], false);
    assert_eq!(j["layers"][0]["number"], 1);
    assert!(j["layers"][0]["problem"]
        .as_str()
        .unwrap()
        .contains("mismatch"));
    // The text form says it too.
    let out = bin().arg("inspect").arg(d.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" NO ") && text.contains("mismatch"), "{text}");
}
