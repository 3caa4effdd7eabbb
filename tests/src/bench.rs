//! What the end-to-end benches share: their knobs from the environment.

use crate::Backend;

/// The value of `key`, or `default` when unset; a value that does not parse stops the bench.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v} is not a valid value")),
        Err(_) => default,
    }
}

/// The backend `BENCH_BACKEND` names: `sqlite` (default) or `postgres`, which reads
/// `MIKROBILL_TEST_POSTGRES_URL` as the tests do.
pub fn backend() -> Backend {
    match env_or("BENCH_BACKEND", "sqlite".to_string()).as_str() {
        "sqlite" => Backend::Sqlite,
        "postgres" => Backend::Postgres,
        other => panic!("BENCH_BACKEND={other}: sqlite or postgres"),
    }
}

/// A runtime like the tests': two worker threads, as many as this machine's cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
