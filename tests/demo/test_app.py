"""The demo app on the shared multi-task smoke run, served once on 127.0.0.1 at a
port this module picks: through Gradio's API client, and in a real browser
(Debian's chromium driven by selenium through chromium-driver).

Both read what the page shows against the run's own model (`load_model` +
``predict_bytes``: the probabilities ``python -m keras_art.predict`` prints).
"""

import io
import shutil
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_art.demo.app import ELEMENT_IDS, LABEL_ID, launch_demo
from keras_art.demo.paintings import VIEW_SIDE
from keras_art.errors import ParameterError
from keras_art.inference import load_model
from tests.data.image_fixtures import encode, patchwork
from tests.training.tiny import free_ports

pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
pytestmark = pytest.mark.slow

TOP_K = 3
WAIT_S = 90  # every wait on the page or the server is bounded by this


@pytest.fixture(scope="module")
def paintings(tmp_path_factory):
    """A painting (JPEG, 48 x 64) and a file named like one that is not."""
    folder = tmp_path_factory.mktemp("paintings")
    painting = folder / "painting.jpg"
    painting.write_bytes(encode(patchwork(48, 64, seed=3), "jpeg"))
    broken = folder / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a JPEG")
    return painting, broken


@pytest.fixture(scope="module")
def loaded(smoke_multi_run):
    return load_model(smoke_multi_run)


@pytest.fixture(scope="module")
def expected(loaded, paintings):
    """The model, and per task its probabilities for the painting."""
    probs = loaded.predict_bytes([paintings[0].read_bytes()])
    return loaded, {t: p[0] for t, p in probs.items()}


@pytest.fixture(scope="module")
def server(loaded):
    """The demo on the run's model, on 127.0.0.1 (the default host); closed at
    the end."""
    (port,) = free_ports(1)
    app, url = launch_demo(loaded, port=port, top_k=TOP_K, block=False)
    try:
        yield url
    finally:
        app.close()  # stops the server thread (uvicorn's shutdown is bounded)


def test_the_app_listens_on_localhost_only(server):
    assert server.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(server, timeout=WAIT_S) as page:
        assert page.status == 200


def test_api_client_gets_top_k_gradcam_and_the_corrupt_file_named(
    server, paintings, expected
):
    from gradio_client import Client, handle_file

    loaded, probs = expected
    client = Client(server, verbose=False, download_files=False)
    try:
        out = client.predict(
            f"{Path(loaded.path).name} - run directory",
            [handle_file(str(p)) for p in paintings],
            TOP_K,
            api_name="/classify",
        )
    finally:
        client.close()
    info, summary, chooser, original, cam, rows, cols, explained, *labels = out
    assert "runs on **Keras " in info
    assert summary.startswith("Classified 1 of 2 files with r (run directory, on ")
    assert "Skipped broken.jpg: " in summary and "Unknown image file format" in summary
    assert chooser["choices"] == [["painting.jpg", 0]]
    for task, label in zip(loaded.tasks, labels, strict=True):
        order = np.argsort(-probs[task], kind="stable")[:TOP_K]
        assert label["label"] == task
        assert label["value"]["label"] == loaded.class_names[task][order[0]]
        got = [(c["label"], c["confidence"]) for c in label["value"]["confidences"]]
        assert [name for name, _ in got] == [loaded.class_names[task][i] for i in order]
        np.testing.assert_allclose([p for _, p in got], probs[task][order], atol=1e-6)
    # Grad-CAM of the first task's top class; the cnn_rnn head's attention.
    first = loaded.tasks[0]
    assert explained.startswith(f"Grad-CAM of **{first}: {labels[0]['value']['label']}")
    for image in (cam, rows, cols):
        assert image["visible"] and _png_shape(server, image) == (VIEW_SIDE, VIEW_SIDE)
    assert original["visible"] and _png_shape(server, original) == (48, 64)


@pytest.mark.browser
def test_a_browser_uploads_a_painting_and_reads_the_class_and_gradcam(
    server, paintings, expected
):
    driver = _chromium()
    try:
        driver.get(server)
        upload = _wait(driver, f"#{ELEMENT_IDS['files']} input[type=file]")
        upload.send_keys(str(paintings[0]))
        summary = _wait(driver, f"#{ELEMENT_IDS['summary']}")
        _until(driver, lambda d: summary.text.startswith("Classified"))
        loaded, probs = expected
        first = loaded.tasks[0]
        top = loaded.class_names[first][int(np.argmax(probs[first]))]
        heading = _wait(driver, f"#{LABEL_ID.format(0)} h2")
        _until(driver, lambda d: heading.text == top)
        cam = _wait(driver, f"#{ELEMENT_IDS['gradcam']} img")
        _until(driver, lambda d: d.execute_script("return arguments[0].complete", cam))
        width = driver.execute_script("return arguments[0].naturalWidth", cam)
        assert width == VIEW_SIDE
        assert _png_shape(server, cam.get_attribute("src")) == (VIEW_SIDE, VIEW_SIDE)
    finally:
        driver.quit()


def _png_shape(server: str, image) -> tuple[int, int]:
    """Height and width of an image the app serves (API value or ``src`` URL)."""
    url = image if isinstance(image, str) else image["value"]["url"]
    if not url.startswith("http"):
        url = server.rstrip("/") + url
    with urllib.request.urlopen(url, timeout=WAIT_S) as reply:
        data = reply.read()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).shape[:2]


def _chromium():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed "
            "(apt-get install chromium chromium-driver; .ci/run does)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1600")
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(WAIT_S)
    return chrome


def _wait(driver, css: str):
    from selenium.webdriver.common.by import By

    _until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, css))
    return driver.find_element(By.CSS_SELECTOR, css)


def _until(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition)


def test_a_busy_port_is_one_line_naming_the_flags(loaded):
    from keras_art.demo.__main__ import FLAGS

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ParameterError) as err:
            launch_demo(loaded, port=port, block=False)
    line = err.value.render(FLAGS)
    assert line.startswith(f"--host 127.0.0.1 --port {port}: cannot listen there")
    assert line.endswith("Pass a free --port, or 0 for the first free one from 7860.")
