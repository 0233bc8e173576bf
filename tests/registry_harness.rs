//! The registry harness itself (tests/registry/harness.py): every server answers as the
//! `docker://` tests expect. Plain HTTP/1.1 over `TcpStream`, no client library.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::registry::registries;

/// `GET path` on `addr`: (status, lower-cased head, body).
fn get(addr: &str, path: &str, headers: &[&str]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{addr}{path}: no HTTP head in {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, raw[end + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn every_server_answers() {
    let Some(r) = registries() else { return };

    let (status, _, _) = get(&r.plain, "/v2/", &[]);
    assert_eq!(status, 200, "plain /v2/");

    let (status, head, _) = get(&r.token, "/v2/", &[]);
    assert_eq!(status, 401, "token /v2/");
    let challenge = header(&head, "www-authenticate").expect("token /v2/ has no challenge");
    assert!(
        challenge.starts_with(&format!("bearer realm=\"{}/token\"", r.token_service)),
        "{challenge}"
    );

    // `basic` speaks TLS only: Go answers plain HTTP with a 400.
    let (status, _, _) = get(&r.basic, "/v2/", &[]);
    assert_eq!(status, 400, "plain HTTP to basic's TLS port");

    assert!(
        TcpStream::connect(&r.down).is_err(),
        "something listens on down"
    );

    let (status, _, body) = get(&r.proxy, "/v2/", &[]);
    assert_eq!((status, &body[..]), (200, &b"{}"[..]), "proxy /v2/");

    let (status, head, body) = get(
        &r.proxy,
        "/v2/ok/whiteout-file/manifests/latest",
        &["Accept: application/vnd.oci.image.manifest.v1+json"],
    );
    assert_eq!(status, 200, "{head}");
    let digest = r.manifest("plain/whiteout-file:latest");
    assert_eq!(header(&head, "docker-content-digest"), Some(digest));
    assert_eq!(flatten::digest::sha256_of(&body).to_string(), digest);
    let log = std::fs::read_to_string(&r.proxy_log).unwrap();
    assert!(log.contains("GET /v2/ok/whiteout-file/manifests/latest auth=no range=-"));

    for key in [
        "plain/whiteout-file:latest",
        "plain/zstd/whiteout-file:latest",
        "plain/multi:latest",
        "basic/whiteout-file:latest",
        "token/public/whiteout-file:latest",
        "token/private/whiteout-file:latest",
    ] {
        assert!(r.manifest(key).starts_with("sha256:"), "{key}");
    }
}
