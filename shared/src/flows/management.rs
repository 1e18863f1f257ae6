//! The part of FusionAuth's management API that kickstart files and the Python client need:
//! tenants, applications, users with registrations, email templates and API keys.

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::domain::ids::{ApiKeyId, RegistrationId, RoleId};
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{
    ApiKey, ApiKeyPermissions, Application, ApplicationId, EmailTemplate, Instant, KeyId,
    Registration, Secret, SigningKey, TemplateId, Tenant, TenantId, User, UserId,
};
use crate::ports::{
    ApiKeyStore, ApplicationStore, Clock, Entropy, KeyMaker, KeyVault, SigningKeyStore, StoreError,
    TemplateStore, TenantStore, UserStore,
};

use super::tenancy::TenantScope;
use super::{random_id_bytes, FlowError, FlowResult};

/// Decodes one object of a request body, reporting a wrong type at its full field path
/// (`[invalid]tenant.externalIdentifierConfiguration.passwordlessLoginGenerator.length`).
pub fn decode<T: DeserializeOwned>(value: Value, root: &str) -> Result<T, ValidationErrors> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            root.to_owned()
        } else {
            format!("{root}.{path}")
        };
        let message = e.into_inner().to_string();
        ValidationErrors::field(FieldError::invalid(&field, message))
    })
}

/// The object under `key` in a request body, or `[missing]key`.
pub fn take_object(
    body: &mut Map<String, Value>,
    key: &str,
) -> Result<Map<String, Value>, ValidationErrors> {
    match body.remove(key) {
        Some(Value::Object(map)) => Ok(map),
        Some(Value::Null) | None => Err(ValidationErrors::field(FieldError::missing(key))),
        Some(_) => Err(ValidationErrors::field(FieldError::invalid(
            key,
            format!("[{key}] must be an object."),
        ))),
    }
}

fn stamp(object: &mut Map<String, Value>, id: impl ToString, now: Instant) {
    object.insert("id".into(), json!(id.to_string()));
    object.insert("insertInstant".into(), json!(now.as_millis()));
    object.insert("lastUpdateInstant".into(), json!(now.as_millis()));
}

fn duplicate(field: &str, what: &str) -> FlowError {
    ValidationErrors::field(FieldError::new(
        "duplicate",
        field,
        format!("{what} already exists."),
    ))
    .into()
}

/// Everything tenant creation needs besides the store.
pub struct TenantMaking<'a> {
    pub key_maker: &'a dyn KeyMaker,
    pub vault: &'a dyn KeyVault,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
    /// The public URL: the default tenant's issuer, and the base of every other tenant's.
    pub default_issuer: &'a str,
}

/// Creates a tenant and its signing key (RS256 unless `jwtConfiguration.signingAlgorithm` says
/// otherwise), unless the body names an existing key.
pub async fn create_tenant<S>(
    store: &S,
    making: &TenantMaking<'_>,
    scope: &TenantScope,
    id: Option<TenantId>,
    mut object: Map<String, Value>,
) -> FlowResult<Tenant>
where
    S: TenantStore + SigningKeyStore + ?Sized,
{
    let now = making.clock.now();
    let id = match id {
        Some(id) => id,
        None => TenantId::from_random_bytes(random_id_bytes(making.entropy)?),
    };
    stamp(&mut object, id, now);
    // The default tenant's tokens carry the public URL; every other tenant gets an issuer of its
    // own under it (ours), so that no verifier trusting one tenant's issuer accepts another's
    // tokens (S22), and so that issuer + `/.well-known/…` is the tenant's own discovery path.
    object.entry("issuer").or_insert_with(|| {
        if id == crate::domain::tenant::DEFAULT_TENANT_ID {
            json!(making.default_issuer)
        } else {
            json!(format!(
                "{}/{id}",
                making.default_issuer.trim_end_matches('/')
            ))
        }
    });
    let mut tenant: Tenant = decode(Value::Object(object), "tenant")?;
    tenant.validate()?;
    if store.tenant(id).await?.is_some() {
        return Err(duplicate("tenantId", "A tenant with this id"));
    }
    match tenant.jwt_configuration.access_token_key_id {
        Some(key_id) => {
            require_usable_key(
                store,
                scope,
                id,
                key_id,
                "tenant.jwtConfiguration.accessTokenKeyId",
            )
            .await?;
        }
        None => {
            let key_id = KeyId::from_random_bytes(random_id_bytes(making.entropy)?);
            let made = making
                .key_maker
                .generate(key_id, tenant.jwt_configuration.signing_algorithm)?;
            let sealed = making
                .vault
                .seal(&made.private.0, &SigningKey::seal_context(key_id))
                .await?;
            let key = made.sealed(sealed, Some(id), now);
            store.insert_signing_key(&key).await?;
            tenant.jwt_configuration.access_token_key_id = Some(key_id);
        }
    }
    match store.insert_tenant(&tenant).await {
        Err(StoreError::Duplicate(_)) => Err(duplicate("tenantId", "A tenant with this id")),
        other => Ok(other.map(|()| tenant)?),
    }
}

/// Merges `patch` into the stored tenant (JSON merge: objects merge, other values replace) and
/// checks the result as a whole. Ids and instants are not patchable.
pub async fn patch_tenant<S>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    id: TenantId,
    patch: Map<String, Value>,
) -> FlowResult<Tenant>
where
    S: TenantStore + SigningKeyStore + TemplateStore + ?Sized,
{
    let current = match store.tenant(id).await? {
        Some(t) if scope.allows(t.id) => t,
        _ => return Err(FlowError::NotFound),
    };
    let mut merged =
        serde_json::to_value(&current).map_err(|e| FlowError::Internal(e.to_string()))?;
    merge(&mut merged, Value::Object(patch));
    if let Value::Object(object) = &mut merged {
        object.insert("id".into(), json!(current.id));
        object.insert("insertInstant".into(), json!(current.insert_instant));
        object.insert("lastUpdateInstant".into(), json!(clock.now()));
    }
    let tenant: Tenant = decode(merged, "tenant")?;
    tenant.validate()?;
    for (field, now, before) in [
        (
            "tenant.jwtConfiguration.accessTokenKeyId",
            tenant.jwt_configuration.access_token_key_id,
            current.jwt_configuration.access_token_key_id,
        ),
        (
            "tenant.jwtConfiguration.idTokenKeyId",
            tenant.jwt_configuration.id_token_key_id,
            current.jwt_configuration.id_token_key_id,
        ),
    ] {
        if let Some(key_id) = now.filter(|k| Some(*k) != before) {
            require_usable_key(store, scope, tenant.id, key_id, field).await?;
        }
    }
    if let Some(template) = tenant
        .email_configuration
        .passwordless_email_template_id
        .filter(|t| Some(*t) != current.email_configuration.passwordless_email_template_id)
    {
        require_usable_template(
            store,
            tenant.id,
            template,
            "tenant.emailConfiguration.passwordlessEmailTemplateId",
        )
        .await?;
    }
    if tenant.issuer != current.issuer && !scope.is_unrestricted() {
        require_own_issuer(store, &tenant).await?;
    }
    store.update_tenant(&tenant).await?;
    Ok(tenant)
}

/// A signing key objects of `tenant` may name (S22): the tenant's own, or a global key that only
/// an unrestricted caller may assign. Anything else reads as a key that does not exist.
async fn require_usable_key<S: SigningKeyStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    tenant: TenantId,
    key_id: KeyId,
    field: &str,
) -> FlowResult<()> {
    let usable = store
        .signing_key(key_id)
        .await?
        .is_some_and(|key| match key.tenant_id {
            Some(owner) => owner == tenant,
            None => scope.is_unrestricted(),
        });
    if usable {
        Ok(())
    } else {
        Err(ValidationErrors::field(FieldError::invalid(field, "The key does not exist.")).into())
    }
}

/// A template objects of `tenant` may name: the tenant's own or a global one (S29).
async fn require_usable_template<S: TemplateStore + ?Sized>(
    store: &S,
    tenant: TenantId,
    template: TemplateId,
    field: &str,
) -> FlowResult<()> {
    match store.template(template).await? {
        Some(found) if found.usable_by(tenant) => Ok(()),
        _ => Err(ValidationErrors::field(FieldError::invalid(
            field,
            "The email template does not exist.",
        ))
        .into()),
    }
}

/// A caller scoped to one tenant may not give it an issuer another tenant's tokens carry: a
/// verifier that trusts an issuer would accept the other tenant's tokens as its own (S22).
async fn require_own_issuer<S: TenantStore + ?Sized>(store: &S, tenant: &Tenant) -> FlowResult<()> {
    let taken = store
        .tenants()
        .await?
        .iter()
        .any(|other| other.id != tenant.id && other.issuer == tenant.issuer);
    if taken {
        return Err(ValidationErrors::field(FieldError::new(
            "duplicate",
            "tenant.issuer",
            "Another tenant uses this issuer.",
        ))
        .into());
    }
    Ok(())
}

/// RFC 7396 JSON merge patch.
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

/// Generated client secrets: 32 random bytes, 43 characters of base64url as FusionAuth's are.
const CLIENT_SECRET: crate::domain::CodeGenerator = crate::domain::CodeGenerator {
    length: 32,
    kind: crate::domain::GeneratorType::RandomBytes,
};

/// Creates an application. Its OAuth client secret (named or generated) is kept in the returned
/// value for the create response only; the store keeps its hash.
pub async fn create_application<S>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    scope: &TenantScope,
    id: Option<ApplicationId>,
    mut object: Map<String, Value>,
) -> FlowResult<Application>
where
    S: TenantStore + ApplicationStore + TemplateStore + SigningKeyStore + ?Sized,
{
    let now = clock.now();
    let id = match id {
        Some(id) => id,
        None => ApplicationId::from_random_bytes(random_id_bytes(entropy)?),
    };
    let tenant_id = body_tenant(&object, "application.tenantId", scope)?;
    let tenant_id = scope.resolve(store, tenant_id).await?;
    if store.tenant(tenant_id).await?.is_none() {
        return Err(ValidationErrors::field(FieldError::invalid(
            "application.tenantId",
            "The tenant does not exist.",
        ))
        .into());
    }
    stamp(&mut object, id, now);
    object.insert("tenantId".into(), json!(tenant_id));
    let mut application: Application = decode(Value::Object(object), "application")?;
    application.validate()?;
    for role in &mut application.roles {
        if role.id.as_uuid().is_nil() {
            role.id = RoleId::from_random_bytes(random_id_bytes(entropy)?);
        }
    }
    if application.oauth_configuration.client_id.is_none() {
        application.oauth_configuration.client_id = Some(id.to_string());
    }
    let client_secret = match application.oauth_configuration.client_secret.take() {
        Some(named) => named,
        None => CLIENT_SECRET.generate(entropy)?,
    };
    application.oauth_configuration.client_secret_hash = Some(client_secret.hash());
    application.oauth_configuration.client_secret = Some(client_secret);
    if let Some(template) = application
        .email_configuration
        .passwordless_email_template_id
    {
        require_usable_template(
            store,
            tenant_id,
            template,
            "application.emailConfiguration.passwordlessEmailTemplateId",
        )
        .await?;
    }
    for (field, key) in [
        (
            "application.jwtConfiguration.accessTokenKeyId",
            application.jwt_configuration.access_token_key_id,
        ),
        (
            "application.jwtConfiguration.idTokenKeyId",
            application.jwt_configuration.id_token_key_id,
        ),
    ] {
        if let Some(key) = key {
            require_usable_key(store, scope, tenant_id, key, field).await?;
        }
    }
    match store.insert_application(&application).await {
        Err(StoreError::Duplicate(_)) => {
            Err(duplicate("applicationId", "An application with this id"))
        }
        other => Ok(other.map(|()| application)?),
    }
}

/// A `tenantId` in a body must agree with the header or key (WIRE.md: a conflicting header is a 400).
fn body_tenant(
    object: &Map<String, Value>,
    field: &str,
    scope: &TenantScope,
) -> FlowResult<Option<TenantId>> {
    let named = match object.get("tenantId") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(TenantId::parse(text).ok_or_else(|| {
            ValidationErrors::field(FieldError::invalid(field, "The tenant id is not a UUID."))
        })?),
        Some(_) => {
            return Err(ValidationErrors::field(FieldError::invalid(
                field,
                "The tenant id is not a UUID.",
            ))
            .into())
        }
    };
    if let Some(named) = named {
        if !scope.allows(named) {
            return Err(ValidationErrors::field(FieldError::invalid(
                field,
                "The tenant id does not match the X-FusionAuth-TenantId header.",
            ))
            .into());
        }
    }
    Ok(named)
}

pub struct Registered {
    pub user: User,
    pub registration: Registration,
}

/// `POST /api/user/registration[/{userId}]`: with a `user` object, creates the user and the
/// registration together; without one, registers an existing user. Passwords are not a thing
/// here: any password field is ignored.
pub async fn register<S>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    scope: &TenantScope,
    user_id: Option<UserId>,
    mut body: Map<String, Value>,
) -> FlowResult<Registered>
where
    S: TenantStore + ApplicationStore + UserStore + ?Sized,
{
    let now = clock.now();
    let mut registration_object = take_object(&mut body, "registration")?;
    let skip_verification = match body.get("skipVerification") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ValidationErrors::field(FieldError::invalid(
                "skipVerification",
                "[skipVerification] must be a boolean.",
            ))
            .into())
        }
    };
    let application_id = match registration_object.get("applicationId") {
        None | Some(Value::Null) => {
            return Err(
                ValidationErrors::field(FieldError::missing("registration.applicationId")).into(),
            )
        }
        Some(Value::String(text)) => ApplicationId::parse(text).ok_or_else(|| {
            ValidationErrors::field(FieldError::invalid(
                "registration.applicationId",
                "The application id is not a UUID.",
            ))
        })?,
        Some(_) => {
            return Err(ValidationErrors::field(FieldError::invalid(
                "registration.applicationId",
                "The application id is not a UUID.",
            ))
            .into())
        }
    };
    let application = match store.application(application_id).await? {
        Some(app) if scope.allows(app.tenant_id) => app,
        _ => {
            return Err(ValidationErrors::field(FieldError::invalid(
                "registration.applicationId",
                "The application does not exist.",
            ))
            .into())
        }
    };
    let registration_id = RegistrationId::from_random_bytes(random_id_bytes(entropy)?);
    stamp(&mut registration_object, registration_id, now);
    registration_object.remove("lastUpdateInstant");
    registration_object.remove("lastLoginInstant");
    let mut registration: Registration =
        decode(Value::Object(registration_object), "registration")?;
    registration.verified = skip_verification;
    if registration.roles.is_empty() {
        registration.roles = application.default_roles();
    }
    if let Some(role) = registration.roles.iter().find(|r| !application.has_role(r)) {
        return Err(ValidationErrors::field(FieldError::invalid(
            "registration.roles",
            format!("The role [{role}] does not exist in the application."),
        ))
        .into());
    }

    let user_object = match body.remove("user") {
        Some(Value::Object(map)) => Some(map),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(ValidationErrors::field(FieldError::invalid(
                "user",
                "[user] must be an object.",
            ))
            .into())
        }
    };
    match user_object {
        Some(mut object) => {
            let id = match user_id.or_else(|| {
                object
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(UserId::parse)
            }) {
                Some(id) => id,
                None => UserId::from_random_bytes(random_id_bytes(entropy)?),
            };
            let named_tenant = body_tenant(&object, "user.tenantId", scope)?;
            let tenant_id = named_tenant.unwrap_or(application.tenant_id);
            if tenant_id != application.tenant_id {
                return Err(ValidationErrors::field(FieldError::invalid(
                    "registration.applicationId",
                    "The application belongs to another tenant.",
                ))
                .into());
            }
            for secret_field in ["password", "encryptionScheme", "factor", "salt"] {
                object.remove(secret_field);
            }
            stamp(&mut object, id, now);
            object.insert("tenantId".into(), json!(tenant_id));
            object.insert("registrations".into(), json!([]));
            object.remove("lastLoginInstant");
            object.remove("verified");
            let mut user: User = decode(Value::Object(object), "user")?;
            user.verified = skip_verification;
            user.registrations.push(registration.clone());
            user.validate()?;
            match store.insert_user(&user).await {
                Ok(()) => Ok(Registered { user, registration }),
                Err(StoreError::Duplicate("user.id")) => {
                    Err(duplicate("user.id", "A user with this id"))
                }
                Err(StoreError::Duplicate(field)) => {
                    Err(duplicate(field, "A user with this value"))
                }
                Err(e) => Err(e.into()),
            }
        }
        None => {
            let Some(user_id) = user_id else {
                return Err(ValidationErrors::field(FieldError::missing("user")).into());
            };
            let mut user = match store.user(user_id).await? {
                Some(u) if u.tenant_id == application.tenant_id => u,
                _ => {
                    return Err(ValidationErrors::field(FieldError::invalid(
                        "userId",
                        "The user does not exist.",
                    ))
                    .into())
                }
            };
            if user.registration(application.id).is_some() {
                return Err(duplicate(
                    "registration.applicationId",
                    "A registration for this application",
                ));
            }
            user.registrations.push(registration.clone());
            user.last_update_instant = now;
            store.update_user(&user).await?;
            Ok(Registered { user, registration })
        }
    }
}

/// Creates an email template. A caller scoped to a tenant makes one of that tenant's templates;
/// an unrestricted caller makes a global one, or one of the tenant its body names (S29).
pub async fn create_email_template<S>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    scope: &TenantScope,
    id: Option<TemplateId>,
    mut object: Map<String, Value>,
) -> FlowResult<EmailTemplate>
where
    S: TemplateStore + TenantStore + ?Sized,
{
    let id = match id {
        Some(id) => id,
        None => TemplateId::from_random_bytes(random_id_bytes(entropy)?),
    };
    let owner = body_tenant(&object, "emailTemplate.tenantId", scope)?.or(scope.explicit);
    if let Some(owner) = owner {
        if store.tenant(owner).await?.is_none() {
            return Err(ValidationErrors::field(FieldError::invalid(
                "emailTemplate.tenantId",
                "The tenant does not exist.",
            ))
            .into());
        }
    }
    stamp(&mut object, id, clock.now());
    match owner {
        Some(owner) => object.insert("tenantId".into(), json!(owner)),
        None => object.remove("tenantId"),
    };
    let template: EmailTemplate = decode(Value::Object(object), "emailTemplate")?;
    template.validate()?;
    if store.template(id).await?.is_some() {
        return Err(duplicate(
            "emailTemplateId",
            "An email template with this id",
        ));
    }
    store.insert_template(&template).await?;
    Ok(template)
}

pub async fn user_by_id<S: UserStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: UserId,
) -> FlowResult<User> {
    match store.user(id).await? {
        Some(user) if scope.allows(user.tenant_id) => Ok(user),
        _ => Err(FlowError::NotFound),
    }
}

pub async fn user_by_email<S: TenantStore + UserStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    email: &str,
) -> FlowResult<User> {
    let tenant = scope.resolve(store, None).await?;
    store
        .user_by_email(tenant, email)
        .await?
        .ok_or(FlowError::NotFound)
}

/// Whether API-key permissions may name an endpoint and method: the route table knows.
pub type Permissible = fn(&str, &str) -> bool;

/// Stores a new API key (hashed, S2) with optional endpoint permissions and tenant lock.
/// Permissions fail closed (S28): every endpoint and method must be `permissible`.
pub async fn create_api_key<S>(
    store: &S,
    entropy: &dyn Entropy,
    key: &Secret,
    description: &str,
    permissions: Option<ApiKeyPermissions>,
    tenant: Option<TenantId>,
    permissible: Permissible,
) -> FlowResult<ApiKey>
where
    S: ApiKeyStore + TenantStore + ?Sized,
{
    if let Some(permissions) = &permissions {
        permissions.validate("apiKey.permissions", permissible)?;
    }
    if key.expose().trim().is_empty() {
        return Err(ValidationErrors::field(FieldError::blank("apiKey.key")).into());
    }
    if key.expose().len() > crate::domain::secret::MAX_SECRET_LEN {
        return Err(ValidationErrors::field(FieldError::new(
            "tooLong",
            "apiKey.key",
            "The key is too long.",
        ))
        .into());
    }
    if let Some(tenant) = tenant {
        if store.tenant(tenant).await?.is_none() {
            return Err(ValidationErrors::field(FieldError::invalid(
                "apiKey.tenantId",
                "The tenant does not exist.",
            ))
            .into());
        }
    }
    let api_key = ApiKey {
        id: ApiKeyId::from_random_bytes(random_id_bytes(entropy)?),
        key_hash: key.hash(),
        description: description.to_owned(),
        permissions,
        tenant_id: tenant,
    };
    match store.insert_api_key(&api_key).await {
        Err(StoreError::Duplicate(_)) => Err(duplicate("apiKey.key", "This API key")),
        other => Ok(other.map(|()| api_key)?),
    }
}

/// All public signing keys, for the JWKS.
pub async fn public_keys<S: SigningKeyStore + ?Sized>(store: &S) -> FlowResult<Vec<Value>> {
    Ok(store
        .signing_keys()
        .await?
        .iter()
        .filter_map(SigningKey::jwk)
        .collect())
}

/// One tenant's public keys: those it owns and the global keys it signs with (S22), so a
/// verifier of this tenant's tokens trusts no other tenant's key.
pub async fn tenant_public_keys<S: TenantStore + SigningKeyStore + ?Sized>(
    store: &S,
    tenant: TenantId,
) -> FlowResult<Vec<Value>> {
    let tenant = store.tenant(tenant).await?.ok_or(FlowError::NotFound)?;
    let configured = [
        tenant.jwt_configuration.access_token_key_id,
        tenant.jwt_configuration.id_token_key_id,
    ];
    Ok(store
        .signing_keys()
        .await?
        .iter()
        .filter(|key| match key.tenant_id {
            Some(owner) => owner == tenant.id,
            None => configured.contains(&Some(key.id)),
        })
        .filter_map(SigningKey::jwk)
        .collect())
}
