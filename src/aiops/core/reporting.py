"""Reports people read: Matplotlib figures as PNG, HTML with the charts embedded, and the same
report as an email (HTML + plain text, charts as inline CID parts because mail clients block
``data:`` URIs), stored in the artifact store and sent with SES ``SendRawEmail``.

Every emailed report (SLO weekly, cost daily, compliance summary, post-mortems) goes through here:

    images = {"trend": figure_png(fig)}
    stored = store_report("cost", "reports", day, subject=..., text=text,
                          render_html=lambda src: template.render(img=src),  # src: name -> URL
                          images=images, recipients=settings.cost_report_recipients)
    send_stored_report(stored)          # a separate task: a retry re-sends the same bytes

``render_html`` is called twice: with ``data:`` URIs for the self-contained ``report.html`` and
with ``cid:`` references for the email. Escape every value that comes from AWS (resource names,
tag values) in the template: use :func:`html_env` (autoescaping Jinja).
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

from aiops.core.settings import get_settings

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
    fig.savefig(buf, format="png")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def html_env() -> Any:
    """An autoescaping Jinja environment: values from AWS cannot inject markup."""
    import jinja2

    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


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
    return msg


def store_report(domain: str, dataset: str, dt: date | datetime | str, *, subject: str, text: str,
                 render_html: Callable[[dict[str, str]], str], images: Mapping[str, bytes],
                 recipients: Sequence[str], extra: Mapping[str, tuple[bytes, str]] | None = None,
                 sender: str | None = None) -> dict[str, Any]:
    """Write ``report.html`` (self-contained), ``report.txt``, ``email.eml`` and any ``extra``
    files (name -> (bytes, content type)) to ``<domain>/<dataset>/dt=<dt>/``. Returns the keys,
    subject and recipients — the input of :func:`send_stored_report`."""
    from aiops.core.artifacts import ArtifactStore

    html = render_html({name: data_uri(png) for name, png in images.items()})
    cids = {name: f"{domain}-{i}@matcarv.aiops" for i, name in enumerate(sorted(images))}
    email_html = render_html({name: f"cid:{cid}" for name, cid in cids.items()})
    msg = build_email(subject=subject, text=text, html=email_html, images=images, cids=cids,
                      recipients=recipients, sender=sender)
    store = ArtifactStore()
    prefix = store.key(domain, dataset, dt, "")
    store.put_bytes(prefix + "report.html", html.encode(), "text/html; charset=utf-8")
    store.put_bytes(prefix + "report.txt", text.encode(), "text/plain; charset=utf-8")
    for name, (data, content_type) in (extra or {}).items():
        store.put_bytes(prefix + name, data, content_type)
    store.put_bytes(prefix + "email.eml", msg.as_bytes(), "message/rfc822")
    log.info("%s report stored at %s", domain, store.uri(prefix + "report.html"))
    return {"key": prefix + "report.html", "text_key": prefix + "report.txt", "email_key": prefix + "email.eml",
            "prefix": prefix, "subject": subject, "recipients": list(recipients)}


def send_stored_report(stored: Mapping[str, Any], sender: str | None = None) -> dict[str, Any]:
    """Send the stored message with SES SendRawEmail (the exact bytes that were stored)."""
    from aiops.core import aws
    from aiops.core.artifacts import ArtifactStore

    raw = ArtifactStore().get_bytes(stored["email_key"])
    if raw is None:
        raise RuntimeError(f"the report message {stored['email_key']} is missing: build the report first")
    recipients = list(stored["recipients"])
    resp = aws.client("ses").send_raw_email(Source=sender or get_settings().email_sender,
                                            Destinations=recipients, RawMessage={"Data": raw})
    log.info("Report %r sent to %s (SES message %s)", stored.get("subject"), recipients, resp["MessageId"])
    return {"message_id": resp["MessageId"], "recipients": recipients}
