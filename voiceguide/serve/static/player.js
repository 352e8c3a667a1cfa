// The player: everything shown follows audio.currentTime (requestAnimationFrame while playing,
// timeupdate/seeked otherwise); there is no timer of its own.
"use strict";

const TONE = "\ue000";
const WINDOW_KINDS = new Set(["hold", "prepare", "switch", "rest"]);
const PHASES = { hold: "hold", prepare: "get ready", switch: "switch sides", rest: "rest" };
const PLAY_ICON = '<path d="M7 4v16l13-8z"/>';
const PAUSE_ICON = '<path d="M6 4h4v16H6zM14 4h4v16h-4z"/>';

const sessionId = lastPathPart();
const audio = document.getElementById("audio");
const $ = (id) => document.getElementById(id);
let plan = null;
let stretchStarts = [];
let shownTitle = null;
let shownChapter = -1;

// The state of the session at time t (seconds). Also what the browser test computes from the plan.
function stateAt(t) {
  const events = plan.events;
  let current = null;
  for (const e of events) if (WINDOW_KINDS.has(e.kind) && e.start <= t && t < e.end) { current = e; break; }
  if (!current) for (const e of events) if (e.start <= t && t < e.end) { current = e; break; }
  if (!current) for (const e of events) if (e.start <= t) current = e;
  let spoken = null;
  for (const e of events) {
    if (e.kind !== "speech" || !e.text || e.text.startsWith(TONE)) continue;
    if (e.start <= t) spoken = e; else break;
  }
  const chapterIndex = plan.chapters.findIndex((c) => c.start <= t && t < c.end);
  const chapter = plan.chapters[chapterIndex >= 0 ? chapterIndex : plan.chapters.length - 1];
  const stretch = current && current.stretch ? current.stretch : null;
  const side = current && current.stretch && current.side ? current.side : "";
  const inWindow = current && WINDOW_KINDS.has(current.kind);
  const left = inWindow ? current.end - t : 0;
  return {
    stretch, side, chapter, chapterIndex,
    title: stretch ? (side ? stretch + " (" + side + ")" : stretch) : chapter.title,
    kind: inWindow ? current.kind : "",
    count: inWindow ? Math.max(0, Math.ceil(left - 1e-6)) : null,
    fraction: inWindow ? left / (current.end - current.start) : 0,
    line: spoken ? spoken.text : "",
    lineNow: !!(spoken && t < spoken.end),
    next: nextUp(t, stretch, side),
  };
}

function nextUp(t, stretch, side) {
  for (const e of plan.events) {
    if (e.start <= t || !e.stretch) continue;
    if (e.stretch !== stretch) return e.side ? e.stretch + " (" + e.side + ")" : e.stretch;
    if (e.side && e.side !== side) return e.stretch + " (" + e.side + ")";
  }
  return "";
}

function stretchStartTimes() {
  const starts = [0];
  let previous = null;
  for (const e of plan.events) {
    if (!e.stretch || e.stretch === previous) continue;
    previous = e.stretch;
    starts.push(e.start);
  }
  return starts;
}

function seek(seconds) {
  audio.currentTime = Math.min(Math.max(0, seconds), plan.duration);
  draw();
}

function previousStretch() {
  const t = audio.currentTime;
  const before = stretchStarts.filter((s) => s <= t + 0.01);
  const currentStart = before.length ? before[before.length - 1] : 0;
  const target = (t - currentStart > 3 || before.length < 2) ? currentStart : before[before.length - 2];
  seek(target);
}

function nextStretch() {
  const t = audio.currentTime;
  const after = stretchStarts.find((s) => s > t + 0.01);
  if (after !== undefined) seek(after);
}

function setMetadata(state) {
  if (!("mediaSession" in navigator) || state.title === shownTitle) return;
  shownTitle = state.title;
  navigator.mediaSession.metadata = new MediaMetadata({
    title: state.title,
    artist: "voiceguide",
    album: plan.routine,
    artwork: [{ src: new URL("/sessions/" + encodeURIComponent(sessionId) + "/cover.png", location.href).href, sizes: "256x256", type: "image/png" }],
  });
}

function draw() {
  if (!plan) return;
  const t = audio.currentTime;
  const state = stateAt(t);
  const text = (id, value) => { const node = $(id); if (node.textContent !== value) node.textContent = value; };
  text("stretch", state.stretch || state.chapter.title);
  text("side", state.side);
  text("count", state.count === null ? "" : String(state.count));
  text("phase", state.kind ? PHASES[state.kind] : "");
  $("ring").dataset.kind = state.kind;
  $("arc").setAttribute("stroke-dashoffset", String(100 - 100 * state.fraction));
  text("line", state.line.replace(/^\ue000.*/, ""));
  $("line").classList.toggle("old", !state.lineNow);
  const next = $("next");
  if (next.dataset.value !== state.next) {
    next.dataset.value = state.next;
    next.replaceChildren(...(state.next ? ["Next up: ", el("b", {}, state.next)] : []));
  }
  $("fill").style.width = (100 * t / plan.duration) + "%";
  $("bar").setAttribute("aria-valuenow", String(Math.round(t)));
  text("elapsed", clock(t));
  text("remaining", "-" + clock(plan.duration - t));
  if (state.chapterIndex !== shownChapter) {
    shownChapter = state.chapterIndex;
    document.querySelectorAll("#chapters button").forEach((b, i) => b.classList.toggle("current", i === shownChapter));
  }
  document.title = state.title + " · voiceguide";
  setMetadata(state);
  if ("mediaSession" in navigator && navigator.mediaSession.setPositionState && isFinite(audio.duration)) {
    try {
      navigator.mediaSession.setPositionState({ duration: audio.duration, playbackRate: audio.playbackRate, position: Math.min(t, audio.duration) });
    } catch (e) { /* some browsers refuse while loading */ }
  }
}

function frame() {
  draw();
  if (!audio.paused) requestAnimationFrame(frame);
}

function showPlaying() {
  const playing = !audio.paused;
  $("play-icon").innerHTML = playing ? PAUSE_ICON : PLAY_ICON;
  $("play").setAttribute("aria-label", playing ? "Pause" : "Play");
  if ("mediaSession" in navigator) navigator.mediaSession.playbackState = playing ? "playing" : "paused";
}

function buildChapters() {
  const bar = $("bar");
  const list = $("chapters");
  plan.chapters.forEach((c, i) => {
    if (i > 0) bar.append(el("span", { class: "mark", style: "left:" + (100 * c.start / plan.duration) + "%", title: c.title }));
    list.append(el("li", {}, el("button", { type: "button", "data-start": c.start, onclick: () => seek(c.start) },
      el("span", {}, c.title), el("span", { class: "t" }, clock(c.start)))));
  });
}

function barSeek(event) {
  const box = $("bar").getBoundingClientRect();
  seek(plan.duration * Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)));
}

async function start() {
  plan = await getJSON("/sessions/" + encodeURIComponent(sessionId) + "/plan.json");
  stretchStarts = stretchStartTimes();
  $("routine").textContent = plan.routine;
  $("bar").setAttribute("aria-valuemax", String(Math.round(plan.duration)));
  buildChapters();
  audio.src = "/sessions/" + encodeURIComponent(sessionId) + "/audio.mp3";
  for (const name of ["timeupdate", "seeked", "seeking", "loadedmetadata", "pause", "ended"]) audio.addEventListener(name, draw);
  audio.addEventListener("play", () => { showPlaying(); requestAnimationFrame(frame); });
  audio.addEventListener("pause", showPlaying);
  audio.addEventListener("ended", showPlaying);
  $("play").addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
  $("prev").addEventListener("click", previousStretch);
  $("next-btn").addEventListener("click", nextStretch);
  const bar = $("bar");
  bar.addEventListener("pointerdown", (e) => { bar.setPointerCapture(e.pointerId); barSeek(e); });
  bar.addEventListener("pointermove", (e) => { if (bar.hasPointerCapture(e.pointerId)) barSeek(e); });
  bar.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight") seek(audio.currentTime + 10);
    else if (e.key === "ArrowLeft") seek(audio.currentTime - 10);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === " " && e.target === document.body) { e.preventDefault(); audio.paused ? audio.play() : audio.pause(); }
  });
  if ("mediaSession" in navigator) {
    const handlers = {
      play: () => audio.play(), pause: () => audio.pause(),
      previoustrack: previousStretch, nexttrack: nextStretch,
      seekto: (d) => seek(d.seekTime),
      seekbackward: (d) => seek(audio.currentTime - (d.seekOffset || 10)),
      seekforward: (d) => seek(audio.currentTime + (d.seekOffset || 10)),
    };
    for (const [action, handler] of Object.entries(handlers)) {
      try { navigator.mediaSession.setActionHandler(action, handler); } catch (e) { /* not supported here */ }
    }
  }
  draw();
  document.body.dataset.ready = "1";
}

start().catch((error) => { $("stretch").textContent = error.message; });
