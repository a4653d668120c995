"""Graphs as images, judged by their pixels (decoded with Pillow, not by our encoder),
the SVG's glyphs and metadata, and the PDF read back with pypdf."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import timezone

import numpy as np
import pytest

from django_statsd_push.render.graph import parse_graph_params, render_image
from django_statsd_push.render.graph.params import MAX_PIXELS
from django_statsd_push.render.series import Series

from .conftest import NOW, write_metric

from PIL import Image  # noqa: E402  (dev extra; a missing Pillow is an ImportError, never a skip)

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


@pytest.fixture
def graphs(root, client):
    write_metric(root, "five", [5] * 360)
    write_metric(root, "two", [2] * 360)
    write_metric(root, "three", [3] * 360)
    write_metric(root, "gappy", [5 if i < 180 else None for i in range(360)])
    return client


def png(client, *targets, **params) -> np.ndarray:
    params.setdefault("from", "-1h")
    status, headers, body = client.request("/render", [("target", t) for t in targets] + list(params.items()))
    assert status == 200, body[:300]
    assert headers["Content-Type"] == "image/png" and body.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(body)) as im:
        return np.asarray(im.convert("RGB"))


def is_color(pixels: np.ndarray, rgb, tolerance: int = 40) -> np.ndarray:
    return (np.abs(pixels.astype(int) - np.array(rgb)) <= tolerance).all(axis=-1)


def test_png_is_the_default_format_at_graphite_webs_size(graphs):
    status, headers, body = graphs.request("/render", {"target": "five", "from": "-1h"})
    assert status == 200 and headers["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(body)) as im:
        assert im.size == (330, 250)


def test_width_and_height(graphs):
    assert png(graphs, "five", width="640", height="120").shape == (120, 640, 3)


def test_a_constant_red_series_is_a_red_row_where_its_value_is(graphs):
    # graphOnly: the plot is the whole image, so value 5 of 0..10 is the middle row
    pixels = png(graphs, "color(five,'ff0000')", graphOnly="true", yMin="0", yMax="10", width="400", height="200",
                 lineWidth="3")
    red = is_color(pixels, RED)
    rows = np.flatnonzero(red.any(axis=1))
    assert rows.min() >= 98 and rows.max() <= 102, rows
    assert red[98:103].any(axis=0).mean() > 0.95  # across (nearly) the whole width
    assert is_color(pixels[:90], WHITE).all() and is_color(pixels[110:], WHITE).all()


def test_a_null_stretch_is_not_drawn(graphs):
    pixels = png(graphs, "color(gappy,'ff0000')", graphOnly="true", yMin="0", yMax="10", width="400", height="200",
                 lineWidth="3")
    columns = np.flatnonzero(is_color(pixels, RED).any(axis=0))
    assert columns.min() < 5 and 190 < columns.max() < 215, (columns.min(), columns.max())


def test_axes_title_and_legend_take_room_as_in_graphite_web(graphs):
    bare = png(graphs, "color(five,'ff0000')", yMin="0", yMax="10", hideLegend="true", lineWidth="3")
    titled = png(graphs, "color(five,'ff0000')", yMin="0", yMax="10", hideLegend="true", lineWidth="3", title="T")
    dressed = png(graphs, "color(five,'ff0000')", yMin="0", yMax="10", title="Title", lineWidth="3")
    row = lambda p: np.flatnonzero(is_color(p[:, 100:], RED).any(axis=1)).mean()  # noqa: E731  (right of labels)
    assert 100 < row(bare) < 120 and row(titled) > row(bare) + 5  # a title pushes the plot down
    assert row(dressed) < row(titled) - 5  # a legend below pushes its bottom up
    legend = dressed[-30:]
    assert is_color(legend, RED).any(), "legend swatch in the series colour"
    assert is_color(bare[:, :20], (0, 0, 0), 80).any(), "y labels on the left"


def test_stacked_area_fills_between_series(graphs):
    kw = dict(graphOnly="true", yMin="0", yMax="10", width="300", height="200", colorList="ff0000,0000ff")
    pixels = png(graphs, "two", "three", areaMode="stacked", **kw)
    at = lambda value: pixels[int(200 - value * 20), 150]  # noqa: E731  (row of a value, middle column)
    assert is_color(at(1), RED).all()  # 0..2: the first series
    assert is_color(at(4), BLUE).all()  # 2..5: the second, stacked on the first
    assert is_color(at(7), WHITE).all()  # above the total: nothing
    lines_only = png(graphs, "two", "three", **kw)
    assert is_color(lines_only[int(200 - 1 * 20), 150], WHITE).all()  # without areaMode nothing is filled


def test_area_alpha_blends_with_the_background(graphs):
    pixels = png(graphs, "color(two,'ff0000')", areaMode="all", areaAlpha="0.5", graphOnly="true", yMin="0",
                 yMax="10", width="300", height="200")
    r, g, b = pixels[190, 150].tolist()
    assert r > 240 and 100 < g < 160 and 100 < b < 160  # half red over white


def test_bgcolor_fgcolor_and_templates(graphs):
    pixels = png(graphs, "five", bgcolor="000000", hideLegend="true")
    assert is_color(pixels[0:5, 0:5], (0, 0, 0), 0).all()
    dark = png(graphs, "five", template="solarized-dark")
    assert is_color(dark[0:5, 0:5], (0x00, 0x2B, 0x36), 0).all()


def test_translucent_background_keeps_its_alpha(graphs):
    status, _, body = graphs.request("/render", {"target": "five", "from": "-1h", "bgcolor": "ffffff00"})
    with Image.open(io.BytesIO(body)) as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 0


def test_log_base_axis(graphs):
    pixels = png(graphs, "color(five,'ff0000')", graphOnly="true", logBase="10", yMin="1", yMax="100",
                 width="300", height="200", lineWidth="3")
    rows = np.flatnonzero(is_color(pixels, RED).any(axis=1))
    expected = 200 - np.log10(5) / 2 * 200  # log10(5) of the two decades
    assert abs(rows.mean() - expected) < 3, (rows.mean(), expected)


def test_no_data_says_so(graphs):
    pixels = png(graphs, "nothing.here")
    assert is_color(pixels, (200, 0, 50), 30).any()  # graphite-web's red "No Data"


# -- series style from Series.options (what color(), alpha(), dashed() ... set) --------
def draw(*series: Series, **params) -> np.ndarray:
    params = {"graphOnly": "true", "yMin": "0", "yMax": "10", "width": "300", "height": "200", "lineWidth": "3",
              **params}
    body = render_image(list(series), parse_graph_params(params), "png", timezone.utc)
    with Image.open(io.BytesIO(body)) as im:
        return np.asarray(im.convert("RGB"))


def const(value: float, points: int = 60, **options) -> Series:
    return Series("s", NOW - 60 * points, NOW, 60, np.full(points, float(value)), options=options)


def test_style_color_and_line_width():
    thin = is_color(draw(const(5, color="ff0000"), lineWidth="1"), RED)
    thick = is_color(draw(const(5, color="ff0000", lineWidth=8)), RED)
    assert thick[:, 150].sum() >= 6 > thin[:, 150].sum()


def test_style_dashed():
    solid = is_color(draw(const(5, color="ff0000", lineWidth=3)), RED).any(axis=0).sum()
    dashed = is_color(draw(const(5, color="ff0000", lineWidth=3, dashed=5)), RED).any(axis=0).sum()
    assert 0.3 * solid < dashed < 0.7 * solid


def test_style_alpha_and_invisible():
    faint = draw(const(5, color="ff0000", lineWidth=6, alpha=0.3))[100, 150].tolist()
    assert faint[0] == 255 and 150 < faint[1] < 230
    assert not is_color(draw(const(5, color="ff0000", lineWidth=6, invisible=True)), RED, 100).any()


def test_style_draw_as_infinite():
    values = np.zeros(60)
    values[30] = 1
    s = Series("deploys", NOW - 3600, NOW, 60, values, options={"color": "ff0000", "drawAsInfinite": True})
    red = is_color(draw(s, const(5, color="0000ff")), RED)
    columns = np.flatnonzero(red.any(axis=0))
    assert len(columns) <= 3 and 140 < columns.mean() < 160
    assert red[:, columns[0]].sum() > 190  # the full height


def test_style_second_y_axis_has_its_own_scale():
    left = const(5, color="ff0000")
    right = Series("r", NOW - 3600, NOW, 60, np.full(60, 250.0),
                   options={"color": "0000ff", "secondYAxis": True})
    pixels = draw(left, right, graphOnly="false", yMin="", yMax="", yMinLeft="0", yMaxLeft="10",
                  yMinRight="0", yMaxRight="1000", hideLegend="true", hideGrid="true")
    red_row = np.flatnonzero(is_color(pixels, RED).any(axis=1)).mean()
    blue_row = np.flatnonzero(is_color(pixels, BLUE).any(axis=1)).mean()
    bottom = np.flatnonzero(is_color(pixels, (0, 0, 0), 80).any(axis=1)).max()  # the "0" labels' row, about
    assert 20 < (blue_row - red_row) < 0.5 * (bottom - red_row)  # 250 of 1000 right, 5 of 10 left
    labels = is_color(pixels[:, -20:], (0, 0, 0), 80).any()
    assert labels, "right axis labels"


def test_stacked_option_fills_under_the_series():
    filled = draw(const(5, color="ff0000", stacked=True))
    assert is_color(filled[150, 150], RED).all()
    assert is_color(filled[50, 150], WHITE).all()


def test_area_between_options_fill_only_the_band():
    """areaBetween() marks the lower series stacked + invisible and the upper stacked."""
    lower = const(2, color="ff0000", stacked=True, invisible=True)
    upper = const(6, color="ff0000", stacked=True)
    pixels = draw(lower, upper)
    column = pixels[:, 150]
    assert is_color(column[200 - 4 * 20], RED).all()  # between 2 and 6
    assert is_color(column[200 - 1 * 20], WHITE).all() and is_color(column[200 - 8 * 20], WHITE).all()


# -- SVG and PDF -------------------------------------------------------------------------
def test_svg_is_xml_with_the_legend_drawn_and_named(graphs):
    def svg(**params):
        status, headers, body = graphs.request("/render", {"target": ["five", "three"], "from": "-1h",
                                                           "format": "svg", **params})
        assert status == 200 and headers["Content-Type"] == "image/svg+xml"
        return body.decode()

    with_legend, without = svg(), svg(hideLegend="true")
    root = ET.fromstring(with_legend)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("width") == "330px"
    assert '"name": "five"' in with_legend and '"name": "three"' in with_legend
    glyphs = lambda text: len(re.findall(r"<use xlink:href=\"#glyph", text))  # noqa: E731
    assert glyphs(with_legend) - glyphs(without) == len("five") + len("three")


def test_svg_metadata_survives_any_series_name(graphs):
    name = "</script>]]><x a='1'>&amp;"
    status, _, body = graphs.request("/render", {"target": f'alias(five,"{name}")', "from": "-1h", "format": "svg"})
    assert status == 200
    ET.fromstring(body)  # still well-formed XML
    metadata = json.loads(re.search(rb"metadata = (\{.*\})\n", body).group(1))
    assert metadata["series"][0]["name"] == name


def test_svg_with_jsonp_is_the_svg_as_a_json_string(graphs):
    status, headers, body = graphs.request("/render", {"target": "five", "from": "-1h", "format": "svg",
                                                       "jsonp": "show"})
    text = body.decode()
    assert status == 200 and headers["Content-Type"] == "text/javascript"
    assert text.startswith("show(") and text.endswith(")")
    assert ET.fromstring(json.loads(text[5:-1])).tag == "{http://www.w3.org/2000/svg}svg"


def test_pdf_is_a_real_pdf(graphs):
    import pypdf  # dev extra
    status, headers, body = graphs.request("/render", {"target": "five", "from": "-1h", "format": "pdf",
                                                       "title": "Latency", "width": "400", "height": "300"})
    assert status == 200 and headers["Content-Type"] == "application/pdf" and body.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(body))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == (400, 300)
    text = reader.pages[0].extract_text()
    assert "Latency" in text and "five" in text


# -- bad parameters ------------------------------------------------------------------------
@pytest.mark.parametrize("params,fragment", [
    ({"width": "-1"}, "'width' must be between 1 and 8192"),
    ({"width": "wide"}, "'width' must be an integer"),
    ({"width": "4000", "height": "4000"}, f"larger than the limit of {MAX_PIXELS} pixels"),
    ({"bgcolor": "nocolor"}, "'bgcolor': 'nocolor' is not a colour"),
    ({"colorList": "red,zzz"}, "'colorList': 'zzz' is not a colour"),
    ({"lineMode": "curvy"}, "'lineMode' must be one of slope, staircase, connected"),
    ({"areaMode": "most"}, "'areaMode' must be one of"),
    ({"logBase": "1"}, "'logBase' must be 'e' or a number above 1"),
    ({"yUnitSystem": "furlongs"}, "'yUnitSystem' must be one of"),
    ({"template": "fancy"}, "unknown template 'fancy'"),
    ({"hideLegend": "maybe"}, "'hideLegend' must be true or false"),
    ({"yMin": "5", "yMax": "1"}, "yMin (5) must be less than yMax (1)"),
    ({"lineWidth": "nan"}, "'lineWidth' must be between"),
    ({"yDivisors": "4,0"}, "'yDivisors' must be between 1 and 100"),
    ({"graphType": "pie"}, "graphType=pie is not supported"),
    ({"target": "color(five,'nocolor')"}, "colour of series 'five'"),
    ({"target": "neg", "logBase": "10"}, "logBase needs values above zero"),
])
def test_bad_graph_parameters_are_400s_naming_them(graphs, root, params, fragment):
    write_metric(root, "neg", [-1] * 360)
    params = {"target": "five", "from": "-1h", **params}
    for fmt in ("png", "svg", "pdf"):
        assert fragment in graphs.error("/render", dict(params, format=fmt))


def test_graph_parameters_are_checked_before_any_series_is_read(graphs):
    # an image too large is refused even for a target that would read nothing
    assert "larger than the limit" in graphs.error("/render", {"target": "x.*", "width": "8192", "height": "8192"})


def test_graphite_web_parameter_aliases_and_graph_only():
    p = parse_graph_params({"min": "1", "max": "9", "thickness": "3", "yMax": "", "graphOnly": "true"})
    assert (p.yMin, p.yMax, p.lineWidth) == (1, 9, 3)
    assert p.hideLegend and p.hideAxes and p.hideGrid and p.margin == 0
    assert parse_graph_params({"max": "9", "yMax": "7"}).yMax == 7
    assert parse_graph_params({"yMax": "max"}).yMax == "max"
    assert parse_graph_params({"width": "default"}).width == 330


def test_our_png_encoder_round_trips_through_a_real_decoder():
    from django_statsd_push.render.graph.png import encode_rgb

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    with Image.open(io.BytesIO(encode_rgb(pixels))) as im:
        assert np.array_equal(np.asarray(im), pixels)


def test_odd_graph_parameters_never_cause_a_500(graphs, root):
    """Every parameter with odd values, alone and in random mixes: an image or a 400."""
    import random

    from django_statsd_push.render.graph.params import ALIASES, PARSERS

    write_metric(root, "neg", [-1 + (i % 3) for i in range(360)])
    odd = ["", "0", "-1", "1", "0.5", "1e309", "-1e309", "nan", "inf", "abc", "#zz", "1,2", "e", "max", "true",
           "false", "default", "ff0000", "red,blue", "%H", "\u00e9\u00e8\n\t", "9" * 40, "8192", "1000", "0.01"]
    names = list(PARSERS) + list(ALIASES) + ["graphType"]
    targets = ["five", "gappy", "neg", "nothing", "secondYAxis(two)", "stacked(three)"]
    rng = random.Random(7)
    cases = [{name: value} for name in names for value in odd]
    cases += [{rng.choice(names): rng.choice(odd) for _ in range(rng.randint(2, 6))} for _ in range(300)]
    for i, case in enumerate(cases):
        params = [("target", t) for t in rng.sample(targets, rng.randint(1, 3))] + [("from", "-1h")]
        params += [("format", ("png", "svg", "pdf")[i % 3])] + list(case.items())
        status, _, body = graphs.request("/render", params)
        assert status in (200, 400), (params, status, body[:300])


def test_a_png_does_not_depend_on_what_was_drawn_before(graphs):
    """Cairo keeps a font face resolved with the first surface's hinting: an SVG drawn
    first must not change the labels' widths (and so the plot) of later PNGs. Two
    spellings of one font family are two faces to Cairo, one first used by an SVG."""
    params = {"target": ["five", "three"], "from": "-1h", "title": "Same", "format": "png"}
    graphs.request("/render", dict(params, format="svg", fontName="DejaVu Sans Mono"))
    after_svg = graphs.request("/render", dict(params, fontName="DejaVu Sans Mono"))[2]
    png_only = graphs.request("/render", dict(params, fontName="dejavu sans mono"))[2]
    assert after_svg == png_only


def test_concurrent_renders_give_the_same_images(graphs):
    """The bundled server draws each request in its own thread: Cairo's shared font
    caches must not mix them up."""
    from concurrent.futures import ThreadPoolExecutor

    requests = [{"target": t, "from": "-1h", "format": fmt, "title": t}
                for t in ("five", "two", "three", "gappy") for fmt in ("png", "svg")]
    def body(request) -> bytes:  # Cairo numbers SVG surfaces process-wide: id="surfaceN"
        return re.sub(rb'id="surface\d+"', b"", graphs.request("/render", request)[2])

    serial = [body(r) for r in requests]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            assert list(pool.map(body, requests)) == serial
