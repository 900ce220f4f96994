// The chat console: send a command, show the replies, poll for reports and job progress.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const transcript = document.getElementById("transcript");
  const form = document.getElementById("console-form");
  const input = document.getElementById("command");
  const progress = document.getElementById("jobs");
  const POLL_MS = 700;

  function add(kind, text, jobId) {
    const item = document.createElement("div");
    item.className = "msg " + kind;
    const body = document.createElement("pre");
    // The console platform fences code blocks as in chat; a <pre> needs no fences.
    body.textContent = text.replace(/^```[a-z]*\n|\n?```$/gm, "");
    item.appendChild(body);
    if (jobId) {
      const link = document.createElement("a");
      link.href = "/jobs/" + jobId;
      link.textContent = "job " + jobId;
      link.className = "small";
      item.appendChild(link);
    }
    transcript.appendChild(item);
    transcript.scrollTop = transcript.scrollHeight;
  }

  async function send(text) {
    add("you", text);
    const response = await fetch("/console/send", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({text: text}),
      credentials: "same-origin",
    });
    const data = await response.json();
    if (!response.ok) {
      add("error", data.error || ("error " + response.status));
      return;
    }
    for (const reply of data.replies) {
      add(data.refused || !data.understood ? "error" : "bot", reply.text, null);
    }
    if (data.job_id && !data.replies.length) {
      add("bot", "Job " + data.job_id + " queued.", data.job_id);
    }
    poll();
  }

  function showJobs(jobs) {
    progress.textContent = "";
    for (const job of jobs.slice().reverse()) {
      const row = document.createElement("div");
      row.className = "job-line";
      const link = document.createElement("a");
      link.href = "/jobs/" + job.id;
      link.textContent = "job " + job.id;
      const type = document.createElement("code");
      type.textContent = job.job_type;
      const state = document.createElement("span");
      state.className = "state " + job.state;
      state.textContent = job.state.replace("_", " ");
      row.append(link, " ", type, " ", state);
      progress.appendChild(row);
    }
  }

  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const response = await fetch("/console/poll", {credentials: "same-origin"});
      if (response.status === 401) {
        window.location = "/login?next=/console";
        return;
      }
      const data = await response.json();
      for (const m of data.messages) {
        add(m.outcome && m.outcome !== "succeeded" ? "error" : "bot", m.text, m.job_id);
      }
      showJobs(data.jobs);
    } catch (e) {
      /* the server restarted or the network blinked: the next poll tries again */
    } finally {
      polling = false;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });
  setInterval(poll, POLL_MS);
  poll();
})();
