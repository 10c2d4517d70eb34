"""`owbench collect` and `owbench datasets`: happy paths and user mistakes (one line, exit code 2)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from collectors import store
from cli_helpers import invoke, one_line_error

TINY = ["--image-size", "16", "--max-episode-steps", "4"]




@pytest.fixture()
def collected(owbench_home):
    result = invoke("collect", "--env", "walker_walk", "--quality", "random", "--episodes", "2", *TINY)
    assert result.exit_code == 0, result.output
    return store.resolve_location("dmc/walker_walk/random-16px-v1")


def test_collect_prints_location_and_summary_and_resumes(collected):
    ds = store.open_dataset(collected)
    assert ds.n_episodes == 2 and ds.attrs["image_size"] == 16
    again = invoke("collect", "--env", "walker_walk", "--quality", "random", "--episodes", "2", *TINY)
    assert again.exit_code == 0 and "resumed after 2 committed episodes" in again.output
    assert "wrote" in again.output and collected in again.output.replace("\n", "")


def test_collect_user_mistakes(collected):
    one_line_error(invoke("collect", "--env", "walker_wlak", "--quality", "random"), "walker_walk")
    one_line_error(invoke("collect", "--env", "walker_walk", "--quality", "meduim"), "medium")
    one_line_error(invoke("collect", "--env", "walker_walk", "--quality", "random", "--episodes", "2", "--seed", "4",
                          *TINY), "seed=0 (now 4)", "--overwrite")
    one_line_error(invoke("collect", "--env", "walker_walk", "--quality", "random", "--episodes", "1",
                          "--steps", "3"), "not both")


def test_list_info_filmstrip_verify(collected, tmp_path):
    listed = invoke("datasets", "list")
    assert listed.exit_code == 0 and "dmc/walker_walk/random-16px-v1" in listed.output
    strip = tmp_path / "strip.png"
    info = invoke("datasets", "info", "dmc/walker_walk/random-16px-v1", "--filmstrip", str(strip), "--frames", "5")
    assert info.exit_code == 0 and "return mean" in info.output
    assert "SeedSequence([seed, i])" in info.output  # attribute values are printed as text, not rich markup
    assert np.asarray(Image.open(strip)).shape == (16, 80, 3)
    ok = invoke("datasets", "verify", "dmc/walker_walk/random-16px-v1")
    assert ok.exit_code == 0 and "ok:" in ok.output


def test_verify_names_the_corrupt_array_and_chunk(collected):
    chunk = next(f for f in sorted(Path(collected, "reward", "c").rglob("*")) if f.is_file())
    chunk.write_bytes(chunk.read_bytes()[:5])
    result = invoke("datasets", "verify", collected)
    assert result.exit_code == 1 and "reward chunk 0" in result.output


def test_verify_missing_commit_record_and_bad_paths(collected, tmp_path):
    meta = Path(collected, "zarr.json")
    doc = json.loads(meta.read_text())
    del doc["attributes"]["committed_episodes"]
    meta.write_text(json.dumps(doc))
    result = invoke("datasets", "verify", collected)
    assert result.exit_code == 1 and "commit record" in result.output
    one_line_error(invoke("datasets", "verify", str(tmp_path / "nothing.zarr")), "no dataset at")
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / "zarr.json").write_text("{not json")
    one_line_error(invoke("datasets", "info", str(tmp_path / "junk.zarr")), "not a readable owbench dataset")


def test_export_import_round_trip(collected, tmp_path):
    out = tmp_path / "npz"
    result = invoke("datasets", "export", "dmc/walker_walk/random-16px-v1", "--format", "npz", "--out", str(out))
    assert result.exit_code == 0 and len(list(out.glob("*.npz"))) == 2
    one_line_error(invoke("datasets", "export", "dmc/walker_walk/random-16px-v1", "--format", "npz", "--out", str(out)),
                   "--overwrite")
    back = invoke("datasets", "import", str(out), "--out", str(tmp_path / "back.zarr"))
    assert back.exit_code == 0, back.output
    a, b = store.open_dataset(collected), store.open_dataset(tmp_path / "back.zarr")
    assert np.array_equal(a.read("image"), b.read("image")) and np.array_equal(a.read("physics"), b.read("physics"))
    usage = invoke("datasets", "export", "dmc/walker_walk/random-16px-v1", "--format", "csv")
    assert usage.exit_code == 2 and "csv" in usage.output


def test_suites_show_lists_the_baselines_with_the_papers_numbers():
    result = invoke("suites", "show", "dmc-transfer", "--profile", "paper")
    assert result.exit_code == 0, result.output
    for method in ("drq+bc", "bc", "offline-dv2", "dv2-finetune"):
        assert method in result.output
    numbers = result.output[result.output.index("paper numbers (coworld-neurips)"):]
    # NeurIPS Table 3, walker_downhill: DrQ+BC, Offline DV2, DV2 Finetune (cells may wrap at the console's width)
    assert all(re.search(rf"\b{n} ±", numbers) for n in (291, 435, 379))


def test_random_collection_with_render_workers_never_imports_torch(tmp_path):
    """`owbench collect --quality random --workers 2` runs without torch in this process and in the render
    process it spawns (which re-imports the entry point): start-up is part of what a user waits for."""
    import os
    import subprocess
    import sys

    code = ("import sys\nfrom datasets_cli.main import cli\n"
            "cli(['collect', '--env', 'cartpole_swingup', '--quality', 'random', '--episodes', '2', '--workers', '2',"
            f" '--max-episode-steps', '70', '--image-size', '16', '--out', {str(tmp_path / 'd.zarr')!r}])\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    probe = ("import sys\nfrom collectors import render_pool\n"  # what a spawned render worker has imported
             "render_pool._init_worker('cartpole_swingup', 16, None, False)\n"
             "assert 'torch' not in sys.modules, 'torch imported by a render worker'\n")
    for program in (code, probe):
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                              env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
        assert done.returncode == 0, done.stderr[-2000:]
    assert store.open_dataset(tmp_path / "d.zarr").n_episodes == 2
