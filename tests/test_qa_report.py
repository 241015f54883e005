"""Model QA plots and HTML report: the HTML parsed (html.parser): every image has a row,
every <img> is a PNG that Pillow opens; the plots' point positions."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from napari_unet_weights import compare_models, evaluate_models
from napari_unet_weights.qa.plots import comparison_plot, per_image_plot, summary_plot
from napari_unet_weights.qa.report import report_html, write_report
from test_qa import grid_cases

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """The page's <img> sources and the per-image table's rows (their data-image)."""

    def __init__(self) -> None:
        super().__init__()
        self.images, self.rows, self.tables = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "table":
            self.tables.append(attrs.get("class"))
        elif tag == "tr" and "data-image" in attrs:
            self.rows.append((self.tables[-1], attrs["data-image"]))


def decode_png(source: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    data = base64.b64decode(source[len(prefix):], validate=True)
    assert data.startswith(PNG_SIGNATURE)
    picture = Image.open(io.BytesIO(data))
    picture.load()
    assert picture.format == "PNG" and min(picture.size) > 0
    return picture


@pytest.fixture(scope="module")
def result():
    cases = grid_cases(seed=8, count=6)
    rng = np.random.default_rng(2)
    return evaluate_models(
        [t.astype(float) for t, _, _ in cases], [t for t, _, _ in cases],
        {"A <x>": [p for _, p, _ in cases],
         "B": [np.where(rng.random(t.shape) < 0.03, 0, t) for t, _, _ in cases]},
        image_names=[f"img&{i}" for i in range(6)], n_boot=50)


def test_report_has_a_row_per_image_and_valid_pngs(result, tmp_path):
    path = write_report(result, tmp_path / "report.html", source="grid", per_kind=2)
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    rows = [name for table, name in page.rows if table == "per-image"]
    assert sorted(rows) == sorted(result.images)
    worst_first = result.worst_images("A <x>")["image"].tolist()
    assert rows == worst_first
    assert len(page.images) >= 3 + 2  # three plots, and a gallery
    for source in page.images:
        decode_png(source)
    text = path.read_text(encoding="utf-8")
    assert "A &lt;x&gt;" in text and "A <x>" not in text  # names are escaped
    assert "B against A &lt;x&gt;" in text  # the comparison section


def test_report_of_one_model_without_gallery():
    one = evaluate_models([np.zeros((8, 8))], [np.zeros((8, 8), int)],
                          {"empty": [np.zeros((8, 8), int)]}, n_boot=10)
    page = _Page()
    page.feed(report_html(one, per_kind=0))
    assert [name for _, name in page.rows] == ["0"]
    assert len(page.images) == 2  # the summary and per-image plots only


def test_plots_are_pngs_and_know_where_their_points_are(result):
    comparison = compare_models(result)
    plots = {"per image": per_image_plot(result), "comparison": comparison_plot(comparison),
             "summary": summary_plot(result)}
    for name, plot in plots.items():
        picture = decode_png("data:image/png;base64,"
                             + base64.b64encode(plot.png).decode("ascii"))
        assert picture.size == (plot.width, plot.height), name
        inside = plot.points[["x", "y"]].to_numpy()
        assert (inside >= 0).all() and (inside[:, 0] <= plot.width).all(), name
    per_image = plots["per image"]
    assert len(per_image.points) == 2 * len(result.images)
    for row in per_image.points.itertuples(index=False):
        hit = per_image.point_at(row.x + 1, row.y - 1)
        assert hit is not None and hit["model"] in result.models
    scatter = plots["comparison"]
    assert sorted(scatter.points["image"]) == sorted(result.images)
    first = scatter.points.iloc[0]
    assert scatter.point_at(first["x"], first["y"])["image"] == first["image"]
    assert scatter.point_at(-50, -50) is None
    # the point's place follows the figures: a higher mAP is higher on the picture
    ordered = per_image.points[per_image.points["model"] == "B"]
    maps = result.per_image.set_index(["model", "image"])["map"]
    values = [maps["B", image] for image in ordered["image"]]
    assert len(set(values)) > 1
    assert np.corrcoef(values, -ordered["y"].to_numpy())[0, 1] == pytest.approx(1.0)
