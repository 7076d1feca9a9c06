//! The `tailcast` binary: parse the command line, start logging, bind, and call [`app::run`].
//!
//! `anyhow` lives only here; every error reaches the user as one sentence and a non-zero exit.

use std::net::TcpListener;

use anyhow::Context;
use clap::Parser;
use tailcast::cli::Cli;
use tailcast::error::ConfigError;
use tailcast::{app, demo};

fn main() {
    if let Err(err) = real_main() {
        eprintln!("tailcast: error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tailcast=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let demo = if cli.paths.is_empty() {
        Some(demo::Demo::start().context("cannot start the demo logs")?)
    } else {
        None
    };
    let config = cli.into_config(demo.as_ref().map(demo::Demo::paths))?;
    let listener = TcpListener::bind(config.bind).map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                "; another program uses this port: stop it, or pick another with --bind 127.0.0.1:PORT"
            }
            std::io::ErrorKind::PermissionDenied => {
                "; ports below 1024 need privileges: pick a port above 1024 with --bind"
            }
            _ => "; check the address given with --bind",
        };
        ConfigError::Bind {
            addr: config.bind,
            source,
            hint,
        }
    })?;
    let demo_note = if demo.is_some() {
        " (demo: sample logs that keep growing)"
    } else {
        ""
    };
    actix_web::rt::System::new().block_on(app::run(
        config,
        listener,
        shutdown_signal(),
        |ready| {
            println!(
                "tailcast: listening on http://{}/ following {} file(s){demo_note}",
                ready.addr,
                ready.files.len()
            );
            for file in ready.files {
                println!("  {}  {}", file.id, file.path.display());
            }
        },
    ))?;
    drop(demo);
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
