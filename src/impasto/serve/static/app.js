// impasto's page: pick a photo (or a short video) and a style, queue a job, follow it over
// Server-Sent Events.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("job-form");
let token = new URLSearchParams(location.search).get("token") || localStorage.getItem("impasto-token") || "";
let chosenStyle = null;
let job = null;
let events = null;

function withToken(url) {
  return token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
}

async function api(url, options = {}) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch(url, { ...options, headers });
  if (response.status === 401) {
    $("token-row").hidden = false;
    throw new Error("This server needs an access token: enter it under Options.");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    throw new Error(detail || response.statusText);
  }
  return body;
}

function say(text) { $("status").textContent = text; }

function method() { return form.elements.method.value; }

function isVideo() {
  const file = $("content").files[0];
  return Boolean(file && file.type.startsWith("video/"));
}

function showMethod() {
  // Optimization paints photos: a video takes one of the one-pass methods.
  const optimize = form.querySelector("input[name=method][value=optimize]");
  optimize.disabled = isVideo();
  if (optimize.disabled && optimize.checked) form.querySelector("input[name=method][value=fast]").checked = true;
  $("consistency-row").hidden = !isVideo();
  const fast = method() === "fast";
  $("builtin").hidden = !fast;
  $("upload-style").hidden = fast;
  $("style_image").required = !fast;
  $("iterations").hidden = $("iterations-label").hidden = method() !== "optimize";
}

async function loadStyles() {
  try {
    const styles = await api("/api/styles");
    $("builtin").replaceChildren(...styles.map((style) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "style";
      button.setAttribute("role", "radio");
      button.setAttribute("aria-checked", "false");
      button.dataset.name = style.name;
      const img = document.createElement("img");
      img.src = withToken(style.thumbnail);
      img.alt = "";
      const label = document.createElement("span");
      label.textContent = style.name.replaceAll("_", " ");
      button.append(img, label);
      button.addEventListener("click", () => pickStyle(button));
      return button;
    }));
    if (!chosenStyle && styles.length) pickStyle($("builtin").firstElementChild);
  } catch (error) {
    say(error.message);
  }
}

function pickStyle(button) {
  if (!button) return;
  for (const other of $("builtin").children) other.setAttribute("aria-checked", String(other === button));
  chosenStyle = button.dataset.name;
}

function preview(input, img) {
  const file = input.files[0];
  img.hidden = !file;
  if (file) img.src = URL.createObjectURL(file);
}

function setBusy(busy) {
  $("paint").disabled = busy;
  $("cancel").hidden = !busy;
  $("progress").hidden = !busy;
}

async function submit(event) {
  event.preventDefault();
  if (!$("content").files[0]) return say("Choose a photo or a video first.");
  const data = new FormData();
  data.append("content", $("content").files[0]);
  data.append("method", method());
  if (method() === "fast") data.append("style", chosenStyle || "");
  else if ($("style_image").files[0]) data.append("style_image", $("style_image").files[0]);
  else return say("Choose a painting for this method.");
  data.append("strength", $("strength").value);
  data.append("size", $("size").value);
  if ($("preserve_color").checked) data.append("preserve_color", "luminance");
  if (isVideo() && !$("consistency").checked) data.append("consistency", "off");
  if (method() === "optimize") data.append("iterations", $("iterations").value);
  $("compare").hidden = $("download").hidden = $("movie").hidden = true;
  $("progress").value = 0;
  setBusy(true);
  say("Uploading…");
  try {
    job = await api("/api/jobs", { method: "POST", body: data });
  } catch (error) {
    setBusy(false);
    return say(error.message);
  }
  say("Waiting in the queue…");
  follow(job.id);
}

function follow(id) {
  events = new EventSource(withToken(`/api/jobs/${id}/events`));
  events.addEventListener("progress", (e) => {
    const state = JSON.parse(e.data);
    $("progress").value = state.progress;
    say(state.state === "running" ? `Painting… ${done(state)}` : "Waiting in the queue…");
  });
  events.addEventListener("snapshot", (e) => {
    const url = withToken(JSON.parse(e.data).url);
    if (job.options.video) showFrame(url);
    else show(url, false);
  });
  events.addEventListener("done", (e) => {
    const state = JSON.parse(e.data);
    finish();
    if (state.options.video) showVideo(withToken(state.result));
    else show(withToken(state.result), true);
    say(`Done in ${state.run_seconds.toFixed(1)} s.`);
  });
  for (const end of ["failed", "cancelled"]) {
    events.addEventListener(end, (e) => {
      const state = JSON.parse(e.data);
      finish();
      say(end === "failed" ? `Failed: ${state.error}` : "Cancelled.");
    });
  }
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) { finish(); say("Lost the connection to the server."); } };
}

// How far a job has come: frames for a video, a percentage for a picture.
function done(state) {
  const video = state.options.video;
  if (!video) return `${Math.round(state.progress * 100)}%`;
  return `frame ${Math.round(state.progress * video.frames)} of ${video.frames}`;
}

function finish() {
  if (events) events.close();
  events = null;
  setBusy(false);
}

function showFrame(url) {
  $("movie").hidden = false;
  $("video").hidden = true;
  $("frame").hidden = false;
  $("frame").src = url;
}

function showVideo(url) {
  $("movie").hidden = false;
  $("frame").hidden = true;
  $("video").hidden = false;
  $("video").src = url;
  $("download").href = url;
  $("download").textContent = "Download the video";
  $("download").hidden = false;
}

function show(url, final) {
  $("before").src = $("content-preview").src;
  $("after").src = url;
  $("compare").hidden = false;
  if (final) {
    $("download").href = url;
    $("download").textContent = "Download the picture";
    $("download").hidden = false;
  }
}

$("content").addEventListener("change", () => {
  const video = isVideo();
  preview($("content"), video ? $("content-video") : $("content-preview"));
  (video ? $("content-preview") : $("content-video")).hidden = true;
  $("drop-text").textContent = $("content").files[0] ? $("content").files[0].name : "Drop a photo or a short video here, or click to choose one";
  showMethod();
});
$("style_image").addEventListener("change", () => preview($("style_image"), $("style-preview")));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  $("content").files = e.dataTransfer.files;
  $("content").dispatchEvent(new Event("change"));
});
for (const radio of form.elements.method) radio.addEventListener("change", showMethod);
$("strength").addEventListener("input", () => { $("strength-value").textContent = Number($("strength").value).toFixed(2); });
// The painted picture covers the photo from the left up to the slider.
$("slider").addEventListener("input", () => { $("after").style.clipPath = `inset(0 ${100 - $("slider").value}% 0 0)`; });
$("token").value = token;
$("token").addEventListener("change", () => {
  token = $("token").value;
  localStorage.setItem("impasto-token", token);
  loadStyles();
});
$("cancel").addEventListener("click", async () => {
  if (job) await api(`/api/jobs/${job.id}`, { method: "DELETE" }).catch((e) => say(e.message));
});
form.addEventListener("submit", submit);
showMethod();
loadStyles();
