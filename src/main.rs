//! gochat: the one user-facing binary. Subcommands choose what runs:
//! `standalone` (everything in one process, embedded engines), `control`
//! (logic, repo and task services, any subset) and `edge` (the WebSocket gateway).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gochat::telemetry::{init_logs, init_traces};
use gochat_control::config::{ControlConfig, parse_services};
use gochat_control::{ControlListeners, run};
use gochat_proto::tls::ServerTls;
use gochat_proto::trace::TracingConfig;
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
        /// TOML config file: the control plane's keys at the top, the
        /// gateway's under `[edge]`; `GOCHAT_*` and `GOCHAT_EDGE_*`
        /// variables override it, and the flags below override both.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// REST API (and web client) [default: 127.0.0.1:8080, `http.addr`].
        #[arg(long)]
        http_addr: Option<std::net::SocketAddr>,
        /// WebSocket [default: 127.0.0.1:8090, `edge.ws.addr`].
        #[arg(long)]
        ws_addr: Option<std::net::SocketAddr>,
        /// Edge worker cores; 0: one per CPU [default: `edge.cores`, 0].
        #[arg(long)]
        cores: Option<usize>,
        /// Usernames allowed to use the admin API, comma-separated
        /// [default: admin, `auth.admin_usernames`].
        #[arg(long)]
        admins: Option<String>,
        /// Browser origins allowed on the WebSocket besides the product's own (comma-separated).
        #[arg(long, default_value = "")]
        allowed_origins: String,
        /// Groups from this many members on go through the gateways' group
        /// rooms [default: `logic.large_group_threshold`, 500].
        #[arg(long)]
        large_group_threshold: Option<usize>,
    },
    /// Configuration files: check one, or print the reference of every key.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
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
        /// Serve `wss://` with this certificate chain (PEM; with `--tls-key`).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of `--tls-cert` (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// The core's monoio driver: `auto`, `io_uring` or `legacy` (epoll).
        #[arg(long, default_value = "auto", value_parser = driver_choice)]
        driver: gochat_edge::config::DriverChoice,
        /// Never coalesce a busy core's wake-ups (the edge config's
        /// `coalesce = false`).
        #[arg(long)]
        no_coalesce: bool,
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

#[derive(Subcommand)]
enum ConfigAction {
    /// Loads FILE as the chosen process would (with this environment's
    /// `GOCHAT_*` overrides), validates it and prints the effective
    /// configuration, secrets masked.
    Check {
        /// The TOML file.
        file: PathBuf,
        /// Which process it configures.
        #[arg(long = "for", value_enum, default_value = "control")]
        kind: gochat::config_cmd::Kind,
        /// Standalone's data dir (its defaults live there).
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
    /// Prints the reference of every key (docs/configuration.md).
    Reference,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Standalone {
            data_dir,
            config,
            http_addr,
            ws_addr,
            cores,
            admins,
            allowed_origins,
            large_group_threshold,
        } => {
            let flags = gochat::standalone::Flags {
                http_addr,
                ws_addr,
                cores,
                admins: admins.as_deref().map(comma_list),
                allowed_origins: comma_list(&allowed_origins),
                large_group_threshold,
            };
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let secret = gochat::standalone::jwt_secret(&data_dir)?;
            let env: Vec<(String, String)> = std::env::vars().collect();
            let config = gochat::standalone::StandaloneConfig::load(
                &data_dir,
                config.as_deref(),
                &env,
                &flags,
                &secret,
            )?;
            let tracing = config.control.tracing.clone();
            // A gateway's process gives freed memory back (connect storms).
            gochat::memory::spawn_trimmer();
            traced(&tracing, "gochat-standalone".into(), standalone(config))
        }
        Command::Config { action } => match action {
            ConfigAction::Check {
                file,
                kind,
                data_dir,
            } => {
                init_logs(&TracingConfig::default());
                let env: Vec<(String, String)> = std::env::vars().collect();
                let effective = gochat::config_cmd::check(kind, &file, &data_dir, &env)?;
                println!("# {}: valid\n{effective}", file.display());
                Ok(())
            }
            ConfigAction::Reference => {
                print!("{}", gochat::config_cmd::reference());
                Ok(())
            }
        },
        Command::Echo {
            addr,
            tls_cert,
            tls_key,
            driver,
            no_coalesce,
        } => {
            let tls = tls_cert
                .zip(tls_key)
                .map(|(cert_file, key_file)| ServerTls {
                    cert_file,
                    key_file,
                });
            init_logs(&Default::default());
            gochat::memory::spawn_trimmer();
            runtime()?.block_on(echo(addr, tls, driver, !no_coalesce))
        }
        Command::Edge { config } => {
            let config =
                gochat_edge::config::EdgeConfig::load(config.as_deref(), std::env::vars())?;
            let tracing = config.tracing.clone();
            gochat::memory::spawn_trimmer();
            traced(&tracing, "gochat-edge".into(), edge(config))
        }
        Command::Control { config, services } => {
            let mut config = ControlConfig::load(config.as_deref(), std::env::vars())?;
            if let Some(list) = services {
                config.services = parse_services(&list)?;
                config.validate()?;
            }
            let services: Vec<String> = config
                .services
                .iter()
                .map(|s| format!("{s:?}").to_lowercase())
                .collect();
            let tracing = config.tracing.clone();
            traced(
                &tracing,
                format!("gochat-{}", services.join("+")),
                control(config),
            )
        }
    }
}

async fn edge(config: gochat_edge::config::EdgeConfig) -> anyhow::Result<()> {
    let mut listeners = gochat_edge::EdgeListeners::bind(config.ws.addr, config.core_count())
        .with_context(|| format!("binding {}", config.ws.addr))?;
    if let Some(ops) = config.ops.addr {
        listeners = listeners
            .with_ops(ops)
            .with_context(|| format!("binding {ops}"))?;
        println!("gochat edge: /metrics, /healthz and /readyz on http://{ops}/");
    }
    let scheme = if config.ws.tls.is_some() { "wss" } else { "ws" };
    let gateway = gochat::edge_cmd::start(config, listeners).await?;
    println!(
        "gochat edge: WebSocket on {scheme}://{}/ws",
        gateway.ws_addr
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    reload_on_hangup(&shutdown, || gateway.reload_tls()).await;
    gateway.shutdown().await;
    Ok(())
}

async fn echo(
    addr: std::net::SocketAddr,
    tls: Option<ServerTls>,
    driver: gochat_edge::config::DriverChoice,
    coalesce: bool,
) -> anyhow::Result<()> {
    let listeners =
        gochat_edge::EdgeListeners::bind(addr, 1).with_context(|| format!("binding {addr}"))?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let server = gochat::links::echo_server(listeners, tls, driver, coalesce)?;
    println!("gochat echo: {scheme}://{addr}/ (protocol test mode)");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    shutdown.cancelled().await;
    server.stop().await;
    Ok(())
}

/// `--driver`, spelled as in the edge config's `driver` key.
fn driver_choice(text: &str) -> anyhow::Result<gochat_edge::config::DriverChoice> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .with_context(|| format!("unknown driver {text:?} (auto, io_uring or legacy)"))
}

fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

/// Runs `main` on the runtime with logs and traces set up as `tracing`
/// says; the spans still queued are exported before the process ends.
fn traced(
    tracing: &TracingConfig,
    service: String,
    main: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    init_logs(tracing);
    let runtime = runtime()?;
    let telemetry = runtime.block_on(async { init_traces(tracing, service) })?;
    let result = runtime.block_on(main);
    telemetry.shutdown();
    result
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

async fn standalone(config: gochat::standalone::StandaloneConfig) -> anyhow::Result<()> {
    let http_addr = config.control.http.addr;
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding {http_addr}"))?;
    let ws_addr = config.edge.ws.addr;
    let mut ws = gochat_edge::EdgeListeners::bind(ws_addr, config.edge.core_count())
        .with_context(|| format!("binding {ws_addr}"))?;
    if let Some(ops) = config.edge.ops.addr {
        ws = ws.with_ops(ops).with_context(|| format!("binding {ops}"))?;
    }
    let http_scheme = if config.control.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let ws_scheme = if config.edge.ws.tls.is_some() {
        "wss"
    } else {
        "ws"
    };
    let running = gochat::standalone::start(config, http, ws).await?;
    println!("GoChat is running.");
    println!(
        "  web client and REST API: {http_scheme}://{}/  (API under /api/v1)",
        running.http_addr
    );
    println!(
        "  WebSocket:               {ws_scheme}://{}/ws?token=<token>",
        running.ws_addr
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    reload_on_hangup(&shutdown, || running.reload_tls()).await;
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

/// Until `shutdown`, each SIGHUP calls `reload` (the gateway's certificate;
/// the REST listener's reloads on its own).
async fn reload_on_hangup(shutdown: &CancellationToken, reload: impl Fn()) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: no certificate reloads");
            shutdown.cancelled().await;
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(()) = hangups.recv() => reload(),
        }
    }
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
