//! The configuration convention every GoChat binary shares: a TOML file, then
//! environment overrides `PREFIX` + `SECTION__KEY=value` (values written as in
//! TOML — numbers, booleans, arrays — anything else taken as a string). The
//! typed config that the result deserialises into refuses unknown keys.
//!
//! Which variables are overrides is decided by their shape, not by a list of
//! exceptions ([`EnvRule`]): `PREFIX` + `SECTION__KEY` (a double underscore)
//! always is, so a misspelt key is refused; `PREFIX` + `NAME` without one is
//! an override only when `NAME` is a top-level key of the config, so the
//! scripts' and tests' own variables (`GOCHAT_STACK_DIR`, `GOCHAT_BIN`, ...)
//! can never stop a binary from starting. The Redis and Kafka sections are
//! shared by every binary ([`RedisConfig`], [`KafkaConfig`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Redis, as every binary configures it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`, or `rediss://` for TLS (the system's root
    /// certificates are trusted unless `[redis.tls]` names a CA).
    pub url: String,
    /// Prefix for every key (several deployments on one Redis).
    #[serde(default)]
    pub key_prefix: String,
    /// Certificates for a `rediss://` URL: a private CA, a client
    /// certificate for servers that require one.
    #[serde(default)]
    pub tls: Option<ClientTls>,
    /// How long a command may wait for its answer before it fails (ms). A
    /// busy host answers slowly, not never: redis-rs's own 500 ms refused
    /// connects under reconnect storms, while an unreachable Redis still
    /// fails at once (the connection is refused or reset).
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
}

fn default_response_timeout_ms() -> u64 {
    3000
}

impl RedisConfig {
    /// `url` with every other setting at its default.
    pub fn at(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: String::new(),
            tls: None,
            response_timeout_ms: default_response_timeout_ms(),
        }
    }
}

/// The files of a TLS client (PEM): whom to trust, and who this process is
/// for a server that asks (mutual TLS). Paths are read at start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// CA certificates trusted instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This process's certificate chain (with `key_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// Kafka, as every binary configures it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port,...`.
    pub brokers: String,
    /// Prefix for topic and group names (several deployments on one broker).
    #[serde(default)]
    pub topic_prefix: String,
    /// Create the topics this process uses when missing (with replication 1:
    /// production provisions its topics and turns this off). `create_topic`
    /// is accepted too, the gateway's earlier spelling.
    #[serde(default = "yes", alias = "create_topic")]
    pub create_topics: bool,
    /// Idempotent producers (no duplicates from producer retries).
    #[serde(default = "yes")]
    pub idempotence: bool,
    /// TLS to the brokers (librdkafka's `security.protocol=ssl`): present,
    /// even empty, turns it on; the system's root certificates are trusted
    /// unless it names a CA.
    #[serde(default)]
    pub tls: Option<ClientTls>,
}

impl KafkaConfig {
    /// The librdkafka properties every Kafka client of this config starts
    /// from: where the brokers are and how to reach them.
    pub fn client_properties(&self) -> Vec<(&'static str, String)> {
        kafka_client_properties(&self.brokers, self.tls.as_ref())
    }
}

/// The librdkafka properties for `brokers`, over TLS with `tls`.
pub fn kafka_client_properties(
    brokers: &str,
    tls: Option<&ClientTls>,
) -> Vec<(&'static str, String)> {
    let mut properties = vec![("bootstrap.servers", brokers.to_owned())];
    if let Some(tls) = tls {
        properties.push(("security.protocol", "ssl".to_owned()));
        for (key, path) in [
            ("ssl.ca.location", &tls.ca_file),
            ("ssl.certificate.location", &tls.cert_file),
            ("ssl.key.location", &tls.key_file),
        ] {
            if let Some(path) = path {
                properties.push((key, path.display().to_string()));
            }
        }
    }
    properties
}

fn yes() -> bool {
    true
}

/// Which environment variables configure a binary.
#[derive(Debug, Clone, Copy)]
pub struct EnvRule<'a> {
    /// Every override starts with it, e.g. `GOCHAT_`.
    pub prefix: &'a str,
    /// Keys that may be set without a section (`GOCHAT_SERVICES`), lowercase.
    pub top_level: &'a [&'a str],
    /// Longer prefixes that belong to another binary (`GOCHAT_EDGE_` under
    /// `GOCHAT_`): their variables are never this binary's.
    pub others: &'a [&'a str],
}

impl EnvRule<'_> {
    /// The config path a variable sets, if it is an override.
    fn path_of(&self, name: &str) -> Option<Vec<String>> {
        let rest = name.strip_prefix(self.prefix)?;
        if self.others.iter().any(|o| name.starts_with(o)) {
            return None;
        }
        if rest.contains("__") {
            return Some(rest.split("__").map(str::to_lowercase).collect());
        }
        let key = rest.to_lowercase();
        self.top_level.contains(&key.as_str()).then(|| vec![key])
    }
}

/// Why a config could not be read.
#[derive(Debug)]
pub enum SettingsError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML or an override is malformed.
    Parse(String),
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingsError::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            SettingsError::Parse(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SettingsError {}

/// Reads `path` (if any) and applies every variable of `env` that `rule`
/// says is an override.
pub fn load(
    path: Option<&Path>,
    rule: &EnvRule<'_>,
    env: impl Iterator<Item = (String, String)>,
) -> Result<toml::Table, SettingsError> {
    let mut table = match path {
        Some(p) => read(p)?,
        None => toml::Table::new(),
    };
    apply_env(&mut table, rule, env)?;
    Ok(table)
}

/// The TOML file at `path`.
pub fn read(path: &Path) -> Result<toml::Table, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.into(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| SettingsError::Parse(format!("{}: {e}", path.display())))
}

/// Applies every variable of `env` that `rule` says is an override.
pub fn apply_env(
    table: &mut toml::Table,
    rule: &EnvRule<'_>,
    env: impl Iterator<Item = (String, String)>,
) -> Result<(), SettingsError> {
    for (name, value) in env {
        if let Some(path) = rule.path_of(&name) {
            set_path(table, &path, parse_value(&value))?;
        }
    }
    Ok(())
}

/// Sets `value` at a dotted `path` (`http.addr`), making the sections.
pub fn set(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), SettingsError> {
    let path: Vec<String> = path.split('.').map(str::to_owned).collect();
    set_path(table, &path, value)
}

/// Lays `overlay` over `base`: sections merge key by key, anything else
/// in `overlay` replaces what `base` had.
pub fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => merge(inner, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn parse_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn set_path(
    table: &mut toml::Table,
    path: &[String],
    value: toml::Value,
) -> Result<(), SettingsError> {
    match path {
        [] => Ok(()),
        [key] => {
            table.insert(key.clone(), value);
            Ok(())
        }
        [section, rest @ ..] => match table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            toml::Value::Table(inner) => set_path(inner, rest, value),
            _ => Err(SettingsError::Parse(format!("{section} is not a section"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: EnvRule<'static> = EnvRule {
        prefix: "X_",
        top_level: &["l", "name"],
        others: &["X_OTHER_"],
    };

    fn load_env(env: &[(&str, &str)]) -> toml::Table {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        load(None, &RULE, env).expect("valid")
    }

    #[test]
    fn overrides_nest_and_keep_types() {
        let table = load_env(&[("X_A__B", "5"), ("X_A__C", "text"), ("X_L", "[1, 2]")]);
        assert_eq!(table["a"]["b"].as_integer(), Some(5));
        assert_eq!(table["a"]["c"].as_str(), Some("text"));
        assert_eq!(table["l"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn only_sections_and_known_top_level_keys_are_overrides() {
        let table = load_env(&[
            ("X_NAME", "n"),
            ("X_STACK_DIR", "/tmp/x"),
            ("X_AUTOBAHN_DIR", "/tmp/y"),
            ("X_OTHER_A__B", "1"),
            ("OTHER", "1"),
        ]);
        assert_eq!(table.len(), 1, "{table:?}");
        assert_eq!(table["name"].as_str(), Some("n"));
        // A section override is always one, so a misspelt section reaches the
        // typed config and is refused there.
        assert!(load_env(&[("X_TYPO__KEY", "1")]).contains_key("typo"));
    }

    #[test]
    fn an_overlay_merges_sections_and_replaces_values() {
        let mut base: toml::Table = toml::from_str("a = 1\n[s]\nx = 1\ny = [1]\n").expect("valid");
        let over: toml::Table = toml::from_str("[s]\ny = [2, 3]\nz = 'new'\n").expect("valid");
        merge(&mut base, over);
        assert_eq!(base["a"].as_integer(), Some(1));
        assert_eq!(base["s"]["x"].as_integer(), Some(1));
        assert_eq!(base["s"]["y"].as_array().map(Vec::len), Some(2));
        assert_eq!(base["s"]["z"].as_str(), Some("new"));
        set(&mut base, "t.u.v", toml::Value::Boolean(true)).expect("a path");
        assert_eq!(base["t"]["u"]["v"].as_bool(), Some(true));
    }

    #[test]
    fn kafka_accepts_the_gateways_spelling() {
        let k: KafkaConfig =
            toml::from_str("brokers = \"b:9092\"\ncreate_topic = false").expect("valid");
        assert!(!k.create_topics && k.idempotence);
    }
}
