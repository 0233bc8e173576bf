//! Image references as Docker reads them (`debian:12`, `ghcr.io/o/r@sha256:…`,
//! `localhost:5000/x`), checked against the distribution project's grammar and normalised
//! the way Docker normalises them: no registry means Docker Hub, a one-part name there
//! means `library/`, no tag and no digest means `latest`.
//!
//! Groundwork for `docker://` (issue 13): a reference is checked before any of it names a
//! host, a path on a registry or a file in a cache.

use std::fmt;

use crate::error::{Error, Result};

/// Docker Hub, as references name it.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// The longest repository path the grammar allows.
const MAX_NAME: usize = 255;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry: `docker.io`, `ghcr.io`, `localhost:5000`.
    pub domain: String,
    /// The repository path on it: `library/debian`, `owner/repo`.
    pub path: String,
    /// The tag; `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:…`), when given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `s` as Docker does (`docker pull s`).
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| Error::usage(format!("invalid image reference \"{s}\": {why}"));
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(parse_digest(d).map_err(|w| bad(&w))?)),
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/' (a port comes before).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !valid_tag(tag) {
                    return Err(bad(
                        "a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with . or -",
                    ));
                }
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        let (domain, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                if !valid_domain(first) {
                    return Err(bad("the registry is not a host name with an optional port"));
                }
                (first.to_owned(), path.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        let domain = match domain.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
            _ => domain,
        };
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.len() > MAX_NAME {
            return Err(bad("the repository name is longer than 255 characters"));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("the repository name must be lowercase"));
        }
        if !path.split('/').all(valid_component) {
            return Err(bad(
                "each part of the repository name is lowercase letters and digits, separated by ., _, __ or dashes",
            ));
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_owned()),
            _ => tag,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The host (and port) to ask: Docker Hub's API lives apart from its name.
    pub fn registry(&self) -> &str {
        if self.domain == DOCKER_HUB {
            DOCKER_HUB_REGISTRY
        } else {
            &self.domain
        }
    }

    /// What to ask the registry for: the digest if given, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

/// `docker.io/library/debian:12`, `ghcr.io/o/r:t@sha256:…`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `[a-z0-9]+` parts joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = sep == b"." || sep == b"_" || sep == b"__" || sep.iter().all(|&x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || b"_.-".contains(&x))
}

/// A host name (labels of letters, digits and inner dashes) or IPv6 in brackets, with an
/// optional port.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|x| x.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

/// `algorithm:hex`, checked before it names anything: sha256 and sha512 at their lengths,
/// lowercase hex.
fn parse_digest(d: &str) -> std::result::Result<String, String> {
    let (algo, hex) = d
        .split_once(':')
        .ok_or_else(|| "a digest is algorithm:hex".to_owned())?;
    let want = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algo}")),
    };
    if hex.len() != want
        || !hex
            .bytes()
            .all(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(&x))
    {
        return Err(format!("a {algo} digest is {want} lowercase hex digits"));
    }
    Ok(d.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_names_are_normalised_as_docker_does() {
        assert_eq!(norm("debian"), "docker.io/library/debian:latest");
        assert_eq!(norm("debian:12"), "docker.io/library/debian:12");
        assert_eq!(norm("library/debian"), "docker.io/library/debian:latest");
        assert_eq!(norm("docker.io/debian"), "docker.io/library/debian:latest");
        assert_eq!(
            norm("index.docker.io/debian"),
            "docker.io/library/debian:latest"
        );
        assert_eq!(norm("bitnami/redis:7.2"), "docker.io/bitnami/redis:7.2");
        let r = Reference::parse("debian").unwrap();
        assert_eq!(
            (r.registry(), r.manifest_ref()),
            ("registry-1.docker.io", "latest")
        );
    }

    #[test]
    fn registries_ports_tags_and_digests() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = Reference::parse(&format!("localhost:5000/a/b.c__d-e:v1.0@{d}")).unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.path, "a/b.c__d-e");
        assert_eq!(r.tag.as_deref(), Some("v1.0"));
        assert_eq!(r.manifest_ref(), d);
        let r = Reference::parse(&format!("ghcr.io/o/r@{d}")).unwrap();
        assert_eq!((r.registry(), r.tag.as_deref()), ("ghcr.io", None));
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("[::1]:5000/x:t"), "[::1]:5000/x:t");
        assert_eq!(
            norm("Registry.Example.com/x"),
            "Registry.Example.com/x:latest"
        );
    }

    #[test]
    fn what_the_grammar_refuses() {
        for bad in [
            "",
            "Debian",
            "debian:",
            "debian:-x",
            "a//b",
            "a/b/",
            "-a",
            "a--",
            "a..b",
            "a___b",
            "debian@sha256:abc",
            "debian@md5:00112233445566778899aabbccddeeff",
            &format!("debian@sha256:{}", "AB".repeat(32)),
            "host:port/x",
            "ex ample.com/x",
            &"a".repeat(256),
            &format!("x:{}", "t".repeat(129)),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = Reference::parse("Debian").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Usage);
        assert!(e.to_string().contains("must be lowercase"), "{e}");
    }
}
