//! Typed configuration, read once from the environment.

use std::path::PathBuf;

/// The DynamoDB store's three table names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub config: String,
    pub users: String,
    pub codes: String,
}

impl Tables {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            config: format!("{prefix}-config"),
            users: format!("{prefix}-users"),
            codes: format!("{prefix}-codes"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded store: one SQLite file.
    Sqlite(PathBuf),
    /// DynamoDB tables, reached through the standard AWS environment (`AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, credentials).
    DynamoDb(Tables),
}

pub(crate) const DEFAULT_TABLE_PREFIX: &str = "passwordless";

impl StoreConfig {
    /// `sqlite:PATH`, `dynamodb` (tables `passwordless-config`, `-users`, `-codes`) or
    /// `dynamodb:PREFIX`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text.split_once(':').unwrap_or((text, "")) {
            ("sqlite", path) if !path.is_empty() => Ok(StoreConfig::Sqlite(PathBuf::from(path))),
            ("dynamodb", "") => Ok(StoreConfig::DynamoDb(Tables::with_prefix(
                DEFAULT_TABLE_PREFIX,
            ))),
            ("dynamodb", prefix) if valid_table_name(prefix) => {
                Ok(StoreConfig::DynamoDb(Tables::with_prefix(prefix)))
            }
            _ => Err(ConfigError::Malformed {
                name: "PASSWORDLESS_STORE",
                reason: format!("expected sqlite:PATH, dynamodb or dynamodb:PREFIX, got {text:?}"),
            }),
        }
    }
}

/// DynamoDB's rule for table names: 3 to 255 of `A-Z a-z 0-9 _ - .`.
fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailerConfig {
    /// `.eml` files in a folder.
    Outbox(PathBuf),
    /// Amazon SES v2, with an optional configuration set, and the sending identity (an address
    /// or domain) the functions check, and connect to SES with, during init.
    Ses {
        configuration_set: Option<String>,
        identity: Option<String>,
    },
}

/// Where the key that seals private signing keys comes from (S26).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultConfig {
    /// A key-encryption key in an owner-only file, created when missing.
    File(PathBuf),
    /// A key-encryption key given by the environment: base64 of 32 bytes.
    Inline(crate::domain::Secret),
    /// Envelope encryption under this KMS key (id, ARN or alias).
    Kms(String),
    /// No vault: the process cannot sign or make keys (the start and send functions).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub store: StoreConfig,
    pub mailer: MailerConfig,
    pub vault: VaultConfig,
    /// The base of every link the product builds (S13) and the default tenant's issuer.
    pub public_url: String,
}

pub const DEFAULT_STORE: &str = "sqlite:./.passwordless/store.db";
pub const DEFAULT_OUTBOX: &str = "./.passwordless/outbox";
pub(crate) const DEFAULT_PUBLIC_URL: &str = "http://localhost:9011";

impl Config {
    /// `PASSWORDLESS_STORE` (with `PASSWORDLESS_CONFIG_TABLE`, `PASSWORDLESS_USERS_TABLE` and
    /// `PASSWORDLESS_CODES_TABLE` naming DynamoDB tables one by one), `PASSWORDLESS_MAILER`
    /// (`outbox` or `ses`), `PASSWORDLESS_OUTBOX`, `PASSWORDLESS_SES_CONFIGURATION_SET`, `PASSWORDLESS_SES_IDENTITY`,
    /// `PASSWORDLESS_PUBLIC_URL`, and the key vault: `PASSWORDLESS_KMS_KEY_ID`, else
    /// `PASSWORDLESS_KEY_ENCRYPTION_KEY`, else `PASSWORDLESS_KEY_FILE`, else a `store.key` file
    /// beside an SQLite store.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut store = StoreConfig::parse(
            &lookup("PASSWORDLESS_STORE").unwrap_or_else(|| DEFAULT_STORE.to_owned()),
        )?;
        if let StoreConfig::DynamoDb(tables) = &mut store {
            for (name, table) in [
                ("PASSWORDLESS_CONFIG_TABLE", &mut tables.config),
                ("PASSWORDLESS_USERS_TABLE", &mut tables.users),
                ("PASSWORDLESS_CODES_TABLE", &mut tables.codes),
            ] {
                if let Some(value) = lookup(name) {
                    if !valid_table_name(&value) {
                        return Err(ConfigError::Malformed {
                            name,
                            reason: format!("not a DynamoDB table name: {value:?}"),
                        });
                    }
                    *table = value;
                }
            }
        }
        let mailer = match lookup("PASSWORDLESS_MAILER").as_deref().unwrap_or("outbox") {
            "outbox" => MailerConfig::Outbox(PathBuf::from(
                lookup("PASSWORDLESS_OUTBOX").unwrap_or_else(|| DEFAULT_OUTBOX.to_owned()),
            )),
            "ses" => MailerConfig::Ses {
                configuration_set: lookup("PASSWORDLESS_SES_CONFIGURATION_SET")
                    .filter(|s| !s.is_empty()),
                identity: lookup("PASSWORDLESS_SES_IDENTITY").filter(|s| !s.trim().is_empty()),
            },
            other => {
                return Err(ConfigError::Malformed {
                    name: "PASSWORDLESS_MAILER",
                    reason: format!("expected outbox or ses, got {other:?}"),
                })
            }
        };
        let public_url = parse_public_url(
            &lookup("PASSWORDLESS_PUBLIC_URL").unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned()),
        )?;
        let present = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let vault = if let Some(key) = present("PASSWORDLESS_KMS_KEY_ID") {
            VaultConfig::Kms(key)
        } else if let Some(key) = present("PASSWORDLESS_KEY_ENCRYPTION_KEY") {
            VaultConfig::Inline(crate::domain::Secret::new(key))
        } else if let Some(path) = present("PASSWORDLESS_KEY_FILE") {
            VaultConfig::File(PathBuf::from(path))
        } else {
            match &store {
                StoreConfig::Sqlite(db) => VaultConfig::File(db.with_file_name("store.key")),
                StoreConfig::DynamoDb(_) => VaultConfig::None,
            }
        };
        Ok(Self {
            store,
            mailer,
            vault,
            public_url,
        })
    }
}

/// An absolute http(s) URL, kept without its trailing slash.
pub(crate) fn parse_public_url(text: &str) -> Result<String, ConfigError> {
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
        assert_eq!(
            config.mailer,
            MailerConfig::Outbox(PathBuf::from("./.passwordless/outbox"))
        );
        assert_eq!(config.public_url, "http://localhost:9011");
        assert_eq!(
            config.vault,
            VaultConfig::File(PathBuf::from("./.passwordless/store.key"))
        );
    }

    #[test]
    fn s26_the_vault_is_kms_an_inline_key_or_a_key_file() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            Config::from_lookup(|n| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_owned())
            })
            .unwrap()
            .vault
        };
        assert_eq!(
            with(&[
                ("PASSWORDLESS_STORE", "dynamodb"),
                ("PASSWORDLESS_KMS_KEY_ID", "alias/x")
            ]),
            VaultConfig::Kms("alias/x".into())
        );
        assert_eq!(
            with(&[("PASSWORDLESS_STORE", "dynamodb")]),
            VaultConfig::None
        );
        assert_eq!(
            with(&[("PASSWORDLESS_KEY_FILE", "/run/secrets/kek")]),
            VaultConfig::File(PathBuf::from("/run/secrets/kek"))
        );
        let inline = format!(
            "{:?}",
            with(&[("PASSWORDLESS_KEY_ENCRYPTION_KEY", "c2VjcmV0")])
        );
        assert!(
            !inline.contains("c2VjcmV0"),
            "the key never prints: {inline}"
        );
    }

    #[test]
    fn malformed_values_are_named_in_the_error() {
        for (name, value) in [
            ("PASSWORDLESS_STORE", "postgres://x"),
            ("PASSWORDLESS_PUBLIC_URL", "localhost"),
            ("PASSWORDLESS_MAILER", "pigeon"),
        ] {
            let err = Config::from_lookup(|n| (n == name).then(|| value.to_owned())).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        assert_eq!(
            parse_public_url("https://login.example/").unwrap(),
            "https://login.example"
        );
        assert!(StoreConfig::parse("dynamodb:no spaces").is_err());
    }

    #[test]
    fn dynamodb_tables_come_from_a_prefix_or_one_by_one() {
        let config = Config::from_lookup(|n| match n {
            "PASSWORDLESS_STORE" => Some("dynamodb:prod".to_owned()),
            "PASSWORDLESS_CODES_TABLE" => Some("prod-codes-v2".to_owned()),
            "PASSWORDLESS_MAILER" => Some("ses".to_owned()),
            _ => None,
        })
        .unwrap();
        let StoreConfig::DynamoDb(tables) = config.store else {
            panic!("not dynamodb")
        };
        assert_eq!(
            (
                tables.config.as_str(),
                tables.users.as_str(),
                tables.codes.as_str()
            ),
            ("prod-config", "prod-users", "prod-codes-v2")
        );
        assert_eq!(
            config.mailer,
            MailerConfig::Ses {
                configuration_set: None,
                identity: None
            }
        );
    }
}
