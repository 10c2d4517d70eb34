"""`owbench collect --behaviour dreamerv2` and what `owbench datasets info` says about the data it made."""
from __future__ import annotations


from collectors import store
from cli_helpers import invoke, one_line_error

TINY = ["--image-size", "16", "--max-episode-steps", "8", "--behaviour-preset", "smoke", "--device", "cpu"]




def test_collect_tells_the_cost_first_then_info_shows_agent_steps_and_size(owbench_home):
    result = invoke("collect", "--env", "walker_downhill", "--quality", "medium-replay", "--behaviour", "dreamerv2",
                    "--behaviour-steps", "16", *TINY)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the console wraps long lines
    assert text.startswith("DreamerV2 behaviour on walker_downhill") and "at about 90,000 frames" in text
    assert "trains until a stop check reaches 321.6 (medium)" in text
    assert text.index("capped at 16 agent steps") < text.index("maximum: 964.9, 1/3 of it 321.6") < text.index("wrote")
    assert "stopped by the --behaviour-steps cap of 16" in text
    location = store.resolve_location("transfer/walker_downhill/medium-replay-dreamerv2-16px-v2")
    assert store.verify(location) == []
    info = invoke("datasets", "info", location)
    assert info.exit_code == 0, info.output
    assert "behaviour agent dreamerv2, behaviour env steps 32, episodes 2, transitions 16, size MiB" in \
        " ".join(info.output.split())


def test_sac_datasets_say_their_agent(owbench_home):
    result = invoke("collect", "--env", "walker_walk", "--quality", "random", "--episodes", "1",
                    "--image-size", "16", "--max-episode-steps", "4")
    assert result.exit_code == 0, result.output
    info = invoke("datasets", "info", "dmc/walker_walk/random-16px-v1")
    assert "behaviour agent random, behaviour env steps None, episodes 1, transitions 4" in " ".join(info.output.split())


def test_mistakes_end_in_one_line_with_the_fix(owbench_home):
    one_line_error(invoke("collect", "--env", "walker_walk", "--quality", "random", "--behaviour", "dreamerv2", *TINY),
                   "no behaviour agent", "--behaviour sac")
    one_line_error(invoke("collect", "--env", "walker_walk", "--quality", "medium-replay", "--behaviour", "dreamerv2",
                          "--episodes", "3", *TINY), "--episodes", "--behaviour-steps")
    one_line_error(invoke("collect", "--env", "walker_walk", "--quality", "medium-replay", "--behaviour-steps", "5"),
                   "--max-train-steps")


def test_frozen_dreamerv2_quality_trains_to_the_cap_then_collects_the_episodes(owbench_home):
    result = invoke("collect", "--env", "walker_walk", "--quality", "noisy-expert", "--behaviour", "dreamerv2",
                    "--episodes", "2", "--behaviour-steps", "16", *TINY)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "reaches 868.4 (expert)" in text and "2 episodes, 16 steps" in text
    assert "behaviour expert: pixel DreamerV2 (smoke preset) trained from scratch, frozen after 16 agent steps" in text
    ds = store.open_dataset("dmc/walker_walk/noisy-expert-dreamerv2-16px-v1")
    assert ds.n_episodes == 2 and list(ds.episodes["noise_std"].round(2)) == [0.1, 0.3]


def test_a_foreign_out_is_refused_before_the_cost_note_and_left_untouched(owbench_home, tmp_path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.tex").write_text("x")
    for overwrite in ([], ["--overwrite"]):
        one_line_error(invoke("collect", "--env", "walker_walk", "--quality", "medium-replay", "--behaviour", "dreamerv2",
                              "--out", str(folder), *overwrite, *TINY), "is not an owbench dataset", "another --out")
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"] and not (tmp_path / "thesis.lock").exists()
