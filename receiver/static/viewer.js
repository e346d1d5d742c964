// textcall viewer: reads the receiver's event stream with the bearer token and plays each session
// live: every chunk is a fragmented-MP4 media segment, appended to the session's MediaSource as soon
// as the receiver announces it, so an utterance plays while the rest of it is still rendering.
// Without Media Source Extensions it falls back to the recorded clips, played in order once each
// is complete. No external scripts: this file is the whole client.
"use strict";

const TOKEN_KEY = "textcall-viewer-token";
const RETRY_MS = [1000, 2000, 5000, 10000];
const LOG_LIMIT = 2000;

// The page's own record of what it did and saw (window.textcallLog): for people debugging a call and
// for the tests, which read it from a real browser.
const pageLog = [];
const pageStart = Date.now();
function note(type, fields) {
  pageLog.push({ t: Date.now() - pageStart, wall: Date.now(), type, ...fields });
  if (pageLog.length > LOG_LIMIT) pageLog.splice(0, pageLog.length - LOG_LIMIT);
}

function ranges(r) {
  const out = [];
  for (let i = 0; i < r.length; i++) out.push([+r.start(i).toFixed(3), +r.end(i).toFixed(3)]);
  return out;
}

// Parse Server-Sent Events out of a growing text buffer: returns [events, rest of buffer].
function parseEvents(buffer) {
  const events = [];
  buffer = buffer.replace(/\r\n/g, "\n");
  let cut;
  while ((cut = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, cut);
    buffer = buffer.slice(cut + 2);
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue; // comments are keepalives
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) events.push({ type, data: data.join("\n") });
  }
  return [events, buffer];
}

function formatBitrate(b) {
  if (!b) return "";
  if (b.udp_bps == null) return `${b.payload_bytes_in} B received, the call has not started yet`;
  return `${Math.round(b.call_seconds)} s of call, ${b.clips} clips (${b.media_seconds.toFixed(1)} s of media): ` +
    `${Math.round(b.udp_bps)} bit/s all in, ${Math.round(b.payload_bps)} bit/s of it text`;
}

if (typeof module !== "undefined") {
  module.exports = { parseEvents, formatBitrate }; // for tests under node
} else {
  window.textcallLog = pageLog;
  document.addEventListener("DOMContentLoaded", () => new Viewer().start());
}

class Viewer {
  constructor() {
    this.token = null;
    this.muted = true;
    this.sessions = new Map(); // session id -> SessionView
    this.seen = new Set(); // "session/seq" already queued (replays after a reconnect)
    this.attempt = 0;
    this.controller = null;
    this.$ = (id) => document.getElementById(id);
  }

  start() {
    this.$("pixelated").addEventListener("change", (e) =>
      document.body.classList.toggle("pixelated", e.target.checked));
    this.$("unmute").addEventListener("click", () => this.setMuted(!this.muted));
    this.$("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      if (this.controller) this.controller.abort();
      this.showLogin("");
    });
    this.$("login").addEventListener("submit", (e) => {
      e.preventDefault();
      const token = this.$("token").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      this.$("token").value = "";
      this.connect();
    });
    // A ?token= in the address is taken once, kept for this tab only, and removed from the address.
    const url = new URL(location.href);
    const fromQuery = url.searchParams.get("token");
    if (fromQuery) {
      sessionStorage.setItem(TOKEN_KEY, fromQuery);
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    if (sessionStorage.getItem(TOKEN_KEY)) this.connect();
    else this.showLogin("");
  }

  showLogin(message) {
    this.token = null;
    this.$("login").hidden = false;
    this.$("main").hidden = true;
    this.$("forget").hidden = true;
    this.$("login-error").textContent = message;
    this.status("not connected", "bad");
    this.$("token").focus();
  }

  status(text, kind) {
    const el = this.$("status");
    el.textContent = text;
    el.className = "status " + (kind || "");
  }

  setMuted(muted) {
    this.muted = muted;
    this.$("unmute").textContent = muted ? "Unmute" : "Mute";
    for (const view of this.sessions.values()) view.video.muted = muted;
    note("muted", { muted });
  }

  async connect() {
    this.token = sessionStorage.getItem(TOKEN_KEY);
    this.$("login").hidden = true;
    this.$("main").hidden = false;
    this.$("forget").hidden = false;
    this.status("connecting");
    this.controller = new AbortController();
    let response;
    try {
      response = await fetch("/view/events", {
        headers: { Authorization: "Bearer " + this.token },
        cache: "no-store",
        signal: this.controller.signal,
      });
    } catch (err) {
      if (err.name !== "AbortError") this.retry("cannot reach the receiver");
      return;
    }
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      this.showLogin("The receiver did not accept that token.");
      return;
    }
    if (!response.ok || !response.body) {
      this.retry(`receiver answered ${response.status}`);
      return;
    }
    this.attempt = 0;
    this.status("connected", "ok");
    this.$("unmute").disabled = false;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        let events;
        [events, buffer] = parseEvents(buffer + value);
        for (const event of events) this.dispatch(event);
      }
    } catch (err) {
      if (err.name === "AbortError") return;
    }
    this.retry("the receiver closed the stream");
  }

  retry(why) {
    const wait = RETRY_MS[Math.min(this.attempt++, RETRY_MS.length - 1)];
    this.status(`${why}; retrying in ${wait / 1000} s`, "bad");
    setTimeout(() => { if (sessionStorage.getItem(TOKEN_KEY)) this.connect(); }, wait);
  }

  dispatch(event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      console.warn("textcall viewer: unreadable event", event);
      return;
    }
    if (event.type !== "sessions") note("event", { event: event.type, session: data.session, seq: data.seq, index: data.index });
    if (event.type === "hello") {
      this.status(`connected; model ${data.model}` + (data.sender ? `; sender ${data.sender} only` : ""), "ok");
      this.updateSessions(data.sessions);
      for (const live of data.live || []) this.view(live.session, live.sender, true).join(live, this.token);
    } else if (event.type === "sessions") {
      this.updateSessions(data.sessions);
    } else if (event.type === "chunk") {
      this.view(data.session, data.sender, true).chunk(data, this.token);
    } else if (event.type === "failed") {
      this.view(data.session, data.sender, true).failed(data);
    } else if (event.type === "clip") {
      const key = `${data.session}/${data.seq}`;
      if (this.seen.has(key)) return;
      this.seen.add(key);
      this.view(data.session, data.sender, !data.replay).clip(data, this.token);
      this.updateTotals();
    }
  }

  view(id, sender, live) {
    let view = this.sessions.get(id);
    if (!view) {
      view = new SessionView(id, sender, this);
      view.setLive(live);
      this.sessions.set(id, view);
      this.$("empty").hidden = true;
    }
    return view;
  }

  updateSessions(list) {
    const live = new Set();
    for (const s of list || []) {
      live.add(s.session);
      const view = this.view(s.session, s.sender, true);
      view.setSender(s.sender);
      view.setLive(true);
      view.setBitrate(s.bitrate);
    }
    for (const [id, view] of this.sessions) if (!live.has(id)) view.setLive(false);
    this.updateTotals();
  }

  updateTotals() {
    let clips = 0, seconds = 0;
    for (const view of this.sessions.values()) {
      if (view.bitrate) { clips += view.bitrate.clips; seconds += view.bitrate.media_seconds; }
    }
    this.$("totals").textContent = this.sessions.size
      ? `${this.sessions.size} session(s) seen; ${clips} clips, ${seconds.toFixed(1)} s of media`
      : "";
  }
}

// Plays one session's live stream: the init segment, then media segments by number, appended in order
// to one SourceBuffer. Their times run on across utterances, so between utterances the video simply
// waits at the end of what is buffered and plays on when the next chunk arrives.
class LivePlayer {
  constructor(view, mime, initUrl, token) {
    this.view = view;
    this.video = view.video;
    this.token = token;
    this.mime = mime;
    this.base = initUrl.slice(0, initUrl.lastIndexOf("/") + 1);
    this.next = null; // the next segment number to fetch
    this.chain = Promise.resolve(); // appends, strictly in order
    this.broken = false;
    this.started = false;
    this.source = new MediaSource();
    this.opened = new Promise((resolve) => this.source.addEventListener("sourceopen", resolve, { once: true }));
    this.video.src = URL.createObjectURL(this.source);
    this.chain = this.chain.then(() => this.opened).then(async () => {
      this.buffer = this.source.addSourceBuffer(mime);
      this.buffer.mode = "segments"; // the segments carry their own times
      await this.append(await this.fetch(initUrl), "init");
    }).catch((err) => this.fail(err));
  }

  static supported(mime) {
    return typeof MediaSource !== "undefined" && !!mime && MediaSource.isTypeSupported(mime);
  }

  // Fetch segments up to and including n (from `from` for the first call), and queue their appends.
  want(n, from) {
    if (this.broken) return;
    if (this.next === null) this.next = from === undefined ? n : from;
    for (; this.next <= n; this.next++) {
      const k = this.next;
      const data = this.fetch(`${this.base}${k}.m4s`);
      data.catch(() => {}); // reported when its turn comes
      this.chain = this.chain.then(async () => {
        let bytes;
        try {
          bytes = await data;
        } catch (err) {
          note("segment-missing", { session: this.view.id, segment: k, error: String(err.message || err) });
          return; // a gap: playback skips it (see onWaiting)
        }
        await this.append(bytes, k);
      }).catch((err) => this.fail(err));
    }
  }

  async fetch(url) {
    const r = await fetch(url, { headers: { Authorization: "Bearer " + this.token }, cache: "no-store" });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.arrayBuffer();
  }

  append(bytes, label) {
    return new Promise((resolve, reject) => {
      const done = () => { cleanup(); resolve(); };
      const failed = () => { cleanup(); reject(new Error(`cannot append segment ${label}`)); };
      const cleanup = () => {
        this.buffer.removeEventListener("updateend", done);
        this.buffer.removeEventListener("error", failed);
      };
      this.buffer.addEventListener("updateend", done);
      this.buffer.addEventListener("error", failed);
      try {
        this.buffer.appendBuffer(bytes);
      } catch (err) {
        cleanup();
        reject(err);
      }
    }).then(() => {
      if (label === "init") return;
      note("appended", { session: this.view.id, segment: label, buffered: ranges(this.buffer.buffered) });
      this.trim();
      if (!this.started) this.start();
    });
  }

  start() {
    const b = this.buffer.buffered;
    if (!b.length) return;
    this.started = true;
    if (this.video.currentTime < b.start(0) || this.video.currentTime > b.end(b.length - 1)) this.video.currentTime = b.start(0);
    this.view.play();
  }

  // Keep a minute behind the playhead; older media is in the recordings.
  trim() {
    const b = this.buffer.buffered;
    const keepFrom = this.video.currentTime - 60;
    if (b.length && b.start(0) < keepFrom - 10 && !this.buffer.updating) {
      this.chain = this.chain.then(() => new Promise((resolve) => {
        this.buffer.addEventListener("updateend", resolve, { once: true });
        this.buffer.remove(0, keepFrom);
      }));
    }
  }

  // Waiting at a gap (a segment that never came, or a page that joined late): jump to what is next.
  onWaiting() {
    if (!this.buffer) return;
    const b = this.buffer.buffered, now = this.video.currentTime;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) > now + 0.01) {
        if (i === 0 || b.end(i - 1) <= now + 0.05) {
          note("skip-gap", { session: this.view.id, from: now, to: b.start(i) });
          this.video.currentTime = b.start(i);
        }
        return;
      }
    }
  }

  fail(err) {
    if (this.broken) return;
    this.broken = true;
    note("live-error", { session: this.view.id, error: String(err && err.message || err) });
    this.view.setMeta(`live playback failed (${err && err.message || err}); showing recorded clips`);
    this.view.live = null;
    this.view.fallback = true;
  }
}

class SessionView {
  constructor(id, sender, viewer) {
    this.id = id;
    this.viewer = viewer;
    this.queue = []; // recorded clips waiting to play, when live playback is not available
    this.playing = false;
    this.objectUrl = null;
    this.bitrate = null;
    this.live = null; // LivePlayer
    this.fallback = false; // true: play recorded clips (no MSE, or live playback broke)
    this.current = null; // the utterance on screen
    this.pending = new Map(); // seq -> utterance whose chunks are announced but not all shown

    const card = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
    this.card = card;
    this.video = card.querySelector("video");
    this.video.muted = viewer.muted;
    this.ticket = 0; // which clip the video's ended/error handlers belong to
    card.querySelector(".session").textContent = id;
    document.getElementById("stage").appendChild(card);
    for (const type of ["playing", "waiting", "stalled", "pause", "ended", "error"]) {
      this.video.addEventListener(type, () => {
        note(type, { session: this.id, currentTime: this.video.currentTime, buffered: ranges(this.video.buffered),
          error: this.video.error ? this.video.error.message || this.video.error.code : undefined });
        if (type === "waiting" && this.live) this.live.onWaiting();
      });
    }
    let lastShown = -1;
    this.video.addEventListener("timeupdate", () => {
      const now = this.video.currentTime;
      if (Math.abs(now - lastShown) >= 0.2) {
        lastShown = now;
        note("timeupdate", { session: this.id, currentTime: now });
      }
      this.showUtteranceAt(now);
    });

    this.item = document.createElement("li");
    this.item.addEventListener("click", () => card.scrollIntoView({ behavior: "smooth" }));
    document.getElementById("session-list").appendChild(this.item);
    this.setSender(sender);
  }

  setSender(sender) {
    this.sender = sender || "(no hello yet)";
    this.card.querySelector(".sender").textContent = this.sender;
    this.renderItem();
  }

  setLive(live) {
    this.isLive = live;
    this.card.classList.toggle("ended", !live);
    this.card.querySelector(".live").textContent = live ? "● live" : "ended";
    this.item.classList.toggle("ended", !live);
    this.renderItem();
  }

  setBitrate(bitrate) {
    if (!bitrate) return;
    this.bitrate = bitrate;
    this.card.querySelector(".bitrate").textContent = formatBitrate(bitrate);
    this.renderItem();
  }

  setMeta(text) {
    this.card.querySelector(".meta").textContent = text;
  }

  renderItem() {
    this.item.replaceChildren();
    const name = document.createElement("span");
    name.textContent = `${this.sender} (${this.id})${this.isLive ? "" : ", ended"}`;
    const rate = document.createElement("span");
    rate.className = "rate";
    rate.textContent = this.bitrate ? formatBitrate(this.bitrate) : "";
    this.item.append(name, rate);
  }

  showText(u) {
    this.card.querySelector(".caption").textContent = u.caption || "";
    this.card.querySelector(".text").textContent = u.text ? `“${u.text}”` : "(no speech text)";
  }

  // ---- live ----------------------------------------------------------------------------------
  startLive(mime, init, token) {
    if (this.live || this.fallback) return !!this.live;
    if (!LivePlayer.supported(mime)) {
      note("live-unsupported", { session: this.id, mime });
      this.fallback = true;
      return false;
    }
    this.live = new LivePlayer(this, mime, init, token);
    note("live-start", { session: this.id, mime });
    return true;
  }

  // A page that opened while the session was live: start where the utterance in progress started.
  join(entry, token) {
    if (!entry.mime || !this.startLive(entry.mime, entry.init, token)) return;
    if (entry.utterance) {
      this.pending.set(entry.utterance.seq, { ...entry.utterance, start: null });
      this.showText(entry.utterance);
    }
    if (entry.next > entry.from) this.live.want(entry.next - 1, entry.from);
    else this.live.next = entry.next;
  }

  chunk(e, token) {
    if (!this.startLive(e.mime, e.init, token)) return;
    if (e.index === 0) {
      const u = { seq: e.seq, caption: e.caption, text: e.text, mode: e.mode, start: e.start };
      this.pending.set(e.seq, u);
      if (!this.current || this.video.paused || this.video.currentTime >= e.start - 0.05) this.showText(u);
    }
    this.live.want(e.segment, e.segment);
    const u = this.pending.get(e.seq);
    if (u && e.last) u.end = e.start + e.duration;
    this.setMeta(`#${e.seq} chunk ${e.index + 1}${e.last ? " (last)" : ""} out ${(e.since_text_ms / 1000).toFixed(2)} s after its text`);
  }

  // The caption and text of the utterance under the playhead.
  showUtteranceAt(now) {
    for (const [seq, u] of this.pending) {
      if (u.start !== null && u.start !== undefined && now + 0.05 >= u.start && this.current !== u) {
        this.current = u;
        this.showText(u);
      }
      if (u.end !== undefined && now > u.end + 1) this.pending.delete(seq);
    }
  }

  failed(e) {
    this.pending.delete(e.seq);
    this.setMeta(`#${e.seq} failed: ${e.reason}`);
  }

  play() {
    this.video.muted = this.viewer.muted;
    this.video.play().then(() => note("play-started", { session: this.id }), async (err) => {
      note("play-refused", { session: this.id, error: err.name });
      if (err.name === "NotAllowedError" && !this.video.muted) {
        this.viewer.setMuted(true); // sound is still blocked here: play muted and offer the button again
        try { await this.video.play(); } catch (again) { /* shown by the error events */ }
      }
    });
  }

  // ---- recorded clips ------------------------------------------------------------------------
  clip(event, token) {
    this.setBitrate(event.bitrate);
    const recent = this.card.querySelector(".recent");
    const item = document.createElement("li");
    item.textContent = `#${event.seq} ${event.mode}, ${event.duration.toFixed(2)} s, complete ${(event.render_ms / 1000).toFixed(2)} s after its text`;
    recent.prepend(item);
    while (recent.children.length > 5) recent.lastElementChild.remove();
    // shown live already, chunk by chunk; history is listed, not replayed over the live stream
    if (this.live || (event.replay && !this.fallback)) return;
    this.enqueue(event, token);
  }

  enqueue(event, token) {
    const blob = event.url
      ? fetch(event.url, { headers: { Authorization: "Bearer " + token }, cache: "no-store" }).then((r) => {
          if (!r.ok) throw new Error(`clip ${event.seq}: HTTP ${r.status}`);
          return r.blob();
        })
      : Promise.reject(new Error(`clip ${event.seq} was not recorded`));
    blob.catch(() => {}); // handled when its turn comes
    this.queue.push({ event, blob });
    if (!this.playing) this.next();
  }

  async next() {
    const entry = this.queue.shift();
    if (!entry) {
      this.playing = false;
      return;
    }
    this.playing = true;
    const e = entry.event;
    this.showText(e);
    this.setMeta(`#${e.seq} ${e.mode}, ${e.duration.toFixed(2)} s, rendered in ${(e.render_ms / 1000).toFixed(2)} s` +
      (this.queue.length ? `; ${this.queue.length} waiting` : ""));
    let blob;
    try {
      blob = await entry.blob;
    } catch (err) {
      this.setMeta(String(err.message || err));
      return this.next();
    }
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = URL.createObjectURL(blob);
    const ticket = ++this.ticket;
    const finish = () => { if (ticket === this.ticket) { this.ticket++; this.next(); } };
    this.video.onended = finish;
    this.video.onerror = () => {
      this.setMeta(`cannot play #${e.seq}`);
      finish();
    };
    this.video.muted = this.viewer.muted;
    this.video.src = this.objectUrl;
    try {
      await this.video.play();
    } catch (err) {
      if (err.name === "NotAllowedError" && !this.video.muted) {
        this.viewer.setMuted(true);
        try { await this.video.play(); return; } catch (again) { /* fall through */ }
      }
      if (err.name === "AbortError") return; // superseded; its handlers are stale already
      this.setMeta(`cannot play #${e.seq}: ${err.message || err}`);
      finish();
    }
  }
}
