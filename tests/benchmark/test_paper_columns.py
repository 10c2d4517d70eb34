"""Paper columns of renamed methods: CoWorld NeurIPS's Offline DV2 is owbench's offline-dv2."""
from __future__ import annotations

from benchmark import tables
from test_tables import PAIRS, synthetic_final


def test_neurips_offline_dv2_column_is_offline_dv2_not_plain_dreamerv2():
    """CoWorld NeurIPS's "Offline DV2" rows (named `dreamerv2` in the CSV) are V-D4RL's Offline DV2: they fill
    offline-dv2's paper column; plain dreamerv2 gets arXiv v1's DreamerV2 numbers only."""
    wide = tables.wide_table(synthetic_final().replace({"method": {"coworld": "offline-dv2"}}))
    neurips = tables.with_paper(wide, "dmc-transfer", "coworld-neurips", ["dreamerv2", "offline-dv2"])
    assert neurips.loc[("walker_walk", "walker_downhill"), "offline-dv2 paper"] == 435
    assert neurips.loc[("cheetah_run", "cheetah_nopaw"), "offline-dv2 paper std"] == 4
    assert "dreamerv2 paper" not in neurips.columns
    arxiv = tables.with_paper(wide, "dmc-transfer", "coworld-arxiv-v1", ["dreamerv2", "offline-dv2"])
    assert arxiv.loc[("walker_walk", "walker_downhill"), "dreamerv2 paper"] == 387
    assert "offline-dv2 paper" not in arxiv.columns


def test_paper_numbers_of_a_suite_list_the_reported_methods_only():
    numbers = tables.paper_numbers("dmc-transfer", "coworld-neurips", PAIRS, ["dreamerv2", "offline-dv2", "drq+bc", "bc"])
    assert list(numbers.columns) == ["offline-dv2", "drq+bc"]  # no BC in the paper; its DV2 is offline-dv2
    assert numbers.loc["walker_walk → walker_downhill", "drq+bc"] == "291 ± 10"
    assert numbers.loc["cheetah_run → cheetah_nopaw", "offline-dv2"] == "51 ± 4"
