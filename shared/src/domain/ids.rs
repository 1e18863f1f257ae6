use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// Parses a UUID in any of its textual forms; ids always print canonical lowercase.
            pub fn parse(text: &str) -> Option<Self> {
                Uuid::parse_str(text.trim()).ok().map(Self)
            }

            pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The nil UUID stands for "not named" in a request, so that an object the client
            /// sends without its server-assigned id still decodes.
            pub fn is_nil(&self) -> bool {
                self.0.is_nil()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// Identifies a tenant: every user, application and code belongs to exactly one.
    TenantId
);
uuid_id!(ApplicationId);
uuid_id!(UserId);
uuid_id!(TemplateId);
uuid_id!(
    /// The id of a signing key, published as the JWT `kid`.
    KeyId
);
uuid_id!(RegistrationId);
uuid_id!(ApiKeyId);
uuid_id!(RefreshTokenId);
uuid_id!(RoleId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_any_case_and_print_canonical_lowercase() {
        let id = UserId::parse("3C219E58-ED0E-4B18-AD48-F4F92793AE32").unwrap();
        assert_eq!(id.to_string(), "3c219e58-ed0e-4b18-ad48-f4f92793ae32");
        assert!(UserId::parse("not-a-uuid").is_none());
    }

    #[test]
    fn random_ids_are_version_4() {
        let id = UserId::from_random_bytes([7; 16]);
        assert_eq!(id.as_uuid().get_version_num(), 4);
    }
}
