"""The layout of a run directory, shared by the runner that writes it and the report that reads it:
`<out>/<suite>/<method>/<pair>/seed<N>/` holds `config.json`, `result.json`, `final_frames.npz` and `job.log`,
and `error.txt` (one line) when a user error (a corrupt or mismatched dataset, a bad setting) stopped the job."""
from __future__ import annotations

RESULT, FRAMES, LOG, CONFIG, ERROR = "result.json", "final_frames.npz", "job.log", "config.json", "error.txt"
RESULT_GLOB = f"*/*/seed*/{RESULT}"  # every finished job under a suite directory
