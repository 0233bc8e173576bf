//! The registry's HTTP API, as the distribution specification and Docker speak it: the
//! `/v2/` ping that tells the scheme and the challenge, Basic and bearer-token
//! authentication, redirects followed by hand (only http(s), a bounded number, credentials
//! only for the registry's own host), and 429/5xx or a broken connection retried with
//! backoff before a clear error.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Response, StatusCode, Uri};
use ureq::Body;

use super::auth::{Challenge, Credentials};
use super::Access;
use crate::error::{Error, ErrorKind, Result};
use crate::image::reference::{Reference, DOCKER_HUB, DOCKER_HUB_REGISTRY};
use crate::vocabulary::progress::Cancel;
use crate::vocabulary::quote::printable;

/// How many times a request is sent before its failure is final.
const ATTEMPTS: u32 = 5;
/// How many redirects one request may follow.
const MAX_REDIRECTS: usize = 5;
/// The longest wait a `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Error bodies and token answers are read up to this many bytes.
const SMALL_BODY: u64 = 1 << 20;

/// One repository on one registry, with the means to reach it.
pub(crate) struct Client {
    agent: ureq::Agent,
    /// `host[:port]` the API answers at (`registry-1.docker.io` for Docker Hub).
    host: String,
    /// How messages name the registry and repository: `localhost:5000/app`.
    pub(crate) name: String,
    repository: String,
    creds: Option<Credentials>,
    verify: bool,
    /// `https://host` or `http://host`, once the ping has told which.
    base: Mutex<Option<String>>,
    /// The `Authorization` value for the registry's host, once authenticated.
    auth: Mutex<Option<String>>,
    cancel: Cancel,
}

/// What a GET asks for.
pub(crate) struct Get<'a> {
    /// The path after `/v2/REPOSITORY/`: `manifests/latest`, `blobs/sha256:…`.
    pub path: &'a str,
    pub accept: Option<&'a str>,
    /// Ask for the bytes from here on (`Range: bytes=N-`).
    pub from: u64,
}

impl Client {
    pub(crate) fn new(reference: &Reference, access: &Access, cancel: &Cancel) -> Result<Client> {
        let host = if reference.domain == DOCKER_HUB {
            DOCKER_HUB_REGISTRY.to_owned()
        } else {
            reference.domain.clone()
        };
        let creds = match &access.creds {
            Some(c) => Some(c.clone()),
            None => access
                .auth_files
                .lookup(&reference.domain, &reference.path)?,
        };
        let tls = super::tls::config(
            &reference.domain,
            access.tls_verify,
            access.cert_dir.as_deref(),
        )?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            .user_agent(concat!("flatten/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(Client {
            agent,
            host,
            name: format!("{}/{}", reference.domain, reference.path),
            repository: reference.path.clone(),
            creds,
            verify: access.tls_verify,
            base: Mutex::new(None),
            auth: Mutex::new(None),
            cancel: cancel.clone(),
        })
    }

    /// GETs `/v2/REPOSITORY/{path}`, authenticating, following redirects and retrying as
    /// needed; the answer is 200 or 206, anything else is an error that says what it was.
    pub(crate) fn get(&self, req: &Get<'_>) -> Result<Response<Body>> {
        let base = self.base()?;
        let url = format!("{base}/v2/{}/{}", self.repository, req.path);
        let mut authenticated = false;
        loop {
            let response = self
                .retrying(true, || self.follow(&url, req))?
                .map_err(|f| f.error)?;
            let status = response.status();
            match status.as_u16() {
                200 | 206 => return Ok(response),
                401 if !authenticated => {
                    authenticated = true;
                    self.authenticate(&response)?;
                }
                401 | 403 => return Err(self.denied(status, response)),
                _ => return Err(self.refused(req.path, response)),
            }
        }
    }

    /// Sends a request until its answer is worth keeping. Answers 429 and 5xx, and (with
    /// `transport`) failures below HTTP that may pass, are tried again, [`ATTEMPTS`] times
    /// in all, pausing as the registry asks or 0.5 s doubling; after the last, the answer or
    /// failure is returned as it is. The outer error is an interruption while pausing.
    fn retrying(
        &self,
        transport: bool,
        mut send: impl FnMut() -> std::result::Result<Response<Body>, Failed>,
    ) -> Result<std::result::Result<Response<Body>, Failed>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let again = attempt < ATTEMPTS;
            match send() {
                Ok(r) if again && matches!(r.status().as_u16(), 429 | 500 | 502 | 503 | 504) => {
                    let after = retry_after(&r);
                    self.pause(attempt, after)?;
                }
                Err(f) if again && transport && f.retry => self.pause(attempt, None)?,
                answer => return Ok(answer),
            }
        }
    }

    /// One request and the redirects it leads to.
    fn follow(&self, url: &str, req: &Get<'_>) -> std::result::Result<Response<Body>, Failed> {
        let mut url = url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            self.cancel
                .check(|| format!("interrupted while talking to {}", self.host))
                .map_err(Failed::last)?;
            let uri: Uri = url.parse().map_err(|_| {
                Failed::last(Error::input(format!("{} sent a bad address", self.host)))
            })?;
            let own = uri.authority().map(|a| a.as_str()) == Some(self.host.as_str());
            let mut request = self.agent.get(&url);
            if let Some(accept) = req.accept {
                request = request.header("Accept", accept);
            }
            if req.from > 0 {
                request = request.header("Range", format!("bytes={}-", req.from));
            }
            if own {
                if let Some(auth) = self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                    request = request.header("Authorization", auth);
                }
            }
            let response = request.call().map_err(|e| self.transport(e))?;
            if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED
            {
                return Ok(response);
            }
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    Failed::last(Error::input(format!(
                        "{} redirected without a Location",
                        self.host
                    )))
                })?;
            url = self.redirect(&uri, location).map_err(Failed::last)?;
        }
        Err(Failed::last(Error::input(format!(
            "{} redirected more than {MAX_REDIRECTS} times",
            self.host
        ))))
    }

    /// Where a `Location` leads from `from`: only http(s), and never from https down to
    /// http while certificates are checked.
    fn redirect(&self, from: &Uri, location: &str) -> Result<String> {
        let shown = printable(location.get(..120).unwrap_or(location)).into_owned();
        let next = if location.starts_with('/') && !location.starts_with("//") {
            format!(
                "{}://{}{location}",
                from.scheme_str().unwrap_or("https"),
                from.authority().map_or("", |a| a.as_str())
            )
        } else {
            location.to_owned()
        };
        let uri: Uri = next.parse().map_err(|_| {
            Error::input(format!(
                "{} redirected to a bad address {shown:?}",
                self.host
            ))
        })?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if !self.verify || from.scheme_str() == Some("http") => {}
            Some("http") => {
                return Err(Error::input(format!(
                    "{} redirected from https to plain http ({shown:?}); use --tls-verify=false to allow it",
                    self.host
                )))
            }
            _ => {
                return Err(Error::input(format!(
                    "{} redirected to {shown:?}, which is not an http(s) address",
                    self.host
                )))
            }
        }
        if uri.authority().is_none() {
            return Err(Error::input(format!(
                "{} redirected to a bad address {shown:?}",
                self.host
            )));
        }
        Ok(next)
    }

    /// `https://host` or, with `--tls-verify=false`, `http://host` when https fails, learnt
    /// from the `/v2/` ping (which also brings the first challenge).
    fn base(&self) -> Result<String> {
        let mut base = self.base.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = base.as_ref() {
            return Ok(b.clone());
        }
        let schemes: &[&str] = if self.verify {
            &["https"]
        } else {
            &["https", "http"]
        };
        let mut last = None;
        for scheme in schemes {
            let url = format!("{scheme}://{}/v2/", self.host);
            // With a plain-HTTP fallback, https that cannot be reached is not tried
            // again: the registry may speak only http.
            let fallback = *scheme == "https" && schemes.len() > 1;
            let result = self
                .retrying(!fallback, || {
                    self.agent.get(&url).call().map_err(|e| self.transport(e))
                })?
                .map_err(|f| f.error);
            match result {
                Ok(r) => {
                    match r.status().as_u16() {
                        200 => {}
                        401 => {
                            *base = Some(format!("{scheme}://{}", self.host));
                            drop(base);
                            self.authenticate(&r)?;
                            return Ok(format!("{scheme}://{}", self.host));
                        }
                        s => {
                            return Err(Error::input(format!(
                                "{} is not a container registry (GET /v2/ answered {s})",
                                self.host
                            )))
                        }
                    }
                    let b = format!("{scheme}://{}", self.host);
                    *base = Some(b.clone());
                    return Ok(b);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::new(ErrorKind::Network, format!("cannot reach {}", self.host))
        }))
    }

    /// Answers a 401's challenge: Basic with our credentials, or a bearer token from the
    /// token service it names.
    fn authenticate(&self, response: &Response<Body>) -> Result<()> {
        let challenge = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(Challenge::parse);
        let value = match challenge {
            None => {
                return Err(Error::new(
                    ErrorKind::Denied,
                    format!(
                        "{} asks for authentication in a way flatten does not speak",
                        self.host
                    ),
                ))
            }
            Some(Challenge::Basic) => match &self.creds {
                Some(c) => c.basic(),
                None => return Err(self.needs_credentials()),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                format!("Bearer {}", self.token(&realm, service.as_deref(), &scope)?)
            }
        };
        *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        Ok(())
    }

    /// The token flow: `GET realm?service=…&scope=…`, with our credentials as Basic when we
    /// have them; the answer's `token` (or `access_token`).
    fn token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let realm_uri: Uri = realm.parse().map_err(|_| {
            Error::input(format!("{} names a bad token service address", self.host))
        })?;
        match realm_uri.scheme_str() {
            Some("https") => {}
            Some("http") if !self.verify || self.creds.is_none() => {}
            Some("http") => {
                return Err(Error::input(format!(
                    "{} wants credentials sent in the clear to its token service {}; use --tls-verify=false to allow it",
                    self.host,
                    printable(realm)
                )))
            }
            _ => return Err(Error::input(format!("{} names a token service that is not http(s)", self.host))),
        }
        let mut url = realm.to_owned();
        url.push(if realm.contains('?') { '&' } else { '?' });
        if let Some(s) = service {
            url.push_str(&format!("service={}&", query_escape(s)));
        }
        url.push_str(&format!("scope={}", query_escape(scope)));
        let mut response = self
            .retrying(true, || {
                let mut request = self.agent.get(&url);
                if let Some(c) = &self.creds {
                    request = request.header("Authorization", c.basic());
                }
                request.call().map_err(|e| self.transport(e))
            })?
            .map_err(|f| {
                f.error
                    .context(format!("cannot get a token for {}", self.name))
            })?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 if self.creds.is_some() => {
                return Err(Error::new(
                    ErrorKind::Denied,
                    format!(
                        "the token service of {} refused the credentials of user {:?}",
                        self.host,
                        self.creds
                            .as_ref()
                            .map(|c| c.username.as_str())
                            .unwrap_or_default()
                    ),
                ))
            }
            401 | 403 => return Err(self.needs_credentials()),
            s => {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!("the token service of {} answered {s}", self.host),
                ))
            }
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let body = small_body(&mut response)?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            Error::caused(
                ErrorKind::Input,
                format!("the token service of {} answered with bad JSON", self.host),
                e,
            )
        })?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                Error::input(format!(
                    "the token service of {} gave no usable token",
                    self.host
                ))
            })
    }

    fn needs_credentials(&self) -> Error {
        Error::new(
            ErrorKind::Denied,
            format!(
                "{} needs credentials for {} (give --creds USER:PASS, or log in with docker login or podman login)",
                self.host, self.repository
            ),
        )
    }

    fn denied(&self, status: StatusCode, mut response: Response<Body>) -> Error {
        let said = registry_message(&small_body(&mut response).unwrap_or_default());
        let what = match (&self.creds, status.as_u16()) {
            (Some(c), 401) => format!(
                "{} refused the credentials of user {:?} for {}",
                self.host, c.username, self.repository
            ),
            (None, 401) => return self.needs_credentials(),
            (_, _) => format!("{} denies access to {}", self.host, self.repository),
        };
        Error::new(ErrorKind::Denied, format!("{what}{said}"))
    }

    /// An answer that is neither the content nor something to retry.
    fn refused(&self, path: &str, mut response: Response<Body>) -> Error {
        let status = response.status().as_u16();
        let said = registry_message(&small_body(&mut response).unwrap_or_default());
        let what = if path.starts_with("manifests/") {
            "manifest"
        } else {
            "blob"
        };
        let reference = path.split_once('/').map_or(path, |(_, r)| r);
        let reference = if what == "blob" {
            crate::error::short_digest(reference)
        } else {
            reference
        };
        match status {
            404 if what == "manifest" => Error::input(format!(
                "{} has no image {}{said}",
                self.name,
                printable(reference)
            )),
            404 => Error::input(format!(
                "{} has no blob {}{said}",
                self.name,
                printable(reference)
            )),
            429 | 500..=599 => Error::new(
                ErrorKind::Network,
                format!(
                    "{} kept failing ({status}) for {what} {} after {ATTEMPTS} attempts{said}",
                    self.host,
                    printable(reference)
                ),
            ),
            _ => Error::input(format!(
                "{} answered {status} for {what} {}{said}",
                self.host,
                printable(reference)
            )),
        }
    }

    /// A failure below HTTP: connection refused, reset, timed out, TLS.
    fn transport(&self, e: ureq::Error) -> Failed {
        let retry = !matches!(
            e,
            ureq::Error::HostNotFound
                | ureq::Error::ConnectionFailed
                | ureq::Error::Tls(_)
                | ureq::Error::BadUri(_)
        ) && !matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused);
        let text = e.to_string();
        let text = text.strip_prefix("io: ").unwrap_or(&text);
        let why = match &e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused".to_owned()
            }
            ureq::Error::HostNotFound => "host not found".to_owned(),
            ureq::Error::ConnectionFailed => "connection failed".to_owned(),
            _ if text.contains("invalid peer certificate") => {
                let detail = text.rsplit(": ").next().unwrap_or_default();
                return Failed::last(Error::new(
                    ErrorKind::Network,
                    format!(
                        "the certificate of {host} is not trusted ({}): put its CA in \
                         /etc/containers/certs.d/{host}/ca.crt, or give --cert-dir DIR",
                        printable(detail),
                        host = self.host,
                    ),
                ));
            }
            _ if text.contains("InvalidContentType") => {
                return Failed::last(Error::new(
                    ErrorKind::Network,
                    format!(
                        "{} does not answer in TLS (a plain-HTTP registry needs --tls-verify=false)",
                        self.host
                    ),
                ));
            }
            _ => text.to_owned(),
        };
        Failed {
            retry,
            error: Error::new(
                ErrorKind::Network,
                format!("cannot reach {}: {}", self.host, printable(&why)),
            ),
        }
    }

    /// Waits before attempt `attempt + 1`: as the registry asked, else 0.5 s doubling.
    pub(crate) fn pause(&self, attempt: u32, after: Option<Duration>) -> Result<()> {
        let backoff = Duration::from_millis(500 << (attempt - 1).min(4));
        let wait = after.map_or(backoff, |a| a.min(MAX_RETRY_AFTER));
        let until = std::time::Instant::now() + wait;
        while std::time::Instant::now() < until {
            self.cancel
                .check(|| format!("interrupted while waiting to retry {}", self.host))?;
            std::thread::sleep(Duration::from_millis(50).min(until - std::time::Instant::now()));
        }
        Ok(())
    }
}

/// A request's failure, and whether sending it again may help.
struct Failed {
    retry: bool,
    error: Error,
}

impl Failed {
    fn last(error: Error) -> Failed {
        Failed {
            retry: false,
            error,
        }
    }
}

fn retry_after(r: &Response<Body>) -> Option<Duration> {
    let v = r.headers().get("retry-after")?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn small_body(r: &mut Response<Body>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.body_mut()
        .as_reader()
        .take(SMALL_BODY)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("cannot read the registry's answer", e))?;
    Ok(buf)
}

/// `: manifest unknown` from a registry's `{"errors":[{"code":…,"message":…}]}`.
fn registry_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<One>,
    }
    #[derive(serde::Deserialize)]
    struct One {
        #[serde(default)]
        message: String,
        #[serde(default)]
        code: String,
    }
    let Ok(e) = serde_json::from_slice::<Errors>(body) else {
        return String::new();
    };
    let Some(first) = e.errors.first() else {
        return String::new();
    };
    let text = if first.message.is_empty() {
        &first.code
    } else {
        &first.message
    };
    let text: String = text.chars().take(200).collect();
    format!(" (the registry says: {})", printable(&text))
}

/// Percent-encodes a query value.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
