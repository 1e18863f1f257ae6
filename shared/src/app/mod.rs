//! `App`: built once per process (config + adapters), shared by every invocation. The local
//! server's wiring is here; a Lambda function's is in `lambda`.

#[cfg(feature = "aws")]
mod lambda;

use std::sync::Arc;

use crate::adapters::clock::SystemClock;
use crate::adapters::entropy::OsEntropy;
use crate::adapters::keys::AwsLcKeyMaker;
use crate::adapters::outbox::OutboxMailer;
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::vault::{LocalKeyVault, NoKeyVault};
use crate::config::{Config, MailerConfig, StoreConfig, VaultConfig};
use crate::flows::bootstrap::ensure_default_tenant;
use crate::flows::keys::KeyMaking;
use crate::flows::management::TenantMaking;
use crate::flows::passwordless::{LinkBase, SendPacer};
use crate::flows::two_factor::TwoFactorPorts;
use crate::flows::verification::VerificationPorts;
use crate::flows::FlowError;
use crate::ports::{
    Clock, Entropy, KeyMaker, KeyVault, KickstartMark, Mailer, Store, StoreError, VaultError,
    WrappedDataKeyStore,
};

pub struct App {
    pub store: Arc<dyn Store>,
    pub key_vault: Arc<dyn KeyVault>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub key_maker: Arc<dyn KeyMaker>,
    pub links: LinkBase,
    pub send_pacer: SendPacer,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot open the key vault: {0}")]
    Vault(#[from] VaultError),
    #[error("cannot prepare the default tenant: {0}")]
    Bootstrap(#[from] FlowError),
    #[error("{0}")]
    Wiring(String),
    #[error("the store was half-seeded by a kickstart that stopped before its end; it is not served (seed an empty store again)")]
    IncompleteKickstart,
}

/// The parts an `App` is made of, for tests and tools that swap one.
pub struct AppParts {
    pub store: Arc<dyn Store>,
    pub key_vault: Arc<dyn KeyVault>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub key_maker: Arc<dyn KeyMaker>,
    pub public_url: String,
}

/// What a DynamoDB store, SES or KMS asks of a build without the `aws` feature (or, with it,
/// of a configuration that named none of them, which cannot happen).
fn no_aws() -> AppError {
    match cfg!(feature = "aws") {
        true => AppError::Wiring("no AWS configuration".into()),
        false => AppError::Wiring(
            "this build has no AWS support (DynamoDB, SES, KMS): build it with `--features aws`"
                .into(),
        ),
    }
}

impl App {
    /// The production wiring for a configuration: real clock, OS randomness. AWS clients are
    /// made once here and reused by every invocation of a warm instance.
    pub async fn from_config(config: &Config) -> Result<App, AppError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        #[cfg(feature = "aws")]
        let aws = {
            let needs_aws = matches!(config.store, StoreConfig::DynamoDb(_))
                || matches!(config.mailer, MailerConfig::Ses { .. })
                || matches!(config.vault, VaultConfig::Kms(_));
            match needs_aws {
                true => Some(aws_config::load_from_env().await),
                false => None,
            }
        };
        #[cfg(not(feature = "aws"))]
        let aws: Option<std::convert::Infallible> = None;
        // The store also keeps the vault's wrapped data key, when KMS seals the signing keys.
        let (store, wrapped): (Arc<dyn Store>, Arc<dyn WrappedDataKeyStore>) =
            match (&config.store, &aws) {
                (StoreConfig::Sqlite(path), _) => {
                    let store = Arc::new(SqliteStore::open(path)?);
                    (store.clone(), store)
                }
                #[cfg(feature = "aws")]
                (StoreConfig::DynamoDb(tables), Some(aws)) => {
                    let store = crate::adapters::dynamodb::DynamoStore::new(
                        aws_sdk_dynamodb::Client::new(aws),
                        tables.clone(),
                    );
                    // The first TLS handshake happens here, during init, not on a user's request.
                    store.warm_up().await?;
                    let store = Arc::new(store);
                    (store.clone(), store)
                }
                (StoreConfig::DynamoDb(_), _) => return Err(no_aws()),
            };
        // Only the KMS vault keeps its (wrapped) data key in the store.
        #[cfg(not(feature = "aws"))]
        drop(wrapped);
        let key_vault: Arc<dyn KeyVault> = match (&config.vault, &aws) {
            (VaultConfig::File(path), _) => Arc::new(LocalKeyVault::open_or_create(path)?),
            (VaultConfig::Inline(key), _) => Arc::new(LocalKeyVault::from_base64(key.expose())?),
            #[cfg(feature = "aws")]
            (VaultConfig::Kms(key_id), Some(aws)) => {
                Arc::new(crate::adapters::vault::KmsKeyVault::new(
                    aws_sdk_kms::Client::new(aws),
                    key_id.clone(),
                    wrapped,
                ))
            }
            (VaultConfig::None, _) => Arc::new(NoKeyVault),
            (VaultConfig::Kms(_), _) => return Err(no_aws()),
        };
        let mailer: Arc<dyn Mailer> = match (&config.mailer, &aws) {
            (MailerConfig::Outbox(dir), _) => Arc::new(OutboxMailer::new(dir, clock.clone())),
            #[cfg(feature = "aws")]
            (
                MailerConfig::Ses {
                    configuration_set, ..
                },
                Some(aws),
            ) => Arc::new(crate::adapters::sesv2::SesMailer::new(
                aws_sdk_sesv2::Client::new(aws),
                configuration_set.clone(),
            )),
            (MailerConfig::Ses { .. }, _) => return Err(no_aws()),
        };
        App::from_parts(AppParts {
            store,
            key_vault,
            mailer,
            clock,
            entropy: Arc::new(OsEntropy),
            key_maker: Arc::new(AwsLcKeyMaker),
            public_url: config.public_url.clone(),
        })
        .await
    }

    /// Wires the parts and makes sure the store has its default tenant.
    pub async fn from_parts(parts: AppParts) -> Result<App, AppError> {
        let app = App::assemble(parts);
        ensure_default_tenant(app.store.as_ref(), &app.tenant_making()).await?;
        app.refuse_an_incomplete_kickstart().await?;
        Ok(app)
    }

    pub(crate) fn assemble(parts: AppParts) -> App {
        App {
            store: parts.store,
            key_vault: parts.key_vault,
            mailer: parts.mailer,
            clock: parts.clock,
            entropy: parts.entropy,
            key_maker: parts.key_maker,
            links: LinkBase(parts.public_url),
            send_pacer: SendPacer::default(),
        }
    }

    pub(crate) async fn refuse_an_incomplete_kickstart(&self) -> Result<(), AppError> {
        if self.store.kickstart_mark().await? == Some(KickstartMark::Started) {
            return Err(AppError::IncompleteKickstart);
        }
        Ok(())
    }

    pub(crate) fn key_making(&self) -> KeyMaking<'_> {
        KeyMaking {
            key_maker: self.key_maker.as_ref(),
            vault: self.key_vault.as_ref(),
            clock: self.clock.as_ref(),
            entropy: self.entropy.as_ref(),
        }
    }

    pub fn verification_ports(&self) -> VerificationPorts<'_, dyn Store> {
        VerificationPorts {
            store: self.store.as_ref(),
            mailer: self.mailer.as_ref(),
            clock: self.clock.as_ref(),
            entropy: self.entropy.as_ref(),
            links: &self.links,
        }
    }

    pub(crate) fn two_factor_ports(&self) -> TwoFactorPorts<'_, dyn Store> {
        TwoFactorPorts {
            store: self.store.as_ref(),
            vault: self.key_vault.as_ref(),
            mailer: self.mailer.as_ref(),
            clock: self.clock.as_ref(),
            entropy: self.entropy.as_ref(),
        }
    }

    pub(crate) fn tenant_making(&self) -> TenantMaking<'_> {
        TenantMaking {
            key_maker: self.key_maker.as_ref(),
            vault: self.key_vault.as_ref(),
            clock: self.clock.as_ref(),
            entropy: self.entropy.as_ref(),
            default_issuer: &self.links.0,
        }
    }
}
