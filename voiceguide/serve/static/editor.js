// The editor: every change re-plans on the server (an estimate: nothing is synthesized) and shows the
// totals and the timeline; Render queues a real render and follows it over Server-Sent Events.
"use strict";

const routineId = lastPathPart();
const $ = (id) => document.getElementById(id);
let routine = null;
const holds = {};        // stretch key -> seconds the user set
let pending = null;      // the latest settings waiting to be planned
let inFlight = false;

function settings() {
  return {
    holds: Object.assign({}, holds),
    hold_scale: Number($("scale").value),
    rest: Number($("rest").value),
    countdown: Number($("countdown").value),
    tones: $("tones").checked,
    halfway: $("halfway").checked,
  };
}

function status(text, isError) {
  $("status").textContent = text || "";
  $("status").classList.toggle("error", !!isError);
}

// Re-plan at most one request at a time; the newest settings win.
async function replan() {
  pending = settings();
  if (inFlight) return;
  inFlight = true;
  while (pending) {
    const body = { routine_id: routineId, settings: pending };
    pending = null;
    try {
      showPlan(await postJSON("/api/plan", body));
      status("");
    } catch (error) {
      status(error.message, true);
    }
  }
  inFlight = false;
}

function showPlan(plan) {
  $("total").textContent = clock(plan.duration);
  const holdSeconds = plan.events.filter((e) => e.kind === "hold").reduce((sum, e) => sum + e.end - e.start, 0);
  $("summary").textContent = plan.chapters.length + " chapters · " + clock(holdSeconds) + " holding" +
    (plan.dropped.length ? " · left out: " + plan.dropped.join("; ") : "");
  const line = $("timeline");
  const spans = [];
  let cursor = 0;
  for (const e of plan.events) {
    if (e.kind === "speech") continue;
    if (e.start > cursor) spans.push(el("span", { class: "k-gap", style: "flex:" + (e.start - cursor) }));
    spans.push(el("span", { class: "k-" + e.kind, style: "flex:" + (e.end - e.start), title: (e.stretch || "") + " " + e.kind }));
    cursor = e.end;
  }
  if (plan.duration > cursor) spans.push(el("span", { class: "k-gap", style: "flex:" + (plan.duration - cursor) }));
  line.replaceChildren(...spans);
}

function slider(id, label, min, max, step, value, format, onchange) {
  const input = el("input", { type: "range", id, min, max, step, value });
  const out = el("output", { for: id }, format(value));
  input.addEventListener("input", () => { out.textContent = format(Number(input.value)); onchange(Number(input.value)); replan(); });
  return el("div", { class: "row" }, el("label", { for: id }, label), out, input);
}

function bind(id, format) {
  const input = $(id);
  const out = $(id + "-out");
  const show = () => { if (out) out.textContent = format(Number(input.value)); };
  input.addEventListener("input", () => { show(); replan(); });
  input.addEventListener("change", replan);
  show();
}

async function render() {
  const button = $("render");
  button.disabled = true;
  const bar = $("progress");
  bar.hidden = false;
  try {
    const job = await postJSON("/api/render", { routine_id: routineId, settings: settings() });
    status("Queued…");
    const events = new EventSource("/api/jobs/" + job.id + "/events");
    events.addEventListener("progress", (e) => {
      const d = JSON.parse(e.data);
      status(d.state === "queued" ? "Queued…" : "Rendering: " + (d.stage || "starting") + " " + Math.round(d.fraction * 100) + "%");
      bar.firstElementChild.style.width = Math.round(d.fraction * 100) + "%";
    });
    events.addEventListener("done", (e) => {
      events.close();
      location.href = "/play/" + encodeURIComponent(JSON.parse(e.data).session_id);
    });
    for (const bad of ["error", "cancelled"]) {
      events.addEventListener(bad, (e) => {
        events.close();
        button.disabled = false; bar.hidden = true;
        status(e.data ? (JSON.parse(e.data).error || "render " + bad) : "lost the connection to the server", true);
      });
    }
  } catch (error) {
    button.disabled = false; bar.hidden = true;
    status(error.message, true);
  }
}

async function save() {
  const name = $("name").value.trim();
  try {
    const saved = await postJSON("/api/save", { routine_id: routineId, settings: settings(), name, overwrite: $("overwrite").checked });
    status("Saved " + saved.file + ".");
    history.replaceState(null, "", "/edit/" + encodeURIComponent(saved.id));
  } catch (error) {
    status(error.message, true);
  }
}

async function start() {
  routine = await getJSON("/api/routines/" + encodeURIComponent(routineId));
  $("title").textContent = routine.name;
  document.title = routine.name + " · voiceguide editor";
  $("name").value = routine.builtin ? routine.file + "-custom" : routine.file;
  const box = $("stretches");
  for (const s of routine.stretches) {
    const base = typeof s.hold === "number" ? s.hold : Math.max(...Object.values(s.hold));
    const sides = s.sides.length ? " · " + s.sides.join(", ") : "";
    const id = "hold-" + box.childElementCount;
    box.append(slider(id, s.name + sides, 5, Math.max(180, base * 2), 1, base, (v) => v + " s", (v) => { holds[s.key] = v; }));
  }
  const d = routine.defaults;
  $("rest").value = d.rest;
  $("countdown").value = d.countdown;
  $("tones").checked = d.tones;
  $("halfway").checked = d.halfway;
  bind("scale", (v) => "×" + v.toFixed(2));
  bind("rest", (v) => v + " s");
  bind("countdown", (v) => (v ? v + "…1" : "none"));
  $("tones").addEventListener("change", replan);
  $("halfway").addEventListener("change", replan);
  $("render").addEventListener("click", render);
  $("save").addEventListener("click", save);
  await replan();
  document.body.dataset.ready = "1";
}

start().catch((error) => status(error.message, true));
