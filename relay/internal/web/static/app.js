// zipnvr live page: plain JS, no framework. Talks to the relay's API with
// the user's token; each watch asks for a stream token, then plays it over
// WebRTC (WHEP), else fMP4 over a WebSocket (Media Source Extensions), or
// MJPEG in an <img>.
'use strict';

const $ = (id) => document.getElementById(id);
const QUALITIES = ['high', 'mid', 'low', 'mjpeg'];

// What tests and the benchmark read (and a curious user in the console).
const zipnvr = (window.zipnvr = {
  state: 'idle', detail: '', transport: null, firstFrameMs: null, navigatedMs: 0,
  stats: null, events: [], sessions: 0,
});

const app = { token: null, cams: [], session: null };

function note(msg) {
  zipnvr.events.push(Math.round(performance.now()) + ' ' + msg);
  if (zipnvr.events.length > 200) zipnvr.events.shift();
}

function setState(state, detail) {
  zipnvr.state = state;
  zipnvr.detail = detail || '';
  const el = $('state');
  el.className = 'state ' + state;
  el.textContent = detail ? state + ': ' + detail : state;
  note(el.textContent);
}

class APIError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

async function errorOf(r) {
  let msg = r.status + ' ' + r.statusText;
  try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
  return new APIError(r.status, msg);
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + app.token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) throw await errorOf(r);
  return r.status === 204 ? null : r.json();
}

// ---- log in -----------------------------------------------------------

async function login(token) {
  app.token = token;
  try {
    await loadCameras();
  } catch (e) {
    app.token = null;
    sessionStorage.removeItem('zipnvr.token');
    $('login-error').textContent = e.status === 401 ? 'That token is not valid.' : 'Cannot log in: ' + e.message;
    return false;
  }
  sessionStorage.setItem('zipnvr.token', token);
  document.dispatchEvent(new CustomEvent('zipnvr:login', { detail: { api, cams: app.cams } })); // browse.js
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  return true;
}

function logout() {
  stop('logged out');
  sessionStorage.removeItem('zipnvr.token');
  location.reload();
}

// ---- cameras ----------------------------------------------------------

function qualitiesOf(cam) {
  return QUALITIES.filter((q) => cam.streams && cam.streams[q]);
}

async function loadCameras() {
  const out = await api('GET', '/api/v1/cameras');
  app.cams = out.cameras.filter((c) => !c.removed);
  const body = $('camera-list');
  body.textContent = '';
  for (const cam of app.cams) {
    const tr = document.createElement('tr');
    const name = document.createElement('td');
    name.textContent = cam.name || cam.local_id;
    const hub = document.createElement('td');
    hub.textContent = cam.hub;
    const qual = document.createElement('td');
    qual.textContent = qualitiesOf(cam).join(', ') || '(no stream)';
    const act = document.createElement('td');
    const btn = document.createElement('button');
    btn.textContent = 'Watch';
    btn.disabled = !cam.channel || qualitiesOf(cam).length === 0;
    btn.title = cam.channel ? '' : 'no channel: create one with POST /cameras/{id}/channel';
    btn.addEventListener('click', () => open(cam));
    act.append(btn);
    tr.append(name, hub, qual, act);
    body.append(tr);
  }
  $('cameras-empty').hidden = app.cams.length > 0;
}

function open(cam, quality, transport) {
  $('player').hidden = false;
  $('player-title').textContent = cam.name || cam.local_id;
  const sel = $('quality');
  sel.textContent = '';
  for (const q of qualitiesOf(cam)) {
    const o = document.createElement('option');
    o.value = o.textContent = q;
    sel.append(o);
  }
  if (quality && qualitiesOf(cam).includes(quality)) sel.value = quality;
  if (transport) $('transport').value = transport;
  app.cam = cam;
  document.dispatchEvent(new CustomEvent('zipnvr:camera', { detail: cam })); // browse.js
  zipnvr.fallbackNote = '';
  watch(cam, sel.value, $('transport').value, new Set());
}

// ---- watching ---------------------------------------------------------

function stop(reason) {
  const s = app.session;
  app.session = null;
  if (!s) return;
  s.closed = true;
  cleanup(s);
  if (reason) setState('ended', reason);
}

function cleanup(s) {
  clearInterval(s.statsTimer);
  clearInterval(s.stateTimer);
  if (s.whepURL) {
    // Tell relay at once rather than letting ICE time out.
    fetch(s.whepURL, { method: 'DELETE', headers: { Authorization: 'Bearer ' + s.grant.token }, keepalive: true }).catch(() => {});
    s.whepURL = null;
  }
  if (s.pc) { s.pc.close(); s.pc = null; }
  if (s.ws) { s.ws.onclose = null; s.ws.close(); s.ws = null; }
  const video = $('video');
  video.srcObject = null;
  video.removeAttribute('src');
  const img = $('mjpeg');
  img.removeAttribute('src');
  img.hidden = true;
  video.hidden = false;
}

async function watch(cam, quality, pref, tried) {
  stop();
  const s = { cam, quality, pref, tried, closed: false, framesAt: 0 };
  app.session = s;
  zipnvr.sessions++;
  zipnvr.firstFrameMs = null;
  zipnvr.stats = null;
  zipnvr.transport = null;
  tried.add(quality);
  $('again').hidden = true;
  $('quality').value = quality;
  setState('starting', 'asking for a ' + quality + ' stream token');
  try {
    s.grant = await api('POST', '/api/v1/channels/' + encodeURIComponent(cam.channel) + '/stream-token', { quality });
  } catch (e) {
    return ended(s, e.message, 'error');
  }
  if (s.closed) return;
  s.stateTimer = setInterval(() => pollState(s), 2000);
  if (quality === 'mjpeg') return watchMJPEG(s);
  if (pref !== 'mse') {
    try {
      await watchWebRTC(s);
      return;
    } catch (e) {
      if (s.closed) return;
      if (s.pc) { s.pc.close(); s.pc = null; }
      if (e.status === 415) {
        note('WebRTC refused the codec: ' + e.message);
        setState('starting', 'H.265 is not decoded over WebRTC: trying Media Source Extensions');
      } else if (pref === 'webrtc' || (e.status && e.status !== 500)) {
        return ended(s, e.message, 'error');
      } else {
        setState('starting', 'WebRTC failed (' + e.message + '): falling back to fMP4 over WebSocket');
      }
    }
  }
  watchMSE(s);
}

function ended(s, reason, state) {
  if (s.closed || app.session !== s) return;
  s.closed = true;
  cleanup(s);
  setState(state || 'ended', reason);
  $('again').hidden = false;
}

// onStreamState handles relay's state messages (data channel or WebSocket).
function onStreamState(s, m) {
  if (s.closed) return;
  switch (m.state) {
    case 'live':
      if (m.codec) s.codec = m.codec;
      if (zipnvr.firstFrameMs !== null) setState('live', describe(s));
      break;
    case 'ended':
      ended(s, m.detail || 'stream ended');
      break;
    default: // connecting, camera_error
      setState('waiting', m.state + (m.detail ? ': ' + m.detail : ''));
  }
}

function describe(s) {
  const st = zipnvr.stats || {};
  let d = zipnvr.transport + ', ' + s.quality;
  if (st.width) d += ', ' + st.width + 'x' + st.height;
  if (st.fps) d += ', ' + Math.round(st.fps) + ' fps';
  if (zipnvr.fallbackNote) d += ' (' + zipnvr.fallbackNote + ')';
  return d;
}

function firstFrame(s) {
  if (zipnvr.firstFrameMs !== null || s.closed) return;
  zipnvr.firstFrameMs = performance.now();
  note('first frame after ' + Math.round(zipnvr.firstFrameMs - zipnvr.navigatedMs) + ' ms');
  setState('live', describe(s));
}

function watchFrames(s, video) {
  if (video.requestVideoFrameCallback) {
    video.requestVideoFrameCallback(() => firstFrame(s));
  }
}

// pollState reads the stream's state from relay: it is how an MJPEG
// viewer (an <img> has no events for that) learns that the stream ended.
async function pollState(s) {
  if (s.closed) return;
  try {
    const out = await api('GET', '/api/v1/channels/' + encodeURIComponent(s.cam.channel) + '/live');
    const st = out.streams.find((x) => x.quality === s.quality);
    if (!st && zipnvr.firstFrameMs !== null && !s.closed) ended(s, 'stream ended');
    else if (st && st.state !== 'live' && st.state !== 'starting') setState('waiting', st.state + (st.error ? ': ' + st.error : ''));
  } catch (_) { /* a failed poll is not an ended stream */ }
}

function waitFor(target, event, check, ms) {
  return new Promise((resolve) => {
    if (check()) return resolve(true);
    const t = setTimeout(() => { target.removeEventListener(event, on); resolve(false); }, ms);
    function on() { if (check()) { clearTimeout(t); target.removeEventListener(event, on); resolve(true); } }
    target.addEventListener(event, on);
  });
}

async function watchWebRTC(s) {
  const pc = new RTCPeerConnection({ iceServers: s.grant.ice_servers || [] });
  s.pc = pc;
  pc.addTransceiver('video', { direction: 'recvonly' });
  const dc = pc.createDataChannel('state');
  dc.onmessage = (ev) => { try { onStreamState(s, JSON.parse(ev.data)); } catch (_) { /* ignore */ } };
  const video = $('video');
  pc.ontrack = (ev) => {
    video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
    video.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (s.closed) return;
    if (pc.connectionState === 'failed') ended(s, 'WebRTC connection failed');
    else if (pc.connectionState === 'disconnected') setState('waiting', 'WebRTC connection interrupted');
  };
  await pc.setLocalDescription(await pc.createOffer());
  // relay answers with all its candidates; ours may follow as
  // peer-reflexive, so host candidates are enough to send now.
  await waitFor(pc, 'icegatheringstatechange', () => pc.iceGatheringState === 'complete', 250);
  setState('starting', 'connecting to the camera');
  const r = await fetch('/api/v1/channels/' + encodeURIComponent(s.cam.channel) + '/whep', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + s.grant.token, 'Content-Type': 'application/sdp' },
    body: pc.localDescription.sdp,
  });
  if (r.status !== 201) throw await errorOf(r);
  s.whepURL = new URL(r.headers.get('Location'), location.href).href;
  const answer = await r.text();
  if (s.closed) return;
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  zipnvr.transport = 'webrtc';
  watchFrames(s, video);
  s.statsTimer = setInterval(() => rtcStats(s), 500);
  if (!(await waitFor(pc, 'connectionstatechange', () => pc.connectionState === 'connected', 5000))) {
    throw new APIError(0, 'WebRTC did not connect within 5 s');
  }
}

async function rtcStats(s) {
  if (!s.pc) return;
  const report = await s.pc.getStats();
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      zipnvr.stats = {
        framesDecoded: r.framesDecoded || 0, framesDropped: r.framesDropped || 0,
        width: r.frameWidth || 0, height: r.frameHeight || 0, fps: r.framesPerSecond || 0,
        jitterBufferMs: r.jitterBufferEmittedCount ? (1000 * r.jitterBufferDelay) / r.jitterBufferEmittedCount : 0,
        bytes: r.bytesReceived || 0, packetsLost: r.packetsLost || 0,
      };
      if (r.framesDecoded > 0) firstFrame(s);
      showStats();
    }
  });
}

function showStats() {
  const st = zipnvr.stats;
  if (!st) return;
  $('stats').textContent = zipnvr.transport + ': ' + st.width + 'x' + st.height + ', ' +
    Math.round(st.fps || 0) + ' fps, ' + st.framesDecoded + ' frames decoded' +
    (st.jitterBufferMs ? ', jitter buffer ' + Math.round(st.jitterBufferMs) + ' ms' : '');
  if (zipnvr.state === 'live') setState('live', describe(app.session || {}));
}

// ---- fMP4 over WebSocket (Media Source Extensions) --------------------

function wsURL(path) {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

function watchMSE(s) {
  if (!window.MediaSource) return ended(s, 'this browser has no Media Source Extensions', 'error');
  zipnvr.transport = 'mse';
  setState('starting', 'connecting (fMP4 over WebSocket)');
  const ws = new WebSocket(wsURL('/api/v1/channels/' + encodeURIComponent(s.cam.channel) +
    '/live/ws?token=' + encodeURIComponent(s.grant.token)));
  ws.binaryType = 'arraybuffer';
  s.ws = ws;
  const video = $('video');
  let sb = null;
  let queue = [];
  const pump = () => {
    if (!sb || sb.updating || queue.length === 0) return;
    try {
      sb.appendBuffer(queue.shift());
    } catch (e) {
      ended(s, 'cannot play the stream: ' + e.message, 'error');
    }
  };
  const onUpdate = () => {
    const b = video.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      // Stay at the live edge: the cached GOP arrives first, up to a GOP
      // behind; jump to its end (decoding catches up at once).
      if (end - video.currentTime > 1.0 || video.currentTime < b.start(0)) video.currentTime = Math.max(b.start(b.length - 1), end - 0.1);
      if (video.paused) video.play().catch(() => {});
      if (video.currentTime - b.start(0) > 30 && !sb.updating) sb.remove(b.start(0), video.currentTime - 10);
    }
    pump();
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== 'string') {
      queue.push(ev.data);
      if (queue.length > 300) queue = queue.slice(-150);
      pump();
      return;
    }
    const m = JSON.parse(ev.data);
    if (m.type === 'state') return onStreamState(s, m);
    if (m.type !== 'init') return;
    if (!MediaSource.isTypeSupported(m.mime)) return codecFallback(s, m);
    s.codec = m.codec;
    queue = [];
    sb = null;
    const ms = new MediaSource();
    video.srcObject = null;
    video.src = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      sb = ms.addSourceBuffer(m.mime);
      sb.mode = 'segments';
      sb.addEventListener('updateend', onUpdate);
      pump();
    }, { once: true });
    watchFrames(s, video);
  };
  ws.onclose = (ev) => ended(s, ev.reason || 'stream socket closed');
  s.statsTimer = setInterval(() => {
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    zipnvr.stats = { framesDecoded: q ? q.totalVideoFrames : 0, framesDropped: q ? q.droppedVideoFrames : 0,
      width: video.videoWidth, height: video.videoHeight, fps: 0 };
    if (zipnvr.stats.framesDecoded > 0) firstFrame(s);
    showStats();
  }, 500);
}

// codecFallback: the browser cannot decode this codec (H.265 without
// hardware support): switch to another quality of the camera that it can
// play, H.264 first (low, then mid), then MJPEG, and say so.
function codecFallback(s, m) {
  const left = ['low', 'mid', 'high', 'mjpeg'].filter((q) => qualitiesOf(s.cam).includes(q) && !s.tried.has(q));
  const what = (m.codec || '').toUpperCase().replace('H26', 'H.26');
  if (left.length === 0) {
    return ended(s, 'camera streams ' + what + ', which this browser cannot decode, and has no other quality', 'error');
  }
  const next = left[0];
  note(what + ' not decodable here: switching to ' + next);
  zipnvr.fallbackNote = 'this browser cannot decode ' + what + ' (' + s.quality + '): showing the ' + next + ' stream';
  watch(s.cam, next, s.pref, s.tried);
}

// ---- MJPEG ------------------------------------------------------------

function watchMJPEG(s) {
  zipnvr.transport = 'mjpeg';
  const img = $('mjpeg');
  $('video').hidden = true;
  img.hidden = false;
  img.onload = () => {
    firstFrame(s);
    zipnvr.stats = { framesDecoded: 1, width: img.naturalWidth, height: img.naturalHeight, fps: 0 };
    showStats();
  };
  img.onerror = () => ended(s, 'MJPEG stream failed');
  img.src = '/api/v1/channels/' + encodeURIComponent(s.cam.channel) + '/live/mjpeg?token=' + encodeURIComponent(s.grant.token);
}

// ---- start ------------------------------------------------------------

window.addEventListener('pagehide', () => stop());

document.addEventListener('DOMContentLoaded', async () => {
  zipnvr.navigatedMs = 0; // performance.now() counts from navigation start
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    login($('token').value.trim());
  });
  $('logout').addEventListener('click', logout);
  $('stop').addEventListener('click', () => stop('stopped'));
  $('again').addEventListener('click', () => app.cam && watch(app.cam, $('quality').value, $('transport').value, new Set()));
  $('quality').addEventListener('change', () => app.cam && watch(app.cam, $('quality').value, $('transport').value, new Set()));
  $('transport').addEventListener('change', () => app.cam && watch(app.cam, $('quality').value, $('transport').value, new Set()));

  // A link may carry #token=...&camera=...&quality=...&transport=... (the
  // fragment never reaches a server); it is removed from the address bar.
  const h = new URLSearchParams(location.hash.slice(1));
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  const token = h.get('token') || sessionStorage.getItem('zipnvr.token');
  if (!token) return;
  if (!(await login(token))) return;
  const camID = h.get('camera');
  if (camID) {
    const cam = app.cams.find((c) => c.id === camID);
    if (cam) open(cam, h.get('quality'), h.get('transport'));
    else setState('error', 'no camera ' + camID);
  }
});
