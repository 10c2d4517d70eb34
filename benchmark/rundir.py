"""The layout of a run directory, shared by the runner that writes it and the report that reads it:
`<out>/<suite>/<method>/<pair>/seed<N>/` holds `config.json`, `result.json`, `final_frames.npz` and `job.log`."""
from __future__ import annotations

RESULT, FRAMES, LOG, CONFIG = "result.json", "final_frames.npz", "job.log", "config.json"
RESULT_GLOB = f"*/*/seed*/{RESULT}"  # every finished job under a suite directory
