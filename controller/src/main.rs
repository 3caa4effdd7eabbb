fn main() -> std::process::ExitCode {
    mikrobill_controller::cli::main()
}
