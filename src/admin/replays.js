(() => {
  // Replay jobs: start one over a range, watch its progress, cancel it.
  const { api, say, cell, $ } = window.almAdmin;
  let again = null;

  function render(jobs) {
    const body = $("replays");
    body.replaceChildren();
    if (jobs.length === 0) {
      cell(body.insertRow(), "no replays since the receiver started", "empty").colSpan = 6;
      return;
    }
    for (const job of jobs.slice().reverse()) {
      const row = body.insertRow();
      row.dataset.replay = job.id;
      row.dataset.state = job.state;
      cell(row, job.id);
      cell(row, job.mode);
      cell(row, job.error ? job.state + ": " + job.error : job.state, job.state === "failed" ? "bad" : "");
      cell(row, job.matched);
      cell(row, job.done);
      const td = document.createElement("td");
      if (job.state === "running") {
        const cancel = document.createElement("button");
        cancel.textContent = "Cancel";
        cancel.className = "danger";
        cancel.dataset.action = "cancel";
        cancel.onclick = async () => {
          try {
            await api("DELETE", "replays/" + job.id);
            say("replay " + job.id + " cancelled", "ok");
          } catch (e) {
            say(e.message, "bad");
          }
          refresh();
        };
        td.appendChild(cancel);
      }
      row.appendChild(td);
    }
  }

  // Reads the jobs; every second while one runs. A receiver that serves
  // no replays (404) hides the section.
  async function refresh() {
    clearTimeout(again);
    try {
      const jobs = await api("GET", "replays");
      $("replays-section").hidden = false;
      render(jobs);
      if (jobs.some((j) => j.state === "running")) again = setTimeout(refresh, 1000);
    } catch (e) {
      if (/ 404 /.test(e.message)) $("replays-section").hidden = true;
      else say(e.message, "bad");
    }
  }

  $("replay-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const request = { from: $("replay-from").value.trim(), to: $("replay-to").value.trim(), mode: $("replay-mode").value };
    const account = $("replay-account").value.trim(), user = $("replay-user").value.trim();
    const names = $("replay-names").value.split(",").map((n) => n.trim()).filter((n) => n);
    const instance = $("replay-instance").value.trim();
    if (account) request.accountId = Number(account);
    if (user) request.userId = Number(user);
    if (names.length) request.eventNames = names;
    if (instance) request.loInstanceId = instance;
    try {
      const started = await api("POST", "replays", request);
      say("replay " + started.id + " started", "ok");
    } catch (err) {
      say(err.message, "bad");
    }
    refresh();
  });

  window.almAdmin.loaded = refresh;
})();
