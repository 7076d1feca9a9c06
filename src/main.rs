//! The `tailcast` binary: parse the command line, start logging, bind, and call [`app::run`].
//!
//! `anyhow` lives only here; every error reaches the user as one sentence and a non-zero exit.
//! Signals: SIGINT and SIGTERM shut down (sessions drain); SIGHUP reloads the TLS certificate and
//! key and never ends the process.

use std::net::TcpListener;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use tailcast::cli::Cli;
use tailcast::error::ConfigError;
use tailcast::tls::TlsReload;
use tailcast::{app, demo};

fn main() {
    if let Err(err) = real_main() {
        eprintln!("tailcast: error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    tailcast::malloc::keep_freed_memory();
    let cli = Cli::parse();
    if let Some(shell) = cli.completions {
        let mut command = Cli::command();
        clap_complete::generate(shell, &mut command, "tailcast", &mut std::io::stdout());
        return Ok(());
    }
    if cli.man {
        clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "tailcast=info,warn".into());
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in files or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if cli.log_format == "json" {
        logger.json().init();
    } else {
        logger.init();
    }

    // With --redis and no PATH, a node serves the cluster's files only.
    let demo = if cli.paths.is_empty() && cli.exec.is_empty() && cli.redis.is_none() {
        Some(demo::Demo::start().context("cannot start the demo logs")?)
    } else {
        None
    };
    let config = cli.into_config(demo.as_ref().map(demo::Demo::paths))?;
    if !config.bind.ip().is_loopback() && config.server.token.is_none() {
        tracing::warn!(
            "warning: listening on {} without a token: anyone who can reach this address can read \
             the followed files; set TAILCAST_TOKEN (or --token), or bind to 127.0.0.1",
            config.bind
        );
    }
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
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let cluster_note = match &config.cluster {
        Some(cluster) => format!(
            ", and the cluster's files (node {}, prefix {})",
            cluster.node, cluster.prefix
        ),
        None => String::new(),
    };
    let tls_reload = config.tls_reload.clone();
    actix_web::rt::System::new().block_on(async move {
        // Before the listening line: from then on a SIGHUP must find its handler installed.
        reload_on_hangup(tls_reload).context("cannot install the SIGHUP handler")?;
        app::run(config, listener, shutdown_signal(), |ready| {
            println!(
                "tailcast: listening on {scheme}://{}/ following {} file(s){cluster_note}{demo_note}",
                ready.addr,
                ready.files.len()
            );
            for file in ready.files {
                println!("  {}  {}", file.id, file.path.display());
            }
        })
        .await
        .map_err(anyhow::Error::from)
    })?;
    drop(demo);
    Ok(())
}

/// Installs the SIGHUP handler (replacing the default, which ends the process) and spawns the
/// task that answers it: the TLS certificate and key are read again; a file that fails the
/// start-up checks keeps the certificate in use. Each SIGHUP logs one line.
fn reload_on_hangup(tls: Option<TlsReload>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangup.recv().await.is_some() {
            reload(tls.as_ref());
        }
    });
    Ok(())
}

/// What one SIGHUP does.
fn reload(tls: Option<&TlsReload>) {
    const FILES: &str = "the followed files are not re-read: PATHs and globs are expanded once, \
                         at start";
    let Some(tls) = tls else {
        tracing::info!("SIGHUP: nothing to reload without TLS; {FILES}");
        return;
    };
    let (cert, key) = (tls.files().cert.display(), tls.files().key.display());
    match tls.reload() {
        Ok(()) => tracing::info!(
            "SIGHUP: reloaded the TLS certificate {cert} and key {key}, used by new connections; \
             {FILES}"
        ),
        Err(error) => tracing::error!(
            "SIGHUP: TLS not reloaded, still serving the previous certificate: {error}"
        ),
    }
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
