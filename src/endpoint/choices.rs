//! The builder's choices of mode: where the handler runs, and what a
//! malformed body becomes.

use super::{EndpointBuilder, Mode, OnMalformed};
use crate::inbox::Inbox;
use crate::store::Store;

impl<S: Store, I: Inbox> EndpointBuilder<S, I> {
    /// Where events are processed: [`Mode::Inbox`] (the default with an
    /// inbox) or [`Mode::Inline`] (the default without one).
    ///
    /// ```
    /// use alm_webhooks::endpoint::Mode;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .mode(Mode::Inline)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.mode(), Mode::Inline);
    /// ```
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// What to do with an authenticated body that is not an envelope:
    /// [`OnMalformed::Quarantine`] (the default with an inbox) or
    /// [`OnMalformed::Refuse`] (`400`, the default without one).
    ///
    /// ```
    /// use alm_webhooks::endpoint::OnMalformed;
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .on_malformed(OnMalformed::Refuse)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoint.on_malformed(), OnMalformed::Refuse);
    /// ```
    #[must_use]
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = Some(on_malformed);
        self
    }
}
