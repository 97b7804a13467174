//! The double's endpoints.

use std::time::Instant;

use serde_json::{Value, json};

use super::http::{Request, Response};
use super::{DoubleOptions, State};
use crate::{LoId, LoInstanceId, UserId};

/// A report job of the double.
#[derive(Debug)]
pub(crate) struct JobState {
    id: String,
    job_type: String,
    ready_at: Instant,
    csv: Option<String>,
}

/// How long a `429` takes to reach the client and close its gate.
const IN_FLIGHT: std::time::Duration = std::time::Duration::from_millis(50);

const JSON_API: &str = "application/vnd.api+json";

fn document(status: u16, body: Value) -> Response {
    Response {
        status,
        headers: Vec::new(),
        content_type: JSON_API,
        body: body.to_string().into_bytes(),
    }
}

fn error(status: u16, title: &str) -> Response {
    // The error shape of the API reference's examples.
    document(
        status,
        json!({"status": status.to_string(), "title": title}),
    )
}

pub(crate) fn answer(
    state: &mut State,
    options: &DoubleOptions,
    base: &str,
    request: Request,
) -> Response {
    let path = request.path.clone();
    if request.method == "POST" && path == "/oauth/token/refresh" {
        return refresh(state, options, &request.body);
    }
    if let Some(id) = path
        .strip_prefix("/reports/")
        .and_then(|p| p.strip_suffix(".csv"))
    {
        return match state
            .jobs
            .iter()
            .find(|j| j.id == id)
            .and_then(|j| j.csv.clone())
        {
            Some(csv) => Response {
                status: 200,
                headers: Vec::new(),
                content_type: "text/csv",
                body: csv.into_bytes(),
            },
            None => error(404, "no such report"),
        };
    }
    let Some(api) = path.strip_prefix("/primeapi/v2/") else {
        return error(404, "not found");
    };
    let now = Instant::now();
    let token = request
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("oauth "))
        .unwrap_or("");
    if !state
        .tokens
        .iter()
        .any(|(t, until)| t == token && *until > now)
    {
        state.counts.unauthorized += 1;
        return error(401, "Invalid or expired access token");
    }
    let segments: Vec<&str> = api.split('/').collect();
    let limited = matches!(segments.first(), Some(&"users") | Some(&"learningObjects"));
    if limited {
        if let Some(refusal) = rate_limit(state, options, now, request.accepted_at) {
            return refusal;
        }
    }
    let answer = match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["users", id]) => user(state, id),
        ("GET", ["users", id, "enrollments"]) => enrollments(state, base, id, &request.query),
        ("GET", ["learningObjects", id]) => learning_object(state, id),
        ("GET", ["learningObjects", lo, "instances", id]) => instance(state, lo, id),
        ("POST", ["jobs"]) => create_job(state, options, &request.body),
        ("GET", ["jobs", id]) => job(state, base, id),
        _ => error(404, "not found"),
    };
    if limited && answer.status == 200 {
        state.lookups.push(api.to_owned());
    }
    answer
}

fn refresh(state: &mut State, options: &DoubleOptions, body: &[u8]) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("client_id") != Some(&options.client_id)
        || field("client_secret") != Some(&options.client_secret)
        || field("refresh_token") != Some(&options.refresh_token)
    {
        return error(400, "invalid client or refresh token");
    }
    state.counts.token_refreshes += 1;
    let token = format!("double-access-{}", state.counts.token_refreshes);
    state
        .tokens
        .push((token.clone(), Instant::now() + options.token_lifetime));
    let answer = json!({
        "access_token": token,
        "refresh_token": options.refresh_token,
        "expires_in": options.token_lifetime.as_secs(),
    });
    Response {
        status: 200,
        headers: Vec::new(),
        content_type: "application/json",
        body: answer.to_string().into_bytes(),
    }
}

/// Counts the request; a `429` when injected or over the limit.
fn rate_limit(
    state: &mut State,
    options: &DoubleOptions,
    now: Instant,
    accepted_at: Instant,
) -> Option<Response> {
    state.counts.limited_requests += 1;
    // A request already on its way when the `429` went out (its
    // connection open before, or opened while the answer was still
    // travelling to the client) did not ignore it.
    if state
        .hold_since
        .is_some_and(|since| accepted_at > since + IN_FLIGHT)
        && state.hold_until.is_some_and(|until| now < until)
    {
        state.counts.ignored_retry_after += 1;
    }
    state.arrivals.push(now);
    state
        .arrivals
        .retain(|at| now.duration_since(*at) < options.window);
    state.counts.max_in_window = state.counts.max_in_window.max(state.arrivals.len());
    let retry_after = if !state.inject_429.is_empty() {
        Some(state.inject_429.remove(0))
    } else if state.arrivals.len() > options.limit as usize {
        let oldest = state.arrivals[0];
        let left = options.window.saturating_sub(now.duration_since(oldest));
        Some(left.as_secs_f64().ceil().max(1.0) as u64)
    } else {
        None
    };
    let retry_after = retry_after?;
    state.counts.answered_429 += 1;
    state.hold_since = Some(now);
    state.hold_until = Some(now + std::time::Duration::from_secs(retry_after));
    let mut response = error(429, "Too many requests");
    response
        .headers
        .push(("retry-after", retry_after.to_string()));
    Some(response)
}

fn user(state: &State, id: &str) -> Response {
    let Ok(number) = id.parse::<u64>() else {
        return error(404, "no such user");
    };
    if !state.truth.records.keys().any(|(u, _)| u.0 == number) {
        return error(404, "no such user");
    }
    document(
        200,
        json!({"data": {"id": id, "type": "user", "attributes": {
            "name": format!("Learner {number}"),
            "email": format!("learner{number}@example.com"),
            "state": "ACTIVE",
            "userType": "Internal",
        }}}),
    )
}

fn enrollments(state: &State, base: &str, id: &str, query: &str) -> Response {
    let Ok(number) = id.parse::<u64>() else {
        return error(404, "no such user");
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let limit = param("page[limit]").unwrap_or(10).clamp(1, 100);
    let cursor = param("page[cursor]").unwrap_or(0);
    let mine: Vec<_> = state
        .truth
        .records
        .iter()
        .filter(|((u, _), _)| *u == UserId(number))
        .collect();
    let page: Vec<Value> = mine.iter().skip(cursor).take(limit).map(|((user, instance), r)| json!({
        "id": format!("{}_{}", instance, user.0),
        "type": "learningObjectInstanceEnrollment",
        "attributes": {
            "state": r.state,
            "progressPercent": r.progress_percent,
            "dateEnrolled": r.date_enrolled,
            "dateStarted": r.date_started,
            "completedOn": r.date_completed,
        },
        "relationships": {
            "learner": {"data": {"id": user.0.to_string(), "type": "user"}},
            "learningObject": {"data": {"id": r.lo_id.to_string(), "type": "learningObject"}},
            "loInstance": {"data": {"id": instance.to_string(), "type": "learningObjectInstance"}},
        },
    })).collect();
    let mut links = json!({"self": format!("{base}/primeapi/v2/users/{id}/enrollments")});
    if cursor + limit < mine.len() {
        links["next"] = json!(format!(
            "{base}/primeapi/v2/users/{id}/enrollments?page%5Blimit%5D={limit}&page%5Bcursor%5D={}",
            cursor + limit
        ));
    }
    document(200, json!({"data": page, "links": links}))
}

fn learning_object(state: &State, id: &str) -> Response {
    let Ok(lo) = id.parse::<LoId>() else {
        return error(404, "no such learning object");
    };
    let Some(instances) = state.truth.learning_objects.get(&lo) else {
        return error(404, "no such learning object");
    };
    let related: Vec<Value> = instances
        .iter()
        .map(|i| json!({"id": i.to_string(), "type": "learningObjectInstance"}))
        .collect();
    document(
        200,
        json!({"data": {"id": id, "type": "learningObject", "attributes": {
        "loType": lo.lo_type().as_str(),
        "state": "Published",
        "localizedMetadata": [{"locale": "en-US", "name": format!("Course {}", lo.number())}],
    }, "relationships": {"instances": {"data": related}}}}),
    )
}

fn instance(state: &State, lo: &str, id: &str) -> Response {
    let (Ok(lo), Ok(instance)) = (lo.parse::<LoId>(), id.parse::<LoInstanceId>()) else {
        return error(404, "no such instance");
    };
    if !state
        .truth
        .learning_objects
        .get(&lo)
        .is_some_and(|list| list.contains(&instance))
    {
        return error(404, "no such instance");
    }
    document(
        200,
        json!({"data": {"id": id, "type": "learningObjectInstance", "attributes": {
            "state": "Active",
            "isDefault": true,
            "localizedMetadata": [{"locale": "en-US", "name": format!("Session {}", instance.instance_number())}],
        }}}),
    )
}

fn create_job(state: &mut State, options: &DoubleOptions, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(400, "not JSON");
    };
    let Some(job_type) = request
        .pointer("/data/attributes/jobType")
        .and_then(Value::as_str)
    else {
        return error(400, "jobType is missing");
    };
    state.counts.jobs_created += 1;
    let job = JobState {
        id: format!("job-{}", state.counts.jobs_created),
        job_type: job_type.to_owned(),
        ready_at: Instant::now() + options.job_delay,
        csv: None,
    };
    let answer = json!({"data": {"id": job.id, "type": "job", "attributes": {
        "jobType": job.job_type, "status": "Submitted", "description": "report",
    }}});
    state.jobs.push(job);
    document(201, answer)
}

fn job(state: &mut State, base: &str, id: &str) -> Response {
    let csv = state.truth.csv();
    let Some(job) = state.jobs.iter_mut().find(|j| j.id == id) else {
        return error(404, "no such job");
    };
    let mut attributes = json!({"jobType": job.job_type, "status": "InProgress"});
    if Instant::now() >= job.ready_at {
        // The report is what ALM knows when the job completes.
        job.csv.get_or_insert(csv);
        attributes["status"] = json!("Completed");
        attributes["downloadUrl"] = json!(format!("{base}/reports/{}.csv", job.id));
    }
    document(
        200,
        json!({"data": {"id": job.id, "type": "job", "attributes": attributes}}),
    )
}
