fn main() -> std::process::ExitCode {
    mikrobill_agent::cli::main()
}
