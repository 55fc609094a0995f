// hookgate console: plain JavaScript over the admin API (/api/*), no framework and nothing
// fetched from elsewhere. Everything a sender controls (headers, bodies, paths, reasons) is put
// into the page as text nodes, never parsed as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'hookgate.admin-token';
  const EVENTS_EVERY_MS = 1000;
  const ROUTES_EVERY_MS = 2000;
  const OUTCOMES = ['forwarded', 'rejected', 'duplicate', 'queued', 'failed', 'answered'];
  const SINCE = [['', 'any time'], ['5m', 'last 5 minutes'], ['15m', 'last 15 minutes'],
    ['1h', 'last hour'], ['6h', 'last 6 hours'], ['24h', 'last 24 hours'], ['72h', 'last 3 days']];

  // What each refusal or failure reason means, for people.
  const REASONS = {
    no_route: 'no route matches this path',
    method_not_allowed: 'only POST is accepted',
    too_large: 'the body is over server.max_body_bytes',
    body_timeout: 'the body did not arrive within server.body_timeout',
    bad_body: 'the body could not be read',
    rate_limited_ip: 'the sender\'s address went over its rate limit',
    rate_limited_route: 'the route went over its rate limit',
    not_json: 'the body is not JSON',
    schema: 'the payload does not match the route\'s schema',
    upstream_unreachable: 'the backend could not be reached',
    upstream_timeout: 'the backend did not answer in time',
    delivered: 'already delivered (same dedup key)',
    in_flight: 'the first copy was still being delivered',
    store: 'the store could not keep it',
    missing_header: 'the signature header is missing',
    malformed_header: 'the signature header is not in the scheme\'s format',
    mismatch: 'the signature does not match the body',
    timestamp_expired: 'the signed timestamp is too old',
    timestamp_future: 'the signed timestamp is in the future',
    no_secret: 'the route has no usable secret',
  };

  const $ = (id) => document.getElementById(id);

  // --- DOM helpers: text only -------------------------------------------------------------

  /** An element; string children become text nodes, null and false are skipped. */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'selected') node[k] = Boolean(v);
      else node.setAttribute(k, String(v));
    }
    append(node, ...children);
    return node;
  }

  /** Appends each child (nested arrays flattened); strings as text nodes. */
  function append(node, ...children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  /** Replaces `node`'s content, keeping keyboard focus on the element with the same id. */
  function replaceContent(node, ...children) {
    const focused = document.activeElement && document.activeElement.id;
    clear(node);
    append(node, ...children);
    if (focused && node.contains(document.getElementById(focused)) && document.activeElement !== document.getElementById(focused)) {
      document.getElementById(focused).focus();
    }
  }

  /** A time in the viewer's zone, the UTC time on hover. */
  function time(rfc3339, withDate) {
    if (!rfc3339) return h('span', { class: 'muted' }, '-');
    const d = new Date(rfc3339);
    if (Number.isNaN(d.getTime())) return h('span', {}, rfc3339);
    const today = new Date().toDateString() === d.toDateString();
    const text = (withDate || !today ? d.toLocaleDateString() + ' ' : '') + d.toLocaleTimeString();
    return h('time', { datetime: rfc3339, title: d.toISOString().replace('T', ' ').replace('Z', ' UTC') }, text);
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return '-';
    const s = Math.round(seconds);
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' days';
  }

  function ms(v) {
    if (v === null || v === undefined) return '-';
    return v < 10 ? v.toFixed(2) + ' ms' : v < 1000 ? v.toFixed(0) + ' ms' : (v / 1000).toFixed(2) + ' s';
  }

  /** Advice as a sentence: capital first, full stop last. */
  function sentence(text) {
    const t = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?]$/.test(t) ? t : t + '.';
  }

  function badge(word, prefix) {
    const known = OUTCOMES.includes(word) || ['pending', 'delivered', 'dead', 'paused'].includes(word);
    return h('span', { class: 'badge ' + (prefix || 'o-') + (known ? word : 'other') }, word || '-');
  }

  function eventLink(id, label) {
    return h('a', { href: '#/events/' + encodeURIComponent(id) }, label || id);
  }

  function cell(label, content, cls) {
    return h('td', { 'data-label': label, class: cls }, content);
  }

  // --- the API ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** One call to the admin API with the token; a refusal of the token opens the prompt. */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, method + ' ' + path + ': the gateway did not answer (' + e.message + ')');
    }
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (res.status === 401) {
      const stored = Boolean(token);
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(stored ? 'The gateway refused the token (401): it may have changed. Enter the current admin.token.' : null);
      throw new ApiError(401, 'admin token required');
    }
    if (!res.ok) {
      const why = data && typeof data.error === 'string' ? data.error : res.statusText;
      throw new ApiError(res.status, method + ' ' + path + ' failed: ' + res.status + ' ' + why);
    }
    return data;
  }

  /** Shows an API error at the top of the page (never swallowed); `null` clears it. */
  function notice(err) {
    const box = $('notice');
    if (!err) {
      box.hidden = true;
      clear(box);
      return;
    }
    if (err.status === 401) return;
    replaceContent(box, err.message || String(err));
    box.hidden = false;
  }

  // --- token --------------------------------------------------------------------------------

  function showLogin(message) {
    stopTimers();
    $('nav').hidden = true;
    $('forget').hidden = true;
    clear($('main'));
    notice(null);
    $('login').hidden = false;
    const err = $('login-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('token').focus();
  }

  async function login(event) {
    event.preventDefault();
    const input = $('token');
    const token = input.value.trim();
    const err = $('login-error');
    if (!token) return;
    const button = event.target.querySelector('button');
    button.disabled = true;
    try {
      const res = await fetch('/api/routes', {
        headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
      });
      if (res.status === 401) {
        err.textContent = 'Wrong token: the gateway refused it (401). Check admin.token in its config and try again.';
        err.hidden = false;
        input.select();
        return;
      }
      if (!res.ok) {
        err.textContent = 'The gateway answered ' + res.status + ' ' + res.statusText + ': try again.';
        err.hidden = false;
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      input.value = '';
      openConsole();
    } catch (e) {
      err.textContent = 'The gateway did not answer (' + e.message + ').';
      err.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  function openConsole() {
    $('login').hidden = true;
    $('nav').hidden = false;
    $('forget').hidden = !sessionStorage.getItem(TOKEN_KEY);
    route();
  }

  async function start() {
    $('login-form').addEventListener('submit', login);
    $('forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('Token forgotten. Enter it again to go on.');
    });
    window.addEventListener('hashchange', () => {
      if (location.hash.startsWith('#/') && $('login').hidden) route();
    });
    // Without a stored token the first call goes without one: a gateway with no admin.token
    // (loopback only) opens at once, one with a token answers 401 and the prompt shows.
    try {
      await api('GET', '/api/routes');
      openConsole();
    } catch (e) {
      if (e.status !== 401) {
        openConsole();
        notice(e);
      }
    }
  }

  // --- pages --------------------------------------------------------------------------------

  let generation = 0;
  let timer = null;

  function stopTimers() {
    generation += 1;
    if (timer) clearTimeout(timer);
    timer = null;
  }

  /** Runs `refresh` now and again every `every` ms while this page is shown. */
  function every(ms, gen, refresh) {
    const tick = async () => {
      if (gen !== generation) return;
      await refresh();
      if (gen === generation) timer = setTimeout(tick, ms);
    };
    return tick();
  }

  function route() {
    stopTimers();
    notice(null);
    const hash = location.hash.startsWith('#/') ? location.hash.slice(2) : 'events';
    const [path, query] = hash.split('?');
    const parts = path.split('/').filter(Boolean);
    const params = new URLSearchParams(query || '');
    const page = parts[0] || 'events';
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const main = clear($('main'));
    const gen = generation;
    let view;
    if (page === 'events' && parts[1]) view = eventPage(main, decodeURIComponent(parts[1]), gen);
    else if (page === 'routes') view = routesPage(main, gen);
    else if (page === 'dead') view = deadPage(main, params, gen);
    else view = eventsPage(main, gen);
    document.title = (document.querySelector('main h1') || {}).textContent + ' - hookgate console';
    return view;
  }

  let routeNames = [];

  async function loadRoutes() {
    const data = await api('GET', '/api/routes');
    routeNames = (data.routes || []).map((r) => r.name);
    return data.routes || [];
  }

  function sendHint() {
    const name = routeNames[0] || 'NAME';
    return h('code', {}, 'hookgate send -c config.yaml --route ' + name + ' body.json');
  }

  // Events ------------------------------------------------------------------------------------

  const filters = { route: '', outcome: '', reason: '', status: '', since: '', q: '' };
  let eventsLimit = 50;
  let live = true;

  function eventsQuery() {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) p.set(k, v);
    p.set('limit', String(eventsLimit));
    return p.toString();
  }

  function filtersForm(onChange) {
    const field = (label, id, control, cls) => h('div', { class: cls }, h('label', { for: id }, label), control);
    const select = (id, key, options) => {
      const s = h('select', { id, onchange: () => { filters[key] = s.value; onChange(); } },
        options.map(([value, text]) => h('option', { value, selected: filters[key] === value }, text)));
      return s;
    };
    const routeSel = select('f-route', 'route', [['', 'any route']].concat(routeNames.map((n) => [n, n])));
    const outcomeSel = select('f-outcome', 'outcome', [['', 'any outcome']].concat(OUTCOMES.map((o) => [o, o])));
    const sinceSel = select('f-since', 'since', SINCE);
    const reason = h('input', { id: 'f-reason', type: 'text', value: filters.reason, placeholder: 'mismatch', list: 'reasons', spellcheck: 'false' });
    const status = h('input', { id: 'f-status', type: 'number', min: 100, max: 599, value: filters.status, placeholder: '401' });
    const q = h('input', { id: 'f-q', type: 'search', value: filters.q, placeholder: 'delivery id, dedup key or body text', spellcheck: 'false' });
    const liveBox = h('input', { id: 'f-live', type: 'checkbox', checked: live, onchange: () => { live = liveBox.checked; onChange(); } });
    const form = h('form', { class: 'filters', id: 'filters', role: 'search', 'aria-label': 'Filter events' },
      field('Route', 'f-route', routeSel),
      field('Outcome', 'f-outcome', outcomeSel),
      field('Reason', 'f-reason', reason),
      field('Status', 'f-status', status),
      field('Time', 'f-since', sinceSel),
      field('Text', 'f-q', q, 'wide'),
      h('datalist', { id: 'reasons' }, Object.keys(REASONS).map((r) => h('option', { value: r }))),
      h('div', { class: 'actions' },
        h('button', { type: 'submit' }, 'Apply'),
        h('button', { type: 'button', class: 'secondary', id: 'f-clear', onclick: () => {
          for (const k of Object.keys(filters)) filters[k] = '';
          eventsLimit = 50;
          route();
        } }, 'Clear'),
        h('label', { class: 'check', for: 'f-live' }, liveBox, 'Live')));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      filters.reason = reason.value.trim();
      filters.status = status.value.trim();
      filters.q = q.value.trim();
      onChange();
    });
    return form;
  }

  async function eventsPage(main, gen) {
    const heading = h('h1', {}, 'Events');
    const statusLine = h('p', { class: 'status-line', id: 'events-status', 'aria-live': 'polite' }, 'Loading...');
    const list = h('div', { id: 'events-list' });
    append(main, heading);
    try {
      await loadRoutes();
    } catch (e) {
      notice(e);
      if (e.status === 401) return;
    }
    if (gen !== generation) return;
    let last = '';
    const refresh = async () => {
      let data;
      try {
        data = await api('GET', '/api/events?' + eventsQuery());
        notice(null);
      } catch (e) {
        if (gen === generation) notice(e);
        return;
      }
      if (gen !== generation) return;
      const events = data.events || [];
      replaceContent(statusLine, events.length + (events.length === 1 ? ' event' : ' events') + ', newest first; ' +
        (live ? 'refreshing every ' + EVENTS_EVERY_MS / 1000 + ' s' : 'live refresh off') + ' (updated ' + new Date().toLocaleTimeString() + ')');
      const key = JSON.stringify(events.map((e) => [e.id, e.outcome, e.state, e.attempts])) + Boolean(data.next);
      if (key === last) return;
      last = key;
      replaceContent(list, eventsTable(events, data.next));
    };
    const onChange = () => {
      last = '';
      stopTimers();
      gen = generation;
      if (live) every(EVENTS_EVERY_MS, gen, refresh);
      else refresh();
    };
    append(main, filtersForm(onChange), statusLine, list);
    document.title = 'Events - hookgate console';
    if (live) every(EVENTS_EVERY_MS, gen, refresh);
    else refresh();
  }

  function eventsTable(events, more) {
    const filtered = Object.values(filters).some(Boolean);
    if (!events.length) {
      return filtered
        ? h('div', { class: 'empty' }, h('p', {}, 'No events match these filters.'),
          h('p', {}, 'Widen the time, or ', h('a', { href: '#/events', id: 'empty-clear', onclick: (e) => {
            e.preventDefault();
            for (const k of Object.keys(filters)) filters[k] = '';
            route();
          } }, 'clear the filters'), '.'))
        : h('div', { class: 'empty', id: 'events-empty' },
          h('p', {}, h('strong', {}, 'No events yet.')),
          h('p', {}, 'Send one with ', sendHint(), ' (or point a provider at the gateway); it shows here within seconds.'));
    }
    const rows = events.map((e) => {
      const tr = h('tr', { class: 'clickable', 'data-id': e.id },
        cell('Time', eventLink(e.id, time(e.received_at))),
        cell('Route', e.route || h('span', { class: 'muted', title: e.path }, 'none')),
        cell('Provider', e.provider || '-'),
        cell('Outcome', [badge(e.outcome), e.state ? [' ', badge(e.state)] : null]),
        cell('Reason', e.reason || '', 'wrap'),
        cell('Status', String(e.status), 'num'),
        cell('Duration', ms(e.duration_ms), 'num'));
      tr.addEventListener('click', (ev) => {
        if (ev.target.closest('a')) return;
        location.hash = '#/events/' + encodeURIComponent(e.id);
      });
      return tr;
    });
    const table = h('table', { class: 'cards', id: 'events-table' },
      h('thead', {}, h('tr', {}, ['Time', 'Route', 'Provider', 'Outcome', 'Reason', 'Status', 'Duration'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows));
    const older = more && eventsLimit < 1000
      ? h('p', {}, h('button', { type: 'button', class: 'secondary', id: 'events-more', onclick: () => {
        eventsLimit = Math.min(1000, eventsLimit + 50);
        route();
      } }, 'Show older events'))
      : null;
    return [h('div', { class: 'table-wrap' }, table), older];
  }

  // Event detail ---------------------------------------------------------------------------

  function decodeBody(b64) {
    const raw = atob(b64);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    return { bytes, text: new TextDecoder('utf-8', { fatal: false }).decode(bytes) };
  }

  async function eventPage(main, id, gen) {
    append(main, h('p', {}, h('a', { href: '#/events' }, '\u2190 Events')), h('h1', {}, 'Event'));
    let e;
    try {
      e = await api('GET', '/api/events/' + encodeURIComponent(id));
    } catch (err) {
      if (gen !== generation) return;
      if (err.status === 404) {
        append(main, h('div', { class: 'empty' }, h('p', {}, 'No event with id ', h('code', {}, id), '.'),
          h('p', {}, 'The journal keeps journal.max_events events for journal.max_age, in memory: it may have been dropped, or the gateway restarted.')));
      } else notice(err);
      return;
    }
    if (gen !== generation) return;
    clear(main);
    const request = e.method + ' ' + e.path + (e.query ? '?' + e.query : '');
    append(main,
      h('p', {}, h('a', { href: '#/events' }, '\u2190 Events')),
      h('h1', {}, 'Event ', h('span', { class: 'mono' }, e.id)),
      h('p', { class: 'toolbar', id: 'event-summary' }, badge(e.outcome), e.state ? badge(e.state) : null,
        h('span', {}, String(e.status)), e.reason ? h('span', { class: 'wrap' }, e.reason + (REASONS[e.reason] ? ': ' + REASONS[e.reason] : '')) : null));

    if (e.diagnosis) {
      append(main, h('section', { class: 'panel diagnosis', id: 'diagnosis', 'aria-labelledby': 'diagnosis-h' },
        h('h2', { id: 'diagnosis-h' }, 'Why the signature failed'),
        h('p', {}, e.diagnosis_advice ? sentence(e.diagnosis_advice) : 'The signature doctor reported this diagnosis; see docs/signature-doctor.md.'),
        h('p', { class: 'muted' }, 'Diagnosis: ', h('code', {}, e.diagnosis))));
    }

    const replayable = Boolean(e.key_id && e.route && e.body_b64 && !e.body_truncated);
    const result = h('div', { id: 'replay-result', 'aria-live': 'polite' });
    const replay = h('button', { type: 'button', id: 'replay', disabled: !replayable }, 'Replay');
    replay.addEventListener('click', async () => {
      replay.disabled = true;
      clear(result);
      try {
        const r = await api('POST', '/api/events/' + encodeURIComponent(e.id) + '/replay', {});
        replaceContent(result, h('p', { class: 'flash' }, 'Sent again as event ', eventLink(r.id), ': ', r.outcome, '.'));
      } catch (err) {
        replaceContent(result, h('p', { class: 'flash bad' }, err.message));
      } finally {
        replay.disabled = false;
      }
    });
    const why = replayable ? 'Sends the stored request again through the route\'s delivery (not verified again).'
      : !e.key_id || !e.route ? 'Only verified requests can be replayed.'
        : 'The body was not kept whole (journal.capture_body, journal.max_body_bytes): it cannot be sent again.';
    append(main, h('div', { class: 'toolbar' }, replay, h('span', { class: 'muted' }, why)), result);
    if (e.state === 'dead') {
      append(main, h('p', { class: 'muted' }, 'This event is a dead letter: Replay sends a copy; ',
        h('a', { href: '#/dead?route=' + encodeURIComponent(e.route || '') }, 'Dead letters'),
        ' puts it back in its queue instead.'));
    }

    const fact = (k, v) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? h('span', { class: 'muted' }, '-') : v)];
    const facts = h('dl', { class: 'facts', id: 'event-facts' },
      fact('Received', time(e.received_at, true)),
      fact('Route', e.route),
      fact('Request', h('span', { class: 'mono wrap' }, request)),
      fact('Client', e.client_ip),
      fact('Provider', e.provider),
      fact('Outcome', e.outcome),
      fact('Reason', e.reason),
      fact('Status', String(e.status)),
      fact('Duration', ms(e.duration_ms)),
      fact('Key', e.key_id),
      fact('Delivery id', e.delivery_id),
      fact('Dedup key', e.dedup_key),
      fact('State', e.state),
      fact('Replay of', e.replay_of ? eventLink(e.replay_of) : null));

    const attempts = e.attempts || [];
    const timeline = attempts.length
      ? h('ol', { class: 'timeline', id: 'attempts' }, attempts.map((a, i) => h('li', { class: a.error ? 'bad' : 'ok' },
        h('strong', {}, 'Attempt ' + (i + 1)), ' ', time(a.at), ': ',
        a.status ? 'answered ' + a.status : 'no answer', ' in ', ms(a.duration_ms),
        a.error ? h('div', { class: 'wrap' }, a.error) : null)))
      : h('p', { class: 'muted', id: 'attempts' }, e.state
        ? 'No attempt yet: ' + (e.state === 'paused' ? 'the route is paused.' : 'the first is due.')
        : 'Delivered (or refused) while the sender waited: no background attempts.');

    append(main, h('div', { class: 'detail-grid' },
      h('section', { class: 'panel' }, h('h2', {}, 'Request'), facts),
      h('section', { class: 'panel' }, h('h2', {}, 'Delivery attempts'), timeline)));

    // A queued event still being delivered: shown again when an attempt or its state changes.
    if (e.state === 'pending') {
      every(ROUTES_EVERY_MS, gen, async () => {
        try {
          const now = await api('GET', '/api/events/' + encodeURIComponent(e.id));
          if (gen === generation && (now.state !== e.state || (now.attempts || []).length !== attempts.length)) route();
        } catch (err) {
          if (gen === generation) notice(err);
        }
      });
    }

    const headers = e.headers || [];
    append(main, h('h2', {}, 'Headers'), headers.length
      ? h('div', { class: 'table-wrap' }, h('table', { id: 'headers' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Value'))),
        h('tbody', {}, headers.map(([name, value]) => h('tr', {},
          h('td', { class: 'mono wrap' }, name),
          h('td', { class: 'mono wrap' + (value === '[redacted]' ? ' redacted' : '') }, value))))))
      : h('p', { class: 'muted' }, 'No headers kept.'));

    append(main, h('h2', {}, 'Body'));
    if (!e.body_b64) {
      append(main, h('p', { class: 'muted' }, 'The body was not kept (journal.capture_body: false, or refused before it was read).'));
      return;
    }
    const body = decodeBody(e.body_b64);
    let pretty = null;
    try {
      pretty = JSON.stringify(JSON.parse(body.text), null, 2);
    } catch (err) {
      pretty = null;
    }
    const pre = h('pre', { class: 'body', id: 'body', tabindex: 0 }, pretty !== null ? pretty : body.text);
    const note = body.bytes.length + ' bytes' + (e.body_truncated ? ', cut at journal.max_body_bytes' : '') +
      (pretty !== null ? '; JSON, shown indented' : '');
    const toggle = pretty === null ? null : h('button', { type: 'button', class: 'secondary', id: 'body-raw', 'aria-pressed': 'false' }, 'Show as received');
    if (toggle) {
      toggle.addEventListener('click', () => {
        const raw = toggle.getAttribute('aria-pressed') !== 'true';
        pre.textContent = raw ? body.text : pretty;
        toggle.setAttribute('aria-pressed', String(raw));
        toggle.textContent = raw ? 'Show indented' : 'Show as received';
      });
    }
    append(main, h('div', { class: 'toolbar' }, h('span', { class: 'muted' }, note), toggle), pre);
  }

  // Routes -----------------------------------------------------------------------------------

  const CHART_OUTCOMES = ['forwarded', 'queued', 'duplicate', 'answered', 'failed', 'rejected'];

  function chart(route) {
    const W = 300;
    const H = 70;
    const minutes = new Array(60).fill(null).map(() => ({}));
    for (const p of route.per_minute || []) {
      if (p.minute >= 0 && p.minute < 60) minutes[p.minute][p.outcome] = (minutes[p.minute][p.outcome] || 0) + p.count;
    }
    const totals = minutes.map((m) => Object.values(m).reduce((a, b) => a + b, 0));
    const max = Math.max(1, ...totals);
    const bar = W / 60;
    const total = totals.reduce((a, b) => a + b, 0);
    const label = 'Outcomes per minute over the last hour for ' + route.name + ': ' + total + ' requests, at most ' + Math.max(...totals) + ' in a minute';
    const root = svg('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + (H + 12), role: 'img', 'aria-label': label });
    root.appendChild(svg('title', {}, label));
    minutes.forEach((m, i) => {
      let y = H;
      for (const o of CHART_OUTCOMES.concat(Object.keys(m).filter((k) => !CHART_OUTCOMES.includes(k)))) {
        const n = m[o];
        if (!n) continue;
        const hgt = Math.max(1, (n / max) * (H - 4));
        y -= hgt;
        const rect = svg('rect', { x: (i * bar + 0.5).toFixed(2), y: y.toFixed(2), width: (bar - 1).toFixed(2), height: hgt.toFixed(2),
          class: 'c-' + (CHART_OUTCOMES.includes(o) ? o : 'other') });
        rect.appendChild(svg('title', {}, (60 - i) + ' min ago: ' + n + ' ' + o));
        root.appendChild(rect);
      }
    });
    root.appendChild(svg('line', { class: 'axis', x1: 0, y1: H + 0.5, x2: W, y2: H + 0.5 }));
    root.appendChild(svg('text', { x: 0, y: H + 10 }, '60 min ago'));
    root.appendChild(svg('text', { x: W, y: H + 10, 'text-anchor': 'end' }, 'now'));
    root.appendChild(svg('text', { x: 2, y: 9 }, String(max) + '/min'));
    const seen = CHART_OUTCOMES.filter((o) => minutes.some((m) => m[o]));
    const legend = h('div', { class: 'legend' }, seen.map((o) => h('span', { class: 'c-' + o }, o)));
    return [root, total ? legend : h('p', { class: 'muted' }, 'No requests in the last hour.')];
  }

  function counts(map) {
    const entries = Object.entries(map || {});
    if (!entries.length) return h('span', { class: 'muted' }, 'none');
    return entries.map(([o, n], i) => [i ? ', ' : '', n + ' ' + o]);
  }

  function routeCard(r, reload) {
    const queued = r.mode === 'queue' || r.mode === 'hybrid';
    const result = h('span', { 'aria-live': 'polite' });
    let control;
    if (queued) {
      control = h('button', { type: 'button', id: 'pause-' + r.name, class: r.paused ? '' : 'secondary', 'data-route': r.name },
        r.paused ? 'Resume deliveries' : 'Pause deliveries');
      control.addEventListener('click', async () => {
        control.disabled = true;
        try {
          await api('POST', '/api/routes/' + encodeURIComponent(r.name) + (r.paused ? '/resume' : '/pause'), {});
          await reload();
        } catch (err) {
          replaceContent(result, h('span', { class: 'error' }, err.message));
          control.disabled = false;
        }
      });
    } else {
      control = h('span', { class: 'muted' }, 'A sync route delivers while the sender waits: nothing to pause.');
    }
    const deadLink = r.dead_letters > 0
      ? h('a', { href: '#/dead?route=' + encodeURIComponent(r.name) }, String(r.dead_letters))
      : String(r.dead_letters || 0);
    return h('section', { class: 'panel route-card', 'data-route': r.name, 'aria-labelledby': 'route-h-' + r.name },
      h('h2', { id: 'route-h-' + r.name }, r.name, h('span', { class: 'badge o-other' }, r.mode),
        r.paused ? h('span', { class: 'badge o-paused', id: 'paused-' + r.name }, 'paused') : null),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Queue depth'), h('dd', { class: 'depth' }, queued ? String(r.queue_depth) : h('span', { class: 'muted' }, 'no queue (sync)')),
        h('dt', {}, 'Oldest queued'), h('dd', {}, queued && r.queue_depth ? age(r.oldest_queued_age_seconds) : '-'),
        h('dt', {}, 'Dead letters'), h('dd', {}, deadLink),
        h('dt', {}, 'Last 5 min'), h('dd', {}, counts(r.last_5m)),
        h('dt', {}, 'Last hour'), h('dd', {}, counts(r.last_1h))),
      chart(r),
      h('div', { class: 'toolbar' }, control, result));
  }

  async function routesPage(main, gen) {
    const list = h('div', { class: 'routes', id: 'routes' });
    const cards = new Map();
    const statusLine = h('p', { class: 'status-line', 'aria-live': 'polite' }, 'Loading...');
    append(main, h('h1', {}, 'Routes'), statusLine, list);
    const refresh = async () => {
      let routes;
      try {
        routes = await loadRoutes();
        notice(null);
      } catch (e) {
        if (gen === generation) notice(e);
        return;
      }
      if (gen !== generation) return;
      replaceContent(statusLine, routes.length + (routes.length === 1 ? ' route' : ' routes') + '; refreshing every ' + ROUTES_EVERY_MS / 1000 + ' s (updated ' + new Date().toLocaleTimeString() + ')');
      if (!routes.length) {
        cards.clear();
        replaceContent(list, h('div', { class: 'empty' }, h('p', {}, 'No routes are configured: add one under routes: in the config, then reload the gateway (SIGHUP).')));
        return;
      }
      // Only a route whose numbers changed is drawn again, so controls stay put under the pointer.
      const nodes = routes.map((r) => {
        const key = JSON.stringify(r);
        const known = cards.get(r.name);
        if (known && known.key === key) return known.node;
        const node = routeCard(r, refresh);
        cards.set(r.name, { key, node });
        return node;
      });
      if (nodes.every((n, i) => list.children[i] === n) && list.children.length === nodes.length) return;
      replaceContent(list, nodes);
    };
    await every(ROUTES_EVERY_MS, gen, refresh);
  }

  // Dead letters -----------------------------------------------------------------------------

  async function deadPage(main, params, gen) {
    let routeFilter = params.get('route') || '';
    append(main, h('h1', {}, 'Dead letters'),
      h('p', { class: 'muted' }, 'Queued events whose delivery gave up (delivery.max_attempts, or past the retry window). Replaying puts them back in their route\'s queue, due now.'));
    try {
      await loadRoutes();
    } catch (e) {
      notice(e);
      if (e.status === 401) return;
    }
    if (gen !== generation) return;
    const routeSel = h('select', { id: 'd-route' }, [['', 'every route']].concat(routeNames.map((n) => [n, n]))
      .map(([value, text]) => h('option', { value, selected: routeFilter === value }, text)));
    const preview = h('button', { type: 'button', id: 'd-preview' }, 'Preview replay');
    const outcome = h('div', { id: 'd-outcome', 'aria-live': 'polite' });
    const list = h('div', { id: 'dead-list' });
    const statusLine = h('p', { class: 'status-line', 'aria-live': 'polite' }, 'Loading...');
    const selection = () => (routeFilter ? { state: 'dead', route: routeFilter } : { state: 'dead' });

    preview.addEventListener('click', async () => {
      clear(outcome);
      let n;
      try {
        n = (await api('POST', '/api/replay', Object.assign({ dry_run: true }, selection()))).matched;
      } catch (err) {
        replaceContent(outcome, h('p', { class: 'flash bad' }, err.message));
        return;
      }
      if (!n) {
        replaceContent(outcome, h('p', { class: 'flash' }, 'Nothing to replay: no dead letter matches.'));
        return;
      }
      const confirm = h('button', { type: 'button', id: 'd-confirm', class: 'danger' }, 'Replay ' + n + (n === 1 ? ' dead letter' : ' dead letters'));
      const cancel = h('button', { type: 'button', class: 'secondary', id: 'd-cancel' }, 'Cancel');
      cancel.addEventListener('click', () => { clear(outcome); preview.focus(); });
      confirm.addEventListener('click', async () => {
        confirm.disabled = true;
        try {
          const r = await api('POST', '/api/replay', selection());
          replaceContent(outcome, h('p', { class: 'flash', id: 'd-done' }, 'Put ' + r.replayed + (r.replayed === 1 ? ' dead letter' : ' dead letters') + ' back in the queue.'));
          await refresh();
        } catch (err) {
          replaceContent(outcome, h('p', { class: 'flash bad' }, err.message));
        }
      });
      replaceContent(outcome, h('div', { class: 'flash' },
        h('p', { id: 'd-count' }, n + (n === 1 ? ' dead letter' : ' dead letters') + (routeFilter ? ' of route ' + routeFilter : '') + ' will be sent again.'),
        h('div', { class: 'toolbar' }, confirm, cancel)));
      confirm.focus();
    });
    routeSel.addEventListener('change', () => {
      routeFilter = routeSel.value;
      clear(outcome);
      history.replaceState(null, '', '#/dead' + (routeFilter ? '?route=' + encodeURIComponent(routeFilter) : ''));
      refresh();
    });

    append(main, h('section', { class: 'panel bulk', 'aria-label': 'Bulk replay' },
      h('div', { class: 'toolbar' }, h('div', {}, h('label', { for: 'd-route' }, 'Route'), routeSel), preview), outcome),
    statusLine, list);

    let last = '';
    const refresh = async () => {
      const p = new URLSearchParams({ state: 'dead', limit: '1000' });
      if (routeFilter) p.set('route', routeFilter);
      let data;
      try {
        data = await api('GET', '/api/events?' + p.toString());
        notice(null);
      } catch (e) {
        if (gen === generation) notice(e);
        return;
      }
      if (gen !== generation) return;
      const events = data.events || [];
      replaceContent(statusLine, events.length + (events.length === 1 ? ' dead letter' : ' dead letters') + ' in the journal; refreshing every ' + ROUTES_EVERY_MS / 1000 + ' s');
      const key = JSON.stringify(events.map((e) => [e.id, e.attempts]));
      if (key === last) return;
      last = key;
      if (!events.length) {
        replaceContent(list, h('div', { class: 'empty', id: 'dead-empty' },
          h('p', {}, h('strong', {}, 'No dead letters.')),
          h('p', {}, 'A queued event becomes one when its backend keeps failing past delivery.max_attempts. ',
            'The Routes page shows each queue\'s depth; ', h('code', {}, 'hookgate dlq list'), ' lists dead letters kept from before a restart.')));
        return;
      }
      replaceContent(list, h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'dead-table' },
        h('thead', {}, h('tr', {}, ['Received', 'Route', 'Provider', 'Attempts', 'Last error', 'Dedup key'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, events.map((e) => h('tr', { 'data-id': e.id },
          cell('Received', eventLink(e.id, time(e.received_at))),
          cell('Route', e.route || '-'),
          cell('Provider', e.provider || '-'),
          cell('Attempts', String(e.attempts), 'num'),
          cell('Last error', e.last_error || '-', 'wrap'),
          cell('Dedup key', e.dedup_key || '-', 'wrap mono')))))));
    };
    await every(ROUTES_EVERY_MS, gen, refresh);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}());
