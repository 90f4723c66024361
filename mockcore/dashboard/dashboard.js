// mockcore dashboard: polls /_mock/ui/view every second and drives the fleet through /_mock/ui/call (lifecycle
// operations, sent by the server through each face's own HTTP code) and the control plane (scenarios, clock,
// reset). Everything it shows from the fleet goes in as text, never as HTML.
"use strict";

(() => {
  const POLL_MS = 1000;
  const TOKEN_HEADER = "X-Mock-Control-Token";
  const TOKEN_STORE = "mockcore-control-token";
  // The prefix the face is served below (a tenant's /t/<ID>/<face>; empty on `mockcore serve`): every request goes
  // there. The server writes it into the page.
  const BASE = document.querySelector('meta[name="mockcore-base"]')?.getAttribute("content") || "";
  const state = { view: null, token: null, busy: false, diagramLoaded: false, rendered: {}, timer: null };

  // Tokens and requests

  function readToken() {
    const match = /(?:^|[#&])token=([^&]*)/.exec(window.location.hash);
    if (match) {
      const token = decodeURIComponent(match[1]);
      window.sessionStorage.setItem(TOKEN_STORE, token);
      return token;
    }
    return window.sessionStorage.getItem(TOKEN_STORE);
  }

  async function api(method, path, body) {
    const headers = {};
    if (state.token) headers[TOKEN_HEADER] = state.token;
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(BASE + path, init);
    if (response.status === 401 || response.status === 403) {
      const text = await response.text();
      if (path.startsWith("/_mock/")) askForToken();
      throw new Error(`${response.status}: ${text}`);
    }
    return response;
  }

  function askForToken() {
    const form = document.getElementById("token-form");
    form.hidden = false;
  }

  // Small DOM helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("data-")) node.setAttribute(name, value);
      else node[name] = value;
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function setText(root, selector, text) {
    const node = root.querySelector(selector);
    if (node.textContent !== text) node.textContent = text;
  }

  function shortTime(iso) {
    return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC") : "";
  }

  function statusClass(status) {
    return `status-${status === null ? 0 : String(status)[0]}`;
  }

  function pretty(body) {
    if (body === null || body === undefined) return "";
    return typeof body === "string" ? body : JSON.stringify(body, null, 2);
  }

  // Rendering

  function render(view) {
    state.view = view;
    renderClock(view.clock);
    renderKeySelect(view.activation_server.keys);
    renderScenarios(view.scenarios);
    renderInstances(view);
    renderKeys(view.activation_server);
    renderJournal(view.journal.entries);
    highlightDiagram(view.instances);
  }

  function renderClock(clock) {
    setText(document, "#clock-now", shortTime(clock.now));
    setText(document, "#clock-frozen", clock.frozen ? "frozen" : "running");
    setText(document, "#freeze-button", clock.frozen ? "Unfreeze" : "Freeze");
  }

  function renderKeySelect(keys) {
    const select = document.getElementById("key-select");
    const signature = keys.map((k) => k.key).join(",");
    if (state.rendered.keySelect === signature) return;
    state.rendered.keySelect = signature;
    select.replaceChildren(...keys.map((k) => el("option", { value: k.key, text: k.key })));
  }

  function renderScenarios(scenarios) {
    const holder = document.getElementById("scenarios");
    const signature = Object.keys(scenarios).join(",");
    if (state.rendered.scenarios === signature) return;
    state.rendered.scenarios = signature;
    holder.replaceChildren(
      ...Object.entries(scenarios).map(([name, description]) =>
        el("button", { type: "button", "data-scenario": name, title: description, text: name }),
      ),
    );
  }

  function instanceCard(view, inst) {
    const card = el("article", { class: "instance", id: `instance-${inst.name}`, "data-instance": inst.name });
    card.append(
      el("h3", {}, el("span", { class: "name", text: inst.name }), el("span", { class: "url", text: inst.url })),
    );
    const fields = el("dl");
    for (const [label, cls] of [
      ["licence state", "field-state"],
      ["deployment", "field-deployment"],
      ["key", "field-key"],
      ["days left", "field-days"],
      ["backup", "field-backup"],
      ["detail", "field-detail"],
    ]) {
      fields.append(el("dt", { text: label }), el("dd", { class: cls }));
    }
    card.append(fields);
    const ops = el("div", { class: "ops" });
    for (const op of view.operations.filter((o) => o.face === "instance")) {
      if (op.needs.includes("production")) {
        if (!ops.querySelector(".production-select")) {
          const select = el("select", { class: "production-select", "aria-label": `production for ${inst.name}` });
          for (const other of view.instances) {
            if (other.name !== inst.name) select.append(el("option", { value: other.name, text: other.name }));
          }
          ops.append(el("label", { text: "backup of " }, select));
        }
      }
      ops.append(el("button", { type: "button", "data-op": op.name, title: op.description, text: op.label }));
    }
    card.append(ops);
    return card;
  }

  function renderInstances(view) {
    const holder = document.getElementById("instances");
    const signature = view.instances.map((i) => i.name).join(",");
    if (state.rendered.instances !== signature) {
      state.rendered.instances = signature;
      holder.replaceChildren(...view.instances.map((inst) => instanceCard(view, inst)));
    }
    for (const inst of view.instances) {
      const card = document.getElementById(`instance-${inst.name}`);
      card.className = `instance state-${inst.state}`;
      const badge = card.querySelector(".field-state");
      setText(card, ".field-state", inst.state);
      badge.className = `field-state badge ${inst.expired ? "expired" : inst.state}`;
      setText(card, ".field-deployment", inst.deployment);
      setText(card, ".field-key", inst.key || "—");
      setText(card, ".field-days", inst.days_left === null ? "—" : String(inst.days_left));
      setText(card, ".field-backup", inst.backup ? "yes" : "no");
      setText(card, ".field-detail", detail(inst));
    }
  }

  function detail(inst) {
    const parts = [];
    if (inst.backup) parts.push(`backup of ${inst.production}`);
    if (inst.state !== "unlicensed") parts.push(inst.online ? "online" : "offline");
    if (inst.expired) parts.push("expired");
    if (inst.reactivate) parts.push("reactivate");
    if (inst.slot_lost) parts.push("slot lost (seen on its next request)");
    return parts.join(", ") || "—";
  }

  function renderKeys(activation) {
    setText(document, "#activation-url", activation.url);
    const signature = JSON.stringify(activation.keys);
    if (state.rendered.keys === signature) return;
    state.rendered.keys = signature;
    const rows = activation.keys.map((key) => {
      const share = key.slots ? Math.min(100, (100 * key.used) / key.slots) : 100;
      const bar = el("span", { class: "slots-bar" }, el("span"));
      bar.firstChild.style.width = `${share}%`;
      const holders = el("td", { class: "holders" });
      if (key.holders.length === 0) holders.append(el("span", { class: "hint", text: "none" }));
      for (const holder of key.holders) {
        holders.append(
          el(
            "span",
            { class: "holder" },
            el("span", { text: holder.instance || holder.deployment }),
            el("button", {
              type: "button",
              "data-op": "free-slot",
              "data-key": key.key,
              "data-deployment": holder.deployment,
              title: "GET /deactivation at the activation server",
              text: "Free slot",
            }),
          ),
        );
      }
      return el(
        "tr",
        { "data-key": key.key },
        el("td", { text: key.key }),
        el("td", { class: "slots" }, bar, el("span", { class: "slots-used", text: `${key.used} / ${key.slots}` })),
        el("td", { text: key.expires }),
        holders,
      );
    });
    document.querySelector("#keys tbody").replaceChildren(...rows);
  }

  function renderJournal(entries) {
    const signature = entries.map((e) => e.id).join(",");
    if (state.rendered.journal === signature) return;
    state.rendered.journal = signature;
    const rows = entries
      .slice()
      .reverse()
      .map((e) =>
        el(
          "tr",
          { "data-entry": String(e.id) },
          el("td", { text: String(e.id) }),
          el("td", { text: shortTime(e.fleet_time).slice(11) }),
          el("td", { text: e.instance || e.face }),
          el("td", { text: `${e.method} ${e.path}${e.query ? `?${e.query}` : ""}` }),
          el("td", { class: statusClass(e.status), text: e.status === null ? "dropped" : String(e.status) }),
          el("td", { text: e.fault ? `[${e.fault}] ${e.response_body}` : e.response_body }),
        ),
      );
    document.querySelector("#journal tbody").replaceChildren(...rows);
  }

  async function loadDiagram() {
    const response = await api("GET", "/_mock/ui/diagram.svg");
    if (!response.ok) throw new Error(`diagram: ${response.status}`);
    const parsed = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
    const svg = parsed.documentElement;
    if (svg.nodeName !== "svg") throw new Error("diagram: not an SVG");
    document.getElementById("diagram").replaceChildren(document.importNode(svg, true));
    state.diagramLoaded = true;
  }

  function highlightDiagram(instances) {
    if (!state.diagramLoaded) return;
    const byState = {};
    for (const inst of instances) (byState[inst.state] = byState[inst.state] || []).push(inst.name);
    for (const node of document.querySelectorAll("#diagram g.state")) {
      const names = byState[node.dataset.state] || [];
      node.classList.toggle("current", names.length > 0);
      const label = node.querySelector(".state-instances");
      const text = names.join(", ");
      if (label.textContent !== text) label.textContent = text;
    }
  }

  function showExchanges(title, exchanges) {
    setText(document, "#last-title", title);
    const blocks = exchanges.map((x) => {
      const headers = Object.entries(x.request.headers || {})
        .map(([k, v]) => `${k}: ${v}`)
        .join("\n");
      const failed = x.response.status >= 400 || (x.response.reason && x.response.reason.toUpperCase() !== "OK" && x.response.status === 200);
      return el(
        "div",
        { class: `exchange${failed ? " failed" : ""}` },
        el(
          "div",
          { class: "request" },
          el("div", { class: "line", text: `→ ${x.request.method} ${x.request.url}` }),
          headers || x.request.body ? el("pre", { text: [headers, pretty(x.request.body)].filter(Boolean).join("\n\n") }) : null,
        ),
        el(
          "div",
          { class: "response" },
          el("div", { class: `line ${statusClass(x.response.status)}`, text: `← ${x.response.status} ${x.response.reason}` }),
          el("pre", { class: "response-body", text: pretty(x.response.body) }),
        ),
      );
    });
    document.getElementById("exchanges").replaceChildren(...blocks);
  }

  // Actions

  async function controlAction(title, method, path, body) {
    const response = await api(method, path, body);
    const text = await response.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch (_) {
      // not JSON: shown as text
    }
    showExchanges(title, [
      {
        request: { method, url: new URL(path, window.location.href).href, headers: {}, body: body === undefined ? null : body },
        response: { status: response.status, reason: response.statusText, body: parsed },
      },
    ]);
  }

  async function operation(button) {
    const card = button.closest(".instance");
    const body = { operation: button.dataset.op };
    if (card) {
      body.instance = card.dataset.instance;
      const production = card.querySelector(".production-select");
      if (production) body.production = production.value;
    }
    body.key = button.dataset.key || document.getElementById("key-select").value;
    if (button.dataset.deployment) body.deployment = button.dataset.deployment;
    const response = await api("POST", "/_mock/ui/call", body);
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.err || `${response.status}`);
    const who = answer.instance ? ` on ${answer.instance}` : "";
    showExchanges(`${answer.label}${who}`, answer.exchanges);
  }

  async function onClick(event) {
    const button = event.target.closest("button");
    if (!button || state.busy || button.type === "submit") return;
    let action = null;
    if (button.dataset.op) action = () => operation(button);
    else if (button.dataset.scenario) {
      const name = button.dataset.scenario;
      action = () => controlAction(`Scenario ${name}`, "POST", `/_mock/scenarios/${encodeURIComponent(name)}`);
    } else if (button.id === "reset-button") action = () => controlAction("Reset", "POST", "/_mock/reset");
    else if (button.dataset.clock === "advance") {
      const days = Number(button.dataset.days);
      action = () => controlAction(`Clock +${days} days`, "POST", "/_mock/clock/advance", { days });
    } else if (button.dataset.clock === "toggle-freeze") {
      const frozen = state.view && state.view.clock.frozen;
      action = () => controlAction(frozen ? "Unfreeze" : "Freeze", "POST", `/_mock/clock/${frozen ? "unfreeze" : "freeze"}`);
    }
    if (!action) return;
    state.busy = true;
    document.body.classList.add("busy");
    for (const b of document.querySelectorAll("main button, header button, .toolbar button")) b.disabled = true;
    try {
      await action();
    } catch (error) {
      setStatus(`error: ${error.message}`, true);
    } finally {
      state.busy = false;
      document.body.classList.remove("busy");
      for (const b of document.querySelectorAll("button")) b.disabled = false;
      await refresh();
    }
  }

  function setStatus(text, isError) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.classList.toggle("error", Boolean(isError));
  }

  async function refresh() {
    window.clearTimeout(state.timer);
    try {
      if (!state.diagramLoaded) await loadDiagram();
      const response = await api("GET", "/_mock/ui/view");
      if (!response.ok) throw new Error(`view: ${response.status}`);
      render(await response.json());
      document.getElementById("token-form").hidden = true;
      setStatus(`live · updated ${new Date().toLocaleTimeString()}`, false);
      document.body.dataset.ready = "true";
    } catch (error) {
      setStatus(`not connected: ${error.message}`, true);
    }
    state.timer = window.setTimeout(refresh, POLL_MS);
  }

  function start() {
    state.token = readToken();
    document.addEventListener("click", onClick);
    document.getElementById("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.token = document.getElementById("token-input").value;
      window.sessionStorage.setItem(TOKEN_STORE, state.token);
      refresh();
    });
    refresh();
  }

  start();
})();
