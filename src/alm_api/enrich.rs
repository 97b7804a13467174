//! Enrichment for handlers: the names behind an event's ids.
//!
//! Webhook events carry ids only (`userId`, `loId`, `loInstanceId`); these
//! methods look the rest up through [`AlmApi`], from its cache or within
//! its budget.

use super::{AlmApi, ApiError, LearningObject, LoInstance, User, WhenOverBudget};
use crate::Event;

impl Event {
    /// The learner the event is about (`None` for events without a
    /// `userId`), from the cache or the API; over budget it does what
    /// [`ApiConfig::when_over_budget`](super::ApiConfig::when_over_budget)
    /// says.
    ///
    /// ```no_run
    /// # async fn handler(event: alm_webhooks::Event, api: alm_webhooks::alm_api::AlmApi)
    /// # -> Result<(), alm_webhooks::BoxError> {
    /// if let Some(user) = event.user(&api).await? {
    ///     println!("{} ({:?}) got {}", user.id, user.email, event.event_name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn user(&self, api: &AlmApi) -> Result<Option<User>, ApiError> {
        self.user_with(api, api.config().when_over_budget).await
    }

    /// [`user`](Self::user), choosing what to do over budget: wait (at most
    /// a while) or fail at once with [`ApiError::OverBudget`].
    ///
    /// ```no_run
    /// # async fn handler(event: alm_webhooks::Event, api: alm_webhooks::alm_api::AlmApi) {
    /// use alm_webhooks::alm_api::{ApiError, WhenOverBudget};
    /// match event.user_with(&api, WhenOverBudget::Fail).await {
    ///     Ok(user) => println!("{:?}", user.and_then(|u| u.name)),
    ///     Err(ApiError::OverBudget { retry_after }) => println!("no name now; room in {retry_after:?}"),
    ///     Err(other) => println!("{other}"),
    /// }
    /// # }
    /// ```
    pub async fn user_with(
        &self,
        api: &AlmApi,
        when: WhenOverBudget,
    ) -> Result<Option<User>, ApiError> {
        match self.user_id() {
            Some(id) => api.user(id, when).await.map(Some),
            None => Ok(None),
        }
    }

    /// The learning object the event names (`None` for `CI_STATS` and
    /// unknown events).
    pub async fn learning_object(&self, api: &AlmApi) -> Result<Option<LearningObject>, ApiError> {
        self.learning_object_with(api, api.config().when_over_budget)
            .await
    }

    /// [`learning_object`](Self::learning_object), choosing what to do
    /// over budget.
    pub async fn learning_object_with(
        &self,
        api: &AlmApi,
        when: WhenOverBudget,
    ) -> Result<Option<LearningObject>, ApiError> {
        match self.lo_id() {
            Some(id) => api.learning_object(id, when).await.map(Some),
            None => Ok(None),
        }
    }

    /// The instance the event names (`None` for learning-object events).
    pub async fn lo_instance(&self, api: &AlmApi) -> Result<Option<LoInstance>, ApiError> {
        match self.lo_instance_id() {
            Some(id) => api
                .lo_instance(id, api.config().when_over_budget)
                .await
                .map(Some),
            None => Ok(None),
        }
    }
}
