//! The `flatten` command: parses the command line, runs the library, reports.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
