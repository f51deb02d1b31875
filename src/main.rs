//! gochat: the one user-facing binary. Subcommands choose what runs:
//! `control` (logic, repo and task services, any subset). The edge gateway and
//! standalone mode arrive with the edge issue.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gochat_control::config::{ControlConfig, parse_services};
use gochat_control::{ControlListeners, run};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "gochat", version, about = "GoChat instant messaging")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The control plane: REST API, message pipeline, storage, tasks.
    Control {
        /// TOML config file; `GOCHAT_SECTION__KEY` variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Services to host, e.g. `logic,repo,task` (default: all).
        #[arg(long)]
        services: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GOCHAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        Command::Control { config, services } => {
            let mut config = ControlConfig::load(config.as_deref(), std::env::vars())?;
            if let Some(list) = services {
                config.services = parse_services(&list)?;
                config.validate()?;
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?
                .block_on(control(config))
        }
    }
}

async fn control(config: ControlConfig) -> anyhow::Result<()> {
    let listeners = ControlListeners::bind(&config)
        .await
        .context("binding listeners")?;
    if let Some(http) = &listeners.http {
        println!(
            "gochat control: REST API on http://{}/api/v1",
            http.local_addr()?
        );
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    run(config, listeners, shutdown).await?;
    Ok(())
}

/// SIGTERM or Ctrl-C starts a graceful shutdown.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
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
    tracing::info!("shutting down");
    shutdown.cancel();
}
