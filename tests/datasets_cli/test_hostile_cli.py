"""Hostile command lines: every user mistake ends in one line on stderr, exit code 2, no traceback, and
nothing written over files owbench did not write."""
from __future__ import annotations

import errno
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import store
from cli_helpers import invoke, one_line_error

TINY = ["--env", "walker_walk", "--quality", "random", "--episodes", "1", "--image-size", "16",
        "--max-episode-steps", "3"]




@pytest.fixture()
def collected(tmp_path):
    out = tmp_path / "d.zarr"
    assert invoke("collect", *TINY, "--out", out).exit_code == 0
    return out


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_collect_never_writes_over_files_it_did_not_write(tmp_path, monkeypatch, overwrite):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "thesis.tex").write_text("x")
    one_line_error(invoke("collect", *TINY, "--out", folder, *overwrite), "not an owbench dataset")
    (tmp_path / "file.txt").write_text("y")
    one_line_error(invoke("collect", *TINY, "--out", tmp_path / "file.txt", *overwrite), "not an owbench dataset")
    monkeypatch.chdir(folder)
    one_line_error(invoke("collect", *TINY, "--out", ".", *overwrite), "not an owbench dataset")
    assert os.listdir(folder) == ["thesis.tex"] and (tmp_path / "file.txt").read_text() == "y"


def test_collect_argument_mistakes(tmp_path):
    one_line_error(invoke("collect", *TINY, "--seed", "-5", "--out", tmp_path / "a.zarr"), "--seed")
    one_line_error(invoke("collect", *TINY, "--camera", "99", "--out", tmp_path / "b.zarr"), "no camera 99", "-1")
    one_line_error(invoke("collect", *TINY, "--camera", "nosuch", "--out", tmp_path / "c.zarr"), "'nosuch'")
    one_line_error(invoke("collect", *TINY, "--out", tmp_path / ("x" * 300) / "d.zarr"), "File name too long")
    one_line_error(invoke("collect", *TINY, "--out", "foo://x"), "unknown URL scheme 'foo'")
    assert not [p for p in tmp_path.iterdir() if p.name != "x" * 300]  # nothing written for a refused command


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_s3_without_s3fs(collected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("collect", *TINY, "--out", "s3://bucket/x.zarr"), "pip install owbench[s3]")
    one_line_error(invoke("datasets", "info", "s3://bucket/x.zarr"), "owbench[s3]")
    one_line_error(invoke("datasets", "export", collected, "--format", "npz", "--out", "s3://bucket/x"), "local folder")
    assert not Path("s3:").exists()


@pytest.mark.parametrize("errno_", [errno.ENOSPC, errno.EROFS])
def test_a_full_or_read_only_disk_is_one_line(collected, tmp_path, monkeypatch, errno_):
    from agents import retrieval
    from collectors import export

    def refuse(*args, **kwargs):
        raise OSError(errno_, os.strerror(errno_), str(tmp_path / "x"))

    with monkeypatch.context() as m:
        m.setattr(store._ChunkAppender, "write", refuse)
        one_line_error(invoke("collect", *TINY, "--out", tmp_path / "new.zarr"), os.strerror(errno_), "--out")
    with monkeypatch.context() as m:
        m.setattr(export, "_write_atomic", refuse)
        one_line_error(invoke("datasets", "export", collected, "--format", "npz", "--out", tmp_path / "e"),
                       os.strerror(errno_))
    with monkeypatch.context() as m:
        m.setattr(retrieval.RetrievalIndex, "save", refuse)
        one_line_error(invoke("index", "build", "--datasets", collected, "--encoder", "pixels", "--out",
                              tmp_path / "i.index"), os.strerror(errno_))


def test_brackets_in_paths_are_printed_not_parsed(tmp_path):
    odd = tmp_path / "[red]" / "[/nosuch]x"  # dropped by rich markup, or a MarkupError
    odd.mkdir(parents=True)
    ok = invoke("collect", *TINY, "--out", odd / "d.zarr")
    assert ok.exit_code == 0 and f"{odd}/d.zarr" in ok.output.replace("\n", ""), ok.output
    line = one_line_error(invoke("datasets", "info", odd / "none.zarr"), "no dataset at")
    assert f"{odd}/none.zarr" in line
    for command in (["info", odd / "d.zarr"], ["verify", odd / "d.zarr"]):
        result = invoke("datasets", *command)
        assert result.exit_code == 0 and "[red]/[/nosuch]x/" in result.output, result.output


def test_zarr_stores_that_are_not_owbench_datasets(collected, tmp_path):
    plain = tmp_path / "plain.zarr"
    zarr.open_group(str(plain), mode="w").attrs["x"] = 1
    one_line_error(invoke("datasets", "verify", plain), "not an owbench dataset")
    empty = tmp_path / "empty.zarr"  # owbench attributes, no arrays
    group = zarr.open_group(str(empty), mode="w")
    group.attrs.update(json.loads((collected / "zarr.json").read_text())["attributes"])
    for command in (["info", empty], ["verify", empty], ["export", empty, "--format", "npz", "--out", tmp_path / "o"]):
        one_line_error(invoke("datasets", *command), "lacks the arrays")


def test_training_data_readers_stop_on_a_corrupt_chunk(collected, tmp_path):
    import numcodecs

    chunk = next(f for f in sorted((collected / "image" / "c").rglob("*")) if f.is_file())
    values = np.frombuffer(numcodecs.Zstd().decode(chunk.read_bytes()), np.uint8).copy()
    values[3] ^= 0xFF
    chunk.write_bytes(numcodecs.Zstd().encode(values))
    assert invoke("datasets", "verify", collected).exit_code == 1
    for command in (["datasets", "export", collected, "--format", "npz", "--out", tmp_path / "o"],
                    ["index", "build", "--datasets", collected, "--encoder", "pixels", "--out", tmp_path / "i"]):
        one_line_error(invoke(*command), "image chunk 0 fails its checksum", f"owbench datasets verify {collected}")


@settings(max_examples=30, deadline=None, derandomize=True)
@given(data=st.binary(max_size=300), name=st.sampled_from(["ep.npz", "shard.hdf5", "owbench.json"]))
def test_any_import_folder_is_imported_or_refused_in_one_line(data, name):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        (folder / name).write_bytes(data)
        result = invoke("datasets", "import", folder, "--out", Path(tmp) / "o.zarr", "--env", "walker_walk",
                        "--quality", "expert")
        one_line_error(result)
