fn main() -> std::process::ExitCode {
    flatten::cli::main()
}
