//! The JSON:API documents the client reads, shaped after ALM's API
//! reference.
//!
//! Sources of each shape (also named in `tests/alm_api/`):
//! - a document is `{"data": …, "included": […], "links": {…}}` with
//!   resources `{"id", "type", "attributes", "relationships"}`: the
//!   Developer Manual, "API object models" and "Include, fields"
//!   (<https://experienceleague.adobe.com/en/docs/learning-manager/using/integration/developer-manual>);
//! - `user` (`name`, `email`, `state`, `userType`, …): the `GET /users/{id}`
//!   example of "Use Include parameter in API calls of Adobe Learning
//!   Manager" (<https://elearning.adobe.com/2024/06/use-include-parameter-in-api-calls-of-adobe-learning-manager-alm/>);
//! - `learningObject` with `localizedMetadata` and an `instances`
//!   relationship, and `learningObjectInstance` (`state`, `isDefault`,
//!   `startDate`): "API changes in the May 2026 patch release"
//!   (<https://experienceleague.adobe.com/en/docs/learning-manager/using/api-changes/api-changes-alm-may>)
//!   and the API reference's `LearningObjectInstance` schema;
//! - enrollments (`state`, `progressPercent`, `dateEnrolled`,
//!   `dateStarted`, `completedOn`, `hasPassed`, relationships `learner`,
//!   `learningObject`, `loInstance`): the API reference's `Enrollment`
//!   schema as published in the Prime API description
//!   (<https://schemas.apis.io/schemas/adobe-captivate/prime-api-enrollment/>).
//!
//! Every attribute is optional and unknown attributes are kept in
//! `attributes`: ALM adds fields between releases.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{LoId, LoInstanceId, Timestamp, UserId};

/// A JSON:API document with one primary resource (`included` is not read).
#[derive(Debug, Deserialize)]
pub(crate) struct Document {
    pub(crate) data: Resource,
}

/// A JSON:API document with a list of resources and paging links.
#[derive(Debug, Deserialize)]
pub(crate) struct ListDocument {
    pub(crate) data: Vec<Resource>,
    #[serde(default)]
    pub(crate) links: Links,
}

/// `links` of a list: `next` when there is another page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Links {
    #[serde(default)]
    pub(crate) next: Option<String>,
}

/// One resource object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Resource {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) attributes: Map<String, Value>,
    #[serde(default)]
    pub(crate) relationships: Map<String, Value>,
}

impl Resource {
    fn text(&self, name: &str) -> Option<String> {
        self.attributes
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn time(&self, name: &str) -> Option<Timestamp> {
        self.attributes
            .get(name)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// The ids a relationship points at (`{"data": {…}}` or `{"data": […]}`).
    pub(crate) fn related(&self, name: &str) -> Vec<String> {
        match self.relationships.get(name).and_then(|r| r.get("data")) {
            Some(Value::Array(items)) => items.iter().filter_map(id_of).collect(),
            Some(one @ Value::Object(_)) => id_of(one).into_iter().collect(),
            _ => Vec::new(),
        }
    }
}

fn id_of(value: &Value) -> Option<String> {
    value.get("id").and_then(Value::as_str).map(str::to_owned)
}

/// A user (`type: "user"`).
///
/// ```
/// use alm_webhooks::alm_api::User;
/// let user = User::from_document(br#"{"data":{"id":"20919106","type":"user",
///   "attributes":{"name":"Aglae Cronin","email":"zmertz@example.net","state":"ACTIVE"}}}"#).unwrap();
/// assert_eq!(user.id.0, 20919106);
/// assert_eq!(user.name.as_deref(), Some("Aglae Cronin"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct User {
    /// The user's id (the webhooks' `userId`).
    pub id: UserId,
    /// `name`.
    pub name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `state` (`ACTIVE`, `DELETED`, …).
    pub state: Option<String>,
    /// `userType` (`Internal`, `External`).
    pub user_type: Option<String>,
    /// Every attribute as sent.
    pub attributes: Map<String, Value>,
}

/// A learning object (`type: "learningObject"`): course, learning path,
/// certification, job aid.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LearningObject {
    /// The id (the webhooks' `loId`), e.g. `course:1234567`.
    pub id: LoId,
    /// `loType`.
    pub lo_type: Option<String>,
    /// The name of the first `localizedMetadata` entry (ALM lists the
    /// account's default locale first).
    pub name: Option<String>,
    /// `state` (`Published`, `Retired`, …).
    pub state: Option<String>,
    /// The ids in the `instances` relationship.
    pub instance_ids: Vec<LoInstanceId>,
    /// Every attribute as sent.
    pub attributes: Map<String, Value>,
}

/// A learning object instance (`type: "learningObjectInstance"`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoInstance {
    /// The id (the webhooks' `loInstanceId`).
    pub id: LoInstanceId,
    /// The name of the first `localizedMetadata` entry.
    pub name: Option<String>,
    /// `state` (`Active`, `Retired`).
    pub state: Option<String>,
    /// `isDefault`.
    pub is_default: Option<bool>,
    /// `startDate`, for instances that have one.
    pub start_date: Option<Timestamp>,
    /// Every attribute as sent.
    pub attributes: Map<String, Value>,
}

/// One of a user's enrollments (`type: "learningObjectInstanceEnrollment"`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Enrollment {
    /// The enrollment's id.
    pub id: String,
    /// The learner (relationship `learner`).
    pub user_id: Option<UserId>,
    /// The learning object (relationship `learningObject`).
    pub lo_id: Option<LoId>,
    /// The instance (relationship `loInstance`).
    pub lo_instance_id: Option<LoInstanceId>,
    /// `state`: `ENROLLED`, `STARTED`, `COMPLETED`, `PENDING_APPROVAL`, …
    pub state: Option<String>,
    /// `progressPercent`.
    pub progress_percent: Option<u8>,
    /// `dateEnrolled`.
    pub date_enrolled: Option<Timestamp>,
    /// `dateStarted`.
    pub date_started: Option<Timestamp>,
    /// `completedOn` (also read as `completionDate`).
    pub date_completed: Option<Timestamp>,
    /// `hasPassed`.
    pub has_passed: Option<bool>,
}

fn localized_name(resource: &Resource) -> Option<String> {
    resource
        .attributes
        .get("localizedMetadata")
        .and_then(Value::as_array)
        .and_then(|list| list.first())
        .and_then(|entry| entry.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl User {
    /// Parses a `GET /users/{id}` answer.
    pub fn from_document(body: &[u8]) -> Result<Self, serde_json::Error> {
        let document: Document = serde_json::from_slice(body)?;
        Self::from_resource(document.data)
    }

    pub(crate) fn from_resource(resource: Resource) -> Result<Self, serde_json::Error> {
        let id = resource.id.parse().map_err(serde::de::Error::custom)?;
        Ok(Self {
            id: UserId(id),
            name: resource.text("name"),
            email: resource.text("email"),
            state: resource.text("state"),
            user_type: resource.text("userType"),
            attributes: resource.attributes,
        })
    }
}

impl LearningObject {
    /// Parses a `GET /learningObjects/{id}` answer.
    ///
    /// ```
    /// use alm_webhooks::alm_api::LearningObject;
    /// let lo = LearningObject::from_document(br#"{"data":{"id":"course:1","type":"learningObject",
    ///   "attributes":{"loType":"course","localizedMetadata":[{"locale":"en-US","name":"Safety"}]},
    ///   "relationships":{"instances":{"data":[{"id":"course:1_2","type":"learningObjectInstance"}]}}}}"#).unwrap();
    /// assert_eq!(lo.name.as_deref(), Some("Safety"));
    /// assert_eq!(lo.instance_ids[0].as_str(), "course:1_2");
    /// ```
    pub fn from_document(body: &[u8]) -> Result<Self, serde_json::Error> {
        let document: Document = serde_json::from_slice(body)?;
        Self::from_resource(&document.data)
    }

    fn from_resource(resource: &Resource) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: resource.id.parse().map_err(serde::de::Error::custom)?,
            lo_type: resource.text("loType"),
            name: localized_name(resource),
            state: resource.text("state"),
            instance_ids: resource
                .related("instances")
                .iter()
                .filter_map(|id| id.parse().ok())
                .collect(),
            attributes: resource.attributes.clone(),
        })
    }
}

impl LoInstance {
    /// Parses a `GET /learningObjects/{loId}/instances/{id}` answer.
    pub fn from_document(body: &[u8]) -> Result<Self, serde_json::Error> {
        let document: Document = serde_json::from_slice(body)?;
        Self::from_resource(&document.data)
    }

    pub(crate) fn from_resource(resource: &Resource) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: resource.id.parse().map_err(serde::de::Error::custom)?,
            name: localized_name(resource),
            state: resource.text("state"),
            is_default: resource
                .attributes
                .get("isDefault")
                .and_then(Value::as_bool),
            start_date: resource.time("startDate"),
            attributes: resource.attributes.clone(),
        })
    }
}

impl Enrollment {
    pub(crate) fn from_resource(resource: &Resource) -> Self {
        let first = |name: &str| resource.related(name).into_iter().next();
        Self {
            id: resource.id.clone(),
            user_id: first("learner").and_then(|id| id.parse().ok()).map(UserId),
            lo_id: first("learningObject").and_then(|id| id.parse().ok()),
            lo_instance_id: first("loInstance").and_then(|id| id.parse().ok()),
            state: resource.text("state"),
            progress_percent: resource
                .attributes
                .get("progressPercent")
                .and_then(Value::as_u64)
                .map(|p| p.min(100) as u8),
            date_enrolled: resource.time("dateEnrolled"),
            date_started: resource.time("dateStarted"),
            date_completed: resource
                .time("completedOn")
                .or_else(|| resource.time("completionDate")),
            has_passed: resource
                .attributes
                .get("hasPassed")
                .and_then(Value::as_bool),
        }
    }

    /// Parses one page of `GET /users/{id}/enrollments`; the second value
    /// is the `links.next` URL when there is another page.
    pub fn from_list_document(
        body: &[u8],
    ) -> Result<(Vec<Self>, Option<String>), serde_json::Error> {
        let document: ListDocument = serde_json::from_slice(body)?;
        Ok((
            document.data.iter().map(Self::from_resource).collect(),
            document.links.next,
        ))
    }
}
