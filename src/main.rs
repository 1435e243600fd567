//! The `flightdeck` binary: parse flags, set up logging and signals, run,
//! exit with the documented code.

use clap::Parser;
use flightdeck::cli::Cli;
use flightdeck::config::env::Env;
use std::io::IsTerminal;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

fn init_logging(cli: &Cli, env: &Env) {
    let filter = cli
        .log_level
        .clone()
        .or_else(|| env.get("FLIGHTDECK_LOG").map(str::to_string))
        .or_else(|| env.get("RUST_LOG").map(str::to_string))
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && env.raw("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Neutral)
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .compact()
        .init();
}

/// stderr for logs, with untrusted text (Apple's messages) made inert as CI
/// workflow commands; flightdeck's own commands go through the CI reporter.
struct Neutral;

impl std::io::Write for Neutral {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = flightdeck::secret::redact(&String::from_utf8_lossy(buf));
        let safe = flightdeck::ci::neutralize(&text);
        std::io::stderr().write_all(safe.as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    init_logging(&cli, &env);
    flightdeck::auth::install_crypto_provider();
    // A client's network work needs little CPU, and an upload's reader
    // thread hashes every byte: it gets a core of its own (on 2 cores one
    // worker uploaded 10-20% faster than two). The simulator, a server, takes all.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = match cli.command {
        flightdeck::cli::Command::Simulator(_) => cores,
        // The relay is a service: it gets every core.
        flightdeck::cli::Command::Webhooks(flightdeck::cli::WebhooksCmd::Listen(_)) => cores,
        _ => cores.saturating_sub(1).max(1),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(5);
        }
    };
    let code = rt.block_on(async {
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::warn!("cancelling: finishing reports and cleaning up");
            trigger.cancel();
        });
        let mut stdout = std::io::stdout();
        flightdeck::commands::main(cli, env, &mut stdout, Box::new(std::io::stderr()), cancel).await
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(code)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
