// Explore's camera source: frames from getUserMedia drawn into a canvas, encoded as JPEG and handed to
// the `camera-frame` store, whose callback sends them to the API (predictions and the selected layer's
// grid update in place). One frame is in flight at a time: a frame that comes while one is in flight is
// dropped, never queued, so the page shows the newest frame the server can keep up with.

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

  const camera = { gate: null, stream: null, timer: null, observer: null, startedAt: 0, serverMs: [], FrameGate: FrameGate };

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

  function tick(video, canvas) {
    if (!camera.gate || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
    if (!video.videoWidth) { return; }
    const seq = camera.gate.offer();
    if (seq === null) { return; }
    const jpeg = grab(video, canvas);
    if (!jpeg) { camera.gate.answer(seq, false); return; }
    window.dash_clientside.set_props("camera-frame", { data: { seq: seq, jpeg: jpeg } });
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
    if (camera.observer) { camera.observer.disconnect(); camera.observer = null; }
    const video = document.getElementById("camera-video");
    if (video) { video.srcObject = null; video.hidden = true; }
    setLoadings("auto");
    setStatus("Camera off");
  };

  // The answer to a frame reached the page (the `camera-done` text): free the gate, show the rate.
  camera.done = function (ack) {
    if (!ack || !camera.gate) { return; }
    if (camera.gate.answer(ack.seq, ack.ok) && typeof ack.server_ms === "number") {
      camera.serverMs.push(ack.server_ms);  // the dashboard's part of the frame's latency
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
      toggle: function (clicks) {
        if (!clicks) { return window.dash_clientside.no_update; }
        if (camera.stream) { camera.stop(); return "Start camera"; }
        camera.start();
        return "Stop camera";
      },
    },
  });
})();
