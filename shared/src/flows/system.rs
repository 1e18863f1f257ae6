//! The system configuration: read by anyone with a key for it, changed only by an unrestricted
//! caller, since it holds for every tenant (S22).

use crate::domain::system::SystemConfiguration;
use crate::ports::{Clock, SystemStore};

use super::tenancy::TenantScope;
use super::{FlowError, FlowResult};

/// Whether the store answers: what a load balancer's probe asks (one read).
pub(crate) async fn store_answers<S: SystemStore + ?Sized>(store: &S) -> FlowResult<()> {
    store.system_configuration().await?;
    Ok(())
}

/// The configuration in force: the one saved last, or the defaults.
pub async fn system_configuration<S: SystemStore + ?Sized>(
    store: &S,
) -> FlowResult<SystemConfiguration> {
    Ok(store.system_configuration().await?.unwrap_or_default())
}

/// Replaces the configuration (a PUT, or a PATCH the edge merged), checked as a whole. The
/// instants are not the caller's to set.
pub(crate) async fn update_system_configuration<S: SystemStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    mut configuration: SystemConfiguration,
) -> FlowResult<SystemConfiguration> {
    if !scope.is_unrestricted() {
        // A key locked to one tenant would otherwise open every tenant to other origins.
        return Err(FlowError::Unauthorized);
    }
    let now = clock.now();
    configuration.insert_instant = match store.system_configuration().await? {
        Some(current) => current.insert_instant,
        None => now,
    };
    configuration.last_update_instant = now;
    configuration.validate()?;
    store.put_system_configuration(&configuration).await?;
    Ok(configuration)
}
