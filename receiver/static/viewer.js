// textcall viewer: reads the receiver's event stream with the bearer token and plays each session's
// clips in the order they were rendered. No external scripts: this file is the whole client.
"use strict";

const TOKEN_KEY = "textcall-viewer-token";
const RETRY_MS = [1000, 2000, 5000, 10000];

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
  if (b.payload_bps == null) return `${b.payload_bytes_in} B received, no media yet`;
  return `${b.clips} clips, ${b.media_seconds.toFixed(1)} s of media: ` +
    `${Math.round(b.payload_bps)} bit/s payload, ${Math.round(b.wire_bps)} bit/s on the wire`;
}

if (typeof module !== "undefined") {
  module.exports = { parseEvents, formatBitrate }; // for tests under node
} else {
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
    if (event.type === "hello") {
      this.status(`connected; model ${data.model}` + (data.sender ? `; sender ${data.sender} only` : ""), "ok");
      this.updateSessions(data.sessions);
    } else if (event.type === "sessions") {
      this.updateSessions(data.sessions);
    } else if (event.type === "clip") {
      const key = `${data.session}/${data.seq}`;
      if (this.seen.has(key)) return;
      this.seen.add(key);
      this.view(data.session, data.sender, !data.replay).enqueue(data, this.token);
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

class SessionView {
  constructor(id, sender, viewer) {
    this.id = id;
    this.viewer = viewer;
    this.queue = []; // [{event, blob: Promise<Blob>}] in arrival order
    this.playing = false;
    this.objectUrl = null;
    this.bitrate = null;
    this.live = false;

    const card = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
    this.card = card;
    this.video = card.querySelector("video");
    this.video.muted = viewer.muted;
    this.ticket = 0; // which clip the video's ended/error handlers belong to
    card.querySelector(".session").textContent = id;
    document.getElementById("stage").appendChild(card);

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
    this.live = live;
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

  renderItem() {
    this.item.replaceChildren();
    const name = document.createElement("span");
    name.textContent = `${this.sender} (${this.id})${this.live ? "" : ", ended"}`;
    const rate = document.createElement("span");
    rate.className = "rate";
    rate.textContent = this.bitrate ? formatBitrate(this.bitrate) : "";
    this.item.append(name, rate);
  }

  enqueue(event, token) {
    this.setBitrate(event.bitrate);
    const blob = event.url
      ? fetch(event.url, { headers: { Authorization: "Bearer " + token }, cache: "no-store" }).then((r) => {
          if (!r.ok) throw new Error(`clip ${event.seq}: HTTP ${r.status}`);
          return r.blob();
        })
      : Promise.reject(new Error(`clip ${event.seq} was not recorded`));
    blob.catch(() => {}); // handled when its turn comes
    this.queue.push({ event, blob });
    this.renderMeta();
    if (!this.playing) this.next();
  }

  renderMeta(current) {
    if (current) this.current = current;
    const e = this.current;
    const waiting = this.queue.length ? `; ${this.queue.length} waiting` : "";
    this.card.querySelector(".meta").textContent = e
      ? `#${e.seq} ${e.mode}, ${e.duration.toFixed(2)} s, rendered in ${(e.render_ms / 1000).toFixed(2)} s${waiting}`
      : `waiting for the first clip${waiting}`;
  }

  async next() {
    const entry = this.queue.shift();
    if (!entry) {
      this.playing = false;
      this.renderMeta();
      return;
    }
    this.playing = true;
    const e = entry.event;
    this.card.querySelector(".caption").textContent = e.caption ? e.caption : "";
    this.card.querySelector(".text").textContent = e.text ? `“${e.text}”` : "(no speech text)";
    this.renderMeta(e);
    let blob;
    try {
      blob = await entry.blob;
    } catch (err) {
      this.card.querySelector(".meta").textContent = String(err.message || err);
      return this.next();
    }
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = URL.createObjectURL(blob);
    const ticket = ++this.ticket;
    const finish = () => { if (ticket === this.ticket) { this.ticket++; this.next(); } };
    this.video.onended = finish;
    this.video.onerror = () => {
      this.card.querySelector(".meta").textContent = `cannot play #${e.seq}`;
      finish();
    };
    this.video.muted = this.viewer.muted;
    this.video.src = this.objectUrl;
    try {
      await this.video.play();
    } catch (err) {
      if (err.name === "NotAllowedError" && !this.video.muted) {
        // Sound is still blocked here: play muted and offer the button again.
        this.viewer.setMuted(true);
        try { await this.video.play(); return; } catch (again) { /* fall through */ }
      }
      if (err.name === "AbortError") return; // superseded; its handlers are stale already
      this.card.querySelector(".meta").textContent = `cannot play #${e.seq}: ${err.message || err}`;
      finish();
    }
  }
}
