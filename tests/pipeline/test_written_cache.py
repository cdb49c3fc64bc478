"""The result cache keeps what ``result.json`` leaves out (loss plots, thumbnails), so that a cached
result's scorecard is drawn again, the coach's grades applied, as it was first drawn."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grader.core.settings import Settings
from grader.pipeline.cache import EXTRAS, ResultCache
from grader.score.scorecard import NewImageRow
from tests.score.test_written import result_with


def test_a_cached_result_keeps_its_plots_and_thumbnails(tmp_path: Path) -> None:
    base = result_with()
    nb = base.notebooks[0].model_copy(update={
        "loss_plot_svg": "<svg>curves</svg>", "notebook_loss_plot": "data:image/png;base64,AAAA",
        "new_images": [NewImageRow(file="a.png", prediction="red", dataset_match=None, error=None,
                                   thumbnail="data:image/png;base64,BBBB")]})
    result = base.model_copy(update={"notebooks": [nb]})
    cache = ResultCache(Settings(project_dir=tmp_path, data_dir=None, cache_dir=tmp_path / "cache",
                                 python=sys.executable))
    cache.put("k", result, "<html>")
    assert "<svg>" not in (cache.root / "k" / "result.json").read_text()
    hit = cache.get("k")
    assert hit is not None and hit[0] == result and hit[0].notebooks[0].new_images[0].thumbnail.endswith("BBBB")
    (cache.root / "k" / EXTRAS).write_text(json.dumps([{"thumbnails": 3}]))  # damaged: the result as stored
    damaged = cache.get("k")
    assert damaged is not None and damaged[0].notebooks[0].loss_plot_svg == ""
