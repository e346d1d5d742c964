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
    head = ["option", "messages up", "call s", "media s", "added latency s (mean / max)", "payload up b/s",
            "all-in UDP up b/s", "all-in UDP down b/s", "of which STUN up b/s", "DTLS up b/s", "setup up B"]
    rows = []
    for item in report["text_link"]:
        r = item["bits_per_second"]
        latency = item.get("added_latency_s") or {}
        stun = item.get("stun_udp_up_bytes", 0)
        call = item.get("call_seconds") or 0
        rows.append([item["label"], _fmt(item["messages_up"]), _fmt(float(call)), _fmt(float(item["media_seconds"])),
                     f"{_fmt(latency.get('mean'), 2)} / {_fmt(latency.get('max'), 2)}" if item["source"] == "loopback" else "-",
                     _fmt(r.get("udp_payload_up")),
                     _fmt(r.get("udp_up")), _fmt(r.get("udp_down")),
                     _fmt(8 * stun / call if call else None),
                     _fmt(r["steady_wire_up"] or r["wire_up"]), _fmt(item.get("udp_setup_up_bytes"))])
    return head, rows


def breakdown_rows(item: dict) -> tuple[list[str], list[list[str]]]:
    head = ["what", "datagrams up", "bytes up", "datagrams down", "bytes down"]
    labels = sorted(set(item["breakdown_up"]) | set(item["breakdown_down"]))
    rows = []
    for label in labels:
        up = item["breakdown_up"].get(label, {"count": 0, "bytes": 0})
        down = item["breakdown_down"].get(label, {"count": 0, "bytes": 0})
        rows.append([label, _fmt(up["count"]), _fmt(up["bytes"]), _fmt(down["count"]), _fmt(down["bytes"])])
    stun_up, stun_down = item.get("stun_udp_up_bytes", 0), item.get("stun_udp_down_bytes", 0)
    rows.append(["STUN (consent checks, responses; with UDP/IP headers)", "", _fmt(stun_up), "", _fmt(stun_down)])
    rows.append(["setup (before Hello)", "", _fmt(item["setup_up_bytes"]), "", _fmt(item["setup_down_bytes"])])
    rows.append(["close (Bye, teardown)", "", _fmt(item["close_up_bytes"]), "", _fmt(item["close_down_bytes"])])
    return head, rows


def baseline_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    head = ["family", "method", "size", "b/s", "video b/s", "audio b/s", "all-in UDP b/s", "PSNR dB", "SSIM",
            "audio LSD dB", "acceptable", "x text (all in)", "note"]
    rows = []
    for b in report.get("baselines", []):
        rows.append([b["family"], b["name"], b["resolution"], _fmt(b["bits_per_second"]),
                     _fmt(b["video_bits_per_second"]), _fmt(b["audio_bits_per_second"]),
                     _fmt(b.get("udp_bits_per_second")), _fmt(b["psnr_db"], 2), _fmt(b["ssim"], 4),
                     _fmt(b["audio_lsd_db"], 2), _fmt(b["acceptable"]), _fmt(b.get("factor_udp_vs_text_udp"), 0),
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


CHART_TEXT = ("conversational", "economy", "sentence", "batch15-ppm-quiet", "recorded")
CHART_CODEC2 = ("450", "700C")


def chart_points(report: dict) -> list[tuple[str, float, float, str]]:
    """(label, all-in b/s, added latency s, group) per point: the main text options (all-in UDP up,
    their mean added latency), WebRTC at aiortc's defaults and its lowest pinned setting, Codec2 450 and
    700C (all in over RTP and the bitstream alone; ~0 added latency beyond a frame). The tables have
    every option and setting; the chart keeps the ones a reader compares."""
    points = []
    for item in report["text_link"]:
        value = item["bits_per_second"].get("udp_up")
        if value and item["key"] in CHART_TEXT:
            latency = (item.get("added_latency_s") or {}).get("mean") or 0.0
            points.append((f"textcall {item['key']}", value, latency, "text"))
    webrtc = [b for b in report.get("baselines", []) if b["family"] == "webrtc" and b.get("udp_bits_per_second")]
    pinned = [b for b in webrtc if b["setting"] != "aiortc defaults"]
    lowest = min(pinned, key=lambda b: b["udp_bits_per_second"], default=None)
    for b in webrtc:
        if b["setting"] == "aiortc defaults" or b is lowest:
            points.append((f"WebRTC {b['name']}", b["udp_bits_per_second"], 0.0, "webrtc"))
    for b in report.get("baselines", []):
        if b["name"].startswith("Codec2") and b.get("udp_bits_per_second") and b["setting"] in CHART_CODEC2:
            points.append((f"{b['name']} over RTP", b["udp_bits_per_second"], 0.04, "codec2"))
            points.append((f"{b['name']} bitstream", b["bits_per_second"], 0.04, "bitstream"))
    return points


def write_chart(report: dict, path: Path) -> Path | None:
    points = chart_points(report)
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {"text": ("#2a9d8f", "o", "textcall text link (all-in UDP up)"),
             "webrtc": ("#e76f51", "s", "WebRTC video + Opus (all-in UDP)"),
             "codec2": ("#457b9d", "^", "Codec2 over RTP/SRTP (all in, computed)"),
             "bitstream": ("#9aa5b1", "v", "Codec2 bitstream alone (no packets)")}
    fig, ax = plt.subplots(figsize=(10, 6))
    for group, (color, marker, label) in style.items():
        chosen = sorted((p for p in points if p[3] == group), key=lambda p: (p[2], p[1]))  # by latency, then rate
        if chosen:
            ax.scatter([p[2] + 0.02 for p in chosen], [p[1] for p in chosen], color=color, marker=marker,
                       s=60, label=label, zorder=3)
            for i, (name, value, latency, _) in enumerate(chosen):  # neighbours alternate above and below
                ax.annotate(name, (latency + 0.02, value), fontsize=7, xytext=(6, 3 if i % 2 == 0 else -10),
                            textcoords="offset points")
    bars = report.get("bars") or {}
    for key, color in (("conversational_bar_bps", "#2a9d8f"), ("economy_bar_bps", "#264653")):
        if bars.get(key):
            ax.axhline(bars[key], color=color, linestyle=":", linewidth=1,
                       label=f"{key.split('_')[0]} bar {bars[key]:g} b/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("added latency before a sentence is sent, seconds (mean; log scale, +0.02)")
    ax.set_ylabel("bits per second, all in (log scale)")
    ax.set_title("textcall: every byte counted, against sending the media")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
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
