//! Who we are to a registry: credentials from the command line or the files Docker, podman
//! and skopeo keep them in (with `docker-credential-*` helpers), and the registry's
//! `WWW-Authenticate` challenge that says how to present them.
//!
//! A credential is only ever put in an `Authorization` header for the host it is for, or
//! for the token service that host names; it never appears in a message (`Debug` hides it).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password, or a token that stands for it.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: <hidden> }}",
            self.username
        )
    }
}

impl Credentials {
    /// Parses `USER[:PASS]` as skopeo's `--creds` takes it.
    pub fn parse(s: &str) -> Result<Credentials> {
        let (username, password) = s.split_once(':').unwrap_or((s, ""));
        if username.is_empty() {
            return Err(Error::usage(
                "--creds needs a user name, as in --creds USER:PASS",
            ));
        }
        Ok(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The value of a Basic `Authorization` header.
    pub(crate) fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    /// The token flow: ask `realm` for a token for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Reads the first challenge we can answer from a `WWW-Authenticate` value.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `realm="https://a/token",service="x",scope="repository:r:pull"`: keys lower-cased,
/// values unquoted (with `\"` escapes), unquoted values up to the next comma.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    out
}

/// Where credentials are looked for, in order; the first that names the registry wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFiles {
    /// containers-auth.json files: `$REGISTRY_AUTH_FILE`, or
    /// `$XDG_RUNTIME_DIR/containers/auth.json` and `~/.config/containers/auth.json`.
    pub containers: Vec<PathBuf>,
    /// Docker's `config.json`: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    pub docker: Vec<PathBuf>,
}

impl AuthFiles {
    /// The files skopeo and Docker read, from the environment.
    pub fn from_env() -> AuthFiles {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = env("HOME");
        let mut containers = Vec::new();
        if let Some(f) = env("REGISTRY_AUTH_FILE") {
            containers.push(f);
        } else {
            if let Some(run) = env("XDG_RUNTIME_DIR") {
                containers.push(run.join("containers/auth.json"));
            }
            let config =
                env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")));
            if let Some(c) = config {
                containers.push(c.join("containers/auth.json"));
            }
        }
        let docker = match env("DOCKER_CONFIG") {
            Some(d) => vec![d.join("config.json")],
            None => home
                .map(|h| vec![h.join(".docker/config.json")])
                .unwrap_or_default(),
        };
        AuthFiles { containers, docker }
    }

    /// The credentials for `repository` on `registry` (as references name it: `docker.io`,
    /// `localhost:5000`), if any file has them.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credentials>> {
        for path in self.containers.iter().chain(&self.docker) {
            let Some(file) = ConfigFile::read(path)? else {
                continue;
            };
            if let Some(c) = file.lookup(path, registry, repository)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The files we read are the user's; one we cannot parse is an error worth stopping for
/// (silently pulling anonymously would fail later with a worse message).
const FILE_LIMIT: u64 = 4 << 20;

impl ConfigFile {
    fn read(path: &Path) -> Result<Option<ConfigFile>> {
        let shown = crate::vocabulary::quote::quote_path(path);
        let raw = match std::fs::File::open(path) {
            Ok(f) => {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(f, FILE_LIMIT), &mut buf)
                    .map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
                buf
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            // A directory or an unreadable file: not ours to insist on.
            Err(_) => return Ok(None),
        };
        serde_json::from_slice(&raw).map(Some).map_err(|e| {
            Error::caused(
                ErrorKind::Usage,
                format!("{shown} is not a valid credentials file"),
                e,
            )
        })
    }

    fn lookup(&self, path: &Path, registry: &str, repository: &str) -> Result<Option<Credentials>> {
        if let Some(helper) = self.cred_helpers.get(registry) {
            return helper_get(helper, registry);
        }
        // containers-auth.json may name a repository or a namespace: the longest wins.
        let full = format!("{registry}/{repository}");
        let mut best: Option<(usize, &AuthEntry)> = None;
        for (key, entry) in &self.auths {
            let key = normalise_key(key);
            let hit = key == registry
                || (full.starts_with(&key) && full.as_bytes().get(key.len()) == Some(&b'/'))
                || (registry == crate::image::reference::DOCKER_HUB
                    && matches!(key.as_str(), "index.docker.io" | "registry-1.docker.io"));
            if hit && best.is_none_or(|(len, _)| key.len() > len) {
                best = Some((key.len(), entry));
            }
        }
        if let Some((_, entry)) = best {
            if let Some(c) = entry.credentials(path, registry)? {
                return Ok(Some(c));
            }
        }
        match &self.creds_store {
            Some(store) if !store.is_empty() => helper_get(store, registry),
            _ => Ok(None),
        }
    }
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `http://host:5000` → `host:5000`.
fn normalise_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    k.to_owned()
}

impl AuthEntry {
    fn credentials(&self, path: &Path, registry: &str) -> Result<Option<Credentials>> {
        let bad = || {
            Error::usage(format!(
                "{}: the entry for {registry} has an \"auth\" that is not base64 of USER:PASS",
                crate::vocabulary::quote::quote_path(path)
            ))
        };
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let text = String::from_utf8(raw).map_err(|_| bad())?;
            let (u, p) = text.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials {
                username: u.to_owned(),
                password: p.to_owned(),
            }));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// Asks `docker-credential-NAME get` for the registry's credentials, as Docker does (Docker
/// Hub is asked for by its historical address).
fn helper_get(name: &str, registry: &str) -> Result<Option<Credentials>> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Error::usage(format!(
            "credential helper name {name:?} is not valid"
        )));
    }
    let program = format!("docker-credential-{name}");
    let server = if registry == crate::image::reference::DOCKER_HUB {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(format!("cannot run the credential helper {program}"), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its answer, not by this.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("cannot run the credential helper {program}"), e))?;
    if !out.status.success() {
        // "credentials not found in native keychain": nothing stored for this registry.
        return Ok(None);
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|_| {
        Error::input(format!("the credential helper {program} gave an answer that is not JSON with Username and Secret"))
    })?;
    if answer.username.is_empty() || answer.username == "<token>" {
        // An identity token is for the OAuth2 flow, which we do not speak.
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/debian:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse(r#"bearer realm=http://a/t, service = "s\"x""#),
            Some(Challenge::Bearer {
                realm: "http://a/t".into(),
                service: Some("s\"x".into()),
                scope: None
            })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None);
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn credentials_are_never_shown() {
        let c = Credentials::parse("u:sekrit:with:colons").unwrap();
        assert_eq!(c.password, "sekrit:with:colons");
        assert!(!format!("{c:?}").contains("sekrit"));
        assert!(Credentials::parse(":x").is_err());
    }

    #[test]
    fn auth_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(
            &path,
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOmh1YnBhc3M="},
                "localhost:5000": {"auth": "aG9zdDpob3N0cGFzcw=="},
                "localhost:5000/team": {"username": "team", "password": "teampass"}
            }}"#,
        )
        .unwrap();
        let files = AuthFiles {
            containers: vec![path],
            docker: vec![dir.path().join("missing.json")],
        };
        let get = |reg: &str, repo: &str| files.lookup(reg, repo).unwrap().map(|c| c.username);
        assert_eq!(get("docker.io", "library/debian").as_deref(), Some("hub"));
        assert_eq!(get("localhost:5000", "x").as_deref(), Some("host"));
        assert_eq!(get("localhost:5000", "team/app").as_deref(), Some("team"));
        assert_eq!(get("localhost:5000", "teamx/app").as_deref(), Some("host"));
        assert_eq!(get("ghcr.io", "o/r"), None);
    }
}
