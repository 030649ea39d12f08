"""Reports people read: Matplotlib figures as PNG, HTML with the charts embedded, and the same
report as an email (HTML + plain text, charts as inline CID parts because mail clients block
``data:`` URIs), stored in the artifact store and sent with SES ``SendRawEmail``.

Every emailed report (SLO weekly, cost daily, compliance summary, post-mortems) goes through here:

    images = {"trend": figure_png(fig)}
    stored = store_report("cost", "reports", day, subject=..., text=text,
                          render_html=lambda src: template.render(img=src),  # src: name -> URL
                          images=images, recipients=settings.cost_report_recipients, run_id=run_id)
    send_stored_report(stored)          # a separate task: a retry re-sends the same bytes

**History.** Each run keeps its own copy under ``<domain>/<dataset>/dt=<day>/runs/<run key>/``
(never overwritten by a later run); the day's top-level files (``dt=<day>/report.html`` ...) are
the "latest" pointer — a copy of the newest run's files, with ``latest.json`` naming that run. What
was emailed is recorded in ``dt=<day>/sent.json`` (run, message id, recipients, time, the key of
the exact ``email.eml`` sent), so nothing emailed is lost when a rerun re-renders the day.

**One email per report day.** :func:`send_stored_report` sends a day's report once: a rerun (or a
retry after the send succeeded) re-renders and stores, and skips the send saying why, unless
``resend=True`` (conf ``resend`` of the DAG run, or ``AIOPS_REPORT_RESEND``).

**Deterministic bytes.** Same data -> same PNGs (fixed PNG metadata, no timestamps; random draws in
the charts' models are seeded by the report day) and the same ``email.eml`` (MIME boundaries derived
from the content, not random), so a rerun's files can be compared byte for byte.

``render_html`` is called twice: with ``data:`` URIs for the self-contained ``report.html`` and
with ``cid:`` references for the email. Escape every value that comes from AWS (resource names,
tag values) in the template: use :func:`html_env` (autoescaping Jinja).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.artifacts import ArtifactStore
from aiops.core.settings import get_settings

PERMISSIONS = permissions(
    "report emails through SES",
    notifier=(
        "ses:SendRawEmail @ arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*",
    ),
)

log = logging.getLogger(__name__)


def figure(width: float = 9, height: float = 2.8, dpi: int = 90) -> Any:
    """A Matplotlib Figure on the Agg canvas (no pyplot global state: safe in worker threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": "MatCarv AIOps"})  # no version/time: same bytes
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


#: Where report templates live: ``src/aiops/<capability>/templates/<name>``, addressed as
#: ``"<capability>/<name>"`` (e.g. ``"cost/report.html"``).
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def templates() -> Any:
    """The one Jinja environment of the reports and the console: templates are files, ``.html`` is
    autoescaped (values from AWS cannot inject markup), ``.md``/``.txt`` are not, and an undefined
    name is an error, not an empty string."""
    import jinja2

    loader = jinja2.PrefixLoader({d.parent.name: jinja2.FileSystemLoader(str(d))
                                  for d in sorted(PACKAGE_ROOT.glob("*/templates")) if d.is_dir()})
    return jinja2.Environment(
        loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml"),
                                            disabled_extensions=("md", "txt"), default=True))


def render_template(name: str, /, **context: Any) -> str:
    """Render ``"<capability>/<name>"`` from :func:`templates` with ``context``."""
    return str(templates().get_template(name).render(**context))


def build_email(*, subject: str, text: str, html: str, images: Mapping[str, bytes], cids: Mapping[str, str],
                recipients: Sequence[str], sender: str | None = None) -> EmailMessage:
    """multipart/alternative (text, HTML) with the PNGs related to the HTML part by Content-ID."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender or get_settings().email_sender
    msg["To"] = ", ".join(recipients)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_body(preferencelist=("html",))
    if not isinstance(html_part, EmailMessage):  # cannot happen: added just above
        raise RuntimeError("the report message has no HTML part")
    for name, cid in cids.items():
        html_part.add_related(images[name], maintype="image", subtype="png", cid=f"<{cid}>", filename=f"{name}.png")
    _fixed_boundaries(msg, subject, text, html, images)
    return msg


def _fixed_boundaries(msg: EmailMessage, *content: Any) -> None:
    """MIME boundaries from a hash of the content (the library draws random ones): same report, same bytes."""
    digest = hashlib.sha256()
    for part in content:
        if isinstance(part, Mapping):
            for key in sorted(part):
                digest.update(str(key).encode() + b"\0" + part[key])
        else:
            digest.update(str(part).encode() + b"\0")
    base = digest.hexdigest()[:24]
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"==aiops-{base}-{i}==")


def run_key(run_id: str | None) -> str:
    """A path-safe key for a run (Airflow run ids contain ':' and '+'); no run id: the wall clock."""
    raw = run_id or "adhoc__" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", raw).strip("_")[:120]


def store_report(domain: str, dataset: str, dt: date | datetime | str, *, subject: str, text: str,
                 render_html: Callable[[dict[str, str]], str], images: Mapping[str, bytes],
                 recipients: Sequence[str], extra: Mapping[str, tuple[bytes, str]] | None = None,
                 sender: str | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Write ``report.html`` (self-contained), ``report.txt``, ``email.eml`` and any ``extra``
    files (name -> (bytes, content type)) to the run's own prefix
    ``<domain>/<dataset>/dt=<dt>/runs/<run key>/``, then move the day's "latest" pointer: the same
    files at ``<domain>/<dataset>/dt=<dt>/`` and ``latest.json``. Returns the keys (``key``,
    ``text_key``, ``prefix``: the day's latest; ``run_key``, ``run_prefix``, ``email_key``: this
    run's copy), subject and recipients — the input of :func:`send_stored_report`."""
    html = render_html({name: data_uri(png) for name, png in images.items()})
    cids = {name: f"{domain}-{i}@matcarv.aiops" for i, name in enumerate(sorted(images))}
    email_html = render_html({name: f"cid:{cid}" for name, cid in cids.items()})
    msg = build_email(subject=subject, text=text, html=email_html, images=images, cids=cids,
                      recipients=recipients, sender=sender)
    store = ArtifactStore()
    day_prefix = store.key(domain, dataset, dt, "")
    key = run_key(run_id)
    prefix = f"{day_prefix}runs/{key}/"
    files: list[tuple[str, bytes, str]] = [
        ("report.html", html.encode(), "text/html; charset=utf-8"),
        ("report.txt", text.encode(), "text/plain; charset=utf-8"),
        *((name, data, content_type) for name, (data, content_type) in (extra or {}).items()),
        ("email.eml", msg.as_bytes(), "message/rfc822"),
    ]
    for name, data, content_type in files:  # the run's own copy: never overwritten by another run
        store.put_bytes(prefix + name, data, content_type)
    for name, data, content_type in files:  # the day's latest pointer
        store.put_bytes(day_prefix + name, data, content_type)
    digest = hashlib.sha256(msg.as_bytes()).hexdigest()
    store.put_json(day_prefix + "latest.json", {"run": key, "run_id": run_id, "prefix": prefix, "subject": subject,
                                                "email_sha256": digest,
                                                "stored_at": datetime.now(UTC).isoformat(timespec="seconds")})
    log.info("%s report stored at %s (run copy %s)", domain, store.uri(day_prefix + "report.html"), store.uri(prefix))
    # key/text_key/prefix: the day's latest files (what links point at); run_*: this run's own copy;
    # email_key: this run's message — what send_stored_report sends and records.
    return {"key": day_prefix + "report.html", "text_key": day_prefix + "report.txt", "prefix": day_prefix,
            "run_key": prefix + "report.html", "run_prefix": prefix, "email_key": prefix + "email.eml",
            "sent_key": day_prefix + SENT, "run": key, "email_sha256": digest, "subject": subject,
            "recipients": list(recipients)}


SENT = "sent.json"


def sent_records(stored: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What was emailed for the report day of ``stored`` (oldest first)."""
    key = stored.get("sent_key") or str(stored["email_key"]).rsplit("/", 1)[0] + "/" + SENT
    return list(ArtifactStore().get_json(key) or [])


def send_stored_report(stored: Mapping[str, Any], sender: str | None = None,
                       resend: bool | None = None) -> dict[str, Any]:
    """Send the stored message with SES SendRawEmail (the exact bytes that were stored), once per
    report day: when the day was already emailed, skip (and say so) unless ``resend`` (default:
    ``AIOPS_REPORT_RESEND``). Every send is recorded in the day's ``sent.json``."""
    store = ArtifactStore()
    raw = store.get_bytes(stored["email_key"])
    if raw is None:
        raise RuntimeError(f"the report message {stored['email_key']} is missing: build the report first")
    recipients = list(stored["recipients"])
    resend = get_settings().report_resend if resend is None else resend
    sent_key = stored.get("sent_key") or str(stored["email_key"]).rsplit("/", 1)[0] + "/" + SENT
    records = list(store.get_json(sent_key) or [])
    if records and not resend:
        first = records[0]
        log.info("Report %r not sent again: this report day was emailed at %s (run %s, SES message %s); "
                 "a rerun re-renders only (conf resend=true to send again)", stored.get("subject"),
                 first.get("sent_at"), first.get("run"), first.get("message_id"))
        return {"message_id": None, "recipients": recipients, "skipped": True,
                "reason": f"already sent at {first.get('sent_at')} (run {first.get('run')})", "sent": records}
    resp = aws.client("ses").send_raw_email(Source=sender or get_settings().email_sender,
                                            Destinations=recipients, RawMessage={"Data": raw})
    record = {"run": stored.get("run"), "message_id": resp["MessageId"], "recipients": recipients,
              "subject": stored.get("subject"), "email_key": stored["email_key"],
              "email_sha256": hashlib.sha256(raw).hexdigest(), "resend": bool(records),
              "sent_at": datetime.now(UTC).isoformat(timespec="seconds")}
    store.put_json(sent_key, [*records, record])
    log.info("Report %r sent to %s (SES message %s)", stored.get("subject"), recipients, resp["MessageId"])
    return {"message_id": resp["MessageId"], "recipients": recipients, "skipped": False, "sent": [*records, record]}
