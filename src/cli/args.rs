//! The command line's grammar: commands, arguments, help texts.

use std::path::PathBuf;

use clap::Parser;

use flatten::{Error, Image, Input, Options, Platform, Result, Selector};

use super::process::interrupt_token;
use super::strategy_from_env;

const AFTER_HELP: &str = "\
IMAGE can be:
  image.tar                 a `docker save` archive (legacy or Docker 25+ layout), a
                            skopeo/podman docker-archive, a go-containerregistry tarball,
                            or an OCI archive; plain, gzip or zstd compressed
  ./layout                  an OCI image layout directory (or an unpacked docker save)
  docker-archive:FILE[:REF] skopeo-style names; REF picks the image like --image
  oci:DIR[:REF]
  oci-archive:FILE[:REF]
  docker://[HOST[:PORT]/]REPO[:TAG|@DIGEST]
                            an image on a registry, fetched directly (Docker Hub when
                            no HOST: docker://debian:12 is registry-1.docker.io's
                            library/debian:12); layers are read as they arrive and kept
                            in ~/.cache/flatten (or $XDG_CACHE_HOME/flatten) for the next
                            run. Credentials from --creds, $REGISTRY_AUTH_FILE,
                            containers' auth.json or ~/.docker/config.json (and its
                            credential helpers)
  docker-daemon:REF         the image REF of the local Docker Engine, read through its
                            API socket ($DOCKER_HOST, default /var/run/docker.sock)
  -                         an archive on standard input; it is first copied to a
                            temporary file (in $TMPDIR), because every writer puts the
                            manifest after the layers

Layers are applied bottom to top; `.wh.NAME` deletes NAME from lower layers and
`.wh..wh..opq` empties a directory of lower content, as Docker does. Nothing is ever
written outside TARGET, whatever the layers contain. Run as root to reproduce owners
and device nodes; otherwise they are skipped and a line says so.

Names from the image are shown quoted as GNU tar does (\\n, \\033, \\377); layers are
numbered from 1 at the bottom, as in the manifest.

Exit status: 0 done; 1 bad image, failed digest check or I/O error (TARGET is then
incomplete); 2 usage error (bad option, unknown --image, --platform or transport, TARGET
not empty or being written by another run); 3 a registry could not be reached or kept
failing (try again later); 4 a registry refused access (credentials missing or wrong);
128+N stopped by signal N (130 SIGINT, 143 SIGTERM).

Examples:
  flatten busybox.tar rootfs
  docker save myapp | flatten - rootfs
  flatten --image myapp:1.2 all-images.tar rootfs
  flatten --platform linux/arm64 oci:./layout rootfs
  flatten docker://debian:12 rootfs
  flatten --creds me:secret docker://registry.example.com:5000/team/app@sha256:<hex> rootfs
  flatten --tls-verify=false docker://localhost:5000/app rootfs   (plain HTTP)
  flatten busybox.tar -o rootfs.tar          (a tar instead of a directory)
  flatten diff --mtime seconds --ignore-docker-init rootfs export.tar
  flatten inspect busybox.tar
  flatten ls busybox.tar /etc
  flatten <(zcat img.tar.gz) rootfs         (any readable path, a pipe too)
  flatten -- ls rootfs                      (a file named like a subcommand)
  flatten completions bash > /etc/bash_completion.d/flatten";

/// `0.1.0 (gzip: zlib-rs (flate2))`: the version, and which inflater this build has.
fn version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (gzip: {})",
            env!("CARGO_PKG_VERSION"),
            flatten::INFLATER
        )
    })
}

/// Turn a saved container image into its root filesystem, as `docker export` would.
#[derive(Debug, Parser)]
#[command(
    name = "flatten",
    version = version(),
    about,
    after_long_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Option<Command>,

    #[command(flatten)]
    pub(super) args: Args,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Compare two trees (directories or tars, such as a `docker export`), one line per
    /// difference; exit 0 when equal, 1 when not, 2 on error.
    #[command(after_long_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Describe an image: names, run configuration, each layer (digests checked, sizes,
    /// entries, whiteouts) and the build history lined up with the layers.
    #[command(after_long_help = INSPECT_HELP)]
    Inspect(InspectArgs),
    /// List the flattened tree without writing it, like `tar -tv` of the export, with the
    /// layer each path came from.
    #[command(after_long_help = LS_HELP)]
    Ls(LsArgs),
    /// Print a shell completion script: `flatten completions bash > /etc/bash_completion.d/flatten`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `flatten man | man -l -`.
    Man,
}

const LS_HELP: &str = "\
One line per path, in docker export's order, like `tar -tv`:
  drwxr-xr-x 0/0         0 2024-01-02 03:04 etc/  [layer 1]
  -rw-r--r-- 0/0       812 2024-01-02 03:04 etc/passwd  [layer 3]
  lrwxrwxrwx 0/0         0 2024-01-02 03:04 bin -> usr/bin  [layer 1]
  hrw-r--r-- 0/0         0 2024-01-02 03:04 usr/bin/perl5.36 link to usr/bin/perl  [layer 2]
Layers are numbered from 1 at the bottom, as in the manifest. Names are quoted as GNU
tar quotes them: \\n, \\t, \\\\ and \\ooo (octal) for control characters and bytes that
are not UTF-8.

--json prints an array of objects: path, type (file, directory, symlink, hardlink, char,
block, fifo), mode (octal string), uid, gid, mtime, layer, and size, target, link_to,
device, xattrs where they apply. A name that is not UTF-8 is given quoted, with its exact
bytes in base64 beside it (path_bytes, target_bytes, link_to_bytes).

Examples:
  flatten ls busybox.tar /etc
  flatten ls --json img.tar | jq -r '.[] | select(.layer == 3) | .path'";

#[derive(Debug, clap::Args)]
pub(super) struct LsArgs {
    /// The image, as for flattening.
    #[arg(value_name = "IMAGE")]
    pub(super) image: String,
    /// List only this path and what is below it.
    #[arg(value_name = "PATH")]
    pub(super) path: Option<String>,
    #[command(flatten)]
    pub(super) choice: Choice,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct InspectArgs {
    /// The image, as for flattening.
    #[arg(value_name = "IMAGE")]
    pub(super) image: String,
    #[command(flatten)]
    pub(super) choice: Choice,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

/// Which image, and whether to check it.
#[derive(Debug, clap::Args)]
pub(super) struct Choice {
    /// Which image of several: a tag (as in RepoTags or the OCI ref name), a digest, or @N.
    #[arg(long = "image", value_name = "REF")]
    pub(super) image_ref: Option<String>,

    /// Which platform of a multi-platform image: os/arch[/variant] (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub(super) platform: Option<Platform>,

    /// Do not check layer, manifest and config digests.
    #[arg(long)]
    pub(super) no_verify: bool,

    /// The registry's user and password (else from auth.json or ~/.docker/config.json).
    #[arg(
        long,
        value_name = "USER[:PASS]",
        help_heading = "Registry (docker://)"
    )]
    pub(super) creds: Option<String>,

    /// Check certificates and refuse plain HTTP (=false allows both).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        help_heading = "Registry (docker://)"
    )]
    pub(super) tls_verify: bool,

    /// The registry's CA (*.crt) and client certificate (*.cert, *.key) are in DIR.
    #[arg(long, value_name = "DIR", help_heading = "Registry (docker://)")]
    pub(super) cert_dir: Option<PathBuf>,

    /// Fetch every blob anew and keep none (default: kept in ~/.cache/flatten).
    #[arg(long, help_heading = "Registry (docker://)")]
    pub(super) no_cache: bool,
}

impl Choice {
    /// Opens the image named by `image` (whose transport name may carry a reference).
    pub(super) fn open(
        &self,
        image: &str,
        observer: &mut dyn flatten::Observer,
    ) -> Result<(Image, Options)> {
        let (mut input, transport_ref) = Input::parse(image)?;
        self.set_access(&mut input)?;
        let image_ref = match (&self.image_ref, transport_ref) {
            (Some(_), Some(_)) => {
                return Err(Error::usage(
                    "give the image reference either in IMAGE or with --image, not both",
                ))
            }
            (a, b) => a.clone().or(b),
        };
        let mut options = Options::default();
        options.selector = Selector {
            image: image_ref,
            platform: self.platform.clone(),
        };
        options.verify = !self.no_verify;
        options.strategy = strategy_from_env();
        options.cancel = interrupt_token();
        let image = Image::open_observed(
            &input,
            &options.selector,
            options.verify,
            observer,
            &options.cancel,
        )?;
        Ok((image, options))
    }
}

impl Choice {
    /// Puts the registry options into a `docker://` input; elsewhere they are an error.
    fn set_access(&self, input: &mut Input) -> Result<()> {
        if let Input::Registry { access, .. } = input {
            if self.image_ref.is_some() {
                return Err(Error::usage(
                    "--image chooses among the images of an archive; a docker:// reference names one",
                ));
            }
            if let Some(c) = &self.creds {
                access.creds = Some(flatten::Credentials::parse(c)?);
            }
            access.tls_verify = self.tls_verify;
            access.cert_dir = self.cert_dir.clone();
            if self.no_cache {
                access.cache = None;
            }
            // For the benchmark (tests/bench/pull.sh): how many blobs at once.
            if let Some(n) = std::env::var("FLATTEN_FETCHERS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                access.fetchers = n;
            }
            return Ok(());
        }
        let given = [
            ("--creds", self.creds.is_some()),
            ("--tls-verify", !self.tls_verify),
            ("--cert-dir", self.cert_dir.is_some()),
            ("--no-cache", self.no_cache),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
            return Err(Error::usage(format!("{flag} is for docker:// images only")));
        }
        Ok(())
    }
}

const INSPECT_HELP: &str = "\
Every layer is read and its digests checked, as flattening would. Exit status: 0 when
every layer verified, 1 when one did not (the report is still printed) or the image
cannot be read, 2 on a usage error.

The text form has sections names, format, manifest, config, platform, entrypoint, cmd,
workdir, user, env, exposed port, label, a table of layers (#, digest, diff_id,
verified yes/NO/-, compression, compressed and uncompressed bytes, entries, whiteouts)
and the history, each step with the number of the layer it made. Layers are numbered
from 1 at the bottom, as in the manifest. --json prints the same as one object; the
schema is in docs/commands.md.

Examples:
  flatten inspect busybox.tar
  flatten inspect --json oci:./layout | jq '.layers[] | select(.verified == false)'";

const DIFF_HELP: &str = "\
Compares path sets, types, modes, owners, sizes and contents, symlink targets, device
numbers, hardlink groups, xattrs and mtimes. Lines look like
  /etc/passwd: content differs (size 812 vs 790)
  /usr/bin/ping: xattrs (security.capability vs )
  /tmp/x: only in B (file)

Examples:
  flatten img.tar rootfs && docker export $(docker create img) > export.tar
  flatten diff --mtime seconds --ignore-docker-init rootfs export.tar";

#[derive(Debug, clap::Args)]
pub(super) struct DiffArgs {
    /// The first tree: a directory, or a tar (plain, gzip or zstd; - for stdin).
    #[arg(value_name = "A")]
    pub(super) a: PathBuf,
    /// The second tree.
    #[arg(value_name = "B")]
    pub(super) b: PathBuf,
    /// How to compare mtimes: exact (to the nanosecond), seconds (as docker export keeps
    /// them) or ignore.
    #[arg(long, value_enum, default_value = "exact")]
    pub(super) mtime: MtimeArg,
    /// Leave out what `docker create` adds to a container (/.dockerenv, /etc/hosts, /proc,
    /// …, and /etc or /dev where the image has none, with their mtimes) and the extended
    /// attributes `docker export` drops (all but security.capability).
    #[arg(long)]
    pub(super) ignore_docker_init: bool,
    /// With --ignore-docker-init: the image's WORKDIR (`flatten inspect` shows it), whose
    /// directories `docker create` makes when the image lacks them.
    #[arg(long, value_name = "DIR", requires = "ignore_docker_init")]
    pub(super) workdir: Option<String>,
    /// Print JSON (for scripts): an array of differences, names exact (see docs/commands.md).
    #[arg(long)]
    pub(super) json: bool,
    /// Leave out PATH and everything below it (repeatable).
    #[arg(long, value_name = "PATH")]
    pub(super) ignore: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum MtimeArg {
    Exact,
    Seconds,
    Ignore,
}

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The image: an archive, an OCI layout directory, a transport name, or - for stdin.
    #[arg(value_name = "IMAGE", required = true)]
    pub(super) image: Option<String>,

    /// The directory to create; it must be missing or empty.
    #[arg(value_name = "TARGET", required_unless_present = "output")]
    pub(super) target: Option<PathBuf>,

    /// Write the root filesystem as one tar (PAX, numeric owners, docker export's order) to
    /// FILE instead of a directory; - for standard output. Needs no privileges.
    #[arg(short, long, value_name = "FILE", conflicts_with = "target")]
    pub(super) output: Option<PathBuf>,

    /// Also add what `docker create` puts into a container (/.dockerenv, /etc/hosts, /proc,
    /// the WORKDIR, …) and keep only what `docker export` keeps (whole seconds,
    /// security.capability): the result is what `docker export` of a new container gives.
    #[arg(long)]
    pub(super) docker_export: bool,

    #[command(flatten)]
    pub(super) choice: Choice,

    /// No progress and no summary line (problems are still reported).
    #[arg(short, long)]
    pub(super) quiet: bool,
}

fn parse_platform(s: &str) -> std::result::Result<Platform, String> {
    Platform::parse(s).map_err(|e| e.message().to_owned())
}
