//! Standalone's one configuration: the control plane's keys at the top of
//! the file (as for `gochat control`) and the gateway's under `[edge]` (as
//! for `gochat edge`). Layers, each over the one before: defaults that keep
//! everything in the data dir, the file, the `GOCHAT_*` and `GOCHAT_EDGE_*`
//! variables, and the command line's flags (each only when given).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gochat_control::config::ControlConfig;
use gochat_edge::config::EdgeConfig;
use gochat_proto::settings;
use toml::{Table, Value};

/// The embedded gateway's id.
pub const GATEWAY_ID: &str = "local";

/// What the command line set; each beats the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `http.addr`.
    pub http_addr: Option<SocketAddr>,
    /// `edge.ws.addr`.
    pub ws_addr: Option<SocketAddr>,
    /// `edge.cores`.
    pub cores: Option<usize>,
    /// `auth.admin_usernames`.
    pub admins: Option<Vec<String>>,
    /// Added to `edge.ws.allowed_origins`.
    pub allowed_origins: Vec<String>,
    /// `logic.large_group_threshold`.
    pub large_group_threshold: Option<usize>,
}

/// Both halves of a standalone process's configuration.
#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    /// SQLite database, media, the generated secret and admin password.
    pub data_dir: PathBuf,
    /// The control plane (logic, repo and task on the embedded engines).
    pub control: ControlConfig,
    /// The gateway. Its browser origins get the product's own web origin
    /// added at start, once the REST listener's address is known.
    pub edge: EdgeConfig,
}

/// Sections that would take standalone off its embedded engines.
const NOT_STANDALONE: [&str; 4] = ["redis", "kafka", "services", "repo_url"];

impl StandaloneConfig {
    /// Loads the layers; `secret` signs tokens unless the file or the
    /// environment sets `auth.jwt_secret` (the gateway uses the same one
    /// unless `[edge.auth]` names its own).
    pub fn load(
        data_dir: &Path,
        file: Option<&Path>,
        env: &[(String, String)],
        flags: &Flags,
        secret: &str,
    ) -> anyhow::Result<Self> {
        let mut file = match file {
            Some(path) => settings::read(path)?,
            None => Table::new(),
        };
        let edge_file = match file.remove("edge") {
            Some(Value::Table(edge)) => edge,
            Some(_) => bail!("edge: must be a section ([edge])"),
            None => Table::new(),
        };
        let mut control = control_defaults(data_dir);
        settings::merge(&mut control, file);
        settings::apply_env(&mut control, &ControlConfig::ENV, env.iter().cloned())?;
        let mut edge = edge_defaults();
        settings::merge(&mut edge, edge_file);
        settings::apply_env(&mut edge, &EdgeConfig::ENV, env.iter().cloned())?;
        for (name, table) in [("", &control), ("edge.", &edge)] {
            if let Some(key) = NOT_STANDALONE.iter().find(|k| table.contains_key(**k)) {
                bail!(
                    "{name}{key} (from the file or a GOCHAT_ variable): standalone runs \
                     on its embedded engines; run `gochat control` and `gochat edge` \
                     for Redis and Kafka"
                );
            }
        }
        if !has(&control, &["auth", "jwt_secret"]) {
            settings::set(&mut control, "auth.jwt_secret", secret.into())?;
        }
        if !has(&edge, &["auth", "jwt_secret"]) {
            let shared = lookup(&control, &["auth", "jwt_secret"]).cloned();
            settings::set(
                &mut edge,
                "auth.jwt_secret",
                shared.unwrap_or(secret.into()),
            )?;
        }
        if edge.contains_key("tracing") {
            bail!(
                "edge.tracing (from the file or a GOCHAT_EDGE_ variable): standalone is one \
                 process with one [tracing] section, at the top"
            );
        }
        apply_flags(&mut control, &mut edge, flags)?;
        let control = ControlConfig::from_table(control).context("configuration")?;
        let mut edge = EdgeConfig::from_table(edge).context("configuration, [edge]")?;
        edge.ws
            .allowed_origins
            .extend(flags.allowed_origins.iter().cloned());
        edge.tracing = control.tracing.clone();
        Ok(Self {
            data_dir: data_dir.to_owned(),
            control,
            edge,
        })
    }
}

/// Everything in the data dir; `http.public_ws_url` empty means "the
/// WebSocket's bound port, on the name the page came from", filled at start.
fn control_defaults(data_dir: &Path) -> Table {
    let mut table = Table::new();
    let path = |name: &str| Value::String(data_dir.join(name).display().to_string());
    let sqlite = format!("sqlite://{}", data_dir.join("gochat.db").display());
    let defaults = [
        ("database.url", Value::String(sqlite)),
        ("logic.media_dir", path("media")),
        ("auth.admin_usernames", Value::Array(vec!["admin".into()])),
        // The admin accounts are made at first start, before anything
        // listens, with their generated passwords here (printed once).
        ("auth.admin_password_file", path("admin_password")),
        ("http.public_ws_url", Value::String(String::new())),
    ];
    for (key, value) in defaults {
        // Fixed paths into an empty table cannot fail.
        let _ = settings::set(&mut table, key, value);
    }
    table
}

fn edge_defaults() -> Table {
    let mut table = Table::new();
    table.insert("gateway_id".into(), GATEWAY_ID.into());
    let _ = settings::set(&mut table, "ws.addr", "127.0.0.1:8090".into());
    table
}

fn apply_flags(control: &mut Table, edge: &mut Table, flags: &Flags) -> anyhow::Result<()> {
    if let Some(addr) = flags.http_addr {
        settings::set(control, "http.addr", addr.to_string().into())?;
    }
    if let Some(addr) = flags.ws_addr {
        settings::set(edge, "ws.addr", addr.to_string().into())?;
    }
    if let Some(cores) = flags.cores {
        settings::set(edge, "cores", Value::Integer(i64::try_from(cores)?))?;
    }
    if let Some(admins) = &flags.admins {
        let list = admins.iter().map(|a| Value::String(a.clone())).collect();
        settings::set(control, "auth.admin_usernames", Value::Array(list))?;
    }
    if let Some(threshold) = flags.large_group_threshold {
        let threshold = Value::Integer(i64::try_from(threshold)?);
        settings::set(control, "logic.large_group_threshold", threshold)?;
    }
    Ok(())
}

fn lookup<'a>(table: &'a Table, path: &[&str]) -> Option<&'a Value> {
    let (last, sections) = path.split_last()?;
    let mut table = table;
    for section in sections {
        table = table.get(*section)?.as_table()?;
    }
    table.get(*last)
}

fn has(table: &Table, path: &[&str]) -> bool {
    lookup(table, path).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-generated-secret-of-at-least-32-bytes";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_keep_everything_in_the_data_dir() -> anyhow::Result<()> {
        let dir = Path::new("/srv/chat");
        let config = StandaloneConfig::load(dir, None, &[], &Flags::default(), SECRET)?;
        assert_eq!(config.control.database.url, "sqlite:///srv/chat/gochat.db");
        assert_eq!(config.control.logic.media_dir, dir.join("media"));
        assert_eq!(config.control.auth.jwt_secret, SECRET);
        assert_eq!(config.edge.auth.jwt_secret, SECRET);
        assert_eq!(config.edge.gateway_id, GATEWAY_ID);
        assert_eq!(config.edge.ws.addr.port(), 8090);
        assert_eq!(config.control.http.addr.port(), 8080);
        Ok(())
    }

    #[test]
    fn the_file_then_the_environment_then_the_flags() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("gochat-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("gochat.toml");
        std::fs::write(
            &file,
            "[logic]\nsends_per_second = 5\nlarge_group_threshold = 50\n\
             [auth]\njwt_secret = 'from-the-file-from-the-file-from-the-file'\n\
             [edge]\ncores = 3\n[edge.ws]\nallowed_origins = ['https://chat.example']\n",
        )?;
        let vars = env(&[
            ("GOCHAT_LOGIC__SENDS_PER_SECOND", "7"),
            ("GOCHAT_EDGE_WS__MAX_MESSAGE_BYTES", "4096"),
            ("GOCHAT_EDGE_CORES", "4"),
        ]);
        let flags = Flags {
            cores: Some(2),
            allowed_origins: vec!["https://other.example".into()],
            ..Flags::default()
        };
        let config = StandaloneConfig::load(&dir, Some(&file), &vars, &flags, SECRET)?;
        assert_eq!(config.control.logic.sends_per_second, 7, "env over file");
        assert_eq!(config.control.logic.large_group_threshold, 50, "file");
        assert_eq!(config.edge.ws.max_message_bytes, 4096);
        assert_eq!(config.edge.cores, 2, "flag over env over file");
        assert_eq!(
            config.edge.ws.allowed_origins,
            ["https://chat.example", "https://other.example"]
        );
        let secret = "from-the-file-from-the-file-from-the-file";
        assert_eq!(config.control.auth.jwt_secret, secret);
        assert_eq!(config.edge.auth.jwt_secret, secret, "one secret");
        assert!(!config.edge.tracing.enabled());
        let vars = env(&[("GOCHAT_TRACING__OTLP_ENDPOINT", "http://collector:4317")]);
        let config = StandaloneConfig::load(&dir, None, &vars, &Flags::default(), SECRET)?;
        assert_eq!(config.edge.tracing, config.control.tracing, "one [tracing]");
        assert!(config.edge.tracing.enabled());
        Ok(())
    }

    #[test]
    fn engines_and_unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("gochat-cfg-{}", uuid::Uuid::new_v4()));
        let _ = std::fs::create_dir_all(&dir);
        for text in [
            "[kafka]\nbrokers = 'b:9092'\n",
            "[edge.redis]\nurl = 'redis://x'\n",
            "[logic]\nsends_per_secnd = 5\n",
            "[edge.ws]\nadr = '1.2.3.4:5'\n",
            "[edge.tracing]\notlp_endpoint = 'http://collector:4317'\n",
            "[tracing]\nsample_ratio = 2.0\n",
        ] {
            let file = dir.join("bad.toml");
            let _ = std::fs::write(&file, text);
            let loaded = StandaloneConfig::load(&dir, Some(&file), &[], &Flags::default(), SECRET);
            assert!(loaded.is_err(), "{text}");
        }
        let vars = env(&[("GOCHAT_KAFKA__BROKERS", "b:9092")]);
        let loaded = StandaloneConfig::load(&dir, None, &vars, &Flags::default(), SECRET);
        assert!(loaded.is_err(), "Kafka from the environment");
    }
}
