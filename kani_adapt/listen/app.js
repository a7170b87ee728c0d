"use strict";
const base = location.pathname.replace(/\/$/, "");
const LABELS = {
  intelligibility: "Type what you heard: each sentence is played by one system",
  ab: "A or B: which one sounds better (or no preference)",
  cmos: "Compare B with A on a scale from -3 to +3",
  mushra: "Rate several samples against a reference, from 0 to 100",
  accent: "How much a sample sounds like a given accent, from 1 to 5"};
const TITLES = {intelligibility: "What did you hear?", ab: "Which one is better?",
  cmos: "B compared with A", mushra: "Rate against the reference", accent: "Accent"};
let state = null, started = false, shownAt = 0, played = new Set();
const $ = id => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  kids.forEach(k => e.append(k));
  return e;
}

async function load() {
  const r = await fetch(base + "/state");
  if (!r.ok) {
    const body = r.status === 410 ? await r.json() : {};
    $("error").textContent = body.error || "This link is not valid.";
    return;
  }
  state = await r.json();
  render();
}

function render() {
  $("count").textContent = `${state.listener}: ${state.done} of ${state.total} done`;
  $("bar").style.width = (state.total ? 100 * state.done / state.total : 100) + "%";
  for (const id of ["intro", "trial", "done"]) $(id).hidden = true;
  if (!state.trial) { $("done").hidden = false; return; }
  if (!started) {
    $("intro-designs").replaceChildren(...state.designs.map(d => el("li", {text: LABELS[d]})));
    if (state.done) $("start").textContent = `Continue (${state.done} of ${state.total} done)`;
    $("intro").hidden = false;
    return;
  }
  renderTrial(state.trial);
}

function player(trial, slot, label) {
  const audio = el("audio", {preload: "auto", src: `${base}/audio/${trial.id}/${slot}`});
  const button = el("button", {type: "button", class: "play", "data-slot": slot, text: label});
  button.addEventListener("click", () => {
    document.querySelectorAll("audio").forEach(a => { a.pause(); a.currentTime = 0; });
    audio.play();
  });
  audio.addEventListener("play", () => {
    button.classList.add("played");
    if (slot !== "ref") played.add(slot);
    check();
  });
  return [button, audio];
}

function choices(name, values, labels) {
  return el("div", {class: "choices"}, ...values.map((v, i) => el("label", {},
    el("input", {type: "radio", name, value: String(v)}), " " + labels[i])));
}

function renderTrial(trial) {
  played = new Set();
  const box = $("trial");
  box.replaceChildren(el("h2", {text: TITLES[trial.design]}),
                      el("p", {text: trial.question}));
  if (trial.text) box.append(el("p", {class: "text", text: `"${trial.text}"`}));
  if (trial.design === "mushra") {
    box.append(el("div", {class: "slot"}, ...player(trial, "ref", "Reference")));
    trial.slots.forEach(s => {
      const range = el("input", {type: "range", min: 0, max: 100, step: 1, value: 0, name: s});
      const out = el("output", {text: "0"});
      range.addEventListener("input", () => { out.textContent = range.value; check(); });
      box.append(el("div", {class: "slot"}, ...player(trial, s, `Sample ${s}`), range, out));
    });
  } else {
    box.append(el("div", {}, ...trial.slots.flatMap(s =>
      player(trial, s, trial.slots.length > 1 ? `Play ${s}` : "Play"))));
  }
  if (trial.design === "ab") box.append(choices("choice", ["A", "none", "B"], ["A is better", "no preference", "B is better"]));
  if (trial.design === "cmos") box.append(choices("choice", [-3, -2, -1, 0, 1, 2, 3],
    ["-3 A much better", "-2", "-1", "0 the same", "+1", "+2", "+3 B much better"]));
  if (trial.design === "accent") box.append(choices("choice", [1, 2, 3, 4, 5],
    ["1 not at all", "2", "3", "4", "5 completely"]));
  if (trial.design === "intelligibility") box.append(el("input", {type: "text", id: "transcript", autocomplete: "off", maxlength: 300}));
  const submit = el("button", {id: "submit", type: "button", text: "Next"});
  submit.disabled = true;
  submit.addEventListener("click", () => send(trial));
  box.append(el("div", {}, submit));
  box.querySelectorAll("input").forEach(i => i.addEventListener("input", check));
  box.querySelectorAll("input[type=radio]").forEach(i => i.addEventListener("change", check));
  $("error").textContent = "";
  box.hidden = false;
  shownAt = performance.now();
}

function answerOf(trial) {
  const box = $("trial");
  if (trial.design === "mushra") {
    const a = {};
    box.querySelectorAll("input[type=range]").forEach(r => { a[r.name] = Number(r.value); });
    return a;
  }
  if (trial.design === "intelligibility") {
    const t = $("transcript").value.trim();
    return t || null;
  }
  const c = box.querySelector("input[name=choice]:checked");
  if (!c) return null;
  return trial.design === "ab" ? c.value : Number(c.value);
}

function check() {
  const t = state.trial;
  $("submit").disabled = !(t.slots.every(s => played.has(s)) && answerOf(t) !== null);
}

async function send(trial) {
  $("submit").disabled = true;
  const r = await fetch(base + "/answer", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({trial: trial.id, answer: answerOf(trial),
                          elapsed_ms: Math.round(performance.now() - shownAt)})});
  const body = await r.json();
  if (!r.ok) { $("error").textContent = body.error; if (r.status === 409) load(); else check(); return; }
  state = body;
  render();
}

$("start").addEventListener("click", () => { started = true; render(); });
load();
