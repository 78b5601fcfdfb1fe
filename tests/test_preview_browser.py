"""The 3D preview (static/preview.js) in real headless Chromium, served by the real app under its CSP."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import abort, render_template_string, request, send_from_directory
from werkzeug.serving import make_server

from printlab import config as config_module
from printlab.services.files.storage import Storage
from printlab.web.app import create_app

from .conftest import MODELS

pytestmark = pytest.mark.browser

CUBE = "stl_binary_20mm_xyz_cube.stl"
FIXTURE_MODELS = {
    "cube": (CUBE, "stl"),
    "box": ("box.obj", "obj"),
    "cylinders": ("3mf_consortium_multiple_cylinders.3mf", "3mf"),
}
#: Test-only bytes that are not a model of any kind.
BROKEN = b"this is not a model\n" * 40

PAGE = """{% extends "base.html" %}
{% block head %}{% if below_fold %}<link rel="stylesheet" href="/_test/spacer.css">{% endif %}{% endblock %}
{% block content %}
<h1>Preview test</h1>
{% if below_fold %}<div class="spacer" id="spacer">Scroll down</div>{% endif %}
<div class="model-preview" data-model-url="{{ url }}" data-format="{{ fmt }}" role="img"
     aria-label="3D preview of {{ name }}"></div>
<script type="module" src="{{ url_for('static', filename='preview.js') }}"></script>
{% endblock %}
"""
MANY = """{% extends "base.html" %}
{% block content %}
{% for url, fmt in cases %}
<div class="model-preview" data-model-url="{{ url }}" data-format="{{ fmt }}" role="img" aria-label="Case {{ loop.index }}"></div>
{% endfor %}
<script type="module" src="{{ url_for('static', filename='preview.js') }}"></script>
{% endblock %}
"""
#: Pushes the preview below the fold without an inline style (the CSP refuses those).
SPACER_CSS = ".spacer { height: 3000px; }"

#: Share of the frame in the model's blue, and of anything that is not the background.
PIXELS_JS = """(selector) => {
  const source = document.querySelector(selector);
  const copy = document.createElement("canvas");
  copy.width = source.width;
  copy.height = source.height;
  const context = copy.getContext("2d");
  context.drawImage(source, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  let model = 0, other = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    if (b > r + 40 && b > 80) model += 1;
    else if (Math.abs(r - 238) + Math.abs(g - 241) + Math.abs(b - 244) > 30) other += 1;
  }
  const total = data.length / 4;
  return { model: model / total, other: other / total, image: source.toDataURL("image/png") };
}"""


def _add_test_routes(app):  # type: ignore[no-untyped-def]
    @app.get("/_test/preview")
    def preview_page():  # type: ignore[no-untyped-def]
        return render_template_string(
            PAGE,
            url=request.args["url"],
            fmt=request.args.get("fmt", ""),
            name=request.args.get("name", "model"),
            below_fold="below" in request.args,
        )

    @app.get("/_test/previews")
    def many_previews():  # type: ignore[no-untyped-def]
        cases = [case.split("|") for case in request.args.getlist("case")]
        return render_template_string(MANY, cases=cases)

    # Flask's own route: the app's `get` (flask-openapi3's) passes a view only the path values a
    # pydantic model declares.
    @app.route("/_test/models/<name>", methods=["GET"])
    def model_file(name: str):  # type: ignore[no-untyped-def]
        if name not in {file for file, _fmt in FIXTURE_MODELS.values()}:
            abort(404)
        return send_from_directory(MODELS, name, mimetype="application/octet-stream")

    @app.get("/_test/broken")
    def broken_file():  # type: ignore[no-untyped-def]
        return BROKEN, 200, {"Content-Type": "application/octet-stream"}

    @app.get("/_test/spacer.css")
    def spacer_css():  # type: ignore[no-untyped-def]
        return SPACER_CSS, 200, {"Content-Type": "text/css"}


@pytest.fixture(scope="module")
def base_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app (its CSP, static files and base page) on a loopback port, plus test-only routes."""
    root = tmp_path_factory.mktemp("preview-app")
    shutil.copyfile(sqlite_template, root / "printlab.db")
    Storage(root / "storage").ensure_folders()
    settings = config_module.load(
        {
            "PRINTLAB_DATABASE_URL": f"sqlite:///{root / 'printlab.db'}",
            "PRINTLAB_STORAGE_DIR": str(root / "storage"),
            "PRINTLAB_MAIL_DIR": str(root / "mail"),
            "PRINTLAB_INSTANCE_DIR": str(root / "instance"),
            "PRINTLAB_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        }
    )
    app = create_app({"TESTING": True}, config=settings)
    _add_test_routes(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    app.extensions["printlab"].engine.dispose()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    """A fresh page that records script errors and console errors; the test fails on any it didn't expect."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(f"pageerror: {error}"))  # type: ignore[attr-defined]
    page.on("console", lambda message: _record_console(page, message))
    yield page
    context.close()


def _record_console(page, message) -> None:  # type: ignore[no-untyped-def]
    url = message.location.get("url", "")
    if message.type == "error" and not url.endswith("/favicon.ico"):
        page.errors.append(f"console: {message.text} ({url})")


def _open(page, base_url: str, url: str, fmt: str, name: str = "model", **extra: str) -> None:  # type: ignore[no-untyped-def]
    query = {"url": url, "fmt": fmt, "name": name, **extra}
    response = page.goto(f"{base_url}/_test/preview?" + "&".join(f"{k}={v}" for k, v in query.items()))
    assert response.status == 200


def _wait_state(page, state: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector(f".model-preview[data-preview-state='{state}']", timeout=15_000)


def _frames(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.get_attribute(".model-preview", "data-preview-frames") or 0)


def _wait_new_frame(page, after: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        "(n) => Number(document.querySelector('.model-preview').dataset.previewFrames) > n", arg=after
    )


def _pixels(page) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return page.evaluate(PIXELS_JS, ".model-preview canvas")


def test_stl_cube_is_drawn_and_turns_by_mouse_and_keyboard(page, base_url):
    _open(page, base_url, f"/_test/models/{CUBE}", "stl", name="cube.stl")
    _wait_state(page, "ready")

    canvas = page.locator(".model-preview canvas")
    assert canvas.count() == 1
    assert canvas.get_attribute("tabindex") == "0"
    assert canvas.get_attribute("role") == "img"
    assert canvas.get_attribute("aria-label") == "3D preview of cube.stl"
    # The buttons must be reachable, so the wrapper is no longer an image that hides its children.
    assert page.get_attribute(".model-preview", "role") == "group"
    first = _pixels(page)
    assert first["model"] > 0.03, first["model"]  # the blue cube fills a fair part of the frame
    assert first["other"] > 0.002  # the grid and the cube's shading
    page.screenshot(path="/tmp/printlab-preview-stl.png")

    box = canvas.bounding_box()
    assert box is not None
    before = _frames(page)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 140, box["y"] + box["height"] / 2 + 30, steps=8)
    page.mouse.up()
    _wait_new_frame(page, before)
    dragged = _pixels(page)
    assert dragged["image"] != first["image"]

    page.click(".model-preview button:has-text('Reset view')")
    page.wait_for_function(
        "(image) => document.querySelector('.model-preview canvas').toDataURL('image/png') === image",
        arg=first["image"],
    )

    canvas.focus()
    before = _frames(page)
    page.keyboard.press("ArrowLeft")
    _wait_new_frame(page, before)
    turned = _pixels(page)
    assert turned["image"] != first["image"]

    before = _frames(page)
    page.keyboard.press("+")
    page.keyboard.press("+")
    _wait_new_frame(page, before)
    page.wait_for_timeout(50)
    assert _pixels(page)["model"] > turned["model"] * 1.2  # closer: the cube covers more of the frame

    page.keyboard.press("Home")
    page.wait_for_function(
        "(image) => document.querySelector('.model-preview canvas').toDataURL('image/png') === image",
        arg=first["image"],
    )
    assert page.errors == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", ["box", "cylinders"])
def test_obj_and_3mf_are_drawn(page, base_url, model):
    file, fmt = FIXTURE_MODELS[model]
    _open(page, base_url, f"/_test/models/{file}", fmt, name=file)
    _wait_state(page, "ready")
    pixels = _pixels(page)
    assert pixels["model"] > 0.02, pixels["model"]
    assert "grid square" in page.inner_text(".model-preview-help")
    page.screenshot(path=f"/tmp/printlab-preview-{fmt}.png")
    assert page.errors == []  # type: ignore[attr-defined]


#: Files no preview can show, each with the message the person should read instead.
UNSHOWABLE = [
    ("/_test/broken", "stl", "couldn't be read as STL"),
    ("/_test/broken", "3mf", "isn't a valid 3MF"),
    ("/_test/broken", "obj", "no triangles to show"),
    ("/_test/models/missing.stl", "stl", "wasn't found"),
    ("/", "stl", "sent a web page instead of the model"),
    ("/_test/broken", "step", "no 3D preview for this type of file"),
]


def test_models_that_cannot_be_shown_get_readable_messages(browser, base_url):
    # All on one tall page: several previews side by side must not disturb each other either.
    context = browser.new_context(viewport={"width": 1000, "height": 3200})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    cases = "&".join(f"case={url}|{fmt}" for url, fmt, _message in UNSHOWABLE)
    assert page.goto(f"{base_url}/_test/previews?{cases}").status == 200  # type: ignore[union-attr]
    previews = page.locator(".model-preview")
    assert previews.count() == len(UNSHOWABLE)
    page.wait_for_function(
        "n => document.querySelectorAll('.model-preview[data-preview-state=error]').length === n",
        arg=len(UNSHOWABLE),
        timeout=15_000,
    )
    for index, (_url, _fmt, message) in enumerate(UNSHOWABLE):
        preview = previews.nth(index)
        status = preview.locator(".model-preview-status")
        assert status.is_visible()
        assert message in status.inner_text(), (index, status.inner_text())
        assert status.get_attribute("role") == "status"
        assert preview.locator("canvas").count() == 0
        assert preview.locator(".model-preview-tools").is_hidden()
    assert errors == []
    context.close()


def test_without_webgl_a_fallback_message_replaces_the_viewer(page, base_url):
    page.add_init_script(
        """const original = HTMLCanvasElement.prototype.getContext;
        HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
          return /webgl/.test(kind) ? null : original.call(this, kind, ...rest);
        };"""
    )
    _open(page, base_url, f"/_test/models/{CUBE}", "stl")
    _wait_state(page, "unsupported")
    assert "can't show 3D previews" in page.inner_text(".model-preview-status")
    assert page.errors == []  # type: ignore[attr-defined]


def test_nothing_is_fetched_until_the_preview_scrolls_into_view(page, base_url):
    requested: list[str] = []
    page.on("request", lambda r: requested.append(urlsplit(r.url).path))
    _open(page, base_url, f"/_test/models/{CUBE}", "stl", below="1")
    page.wait_for_load_state("networkidle")
    assert page.locator("#spacer").bounding_box()["height"] >= 3000  # type: ignore[index]
    assert page.get_attribute(".model-preview", "data-preview-state") == "waiting"
    assert "/static/preview.js" in requested
    assert not any(path.startswith(("/_test/models/", "/static/vendor/three/")) for path in requested)

    page.locator(".model-preview").scroll_into_view_if_needed()
    _wait_state(page, "ready")
    assert f"/_test/models/{CUBE}" in requested
    assert "/static/vendor/three/three.module.min.js" in requested
    assert page.errors == []  # type: ignore[attr-defined]
