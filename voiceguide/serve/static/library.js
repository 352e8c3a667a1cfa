"use strict";

function stretchCount(names) {
  return names.length + (names.length === 1 ? " stretch" : " stretches");
}

function sessionCard(s) {
  const when = new Date(s.created * 1000).toLocaleString();
  return el("article", { class: "card session", "data-id": s.id },
    el("h3", {}, s.title),
    el("div", { class: "meta" }, clock(s.duration), " · ", stretchCount(s.stretches || []), " · ", when),
    el("div", { class: "stretches" }, (s.stretches || []).join(", ")),
    el("div", { class: "actions" },
      el("a", { class: "btn primary", href: "/play/" + encodeURIComponent(s.id), "aria-label": "Play " + s.title }, "▶ Play"),
      el("a", { class: "btn", href: "/sessions/" + encodeURIComponent(s.id) + "/audio.mp3", download: s.id + ".mp3" }, "Download")));
}

function routineCard(r) {
  const names = (r.stretches || []).map((s) => s.name);
  const card = el("article", { class: "card routine" + (r.error ? " error" : ""), "data-id": r.id },
    el("h3", {}, r.name, " ", r.builtin ? el("span", { class: "tag" }, "built-in") : el("span", { class: "tag" }, r.file + ".yaml")),
    r.error ? el("div", { class: "err" }, r.error)
      : el("div", { class: "meta" }, "about ", clock(r.duration), " · ", stretchCount(names)),
    el("div", { class: "stretches" }, names.join(", ")));
  if (!r.error) {
    card.append(el("div", { class: "actions" },
      el("button", { class: "btn primary", type: "button", onclick: (e) => renderNow(r, e.currentTarget) }, "▶ Render & play"),
      el("a", { class: "btn", href: "/edit/" + encodeURIComponent(r.id) }, "Edit")));
  }
  return card;
}

async function renderNow(routine, button) {
  button.disabled = true;
  const label = button.textContent;
  try {
    const job = await postJSON("/api/render", { routine_id: routine.id, settings: {} });
    const events = new EventSource("/api/jobs/" + job.id + "/events");
    events.addEventListener("progress", (e) => {
      const d = JSON.parse(e.data);
      button.textContent = (d.stage || "queued") + " " + Math.round(d.fraction * 100) + "%";
    });
    events.addEventListener("done", (e) => { events.close(); location.href = "/play/" + encodeURIComponent(JSON.parse(e.data).session_id); });
    for (const bad of ["error", "cancelled"]) {
      events.addEventListener(bad, (e) => {
        events.close();
        button.disabled = false; button.textContent = label;
        alert(e.data ? JSON.parse(e.data).error || bad : "the connection was lost");
      });
    }
  } catch (error) {
    button.disabled = false; button.textContent = label;
    alert(error.message);
  }
}

async function load() {
  const data = await getJSON("/api/library");
  document.getElementById("feed-link").href = data.feed;
  const sessions = document.getElementById("sessions");
  const routines = document.getElementById("routines");
  sessions.replaceChildren(...(data.sessions.length ? data.sessions.map(sessionCard)
    : [el("p", { class: "empty" }, "No sessions yet: render a routine below.")]));
  routines.replaceChildren(...data.routines.map(routineCard));
}

load().catch((error) => { document.getElementById("routines").textContent = error.message; });
