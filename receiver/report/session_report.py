"""The light report a live session leaves beside its recordings: its text link, no media baselines.

The receiver's bitrate meter calls :func:`write_session_report` when a session closes; the files
have the same format as ``textcall report`` writes (report.json, report.md, report.html) so a later
``textcall report SESSION_FOLDER`` adds the media baselines to the same numbers.
"""

from __future__ import annotations

from pathlib import Path

from receiver.report.render import write_report
from receiver.report.run import result_from_meter, text_only


def write_session_report(folder: Path, meter: dict) -> dict[str, Path]:
    result = result_from_meter(meter)
    report = text_only(result, f"live session {meter.get('session_id', '?')}")
    return write_report(report, folder, chart=False)
