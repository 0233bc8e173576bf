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
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use flatten::error::ErrorKind;
use flatten::snapshot::{DiffOptions, Mtime, Snapshot};
use flatten::{Error, Report, Result, Strategy};

use args::{Args, Cli, Command, DiffArgs, InspectArgs, LsArgs, MtimeArg};
use flatten::vocabulary::quote::{printable, quote_path};
use process::{install_interrupt_handler, interrupt_token, raise_fd_limit};
use progress::Bars;
use show::{difference_json, human_bytes, listed_json, listed_line, plural, render_inspection};

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `flatten help --help` asks for help about help: the same as `flatten --help`.
    let args = match args.get(1..) {
        Some([help, flag]) if help == "help" && (flag == "--help" || flag == "-h") => {
            vec![args[0].clone(), flag.clone()]
        }
        _ => args,
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("flatten: {} (see --help)", usage_error(&e));
            return ExitCode::from(2);
        }
    };
    let (result, error_code) = match &cli.command {
        // diff, like cmp and diff(1): 0 same, 1 different, 2 trouble.
        Some(Command::Diff(d)) => (diff(d), Some(2)),
        Some(Command::Inspect(i)) => (inspect(i), None),
        Some(Command::Ls(l)) => (ls(l), None),
        Some(Command::Completions { shell }) => (completions(*shell), None),
        Some(Command::Man) => (man(), None),
        None => (run(&cli.args), None),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flatten: {}", printable(&e.to_string()));
            error_code.map_or_else(|| exit_code(&e), ExitCode::from)
        }
    }
}

/// A usage error as one line, naming what was wrong.
fn usage_error(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind as Clap};
    match (e.kind(), e.get(ContextKind::InvalidArg)) {
        (Clap::MissingRequiredArgument, Some(ContextValue::Strings(args))) => {
            return format!("missing {}", args.join(" and "));
        }
        // IMAGE and TARGET are given and one more word follows: clap reads it as a
        // subcommand that cannot come after them.
        (Clap::ArgumentConflict, _) => {
            if let Some(ContextValue::String(extra)) = e.get(ContextKind::InvalidSubcommand) {
                return format!("unexpected argument '{extra}': give IMAGE and TARGET only");
            }
        }
        _ => {}
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    printable(first.trim_start_matches("error: ").trim_end()).into_owned()
}

fn exit_code(e: &Error) -> ExitCode {
    ExitCode::from(match e.kind() {
        ErrorKind::Usage | ErrorKind::Target => 2,
        ErrorKind::Network => 3,
        ErrorKind::Denied => 4,
        ErrorKind::Interrupted => 128 + process::interrupt_signal().unwrap_or(libc::SIGINT) as u8,
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
    if let Some(w) = &d.workdir {
        opts.docker_workdir(w);
    }
    let found = a.differences(&b, &opts);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // A closed pipe (`| head`) is not an error.
    if d.json {
        let items: Vec<serde_json::Value> = found.iter().map(difference_json).collect();
        let text = serde_json::to_string_pretty(&items)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        let _ = writeln!(out, "{text}");
    } else {
        for l in &found {
            if writeln!(out, "{l}").is_err() {
                break;
            }
        }
    }
    let _ = out.flush();
    Ok(ExitCode::from(if found.is_empty() { 0 } else { 1 }))
}

fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "flatten", &mut out);
    let _ = std::io::stdout().lock().write_all(&out);
    Ok(ExitCode::SUCCESS)
}

fn man() -> Result<ExitCode> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| Error::io("cannot render the manual page", e))?;
    let _ = std::io::stdout().lock().write_all(&out);
    Ok(ExitCode::SUCCESS)
}

fn inspect(args: &InspectArgs) -> Result<ExitCode> {
    let (image, _) = args.choice.open(&args.image, &mut Bars::new(false))?;
    let report = flatten::inspect::inspect(&image, &interrupt_token())?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?
            + "\n"
    } else {
        // The config's strings (env, labels, history) come from the image: each line is
        // made printable, as every message is.
        render_inspection(&report)
            .lines()
            .map(|l| printable(l).into_owned() + "\n")
            .collect()
    };
    // A closed pipe (`| head`) is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    // A layer that failed its digest check makes the image bad: exit 1, as flattening
    // would, with the line flattening would give for it.
    let mut failed = false;
    for l in report.layers.iter().filter(|l| l.verified == Some(false)) {
        failed = true;
        eprintln!(
            "flatten: layer {}: {}",
            l.number,
            printable(l.problem.as_deref().unwrap_or("did not verify"))
        );
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn ls(args: &LsArgs) -> Result<ExitCode> {
    let (image, options) = args.choice.open(&args.image, &mut Bars::new(false))?;
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
            flatten::vocabulary::path::show(&prefix)
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

/// `-o FILE`: the tar goes to a temporary file beside FILE, renamed into place only when
/// complete, so that a failed or interrupted run leaves nothing (and an old FILE intact).
/// `-o -` writes to standard output; a reader that goes away (`| head`) ends the run
/// quietly, as Unix tools do.
fn write_tar_output(args: &Args, image: &str, output: &Path) -> Result<ExitCode> {
    let start = Instant::now();
    // Copying standard input stops on an interrupt too, and a partial file is removed.
    install_interrupt_handler();
    let mut bars = Bars::new(args.quiet);
    let (image, mut options) = args.choice.open(image, &mut bars)?;
    options.docker_export = args.docker_export;
    let to_stdout = output.as_os_str() == "-";
    let written = if to_stdout {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        flatten::output::tar::write_tar(&image, &options, &mut out, &mut bars).and_then(|r| {
            out.flush()
                .map(|()| r)
                .map_err(|e| Error::io("cannot write the tar output", e))
        })
    } else {
        TarFile::create(output).and_then(|mut file| {
            let report = flatten::output::tar::write_tar(&image, &options, file.out(), &mut bars)?;
            file.commit()?;
            Ok(report)
        })
    };
    bars.clear();
    let report = match written {
        Err(e) if to_stdout && is_broken_pipe(&e) => return Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == ErrorKind::Usage => return Err(e),
        Err(e) => {
            // Say what was left, as a directory run does.
            let left = if to_stdout {
                "the tar on standard output is incomplete".to_owned()
            } else {
                format!(
                    "{} was not written (one that was there is left as it was)",
                    quote_path(output)
                )
            };
            return Err(Error::new(e.kind(), format!("{e}; {left}")));
        }
        Ok(r) => r,
    };
    let shown = if to_stdout {
        "standard output".to_owned()
    } else {
        quote_path(output)
    };
    report_done(args.quiet, &shown, &report, start);
    Ok(ExitCode::SUCCESS)
}

fn is_broken_pipe(e: &Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::BrokenPipe;
        }
        cause = c.source();
    }
    false
}

/// Where `-o FILE` writes: a temporary file in FILE's directory, or FILE itself when it is
/// not a regular file (a FIFO, `/dev/null`), which must not be replaced.
enum TarFile {
    Temporary {
        out: std::io::BufWriter<tempfile::NamedTempFile>,
        dest: std::path::PathBuf,
    },
    Direct(std::io::BufWriter<std::fs::File>),
}

impl TarFile {
    fn create(dest: &Path) -> Result<TarFile> {
        let what = || format!("cannot create {}", quote_path(dest));
        match std::fs::metadata(dest) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dest)
                    .map_err(|e| Error::io(what(), e))?;
                return Ok(TarFile::Direct(std::io::BufWriter::with_capacity(
                    1 << 20,
                    file,
                )));
            }
            Ok(m) if m.is_dir() => {
                return Err(Error::usage(format!("{} is a directory", what())));
            }
            _ => {}
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest.file_name().map(|n| n.as_bytes()).unwrap_or(b"out");
        let prefix = format!(".{}.", String::from_utf8_lossy(name));
        let file = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".partial")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io(what(), e))?;
        Ok(TarFile::Temporary {
            out: std::io::BufWriter::with_capacity(1 << 20, file),
            dest: dest.to_owned(),
        })
    }

    fn out(&mut self) -> &mut dyn Write {
        match self {
            TarFile::Temporary { out, .. } => out,
            TarFile::Direct(out) => out,
        }
    }

    /// Flushes the tar and moves it into place.
    fn commit(self) -> Result<()> {
        match self {
            TarFile::Temporary { out, dest } => {
                let file = out
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .map_err(|e| Error::io("cannot write the tar output", e))?;
                file.persist(&dest).map_err(|e| {
                    Error::io(
                        format!("cannot rename the tar output to {}", quote_path(&dest)),
                        e.error,
                    )
                })?;
                Ok(())
            }
            TarFile::Direct(mut out) => out
                .flush()
                .map_err(|e| Error::io("cannot write the tar output", e)),
        }
    }
}

fn run(args: &Args) -> Result<ExitCode> {
    let start = Instant::now();
    let Some(image) = &args.image else {
        return Err(Error::usage("IMAGE is required"));
    };
    if let Some(output) = &args.output {
        return write_tar_output(args, image, output);
    }
    let Some(target) = &args.target else {
        return Err(Error::usage("give TARGET or --output"));
    };
    // From here on an interrupt must not kill us mid-write (or mid-copy of standard
    // input): stop cleanly and say so.
    install_interrupt_handler();
    let mut bars = Bars::new(args.quiet);
    let (image, mut options) = args.choice.open(image, &mut bars)?;
    options.docker_export = args.docker_export;
    flatten::prepare_target(target)?;
    raise_fd_limit();
    let report = flatten::flatten_image(&image, target, &options, &mut bars).map_err(|e| {
        bars.clear();
        // A target refused (not empty, locked) was not touched.
        if e.kind() == ErrorKind::Target {
            return e;
        }
        let note = format!(
            "; {} is incomplete (files may be missing, directories are still mode 0700 \
             without their times): delete it and run again",
            quote_path(target)
        );
        Error::new(e.kind(), format!("{}{note}", e))
    })?;
    bars.clear();
    report_done(args.quiet, &quote_path(target), &report, start);
    Ok(ExitCode::SUCCESS)
}

/// `FLATTEN_RESOLVE=walk` forces the resolution fallback (for tests of old kernels).
pub(super) fn strategy_from_env() -> Strategy {
    match std::env::var("FLATTEN_RESOLVE").as_deref() {
        Ok("walk") => Strategy::Walk,
        _ => Strategy::Auto,
    }
}

fn report_done(quiet: bool, target: &str, r: &Report, start: Instant) {
    if !quiet {
        eprintln!(
            "flatten: {}, {}, {} in {:.2} s into {}",
            plural(r.layers as u64, "layer"),
            plural(r.entries, "entry"),
            human_bytes(r.bytes),
            start.elapsed().as_secs_f64(),
            target
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
