// Explore's camera source: frames from getUserMedia drawn into a canvas, encoded as JPEG and sent to the
// API through the dashboard (predictions and the selected layer's grid update in place). One frame is in
// flight at a time: a frame that comes while one is in flight is dropped, never queued, so the page shows
// the newest frame the server can keep up with.
//
// A frame goes one of two ways (dashboard/views/camera.py says why):
// - live: POST /camera/frame answers JSON, drawn here into the bar chart (Plotly.react) and into the
//   camera-* elements, which no callback writes; the page shows those in place of the callback-written
//   ones while the newest answer is a live one (the `cl-camera-live` and `cl-camera-live-grid` classes
//   on <body>);
// - through Dash (the `camera-frame` store's callback), when what the page shows must change shape: the
//   first frame, after the model, layer, checklists or sort order change, after an error (to show it, and
//   to clear it), and the last frame when the camera stops.

(function () {
  "use strict";

  // The in-flight rule, apart from the camera so that it can be tested on its own.
  function FrameGate(now, timeoutMs) {
    this.now = now || function () { return performance.now(); };
    this.timeoutMs = timeoutMs || 10000;  // a frame without an answer by then is given up (counted as lost)
    this.inFlight = null;  // {seq, sentAt}
    this.seq = 0;
    this.sent = 0; this.dropped = 0; this.done = 0; this.lost = 0; this.failed = 0;
    this.latencies = [];  // ms from capture to the answer on the page, per answered frame
  }
  // A new frame is ready: its sequence number if it may be sent now, else null (dropped).
  FrameGate.prototype.offer = function () {
    if (this.inFlight && this.now() - this.inFlight.sentAt > this.timeoutMs) {
      this.inFlight = null; this.lost += 1;
    }
    if (this.inFlight) { this.dropped += 1; return null; }
    this.seq += 1; this.sent += 1;
    this.inFlight = { seq: this.seq, sentAt: this.now() };
    return this.seq;
  };
  // The answer to frame `seq` is on the page; an answer to a frame given up on is ignored.
  FrameGate.prototype.answer = function (seq, ok) {
    if (!this.inFlight || this.inFlight.seq !== seq) { return false; }
    this.latencies.push(this.now() - this.inFlight.sentAt);
    this.inFlight = null; this.done += 1;
    if (!ok) { this.failed += 1; }
    return true;
  };
  FrameGate.prototype.stats = function () {
    const sorted = this.latencies.slice().sort(function (a, b) { return a - b; });
    const at = function (q) { return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null; };
    return { sent: this.sent, dropped: this.dropped, done: this.done, lost: this.lost, failed: this.failed,
             median_ms: at(0.5), p90_ms: at(0.9) };
  };

  const SIZE = 224;  // frames are sent as a centred square of this many pixels (the API resizes for its model)
  const TICK_MS = 33;  // frames are grabbed at up to 30 per second; most are dropped while one is in flight

  const LIVE_URL = "/camera/frame";
  const LIVE_CLASS = "cl-camera-live";  // the predictions' live elements are shown
  const LIVE_GRID_CLASS = "cl-camera-live-grid";  // and the grid's

  const camera = {
    gate: null, stream: null, timer: null, observer: null, startedAt: 0, serverMs: [], FrameGate: FrameGate,
    settings: null,  // the page's inputs (the `camera-settings` clientside callback)
    viaDash: true,  // the next frame goes through Dash
    lastLive: null,  // the newest frame drawn the live way: it goes through Dash when the camera stops
    live: 0, dash: 0,  // frames answered each way
    liveFrames: true,  // false sends every frame through Dash (bench/bench_webcam.py compares the two ways)
  };

  // Live frames would keep the predictions' and the grid's loading overlays up all the time.
  const LOADINGS = ["predictions-loading", "grid-loading"];
  function setLoadings(display) {
    if (!window.dash_clientside || !window.dash_clientside.set_props) { return; }
    LOADINGS.forEach(function (id) {
      if (document.getElementById(id)) { window.dash_clientside.set_props(id, { display: display }); }
    });
  }

  function setStatus(text) {
    const el = document.getElementById("camera-stats");
    if (el) { el.textContent = text; }
  }

  function grab(video, canvas) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) { return null; }
    const side = Math.min(w, h);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(video, (w - side) / 2, (h - side) / 2, side, side, 0, 0, SIZE, SIZE);
    return canvas.toDataURL("image/jpeg", 0.8);
  }

  function viaDash(frame) {
    window.dash_clientside.set_props("camera-frame", { data: frame });
  }

  // Sets `el`'s text when it changed; false when there is no `el`.
  function setText(el, text) {
    if (!el) { return false; }
    if (el.textContent !== text) { el.textContent = text; }
    return true;
  }

  // The top-1 line: a copy of the callback-written one (its badge and layout), with this frame's label
  // and probability; false when there is none to copy yet.
  function drawTop1(top1) {
    const source = document.querySelector("#top1 > div");
    const target = document.getElementById("camera-top1");
    if (!source || !target || !source.querySelector("#top1-label")) { return false; }
    const line = source.cloneNode(true);
    const label = line.querySelector("#top1-label");
    line.querySelectorAll("[id]").forEach(function (el) { el.removeAttribute("id"); });
    label.textContent = top1.label;
    if (label.nextSibling) { label.nextSibling.textContent = top1.probability; }
    target.replaceChildren(line);
    return true;
  }

  // The tiles of grid_tiles(): the buttons already there are rewritten in place when their number matches.
  function drawGrid(grid) {
    const box = document.getElementById("camera-grid");
    if (!box) { return false; }
    let tiles = document.getElementById("camera-grid-tiles");
    if (!tiles || tiles.children.length !== grid.tiles.length) {
      tiles = document.createElement("div");
      tiles.id = "camera-grid-tiles";
      tiles.className = "cl-grid";
      grid.tiles.forEach(function () { tiles.appendChild(document.createElement("button")); });
      box.replaceChildren(tiles);
    }
    tiles.dataset.layer = grid.layer;
    tiles.dataset.count = String(grid.tiles.length);
    grid.tiles.forEach(function (t, i) {
      const b = tiles.children[i];
      b.className = t.silent ? "cl-tile is-silent" : "cl-tile";
      b.dataset.index = String(t.index);
      b.title = t.title;
      b.textContent = String(t.index);
      b.style.cssText = t.style;
    });
    return true;
  }

  // Draws a live answer; false when the page lacks what it needs (then the next frame goes through Dash).
  function drawLive(answer) {
    const graph = document.querySelector("#predictions-graph .js-plotly-plot");
    if (!graph || !window.Plotly || !drawTop1(answer.top1)) { return false; }
    const template = graph.layout ? graph.layout.template : undefined;
    window.Plotly.react(graph, answer.figure.data, Object.assign({}, answer.figure.layout, { template: template }));
    const preview = document.getElementById("camera-preview");
    if (preview) { preview.src = answer.preview; }
    if (answer.grid) {
      if (!drawGrid(answer.grid) || !setText(document.getElementById("camera-grid-summary"), answer.summary)) {
        return false;
      }
    }
    document.body.classList.toggle(LIVE_GRID_CLASS, Boolean(answer.grid));
    document.body.classList.add(LIVE_CLASS);
    return true;
  }

  function viaLive(frame) {
    const body = Object.assign({}, camera.settings, frame);
    fetch(LIVE_URL, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (response) {
        return response.json().catch(function () {
          return { ok: false, error: "The dashboard answered " + response.status + " to a camera frame." };
        });
      })
      .then(function (answer) {
        const current = camera.stream && camera.gate && camera.gate.inFlight && camera.gate.inFlight.seq === frame.seq;
        const ok = Boolean(answer.ok);
        if (ok && current) {
          if (drawLive(answer)) { camera.lastLive = frame; camera.live += 1; } else { camera.viaDash = true; }
        }
        camera.done({ seq: frame.seq, ok: ok, error: answer.error, server_ms: answer.server_ms, via: "live" });
      })
      .catch(function (err) {
        camera.done({ seq: frame.seq, ok: false, error: String(err && err.message ? err.message : err), via: "live" });
      });
  }

  function tick(video, canvas) {
    if (!camera.gate || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
    if (!video.videoWidth) { return; }
    const seq = camera.gate.offer();
    if (seq === null) { return; }
    const jpeg = grab(video, canvas);
    if (!jpeg) { camera.gate.answer(seq, false); return; }
    const frame = { seq: seq, jpeg: jpeg };
    if (camera.viaDash || !camera.settings || !camera.liveFrames) { camera.viaDash = false; viaDash(frame); } else { viaLive(frame); }
  }

  // The server's answer to a frame arrives as JSON text in the hidden #camera-done (with the frame's other
  // outputs, in the same response); watching it costs nothing per frame, where a second Dash callback
  // would cost the page a round of its callback machinery.
  function watchAnswers() {
    const el = document.getElementById("camera-done");
    if (!el || camera.observer) { return; }
    camera.observer = new MutationObserver(function () {
      let ack = null;
      try { ack = JSON.parse(el.textContent || "null"); } catch (e) { ack = null; }
      camera.done(ack);
    });
    camera.observer.observe(el, { childList: true, characterData: true, subtree: true });
  }

  camera.start = function () {
    const video = document.getElementById("camera-video");
    if (!video || camera.stream) { return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setStatus("This browser gives no camera here (a camera needs https or localhost).");
      return;
    }
    setStatus("Asking for the camera…");
    navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false }).then(function (stream) {
      camera.stream = stream;
      video.srcObject = stream;
      video.hidden = false;
      const playing = video.play();
      if (playing && playing.catch) { playing.catch(function () {}); }
      camera.gate = new FrameGate();
      camera.serverMs = [];
      camera.viaDash = true; camera.lastLive = null; camera.live = 0; camera.dash = 0;
      camera.startedAt = performance.now();
      const canvas = document.createElement("canvas");
      canvas.width = SIZE; canvas.height = SIZE;
      setLoadings("hide");
      watchAnswers();
      camera.timer = setInterval(function () { tick(video, canvas); }, TICK_MS);
      setStatus("Camera on");
    }).catch(function (err) {
      setStatus("No camera: " + (err && err.message ? err.message : err));
    });
  };

  camera.stop = function () {
    if (camera.timer) { clearInterval(camera.timer); camera.timer = null; }
    if (camera.stream) { camera.stream.getTracks().forEach(function (t) { t.stop(); }); camera.stream = null; }
    if (camera.lastLive && document.body.classList.contains(LIVE_CLASS)) {
      // the newest frame shown goes through Dash, so that its components end showing it; the observer
      // takes the live elements away when it is in
      viaDash({ seq: camera.lastLive.seq, jpeg: camera.lastLive.jpeg });
    } else if (camera.observer) {
      camera.observer.disconnect(); camera.observer = null;
    }
    camera.lastLive = null;
    const video = document.getElementById("camera-video");
    if (video) { video.srcObject = null; video.hidden = true; }
    setLoadings("auto");
    setStatus("Camera off");
  };

  // The answer to a frame reached the page (a live answer, or the `camera-done` text of one through Dash):
  // free the gate, show the rate. After one through Dash its components show the newest answer.
  camera.done = function (ack) {
    if (!ack || !camera.gate) { return; }
    if (ack.via !== "live") {
      document.body.classList.remove(LIVE_CLASS, LIVE_GRID_CLASS);
      if (!camera.stream && camera.observer) { camera.observer.disconnect(); camera.observer = null; return; }
    }
    if (!ack.ok) { camera.viaDash = true; }  // through Dash the error is shown, and cleared once frames work
    if (camera.gate.answer(ack.seq, ack.ok) && typeof ack.server_ms === "number") {
      camera.serverMs.push(ack.server_ms);  // the dashboard's part of the frame's latency
      if (ack.via !== "live") { camera.dash += 1; }
    }
    const s = camera.gate.stats();
    const secs = (performance.now() - camera.startedAt) / 1000;
    const fps = secs > 0 ? s.done / secs : 0;
    setStatus(fps.toFixed(1) + " frames/s · " + (s.median_ms === null ? "–" : Math.round(s.median_ms)) +
      " ms per frame · " + s.dropped + " dropped while one was in flight" + (ack.ok ? "" : " · " + ack.error));
  };

  window.ConvLensCamera = camera;
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    camera: {
      // the page's inputs changed: kept for the live frames, and the next frame goes through Dash
      settings: function (model, untrained, layer, precision, sort) {
        camera.settings = { model: model, untrained: untrained, layer: layer, precision: precision, sort: sort };
        camera.viaDash = true;
        return window.dash_clientside.no_update;
      },
      toggle: function (clicks) {
        if (!clicks) { return window.dash_clientside.no_update; }
        if (camera.stream) { camera.stop(); return "Start camera"; }
        camera.start();
        return "Stop camera";
      },
    },
  });
})();
