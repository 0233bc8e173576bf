//! TLS as Docker and skopeo set it up: the system's roots, plus the CAs and client
//! certificates a registry has in `certs.d/HOST:PORT/` (`*.crt` are CAs, `*.cert` with the
//! `*.key` of the same name a client certificate), or in the one directory `--cert-dir`
//! names. Certificates are checked unless the user said `--tls-verify=false`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::error::{Error, Result};

/// The directories Docker and containers/image look in for a registry's certificates.
pub fn default_cert_dirs(registry: &str) -> Vec<PathBuf> {
    ["/etc/containers/certs.d", "/etc/docker/certs.d"]
        .iter()
        .map(|d| Path::new(d).join(registry))
        .collect()
}

/// The TLS settings for `registry`: `cert_dir` replaces the default directories when given.
pub fn config(registry: &str, verify: bool, cert_dir: Option<&Path>) -> Result<TlsConfig> {
    let dirs = match cert_dir {
        Some(d) => vec![d.to_path_buf()],
        None => default_cert_dirs(registry),
    };
    let mut roots: Vec<Certificate<'static>> = Vec::new();
    let mut client = None;
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            if cert_dir.is_some() {
                return Err(Error::usage(format!(
                    "--cert-dir {}: not a readable directory",
                    crate::vocabulary::quote::quote_path(dir)
                )));
            }
            continue;
        };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for path in names {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => roots.extend(certificates(&path)?),
                Some("cert") if client.is_none() => {
                    let key = path.with_extension("key");
                    let chain = certificates(&path)?;
                    let key = private_key(&key)?;
                    client = Some(ClientCert::new_with_certs(&chain, key));
                }
                _ => {}
            }
        }
    }
    let native = rustls_native_certs::load_native_certs();
    if native.certs.is_empty() && roots.is_empty() && verify {
        return Err(Error::usage(
            "no trusted CA certificates found on this system (install ca-certificates, or set SSL_CERT_FILE)",
        ));
    }
    roots.extend(
        native
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
    );
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .client_cert(client)
        .disable_verification(!verify)
        .build())
}

fn read_pem(path: &Path) -> Result<Vec<PemItem<'static>>> {
    let shown = crate::vocabulary::quote::quote_path(path);
    let raw = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
    ureq::tls::parse_pem(&raw)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::usage(format!("{shown} is not PEM: {e}")))
}

fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let certs: Vec<_> = read_pem(path)?
        .into_iter()
        .filter_map(|item| match item {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::usage(format!(
            "{} holds no certificate",
            crate::vocabulary::quote::quote_path(path)
        )));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKey<'static>> {
    read_pem(path)?
        .into_iter()
        .find_map(|item| match item {
            PemItem::PrivateKey(k) => Some(k),
            _ => None,
        })
        .ok_or_else(|| {
            Error::usage(format!(
                "{} holds no private key (a client certificate needs one beside it)",
                crate::vocabulary::quote::quote_path(path)
            ))
        })
}
