// The dashboard's page: it listens to api/events (Server-Sent Events) and
// redraws. Every string that came from the network is put in the page with
// textContent, never as HTML.
'use strict';

const HISTORY_S = 300;   // seconds of rate history the charts keep
const LAT_WINDOW_MS = 30000; // latency percentiles over this window
const MAX_EVENTS = 200;

const rateSeries = ['published', 'delivered', 'duplicates', 'repaired', 'bytes'];
const points = { latency: [] };
for (const k of rateSeries) points[k] = [];
let base = null;          // the State rates are measured from
const latencySnaps = [];  // {at, cumulative, count}
const rows = new Map();   // member id → {tr, state}
let lastState = null;
let eventCount = 0;

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2).replace(/\.?0+$/, '') || '0';
}

function fmtBytes(b) {
  if (!b) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return (i === 0 ? b.toFixed(0) : b.toFixed(1)) + ' ' + units[i];
}

function fmtAgo(ms) {
  if (!ms) return '–';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 1) return 'now';
  if (s < 60) return s.toFixed(0) + ' s ago';
  if (s < 3600) return (s / 60).toFixed(0) + ' min ago';
  return (s / 3600).toFixed(1) + ' h ago';
}

function fmtUptime(s) {
  if (s < 60) return s.toFixed(0) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  if (s < 86400) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}

function fmtTime(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0').slice(0, 1);
}

// quantile of a histogram given as cumulative counts per upper bound, as
// Prometheus' histogram_quantile interpolates.
function quantile(bounds, cum, count, q) {
  if (!count) return null;
  const rank = q * count;
  let lower = 0, below = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (cum[i] >= rank) {
      const inb = cum[i] - below;
      return inb === 0 ? bounds[i] : lower + (bounds[i] - lower) * (rank - below) / inb;
    }
    lower = bounds[i]; below = cum[i];
  }
  return bounds[bounds.length - 1];
}

function trim(arr, now) {
  while (arr.length && arr[0].t < now - HISTORY_S * 1000) arr.shift();
}

function onState(s) {
  lastState = s;
  renderHeader(s);
  renderMembers(s);
  renderNeighbors(s);
  renderTraces(s);
  // Rates: one point per second or more (the extra states sent right
  // after a change would make noisy points).
  if (!base) {
    base = s;
  } else if (s.at - base.at >= 900) {
    const dt = (s.at - base.at) / 1000;
    for (const k of rateSeries) {
      points[k].push({ t: s.at, v: Math.max(0, (s.counters[k] - base.counters[k]) / dt) });
      trim(points[k], s.at);
    }
    base = s;
    latencySnaps.push({ at: s.at, cum: s.latency.cumulative, count: s.latency.count });
    while (latencySnaps.length && latencySnaps[0].at < s.at - LAT_WINDOW_MS - 1500) latencySnaps.shift();
    const old = latencySnaps[0];
    let p = { t: s.at, p50: null, p90: null, p99: null };
    if (old && old !== latencySnaps[latencySnaps.length - 1]) {
      const cum = s.latency.cumulative.map((c, i) => c - old.cum[i]);
      const count = s.latency.count - old.count;
      const b = s.latency.bounds.map((x) => x * 1000);
      p = { t: s.at, p50: quantile(b, cum, count, 0.5), p90: quantile(b, cum, count, 0.9), p99: quantile(b, cum, count, 0.99) };
    }
    points.latency.push(p);
    trim(points.latency, s.at);
    drawCharts();
  }
}

function renderHeader(s) {
  const n = s.node;
  $('node-id').textContent = n.id;
  $('node-meta').textContent = `${n.address} · v${n.version} · up ${fmtUptime(n.uptime_s)} · ${n.ready ? 'ready' : 'not ready'} · incarnation ${n.incarnation}` +
    (n.local_health ? ` · local health ${n.local_health}` : '');
  for (const k of ['alive', 'suspect', 'dead', 'left']) $('count-' + k).textContent = s.counts[k];
  document.title = `${n.id} · ${s.counts.alive} alive` + (s.counts.suspect ? ` · ${s.counts.suspect} suspect` : '') +
    (s.counts.dead ? ` · ${s.counts.dead} dead` : '');
  $('footer').textContent = `snapshot ${new Date(s.at).toLocaleTimeString([], { hour12: false })} · ${eventCount} events since this page opened`;
}

function renderMembers(s) {
  const tbody = $('members');
  const seen = new Set();
  s.members.forEach((m, i) => {
    seen.add(m.id);
    let r = rows.get(m.id);
    if (!r) {
      const tr = el('tr');
      tr.dataset.member = m.id;
      const cells = [el('td', 'mono'), el('td', 'mono'), el('td'), el('td', 'num'), el('td', 'num')];
      cells[2].appendChild(el('span', 'pill'));
      for (const c of cells) tr.appendChild(c);
      r = { tr, cells, state: null };
      rows.set(m.id, r);
    }
    if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
    const { tr, cells } = r;
    tr.classList.toggle('self', !!m.self);
    cells[0].textContent = m.id;
    cells[0].title = m.id;
    cells[1].textContent = m.address;
    const pill = cells[2].firstChild;
    pill.textContent = m.state;
    pill.className = 'pill ' + m.state;
    cells[3].textContent = m.incarnation;
    cells[4].textContent = m.self ? '–' : fmtAgo(m.last_heard);
    if (r.state !== null && r.state !== m.state) {
      tr.classList.remove('changed');
      void tr.offsetWidth; // restart the animation
      tr.classList.add('changed');
    }
    tr.classList.remove('state-' + r.state);
    tr.classList.add('state-' + m.state);
    tr.dataset.state = m.state;
    r.state = m.state;
  });
  for (const [id, r] of rows) {
    if (!seen.has(id)) { r.tr.remove(); rows.delete(id); }
  }
  const more = $('more-members');
  more.hidden = !s.more_members;
  more.textContent = s.more_members ? `and ${s.more_members} more` : '';
}

function renderNeighbors(s) {
  const tbody = $('neighbors');
  tbody.replaceChildren();
  for (const nb of s.neighbors) {
    const tr = el('tr');
    tr.dataset.neighbor = nb.id;
    tr.appendChild(el('td', 'mono', nb.id));
    tr.lastChild.title = nb.address;
    tr.appendChild(el('td', '', nb.transport));
    tr.appendChild(el('td', 'num', nb.rtt_ms ? fmtNum(nb.rtt_ms) + ' ms' : '–'));
    tr.lastChild.title = 'round trip of the last membership probe';
    tr.appendChild(el('td', 'num', (nb.loss * 100).toFixed(1) + ' %'));
    tr.appendChild(el('td', 'num', fmtBytes(nb.queued_bytes)));
    const tree = el('td');
    if (nb.transport !== 'stream') {
      tree.appendChild(el('span', 'pill neutral', 'unary'));
    } else if (nb.lazy_sources === 0) {
      tree.appendChild(el('span', 'pill alive', 'eager'));
    } else {
      tree.appendChild(el('span', 'pill suspect', `lazy · ${nb.lazy_sources} src`));
      tree.title = `announced lazily (IHAVE) for ${nb.lazy_sources} source(s), pushed eagerly for the others`;
    }
    tr.appendChild(tree);
    tbody.appendChild(tr);
  }
  $('no-neighbors').hidden = s.neighbors.length > 0;
}

// renderTraces draws each recent trace as an indented tree: every node
// under the neighbour its first copy came from.
function renderTraces(s) {
  const box = $('traces');
  const live = new Set(s.members.filter((m) => m.state === 'alive' || m.state === 'suspect').map((m) => m.id));
  const key = JSON.stringify([s.traces.map((t) => [t.id, t.receipts ? t.receipts.length : 0, t.live_members]), [...live]]);
  $('no-traces').hidden = s.traces.length > 0;
  if (box.dataset.key === key) return; // unchanged: keep the DOM (and the reader's selection)
  box.dataset.key = key;
  box.replaceChildren();
  for (const t of s.traces) {
    const rs = t.receipts || [];
    const have = new Set(rs.map((r) => r.node));
    const kids = new Map();
    const roots = [];
    let last = 0, maxHops = 0, repairs = 0;
    for (const r of rs) {
      last = Math.max(last, r.after_ms); maxHops = Math.max(maxHops, r.hops); if (r.repaired) repairs++;
      if (!r.from || !have.has(r.from)) roots.push(r);
      else { if (!kids.has(r.from)) kids.set(r.from, []); kids.get(r.from).push(r); }
    }
    const div = el('div', 'trace');
    div.dataset.trace = t.id;
    div.dataset.receipts = rs.length;
    const head = el('div', 'trace-head');
    // Of the members live now, how many have it (as gossipctl trace).
    const got = s.more_members ? rs.length : rs.filter((r) => live.has(r.node)).length;
    const gone = rs.length - got;
    head.append(el('span', 'mono', t.id.length > 12 ? t.id.slice(0, 12) + '…' : t.id),
      el('b', '', `${got}/${t.live_members} members` + (gone > 0 ? ` (+${gone} gone since)` : '')),
      el('span', '', `in ${fmtNum(last)} ms · ${maxHops} hops max · ${repairs} repairs`));
    div.appendChild(head);
    const ul = el('ul', 'tree');
    const add = (parent, r) => {
      const li = el('li');
      const label = el('span', 'node mono', r.node);
      li.appendChild(label);
      li.appendChild(el('span', 'meta', r.from ? `${fmtNum(r.after_ms)} ms · hop ${r.hops}` + (r.repaired ? ' · repair' : '') : 'origin'));
      li.dataset.node = r.node;
      const ch = (kids.get(r.node) || []).sort((a, b) => a.after_ms - b.after_ms);
      if (ch.length) {
        const sub = el('ul');
        for (const c of ch) add(sub, c);
        li.appendChild(sub);
      }
      parent.appendChild(li);
    };
    for (const r of roots) add(ul, r);
    div.appendChild(ul);
    box.appendChild(div);
  }
}

function describe(e) {
  if (e.member) return `${e.member.id}  ${e.member.address}  (incarnation ${e.member.incarnation})`;
  if (e.kind === 'warning') return e.message;
  return e.peer;
}

function onEvent(e) {
  eventCount++;
  const list = $('events');
  if (e.missed) {
    const li = el('li', 'warning');
    li.append(el('span', 'time', fmtTime(e.at)), el('span', 'kind warning', 'missed'), el('span', 'what', `${e.missed} events missed`));
    list.prepend(li);
  }
  const li = el('li', e.kind);
  li.append(el('span', 'time', fmtTime(e.at)), el('span', 'kind ' + e.kind, e.kind), el('span', 'what mono', describe(e)));
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  $('no-events').hidden = true;
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function drawChart(fig, lines, fmt) {
  const canvas = fig.querySelector('canvas');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const now = lastState ? lastState.at : Date.now();
  // The window grows to HISTORY_S as history accumulates, so a page just
  // opened draws across the whole chart.
  let oldest = now;
  for (const l of lines) if (l.pts.length && l.pts[0].t < oldest) oldest = l.pts[0].t;
  const span = Math.max(10000, Math.min(HISTORY_S * 1000, now - oldest));
  const t0 = now - span;
  let max = 0;
  for (const l of lines) for (const p of l.pts) if (p.v !== null && p.v > max) max = p.v;
  const top = max;
  max = max > 0 ? max * 1.15 : 1;
  // baseline and the max label
  ctx.strokeStyle = css('--line'); ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(0, h - 0.5); ctx.lineTo(w, h - 0.5); ctx.stroke();
  ctx.fillStyle = css('--muted'); ctx.font = '10px system-ui, sans-serif';
  if (top > 0) ctx.fillText(fmt(top), 2, 10);
  for (const l of lines) {
    ctx.strokeStyle = l.color; ctx.lineWidth = 1.6; ctx.beginPath();
    let started = false, first = null, last = null;
    for (const p of l.pts) {
      if (p.v === null) { started = false; continue; }
      const x = (p.t - t0) / span * w;
      const y = h - 2 - (p.v / max) * (h - 14);
      if (!started) { ctx.moveTo(x, y); started = true; if (!first) first = x; } else ctx.lineTo(x, y);
      last = x;
    }
    ctx.stroke();
    if (l.fill && first !== null) {
      ctx.lineTo(last, h); ctx.lineTo(first, h); ctx.closePath();
      ctx.globalAlpha = 0.12; ctx.fillStyle = l.color; ctx.fill(); ctx.globalAlpha = 1;
    }
  }
}

function drawCharts() {
  for (const fig of document.querySelectorAll('.chart')) {
    const k = fig.dataset.series;
    const now = fig.querySelector('.now');
    if (k === 'latency') {
      const pts = points.latency;
      const pick = (q) => pts.map((p) => ({ t: p.t, v: p[q] }));
      drawChart(fig, [
        { pts: pick('p50'), color: css('--p50') },
        { pts: pick('p90'), color: css('--p90') },
        { pts: pick('p99'), color: css('--p99') },
      ], fmtNum);
      const last = pts[pts.length - 1];
      now.textContent = last && last.p99 !== null ? `${fmtNum(last.p50)} · ${fmtNum(last.p90)} · ${fmtNum(last.p99)}` : '–';
    } else {
      const pts = points[k];
      const fmt = k === 'bytes' ? (v) => fmtBytes(v) : fmtNum;
      drawChart(fig, [{ pts, color: css('--accent'), fill: true }], fmt);
      const last = pts[pts.length - 1];
      now.textContent = last ? fmt(last.v) : '–';
    }
  }
}

function setLive(on) {
  $('live').classList.toggle('on', on);
  $('live-text').textContent = on ? 'live' : 'reconnecting…';
}

function connect() {
  const es = new EventSource('api/events');
  es.addEventListener('state', (e) => onState(JSON.parse(e.data)));
  es.addEventListener('event', (e) => onEvent(JSON.parse(e.data)));
  es.addEventListener('open', () => setLive(true));
  es.addEventListener('error', () => setLive(false)); // EventSource reconnects by itself
}

window.addEventListener('resize', drawCharts);
connect();
