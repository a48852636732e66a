"""The counts table, headline and plot an analyst reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from rich.console import Console

from railwatch.adapters.counts import SceneCountRow
from railwatch.aoi import load_aoi
from railwatch.report import counts_table, headline, plot_counts

REPO = Path(__file__).resolve().parents[1]


def rows() -> list[SceneCountRow]:
    out = []
    for i, (cars, valid, surge) in enumerate([(12, 1.0, False), (3, 0.3, False), (15, 1.0, False),
                                              (45, 1.0, True), (73, 1.0, True)]):
        out.append(SceneCountRow(
            aoi_id="tumangang", source="simulator", scene_id=f"s{i}", detector_version="0.1.0",
            acquired=datetime(2023, 9, 1, tzinfo=UTC) + timedelta(days=i), occupied_m=cars * 14.5,
            cars=cars, cars_low=cars - 3, cars_high=cars + 200 if valid < 0.6 else cars + 3,
            valid_fraction=valid, shift_dx_m=0.0, shift_dy_m=0.0,
            flags="cloudy" if valid < 0.6 else "", image_key="k", mask_key="m", surge=surge,
            surge_ratio=cars / 20 if surge else None, baseline_cars=12.0))
    return out


def test_table_headline_and_plot(tmp_path: Path) -> None:
    aoi = load_aoi(REPO / "aois" / "tumangang.geojson")
    console = Console(record=True, width=120)
    console.print(counts_table(aoi, rows()))
    text = console.export_text()
    assert "SURGE 3.6× max" in text and "cloudy" in text and "70–76" in text
    assert headline(aoi, rows()) == ("Tumangang rail facility: 73 cars on 2023-09-05, 3.6× the "
                                     "historical maximum (2 scene(s) flagged from 2023-09-04)")
    assert headline(aoi, [r for r in rows() if not r.surge]) is None
    path = plot_counts(aoi, rows(), tmp_path / "plot.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 800 and img.size[1] > 400
        assert len(set(img.convert("L").getdata())) > 20  # something was drawn, not a blank page


def test_the_plot_is_laid_out_once_and_drawn_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lay_out` (the plot's and the quicklooks' layout): a tight layout left in place as the
    figure's layout engine made savefig draw the whole figure twice (≈ 20 % of a quicklook)."""
    from matplotlib.figure import Figure

    drawn: list[int] = []
    draw = Figure.draw

    def counted(self: Figure, renderer: Any) -> None:
        drawn.append(1)
        draw(self, renderer)

    monkeypatch.setattr(Figure, "draw", counted)
    plot_counts(load_aoi(REPO / "aois" / "tumangang.geojson"), rows(), tmp_path / "plot.png")
    assert len(drawn) == 1
