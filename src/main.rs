//! gochat: the one user-facing binary. Subcommands choose what runs:
//! `standalone` (everything in one process, embedded engines), `control`
//! (logic, repo and task services, any subset) and `edge` (the WebSocket gateway).

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
    /// Everything in one process with embedded engines (SQLite, in-process
    /// state and log): the quickest way to try GoChat.
    Standalone {
        /// Database, media and the generated token secret live here.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// REST API (and web client).
        #[arg(long, default_value = "127.0.0.1:8080")]
        http_addr: std::net::SocketAddr,
        /// WebSocket.
        #[arg(long, default_value = "127.0.0.1:8090")]
        ws_addr: std::net::SocketAddr,
        /// Edge worker cores (0: one per CPU).
        #[arg(long, default_value_t = 0)]
        cores: usize,
        /// Usernames allowed to use the admin API (comma-separated).
        #[arg(long, default_value = "admin")]
        admins: String,
        /// Browser origins allowed on the WebSocket besides the product's own (comma-separated).
        #[arg(long, default_value = "")]
        allowed_origins: String,
        /// Groups from this many members on go through the gateways' group
        /// rooms (default: the control plane's, 500).
        #[arg(long)]
        large_group_threshold: Option<usize>,
    },
    /// One WebSocket gateway on Kafka and Redis (config: TOML and
    /// `GOCHAT_EDGE_SECTION__KEY` variables).
    Edge {
        /// TOML config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Protocol test server: the edge's WebSocket stack echoing every message,
    /// with no authentication (for Autobahn|Testsuite; never in production).
    #[command(hide = true)]
    Echo {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:9001")]
        addr: std::net::SocketAddr,
    },
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
        Command::Standalone {
            data_dir,
            http_addr,
            ws_addr,
            cores,
            admins,
            allowed_origins,
            large_group_threshold,
        } => {
            let options = gochat::standalone::Options {
                data_dir,
                cores,
                admin_usernames: comma_list(&admins),
                extra_origins: comma_list(&allowed_origins),
                large_group_threshold,
            };
            runtime()?.block_on(standalone(options, http_addr, ws_addr))
        }
        Command::Echo { addr } => runtime()?.block_on(echo(addr)),
        Command::Edge { config } => {
            let config =
                gochat_edge::config::EdgeConfig::load(config.as_deref(), std::env::vars())?;
            runtime()?.block_on(edge(config))
        }
        Command::Control { config, services } => {
            let mut config = ControlConfig::load(config.as_deref(), std::env::vars())?;
            if let Some(list) = services {
                config.services = parse_services(&list)?;
                config.validate()?;
            }
            runtime()?.block_on(control(config))
        }
    }
}

async fn edge(config: gochat_edge::config::EdgeConfig) -> anyhow::Result<()> {
    let listeners = gochat_edge::EdgeListeners::bind(config.ws.addr, config.core_count())
        .with_context(|| format!("binding {}", config.ws.addr))?;
    let gateway = gochat::edge_cmd::start(config, listeners).await?;
    println!("gochat edge: WebSocket on ws://{}/ws", gateway.ws_addr);
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    shutdown.cancelled().await;
    gateway.shutdown().await;
    Ok(())
}

async fn echo(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let listeners =
        gochat_edge::EdgeListeners::bind(addr, 1).with_context(|| format!("binding {addr}"))?;
    let server = gochat::links::echo_server(listeners)?;
    println!("gochat echo: ws://{addr}/ (protocol test mode)");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    shutdown.cancelled().await;
    server.stop().await;
    Ok(())
}

fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

async fn standalone(
    options: gochat::standalone::Options,
    http_addr: std::net::SocketAddr,
    ws_addr: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding {http_addr}"))?;
    let cores = if options.cores > 0 {
        options.cores
    } else {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    };
    let ws = gochat_edge::EdgeListeners::bind(ws_addr, cores)
        .with_context(|| format!("binding {ws_addr}"))?;
    let running = gochat::standalone::start(options, http, ws).await?;
    println!("GoChat is running.");
    println!(
        "  web client and REST API: http://{}/  (API under /api/v1)",
        running.http_addr
    );
    println!(
        "  WebSocket:               ws://{}/ws?token=<token>",
        running.ws_addr
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    shutdown.cancelled().await;
    running.shutdown().await;
    Ok(())
}

async fn control(config: ControlConfig) -> anyhow::Result<()> {
    let listeners = ControlListeners::bind(&config)
        .await
        .context("binding listeners")?;
    if let Some(http) = &listeners.http {
        println!(
            "gochat control: web client and REST API on http://{}/ (API under /api/v1)",
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
