"""Writing a report: report.json (everything), report.md, report.html (self-contained, chart inline)
and bitrate.png (log-scale bars of bits per second per method)."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path


def _fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def text_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    head = ["option", "messages up", "payload up b/s", "wire up b/s (steady)", "wire up b/s (session)",
            "wire down b/s (session)", "wire both b/s", "with setup up b/s", "STUN up b/s"]
    rows = []
    for item in report["text_link"]:
        r = item["bits_per_second"]
        measured = item["source"] == "loopback"  # a recorded session has no datagram log
        rows.append([item["label"], _fmt(item["messages_up"]), _fmt(r["payload_up"]),
                     _fmt(r["steady_wire_up"] if measured else None), _fmt(r["wire_up"]), _fmt(r["wire_down"]),
                     _fmt(r["wire_both"]), _fmt(r["wire_up_with_setup"]), _fmt(r["stun_up"] if measured else None)])
    return head, rows


def breakdown_rows(item: dict) -> tuple[list[str], list[list[str]]]:
    head = ["what", "datagrams up", "bytes up", "datagrams down", "bytes down"]
    labels = sorted(set(item["breakdown_up"]) | set(item["breakdown_down"]))
    rows = []
    for label in labels:
        up = item["breakdown_up"].get(label, {"count": 0, "bytes": 0})
        down = item["breakdown_down"].get(label, {"count": 0, "bytes": 0})
        rows.append([label, _fmt(up["count"]), _fmt(up["bytes"]), _fmt(down["count"]), _fmt(down["bytes"])])
    rows.append(["setup (before Hello)", "", _fmt(item["setup_up_bytes"]), "", _fmt(item["setup_down_bytes"])])
    rows.append(["close (Bye, teardown)", "", _fmt(item["close_up_bytes"]), "", _fmt(item["close_down_bytes"])])
    return head, rows


def baseline_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    head = ["family", "method", "size", "b/s", "video b/s", "audio b/s", "wire b/s", "PSNR dB", "SSIM",
            "audio LSD dB", "acceptable", "x text wire", "note"]
    rows = []
    for b in report.get("baselines", []):
        rows.append([b["family"], b["name"], b["resolution"], _fmt(b["bits_per_second"]),
                     _fmt(b["video_bits_per_second"]), _fmt(b["audio_bits_per_second"]),
                     _fmt(b["wire_bits_per_second"]), _fmt(b["psnr_db"], 2), _fmt(b["ssim"], 4),
                     _fmt(b["audio_lsd_db"], 2), _fmt(b["acceptable"]), _fmt(b.get("factor_vs_text_wire"), 0),
                     b["note"]])
    return head, rows


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(out)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def chart_points(report: dict) -> list[tuple[str, float, str]]:
    """(label, b/s, group) per bar: text options, WebRTC runs, offline audio+video pairs, and the
    lowest acceptable setting of each offline codec and size."""
    points = []
    for item in report["text_link"]:
        value = item["bits_per_second"]["steady_wire_up"] or item["bits_per_second"]["wire_up"]
        if value:
            points.append((f"text: {item['key']} (wire up)", value, "text"))
    best: dict[tuple[str, str], dict] = {}
    for b in report.get("baselines", []):
        if b["family"] == "webrtc":
            points.append((f"WebRTC {b['name']}", b["bits_per_second"], "webrtc"))
        elif b["family"] == "offline av":
            points.append((f"{b['name']} {b['resolution']}", b["bits_per_second"], "av"))
        elif b["acceptable"] and b["bits_per_second"] is not None:
            key = (b["name"].split()[0], b["resolution"])
            if key not in best or b["bits_per_second"] < best[key]["bits_per_second"]:
                best[key] = b
    for (codec, size), b in sorted(best.items()):
        points.append((f"{codec} {size} {b['setting']}", b["bits_per_second"], "offline"))
    return points


def write_chart(report: dict, path: Path) -> Path | None:
    points = chart_points(report)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"text": "#2a9d8f", "webrtc": "#e76f51", "av": "#8d5fa8", "offline": "#457b9d"}
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(points) + 1.6))
    labels = [p[0] for p in points]
    values = [p[1] for p in points]
    ax.barh(range(len(points)), values, color=[colors[p[2]] for p in points])
    ax.set_yticks(range(len(points)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("bits per second (log scale)")
    for i, v in enumerate(values):
        ax.text(v * 1.08, i, f"{v:,.0f}", va="center", fontsize=7)
    bar = report.get("bars", {}).get("wire_bar_bps")
    if bar:
        ax.axvline(bar, color="#2a9d8f", linestyle=":", linewidth=1)
    ax.set_title("textcall: the text link against sending the media (same clips)")
    ax.set_xlim(min(values) / 2, max(values) * 8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(report: dict) -> str:
    parts = [f"# textcall bitrate report\n\n{report['summary']}\n"]
    head, rows = text_rows(report)
    parts.append("## The text link\n\n" + report["text_link_intro"] + "\n\n" + _md_table(head, rows))
    for item in report["text_link"]:
        if item["breakdown_up"] or item["breakdown_down"]:
            h, r = breakdown_rows(item)
            parts.append(f"### Where the bytes go: {item['label']}\n\n" + _md_table(h, r))
    if report.get("baselines"):
        head, rows = baseline_rows(report)
        parts.append("## Sending the media instead\n\n" + report["baseline_intro"] + "\n\n" + _md_table(head, rows))
    if report.get("bars"):
        parts.append("## Bars\n\n" + "\n".join(f"- {line}" for line in report["bars"]["lines"]))
    if report.get("chart"):
        parts.append(f"![bits per second per method]({report['chart']})")
    parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in report["notes"]))
    return "\n\n".join(parts) + "\n"


def html_page(report: dict, chart: Path | None) -> str:
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
        "th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:right}"
        "td:first-child,th:first-child,td:nth-child(2){text-align:left}th{background:#f2f2f2}"
        "img{max-width:100%}.met{color:#1b7f3b}.missed{color:#b42318}"
    )
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>textcall bitrate report</title>"
             f"<style>{style}</style></head><body><h1>textcall bitrate report</h1>"
             f"<p>{html.escape(report['summary'])}</p>"]
    if chart is not None and chart.exists():
        data = base64.b64encode(chart.read_bytes()).decode()
        parts.append(f"<img alt='bits per second per method' src='data:image/png;base64,{data}'>")
    if report.get("bars"):
        items = "".join(
            f"<li class='{'' if ok is None else 'met' if ok else 'missed'}'>{html.escape(line)}</li>"
            for line, ok in zip(report["bars"]["lines"], report["bars"]["met"])
        )
        parts.append(f"<h2>Bars</h2><ul>{items}</ul>")
    head, rows = text_rows(report)
    parts.append(f"<h2>The text link</h2><p>{html.escape(report['text_link_intro'])}</p>" + _html_table(head, rows))
    for item in report["text_link"]:
        if item["breakdown_up"] or item["breakdown_down"]:
            h, r = breakdown_rows(item)
            parts.append(f"<h3>Where the bytes go: {html.escape(item['label'])}</h3>" + _html_table(h, r))
    if report.get("baselines"):
        head, rows = baseline_rows(report)
        parts.append(f"<h2>Sending the media instead</h2><p>{html.escape(report['baseline_intro'])}</p>"
                     + _html_table(head, rows))
    parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in report["notes"]) + "</ul>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(report: dict, out_dir: Path, *, chart: bool = True) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    png = write_chart(report, out_dir / "bitrate.png") if chart else None
    if png is not None:
        report["chart"] = png.name
        files["png"] = png
    files["json"] = out_dir / "report.json"
    files["json"].write_text(json.dumps(report, indent=2, default=_json_default) + "\n", encoding="utf-8")
    files["md"] = out_dir / "report.md"
    files["md"].write_text(markdown(report), encoding="utf-8")
    files["html"] = out_dir / "report.html"
    files["html"].write_text(html_page(report, png), encoding="utf-8")
    return files


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
