// The chat console: send a command, show the replies, poll for reports and job progress.
// Messages arrive as HTML the server rendered (chat markup, escaped); the transcript is kept in
// the tab's sessionStorage, so a reload shows it again.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const transcript = document.getElementById("transcript");
  const form = document.getElementById("console-form");
  const input = document.getElementById("command");
  const progress = document.getElementById("jobs");
  const POLL_MS = 700;
  const KEPT = 200;  // messages kept across reloads
  const key = "chatops-console-" + transcript.dataset.channel;

  function load() {
    try {
      return JSON.parse(sessionStorage.getItem(key) || "[]");
    } catch (e) {
      return [];
    }
  }

  const kept = load();

  function show(item) {
    const node = document.createElement("div");
    node.className = "msg " + item.kind;
    const body = document.createElement("div");
    body.className = "chat";
    if (item.html !== undefined) {
      body.innerHTML = item.html;  // rendered and escaped by the server
    } else {
      body.textContent = item.text;  // what this page typed
    }
    node.appendChild(body);
    if (item.jobId) {
      const link = document.createElement("a");
      link.href = "/jobs/" + item.jobId;
      link.textContent = "job " + item.jobId;
      link.className = "small";
      node.appendChild(link);
    }
    transcript.appendChild(node);
    transcript.scrollTop = transcript.scrollHeight;
  }

  function add(item) {
    show(item);
    kept.push(item);
    while (kept.length > KEPT) kept.shift();
    try {
      sessionStorage.setItem(key, JSON.stringify(kept));
    } catch (e) {
      /* storage full or disabled: the transcript just won't survive a reload */
    }
  }

  const fileInput = document.getElementById("file");

  async function send(text) {
    const file = fileInput && fileInput.files.length ? fileInput.files[0] : null;
    add({kind: "you", text: file ? (text || "run") + " [" + file.name + "]" : text});
    let request = {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({text: text}),
      credentials: "same-origin",
    };
    if (file) {  // a calculation's input: multipart, the browser sets the content type
      const body = new FormData();
      body.append("text", text);
      body.append("file", file);
      request = {method: "POST", headers: {"X-CSRF-Token": csrf}, body: body,
                 credentials: "same-origin"};
      fileInput.value = "";
    }
    const response = await fetch("/console/send", request);
    const data = await response.json();
    if (!response.ok) {
      add({kind: "error", text: data.error || ("error " + response.status)});
      return;
    }
    for (const reply of data.replies) {
      add({kind: data.refused || !data.understood ? "error" : "bot", html: reply.html,
           jobId: null});
    }
    if (data.job_id && !data.replies.length) {
      add({kind: "bot", text: "Job " + data.job_id + " queued.", jobId: data.job_id});
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
        add({kind: m.outcome && m.outcome !== "succeeded" ? "error" : "bot", html: m.html,
             jobId: m.job_id});
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
    if (!text && !(fileInput && fileInput.files.length)) return;
    input.value = "";
    send(text);
  });
  for (const item of kept) show(item);
  setInterval(poll, POLL_MS);
  poll();
})();
