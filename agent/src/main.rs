// musl's calloc writes every page of a large zeroed allocation (see `mapped_alloc`).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mikrobill_agent::mapped_alloc::MappedLarge =
    mikrobill_agent::mapped_alloc::MappedLarge;

fn main() -> std::process::ExitCode {
    mikrobill_agent::cli::main()
}
