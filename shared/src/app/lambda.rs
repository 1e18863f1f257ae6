//! A Lambda function's wiring: only the adapters its routes use, decided at compile time.

use std::sync::Arc;

use super::{App, AppError, AppParts};
use crate::adapters::clock::SystemClock;
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::entropy::OsEntropy;
use crate::adapters::keys::AwsLcKeyMaker;
use crate::adapters::outbox::OutboxMailer;
use crate::adapters::sesv2::SesMailer;
#[cfg(debug_assertions)]
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::vault::{KmsKeyVault, LocalKeyVault, NoKeyVault};
use crate::config::{Config, MailerConfig, StoreConfig, VaultConfig};
use crate::flows::bootstrap::ensure_default_tenant;
use crate::flows::FlowError;
use crate::http::routes::RouteSet;
use crate::ports::{Clock, KeyMaker, KeyVault, Mailer, Store, WrappedDataKeyStore};

/// The AWS settings of a Lambda function, from the environment Lambda gives it: `AWS_REGION`,
/// the execution role's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`
/// (fixed for the life of an execution environment), and `AWS_ENDPOINT_URL` when set. The
/// clients fill in the SDK's defaults (HTTPS client, retries, connect timeout).
fn lambda_sdk_config() -> aws_types::SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut config = aws_types::SdkConfig::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(
            var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .map(aws_sdk_dynamodb::config::Region::new),
        );
    if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        let credentials = aws_sdk_dynamodb::config::Credentials::new(
            id,
            secret,
            var("AWS_SESSION_TOKEN"),
            None,
            "lambda-environment",
        );
        config = config.credentials_provider(
            aws_sdk_dynamodb::config::SharedCredentialsProvider::new(credentials),
        );
    }
    if let Some(url) = var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(url);
    }
    config.build()
}

/// The default tenant's making, as a trait object (see `App::for_lambda`).
type BoxedMaking<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<crate::domain::Tenant, FlowError>> + Send + 'a>,
>;

/// The key maker of a function that seals nothing: it makes no key, since it could not seal
/// one; being asked is a wiring fault.
struct NoKeyMaker;

impl KeyMaker for NoKeyMaker {
    fn generate(
        &self,
        _: crate::domain::KeyId,
        _: crate::domain::SigningAlgorithm,
        _: Option<u32>,
    ) -> Result<crate::domain::signing::GeneratedKey, crate::ports::KeyGenError> {
        Err(crate::ports::KeyGenError(
            "this function makes no keys".into(),
        ))
    }

    fn import(
        &self,
        _: crate::domain::KeyId,
        _: crate::domain::signing::KeyMaterial<'_>,
    ) -> Result<crate::domain::signing::GeneratedKey, crate::ports::KeyImportError> {
        Err(crate::ports::KeyImportError::new(
            "key",
            "this function imports no keys",
        ))
    }
}

/// The mailer of a function none of whose routes mails: being asked is a wiring fault,
/// reported as the mailer being unavailable.
struct NoMailer;

#[async_trait::async_trait]
impl Mailer for NoMailer {
    async fn send(
        &self,
        _: &crate::domain::email::OutgoingEmail,
    ) -> Result<crate::ports::SentEmail, crate::ports::MailError> {
        Err(crate::ports::MailError::Unavailable(
            "this function sends no mail".into(),
        ))
    }
}

impl App {
    /// The wiring of the Lambda function `S`: only the adapters its routes use, decided at
    /// compile time so that its binary links nothing else. A function that mails gets SES (or
    /// the outbox), one that signs gets its vault; the others get neither. The AWS settings are
    /// Lambda's own environment (region, the execution role's credentials, an optional
    /// `AWS_ENDPOINT_URL`), read without `aws-config`'s provider chain, which a function never
    /// needs. Every client the function uses connects during init, concurrently: DynamoDB
    /// (`DescribeTable`), KMS (the data key's `Decrypt`), SES (`GetEmailIdentity` of the sender, when `PASSWORDLESS_SES_IDENTITY` names it).
    ///
    /// A release build (what is deployed) keeps its data in DynamoDB only; a debug build, which
    /// the local Lambda loop runs, can also open the embedded store.
    pub async fn for_lambda<S: RouteSet>(config: &Config) -> Result<App, AppError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let aws = lambda_sdk_config();
        let stores = lambda_store(config, &aws)?;
        let vaults = lambda_vault::<S>(config, &aws, stores.wrapped)?;
        let mailers = lambda_mailer::<S>(config, &aws, clock.clone());
        warm_up::<S>(
            stores.dynamo.as_deref(),
            vaults.kms.as_deref(),
            mailers.ses.as_ref(),
        )
        .await?;
        let (store, key_vault, mailer) = (stores.store, vaults.vault, mailers.mailer);
        let app = App::assemble(AppParts {
            store,
            key_vault,
            mailer,
            clock,
            entropy: Arc::new(OsEntropy),
            key_maker: if S::SEALS {
                Arc::new(AwsLcKeyMaker)
            } else {
                Arc::new(NoKeyMaker)
            },
            public_url: config.public_url.clone(),
        });
        // Making the default tenant makes its signing key, which only a function holding the
        // vault can seal: one that signs nothing serves from what the store holds and leaves
        // the making to the first that can (without this, such a function's first cold start
        // on a fresh stack failed). Boxed as a trait object under the constant, so that a
        // function that never makes a tenant does not link the making either.
        {
            let making = app.tenant_making();
            let default_tenant: Option<BoxedMaking<'_>> = if S::SEALS {
                Some(Box::pin(ensure_default_tenant(app.store.as_ref(), &making)))
            } else {
                None
            };
            if let Some(default_tenant) = default_tenant {
                default_tenant.await?;
            }
        }
        app.refuse_an_incomplete_kickstart().await?;
        Ok(app)
    }
}

/// A function's store, where its vault keeps the wrapped data key, and the DynamoDB client to
/// warm up when the store is DynamoDB.
struct LambdaStore {
    dynamo: Option<Arc<DynamoStore>>,
    store: Arc<dyn Store>,
    wrapped: Arc<dyn WrappedDataKeyStore>,
}

/// A function's vault, and the KMS client to warm up when it seals with KMS.
struct LambdaVault {
    kms: Option<Arc<KmsKeyVault>>,
    vault: Arc<dyn KeyVault>,
}

/// SES with the sending identity to check.
type SesWithIdentity = (Arc<SesMailer>, Option<String>);

/// A function's mailer, and SES to warm up when it mails through SES.
struct LambdaMailer {
    ses: Option<SesWithIdentity>,
    mailer: Arc<dyn Mailer>,
}

/// The store: DynamoDB (what is deployed), or in a debug build the embedded store.
fn lambda_store(config: &Config, aws: &aws_types::SdkConfig) -> Result<LambdaStore, AppError> {
    let dynamo = match &config.store {
        StoreConfig::DynamoDb(tables) => Some(Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(aws),
            tables.clone(),
        ))),
        StoreConfig::Sqlite(_) => None,
    };
    let (store, wrapped): (Arc<dyn Store>, Arc<dyn WrappedDataKeyStore>) = match (&dynamo, &config.store) {
        (Some(store), _) => (store.clone(), store.clone()),
        #[cfg(debug_assertions)]
        (None, StoreConfig::Sqlite(path)) => {
            let store = Arc::new(SqliteStore::open(path)?);
            (store.clone(), store)
        }
        (None, _) => {
            return Err(AppError::Wiring(
                "the Lambda functions keep their data in DynamoDB: set PASSWORDLESS_STORE=dynamodb (the embedded store is for the local server and debug builds)".into(),
            ))
        }
    };
    Ok(LambdaStore {
        dynamo,
        store,
        wrapped,
    })
}

/// The vault of a function that seals (KMS, or a local key); a function that signs nothing
/// holds no key.
fn lambda_vault<S: RouteSet>(
    config: &Config,
    aws: &aws_types::SdkConfig,
    wrapped: Arc<dyn WrappedDataKeyStore>,
) -> Result<LambdaVault, AppError> {
    let kms_vault = match (&config.vault, S::SEALS) {
        (VaultConfig::Kms(key_id), true) => Some(Arc::new(KmsKeyVault::new(
            aws_sdk_kms::Client::new(aws),
            key_id.clone(),
            wrapped,
        ))),
        _ => None,
    };
    let key_vault: Arc<dyn KeyVault> = match (&kms_vault, &config.vault, S::SEALS) {
        (Some(vault), _, _) => vault.clone(),
        (None, VaultConfig::File(path), true) => Arc::new(LocalKeyVault::open_or_create(path)?),
        (None, VaultConfig::Inline(key), true) => {
            Arc::new(LocalKeyVault::from_base64(key.expose())?)
        }
        _ => Arc::new(NoKeyVault),
    };
    Ok(LambdaVault {
        kms: kms_vault,
        vault: key_vault,
    })
}

/// SES with the sending identity to check (or the outbox) for a function that mails; no
/// mailer for the others.
fn lambda_mailer<S: RouteSet>(
    config: &Config,
    aws: &aws_types::SdkConfig,
    clock: Arc<dyn Clock>,
) -> LambdaMailer {
    let ses = match (&config.mailer, S::MAILS) {
        (
            MailerConfig::Ses {
                configuration_set,
                identity,
            },
            true,
        ) => Some((
            Arc::new(SesMailer::new(
                aws_sdk_sesv2::Client::new(aws),
                configuration_set.clone(),
            )),
            identity.clone(),
        )),
        _ => None,
    };
    let mailer: Arc<dyn Mailer> = match (&ses, &config.mailer, S::MAILS) {
        (Some((ses, _)), _, _) => ses.clone(),
        (None, MailerConfig::Outbox(dir), true) => Arc::new(OutboxMailer::new(dir, clock)),
        _ => Arc::new(NoMailer),
    };
    LambdaMailer { ses, mailer }
}

/// Connects every client the function uses, concurrently: DynamoDB (`DescribeTable`), KMS (the
/// data key's `Decrypt`), SES (whether the sending identity may send).
async fn warm_up<S: RouteSet>(
    dynamo: Option<&DynamoStore>,
    kms_vault: Option<&KmsKeyVault>,
    ses: Option<&SesWithIdentity>,
) -> Result<(), AppError> {
    let warm_store = async {
        match dynamo {
            Some(store) => store.warm_up().await,
            None => Ok(()),
        }
    };
    // Guarded by the constants too: the optimiser cannot see through the join that the
    // options are always empty in a function that neither seals nor mails.
    let warm_vault = async {
        if let (true, Some(vault)) = (S::SEALS, kms_vault) {
            vault.warm_up().await;
        }
    };
    let warm_mailer = async {
        if let (true, Some((ses, Some(identity)))) = (S::MAILS, ses) {
            // Logged, never fatal: the function still serves, and a send reports SES's own
            // error where it happens.
            match ses.identity_can_send(identity).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    "SES does not let the sending identity send yet (it is not verified)"
                ),
                Err(e) => {
                    tracing::warn!(detail = %e, "SES could not be asked about the sending identity")
                }
            }
        }
    };
    let (stored, (), ()) = tokio::join!(warm_store, warm_vault, warm_mailer);
    Ok(stored?)
}
