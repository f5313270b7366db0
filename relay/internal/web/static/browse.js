// zipnvr browse page: recordings of a time range on a timeline with its
// gaps, playback from the presigned URLs, clips (cut, follow, download,
// delete), snapshots from the hub, and PTZ. Plain JS, no framework.
//
// app.js owns the log-in and the API helper: it tells this file through two
// document events, 'zipnvr:login' {api, cams} and 'zipnvr:camera' (the
// camera a user chose to watch). The token stays inside api(); no URL of
// this page carries it (media and image URLs are presigned by relay).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  // Recordings closer than this count as continuous (hubd cuts segments
  // back to back; timestamps are in milliseconds).
  const GAP_TOLERANCE_MS = 1000;
  const MAX_PAGES = 10; // of up to 1000 recordings each
  const CLIP_POLL_MS = 1000;
  const SNAPSHOT_POLL_MS = 500;

  // What tests read (and a curious user in the console).
  const state = {
    loaded: null, camera: null, channel: null, from: null, to: null,
    recordings: [], gaps: [], selection: null, playing: null, clip: null, snapshot: null,
    ptz: null, errors: [],
  };
  window.zipnvrBrowse = state;

  let api = null;
  let cams = [];
  // gen counts camera switches: an answer for a camera no longer shown is dropped.
  let gen = 0;

  // ---- formatting -------------------------------------------------------

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function fmtTime(d, withMs) {
    const s = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    return withMs ? s + '.' + pad(d.getMilliseconds(), 3) : s;
  }

  function fmtClock(d) {
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function fmtDuration(ms) {
    if (ms < 60e3) return (ms / 1000).toFixed(1) + ' s';
    const s = Math.round(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  function fmtBytes(n) {
    if (n < 1e3) return n + ' B';
    if (n < 1e6) return (n / 1e3).toFixed(1) + ' kB';
    if (n < 1e9) return (n / 1e6).toFixed(1) + ' MB';
    return (n / 1e9).toFixed(2) + ' GB';
  }

  // <input type="datetime-local"> holds local time without a zone.
  function toInput(d) {
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
  }

  function fromInput(id) {
    const v = $(id).value;
    const d = v ? new Date(v) : null; // no zone: local time, as shown
    if (!d || isNaN(d)) throw new Error($(id).labels[0].textContent + ': not a date and time');
    return d;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function describeError(e) {
    return e.status ? 'HTTP ' + e.status + ': ' + e.message : e.message;
  }

  // show writes a status line: kind is '' (info), 'ok', 'busy' or 'error'.
  function show(id, text, kind) {
    const p = $(id);
    p.textContent = text || '';
    p.className = 'msg' + (kind ? ' ' + kind : '');
    if (kind === 'error') {
      state.errors.push(id + ': ' + text);
      if (state.errors.length > 50) state.errors.shift();
    }
  }

  const chPath = (rest) => '/api/v1/channels/' + encodeURIComponent(state.channel) + rest;

  // ---- camera -----------------------------------------------------------

  function fillCameras(list) {
    cams = list;
    const sel = $('b-camera');
    sel.textContent = '';
    for (const c of cams) {
      const o = el('option', (c.name || c.local_id) + (c.channel ? '' : ' (no channel)'));
      o.value = c.id;
      sel.append(o);
    }
    $('browse').hidden = cams.length === 0;
    const first = cams.find((c) => c.channel) || cams[0];
    if (first) select(first.id);
  }

  async function select(id) {
    const mine = ++gen;
    state.loaded = null;
    $('b-camera').value = id;
    let cam = cams.find((c) => c.id === id);
    state.camera = cam;
    state.channel = cam && cam.channel;
    state.recordings = [];
    state.gaps = [];
    state.clip = null;
    state.snapshot = null;
    stopPlayback();
    lastMinutes();
    $('clip-result').textContent = '';
    $('snap-view').textContent = '';
    show('ptz-msg', '');
    show('snap-msg', '');
    show('clip-msg', '');
    // The camera as it is now (PTZ driver, channel): the list may be old.
    try {
      cam = await api('GET', '/api/v1/cameras/' + encodeURIComponent(id));
    } catch (e) {
      if (mine === gen) show('b-msg', 'Cannot read camera ' + id + ': ' + describeError(e), 'error');
      return;
    }
    if (mine !== gen) return;
    state.camera = cam;
    state.channel = cam.channel;
    show('b-msg', '');
    showPTZ(cam);
    const noChannel = !cam.channel;
    for (const b of document.querySelectorAll('#browse .needs-channel')) b.disabled = noChannel;
    if (noChannel) {
      show('rec-msg', 'This camera has no channel, so nothing is recorded for it (create one: POST /api/v1/cameras/' + cam.id + '/channel).', 'error');
      clearRecordings();
      $('clip-list').textContent = '';
      $('snap-list').textContent = '';
      state.loaded = id;
      return;
    }
    lastHour();
    await Promise.all([loadRecordings(), loadClips(), loadSnapshots()]);
    if (mine === gen) state.loaded = id;
  }

  // ---- recordings -------------------------------------------------------

  function setRange(from, to) {
    $('rec-from').value = toInput(from);
    $('rec-to').value = toInput(to);
  }

  function lastHour() {
    const now = new Date();
    setRange(new Date(now - 3600e3), now);
  }

  function clearRecordings() {
    $('rec-list').textContent = '';
    $('timeline').textContent = '';
    $('axis').textContent = '';
  }

  async function loadRecordings() {
    if (!state.channel) return;
    const mine = gen;
    let from, to;
    try {
      from = fromInput('rec-from');
      to = fromInput('rec-to');
      if (from >= to) throw new Error('"From" must be before "to"');
    } catch (e) {
      show('rec-msg', e.message, 'error');
      return;
    }
    show('rec-msg', 'Loading recordings…', 'busy');
    const recs = [];
    let after = '';
    let truncated = false;
    try {
      for (let page = 0; ; page++) {
        const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
        if (after) q.set('after', after);
        const out = await api('GET', chPath('/recordings?' + q));
        if (mine !== gen) return;
        recs.push(...out.recordings);
        if (!out.next) break;
        if (page + 1 >= MAX_PAGES) { truncated = true; break; }
        after = out.next;
      }
    } catch (e) {
      if (mine === gen) show('rec-msg', 'Cannot list recordings: ' + describeError(e), 'error');
      return;
    }
    for (const r of recs) {
      r.startD = new Date(r.start);
      r.endD = new Date(r.end);
      r.expiresAt = r.url_expires ? Date.parse(r.url_expires) : Infinity;
    }
    recs.sort((a, b) => a.startD - b.startD);
    state.from = from;
    state.to = to;
    state.recordings = recs;
    state.gaps = findGaps(recs, from, to);
    renderTimeline();
    renderRecordings();
    const total = recs.reduce((n, r) => n + r.bytes, 0);
    const gapMs = state.gaps.reduce((n, g) => n + (g.end - g.start), 0);
    show('rec-msg', recs.length + ' recording' + (recs.length === 1 ? '' : 's') + ', ' + fmtBytes(total) +
      (state.gaps.length ? '; ' + state.gaps.length + ' gap' + (state.gaps.length === 1 ? '' : 's') + ' (' + fmtDuration(gapMs) + ' without recording)' : '; no gap') +
      (truncated ? '; only the first ' + recs.length + ' are shown: pick a shorter range' : '') +
      (state.camera && state.camera.record === 'off' ? '; the hub does not record this camera (record: off)' : ''), truncated ? 'error' : 'ok');
  }

  // findGaps lists the spans of [from, min(to, now)] that no recording covers.
  function findGaps(recs, from, to) {
    const gaps = [];
    const now = new Date();
    const until = to < now ? to : now;
    let covered = from;
    for (const r of recs) {
      if (r.startD - covered > GAP_TOLERANCE_MS) gaps.push({ start: covered, end: r.startD });
      if (r.endD > covered) covered = r.endD;
    }
    // A gap up to the present is, in part, the segment the hub still writes.
    if (until - covered > GAP_TOLERANCE_MS) gaps.push({ start: covered, end: until, open: now - until < 60e3 });
    return gaps;
  }

  // spans merges back-to-back recordings into the blocks the timeline draws.
  function spans(recs) {
    const out = [];
    for (const r of recs) {
      const last = out[out.length - 1];
      if (last && r.startD - last.end <= GAP_TOLERANCE_MS) {
        if (r.endD > last.end) last.end = r.endD;
        last.n++;
      } else {
        out.push({ start: r.startD, end: r.endD, n: 1 });
      }
    }
    return out;
  }

  function pct(t) {
    const span = state.to - state.from;
    return Math.min(100, Math.max(0, (100 * (t - state.from)) / span));
  }

  function renderTimeline() {
    const tl = $('timeline');
    tl.textContent = '';
    state.selection = null;
    $('rec-zoomin').disabled = true;
    const now = new Date();
    if (now < state.to) {
      const f = el('div', null, 'tl-future');
      f.style.left = pct(now) + '%';
      f.style.width = 100 - pct(now) + '%';
      f.title = 'the future';
      tl.append(f);
    }
    for (const s of spans(state.recordings)) {
      const b = el('div', null, 'tl-rec');
      b.style.left = pct(s.start) + '%';
      b.style.width = Math.max(0.2, pct(s.end) - pct(s.start)) + '%';
      b.title = fmtTime(s.start) + ' – ' + fmtTime(s.end) + ' (' + s.n + ' recording' + (s.n === 1 ? '' : 's') + ')';
      tl.append(b);
    }
    for (const g of state.gaps) {
      const b = el('div', null, 'tl-gap');
      b.style.left = pct(g.start) + '%';
      b.style.width = Math.max(0.2, pct(g.end) - pct(g.start)) + '%';
      b.title = 'no recording ' + fmtTime(g.start) + ' – ' + fmtTime(g.end) + ' (' + fmtDuration(g.end - g.start) + ')';
      tl.append(b);
    }
    const head = el('div', null, 'tl-head');
    head.id = 'tl-head';
    head.hidden = true;
    tl.append(head);
    const axis = $('axis');
    axis.textContent = '';
    for (let i = 0; i <= 4; i++) {
      const t = new Date(state.from.getTime() + ((state.to - state.from) * i) / 4);
      const l = el('span', i === 0 || i === 4 ? fmtTime(t) : fmtClock(t));
      l.style.left = i * 25 + '%';
      axis.append(l);
    }
  }

  // On the timeline a click plays the recording at that time (or the next
  // one); a drag selects a range, which becomes the clip's start and end
  // and which "Zoom in" lists alone.
  let drag = null;

  function timeAt(clientX) {
    const box = $('timeline').getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (clientX - box.left) / box.width));
    return new Date(state.from.getTime() + f * (state.to - state.from));
  }

  function onPointerDown(ev) {
    if (!state.from || ev.button !== 0) return;
    drag = { x: ev.clientX, t: timeAt(ev.clientX) };
    $('timeline').setPointerCapture(ev.pointerId); // keep the drag when it leaves the bar
  }

  function onPointerMove(ev) {
    if (!drag || Math.abs(ev.clientX - drag.x) < 4) return;
    const t = timeAt(ev.clientX);
    showSelection(t < drag.t ? t : drag.t, t < drag.t ? drag.t : t);
  }

  function onPointerUp(ev) {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (Math.abs(ev.clientX - d.x) < 4) return playAt(d.t);
    const t = timeAt(ev.clientX);
    const [start, end] = t < d.t ? [t, d.t] : [d.t, t];
    state.selection = { start, end };
    showSelection(start, end);
    prefillClip(start, end);
    $('rec-zoomin').disabled = false;
  }

  function showSelection(start, end) {
    let sel = $('tl-sel');
    if (!sel) {
      sel = el('div', null, 'tl-sel');
      sel.id = 'tl-sel';
      $('timeline').append(sel);
    }
    sel.style.left = pct(start) + '%';
    sel.style.width = pct(end) - pct(start) + '%';
    sel.title = 'selected ' + fmtTime(start) + ' – ' + fmtTime(end) + ' (' + fmtDuration(end - start) + ')';
  }

  function playAt(t) {
    const rec = state.recordings.find((r) => r.endD > t);
    if (rec) play(rec, Math.max(0, (t - rec.startD) / 1000));
  }

  function zoomIn() {
    if (!state.selection) return;
    setRange(state.selection.start, state.selection.end);
    loadRecordings();
  }

  // zoomOut lists four times the range around its middle, not past now.
  function zoomOut() {
    if (!state.from) return;
    const span = state.to - state.from;
    const now = Date.now();
    const to = Math.min(now, state.to.getTime() + 1.5 * span);
    setRange(new Date(to - 4 * span), new Date(to));
    loadRecordings();
  }

  function renderRecordings() {
    const body = $('rec-list');
    body.textContent = '';
    // Newest first, with the gaps between as rows of their own.
    const rows = state.recordings.map((r) => ({ rec: r, t: r.startD }))
      .concat(state.gaps.map((g) => ({ gap: g, t: g.start })))
      .sort((a, b) => b.t - a.t);
    for (const row of rows) {
      const tr = el('tr');
      if (row.gap) {
        const g = row.gap;
        tr.className = 'gap';
        const td = el('td', 'no recording' + (g.open ? ' (yet: the hub uploads a segment once it is closed)' : ''));
        td.colSpan = 2;
        tr.append(el('td', fmtTime(g.start)), el('td', fmtTime(g.end)), el('td', fmtDuration(g.end - g.start)), td);
      } else {
        const r = row.rec;
        tr.dataset.id = r.id;
        const act = el('td');
        const btn = el('button', 'Play');
        btn.className = 'play';
        btn.addEventListener('click', () => play(r, 0));
        act.append(btn);
        tr.append(el('td', fmtTime(r.startD, true)), el('td', fmtTime(r.endD, true)), el('td', fmtDuration(r.endD - r.startD)),
          el('td', fmtBytes(r.bytes) + ' · ' + (r.codec || '?')), act);
        if (state.playing && state.playing.id === r.id) tr.classList.add('playing');
      }
      body.append(tr);
    }
    if (!rows.length) {
      const td = el('td', 'Nothing in this range.');
      td.colSpan = 5;
      body.append(el('tr')).append(td);
    }
  }

  // ---- playback ---------------------------------------------------------

  function stopPlayback() {
    const v = $('playback');
    v.pause();
    v.removeAttribute('src');
    v.load();
    state.playing = null;
    $('now-playing').textContent = '';
  }

  // play plays a recording (or a clip: {id, url, label}) from offset seconds.
  async function play(rec, offset) {
    const v = $('playback');
    if (rec.startD && Date.now() > rec.expiresAt - 5000) {
      // Its presigned URL ran out: list the range again for fresh ones.
      await loadRecordings();
      rec = state.recordings.find((r) => r.id === rec.id);
      if (!rec) return show('play-msg', 'That recording is gone (retention, or the channel was deleted).', 'error');
    }
    const cur = { id: rec.id, kind: rec.startD ? 'recording' : 'clip', base: null };
    state.playing = cur;
    show('play-msg', '');
    $('now-playing').textContent = rec.startD
      ? 'Recording ' + fmtTime(rec.startD) + ' – ' + fmtClock(rec.endD) + ' (' + fmtDuration(rec.endD - rec.startD) + ')'
      : rec.label;
    for (const tr of document.querySelectorAll('#rec-list tr')) tr.classList.toggle('playing', tr.dataset.id === rec.id);
    if (rec.startD) prefillClip(rec.startD, rec.endD);
    v.src = rec.url;
    // The file's media clock does not start at 0: hubd's decode times run
    // on across a camera's segments, and browsers count from 0 to the
    // file's last time. Once the first frame is there, the video stands
    // at the recording's start.
    v.addEventListener('loadeddata', () => {
      if (state.playing !== cur) return;
      cur.base = v.currentTime;
      if (offset > 0) v.currentTime = cur.base + offset;
    }, { once: true });
    try {
      await v.play();
    } catch (e) {
      if (e.name !== 'AbortError') show('play-msg', 'Cannot play: ' + e.message, 'error');
    }
  }

  function onPlaybackError() {
    const v = $('playback');
    if (!v.error || !state.playing) return;
    const what = { 1: 'aborted', 2: 'network error (the URL may have expired: list again)', 3: 'cannot decode', 4: 'format not supported by this browser' }[v.error.code] || 'error';
    show('play-msg', 'Cannot play: ' + what + (v.error.message ? ' (' + v.error.message + ')' : ''), 'error');
  }

  // At the end of a recording, play the next one of the list.
  function onPlaybackEnded() {
    const cur = state.playing;
    if (!cur || cur.kind !== 'recording') return;
    const i = state.recordings.findIndex((r) => r.id === cur.id);
    if (i >= 0 && i + 1 < state.recordings.length) play(state.recordings[i + 1], 0);
  }

  function onTimeUpdate() {
    const head = $('tl-head');
    const cur = state.playing;
    if (!head || !cur || cur.kind !== 'recording' || cur.base === null) return;
    const rec = state.recordings.find((r) => r.id === cur.id);
    if (!rec) return;
    const t = new Date(rec.startD.getTime() + ($('playback').currentTime - cur.base) * 1000);
    head.hidden = false;
    head.style.left = pct(t) + '%';
    head.title = fmtTime(t, true);
  }

  // ---- clips ------------------------------------------------------------

  function prefillClip(start, end) {
    $('clip-start').value = toInput(start);
    $('clip-end').value = toInput(end);
  }

  function lastMinutes() {
    const n = Number($('clip-minutes').value);
    if (!(n > 0)) return show('clip-msg', 'Minutes: a number above 0', 'error');
    const now = new Date();
    prefillClip(new Date(now - n * 60e3), now);
    show('clip-msg', '');
  }

  async function cutClip(ev) {
    ev.preventDefault();
    const mine = gen;
    let start, end;
    try {
      start = fromInput('clip-start');
      end = fromInput('clip-end');
    } catch (e) {
      return show('clip-msg', e.message, 'error');
    }
    show('clip-msg', 'Asking for the clip…', 'busy');
    let clip;
    try {
      clip = await api('POST', chPath('/clips'), { start: start.toISOString(), end: end.toISOString() });
    } catch (e) {
      return mine === gen && show('clip-msg', 'Cannot cut: ' + describeError(e), 'error');
    }
    if (mine !== gen) return;
    state.clip = clip;
    renderClip(clip);
    loadClips();
    // Follow it until it is done (a range into the present waits for its recordings).
    while (clip.status === 'in_progress') {
      await new Promise((r) => setTimeout(r, CLIP_POLL_MS));
      if (mine !== gen || !state.clip || state.clip.id !== clip.id) return;
      try {
        clip = await api('GET', '/api/v1/clips/' + encodeURIComponent(clip.id));
      } catch (e) {
        if (mine !== gen) return;
        if (e.status === 404) return show('clip-msg', 'The clip was deleted.', 'error');
        show('clip-msg', 'Cannot read the clip (retrying): ' + describeError(e), 'error');
        continue;
      }
      if (mine !== gen) return;
      state.clip = clip;
      renderClip(clip);
    }
    loadClips();
  }

  function clipRange(c) {
    return fmtTime(new Date(c.start)) + ' – ' + fmtClock(new Date(c.end)) + ' (' + fmtDuration(Date.parse(c.end) - Date.parse(c.start)) + ')';
  }

  // clipLinks: download the MP4, the HLS playlist, play here.
  function clipLinks(c) {
    const span = el('span', null, 'links');
    const mp4 = el('a', 'Download MP4');
    mp4.href = c.url;
    mp4.download = 'clip-' + c.id + '.mp4';
    mp4.className = 'download';
    const hls = el('a', 'HLS');
    hls.href = c.hls_url;
    hls.className = 'hls';
    hls.title = 'HLS playlist (Safari, VLC, ffplay…): ' + c.hls_url;
    const btn = el('button', 'Play');
    btn.addEventListener('click', () => play({ id: c.id, url: c.url, label: 'Clip ' + clipRange(c) }, 0));
    span.append(mp4, ' ', hls, ' ', btn);
    return span;
  }

  function gapsText(gaps) {
    return gaps.map((g) => fmtClock(new Date(g.start)) + '–' + fmtClock(new Date(g.end)) + ' ' + g.reason).join('; ');
  }

  function renderClip(c) {
    const box = $('clip-result');
    box.textContent = '';
    const n = (c.recordings || []).length;
    switch (c.status) {
      case 'in_progress':
        show('clip-msg', 'Clip ' + c.id + ' in progress: ' + n + ' recording' + (n === 1 ? '' : 's') + ' attached so far', 'busy');
        break;
      case 'finished':
        show('clip-msg', 'Clip ' + c.id + ' finished: ' + fmtDuration(Date.parse(c.media_end) - Date.parse(c.media_start)) + ', ' + fmtBytes(c.bytes), 'ok');
        box.append(clipLinks(c));
        break;
      default:
        show('clip-msg', 'Clip ' + c.id + ' ' + c.status + (c.reason ? ': ' + c.reason : ''), 'error');
    }
    if (c.gaps && c.gaps.length) box.append(el('p', 'Gaps: ' + gapsText(c.gaps), 'clip-gaps'));
  }

  // clipsTimer refreshes the list while a clip in it is in progress (one
  // timer, however many times the list is loaded).
  let clipsTimer = 0;

  async function loadClips() {
    clearTimeout(clipsTimer);
    if (!state.channel) return;
    const mine = gen;
    let out;
    try {
      out = await api('GET', chPath('/clips'));
    } catch (e) {
      if (mine === gen) show('clips-msg', 'Cannot list clips: ' + describeError(e), 'error');
      return;
    }
    if (mine !== gen) return;
    show('clips-msg', out.clips.length ? '' : 'No clip yet.');
    const body = $('clip-list');
    body.textContent = '';
    for (const c of out.clips) {
      const tr = el('tr');
      tr.dataset.id = c.id;
      const st = el('td', c.status, 'status ' + c.status);
      if (c.reason) st.title = c.reason;
      const act = el('td');
      if (c.status === 'finished') act.append(clipLinks(c), ' ');
      const del = el('button', 'Delete', 'delete');
      del.addEventListener('click', () => deleteClip(c, del));
      act.append(del);
      const range = el('td', clipRange(c));
      if (c.gaps && c.gaps.length) range.append(el('div', 'gaps: ' + gapsText(c.gaps), 'clip-gaps'));
      tr.append(range, st, el('td', c.bytes ? fmtBytes(c.bytes) : ''), act);
      body.append(tr);
    }
    if (out.clips.some((c) => c.status === 'in_progress')) {
      clipsTimer = setTimeout(() => mine === gen && loadClips(), 3000);
    }
  }

  // deleteClip asks for a second click, then deletes (file and entry).
  async function deleteClip(c, btn) {
    if (!btn.classList.contains('confirm')) {
      btn.classList.add('confirm');
      btn.textContent = 'Really delete?';
      setTimeout(() => { btn.classList.remove('confirm'); btn.textContent = 'Delete'; }, 4000);
      return;
    }
    btn.disabled = true;
    let msg;
    try {
      await api('DELETE', '/api/v1/clips/' + encodeURIComponent(c.id));
      msg = ['Clip ' + c.id + ' deleted.', 'ok'];
      if (state.clip && state.clip.id === c.id) {
        state.clip = null;
        $('clip-result').textContent = '';
        show('clip-msg', '');
      }
      if (state.playing && state.playing.id === c.id) stopPlayback();
    } catch (e) {
      msg = ['Cannot delete clip ' + c.id + ': ' + describeError(e), 'error'];
    }
    await loadClips();
    show('clips-msg', msg[0], msg[1]);
  }

  // ---- snapshots --------------------------------------------------------

  async function takeSnapshot() {
    const mine = gen;
    const btn = $('snap-take');
    btn.disabled = true;
    show('snap-msg', 'Asking the hub for a snapshot…', 'busy');
    try {
      let sn = await api('POST', chPath('/snapshots?source=agent'));
      state.snapshot = sn;
      while (sn.status === 'pending') {
        await new Promise((r) => setTimeout(r, SNAPSHOT_POLL_MS));
        if (mine !== gen) return;
        sn = await api('GET', '/api/v1/snapshots/' + encodeURIComponent(sn.id));
        state.snapshot = sn;
      }
      if (mine !== gen) return;
      if (sn.status === 'ready') {
        show('snap-msg', 'Snapshot ' + fmtTime(new Date(sn.created)) + ', ' + fmtBytes(sn.bytes), 'ok');
        viewSnapshot(sn);
      } else {
        show('snap-msg', 'Snapshot failed: ' + (sn.error || sn.status), 'error');
      }
    } catch (e) {
      if (mine === gen) show('snap-msg', 'Cannot take a snapshot: ' + describeError(e), 'error');
    } finally {
      btn.disabled = !state.channel;
    }
    if (mine === gen) loadSnapshots();
  }

  function viewSnapshot(sn) {
    const box = $('snap-view');
    box.textContent = '';
    const img = el('img');
    img.src = sn.url;
    img.alt = 'snapshot of ' + fmtTime(new Date(sn.created));
    img.id = 'snap-image';
    const a = el('a');
    a.href = sn.url;
    a.target = '_blank';
    a.rel = 'noopener';
    a.append(img);
    box.append(a, el('p', fmtTime(new Date(sn.created)) + ' · ' + sn.source + ' · ' + fmtBytes(sn.bytes), 'hint'));
  }

  async function loadSnapshots() {
    if (!state.channel) return;
    const mine = gen;
    let out;
    try {
      out = await api('GET', chPath('/snapshots?limit=24'));
    } catch (e) {
      if (mine === gen) show('snaps-msg', 'Cannot list snapshots: ' + describeError(e), 'error');
      return;
    }
    if (mine !== gen) return;
    show('snaps-msg', out.snapshots.length ? '' : 'No snapshot yet.');
    const list = $('snap-list');
    list.textContent = '';
    for (const sn of out.snapshots) {
      const fig = el('figure', null, 'thumb ' + sn.status);
      fig.dataset.id = sn.id;
      if (sn.status === 'ready') {
        const img = el('img');
        img.src = sn.url;
        img.alt = 'snapshot ' + fmtTime(new Date(sn.created));
        img.loading = 'lazy';
        img.addEventListener('click', () => viewSnapshot(sn));
        fig.append(img);
      } else {
        fig.append(el('div', sn.status === 'pending' ? 'pending…' : 'failed', 'placeholder'));
        if (sn.error) fig.title = sn.error;
      }
      fig.append(el('figcaption', fmtTime(new Date(sn.created)) + ' · ' + sn.source));
      list.append(fig);
    }
  }

  // ---- PTZ --------------------------------------------------------------

  function showPTZ(cam) {
    const kind = cam.ptz && cam.ptz.kind;
    $('ptz-kind').textContent = kind && kind !== 'none'
      ? 'PTZ driver: ' + kind + '. A move stops by itself after the hub\'s move time, or at Stop.'
      : 'This camera reports no PTZ: the relay will refuse (409).';
  }

  async function ptz(action) {
    if (!state.camera) return;
    const cam = state.camera;
    const path = '/api/v1/cameras/' + encodeURIComponent(cam.id) + '/ptz/' + action;
    show('ptz-msg', action + '…', 'busy');
    try {
      await api('POST', path);
      if (state.camera === cam) show('ptz-msg', action + ': done', 'ok');
    } catch (e) {
      if (state.camera === cam) show('ptz-msg', action + ': ' + describeError(e), 'error');
    }
    state.ptz = { action, msg: $('ptz-msg').textContent };
  }

  // ---- start ------------------------------------------------------------

  function init() {
    $('b-tz').textContent = 'Times in ' + (Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time') + '.';
    $('b-camera').addEventListener('change', () => select($('b-camera').value));
    $('rec-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadRecordings(); });
    $('rec-lasthour').addEventListener('click', () => { lastHour(); loadRecordings(); });
    $('rec-lastday').addEventListener('click', () => { const now = new Date(); setRange(new Date(now - 86400e3), now); loadRecordings(); });
    const tl = $('timeline');
    tl.addEventListener('pointerdown', onPointerDown);
    tl.addEventListener('pointermove', onPointerMove);
    tl.addEventListener('pointerup', onPointerUp);
    tl.addEventListener('pointercancel', () => { drag = null; });
    $('rec-zoomin').addEventListener('click', zoomIn);
    $('rec-zoomout').addEventListener('click', zoomOut);
    const v = $('playback');
    v.addEventListener('error', onPlaybackError);
    v.addEventListener('ended', onPlaybackEnded);
    v.addEventListener('timeupdate', onTimeUpdate);
    $('clip-form').addEventListener('submit', cutClip);
    $('clip-last').addEventListener('click', lastMinutes);
    $('clips-refresh').addEventListener('click', loadClips);
    $('snap-take').addEventListener('click', takeSnapshot);
    $('snaps-refresh').addEventListener('click', loadSnapshots);
    for (const b of document.querySelectorAll('#ptz [data-ptz]')) b.addEventListener('click', () => ptz(b.dataset.ptz));
    $('ptz-preset-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      ptz('preset/' + encodeURIComponent($('ptz-preset').value));
    });
  }

  document.addEventListener('zipnvr:login', (ev) => {
    api = ev.detail.api;
    fillCameras(ev.detail.cams);
  });
  document.addEventListener('zipnvr:camera', (ev) => {
    if (ev.detail && ev.detail.id !== (state.camera && state.camera.id)) select(ev.detail.id);
  });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
