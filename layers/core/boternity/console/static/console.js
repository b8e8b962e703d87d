// The Boternity console: renders the JSON views of /console/data/ and acts through /console/api/.
// Every piece of text from the API goes into the page as text (textContent, setAttribute), never
// as HTML, so step names, ids and outputs cannot inject markup; the page's CSP forbids inline
// scripts besides. State-changing calls carry the per-process CSRF token of the page.
"use strict";

(function () {
  const SVGNS = "http://www.w3.org/2000/svg";
  const POLL_MS = 1000;
  const STATUS_LABEL = {
    pending: "pending", running: "running", waiting_approval: "waiting for approval",
    completed: "completed", skipped: "skipped", failed: "failed", timed_out: "timed out", aborted: "aborted",
  };
  const RUN_STATUSES = ["RUNNING", "QUEUED", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
  const body = document.body;
  const main = document.getElementById("main");
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // ---------------------------------------------------------------- helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "onclick" || k === "oninput" || k === "onsubmit") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    append(node, children);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }
  function append(node, children) {
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function enc(s) { return encodeURIComponent(s); }
  function runLink(id) { return el("a", { href: "/console/runs/" + enc(id), class: "mono" }, id); }
  function wfLink(name) { return el("a", { href: "/console/workflows/" + enc(name) }, name); }
  function badge(status) {
    const s = String(status || "pending");
    return el("span", { class: "badge", "data-status": s.toLowerCase() }, STATUS_LABEL[s] || s);
  }
  function when(iso) { return iso ? String(iso).replace("T", " ").replace(/\.\d+Z$/, "Z") : "—"; }
  function duration(a, b) {
    if (!a) return "—";
    const ms = (b ? Date.parse(b) : Date.now()) - Date.parse(a);
    if (!isFinite(ms) || ms < 0) return "—";
    return ms < 1000 ? ms + " ms" : ms < 60000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms / 1000) + " s";
  }
  function pretty(v) { return JSON.stringify(v, null, 2); }
  function pre(text, cls) { return el("pre", { class: cls || "code" }, text); }

  async function getJSON(url) {
    const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const data = await resp.json().catch(() => null);
    if (!resp.ok) throw apiError(resp.status, data);
    return data;
  }
  async function post(path, payload, extraHeaders) {
    const resp = await fetch("/console/api" + path, {
      method: "POST", credentials: "same-origin",
      headers: Object.assign({ "Content-Type": "application/json", Accept: "application/json",
                               "X-Boternity-CSRF": csrf }, extraHeaders || {}),
      body: payload === undefined ? "" : JSON.stringify(payload),
    });
    const data = await resp.json().catch(() => null);
    if (!resp.ok) throw apiError(resp.status, data);
    return data;
  }
  function apiError(status, data) {
    const e = data && data.error;
    const err = new Error(e ? e.message + " (" + e.code + ")" : "HTTP " + status);
    err.status = status;
    return err;
  }
  function problem(target, err) {
    clear(target);
    target.appendChild(el("p", { class: "error", role: "alert" }, String(err && err.message || err)));
  }
  function section(title, ...children) { return el("section", {}, el("h2", {}, title), children); }
  function table(headers, rows) {
    return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
              el("tbody", {}, rows));
  }

  // ---------------------------------------------------------------- the DAG
  // Draws graph {nodes:[{id,x,y,w,h}], edges:[{from,to,kind}], steps:{id:{name,type}}} as SVG.
  // Returns {svg, nodes: Map(step id -> <g>)}; statuses are set with setStatus.
  function drawGraph(graph, onSelect, scale) {
    const root = svg("svg", { class: "dag", viewBox: `0 0 ${graph.width} ${graph.height}`,
                              width: Math.round(graph.width * (scale || 1)),
                              height: Math.round(graph.height * (scale || 1)), role: "img" });
    const pos = new Map(graph.nodes.map((n) => [n.id, n]));
    const edges = svg("g", { class: "edges" });
    for (const e of graph.edges) {
      const a = pos.get(e.from), b = pos.get(e.to);
      if (!a || !b) continue;
      const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2, mx = (x1 + x2) / 2;
      edges.appendChild(svg("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`,
                                      class: "edge " + e.kind }));
    }
    root.appendChild(edges);
    const nodes = new Map();
    for (const n of graph.nodes) {
      const step = (graph.steps || {})[n.id] || { name: n.id, type: "step" };
      const g = svg("g", { class: "node", transform: `translate(${n.x},${n.y})`, "data-step-id": n.id,
                           "data-status": "pending", tabindex: onSelect ? 0 : -1 });
      const title = svg("title", {});
      title.textContent = `${step.name} (${n.id}, ${step.type})`;
      g.appendChild(title);
      g.appendChild(svg("rect", { width: n.w, height: n.h, rx: 6 }));
      const name = svg("text", { x: 10, y: 18, class: "name" });
      name.textContent = clip(step.name || n.id, 20);
      const sub = svg("text", { x: 10, y: 34, class: "sub" });
      sub.textContent = clip(step.type + (step.name !== n.id ? " · " + n.id : ""), 24);
      g.appendChild(name);
      g.appendChild(sub);
      if (onSelect) {
        g.addEventListener("click", () => onSelect(n.id));
        g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") onSelect(n.id); });
      }
      root.appendChild(g);
      nodes.set(n.id, g);
    }
    return { svg: root, nodes };
  }
  function clip(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + "…" : text; }

  // ---------------------------------------------------------------- pages
  async function homePage() {
    const data = await getJSON("/console/data/home");
    clear(main);
    main.appendChild(el("h1", {}, "Workflows"));
    if (!data.workflows.length) {
      main.appendChild(el("p", {}, "No workflow is registered yet: ",
                          el("code", {}, "boternity deploy my-flow.yaml"), " registers one."));
    }
    const list = el("div", { class: "cards" });
    for (const wf of data.workflows) {
      const card = el("article", { class: "card", "data-workflow": wf.name },
        el("h2", {}, wfLink(wf.name)),
        wf.description ? el("p", {}, wf.description) : null,
        el("p", { class: "muted" }, "Triggers: ", wf.triggers.length ? wf.triggers.join(", ") : "API only"),
        el("div", { class: "mini" }, drawGraph(wf.graph, null, 0.5).svg),
        el("p", {}, "Last runs: ", wf.last_runs.length ? wf.last_runs.map((r) =>
          el("a", { href: "/console/runs/" + enc(r.run_id), class: "chip", "data-status": String(r.status).toLowerCase(),
                    title: r.run_id + " " + r.status }, r.status)) : "none"));
      list.appendChild(card);
    }
    main.appendChild(list);
    main.appendChild(section("Recent runs", runsTable(data.recent_runs, true)));
  }

  function runsTable(runs, withWorkflow) {
    if (!runs.length) return el("p", { class: "muted" }, "No runs.");
    return table(["Run", withWorkflow ? "Workflow" : null, "Status", "Trigger", "Started", "Duration"].filter(Boolean),
      runs.map((r) => el("tr", { "data-run-id": r.run_id },
        el("td", {}, runLink(r.run_id)), withWorkflow ? el("td", {}, wfLink(r.workflow || "")) : null,
        el("td", {}, badge(r.status)), el("td", {}, r.trigger_type || ""), el("td", {}, when(r.started_at)),
        el("td", {}, duration(r.started_at, r.ended_at)))));
  }

  async function workflowPage(name) {
    const data = await getJSON("/console/data/workflows/" + enc(name));
    const wf = data.workflow;
    clear(main);
    main.appendChild(el("h1", {}, "Workflow ", el("span", { class: "mono" }, wf.name)));
    if (wf.description) main.appendChild(el("p", {}, wf.description));
    main.appendChild(el("p", { class: "muted" }, "Triggers: ", data.triggers.length ? data.triggers.join(", ") : "API only",
                        " · version ", String(wf.version), " · updated ", when(wf.updated_at), " · ",
                        el("a", { href: "/console/approvals?workflow=" + enc(wf.name), id: "workflow-approvals" },
                           "approvals waiting")));
    const stepBox = el("div", { class: "step-config", id: "step-config" });
    const graph = drawGraph(data.graph, (id) => {
      const step = data.graph.steps[id];
      for (const [other, g] of graph.nodes) g.classList.toggle("selected", other === id);
      clear(stepBox);
      append(stepBox, [el("h3", {}, step.name, " ", el("span", { class: "mono muted" }, "(" + id + ", " + step.type + ")")),
                       step.depends_on && step.depends_on.length ? el("p", {}, "Depends on: ", step.depends_on.join(", ")) : null,
                       step.condition ? el("p", {}, "Condition: ", el("code", {}, step.condition)) : null,
                       step.for_each ? el("p", {}, "For each: ", el("code", {}, step.for_each)) : null,
                       pre(pretty(step.config || {}))]);
    }, 1);
    main.appendChild(section("Graph", el("div", { class: "graph" }, graph.svg), stepBox));
    main.appendChild(startForm(wf.name));
    const runsBox = el("div", {});
    const filters = el("div", { class: "filters", role: "group" });
    let current = "";
    async function load(status, token) {
      current = status;
      for (const b of filters.children) b.setAttribute("aria-pressed", String(b.dataset.status === status));
      const q = "?limit=20" + (status ? "&status=" + status : "") + (token ? "&next_token=" + enc(token) : "");
      try {
        const page = await getJSON("/console/api/workflows/" + enc(name) + "/runs" + q);
        if (!token) clear(runsBox);
        runsBox.appendChild(runsTable(page.runs, false));
        if (page.next_token) {
          const more = el("button", { type: "button", onclick: () => { more.remove(); load(current, page.next_token); } },
                          "More runs");
          runsBox.appendChild(more);
        }
      } catch (err) {
        if (err.status === 404) { clear(runsBox); runsBox.appendChild(el("p", { class: "muted" }, "No runs yet.")); }
        else problem(runsBox, err);
      }
    }
    for (const s of ["", ...RUN_STATUSES]) {
      filters.appendChild(el("button", { type: "button", "data-status": s, onclick: () => load(s) }, s || "All"));
    }
    main.appendChild(section("Runs", filters, runsBox));
    main.appendChild(section("Definition", el("p", { class: "muted", id: "definition-origin" }, data.as_written
      ? "As written (" + (wf.source_format || "yaml").toUpperCase() + "), comments included."
      : "Re-serialised from the parsed definition: the API did not return the file as written."),
      pre(data.yaml, "code definition")));
    load("");
  }

  function startForm(name) {
    const input = el("textarea", { id: "run-input", rows: 6, spellcheck: "false", "aria-label": "run input (JSON)" });
    input.value = "{}";
    const status = el("p", { class: "form-status", role: "status" });
    const button = el("button", { type: "submit", id: "start-run" }, "Start run");
    function check() {
      try {
        JSON.parse(input.value.trim() || "{}");
        input.removeAttribute("aria-invalid");
        button.disabled = false;
        status.textContent = "";
        return true;
      } catch (err) {
        input.setAttribute("aria-invalid", "true");
        button.disabled = true;
        status.textContent = "Not valid JSON: " + err.message;
        return false;
      }
    }
    input.addEventListener("input", check);
    const form = el("form", { class: "start", onsubmit: async (ev) => {
      ev.preventDefault();
      if (!check()) return;
      button.disabled = true;
      status.textContent = "Starting…";
      try {
        const started = await post("/workflows/" + enc(name) + "/runs", JSON.parse(input.value.trim() || "{}"));
        window.location.assign("/console/runs/" + enc(started.run_id));
      } catch (err) {
        status.textContent = "Not started: " + err.message;
        button.disabled = false;
      }
    } }, el("label", { for: "run-input" }, "Input (JSON)"), input, button, status);
    return section("Start a run", form);
  }

  async function runPage(runId) {
    let data = await getJSON("/console/data/runs/" + enc(runId));
    clear(main);
    const head = el("div", { class: "run-head" });
    const actions = el("div", { class: "actions" });
    const notice = el("p", { class: "notice", role: "status" });
    const io = el("div", { class: "io" });
    const panel = el("aside", { class: "panel", id: "step-panel", hidden: true });
    const drawn = drawGraph(data.graph, (id) => select(id), 1);
    main.append(head, actions, notice, el("div", { class: "run-body" }, el("div", { class: "graph" }, drawn.svg), panel), io);
    let selected = null;
    let panelKey = "";
    // The input never changes: read once, kept across repaints of the head.
    const inputUrl = "/console/data/runs/" + enc(runId) + "/input";
    const inputBox = el("section", { id: "run-input-box" }, el("h2", {}, "Run input"));
    valueInto(inputBox, inputUrl, "input");

    function renderHead() {
      const r = data.run;
      clear(head);
      append(head, [el("h1", {}, "Run ", el("span", { class: "mono", id: "run-id" }, r.run_id)),
        el("p", {}, "Workflow ", wfLink(r.workflow || ""), " · ",
           el("span", { id: "run-status", "data-status": String(r.status).toLowerCase() }, badge(r.status)),
           " · started ", when(r.started_at), r.ended_at ? " · ended " + when(r.ended_at) : "",
           " · ", duration(r.started_at, r.ended_at),
           r.redrive_count ? " · redriven " + r.redrive_count + "×" : ""),
        r.error_text ? el("p", { class: "error" }, r.error_text) : null]);
      clear(actions);
      if (data.open) {
        actions.appendChild(el("button", { type: "button", id: "cancel-run", class: "danger", onclick: () =>
          act("/runs/" + enc(runId) + "/cancel", "Cancel this run? Its open approvals are cancelled too.") }, "Cancel run"));
      }
      if (["FAILED", "TIMED_OUT", "ABORTED"].includes(r.status)) {
        actions.appendChild(el("button", { type: "button", id: "redrive-run", onclick: () =>
          act("/runs/" + enc(runId) + "/redrive", "Redrive this run from the step that failed?") }, "Redrive"));
      }
      clear(io);
      io.appendChild(inputBox);
      io.appendChild(section("Run trigger", pre(pretty(r.trigger === undefined ? null : r.trigger))));
      io.appendChild(section("Run output", pre(r.output === undefined || r.output === null ? "—" : pretty(r.output))));
    }
    async function act(path, question) {
      if (!window.confirm(question)) return;
      try {
        await post(path);
        notice.textContent = "Done.";
        refresh();
      } catch (err) { notice.textContent = err.message; }
    }
    function paint() {
      for (const [id, g] of drawn.nodes) {
        const s = (data.steps[id] && data.steps[id].status) || "pending";
        if (g.getAttribute("data-status") !== s) g.setAttribute("data-status", s);
        g.classList.toggle("selected", id === selected);
      }
    }
    function select(id) {
      selected = id;
      panelKey = "";
      paint();
      renderPanel();
    }
    function renderPanel() {
      if (!selected) return;
      const entry = data.steps[selected] || { record: null, iterations: [], status: "pending" };
      const key = JSON.stringify(entry);
      if (key === panelKey) return;   // unchanged since the last poll: keep the panel (and its form) as is
      panelKey = key;
      const step = data.graph.steps[selected] || { name: selected, type: "step" };
      const rec = entry.record || {};
      // An approval's task ends when the approval is created; the step is open until the decision.
      const ended = ["running", "waiting_approval"].includes(entry.status) ? null : rec.ended_at;
      clear(panel);
      panel.hidden = false;
      panel.setAttribute("data-step-id", selected);
      append(panel, [
        el("button", { type: "button", class: "close", "aria-label": "close", onclick: () => {
          selected = null; panel.hidden = true; paint(); } }, "×"),
        el("h2", {}, step.name), el("p", { class: "mono muted" }, selected, " · ", step.type),
        el("p", {}, badge(entry.status)),
        el("dl", {}, dd("Started", when(rec.started_at)), dd("Ended", when(ended)),
           // A static wait's record holds its planned end (docs/compiler.md, "Static waits planned ahead").
           entry.status === "running" && rec.ends_at ? dd("Ends", when(rec.ends_at)) : null,
           dd("Duration", duration(rec.started_at, ended)), dd("Attempts", rec.attempts || "—"),
           step.for_each ? dd("For each", step.for_each) : null, step.condition ? dd("Condition", step.condition) : null),
      ]);
      if (entry.approval) panel.appendChild(approvalBox(entry.approval));
      if (rec.error) panel.appendChild(el("div", {}, el("h3", {}, "Error"), el("p", { class: "error" }, rec.error)));
      const attemptErrors = rec.attempt_errors || [];
      if (attemptErrors.length) {
        panel.appendChild(el("h3", {}, "Failed attempts"));
        panel.appendChild(el("ol", {}, attemptErrors.map((a) =>
          el("li", {}, "attempt ", String(a.attempt), " at ", when(a.at), ": ", a.error || ""))));
      }
      if (entry.record) panel.appendChild(outputBox(selected, "", rec));
      if (entry.iterations.length) {
        panel.appendChild(el("h3", {}, step.type === "loop" ? "Iterations" : "Items and iterations"));
        const box = el("div", { class: "iter-output" });
        panel.appendChild(table(["Iteration", "Status", "Attempts", "Duration", ""], entry.iterations.map((it) =>
          el("tr", { "data-iteration": it.iteration }, el("td", { class: "mono" }, it.iteration), el("td", {}, badge(it.status),
             it.child_run_id ? [" ", el("a", { href: "/console/runs/" + enc(it.child_run_id), class: "child-run" }, "child run")] : null),
             el("td", {}, it.attempts || "—"), el("td", {}, duration(it.started_at, it.ended_at)),
             el("td", {}, el("button", { type: "button", onclick: () => { clear(box); box.appendChild(outputBox(selected, it.iteration, it)); } }, "Output"))))));
        panel.appendChild(box);
      }
      if (step.type === "sub_workflow" && step.config && step.config.workflow_name && entry.record) {
        panel.appendChild(childRuns(step.config.workflow_name, rec));
      }
      if (step.config) panel.appendChild(el("div", {}, el("h3", {}, "Config"), pre(pretty(step.config))));
      if (step.unknown) panel.appendChild(el("p", { class: "muted" }, "This step is not in the workflow as registered now."));
    }
    // A sub_workflow step's record names its child run (the API's child_run_id): from the
    // parent's history while the child runs, from the step's end otherwise.
    function childRuns(child, rec) {
      const box = el("div", { class: "children" }, el("h3", {}, "Child run"));
      if (rec.child_run_id) {
        box.appendChild(el("p", {}, el("a", { href: "/console/runs/" + enc(rec.child_run_id), class: "mono child-run" },
                                        rec.child_run_id), " of ", wfLink(child)));
      } else {
        box.appendChild(el("p", { class: "muted" }, "Not named yet (a for_each item names its child when it ends). ",
                           "Runs of ", wfLink(child), " are on its page."));
      }
      return box;
    }
    function dd(term, value) { return [el("dt", {}, term), el("dd", {}, value)]; }
    function outputBox(stepId, iteration, rec) {
      const box = el("div", { class: "output" }, el("h3", {}, "Output"));
      if (!rec.output_size && !rec.output_claim_checked) { box.appendChild(pre("null")); return box; }
      const q = "?step=" + enc(stepId) + "&iteration=" + enc(iteration);
      valueInto(box, "/console/data/runs/" + enc(runId) + "/output" + q, "output");
      return box;
    }
    // Fetches a recorded value (an output, the run's input) into box: a preview as text, and the
    // whole value as a download.
    function valueInto(box, url, what) {
      const body = el("div", {}, el("p", { class: "muted" }, "Loading…"));
      box.appendChild(body);
      getJSON(url).then((out) => {
        clear(body);
        if (!out.resolved) {
          body.appendChild(el("p", { class: "muted" }, out.message));
          if (out.preview) body.appendChild(pre(out.preview, "code " + what + "-text"));
          return;
        }
        if (out.claim_checked) body.appendChild(el("p", { class: "muted" }, "Claim-checked " + what + " (" + out.size + " bytes), read from storage."));
        body.appendChild(pre(out.text, "code " + what + "-text"));
        if (out.truncated) body.appendChild(el("p", { class: "muted" }, "Shown: the first " + out.text.length + " characters of " + out.size + " bytes."));
        if (out.downloadable !== false) {
          const sep = url.includes("?") ? "&" : "?";
          body.appendChild(el("a", { href: url + sep + "download=1", download: "" }, "Download the whole " + what));
        }
      }).catch((err) => problem(body, err));
    }
    function approvalBox(approval) {
      const box = el("div", { class: "approval", "data-approval-id": approval.approval_id });
      box.appendChild(el("h3", {}, "Approval"));
      if (approval.prompt) box.appendChild(el("p", { class: "prompt" }, approval.prompt));
      box.appendChild(el("p", {}, badge(approval.status)));
      if (approval.status !== "PENDING") return box;
      const comment = el("textarea", { rows: 3, id: "approval-comment", maxlength: 2000, "aria-label": "comment" });
      const said = el("p", { role: "status" });
      async function decide(approved) {
        try {
          await post("/approvals/" + enc(approval.approval_id) + "/decision",
                     { approved, comment: comment.value.trim() || null });
          said.textContent = approved ? "Approved." : "Rejected.";
          refresh();
        } catch (err) { said.textContent = err.message; }
      }
      append(box, [el("label", { for: "approval-comment" }, "Comment"), comment,
        el("div", { class: "actions" },
           el("button", { type: "button", id: "approve", onclick: () => decide(true) }, "Approve"),
           el("button", { type: "button", id: "reject", class: "danger", onclick: () => decide(false) }, "Reject")),
        said]);
      return box;
    }
    let timer = null;
    async function refresh() {
      try {
        data = await getJSON("/console/data/runs/" + enc(runId));
        renderHead();
        paint();
        renderPanel();
      } catch (err) { notice.textContent = "Could not refresh: " + err.message; }
      schedule();
    }
    function schedule() {
      clearTimeout(timer);
      // Poll while the run can still change; a finished run is read once.
      if (data.open) timer = setTimeout(refresh, POLL_MS);
    }
    renderHead();
    paint();
    body.setAttribute("data-loaded", "true");
    schedule();
  }

  async function approvalsPage() {
    // One page of the API's approvals listing at a time; "More approvals" asks for the next.
    // ?workflow=<name> keeps one workflow's (the workflow page links here so).
    const only = new URLSearchParams(window.location.search).get("workflow");
    const query = only ? "workflow=" + enc(only) + "&" : "";
    const first = await getJSON("/console/data/approvals?" + query);
    clear(main);
    main.appendChild(el("h1", {}, "Approvals waiting for a decision", only ? [" in ", wfLink(only)] : null));
    if (only) main.appendChild(el("p", {}, el("a", { href: "/console/approvals" }, "All workflows")));
    if (!first.approvals.length && !first.next_token) {
      main.appendChild(el("p", { class: "muted" }, "Nothing is waiting."));
      return;
    }
    const rows = el("tbody", {});
    main.appendChild(el("table", { id: "approvals" }, el("thead", {}, el("tr", {},
      ["Workflow", "Run", "Step", "Prompt", "Since", "Decision"].map((h) => el("th", {}, h)))), rows));
    const more = el("button", { type: "button", id: "more-approvals", hidden: true }, "More approvals");
    main.appendChild(more);
    function show(page) {
      for (const a of page.approvals) rows.appendChild(approvalRow(a));
      more.hidden = !page.next_token;
      more.onclick = async () => {
        more.disabled = true;
        try { show(await getJSON("/console/data/approvals?" + query + "next_token=" + enc(page.next_token))); }
        catch (err) { problem(main, err); }
        more.disabled = false;
      };
    }
    show(first);
  }
  function approvalRow(a) {
    const comment = el("input", { type: "text", maxlength: 2000, placeholder: "comment", "aria-label": "comment" });
    const said = el("span", { role: "status" });
    async function decide(approved) {
      try {
        await post("/approvals/" + enc(a.approval_id) + "/decision", { approved, comment: comment.value.trim() || null });
        said.textContent = approved ? "Approved." : "Rejected.";
      } catch (err) { said.textContent = err.message; }
    }
    return el("tr", { "data-approval-id": a.approval_id }, el("td", {}, wfLink(a.workflow || "")), el("td", {}, runLink(a.run_id || "")),
      el("td", { class: "mono" }, a.step_id || ""), el("td", {}, a.prompt || ""), el("td", {}, when(a.created_at)),
      el("td", {}, comment, el("button", { type: "button", class: "approve", onclick: () => decide(true) }, "Approve"),
         el("button", { type: "button", class: "reject danger", onclick: () => decide(false) }, "Reject"), said));
  }

  const pages = { home: homePage, workflow: workflowPage, run: runPage, approvals: approvalsPage };
  const page = pages[body.dataset.page];
  if (page) {
    page(body.dataset.arg).then(() => body.setAttribute("data-loaded", "true"), (err) => {
      problem(main, err);
      body.setAttribute("data-loaded", "error");
    });
  }
})();
