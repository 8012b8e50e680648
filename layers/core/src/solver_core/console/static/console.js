// Solver's web console: progressive enhancement over server-rendered pages. Plain fetch, no
// dependencies. Everything from the server is inserted either as nodes of a page it rendered
// (escaped there) or through textContent: never as markup built here.
"use strict";

const POLL_MS = 1500;
const body = document.body;
const base = body.dataset.base || "";
document.documentElement.classList.add("js");

async function fetchPage(url) {
  const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${response.status}`);
  return new DOMParser().parseFromString(await response.text(), "text/html");
}

// Regions marked data-live="refresh" are replaced by the same region of a fresh copy of the page,
// until the server marks them as no longer live.
function followRegions(onUpdate) {
  const live = () => [...document.querySelectorAll('[data-live="refresh"][id]')];
  if (live().length === 0) return;
  const tick = async () => {
    try {
      const fresh = await fetchPage(location.href);
      for (const region of live()) {
        const next = fresh.getElementById(region.id);
        if (next) region.replaceWith(keepOpenState(region, document.importNode(next, true)));
      }
      if (onUpdate) onUpdate(fresh);
    } catch (error) {
      console.warn("refresh failed", error);
    }
    if (live().length > 0) setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}

// What the reader opened or closed stays so when a region is refreshed.
function keepOpenState(old, next) {
  const before = [...old.querySelectorAll("details")];
  const after = [...next.querySelectorAll("details")];
  if (before.length === after.length) after.forEach((details, i) => (details.open = before[i].open));
  return next;
}

// The solve's events: appended as text from the JSON feed.
function followEvents() {
  const list = document.getElementById("events");
  if (!list || list.dataset.follow !== "yes") return;
  const poll = async () => {
    let more = false;
    try {
      const url = `${list.dataset.url}?after=${encodeURIComponent(list.dataset.after)}&limit=200`;
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const page = await response.json();
        for (const event of page.items) list.append(eventItem(event));
        list.dataset.after = String(page.next_after);
        more = page.items.length > 0;
      }
    } catch (error) {
      console.warn("events failed", error);
    }
    const stillLive = document.querySelector('#solve-head[data-live="refresh"]');
    if (stillLive || more) setTimeout(poll, POLL_MS);
  };
  setTimeout(poll, POLL_MS);
}

function eventItem(event) {
  const item = document.createElement("li");
  item.className = `ev-${event.kind}`;
  const at = document.createElement("time");
  at.dateTime = event.at;
  at.textContent = new Date(event.at).toISOString().slice(11, 19);
  const kind = document.createElement("span");
  kind.className = "kind";
  kind.textContent = event.kind;
  const message = document.createElement("span");
  message.className = "msg";
  message.textContent = event.message;
  item.append(at, " ", kind, " ");
  if (event.run_id) {
    const run = document.createElement("span");
    run.className = "muted";
    const row = [...document.querySelectorAll("tr[data-run]")].find((r) => r.dataset.run === event.run_id);
    run.textContent = `run ${row ? row.dataset.index : "?"}`;
    item.append(run, " ");
  }
  item.append(message);
  return item;
}

// Cancel and Publish: a confirmation dialog, then the API's POST with a JSON body.
function confirmed(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-yes").focus();
  });
}

function actions() {
  document.addEventListener("click", async (clicked) => {
    const button = clicked.target.closest("button[data-action]");
    if (!button) return;
    if (!(await confirmed(button.dataset.confirm))) return;
    const result = document.querySelector(".action-result");
    button.disabled = true;
    try {
      const response = await postJson(button.dataset.url, {});
      const answer = await response.json().catch(() => ({}));
      result.textContent = response.ok
        ? `${button.textContent.trim()}: done`
        : `${button.textContent.trim()} failed: ${(answer.error && answer.error.message) || response.status}`;
      if (response.ok) followRegionsOnce();
    } finally {
      button.disabled = false;
    }
  });
}

async function followRegionsOnce() {
  const fresh = await fetchPage(location.href);
  for (const id of ["solve-head"]) {
    const next = fresh.getElementById(id);
    const here = document.getElementById(id);
    if (next && here) here.replaceWith(document.importNode(next, true));
  }
}

function postJson(url, data, headers = {}) {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", ...headers },
    body: JSON.stringify(data),
  });
}

// The new-solve form: sent as JSON; the API's 422 details are shown beside their fields.
function newSolveForm() {
  const form = document.getElementById("new-solve");
  if (!form) return;
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    clearErrors(form);
    const response = await postJson(form.dataset.url, formJson(form), { "Idempotency-Key": form.dataset.key });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      location.assign(`${base}/ui/solves/${encodeURIComponent(answer.id)}`);
      return;
    }
    showErrors(form, answer.error || { message: `the server answered ${response.status}`, details: [] });
  });
}

function formJson(form) {
  const data = {};
  for (const input of form.querySelectorAll("input[name], textarea[name], select[name]")) {
    let value;
    if (input.dataset.type === "bool") value = input.checked;
    else if (input.name === "models") value = input.value.split("\n").map((m) => m.trim()).filter(Boolean);
    else if (input.value.trim() === "") continue;
    else if (input.dataset.type === "int") value = Number.parseInt(input.value, 10);
    else if (input.dataset.type === "float") value = Number.parseFloat(input.value);
    else value = input.value;
    const path = input.name.split(".");
    let node = data;
    for (const key of path.slice(0, -1)) node = node[key] ??= {};
    node[path.at(-1)] = value;
  }
  if (data.publish && !data.publish.comment && !data.publish.pull_request) delete data.publish;
  return data;
}

function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error, .form-error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function showErrors(form, error) {
  const general = form.querySelector(".form-error");
  const unplaced = [];
  for (const detail of error.details || []) {
    const name = String(detail.field || "").replace(/\[\d+\]/g, "");
    // "issue" (the whole object missing) goes beside its first field, "issue.title".
    const slots = [...form.querySelectorAll("[data-error-for]")];
    const slot =
      slots.find((s) => s.dataset.errorFor === name) || slots.find((s) => s.dataset.errorFor.startsWith(`${name}.`));
    if (!slot) {
      unplaced.push(`${detail.field}: ${detail.message}`);
      continue;
    }
    slot.textContent = slot.hidden ? detail.message : `${slot.textContent} ${detail.message}`;
    slot.hidden = false;
    const input = slot.closest(".field").querySelector("input, textarea, select");
    if (input) input.setAttribute("aria-invalid", "true");
  }
  general.textContent = [error.message, ...unplaced].filter(Boolean).join(" · ");
  general.hidden = false;
  const first = form.querySelector('[aria-invalid="true"]');
  (first || general).focus();
}

// The trajectory viewer: j/k between steps, o to open or close the output; a running run's new
// steps are appended as they come.
function trajectoryViewer() {
  const list = document.getElementById("steps");
  if (!list) return;
  const steps = () => [...list.querySelectorAll("li.step")];
  let current = -1;
  const go = (index) => {
    const all = steps();
    if (all.length === 0) return;
    current = Math.max(0, Math.min(index, all.length - 1));
    for (const step of all) step.classList.remove("current");
    all[current].classList.add("current");
    all[current].focus();
    all[current].scrollIntoView({ block: "start" });
  };
  document.addEventListener("keydown", (pressed) => {
    if (pressed.altKey || pressed.ctrlKey || pressed.metaKey) return;
    if (pressed.target.closest("input, textarea, select, [contenteditable]")) return;
    if (pressed.key === "j") go(current + 1);
    else if (pressed.key === "k") go(current - 1);
    else if (pressed.key === "o" && current >= 0) {
      for (const details of steps()[current].querySelectorAll("details.output")) details.open = !details.open;
    } else return;
    pressed.preventDefault();
  });
  if (list.dataset.follow === "yes") {
    followRegions((fresh) => {
      const next = fresh.getElementById("steps");
      if (!next) return;
      const have = steps();
      for (const step of next.querySelectorAll("li.step")) {
        const number = Number(step.dataset.step);
        const existing = have[number - 1];
        const copy = document.importNode(step, true);
        if (!existing) list.append(copy);
        else if (number === have.length && existing.innerHTML !== step.innerHTML) {
          if (existing.classList.contains("current")) copy.classList.add("current");
          existing.replaceWith(copy);
        }
      }
      list.dataset.follow = next.dataset.follow;
      const none = document.getElementById("no-steps");
      if (none && steps().length > 0) none.remove();
    });
  }
}

// The sign-in link `solver serve` prints carries the token in the fragment, which no server sees:
// post it as JSON, drop it from the address bar and history, and go on to the console.
async function signInFromFragment() {
  const match = /^#token=(.+)$/.exec(location.hash);
  if (!match) return;
  history.replaceState(null, "", location.pathname);
  const response = await postJson(`${base}/ui/login`, { token: decodeURIComponent(match[1]) });
  location.assign(response.url || `${base}/ui`);
}

const page = body.dataset.page;
if (page === "login") signInFromFragment();
if (page === "solves") followRegions();
if (page === "solve") {
  followRegions();
  followEvents();
  actions();
}
if (page === "new") newSolveForm();
if (page === "run") trajectoryViewer();
