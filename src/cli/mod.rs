//! The command line: parses arguments, shows progress, reports. Everything it does is a
//! library call; these modules only talk to the user.
//!
//! - `args`: the grammar; `show`: how results look; `progress`: the bars; `process`:
//!   signals and limits.

mod args;
mod process;
mod progress;
mod show;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use flatten::error::ErrorKind;
use flatten::snapshot::{DiffOptions, Mtime, Snapshot};
use flatten::{Error, Report, Result, Strategy};

use args::{Args, Choice, Cli, Command, DiffArgs, InspectArgs, LsArgs, MtimeArg};
use process::{install_interrupt_handler, interrupt_token, raise_fd_limit};
use progress::Bars;
use show::{human_bytes, listed_json, listed_line, plural, render_inspection};

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
pub(super) fn strategy_from_env() -> Strategy {
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
