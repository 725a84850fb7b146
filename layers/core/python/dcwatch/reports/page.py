"""The page around a report: inline CSS, a Content-Security-Policy that forbids loading anything, no script; and
the one escape every text taken from a record goes through."""

from __future__ import annotations

import html

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;
color:#1d2430;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0}
h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #d5dbe3;padding-bottom:.2em}
.verdict{display:inline-block;font-weight:700;font-size:1.3em;padding:.15em .7em;border-radius:.3em;color:#fff}
.verdict.PASS{background:#1f8a4c}.verdict.FAIL{background:#c62828}
.why{margin-left:.8em;color:#4a5568}
table{border-collapse:collapse;margin:.4em 0}td,th{text-align:left;padding:.25em .9em .25em 0;vertical-align:top}
th{color:#4a5568;font-weight:600}code{font-size:.92em}
.chart{overflow-x:auto;border:1px solid #d5dbe3;border-radius:.3em;padding:.5em;background:#fbfcfd}
svg text{font:12px system-ui,sans-serif;fill:#1d2430}svg .axis{stroke:#8a94a6}svg .grid{stroke:#e3e8ef}
svg .small{font-size:11px;fill:#4a5568}
.rto{stroke:#1d2430;stroke-width:2;stroke-dasharray:6 3}.target{stroke:#c62828;stroke-width:2;stroke-dasharray:2 3}
.mark{fill:#1d2430}.failed{fill:#c62828}.pass{fill:#1f8a4c}.fail{fill:#c62828}
.legend span{display:inline-block;margin-right:1em}
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
ul.failures li{color:#c62828}footer{margin-top:2em;color:#8a94a6;font-size:.85em}
"""
PHASE_COLOURS = {
    "detection": "#8e44ad",
    "fencing": "#c0392b",
    "groups": "#2e86de",
    "dns": "#16a085",
    "verification": "#f39c12",
    "drill": "#6c5ce7",
    "shutdown": "#7f8c8d",
    "hooks": "#b7950b",
    "other": "#95a5a6",
}
# A phase's colour: the bar's fill in the chart, the swatch's background in the legend.
STYLE += "".join(f"svg .{p}{{fill:{c}}}.legend i.{p}{{background:{c}}}" for p, c in PHASE_COLOURS.items())


def esc(value: object) -> str:
    """Every text from a record goes through here: a VM name or a reason can hold markup."""
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    """One self-contained HTML document: nothing external, nothing run."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def rows(pairs: list[tuple[str, object]]) -> str:
    """A two-column table; the values escaped here."""
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs) + "</table>"


def ticks(span: float, count: int = 8) -> list[float]:
    """Round axis ticks from 0 to at least `span`: steps of 1, 2 or 5 times a power of ten."""
    span = max(span, 1.0)
    raw = span / count
    power = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    step = next((m * power for m in (1, 2, 5, 10) if m * power >= raw), 10 * power)
    n = int(span // step) + 1
    return [round(i * step, 3) for i in range(n + (0 if (n - 1) * step >= span else 1))]
