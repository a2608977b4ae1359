"""The error report's inline stylesheet and script (no network, no external files).

The script renders the rows from the embedded JSON with ``textContent`` only (never HTML),
sorts on a header click, filters on every control's ``input`` event, and applies URL-hash
parameters (``#sort=cer&order=desc&text=...&dmin=&dmax=&speaker=&loops=1&errors=1``) by
setting the controls and clicking the headers, i.e. through the same handlers a user triggers.
"""

CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","Noto Sans SC",sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}
.meta{color:#555;font-size:.9em}.meta code{background:#f4f4f4;padding:0 .2em}
table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .5em;vertical-align:top}
th[data-sort]{cursor:pointer;background:#f0f0f0;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
.line{white-space:pre-wrap;font-size:1.05em}.line b{font-weight:normal;color:#888;margin-right:.4em}
.S{background:#ffd98a}.D{background:#ffb3b3;text-decoration:line-through}.I{background:#b3d9ff}
.legend span{padding:0 .4em;margin-right:.5em}
.loop{color:#b00;font-weight:bold}
#controls{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc;z-index:1}
#controls label{margin-right:1em}#controls input[type=number]{width:5em}
.side{display:inline-block;vertical-align:top;margin-right:2em}
"""

JS = r"""
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const rows = data.rows;
  const body = document.querySelector("#utts tbody");
  const $ = (id) => document.getElementById(id);
  const state = { key: null, dir: 1 };

  function line(label, segments, side) {
    const div = document.createElement("div");
    div.className = "line " + side;
    const b = document.createElement("b");
    b.textContent = label;
    div.appendChild(b);
    for (const [op, r, h] of segments) {
      const text = side === "ref" ? r : h;
      if (!text && op !== "D" && op !== "I") continue;
      const span = document.createElement("span");
      if (op !== "=") span.className = op;
      span.textContent = text || (op === "D" ? "\u2205" : "\u2205");
      if (op !== "=" && !text) span.title = op === "D" ? "deleted" : "inserted";
      div.appendChild(span);
    }
    return div;
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    if (text !== null && text !== undefined) td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function render(list) {
    body.replaceChildren();
    for (const r of list) {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      cell(tr, r.id);
      cell(tr, r.duration === null ? "" : r.duration.toFixed(2));
      cell(tr, r.group || "");
      cell(tr, r.cer === null ? "" : r.cer.toFixed(3));
      cell(tr, r.sub + "/" + r.del + "/" + r.ins);
      const td = cell(tr, null, "align");
      td.appendChild(line("REF", r.segs, "ref"));
      td.appendChild(line("HYP", r.segs, "hyp"));
      if (r.loop !== null) {
        const warn = document.createElement("div");
        warn.className = "loop";
        warn.textContent = "repetition loop: \u201c" + r.loop + "\u201d";
        td.appendChild(warn);
      }
      if (r.raw !== null) {
        const raw = document.createElement("div");
        raw.className = "line raw";
        raw.textContent = "raw output: " + r.raw;
        td.appendChild(raw);
      }
      const audio = cell(tr, null);
      if (r.audio) {
        const a = document.createElement("audio");
        a.controls = true;
        a.preload = "none";
        a.src = r.audio;
        audio.appendChild(a);
      }
      body.appendChild(tr);
    }
    $("count").textContent = list.length + " of " + rows.length + " utterances";
  }

  function value(r, key) {
    const v = r[key];
    return v === null || v === undefined ? -Infinity : v;
  }

  function apply() {
    const text = $("f-text").value.trim().toLowerCase();
    const dmin = parseFloat($("f-dmin").value), dmax = parseFloat($("f-dmax").value);
    const speaker = $("f-speaker").value;
    const loops = $("f-loops").checked, errors = $("f-errors").checked;
    let list = rows.filter((r) =>
      (!text || (r.id + "\n" + r.ref + "\n" + r.hyp).toLowerCase().includes(text)) &&
      (isNaN(dmin) || (r.duration !== null && r.duration >= dmin)) &&
      (isNaN(dmax) || (r.duration !== null && r.duration <= dmax)) &&
      (!speaker || r.group === speaker) &&
      (!loops || r.loop !== null) &&
      (!errors || r.errors > 0));
    if (state.key) {
      const k = state.key, d = state.dir;
      list = list.slice().sort((a, b) => {
        const x = value(a, k), y = value(b, k);
        if (x < y) return -d;
        if (x > y) return d;
        return a.index - b.index;
      });
    }
    render(list);
  }

  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      state.dir = state.key === key ? -state.dir : (th.dataset.first === "desc" ? -1 : 1);
      state.key = key;
      for (const other of document.querySelectorAll("th[data-sort]")) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      apply();
    });
  }
  for (const id of ["f-text", "f-dmin", "f-dmax", "f-speaker", "f-loops", "f-errors"]) {
    $(id).addEventListener("input", apply);
    $(id).addEventListener("change", apply);
  }

  function fromHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const set = (id, key) => {
      if (!p.has(key)) return;
      const el = $(id);
      if (el.type === "checkbox") el.checked = p.get(key) === "1"; else el.value = p.get(key);
      el.dispatchEvent(new Event("input"));
    };
    set("f-text", "text"); set("f-dmin", "dmin"); set("f-dmax", "dmax");
    set("f-speaker", "speaker"); set("f-loops", "loops"); set("f-errors", "errors");
    const th = p.has("sort") && document.querySelector('th[data-sort="' + CSS.escape(p.get("sort")) + '"]');
    if (th) {
      th.click();
      const want = p.get("order") === "desc" ? -1 : 1;
      if (state.dir !== want) th.click();
    }
    document.body.dataset.ready = "1";
  }
  apply();
  fromHash();
  window.addEventListener("hashchange", fromHash);
})();
"""
