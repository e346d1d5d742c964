"""The light report a live session leaves beside its recordings: its text link, no media baselines.

Built from outside the receiver (the demo calls :func:`write_session_report` with its session's
bitrate.json; the receiver itself writes only that meter); the files
have the same format as ``textcall report`` writes (report.json, report.md, report.html) so a later
``textcall report SESSION_FOLDER`` adds the media baselines to the same numbers.
"""

from __future__ import annotations

from pathlib import Path

from receiver.report.render import write_report
from receiver.report.inputs import result_from_meter
from receiver.report.run import text_only


def write_session_report(folder: Path, meter: dict) -> dict[str, Path]:
    result = result_from_meter(meter)
    report = text_only(result, f"live session {meter.get('session_id', '?')}")
    return write_report(report, folder, chart=False)
