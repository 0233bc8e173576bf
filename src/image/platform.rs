//! Platforms (`os/arch[/variant]`) and choosing one from a multi-platform index.

use std::fmt;

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
/// A platform as OCI names it: `os/architecture[/variant]`.
pub struct Platform {
    /// `linux`, ...
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v8`, `v7`, ... where the architecture has variants.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`, as `docker --platform` takes it.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: arch.to_string(),
                    variant: Some(variant.to_string()),
                })
            }
            _ => Err(Error::usage(format!(
                "bad platform {s:?}: expected os/arch or os/arch/variant"
            ))),
        }
    }

    /// The platform this program runs on, in OCI names.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            other => other,
        };
        let variant = match arch {
            "arm64" => Some("v8".to_owned()),
            "arm" => Some("v7".to_owned()),
            _ => None,
        };
        Platform {
            os: std::env::consts::OS.to_owned(),
            architecture: arch.to_owned(),
            variant,
        }
    }

    /// Build attestations and other non-images carry `unknown/unknown`.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }

    /// True if an image for `self` runs where `want` is asked for. A missing variant matches
    /// the default one (`arm64` is `arm64/v8`).
    pub fn satisfies(&self, want: &Platform) -> bool {
        if self.os != want.os || self.architecture != want.architecture {
            return false;
        }
        let default = |p: &Platform| match p.architecture.as_str() {
            "arm64" => Some("v8"),
            _ => None,
        };
        let mine = self.variant.as_deref().or(default(self));
        match want.variant.as_deref().or(default(want)) {
            None => true,
            Some(v) => mine.is_none() || mine == Some(v),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let p = |s| Platform::parse(s).unwrap();
        assert!(p("linux/arm64").satisfies(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").satisfies(&p("linux/arm64")));
        assert!(!p("linux/arm/v6").satisfies(&p("linux/arm/v7")));
        assert!(p("linux/arm").satisfies(&p("linux/arm/v7")));
        assert!(!p("linux/amd64").satisfies(&p("linux/arm64")));
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//x").is_err());
    }
}
