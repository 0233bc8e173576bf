//! Every gzip form a layer may come in, read alike by both inflaters (zlib-rs by default,
//! the system's ISA-L with `--features isal`; CI runs this file under both): members one
//! after another, every optional header field, and each way a stream can lie or end badly.

mod common;

use std::io::Write;

use common::*;

/// A layer tar with enough content to span several deflate blocks.
fn layer() -> Vec<u8> {
    let text: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {i} of a file that compresses\n").into_bytes())
        .collect();
    tar(&[
        E::dir("d"),
        E::file("d/text", &text),
        E::file("d/small", b"x"),
    ])
}

/// Raw deflate of `data`.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// One gzip member by hand: header with `flags` and the fields they announce, the deflate
/// data, then CRC-32 and ISIZE as given.
fn member(data: &[u8], flags: u8, crc: u32, isize: u32) -> Vec<u8> {
    let mut m = vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3];
    if flags & 4 != 0 {
        m.extend_from_slice(&[6, 0, b'A', b'B', 2, 0, 1, 2]); // FEXTRA: one subfield
    }
    if flags & 8 != 0 {
        m.extend_from_slice(b"layer.tar\0"); // FNAME
    }
    if flags & 16 != 0 {
        m.extend_from_slice(b"made by hand\0"); // FCOMMENT
    }
    if flags & 2 != 0 {
        let hcrc = crc32(&m) as u16;
        m.extend_from_slice(&hcrc.to_le_bytes()); // FHCRC
    }
    m.extend_from_slice(&deflate(data));
    m.extend_from_slice(&crc.to_le_bytes());
    m.extend_from_slice(&isize.to_le_bytes());
    m
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

fn honest(data: &[u8], flags: u8) -> Vec<u8> {
    member(data, flags, crc32(data), data.len() as u32)
}

/// Flattens an image whose one layer is `blob` (its diff_id that of `tar`, so that only the
/// gzip form is on trial): the tree's snapshot, or the error line.
fn flatten_blob(blob: Vec<u8>, tar: &[u8]) -> Result<flatten::snapshot::Snapshot, String> {
    let d = tmp();
    let mut b = Blobs::default();
    let m = b.image(&[tar.to_vec()], "amd64");
    // Swap the plain layer for the gzip blob: a new descriptor, the same diff_id.
    let hex = m["digest"].as_str().unwrap()[7..].to_owned();
    let mut manifest: serde_json::Value = serde_json::from_slice(&b.0[&hex]).unwrap();
    manifest["layers"][0] = b.add("application/vnd.oci.image.layer.v1.tar+gzip", blob);
    let m = b.add(
        "application/vnd.oci.image.manifest.v1+json",
        serde_json::to_vec(&manifest).unwrap(),
    );
    write_dir(d.path(), &b.layout(vec![m]));
    let target = d.path().join("rootfs");
    let out = bin().arg("-q").arg(d.path()).arg(&target).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    if out.status.success() {
        Ok(flatten::snapshot::Snapshot::from_dir(&target).unwrap())
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        Err(stderr)
    }
}

fn truth(tar: &[u8]) -> flatten::snapshot::Snapshot {
    flatten_blob(honest(tar, 0), tar).unwrap()
}

#[test]
fn every_optional_header_field_is_read() {
    let tar = layer();
    let want = truth(&tar);
    for flags in [4, 8, 16, 2, 4 | 8 | 16 | 2] {
        let got = flatten_blob(honest(&tar, flags), &tar).unwrap();
        assert_same(&want, &got, flatten::snapshot::Mtime::Exact);
    }
}

#[test]
fn members_one_after_another_are_one_stream() {
    let tar = layer();
    let want = truth(&tar);
    // Split at an odd place, not at an entry boundary; and one empty member in between.
    let (a, b) = tar.split_at(777_777);
    let blob = [honest(a, 8), honest(b"", 0), honest(b, 0)].concat();
    let got = flatten_blob(blob, &tar).unwrap();
    assert_same(&want, &got, flatten::snapshot::Mtime::Exact);
}

#[test]
fn a_stream_that_lies_or_ends_badly_is_refused() {
    let tar = layer();
    let good = honest(&tar, 0);
    let n = good.len();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "ISIZE that lies",
            member(&tar, 0, crc32(&tar), tar.len() as u32 + 1),
        ),
        (
            "CRC that lies",
            member(&tar, 0, crc32(&tar) ^ 1, tar.len() as u32),
        ),
        (
            "garbage after the member",
            [good.clone(), b"garbage!".to_vec()].concat(),
        ),
        (
            "zeros after the member",
            [good.clone(), vec![0; 1024]].concat(),
        ),
        ("cut inside the deflate data", good[..n / 2].to_vec()),
        ("cut inside the trailer", good[..n - 3].to_vec()),
        (
            "a second member cut short",
            [good.clone(), good[..100].to_vec()].concat(),
        ),
    ];
    for (why, blob) in cases {
        match flatten_blob(blob, &tar) {
            Ok(_) => panic!("{why}: accepted"),
            Err(line) => assert!(line.starts_with("flatten: layer 1"), "{why}: {line}"),
        }
    }
}

#[test]
fn the_version_says_which_inflater() {
    let out = ok(bin().arg("--version"));
    let text = String::from_utf8(out.stdout).unwrap();
    let want = if cfg!(feature = "isal") {
        "(gzip: ISA-L"
    } else {
        "(gzip: zlib-rs"
    };
    assert!(text.contains(want), "{text}");
}
