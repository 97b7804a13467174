//! The client: every request goes through the budget, carries a fresh
//! access token and has a bound; answers are cached and concurrent lookups
//! of one id share one request.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use super::budget::{Budget, WhenOverBudget};
use super::model::{Enrollment, LearningObject, LoInstance, User};
use super::token::Tokens;
use super::{ApiConfig, ApiError, metrics};
use crate::{LoId, LoInstanceId, UserId};

/// The media type of ALM's JSON:API documents (Developer Manual; the
/// `Accept` header of every example in the API reference).
pub(crate) const JSON_API: &str = "application/vnd.api+json";

/// Most pages of a user's enrollments read in one lookup.
const MAX_PAGES: usize = 50;

/// A client for one account's ALM API.
///
/// Cheap to clone (clones share the budget, the cache and the token).
/// Build one per account, once, and give it to the handlers (it is `Send +
/// Sync`).
///
/// ```no_run
/// # async fn run() -> Result<(), alm_webhooks::alm_api::ApiError> {
/// use std::time::Duration;
/// use alm_webhooks::UserId;
/// use alm_webhooks::alm_api::{AlmApi, ApiConfig, WhenOverBudget};
/// let config = ApiConfig::from_env()?.expect("ALM_API_CLIENT_ID is set");
/// let api = AlmApi::new(config)?;
/// let user = api.user(UserId(20919106), WhenOverBudget::Wait(Duration::from_secs(30))).await?;
/// println!("{:?}", user.name);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AlmApi {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ApiConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) tokens: Tokens,
    pub(crate) budget: Budget,
    users: Cache<UserId, User>,
    learning_objects: Cache<LoId, LearningObject>,
    instances: Cache<LoInstanceId, LoInstance>,
    enrollments: Cache<UserId, Arc<[Enrollment]>>,
}

impl std::fmt::Debug for AlmApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlmApi")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn cache<K, V>(config: &ApiConfig) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(config.cache_capacity)
        .time_to_live(config.cache_ttl)
        .build()
}

/// Encodes an id as one path segment (`course:1` → `course%3A1`), as the
/// API reference asks of learning-object ids.
pub(crate) fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

impl AlmApi {
    /// A client for the account `config` describes. Sends nothing yet:
    /// the first lookup obtains the access token.
    pub fn new(config: ApiConfig) -> Result<Self, ApiError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ApiError::transport("client", e))?;
        metrics::budget_per_hour(config.budget, config.budget_window);
        Ok(Self {
            inner: Arc::new(Inner {
                tokens: Tokens::new(&config),
                budget: Budget::new(config.budget, config.budget_window),
                users: cache(&config),
                learning_objects: cache(&config),
                instances: cache(&config),
                enrollments: cache(&config),
                http,
                config,
            }),
        })
    }

    /// The configuration (secrets stay unprintable).
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// `GET /primeapi/v2/users/{id}`, from the cache when it has it.
    /// Concurrent lookups of one user share one request.
    ///
    /// ```no_run
    /// # async fn run(api: alm_webhooks::alm_api::AlmApi) {
    /// use alm_webhooks::UserId;
    /// use alm_webhooks::alm_api::{ApiError, WhenOverBudget};
    /// match api.user(UserId(20919106), WhenOverBudget::Fail).await {
    ///     Ok(user) => println!("{:?} <{:?}>", user.name, user.email),
    ///     Err(ApiError::OverBudget { retry_after }) => println!("later: {retry_after:?}"),
    ///     Err(other) => println!("{other}"),
    /// }
    /// # }
    /// ```
    pub async fn user(&self, id: UserId, when: WhenOverBudget) -> Result<User, ApiError> {
        let url = self.api_url(&format!("users/{}", id.0));
        lookup(&self.inner.users, id, async {
            let body = self
                .get("users", &url, when, &format!("user {}", id.0))
                .await?;
            User::from_document(&body).map_err(|e| ApiError::decode("users", e))
        })
        .await
    }

    /// `GET /primeapi/v2/learningObjects/{id}`, from the cache when it has
    /// it. Concurrent lookups of one learning object share one request.
    pub async fn learning_object(
        &self,
        id: &LoId,
        when: WhenOverBudget,
    ) -> Result<LearningObject, ApiError> {
        let url = self.api_url(&format!("learningObjects/{}", segment(id.as_str())));
        lookup(&self.inner.learning_objects, id.clone(), async {
            let body = self
                .get(
                    "learningObjects",
                    &url,
                    when,
                    &format!("learning object {id}"),
                )
                .await?;
            LearningObject::from_document(&body).map_err(|e| ApiError::decode("learningObjects", e))
        })
        .await
    }

    /// `GET /primeapi/v2/learningObjects/{loId}/instances/{id}`.
    pub async fn lo_instance(
        &self,
        id: &LoInstanceId,
        when: WhenOverBudget,
    ) -> Result<LoInstance, ApiError> {
        let url = self.api_url(&format!(
            "learningObjects/{}/instances/{}",
            segment(id.lo_id().as_str()),
            segment(id.as_str())
        ));
        lookup(&self.inner.instances, id.clone(), async {
            let body = self
                .get("learningObjects", &url, when, &format!("instance {id}"))
                .await?;
            LoInstance::from_document(&body).map_err(|e| ApiError::decode("learningObjects", e))
        })
        .await
    }

    /// `GET /primeapi/v2/users/{id}/enrollments`, every page (each page is
    /// one request of the budget), from the cache when it has it.
    pub async fn enrollments(
        &self,
        user: UserId,
        when: WhenOverBudget,
    ) -> Result<Arc<[Enrollment]>, ApiError> {
        let first = self.api_url(&format!("users/{}/enrollments?page%5Blimit%5D=10", user.0));
        lookup(&self.inner.enrollments, user, async {
            let mut all = Vec::new();
            let mut next = Some(first);
            let mut pages = 0;
            while let Some(url) = next.take() {
                let body = self
                    .get("enrollments", &url, when, &format!("user {}", user.0))
                    .await?;
                let (page, link) = Enrollment::from_list_document(&body)
                    .map_err(|e| ApiError::decode("enrollments", e))?;
                all.extend(page);
                pages += 1;
                // Follow `links.next` only on the account's own host.
                next = link.filter(|l| pages < MAX_PAGES && self.same_host(l));
            }
            Ok(all.into())
        })
        .await
    }

    /// Forgets every cached answer (after a bulk change, or in tests).
    pub fn clear_cache(&self) {
        self.inner.users.invalidate_all();
        self.inner.learning_objects.invalidate_all();
        self.inner.instances.invalidate_all();
        self.inner.enrollments.invalidate_all();
    }

    pub(crate) fn api_url(&self, path: &str) -> String {
        format!("{}/primeapi/v2/{path}", self.inner.config.base)
    }

    pub(crate) fn same_host(&self, url: &str) -> bool {
        let host = |u: &str| {
            url::Url::parse(u).ok().map(|u| {
                (
                    u.scheme().to_owned(),
                    u.host_str().map(str::to_owned),
                    u.port_or_known_default(),
                )
            })
        };
        host(url).is_some_and(|h| Some(h) == host(&self.inner.config.base))
    }

    /// A budgeted `GET` of a JSON:API document.
    async fn get(
        &self,
        endpoint: &'static str,
        url: &str,
        when: WhenOverBudget,
        what: &str,
    ) -> Result<Vec<u8>, ApiError> {
        self.send(endpoint, when, true, what, |http| http.get(url))
            .await
    }

    /// Sends a request: budget (when `budgeted`) and `Retry-After` gate,
    /// fresh token, bounded; retries a `429` while `when` allows and a
    /// refused token once.
    pub(crate) async fn send(
        &self,
        endpoint: &'static str,
        when: WhenOverBudget,
        budgeted: bool,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, ApiError> {
        let inner = &self.inner;
        let mut refused_token = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            if budgeted {
                inner.budget.acquire(endpoint, when).await?;
            } else {
                inner.budget.wait_gate(endpoint, when).await?;
            }
            let authorization = inner.tokens.header(&inner.http).await?;
            let response = build(&inner.http)
                .header(http::header::AUTHORIZATION, authorization)
                .header(http::header::ACCEPT, JSON_API)
                .send()
                .await
                .map_err(|e| {
                    metrics::request(endpoint, "error");
                    ApiError::transport(endpoint, e)
                })?;
            let status = response.status().as_u16();
            match status {
                200..=299 => {
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| ApiError::transport(endpoint, e))?;
                    metrics::request(endpoint, "ok");
                    return Ok(body.to_vec());
                }
                401 if !refused_token => {
                    metrics::request(endpoint, "unauthorized");
                    refused_token = true;
                    inner.tokens.invalidate().await;
                }
                401 | 403 => {
                    metrics::request(endpoint, "unauthorized");
                    return Err(ApiError::Unauthorized { status });
                }
                404 => {
                    metrics::request(endpoint, "not_found");
                    return Err(ApiError::NotFound {
                        what: what.to_owned(),
                    });
                }
                429 => {
                    metrics::request(endpoint, "rate_limited");
                    let retry_after = retry_after(response.headers());
                    inner.budget.hold_for(retry_after);
                    let may_wait = matches!(when, WhenOverBudget::Wait(_));
                    if !may_wait || attempts >= inner.config.max_attempts {
                        return Err(ApiError::RateLimited { retry_after });
                    }
                }
                _ => {
                    metrics::request(endpoint, "error");
                    return Err(ApiError::Status { status, endpoint });
                }
            }
        }
    }
}

/// ALM's `Retry-After`: seconds (the form ALM sends) or an HTTP date;
/// 60 s when absent or unreadable.
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Duration {
    let Some(value) = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
    else {
        return Duration::from_secs(60);
    };
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Duration::from_secs(seconds);
    }
    time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc2822)
        .ok()
        .map(|at| {
            let seconds = (at - time::OffsetDateTime::now_utc())
                .whole_seconds()
                .max(0);
            Duration::from_secs(seconds as u64)
        })
        .unwrap_or(Duration::from_secs(60))
}

/// From the cache, or through `fetch` once for every concurrent caller.
async fn lookup<K, V>(
    cache: &Cache<K, V>,
    key: K,
    fetch: impl std::future::Future<Output = Result<V, ApiError>>,
) -> Result<V, ApiError>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let entry = cache
        .entry(key)
        .or_try_insert_with(fetch)
        .await
        .map_err(Arc::unwrap_or_clone)?;
    metrics::cache(!entry.is_fresh());
    Ok(entry.into_value())
}
