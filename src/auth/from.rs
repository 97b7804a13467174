//! Each authentication method converts into [`Authentication`], so that
//! [`Endpoint::builder`](crate::Endpoint::builder) and
//! [`DeliveryReceiver::new`](crate::DeliveryReceiver::new) take it as it is.

use super::{Authentication, BasicAuth, SignatureAuth, StandardWebhooksAuth};

/// ```
/// use alm_webhooks::auth::{Authentication, SignatureAuth};
/// let auth: Authentication = SignatureAuth::new("signing secret").into();
/// assert!(matches!(auth, Authentication::Signature(_)));
/// ```
impl From<SignatureAuth> for Authentication {
    fn from(auth: SignatureAuth) -> Self {
        Self::Signature(auth)
    }
}

/// ```
/// use alm_webhooks::auth::{Authentication, BasicAuth};
/// let auth: Authentication = BasicAuth::new("alm", "s3cret").into();
/// assert!(matches!(auth, Authentication::Basic(_)));
/// ```
impl From<BasicAuth> for Authentication {
    fn from(auth: BasicAuth) -> Self {
        Self::Basic(auth)
    }
}

/// ```
/// use alm_webhooks::auth::{Authentication, StandardWebhooksAuth};
/// let standard = StandardWebhooksAuth::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// let auth: Authentication = standard.into();
/// assert!(matches!(auth, Authentication::StandardWebhooks(_)));
/// ```
impl From<StandardWebhooksAuth> for Authentication {
    fn from(auth: StandardWebhooksAuth) -> Self {
        Self::StandardWebhooks(auth)
    }
}
