//! The access token: obtained and renewed with the refresh token, before it
//! expires.
//!
//! ALM's flow (Developer Manual, "Authentication using OAuth 2.0",
//! <https://experienceleague.adobe.com/en/docs/learning-manager/using/integration/developer-manual>,
//! and Adobe's step-by-step guide
//! <https://elearning.adobe.com/2023/09/how-to-generate-an-oauth-code-also-the-refresh-token-and-access-token/>):
//! `POST {base}/oauth/token/refresh` with the form fields `client_id`,
//! `client_secret` and `refresh_token` answers
//! `{"access_token": …, "refresh_token": …, "expires_in": 604800}` (the
//! access token lives 7 days); API calls then send
//! `Authorization: oauth <access_token>`.

use std::fmt;
use std::time::{Duration, Instant};

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::{ApiConfig, ApiError, metrics};

/// The token endpoint's answer. Never printed: no `Debug`.
#[derive(serde::Deserialize)]
struct Answer {
    access_token: SecretString,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct Current {
    access: SecretString,
    /// When to renew: `margin` before expiry, or halfway through a
    /// lifetime shorter than twice the margin.
    renew_at: Instant,
}

/// Holds the refresh token and the current access token of one account.
pub(crate) struct Tokens {
    url: String,
    client_id: String,
    client_secret: SecretString,
    margin: Duration,
    state: Mutex<(SecretString, Option<Current>)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// ALM's access tokens live 7 days; a token endpoint that does not say
/// how long is taken to mean that.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

impl Tokens {
    pub(crate) fn new(config: &ApiConfig) -> Self {
        Self {
            url: format!("{}/oauth/token/refresh", config.base),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            margin: config.refresh_margin,
            state: Mutex::new((config.refresh_token.clone(), None)),
        }
    }

    /// The `Authorization` header for an API call, renewing the access
    /// token first when it expires within the margin. One renewal at a
    /// time: concurrent callers wait for it and share its result.
    pub(crate) async fn header(&self, http: &reqwest::Client) -> Result<HeaderValue, ApiError> {
        let mut state = self.state.lock().await;
        let fresh = state
            .1
            .as_ref()
            .is_some_and(|current| Instant::now() < current.renew_at);
        if !fresh {
            let answer = self.refresh(http, &state.0).await?;
            let lifetime = answer
                .expires_in
                .map_or(DEFAULT_LIFETIME, Duration::from_secs);
            if let Some(rotated) = answer.refresh_token {
                state.0 = rotated;
            }
            state.1 = Some(Current {
                access: answer.access_token,
                renew_at: Instant::now() + lifetime - self.margin.min(lifetime / 2),
            });
        }
        let access = &state.1.as_ref().expect("set above").access;
        let mut value = HeaderValue::try_from(format!("oauth {}", access.expose_secret()))
            .map_err(|e| ApiError::decode("token", e))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Forgets the access token (ALM refused it): the next call renews it.
    pub(crate) async fn invalidate(&self) {
        self.state.lock().await.1 = None;
    }

    async fn refresh(
        &self,
        http: &reqwest::Client,
        refresh_token: &SecretString,
    ) -> Result<Answer, ApiError> {
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", self.client_secret.expose_secret())
            .append_pair("refresh_token", refresh_token.expose_secret())
            .finish();
        let response = http
            .post(&self.url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await
            .map_err(|e| {
                metrics::token_refresh("error");
                ApiError::transport("token", e.without_url())
            })?;
        let status = response.status().as_u16();
        if status == 400 || status == 401 || status == 403 {
            metrics::token_refresh("unauthorized");
            return Err(ApiError::Unauthorized { status });
        }
        if !response.status().is_success() {
            metrics::token_refresh("error");
            return Err(ApiError::Status {
                status,
                endpoint: "token",
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| ApiError::transport("token", e.without_url()))?;
        // The body holds the tokens: its parse error must not quote it.
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            metrics::token_refresh("error");
            ApiError::decode(
                "token",
                std::io::Error::other(format!(
                    "not {{access_token, expires_in}} (line {}, column {})",
                    e.line(),
                    e.column()
                )),
            )
        })?;
        metrics::token_refresh("ok");
        Ok(answer)
    }
}
