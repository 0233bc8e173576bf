//! The image configuration (OCI image config / Docker image JSON): what the layers are
//! (`rootfs.diff_ids`) and how a container runs (for `inspect` and the export extras).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The parts of an image config this crate uses; unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ImageConfig {
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub variant: Option<String>,
    pub created: Option<String>,
    pub config: Option<RunConfig>,
    pub rootfs: Option<RootFs>,
    pub history: Vec<History>,
}

/// How a container made from the image runs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RunConfig {
    /// `USER`: the user (and group) the process runs as.
    pub user: Option<String>,
    /// `ENV`: `NAME=VALUE` entries.
    pub env: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `WORKDIR`.
    pub working_dir: Option<String>,
    /// `EXPOSE`: `PORT/PROTO` keys.
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// `VOLUME`: paths as keys.
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// `LABEL`s.
    pub labels: Option<BTreeMap<String, String>>,
    /// `STOPSIGNAL`.
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub diff_ids: Vec<String>,
}

/// One build step; `empty_layer` steps made no layer.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct History {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}
