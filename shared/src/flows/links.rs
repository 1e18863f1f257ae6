//! The public URL every link in a mail and every issuer is built on.

use crate::domain::{Secret, Tenant};

/// Where the links in emails point (S13: the configured URL, never the request's Host).
#[derive(Debug, Clone)]
pub struct LinkBase(pub String);

impl LinkBase {
    pub(crate) fn magic_link(&self, code: &Secret, tenant: &Tenant) -> String {
        format!(
            "{}/oauth2/passwordless/{}?tenantId={}",
            self.0.trim_end_matches('/'),
            code.expose(),
            tenant.id
        )
    }
}
