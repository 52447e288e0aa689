"""The QA report: a static HTML site in ``OUT/.medscrub/report`` built from
the manifest and the pictures the pixel cleaners left.

By default it shows no PHI: items are named by their output path (which
passed the leak check) or by their manifest position, and only the cleaned
("after") pictures appear. ``internal=True`` adds the original file names and
the "before" pictures a run kept with ``[run] internal_previews = true``.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from pathlib import Path

from .manifest import Manifest
from .model import MedscrubError
from .output import STATE_DIR

PAGE_SIZE = 500
REPORT_DIR = "report"

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1d2430;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #e4e6ee;text-align:left;vertical-align:top}
th{background:#f3f4f8}.num{text-align:right}.done{color:#1a7f37}.failed,.unsupported{color:#b42318}.quarantined{color:#9a6700}
.note{background:#fff8e6;border:1px solid #f0d48a;padding:.6em 1em}figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:360px;max-height:360px;border:1px solid #ccd;background:#000}figcaption{font-size:.85em;color:#556}
nav a{margin-right:.6em}
"""

# Marks the page once every picture has loaded (or failed), for headless checks.
_SCRIPT = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script>
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body>{body}{_SCRIPT}</body></html>\n"
    )


def _label(number: int, record: dict, internal: bool) -> str:
    if internal:
        return record["id"]
    if record.get("output"):
        return record["output"][0] + (f" (+{len(record['output']) - 1})" if len(record["output"]) > 1 else "")
    return f"input #{number}"


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td class={'num' if i in numeric else 'c'}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def build_report(output_root: Path, internal: bool = False) -> Path:
    """Write the report; return the path of its index page."""
    output_root = Path(output_root)
    records = list(Manifest(output_root).previous().values())
    if not records:
        raise MedscrubError(f"{output_root} has no medscrub manifest: run `medscrub run` into it first")
    folder = output_root / STATE_DIR / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    numbered = list(enumerate(records, start=1))

    status = Counter(r["status"] for r in records)
    formats = Counter(r.get("format") or "(none)" for r in records)
    actions: Counter = Counter()
    per_format: dict[str, Counter] = {}
    flags: Counter = Counter()
    for r in records:
        for action, n in (r.get("actions") or {}).items():
            actions[action] += n
            per_format.setdefault(r.get("format") or "(none)", Counter())[action] += n
        for flag, value in (r.get("flags") or {}).items():
            flags[f"{flag} = {value}"] += 1

    pages = max(1, -(-len(records) // PAGE_SIZE))
    nav = "<nav>" + "<a href=index.html>summary</a>" + "".join(
        f"<a href=items-{p}.html>items {1 + (p - 1) * PAGE_SIZE}–{min(p * PAGE_SIZE, len(records))}</a>"
        for p in range(1, pages + 1)
    ) + "</nav>"

    body = [f"<h1>medscrub report</h1>{nav}"]
    if internal:
        body.append("<p class=note><b>Internal report:</b> shows original file names and pictures. Do not share it.</p>")
    else:
        body.append("<p class=note>This report shows no original names or pictures; "
                    "items without an output are named by their line in the manifest.</p>")
    body.append("<h2>Items</h2>" + _table(
        ["status", "items"], [[f"<span class={_e(s)}>{_e(s)}</span>", str(n)] for s, n in sorted(status.items())], {1}))
    body.append(_table(["format", "items"], [[_e(f), str(n)] for f, n in sorted(formats.items())], {1}))
    body.append("<h2>Actions</h2>" + _table(
        ["format", *sorted(actions)],
        [[_e(f), *(str(c.get(a, 0)) for a in sorted(actions))] for f, c in sorted(per_format.items())],
        set(range(1, len(actions) + 1)),
    ))
    if flags:
        body.append("<h2>Flags</h2>" + _table(["flag", "items"], [[_e(f), str(n)] for f, n in sorted(flags.items())], {1}))
    problems = [(n, r) for n, r in numbered if r["status"] != "done"]
    if problems:
        body.append(f"<h2>Not done ({len(problems)})</h2>" + _table(
            ["#", "item", "status", "reason"],
            [[str(n), _e(_label(n, r, internal)), f"<span class={_e(r['status'])}>{_e(r['status'])}</span>",
              _e(r.get("reason") or "")] for n, r in problems[:PAGE_SIZE]],
            {0},
        ) + (f"<p>… and {len(problems) - PAGE_SIZE} more on the item pages.</p>" if len(problems) > PAGE_SIZE else ""))
    changed = [(n, r) for n, r in numbered if r.get("previews")]
    if changed:
        body.append(f"<h2>Pixel changes ({len(changed)} items)</h2><p>Every item a pixel cleaner changed, after cleaning"
                    f"{' and before' if internal else ''}.</p>")
        for n, r in changed:
            figures = []
            for p in r["previews"]:
                shots = [("after", p["after"])]
                if internal and p.get("before"):
                    shots.insert(0, ("before", p["before"]))
                for when, rel in shots:
                    src = os.path.relpath(output_root / STATE_DIR / rel, folder)
                    figures.append(f"<figure><img src='{_e(src)}' alt='{_e(p['title'])} {when}' loading=lazy>"
                                   f"<figcaption>{_e(p['title'])} — {when}</figcaption></figure>")
            body.append(f"<h3>{_e(_label(n, r, internal))}</h3>" + "".join(figures))
    (folder / "index.html").write_text(_page("medscrub report", "".join(body)), encoding="utf-8")

    for p in range(1, pages + 1):
        chunk = numbered[(p - 1) * PAGE_SIZE: p * PAGE_SIZE]
        rows = [[str(n), _e(_label(n, r, internal)), _e(r.get("format") or ""),
                 f"<span class={_e(r['status'])}>{_e(r['status'])}</span>",
                 _e(", ".join(f"{a} {c}" for a, c in (r.get("actions") or {}).items())),
                 _e(r.get("reason") or "")] for n, r in chunk]
        page = f"<h1>Items, page {p} of {pages}</h1>{nav}" + _table(
            ["#", "item", "format", "status", "actions", "reason"], rows, {0})
        (folder / f"items-{p}.html").write_text(_page(f"medscrub items {p}", page), encoding="utf-8")
    (folder / "summary.json").write_text(json.dumps(
        {"status": dict(status), "formats": dict(formats), "actions": dict(actions)}, indent=1, sort_keys=True) + "\n")
    return folder / "index.html"
