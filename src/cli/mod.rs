//! The command line: parses arguments, shows progress, reports. Everything it does is a
//! library call; this module only talks to the user.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use flatten::error::ErrorKind;
use flatten::snapshot::{DiffOptions, Mtime, Snapshot};
use flatten::{Error, Observer, Options, Report, Result, Strategy};
use flatten::{Image, Input, Platform, Selector};
use std::io::Write;

const AFTER_HELP: &str = "\
IMAGE can be:
  image.tar                 a `docker save` archive (legacy or Docker 25+ layout), a
                            skopeo/podman docker-archive, a go-containerregistry tarball,
                            or an OCI archive; plain, gzip or zstd compressed
  ./layout                  an OCI image layout directory (or an unpacked docker save)
  docker-archive:FILE[:REF] skopeo-style names; REF picks the image like --image
  oci:DIR[:REF]
  oci-archive:FILE[:REF]
  -                         an archive on standard input; it is first copied to a
                            temporary file (in $TMPDIR), because every writer puts the
                            manifest after the layers

Layers are applied bottom to top; `.wh.NAME` deletes NAME from lower layers and
`.wh..wh..opq` empties a directory of lower content, as Docker does. Nothing is ever
written outside TARGET, whatever the layers contain. Run as root to reproduce owners
and device nodes; otherwise they are skipped and a line says so.

Exit status: 0 done; 1 bad image, failed digest check or I/O error (TARGET is then
incomplete); 2 usage error (bad option, TARGET not empty, image not chosen);
130 interrupted.

Examples:
  flatten busybox.tar rootfs
  docker save myapp | flatten - rootfs
  flatten --image myapp:1.2 all-images.tar rootfs
  flatten --platform linux/arm64 oci:./layout rootfs
  flatten busybox.tar -o rootfs.tar          (a tar instead of a directory)
  flatten diff --mtime seconds --ignore-docker-init rootfs export.tar
  flatten inspect busybox.tar
  flatten ls busybox.tar /etc";

/// Turn a saved container image into its root filesystem, as `docker export` would.
#[derive(Debug, Parser)]
#[command(
    name = "flatten",
    version,
    about,
    after_long_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    args: Args,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Compare two trees (directories or tars, such as a `docker export`), one line per
    /// difference; exit 0 when equal, 1 when not, 2 on error.
    #[command(after_long_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Describe an image: names, run configuration, each layer (digests checked, sizes,
    /// entries, whiteouts) and the build history lined up with the layers.
    Inspect(InspectArgs),
    /// List the flattened tree without writing it, like `tar -tv` of the export, with the
    /// layer each path came from.
    Ls(LsArgs),
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// The image, as for flattening.
    #[arg(value_name = "IMAGE")]
    image: String,
    /// List only this path and what is below it.
    #[arg(value_name = "PATH")]
    path: Option<String>,
    #[command(flatten)]
    choice: Choice,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The image, as for flattening.
    #[arg(value_name = "IMAGE")]
    image: String,
    #[command(flatten)]
    choice: Choice,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

/// Which image, and whether to check it.
#[derive(Debug, clap::Args)]
struct Choice {
    /// Which image of several: a tag (as in RepoTags or the OCI ref name), a digest, or @N.
    #[arg(long = "image", value_name = "REF")]
    image_ref: Option<String>,

    /// Which platform of a multi-platform image: os/arch[/variant] (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platform: Option<Platform>,

    /// Do not check layer, manifest and config digests.
    #[arg(long)]
    no_verify: bool,
}

impl Choice {
    /// Opens the image named by `image` (whose transport name may carry a reference).
    fn open(&self, image: &str) -> Result<(Image, Options)> {
        let (input, transport_ref) = Input::parse(image)?;
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
        let image = Image::open(&input, &options.selector, options.verify)?;
        Ok((image, options))
    }
}

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
struct DiffArgs {
    /// The first tree: a directory, or a tar (plain, gzip or zstd; - for stdin).
    #[arg(value_name = "A")]
    a: PathBuf,
    /// The second tree.
    #[arg(value_name = "B")]
    b: PathBuf,
    /// How to compare mtimes: exact (to the nanosecond), seconds (as docker export keeps
    /// them) or ignore.
    #[arg(long, value_enum, default_value = "exact")]
    mtime: MtimeArg,
    /// Leave out what `docker create` adds to a container (/.dockerenv, /etc/hosts, /proc, …).
    #[arg(long)]
    ignore_docker_init: bool,
    /// Leave out PATH and everything below it (repeatable).
    #[arg(long, value_name = "PATH")]
    ignore: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MtimeArg {
    Exact,
    Seconds,
    Ignore,
}

#[derive(Debug, clap::Args)]
struct Args {
    /// The image: an archive, an OCI layout directory, a transport name, or - for stdin.
    #[arg(value_name = "IMAGE", required = true)]
    image: Option<String>,

    /// The directory to create; it must be missing or empty.
    #[arg(value_name = "TARGET", required_unless_present = "output")]
    target: Option<PathBuf>,

    /// Write the root filesystem as one tar (PAX, numeric owners, docker export's order) to
    /// FILE instead of a directory; - for standard output. Needs no privileges.
    #[arg(short, long, value_name = "FILE", conflicts_with = "target")]
    output: Option<PathBuf>,

    /// Also add what `docker create` puts into a container (/.dockerenv, /etc/hosts, /proc,
    /// the WORKDIR, …) and keep only what `docker export` keeps (whole seconds,
    /// security.capability): the result is what `docker export` of a new container gives.
    #[arg(long)]
    docker_export: bool,

    #[command(flatten)]
    choice: Choice,

    /// No progress and no summary line (problems are still reported).
    #[arg(short, long)]
    quiet: bool,
}

fn parse_platform(s: &str) -> std::result::Result<Platform, String> {
    Platform::parse(s).map_err(|e| e.message().to_owned())
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, like every other error.
            // One line, like every other error.
            let what = match (e.kind(), e.get(clap::error::ContextKind::InvalidArg)) {
                (
                    clap::error::ErrorKind::MissingRequiredArgument,
                    Some(clap::error::ContextValue::Strings(args)),
                ) => format!("missing {}", args.join(" and ")),
                _ => {
                    let text = e.render().to_string();
                    let first = text.lines().next().unwrap_or_default();
                    first.trim_start_matches("error: ").trim_end().to_owned()
                }
            };
            eprintln!("flatten: {what} (see --help)");
            return ExitCode::from(2);
        }
    };
    let (result, error_code) = match &cli.command {
        // diff, like cmp and diff(1): 0 same, 1 different, 2 trouble.
        Some(Command::Diff(d)) => (diff(d), Some(2)),
        Some(Command::Inspect(i)) => (inspect(i), None),
        Some(Command::Ls(l)) => (ls(l), None),
        None => (run(&cli.args), None),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flatten: {e}");
            error_code.map_or_else(|| exit_code(&e), ExitCode::from)
        }
    }
}

fn exit_code(e: &Error) -> ExitCode {
    ExitCode::from(match e.kind() {
        ErrorKind::Usage | ErrorKind::Target => 2,
        ErrorKind::Interrupted => 130,
        _ => 1,
    })
}

fn diff(d: &DiffArgs) -> Result<ExitCode> {
    if d.a.as_os_str() == "-" && d.b.as_os_str() == "-" {
        return Err(Error::usage("only one of A and B can be standard input"));
    }
    let a = Snapshot::from_path(&d.a)?;
    let b = Snapshot::from_path(&d.b)?;
    let mut opts = DiffOptions {
        mtime: match d.mtime {
            MtimeArg::Exact => Mtime::Exact,
            MtimeArg::Seconds => Mtime::Seconds,
            MtimeArg::Ignore => Mtime::Ignore,
        },
        ignore: d
            .ignore
            .iter()
            .map(|p| p.trim_matches('/').to_owned())
            .collect(),
        ..DiffOptions::default()
    };
    if d.ignore_docker_init {
        opts.ignore_docker_init();
    }
    let lines = a.diff_with(&b, &opts);
    let mut out = std::io::stdout().lock();
    for l in &lines {
        if writeln!(out, "{l}").is_err() {
            break; // a closed pipe (`| head`) is not an error
        }
    }
    Ok(ExitCode::from(if lines.is_empty() { 0 } else { 1 }))
}

fn inspect(args: &InspectArgs) -> Result<ExitCode> {
    let (image, _) = args.choice.open(&args.image)?;
    let report = flatten::inspect::inspect(&image, &interrupt_token())?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?
            + "\n"
    } else {
        render_inspection(&report)
    };
    // A closed pipe (`| head`) is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn ls(args: &LsArgs) -> Result<ExitCode> {
    let (image, options) = args.choice.open(&args.image)?;
    let prefix = args
        .path
        .as_deref()
        .unwrap_or("")
        .trim_matches('/')
        .as_bytes()
        .to_vec();
    let entries: Vec<_> = flatten::output::list::list(&image, &options)?
        .into_iter()
        .filter(|e| flatten::vocabulary::path::is_under(&e.path, &prefix))
        .collect();
    if !prefix.is_empty() && entries.is_empty() {
        return Err(Error::input(format!(
            "{} is not in the image",
            String::from_utf8_lossy(&prefix)
        )));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut write = |line: String| writeln!(out, "{line}").is_ok();
    if args.json {
        let items: Vec<serde_json::Value> = entries.iter().map(listed_json).collect();
        let text = serde_json::to_string_pretty(&items)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        write(text);
    } else {
        for e in &entries {
            if !write(listed_line(e)) {
                break; // a closed pipe (`| head`) is not an error
            }
        }
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

fn listed_type(e: &flatten::output::list::Listed) -> (&'static str, char) {
    use flatten::snapshot::NodeKind;
    match (&e.kind, &e.hardlink_to) {
        (_, Some(_)) => ("hardlink", 'h'),
        (NodeKind::File { .. }, _) => ("file", '-'),
        (NodeKind::Dir, _) => ("directory", 'd'),
        (NodeKind::Symlink(_), _) => ("symlink", 'l'),
        (NodeKind::CharDevice(..), _) => ("char", 'c'),
        (NodeKind::BlockDevice(..), _) => ("block", 'b'),
        (NodeKind::Fifo, _) => ("fifo", 'p'),
    }
}

/// `drwxr-xr-x 0/0        0 2024-01-02 03:04 etc/  [layer 0]`, like `tar -tv`.
fn listed_line(e: &flatten::output::list::Listed) -> String {
    use flatten::snapshot::NodeKind;
    let m = e.meta.mode;
    let (_, t) = listed_type(e);
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let special = |x: u32, s: u32, lower: char, upper: char| match (m & x != 0, m & s != 0) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    let perms: String = [
        t,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't', 'T'),
    ]
    .iter()
    .collect();
    let size = match &e.kind {
        NodeKind::File { size, .. } if e.hardlink_to.is_none() => size.to_string(),
        NodeKind::CharDevice(a, b) | NodeKind::BlockDevice(a, b) => format!("{a},{b}"),
        _ => "0".to_owned(),
    };
    let mut name = String::from_utf8_lossy(&e.path).into_owned();
    if e.kind == NodeKind::Dir {
        name.push('/');
    }
    if let NodeKind::Symlink(t) = &e.kind {
        if e.hardlink_to.is_none() {
            name = format!("{name} -> {}", String::from_utf8_lossy(t));
        }
    }
    if let Some(first) = &e.hardlink_to {
        name = format!("{name} link to {}", String::from_utf8_lossy(first));
    }
    format!(
        "{perms} {}/{} {size:>9} {} {name}  [layer {}]",
        e.meta.uid,
        e.meta.gid,
        utc(e.meta.mtime.secs),
        e.layer
    )
}

fn listed_json(e: &flatten::output::list::Listed) -> serde_json::Value {
    use flatten::snapshot::NodeKind;
    let (kind, _) = listed_type(e);
    let mut v = serde_json::json!({
        "path": format!("/{}", String::from_utf8_lossy(&e.path)),
        "type": kind,
        "mode": format!("{:04o}", e.meta.mode),
        "uid": e.meta.uid,
        "gid": e.meta.gid,
        "mtime": e.meta.mtime.to_string(),
        "layer": e.layer,
    });
    match &e.kind {
        NodeKind::File { size, .. } => v["size"] = (*size).into(),
        NodeKind::Symlink(t) => v["target"] = String::from_utf8_lossy(t).into_owned().into(),
        NodeKind::CharDevice(a, b) | NodeKind::BlockDevice(a, b) => {
            v["device"] = serde_json::json!([a, b])
        }
        _ => {}
    }
    if let Some(first) = &e.hardlink_to {
        v["link_to"] = format!("/{}", String::from_utf8_lossy(first)).into();
    }
    if !e.meta.xattrs.is_empty() {
        v["xattrs"] = e
            .meta
            .xattrs
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
            .into();
    }
    v
}

/// `YYYY-MM-DD HH:MM` in UTC (days-from-civil inverted, Howard Hinnant's algorithm).
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn render_inspection(r: &flatten::inspect::Inspection) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let dash = |v: Option<&str>| v.filter(|x| !x.is_empty()).unwrap_or("-").to_owned();
    let list = |v: &Option<Vec<String>>| v.as_ref().map_or("-".to_owned(), |v| format!("{v:?}"));
    let names = if r.names.is_empty() {
        "-".to_owned()
    } else {
        r.names.join(", ")
    };
    let _ = writeln!(s, "names:        {names}");
    let _ = writeln!(s, "format:       {}", r.format);
    if let Some(m) = &r.manifest_digest {
        let _ = writeln!(s, "manifest:     {m}");
    }
    let _ = writeln!(s, "config:       {}", r.config_digest);
    let platform: Vec<&str> = [&r.os, &r.architecture, &r.variant]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let _ = writeln!(s, "platform:     {}", dash(Some(&platform.join("/"))));
    let c = &r.config;
    let _ = writeln!(s, "entrypoint:   {}", list(&c.entrypoint));
    let _ = writeln!(s, "cmd:          {}", list(&c.cmd));
    let _ = writeln!(s, "workdir:      {}", dash(c.working_dir.as_deref()));
    let _ = writeln!(s, "user:         {}", dash(c.user.as_deref()));
    for e in c.env.iter().flatten() {
        let _ = writeln!(s, "env:          {e}");
    }
    for p in c.exposed_ports.iter().flat_map(|m| m.keys()) {
        let _ = writeln!(s, "exposed port: {p}");
    }
    for (k, v) in c.labels.iter().flatten() {
        let _ = writeln!(s, "label:        {k}={v}");
    }
    let _ = writeln!(s, "layers:");
    let _ = writeln!(
        s,
        "  #  {:<20} {:<20} {:<8} {:<11} {:>10} {:>10} {:>7} {:>9}",
        "digest",
        "diff_id",
        "verified",
        "compression",
        "compressed",
        "size",
        "entries",
        "whiteouts"
    );
    for l in &r.layers {
        let verified = match l.verified {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let _ = writeln!(
            s,
            "  {:<2} {:<20} {:<20} {:<8} {:<11} {:>10} {:>10} {:>7} {:>9}",
            l.index,
            flatten::error::short_digest(&l.digest),
            flatten::error::short_digest(&l.diff_id),
            verified,
            l.compression,
            l.compressed_size,
            l.size,
            l.entries,
            l.whiteouts
        );
        if let Some(p) = &l.problem {
            let _ = writeln!(s, "     {p}");
        }
    }
    if !r.history.is_empty() {
        let _ = writeln!(s, "history:");
        for h in &r.history {
            let layer = h.layer.map_or("-".to_owned(), |i| i.to_string());
            let by = h.created_by.as_deref().unwrap_or("").replace('\n', " ");
            let _ = writeln!(s, "  layer {layer:<3} {by}");
        }
    }
    s
}

fn write_tar_output(
    image: &str,
    choice: &Choice,
    output: &std::path::Path,
    docker_export: bool,
) -> Result<ExitCode> {
    let (image, mut options) = choice.open(image)?;
    options.docker_export = docker_export;
    if output.as_os_str() == "-" {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        flatten::output::tar::write_tar(&image, &options, &mut out)?;
    } else {
        let file = std::fs::File::create(output)
            .map_err(|e| Error::io(format!("cannot create {}", output.display()), e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        flatten::output::tar::write_tar(&image, &options, &mut out)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run(args: &Args) -> Result<ExitCode> {
    let start = Instant::now();
    let Some(image) = &args.image else {
        return Err(Error::usage("IMAGE is required"));
    };
    if let Some(output) = &args.output {
        return write_tar_output(image, &args.choice, output, args.docker_export);
    }
    let Some(target) = &args.target else {
        return Err(Error::usage("give TARGET or --output"));
    };
    let (image, mut options) = args.choice.open(image)?;
    options.docker_export = args.docker_export;
    flatten::prepare_target(target)?;
    // From here on an interrupt must not kill us mid-write: stop cleanly and say so.
    install_interrupt_handler();
    raise_fd_limit();
    let mut bars = Bars::new(args.quiet);
    let report = flatten::flatten_image(&image, target, &options, &mut bars).map_err(|e| {
        bars.clear();
        let note = format!("; {} is incomplete", target.display());
        Error::new(e.kind(), format!("{}{note}", e))
    })?;
    bars.clear();
    report_done(args.quiet, target, &report, start);
    Ok(ExitCode::SUCCESS)
}

/// `FLATTEN_RESOLVE=walk` forces the resolution fallback (for tests of old kernels).
fn strategy_from_env() -> Strategy {
    match std::env::var("FLATTEN_RESOLVE").as_deref() {
        Ok("walk") => Strategy::Walk,
        _ => Strategy::Auto,
    }
}

fn report_done(quiet: bool, target: &std::path::Path, r: &Report, start: Instant) {
    if !quiet {
        eprintln!(
            "flatten: {}, {}, {} in {:.2} s into {}",
            plural(r.layers as u64, "layer"),
            plural(r.entries, "entry"),
            human_bytes(r.bytes),
            start.elapsed().as_secs_f64(),
            target.display()
        );
    }
    let u = &r.unreproduced;
    if !u.is_empty() {
        let mut parts = Vec::new();
        if u.owners > 0 {
            parts.push(format!("owners of {}", plural(u.owners, "entry")));
        }
        if u.devices > 0 {
            parts.push(plural(u.devices, "device node"));
        }
        if u.xattrs > 0 {
            parts.push(plural(u.xattrs, "extended attribute"));
        }
        let why = if nix::unistd::Uid::effective().is_root() {
            "refused by the kernel or filesystem"
        } else {
            "not running as root"
        };
        eprintln!(
            "flatten: not reproduced ({why}): {} (e.g. {})",
            parts.join(", "),
            u.examples.join("; ")
        );
    }
}

fn plural(n: u64, what: &str) -> String {
    match (n, what.strip_suffix('y')) {
        (1, _) => format!("1 {what}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {what}s"),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A progress bar per layer on stderr, when stderr is a terminal and not `-q`.
struct Bars {
    bar: Option<ProgressBar>,
    enabled: bool,
}

impl Bars {
    fn new(quiet: bool) -> Bars {
        Bars {
            bar: None,
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Observer for Bars {
    fn layer_start(&mut self, index: usize, count: usize, size: Option<u64>) {
        if !self.enabled {
            return;
        }
        self.clear();
        let bar = ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "layer {msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(format!("{}/{count}", index + 1));
        self.bar = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    fn layer_done(&mut self, _index: usize) {
        self.clear();
    }
}

/// The token every run of this process stops by; the signal handler cancels it.
static INTERRUPT: std::sync::OnceLock<flatten::Cancel> = std::sync::OnceLock::new();

fn interrupt_token() -> flatten::Cancel {
    INTERRUPT.get_or_init(flatten::Cancel::new).clone()
}

extern "C" fn on_interrupt(_: libc::c_int) {
    // Set before the handler is installed; an atomic load and store only.
    if let Some(token) = INTERRUPT.get() {
        token.cancel();
    }
}

/// SIGINT and SIGTERM stop the run between entries so that the error says what state TARGET
/// is in, instead of dying mid-write.
/// Deep trees need a file handle per level while they are written: allow as many as we may.
/// (The library leaves process-wide limits to its caller.)
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

fn install_interrupt_handler() {
    interrupt_token();
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // Safety: the handler only loads and stores atomics.
        let _ = unsafe { sigaction(sig, &action) };
    }
}
