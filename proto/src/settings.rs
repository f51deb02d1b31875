//! The configuration convention every GoChat binary shares: a TOML file, then
//! environment overrides `PREFIX` + `SECTION__KEY=value` (values written as in
//! TOML — numbers, booleans, arrays — anything else taken as a string). The
//! typed config that the result deserialises into refuses unknown keys.

use std::path::{Path, PathBuf};

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

/// Reads `path` (if any) and applies every `prefix…` variable of `env` except
/// those `ignore` names: an entry ending in `_` ignores every name it starts,
/// any other entry ignores exactly that name.
pub fn load(
    path: Option<&Path>,
    prefix: &str,
    ignore: &[&str],
    env: impl Iterator<Item = (String, String)>,
) -> Result<toml::Table, SettingsError> {
    let mut table = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| SettingsError::Read {
                path: p.into(),
                source,
            })?;
            text.parse::<toml::Table>()
                .map_err(|e| SettingsError::Parse(e.to_string()))?
        }
        None => toml::Table::new(),
    };
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        if ignore.iter().any(|i| {
            if i.ends_with('_') {
                rest.starts_with(i)
            } else {
                rest == *i
            }
        }) {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        set_path(&mut table, &path, parse_value(&value))?;
    }
    Ok(table)
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

    #[test]
    fn overrides_nest_and_keep_types() {
        let env = [
            ("X_A__B", "5"),
            ("X_A__C", "text"),
            ("X_SKIP_ME", "1"),
            ("OTHER", "1"),
            ("X_L", "[1, 2]"),
        ];
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let table = load(None, "X_", &["SKIP_"], env).expect("valid");
        assert_eq!(table["a"]["b"].as_integer(), Some(5));
        assert_eq!(table["a"]["c"].as_str(), Some("text"));
        assert_eq!(table["l"].as_array().map(Vec::len), Some(2));
        assert!(!table.contains_key("skip_me") && !table.contains_key("other"));
    }
}
