"""The approval page: ``GET /approvals/{id}`` for a browser. Showing it never decides anything —
mail scanners and link previews fetch GETs — so deciding takes the page's POST form, which
carries a CSRF token only this page can know (an HMAC keyed by the approval's task token,
which never leaves the backend)."""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from typing import Any
from urllib.parse import quote

# No scripts, no external resources, no framing (clickjacking an Approve button), no caching.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}"
          "pre{white-space:pre-wrap;background:#f5f5f5;padding:1rem;border-radius:6px}"
          "button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem;border-radius:6px;border:1px solid #888}"
          ".approve{background:#1a7f37;color:#fff}.reject{background:#cf222e;color:#fff}"
          "textarea{width:100%;min-height:4rem}dt{font-weight:600}dd{margin:0 0 .5rem 0}")


def csrf_token(task_token: str, approval_id: str) -> str:
    return hmac.new(task_token.encode(), f"csrf:{approval_id}".encode(), hashlib.sha256).hexdigest()[:40]


def _same(expected: str, given: str | None) -> bool:
    # Bytes, not str: compare_digest raises TypeError for a str with non-ASCII characters, and a
    # forged "é" key answered 500 on the unauthenticated link routes instead of a plain refusal.
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode("utf-8", "surrogatepass"))


def check_csrf(task_token: str, approval_id: str, given: str | None) -> bool:
    return _same(csrf_token(task_token, approval_id), given)


def link_key(task_token: str, approval_id: str) -> str:
    """The key in an approval link (``/approve/<id>?k=<key>``): whoever holds the link may decide,
    as with any emailed approval link. Derived from the task token, so nothing more is stored, the
    token itself never leaves the backend, and the key dies with the approval."""
    return hmac.new(task_token.encode(), f"link:{approval_id}".encode(), hashlib.sha256).hexdigest()[:40]


def check_link_key(task_token: str, approval_id: str, given: str | None) -> bool:
    return _same(link_key(task_token, approval_id), given)


def prefers_html(accept: str | None) -> bool:
    """Whether an Accept header ranks text/html above application/json (browsers do; API clients
    and ``*/*`` get JSON)."""
    if not accept:
        return False
    best: dict[str, float] = {}
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        best[media] = max(q, best.get(media, 0.0))
    html_q = max(best.get("text/html", 0.0), best.get("application/xhtml+xml", 0.0))
    json_q = max(best.get("application/json", 0.0), best.get("*/*", 0.0) * 0.99)
    return html_q > 0 and html_q >= json_q


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<meta name=\"robots\" content=\"noindex\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def render_approval(approval: dict[str, Any], *, csrf: str | None, link: str | None = None) -> str:
    """The page; with ``link`` (an approval link's key) the form posts back to the link's route."""
    e = html.escape
    status = str(approval.get("status") or "")
    rows = [("Workflow", approval.get("workflow")), ("Run", approval.get("run_id")), ("Step", approval.get("step_id")),
            ("Status", status.lower())]
    decide_by = approval.get("decide_by")
    if isinstance(decide_by, int | float):
        rows.append(("Decide by", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(decide_by))))
    if status in ("APPROVED", "REJECTED"):
        rows += [("Decided by", approval.get("approver")), ("Decided at", approval.get("decided_at")),
                 ("Comment", approval.get("comment"))]
    if status in ("EXPIRED", "CANCELLED"):
        rows += [("Closed at", approval.get("closed_at")), ("Why", approval.get("reason"))]
    facts = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in rows if v not in (None, ""))
    heading = "Approval needed" if status == "PENDING" else f"Approval {status.lower()}"
    body = f"<h1>{e(heading)}</h1><pre>{e(str(approval.get('prompt') or ''))}</pre><dl>{facts}</dl>"
    if status == "PENDING" and csrf:
        # Relative to /approvals/<id>: resolves to /approvals/<id>/decision under any stage or base path
        # (and for a link, /approve/<id> to itself, without the key in the URL: it goes in the form).
        aid = quote(str(approval.get("approval_id") or ""), safe="")
        action = e(aid if link else aid + "/decision")
        key_field = f"<input type=\"hidden\" name=\"k\" value=\"{e(link)}\">" if link else ""
        body += (f"<form method=\"post\" action=\"{action}\">"
                 f"<input type=\"hidden\" name=\"csrf\" value=\"{e(csrf)}\">{key_field}"
                 "<p><label>Comment (optional)<br><textarea name=\"comment\" maxlength=\"2000\"></textarea>"
                 "</label></p>"
                 "<button class=\"approve\" type=\"submit\" name=\"approved\" value=\"true\">Approve</button>"
                 "<button class=\"reject\" type=\"submit\" name=\"approved\" value=\"false\">Reject</button></form>")
    else:
        body += f"<p>This approval is <strong>{e(status.lower())}</strong>; there is nothing to decide.</p>"
    return _page("Approval: " + str(approval.get("workflow") or ""), body)


def render_decided(approval: dict[str, Any]) -> str:
    verdict = "approved" if approval.get("approved") else "rejected"
    return _page("Decision recorded", f"<h1>Decision recorded</h1><p>The step was <strong>{verdict}</strong>. "
                 "The run goes on; you can close this page.</p>")
