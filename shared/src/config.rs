//! Typed configuration, read once from the environment.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded store: one SQLite file.
    Sqlite(PathBuf),
}

impl StoreConfig {
    /// `sqlite:PATH`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => {
                Ok(StoreConfig::Sqlite(PathBuf::from(path)))
            }
            _ => Err(ConfigError::Malformed {
                name: "PASSWORDLESS_STORE",
                reason: format!("expected sqlite:PATH, got {text:?}"),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub store: StoreConfig,
    /// Where the outbox mailer writes `.eml` files.
    pub outbox: PathBuf,
    /// The base of every link the product builds (S13) and the default tenant's issuer.
    pub public_url: String,
}

pub const DEFAULT_STORE: &str = "sqlite:./.passwordless/store.db";
pub const DEFAULT_OUTBOX: &str = "./.passwordless/outbox";
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:9011";

impl Config {
    /// `PASSWORDLESS_STORE`, `PASSWORDLESS_OUTBOX`, `PASSWORDLESS_PUBLIC_URL`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let store = StoreConfig::parse(
            &lookup("PASSWORDLESS_STORE").unwrap_or_else(|| DEFAULT_STORE.to_owned()),
        )?;
        let outbox = PathBuf::from(
            lookup("PASSWORDLESS_OUTBOX").unwrap_or_else(|| DEFAULT_OUTBOX.to_owned()),
        );
        let public_url = parse_public_url(
            &lookup("PASSWORDLESS_PUBLIC_URL").unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned()),
        )?;
        Ok(Self {
            store,
            outbox,
            public_url,
        })
    }
}

/// An absolute http(s) URL, kept without its trailing slash.
pub fn parse_public_url(text: &str) -> Result<String, ConfigError> {
    let trimmed = text.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty()
                && !host.contains(char::is_whitespace)
                && !host.contains(['?', '#']) =>
        {
            Ok(trimmed.to_owned())
        }
        _ => Err(ConfigError::Malformed {
            name: "PASSWORDLESS_PUBLIC_URL",
            reason: format!("expected an http(s) URL, got {text:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_environment() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(
            config.store,
            StoreConfig::Sqlite(PathBuf::from("./.passwordless/store.db"))
        );
        assert_eq!(config.public_url, "http://localhost:9011");
    }

    #[test]
    fn malformed_values_are_named_in_the_error() {
        let err =
            Config::from_lookup(|n| (n == "PASSWORDLESS_STORE").then(|| "postgres://x".to_owned()))
                .unwrap_err();
        assert!(err.to_string().contains("PASSWORDLESS_STORE"));
        let err = Config::from_lookup(|n| {
            (n == "PASSWORDLESS_PUBLIC_URL").then(|| "localhost".to_owned())
        })
        .unwrap_err();
        assert!(err.to_string().contains("PASSWORDLESS_PUBLIC_URL"));
        assert_eq!(
            parse_public_url("https://login.example/").unwrap(),
            "https://login.example"
        );
    }
}
