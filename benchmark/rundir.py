"""The layout of a run directory, shared by the runner that writes it and the report that reads it:
`<out>/<suite>/<method>/<pair>/seed<N>/` holds `result.json`, `final_frames.npz` and `job.log`."""
from __future__ import annotations

RESULT, FRAMES, LOG = "result.json", "final_frames.npz", "job.log"
RESULT_GLOB = f"*/*/seed*/{RESULT}"  # every finished job under a suite directory
