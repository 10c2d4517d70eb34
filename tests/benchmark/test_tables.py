"""Tables: numbers equal an independent recomputation; LaTeX is compile-shaped booktabs; paper column."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from benchmark import tables

PAIRS = [("walker_walk", "walker_downhill"), ("cheetah_run", "cheetah_nopaw")]


def synthetic_final(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for source, target in PAIRS:
        for method, base in (("dreamerv2", 300.0), ("coworld", 500.0)):
            for s in range(3):
                for ep in range(4):
                    r = base + rng.normal(0, 50)
                    rows.append({"suite": "dmc-transfer", "profile": "smoke", "source": source, "target": target,
                                 "method": method, "seed": s, "phase": "final", "step": 20, "episode": ep,
                                 "eval_seed": 1_000_000 + ep, "return": r, "success": False, "normalized": r / 10})
    return pd.DataFrame(rows)


def test_wide_table_equals_independent_recomputation():
    final = synthetic_final()
    wide = tables.wide_table(final)
    for source, target in PAIRS:
        for method in ("dreamerv2", "coworld"):
            r = np.array([row["return"] for row in final.to_dict("records")
                          if (row["source"], row["target"], row["method"]) == (source, target, method)])
            cell = wide.loc[(source, target)]
            assert np.isclose(cell[f"{method} mean"], r.mean()) and np.isclose(cell[f"{method} std"], r.std())
            assert cell[f"{method} episodes"] == 12 and cell[f"{method} seeds"] == 3


def test_latex_is_booktabs_with_balanced_braces_and_bold_best(tmp_path):
    final = synthetic_final()
    wide, caption = tables.write_tables(final, tmp_path, "dmc-transfer", "smoke", paper="coworld-neurips",
                                        order=("dreamerv2", "coworld"))
    tex = (tmp_path / "table.tex").read_text()
    assert tex.count("{") == tex.count("}")
    assert re.search(r"\\toprule.*\\midrule.*\\bottomrule", tex, re.S)
    assert "\\begin{tabular}" in tex and "\\end{table}" in tex and "\\caption{" in tex
    assert "walker\\_walk $\\rightarrow$ walker\\_downhill" in tex and "_" not in tex.replace("\\_", "")
    body = tex[tex.index("\\midrule"):tex.index("\\bottomrule")].strip().splitlines()[1:]
    assert len(body) == len(PAIRS)
    for line in body:  # coworld (base 500) is best in every row, exactly one bold cell per row
        assert line.count("\\textbf{") == 1 and line.split("&")[2].strip().startswith("\\textbf{")
    assert "3 training seeds" in caption and "4 evaluation episodes" in caption and "standard deviation" in caption
    # the paper's numbers (NeurIPS Table 3) ride along
    assert wide.loc[("walker_walk", "walker_downhill"), "coworld paper"] == 629
    assert "(paper)" in tex and "629.0" in tex
    md = (tmp_path / "table.md").read_text()
    assert "walker_walk → walker_downhill" in md and md.count("**") == 2 * len(PAIRS)
    assert pd.read_csv(tmp_path / "table.csv").shape[0] == len(PAIRS)


def test_metaworld_tables_add_success_rates(tmp_path):
    final = synthetic_final()
    final["success"] = (final["method"] == "coworld") & (final["episode"] < 3)  # coworld: 3 of 4 episodes
    tables.write_tables(final, tmp_path, "metaworld-transfer", "smoke")
    md = (tmp_path / "table.md").read_text()
    rates = md[md.index("Success rate") - 400:]
    assert "75%" in rates and "0%" in rates and md.count("walker_walk → walker_downhill") == 2
    tables.write_tables(final, tmp_path, "dmc-transfer", "smoke")
    assert "Success rate" not in (tmp_path / "table.md").read_text()
