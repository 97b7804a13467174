"use strict";
(() => {
  const KEY = "alm-webhooks-admin-token";
  const $ = (id) => document.getElementById(id);
  // The API sits beside this page: `admin` + `/inbox`, whatever path the
  // page is mounted under.
  const base = location.pathname.replace(/\/+$/, "") + "/";
  let token = sessionStorage.getItem(KEY) || "";
  // Listings come in pages of at most PAGE, oldest first; each table
  // shows the page after the id kept here (none: the first page).
  const PAGE = 100;
  const after = { "dead-letters": null, "quarantine": null };

  function listing(kind) {
    return after[kind] === null ? kind : kind + "?after=" + after[kind];
  }

  function pager(kind, items) {
    $(kind + "-first").hidden = after[kind] === null;
    const next = $(kind + "-next");
    next.hidden = items.length < PAGE;
    next.onclick = () => { after[kind] = items[items.length - 1].id; load(); };
    $(kind + "-first").onclick = () => { after[kind] = null; load(); };
  }

  function say(text, kind) {
    const m = $("message");
    m.textContent = text;
    m.className = kind || "";
  }

  async function api(method, path, json) {
    const headers = { "Authorization": "Bearer " + token };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(base + path, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      cache: "no-store",
    });
    if (response.status === 401) {
      signOut();
      throw new Error("the token was refused");
    }
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
    if (!response.ok) {
      const detail = body && body.error ? body.error : text || response.statusText;
      throw new Error(method + " " + path + ": " + response.status + " " + detail);
    }
    return body;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function figure(container, label, value, alert) {
    const div = document.createElement("div");
    div.className = "figure" + (alert ? " alert" : "");
    div.dataset.figure = label;
    const v = document.createElement("div");
    v.className = "value";
    v.textContent = value;
    const l = document.createElement("div");
    l.className = "label";
    l.textContent = label;
    div.append(v, l);
    container.appendChild(div);
  }

  function pretty(value) {
    if (typeof value === "string") return value;
    return JSON.stringify(value, null, 2);
  }

  function actions(row, kind, id) {
    const td = document.createElement("td");
    const replay = document.createElement("button");
    replay.textContent = "Replay";
    replay.className = "primary";
    replay.dataset.action = "replay";
    replay.dataset.id = id;
    replay.onclick = () => act("POST", kind + "/" + encodeURIComponent(id) + "/replay", "replayed " + id);
    const discard = document.createElement("button");
    discard.textContent = "Discard";
    discard.className = "danger";
    discard.dataset.action = "discard";
    discard.dataset.id = id;
    discard.onclick = () => {
      if (confirm("Discard " + id + " for good?")) {
        act("DELETE", kind + "/" + encodeURIComponent(id), "discarded " + id);
      }
    };
    td.append(replay, " ", discard);
    row.appendChild(td);
  }

  // Listings carry a short preview; the whole event or body is fetched
  // by id, on demand.
  function whole(td, pre, kind, item, text) {
    const button = document.createElement("button");
    button.textContent = "Show all " + item.bytes + " bytes";
    button.dataset.action = "show";
    button.dataset.id = item.id;
    button.onclick = async () => {
      try {
        pre.textContent = text(await api("GET", kind + "/" + encodeURIComponent(item.id)));
        button.remove();
      } catch (e) {
        say(e.message, "bad");
      }
    };
    td.appendChild(button);
  }

  async function act(method, path, done, json) {
    try {
      await api(method, path, json);
      say(done, "ok");
    } catch (e) {
      say(e.message, "bad");
    }
    await load();
  }

  function renderInbox(inbox) {
    const c = $("inbox");
    c.replaceChildren();
    figure(c, "pending", inbox.pending);
    figure(c, "in flight", inbox.in_flight);
    figure(c, "retrying", inbox.retrying, inbox.retrying > 0);
    figure(c, "dead letters", inbox.dead_letters, inbox.dead_letters > 0);
    figure(c, "quarantined", inbox.quarantined, inbox.quarantined > 0);
    const age = inbox.oldest_pending_age_ms;
    const paused = (inbox.paused || []).length + (inbox.pausedAll ? 1 : 0);
    figure(c, "paused", inbox.pausedAll ? "all" : paused, paused > 0);
    figure(c, "oldest pending", age === null || age === undefined ? "none" : (age / 1000).toFixed(1) + " s", age > 300000);
  }

  function renderPaused(inbox) {
    const body = $("paused");
    body.replaceChildren();
    const scopes = (inbox.pausedAll ? ["all"] : []).concat((inbox.paused || []).map(String));
    if (scopes.length === 0) {
      cell(body.insertRow(), "none", "empty").colSpan = 2;
      return;
    }
    for (const scope of scopes) {
      const row = body.insertRow();
      row.dataset.account = scope;
      cell(row, scope === "all" ? "every account" : scope);
      const td = document.createElement("td");
      const resume = document.createElement("button");
      resume.textContent = scope === "all" ? "Resume every account" : "Resume";
      resume.className = "primary";
      resume.dataset.action = "resume";
      resume.onclick = () => act("POST", "accounts/" + encodeURIComponent(scope) + "/resume", "resumed " + scope);
      td.appendChild(resume);
      row.appendChild(td);
    }
  }

  // A bulk form's filter: the fields filled in (account id as a number).
  function filterOf(form) {
    const filter = {};
    for (const input of form.querySelectorAll("input")) {
      const value = input.value.trim();
      if (value) filter[input.name] = input.name === "accountId" ? Number(value) : value;
    }
    return filter;
  }

  for (const form of document.querySelectorAll("form.bulk")) {
    for (const button of form.querySelectorAll("button[data-bulk]")) {
      button.onclick = async () => {
        const kind = form.dataset.kind, action = button.dataset.bulk, filter = filterOf(form);
        if (action === "discard" && !confirm("Discard every " + kind + " entry matching " + JSON.stringify(filter) + " for good?")) return;
        try {
          const done = await api("POST", kind + "/" + action, filter);
          say(action + ": " + done.matched + " matched" + (done.done === undefined ? "" : ", " + done.done + " done"), "ok");
        } catch (e) {
          say(e.message, "bad");
        }
        await load();
      };
    }
  }

  $("pause-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const account = $("pause-account").value.trim();
    if (!/^[0-9]+$/.test(account)) { say("an account id is a number", "bad"); return; }
    $("pause-account").value = "";
    act("POST", "accounts/" + account + "/pause", "paused " + account);
  });
  $("pause-all").onclick = () => {
    if (confirm("Pause every account? Deliveries are still acknowledged and wait in the inbox.")) {
      act("POST", "accounts/all/pause", "paused every account");
    }
  };

  function renderDecisions(decisions) {
    const c = $("decisions");
    c.replaceChildren();
    for (const [name, count] of Object.entries(decisions || {})) {
      figure(c, name.replace(/_/g, " "), count, name === "failed" && count > 0);
    }
  }

  function renderDeadLetters(items) {
    const body = $("dead-letters");
    body.replaceChildren();
    $("dead-count").textContent = "(" + items.length + (after["dead-letters"] === null ? "" : " after id " + after["dead-letters"]) + ")";
    pager("dead-letters", items);
    if (items.length === 0) {
      const row = body.insertRow();
      cell(row, "none", "empty").colSpan = 6;
      return;
    }
    for (const d of items) {
      const row = body.insertRow();
      row.dataset.id = d.id;
      cell(row, d.id);
      cell(row, d.accountId);
      cell(row, (d.eventName || "") + "\n" + (d.eventId || ""));
      cell(row, d.attempts);
      const td = cell(row, d.error, "error");
      const pre = document.createElement("pre");
      pre.textContent = d.preview;
      td.appendChild(pre);
      whole(td, pre, "dead-letters", d, (full) => pretty(full.event));
      actions(row, "dead-letters", d.id);
    }
  }

  function renderQuarantine(items) {
    const body = $("quarantine");
    body.replaceChildren();
    $("quarantine-count").textContent = "(" + items.length + (after.quarantine === null ? "" : " after id " + after.quarantine) + ")";
    pager("quarantine", items);
    if (items.length === 0) {
      const row = body.insertRow();
      cell(row, "none", "empty").colSpan = 5;
      return;
    }
    for (const q of items) {
      const row = body.insertRow();
      row.dataset.id = q.id;
      cell(row, q.id);
      cell(row, q.receivedAt);
      cell(row, q.bytes);
      const td = cell(row, q.error, "error");
      const pre = document.createElement("pre");
      pre.textContent = q.preview;
      td.appendChild(pre);
      whole(td, pre, "quarantine", q, (full) => full.body);
      actions(row, "quarantine", q.id);
    }
  }

  // The archive's events of a learner, an event id or an instance, with
  // their decisions (`events?userId=…&from=…&to=…`).
  async function searchEvents() {
    const value = $("events-value").value.trim();
    const body = $("events");
    body.replaceChildren();
    if (!value) {
      say("give a user id, an event id or an instance", "bad");
      return;
    }
    let query = "events?" + $("events-by").value + "=" + encodeURIComponent(value);
    for (const [id, name] of [["events-from", "from"], ["events-to", "to"]]) {
      const time = $(id).value.trim();
      if (time) query += "&" + name + "=" + encodeURIComponent(time);
    }
    try {
      const found = await api("GET", query);
      if (found.length === 0) {
        const row = body.insertRow();
        cell(row, "no archived events for " + value, "empty").colSpan = 7;
        return;
      }
      for (const e of found) {
        const row = body.insertRow();
        row.dataset.event = e.eventId;
        cell(row, e.receivedAt);
        cell(row, e.accountId);
        cell(row, e.eventName + "\n" + e.eventId);
        cell(row, e.timestamp);
        cell(row, e.decision + (e.reason ? " (" + e.reason + ")" : ""), "decision");
        cell(row, e.attempts);
        cell(row, e.error);
      }
    } catch (e) {
      say(e.message, "bad");
    }
  }

  // A learner's records, searched by user id (`records?userId=`).
  async function searchLearner() {
    const user = $("learner-user").value.trim();
    const body = $("learners");
    body.replaceChildren();
    if (!/^[0-9]+$/.test(user)) {
      say("a user id is a number", "bad");
      return;
    }
    try {
      const rows = await api("GET", "records?userId=" + encodeURIComponent(user));
      if (rows.length === 0) {
        const row = body.insertRow();
        cell(row, "no records for user " + user, "empty").colSpan = 10;
        return;
      }
      for (const r of rows) {
        const row = body.insertRow();
        row.dataset.instance = r.loInstanceId;
        cell(row, r.accountId);
        cell(row, r.loInstanceId);
        cell(row, r.loType);
        cell(row, r.status);
        cell(row, r.progressPercent + " %");
        cell(row, r.dateEnrolled);
        cell(row, r.dateCompleted);
        cell(row, r.hasPassed === null ? "" : (r.hasPassed ? "yes" : "no"));
        cell(row, r.lastEventName + "\n" + r.lastEventId);
        cell(row, r.updatedAt);
      }
    } catch (e) {
      say(e.message, "bad");
    }
  }

  // The export needs the token too: fetched, then saved as a file.
  async function downloadCsv(e) {
    e.preventDefault();
    try {
      const response = await fetch(base + "records.csv", {
        headers: { "Authorization": "Bearer " + token },
        cache: "no-store",
      });
      if (!response.ok) throw new Error("records.csv: " + response.status);
      const url = URL.createObjectURL(await response.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = "learner-records.csv";
      a.click();
      URL.revokeObjectURL(url);
    } catch (err) {
      say(err.message, "bad");
    }
  }

  async function load() {
    if (!token) return;
    try {
      const [inbox, decisions, dead, quarantine] = await Promise.all([
        api("GET", "inbox"),
        api("GET", "decisions"),
        api("GET", listing("dead-letters")),
        api("GET", listing("quarantine")),
      ]);
      renderInbox(inbox);
      renderPaused(inbox);
      renderDecisions(decisions);
      renderDeadLetters(dead);
      renderQuarantine(quarantine);
      if (window.almAdmin && window.almAdmin.loaded) window.almAdmin.loaded();
      $("status").textContent = "updated " + new Date().toLocaleTimeString();
      $("dashboard").hidden = false;
      $("login").hidden = true;
      $("refresh").hidden = false;
      $("logout").hidden = false;
    } catch (e) {
      say(e.message, "bad");
    }
  }

  function signOut() {
    token = "";
    sessionStorage.removeItem(KEY);
    $("dashboard").hidden = true;
    $("login").hidden = false;
    $("refresh").hidden = true;
    $("logout").hidden = true;
    $("status").textContent = "not signed in";
  }

  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    if (!token) return;
    sessionStorage.setItem(KEY, token);
    say("");
    load();
  });
  $("learner-form").addEventListener("submit", (e) => { e.preventDefault(); searchLearner(); });
  $("events-form").addEventListener("submit", (e) => { e.preventDefault(); searchEvents(); });
  $("learner-csv").addEventListener("click", downloadCsv);
  $("refresh").onclick = () => load();
  $("logout").onclick = () => { signOut(); say(""); };
  // For the page's other parts (replays.js), concatenated after this one.
  window.almAdmin = { api, say, cell, $, load };
  load();
  setInterval(load, 10000);
})();
