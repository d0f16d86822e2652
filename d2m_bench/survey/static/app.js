// Listening-test page. The rater id and token come from the URL (?rater=..&token=..).
// State is on the server: reloading the page resumes at the first unrated stimulus.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const rater = params.get("rater");
  const token = params.get("token");
  const $ = (id) => document.getElementById(id);
  let session = null;
  let queue = [];
  let current = null;
  let media = null;
  let trial = null;

  function show(state) {
    document.body.dataset.state = state;
    for (const id of ["error", "intro", "trial", "done"]) $(id).hidden = id !== state;
  }

  function fail(message) {
    $("error-text").textContent = message;
    show("error");
  }

  function progress() {
    const total = session.items.length;
    const done = total - queue.length;
    $("progress").textContent = queue.length ? `Clip ${done + 1} of ${total}` : `${total} of ${total} done`;
  }

  async function load() {
    if (!rater || !token) return fail("This page needs the personal link you were given (with rater and token).");
    let resp;
    try {
      resp = await fetch(`/api/session?rater=${encodeURIComponent(rater)}&token=${encodeURIComponent(token)}`);
    } catch (e) {
      return fail("Cannot reach the test server. Please try again later.");
    }
    if (!resp.ok) return fail(resp.status === 403 ? "This link is not valid." : `Server error (${resp.status}).`);
    session = await resp.json();
    const done = new Set(session.done);
    queue = session.items.filter((it) => !done.has(it.id));
    progress();
    if (!queue.length) return show("done");
    $("instructions").textContent = session.instructions;
    if (done.size) {
      $("resume-note").textContent = `Welcome back: ${done.size} of ${session.items.length} clips are already rated.`;
      $("resume-note").hidden = false;
      $("start").textContent = "Continue";
    }
    show("intro");
  }

  function buildScale() {
    const box = $("options");
    box.textContent = "";
    for (let v = session.scale.min; v <= session.scale.max; v++) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "score";
      input.value = String(v);
      input.id = `score-${v}`;
      input.addEventListener("change", () => {
        for (const l of box.querySelectorAll("label")) l.classList.toggle("chosen", l.contains(input));
        $("submit").disabled = false;
      });
      label.append(input, `${v} ${session.scale.labels[String(v)] || ""}`);
      box.append(label);
    }
  }

  function next() {
    progress();
    if (!queue.length) return show("done");
    current = queue[0];
    const aspect = session.aspects[current.aspect];
    $("aspect-title").textContent = aspect.title;
    $("question").textContent = aspect.question;
    buildScale();
    $("scale").disabled = session.require_full_playback;
    $("submit").disabled = true;
    $("submit-error").hidden = true;
    $("play").disabled = false;
    $("play").textContent = "Play";
    $("play-state").textContent = "Play the clip to the end, then rate it.";
    const player = $("player");
    player.textContent = "";
    media = document.createElement(current.media === "video" ? "video" : "audio");
    media.preload = "auto";
    media.playsInline = true;
    media.src = current.url;
    media.id = "stimulus";
    media.dataset.stimulus = current.id;
    player.append(media);
    // listened: seconds of media actually played (sum of forward steps while playing).
    trial = { shown: performance.now(), listened: 0, last: null, ended: false, maxTime: 0 };
    media.addEventListener("timeupdate", () => {
      const t = media.currentTime;
      if (trial.last !== null && !media.paused && t > trial.last && t - trial.last < 1.5) trial.listened += t - trial.last;
      trial.last = t;
      trial.maxTime = Math.max(trial.maxTime, t);
    });
    media.addEventListener("seeking", () => { trial.last = null; });
    media.addEventListener("ended", () => {
      if (trial.last !== null && media.duration > trial.last) trial.listened += media.duration - trial.last;
      trial.last = null;
      trial.ended = true;
      trial.maxTime = media.duration;
      media.dataset.playback = "complete";
      $("scale").disabled = false;
      $("play").disabled = false;
      $("play").textContent = "Replay";
      $("play-state").textContent = "Now choose your rating.";
    });
    media.addEventListener("error", () => { $("play-state").textContent = "This clip could not be played; please reload the page."; });
    document.body.dataset.state = "trial";
    document.body.dataset.stimulus = current.id;
  }

  async function play() {
    if (!media) return;
    $("play").disabled = true;
    $("play-state").textContent = "Playing...";
    media.currentTime = 0;
    trial.last = 0;
    try {
      await media.play();
    } catch (e) {
      $("play").disabled = false;
      $("play-state").textContent = "Playback was blocked; press Play again.";
    }
  }

  async function submit() {
    const chosen = document.querySelector("input[name=score]:checked");
    if (!chosen || !current) return;
    $("submit").disabled = true;
    const duration = isFinite(media.duration) && media.duration > 0 ? media.duration : 0;
    const body = {
      rater, token, stimulus: current.id, aspect: current.aspect, score: Number(chosen.value),
      playback_complete: trial.ended,
      played_fraction: duration ? Math.min(1, trial.maxTime / duration) : 0,
      listen_seconds: Math.round(trial.listened * 1000) / 1000,
      response_seconds: Math.round(performance.now() - trial.shown) / 1000,
    };
    let resp;
    try {
      resp = await fetch("/api/rating", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    } catch (e) {
      resp = null;
    }
    // 409: the server already holds this rating (e.g. a retry after a lost reply): move on.
    if (resp && (resp.status === 201 || resp.status === 409)) {
      media.pause();
      queue.shift();
      return next();
    }
    $("submit-error").textContent = resp ? `Not saved (${resp.status}). Please try again.` : "Not saved: the server is unreachable. Please try again.";
    $("submit-error").hidden = false;
    $("submit").disabled = false;
  }

  $("start").addEventListener("click", () => { show("trial"); next(); });
  $("play").addEventListener("click", play);
  $("submit").addEventListener("click", submit);
  load();
})();
