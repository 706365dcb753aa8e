// The dashboard's one script: lifecycle buttons, live progress, the trust form, sign-out.
// Every call goes to the node's JSON API with the page's CSRF token; progress comes from
// GET /v1/events (server-sent events). Nothing here builds HTML from strings: text only.
"use strict";

const csrf = (document.querySelector('meta[name="archy-csrf"]') || {}).content || "";

async function call(method, path, body) {
  const init = { method, headers: { "X-Archy-CSRF": csrf }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let message = text;
  try {
    const json = JSON.parse(text);
    if (json && json.error) message = json.error;
  } catch (_) { /* not JSON: the text itself */ }
  return { ok: response.ok, status: response.status, message };
}

const progress = {
  section: document.getElementById("progress"),
  state: document.getElementById("progress-state"),
  steps: document.getElementById("progress-steps"),
  source: null,
  ready: Promise.resolve(),
  app: null,
  // Shows the panel and makes sure the event stream is open before the operation starts (the
  // node subscribes before it answers, so no step is missed); gives up waiting after 3 s.
  start(app, what) {
    if (!this.section) return Promise.resolve();
    this.app = app;
    this.ended = false;
    this.section.hidden = false;
    this.steps.replaceChildren();
    this.show(`${what} ${app}…`, "working");
    if (!this.source) {
      this.source = new EventSource("/v1/events");
      this.source.addEventListener("progress", (e) => this.event(JSON.parse(e.data)));
      this.ready = new Promise((resolve) => this.source.addEventListener("open", resolve, { once: true }));
    }
    return Promise.race([this.ready, new Promise((resolve) => setTimeout(resolve, 3000))]);
  },
  show(text, step) {
    this.state.textContent = text;
    this.state.dataset.step = step;
  },
  event(e) {
    if (e.app !== this.app) return;
    const li = document.createElement("li");
    li.dataset.step = e.step;
    let text = `${e.step}: ${e.detail}`;
    if (e.bytes !== undefined) text += ` (${e.bytes.toLocaleString()} bytes)`;
    li.textContent = text;
    this.steps.append(li);
    // Steps may arrive after the operation's answer: they never overwrite how it ended.
    if (!this.ended && e.step !== "done" && e.step !== "failed") this.show(e.step, e.step);
  },
  end(result, what) {
    if (!this.section) return;
    this.ended = true;
    if (result.ok) this.show(`${what} done`, "done");
    else this.show(`${what} failed: ${result.message}`, "failed");
  },
};

const operations = {
  install: (app) => call("POST", `/v1/installed/${encodeURIComponent(app)}`),
  start: (app) => call("POST", `/v1/installed/${encodeURIComponent(app)}/start`),
  stop: (app) => call("POST", `/v1/installed/${encodeURIComponent(app)}/stop`),
  restart: (app) => call("POST", `/v1/installed/${encodeURIComponent(app)}/restart`),
  update: (app) => call("POST", `/v1/installed/${encodeURIComponent(app)}/update`),
  uninstall: (app) => call("DELETE", `/v1/installed/${encodeURIComponent(app)}`),
  purge: (app) =>
    call("DELETE", `/v1/installed/${encodeURIComponent(app)}?purge=true&confirm=${encodeURIComponent(app)}`),
};

async function operate(button) {
  const op = button.dataset.op;
  const app = button.dataset.app;
  const buttons = document.querySelectorAll("button[data-op]");
  buttons.forEach((b) => { b.disabled = true; });
  await progress.start(app, op);
  // The grants the operator ticked go into config.toml first.
  const card = button.closest(".card");
  const grants = card ? [...card.querySelectorAll("input[data-grant]")].map((i) => i.dataset.grant) : [];
  if (op === "install" && grants.length > 0) {
    const granted = await call("POST", `/v1/grants/${encodeURIComponent(app)}`, { grants });
    if (!granted.ok) {
      progress.end(granted, "grant");
      buttons.forEach((b) => { b.disabled = false; });
      return;
    }
  }
  const result = await operations[op](app);
  progress.end(result, op);
  if (op === "install") {
    if (result.ok) {
      const done = document.createElement("a");
      done.href = `/apps/${encodeURIComponent(app)}`;
      done.textContent = `Manage ${app}`;
      progress.section.append(done);
    }
    buttons.forEach((b) => { b.disabled = false; });
    return;
  }
  if (result.ok && (op === "uninstall" || op === "purge")) {
    window.location.assign("/");
    return;
  }
  if (result.ok) {
    window.location.reload();
    return;
  }
  buttons.forEach((b) => { b.disabled = false; });
}

document.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-op]");
  if (button && !button.disabled) operate(button);
});

// A card's install button waits for every grant it asks for to be ticked.
document.addEventListener("change", (e) => {
  const card = e.target.closest(".card");
  if (!card || !e.target.matches("input[data-grant]")) return;
  const all = [...card.querySelectorAll("input[data-grant]")].every((i) => i.checked);
  const install = card.querySelector('button[data-op="install"]');
  if (install) install.disabled = !all;
});

// Purge asks for the app id to be typed.
const confirmPurge = document.getElementById("purge-confirm");
if (confirmPurge) {
  confirmPurge.addEventListener("input", () => {
    document.getElementById("purge").disabled = confirmPurge.value !== confirmPurge.dataset.app;
  });
}

const policy = document.getElementById("policy");
if (policy) {
  policy.addEventListener("submit", async (e) => {
    e.preventDefault();
    const lines = (name) => policy.elements[name].value.split("\n").map((l) => l.trim()).filter((l) => l);
    const result = await call("PUT", "/v1/nostr/policy", {
      seeds: lines("seeds"),
      min_score: Number(policy.elements.min_score.value),
      allow: lines("allow"),
      deny: lines("deny"),
    });
    const out = document.getElementById("policy-result");
    out.textContent = result.ok ? "Saved: the next sync and the next install use it." : `Not saved: ${result.message}`;
    out.className = result.ok ? "good" : "bad";
  });
}

const logout = document.getElementById("logout");
if (logout) {
  logout.addEventListener("click", async () => {
    await call("POST", "/logout");
    window.location.assign("/login");
  });
}

// The installed apps' state, kept live: the list asks the API every 5 s and updates each row.
const rows = document.querySelectorAll("table.apps tr[data-app]");
if (rows.length > 0) {
  setInterval(async () => {
    if (document.hidden) return;
    const response = await fetch("/v1/installed", { credentials: "same-origin" });
    if (!response.ok) return;
    const apps = await response.json();
    for (const row of rows) {
      const app = apps.find((a) => a.app === row.dataset.app);
      const state = row.querySelector(".state");
      if (app && state && state.dataset.state !== app.state) {
        state.dataset.state = app.state;
        state.textContent = app.state;
      }
    }
  }, 5000);
}
