// mcobs status page. Data comes from this hub only:
//   /api/v1/status/stream  (server-sent `status` snapshots: clusters and services)
//   /api/v1/events, /api/v1/events/stream  (recent decisions)
// Text from the data only ever reaches the page through textContent and
// setAttribute, never parsed as HTML, so nothing in it is markup.

const STATUS_STREAM = "/api/v1/status/stream";
const EVENTS_PAGE = "/api/v1/events?limit=50";
const EVENTS_STREAM = "/api/v1/events/stream";
const MAX_EVENTS = 50;
const REOPEN_MS = 3000;

// Worst first; every state has a symbol and a word, never a colour alone.
const STATES = {
  down: { icon: "✕", rank: 0 },
  unknown: { icon: "?", rank: 1 },
  degraded: { icon: "▲", rank: 2 },
  drained: { icon: "■", rank: 3 },
  healthy: { icon: "●", rank: 4 },
};

const view = {
  status: null, // the last `status` snapshot
  offset: 0, // server clock minus this browser's clock, seconds
  statusLive: false,
  eventsLive: false,
  eventsStarted: false,
  eventsError: "",
  events: new Map(), // id -> event JSON
  open: new Set(), // services whose "why" is expanded
};

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const serverNow = () => Date.now() / 1000 + view.offset;
const stateOf = (state) => (state in STATES ? state : "unknown");
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function badge(state) {
  const known = stateOf(state);
  return el(
    "span",
    { class: "badge", data: { state: known } },
    el("span", { "aria-hidden": "true" }, STATES[known].icon),
    ` ${state}`,
  );
}

function ago(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function clock(date) {
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour12: false });
  return today ? time : `${date.toLocaleDateString()} ${time}`;
}

function reasonList(reasons) {
  if (!reasons || reasons.length === 0) return el("span", { class: "muted" }, "—");
  return el("ul", { class: "reasons" }, reasons.map((r) => el("li", {}, r)));
}

// -- summary --------------------------------------------------------------------

function renderSummary(st) {
  $("zone").textContent = st.zone ? `zone ${st.zone}` : "";
  const counts = { healthy: 0, degraded: 0, down: 0, drained: 0, unknown: 0 };
  for (const c of st.clusters) counts[stateOf(c.answer_health.state)] += 1;
  const total = st.clusters.length;
  const lastResort = st.services.filter((s) => s.last_resort).length;

  let overall = "healthy";
  let headline = `All ${plural(total, "cluster")} healthy`;
  if (!st.ready) {
    overall = "unknown";
    headline = "Waiting for the first catalog snapshot";
  } else if (total === 0) {
    overall = "unknown";
    headline = "No cluster has reported yet";
  } else {
    const problems = [];
    if (counts.down) problems.push(`${counts.down} of ${plural(total, "cluster")} down`);
    if (counts.unknown) problems.push(`${counts.unknown} unknown`);
    if (counts.degraded) problems.push(`${counts.degraded} degraded`);
    if (counts.drained) problems.push(`${counts.drained} drained`);
    if (lastResort) problems.push(`${plural(lastResort, "service")} in last resort`);
    if (problems.length) {
      overall = counts.down || counts.unknown || lastResort ? "down" : "degraded";
      headline = problems.join(" · ");
    }
  }
  $("summary").dataset.state = overall;
  $("headline").replaceChildren(
    el("span", { "aria-hidden": "true", class: "big-icon" }, STATES[overall].icon),
    ` ${headline}`,
  );
  document.title = `${overall === "healthy" ? "OK" : headline} — mcobs status`;

  const items = Object.entries(counts).map(([state, n]) =>
    el(
      "li",
      { class: "count", data: { state, zero: n === 0 ? "yes" : "no" } },
      el("span", { "aria-hidden": "true" }, STATES[state].icon),
      el("b", {}, String(n)),
      ` ${state}`,
    ),
  );
  items.push(
    el("li", { class: "count sep" }, el("b", {}, String(st.services.length)), " services"),
    el(
      "li",
      { class: "count", data: { state: "down", zero: lastResort === 0 ? "yes" : "no" } },
      el("b", {}, String(lastResort)),
      " in last resort",
    ),
  );
  $("counts").replaceChildren(...items);
}

// -- clusters -------------------------------------------------------------------

function clusterRow(c, stale) {
  const health = c.answer_health;
  const state = stateOf(health.state);
  const age = serverNow() - c.observed_at;
  return el(
    "tr",
    { data: { cluster: c.name, state } },
    el("th", { scope: "row" }, c.name),
    el("td", { class: "nowrap" }, c.region),
    el("td", { class: "state" }, badge(health.state)),
    el("td", { class: "num" }, health.score.toFixed(2)),
    el("td", {}, reasonList(health.reasons)),
    el(
      "td",
      { class: "num" },
      el(
        "time",
        {
          class: age > stale ? "age stale" : "age",
          data: { observed: String(c.observed_at) },
          datetime: new Date(c.observed_at * 1000).toISOString(),
        },
        ago(age),
      ),
    ),
  );
}

function renderClusters(st) {
  const clusters = [...st.clusters].sort(
    (a, b) =>
      STATES[stateOf(a.answer_health.state)].rank - STATES[stateOf(b.answer_health.state)].rank ||
      a.name.localeCompare(b.name),
  );
  const rows = clusters.map((c) => clusterRow(c, st.stale_after));
  if (rows.length === 0) rows.push(emptyRow(6, "No cluster has reported yet."));
  document.querySelector("#clusters tbody").replaceChildren(...rows);
}

function emptyRow(span, text) {
  return el("tr", {}, el("td", { colspan: span, class: "muted" }, text));
}

function tickAges() {
  const stale = view.status ? view.status.stale_after : Infinity;
  for (const node of document.querySelectorAll("time.age")) {
    const age = serverNow() - Number(node.dataset.observed);
    node.textContent = ago(age);
    node.classList.toggle("stale", age > stale);
  }
}

// -- services -------------------------------------------------------------------

function serviceRows(s, index) {
  const key = `${s.namespace}/${s.name}`;
  const whyId = `why-${index}`;
  const expanded = view.open.has(key);
  const chips = s.clusters.map((c) =>
    el(
      "li",
      {
        class: "chip",
        data: { in: c.in_answer ? "yes" : "no", cluster: c.cluster },
        title: `${c.cluster}: ${c.reason}`,
      },
      el("span", { "aria-hidden": "true" }, c.in_answer ? "✓" : "✕"),
      ` ${c.cluster}`,
      el("span", { class: "sr-only" }, c.in_answer ? " (answering)" : " (left out)"),
    ),
  );
  const why = el(
    "tr",
    { class: "why", id: whyId, hidden: !expanded },
    el(
      "td",
      { colspan: 5 },
      el(
        "ul",
        { class: "reasons" },
        s.clusters.map((c) =>
          el(
            "li",
            { data: { in: c.in_answer ? "yes" : "no" } },
            el("b", {}, c.cluster),
            c.in_answer ? " answers: " : " left out: ",
            c.reason,
          ),
        ),
        s.problems.map((p) => el("li", { class: "problem" }, `problem: ${p}`)),
      ),
    ),
  );
  const toggle = el(
    "button",
    { type: "button", class: "why-toggle", "aria-expanded": String(expanded), "aria-controls": whyId },
    "reasons",
  );
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    why.hidden = !open;
    if (open) view.open.add(key);
    else view.open.delete(key);
  });
  const row = el(
    "tr",
    { data: { service: key, lastResort: s.last_resort ? "yes" : "no" } },
    el(
      "th",
      { scope: "row" },
      el("span", { class: "svc" }, s.name),
      el("span", { class: "muted" }, ` ${s.namespace}`),
      el("div", { class: "dns" }, s.dns_name),
    ),
    el("td", {}, s.strategy ?? "—"),
    el("td", {}, chips.length ? el("ul", { class: "chips" }, chips) : "—"),
    el(
      "td",
      {},
      s.last_resort
        ? el(
            "span",
            { class: "badge", data: { state: "down" } },
            el("span", { "aria-hidden": "true" }, "⚠"),
            " last resort",
          )
        : el("span", { class: "muted" }, "no"),
    ),
    el("td", {}, toggle),
  );
  return [row, why];
}

function renderServices(st) {
  const rows = [...st.services]
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
    .flatMap(serviceRows);
  if (rows.length === 0) rows.push(emptyRow(5, "No exported service yet."));
  document.querySelector("#services tbody").replaceChildren(...rows);
}

// -- events ---------------------------------------------------------------------

function describe(event) {
  const d = event.data ?? {};
  const service = d.namespace && d.service ? `${d.namespace}/${d.service}` : null;
  const list = (xs) => (xs && xs.length ? xs.join(", ") : "none");
  switch (event.type) {
    case "cluster.state_changed":
      return {
        scope: d.cluster,
        what: `${d.from} → ${d.to}`,
        tone: d.to === "healthy" ? "good" : d.to === "degraded" ? "warn" : "bad",
        reasons: d.reasons,
      };
    case "service.failover": {
      const before = new Set(d.from ?? []);
      const after = new Set(d.to ?? []);
      const out = [...before].filter((c) => !after.has(c));
      const back = [...after].filter((c) => !before.has(c));
      return {
        scope: service,
        what: d.active
          ? `failed over: ${list(out)} out · answering ${list(d.to)}`
          : `recovered: ${list(back)} back · answering ${list(d.to)}`,
        tone: d.active ? "warn" : "good",
        reasons: d.reasons,
      };
    }
    case "service.last_resort":
      return {
        scope: service,
        what: d.active ? "last resort: answering every cluster" : "last resort ended",
        tone: d.active ? "bad" : "good",
        reasons: d.reasons,
      };
    case "override.drain":
      return {
        scope: service ? `${d.cluster}/${service}` : d.cluster,
        what: d.active ? "drained" : "drain ended",
        tone: d.active ? "info" : "good",
        reasons: d.reason ? [d.reason] : [],
      };
    default:
      return { scope: d.cluster ?? service ?? "", what: "", tone: "info", reasons: d.reasons };
  }
}

function eventItem(event) {
  const { scope, what, tone, reasons } = describe(event);
  const at = new Date(event.timestamp);
  return el(
    "li",
    { class: "event", data: { tone, type: event.type, id: event.id } },
    el(
      "div",
      { class: "event-head" },
      el("time", { datetime: event.timestamp, title: event.timestamp }, clock(at)),
      el("span", { class: "type" }, event.type),
    ),
    el("div", { class: "event-what" }, el("b", {}, scope ?? ""), what ? ` ${what}` : ""),
    reasons && reasons.length ? reasonList(reasons.slice(0, 5)) : null,
  );
}

function addEvent(event) {
  if (!event || typeof event.id !== "string") return;
  view.events.set(event.id, event);
}

function renderEvents() {
  // Event ids are ULIDs: they sort by time.
  const ids = [...view.events.keys()].sort().reverse();
  for (const stale of ids.slice(MAX_EVENTS)) view.events.delete(stale);
  const items = ids.slice(0, MAX_EVENTS).map((id) => eventItem(view.events.get(id)));
  $("events").replaceChildren(...items);
  let note = "";
  if (view.status && !view.status.events) note = "This hub keeps no event log.";
  else if (view.eventsError) note = view.eventsError;
  else if (items.length === 0 && view.eventsStarted) note = "No events yet: nothing has changed.";
  $("events-note").textContent = note;
}

async function loadEventPage() {
  try {
    const response = await fetch(EVENTS_PAGE, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    for (const event of body.events) addEvent(event);
    view.eventsError = "";
  } catch (error) {
    view.eventsError = `Events unavailable (${error.message}).`;
  }
  renderEvents();
}

function startEvents(types) {
  view.eventsStarted = true;
  const source = new EventSource(EVENTS_STREAM);
  const onEvent = (message) => {
    try {
      addEvent(JSON.parse(message.data));
    } catch {
      return;
    }
    renderEvents();
  };
  source.addEventListener("message", onEvent);
  for (const type of types) source.addEventListener(type, onEvent);
  // Open first, then read the page: nothing falls between the two (ids de-duplicate).
  source.addEventListener("open", () => {
    view.eventsLive = true;
    renderConnection();
    loadEventPage();
  });
  source.addEventListener("error", () => {
    view.eventsLive = false;
    renderConnection();
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => startEvents(types), REOPEN_MS);
    }
  });
}

// -- connection -----------------------------------------------------------------

function renderConnection() {
  const needEvents = view.status && view.status.events;
  const live = view.statusLive && (!needEvents || view.eventsLive);
  let state = "live";
  let text = "Live";
  if (!view.status && !view.statusLive) {
    state = "connecting";
    text = "Connecting…";
  } else if (!live) {
    state = "reconnecting";
    text = view.statusLive ? "Live · events reconnecting…" : "Reconnecting…";
  }
  $("conn").dataset.state = state;
  $("conn-text").textContent = text;
  $("main").classList.toggle("offline", !view.statusLive && view.status !== null);
}

function renderUpdated() {
  if (!view.status) return;
  const at = new Date(view.status.rendered_at * 1000);
  $("updated").textContent = `catalog v${view.status.catalog_version} · as of ${clock(at)}`;
}

function render() {
  const st = view.status;
  renderSummary(st);
  renderClusters(st);
  renderServices(st);
  renderUpdated();
  renderConnection();
  if (!st.events) renderEvents();
}

function startStatus() {
  const source = new EventSource(STATUS_STREAM);
  source.addEventListener("open", () => {
    view.statusLive = true;
    renderConnection();
  });
  source.addEventListener("status", (message) => {
    const st = JSON.parse(message.data);
    view.offset = st.now - Date.now() / 1000;
    view.status = st;
    view.statusLive = true;
    render();
    if (st.events && !view.eventsStarted) startEvents(st.events.types);
  });
  source.addEventListener("error", () => {
    view.statusLive = false;
    renderConnection();
    if (source.readyState === EventSource.CLOSED) {
      explainRefusal();
      setTimeout(startStatus, REOPEN_MS);
    }
  });
}

// EventSource hides why a server refused it: ask once more to show the status code.
async function explainRefusal() {
  const abort = new AbortController();
  try {
    const response = await fetch(STATUS_STREAM, { signal: abort.signal });
    abort.abort();
    if (response.status === 401 || response.status === 403) {
      $("headline").textContent =
        "This hub asks a token for reads (http.protect_reads): the status page cannot show them.";
      $("summary").dataset.state = "unknown";
    }
  } catch {
    // The hub is unreachable: the indicator already says "Reconnecting…".
  }
}

startStatus();
setInterval(tickAges, 1000);
