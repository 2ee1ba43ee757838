"""The demo's web app: Gradio Blocks over `keras_art.demo.paintings`.

`launch_demo` is the library function behind ``python -m keras_art.demo``: it finds
the models at a path (`keras_art.demo.discovery.find_models`), loads the first
(so a path that is no model fails before a server starts), builds the page
(`build_app`) and serves it on 127.0.0.1 unless told otherwise; it never makes a
public share link. Gradio comes with the ``demo`` extra and is imported only inside
these functions (`keras_art.demo.gradio_extra.require_gradio`), so ``import
keras_art`` stays without it.

The page: a model chooser (the models found; what runs each, e.g. LiteRT or
tf.lite for a ``.tflite`` file), a top-k slider, a drop zone for one or more
paintings, a summary line (a file that cannot be decoded is named there with the
reason), a painting chooser, and for the chosen painting the original, the
Grad-CAM overlay and the cnn_rnn head's row and column attention (run directories)
and one confidence-bar list (``gr.Label``) per task. Element ids (`ELEMENT_IDS`)
let a browser test find each part.
"""

from __future__ import annotations

import logging
import os

from keras_art.demo.discovery import FoundModel, ModelCache, find_models
from keras_art.demo.gradio_extra import DEFAULT_HOST, DEFAULT_PORT, require_gradio
from keras_art.demo.paintings import (
    Classified,
    PaintingView,
    classify_paintings,
    model_title,
)
from keras_art.errors import ParameterError, UserError
from keras_art.inference.backends import MODEL_KINDS, LoadedModel
from keras_art.registry import DEFAULT_TOP_K, TASKS
from keras_art.user_input import check_positive_int

logger = logging.getLogger(__name__)

MAX_TOP_K = 20  # the slider's end
ELEMENT_IDS = {
    "model": "ka-model",
    "model_info": "ka-model-info",
    "top_k": "ka-top-k",
    "files": "ka-files",
    "classify": "ka-classify",
    "summary": "ka-summary",
    "painting": "ka-painting",
    "original": "ka-original",
    "gradcam": "ka-gradcam",
    "rows": "ka-rows",
    "cols": "ka-cols",
    "explained": "ka-explained",
}
# One confidence list per task a model can have: "ka-top-0" ... (first task first).
LABEL_ID = "ka-top-{}"
# Local fonts only: the default theme's Google font would be fetched by the
# browser, which a machine without internet waits for.
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO_FONTS = ["ui-monospace", "Consolas", "monospace"]


def launch_demo(
    model: str | os.PathLike | LoadedModel,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    top_k: int = DEFAULT_TOP_K,
    calibration: bool = True,
    block: bool = True,
):
    """Serve the demo for the models at ``model`` on ``http://host:port``.

    Args:
        model: a run directory, SavedModel, TF Serving ``BASE/NAME`` folder,
            ``.tflite`` file, or a folder holding some (`find_models`); or a
            `LoadedModel`, served as loaded.
        host, port: where the server listens (``port`` 0: the first free one
            from `DEFAULT_PORT` on).
        top_k: classes shown per task at first (the page has a slider).
        calibration: calibrated confidences where the model has a calibration.
        block: serve until interrupted; ``False`` returns at once with the server
            running (close it with ``app.close()``).

    Returns:
        ``(app, url)``: the Gradio Blocks and the local URL.
    """
    gr = require_gradio()
    top_k = check_positive_int(top_k, "top_k")
    if isinstance(model, LoadedModel):
        cache = ModelCache.of_loaded(model)
    else:
        cache = ModelCache(find_models(model), calibration)
    cache.get(next(iter(cache.models)))  # a broken model fails before the server
    app = build_app(list(cache.models.values()), top_k=top_k, cache=cache)
    theme = gr.themes.Default(font=FONTS, font_mono=MONO_FONTS)
    try:
        _, url, _ = app.launch(
            server_name=host,
            server_port=port or None,
            share=False,
            prevent_thread_lock=True,
            quiet=True,
            show_error=True,
            ssr_mode=False,
            mcp_server=False,
            theme=theme,
        )
    except OSError:
        raise ParameterError(
            f"{{host}} {host} {{port}} {port}: cannot listen there (the port is "
            f"taken, or the host is not this machine's). Pass a free {{port}}, or 0 "
            f"for the first free one from {DEFAULT_PORT}."
        ) from None
    logger.info("demo: %d model(s) on %s", len(cache.models), url)
    if block:
        logger.info("demo: Ctrl+C stops it")
        app.block_thread()
    return app, url


def build_app(
    models: list[FoundModel],
    *,
    top_k: int = DEFAULT_TOP_K,
    cache: ModelCache | None = None,
    calibration: bool = True,
):
    """The Gradio Blocks of the demo over ``models`` (loaded through ``cache``,
    or a new `ModelCache` with ``calibration``)."""
    gr = require_gradio()
    cache = cache or ModelCache(models, calibration)
    with gr.Blocks(title="keras_art demo", analytics_enabled=False) as app:
        parts = _layout(gr, [m.name for m in models], top_k)
        _wire(gr, app, parts, cache)
    return app


def _layout(gr, names: list[str], top_k: int) -> dict:
    ids = ELEMENT_IDS
    gr.Markdown(
        "## keras_art: artist, genre and style of a painting\n"
        "Drop one or more paintings; each task lists its most probable classes."
    )
    parts = {}
    with gr.Row():
        parts["model"] = gr.Dropdown(
            names, value=names[0], label="Model", elem_id=ids["model"], scale=4
        )
        parts["top_k"] = gr.Slider(
            1,
            max(MAX_TOP_K, top_k),
            value=top_k,
            step=1,
            label="Top k",
            elem_id=ids["top_k"],
        )
    parts["model_info"] = gr.Markdown(elem_id=ids["model_info"])
    parts["files"] = gr.File(
        file_count="multiple", label="Paintings", elem_id=ids["files"], height=140
    )
    parts["classify"] = gr.Button(
        "Classify", variant="primary", elem_id=ids["classify"]
    )
    parts["summary"] = gr.Markdown(elem_id=ids["summary"])
    parts["painting"] = gr.Dropdown(
        [], label="Painting", type="index", elem_id=ids["painting"], visible=False
    )
    with gr.Row(equal_height=True):
        for key, label in (
            ("original", "Original"),
            ("gradcam", "Grad-CAM"),
            ("rows", "Row attention (cnn_rnn head)"),
            ("cols", "Column attention (cnn_rnn head)"),
        ):
            parts[key] = gr.Image(
                label=label, elem_id=ids[key], format="png", interactive=False
            )
    parts["explained"] = gr.Markdown(elem_id=ids["explained"])
    with gr.Row():
        parts["labels"] = [
            gr.Label(elem_id=LABEL_ID.format(i), visible=False)
            for i in range(len(TASKS))
        ]
    parts["state"] = gr.State(None)
    return parts


def _wire(gr, app, parts: dict, cache: ModelCache) -> None:
    views = [parts[k] for k in ("original", "gradcam", "rows", "cols", "explained")]
    views += parts["labels"]
    outputs = [parts[k] for k in ("model_info", "summary", "state", "painting")]

    def classify(name, files, top_k):
        answer, info = _classify(cache, name, files, top_k)
        chooser = gr.update(
            choices=[(p.name, i) for i, p in enumerate(answer.paintings)],
            value=0 if answer.paintings else None,
            visible=len(answer.paintings) > 1,
        )
        first = answer.paintings[0] if answer.paintings else None
        return info, answer.summary, answer, chooser, *_views(gr, first)

    def show(answer, index):
        painting = answer.paintings[index] if answer and index is not None else None
        return _views(gr, painting)

    gr.on(
        [
            app.load,
            parts["classify"].click,
            parts["files"].upload,
            parts["files"].delete,
            parts["files"].clear,
            parts["model"].change,
        ],
        classify,
        inputs=[parts["model"], parts["files"], parts["top_k"]],
        outputs=outputs + views,
        api_name="classify",
    )
    parts["painting"].input(
        show, [parts["state"], parts["painting"]], views, api_name="show"
    )


def _classify(cache: ModelCache, name: str, files, top_k) -> tuple[Classified, str]:
    """The paintings of ``files`` (upload paths) classified by model ``name``, and
    the model's description (or why it could not be loaded)."""
    try:
        loaded = cache.get(name)
    except Exception as exc:  # noqa: BLE001 - shown on the page; others still work
        message = str(exc) if isinstance(exc, UserError) else repr(exc)
        return Classified(summary=f"Cannot load {name}: {message}"), ""
    info = (
        f"**{model_title(loaded)}**: {MODEL_KINDS[loaded.kind]} `{loaded.path}`, "
        f"tasks {', '.join(loaded.tasks)}, {loaded.image_size} px "
        f"({loaded.eval_resize}); runs on **{loaded.runtime}**."
    )
    if loaded.keras_model is None:
        info += " Grad-CAM and attention need the run directory's Keras model."
    paths = [getattr(f, "name", f) for f in files or []]
    if not paths:
        return Classified(summary="Drop one or more paintings above."), info
    return classify_paintings(loaded, paths, int(top_k)), info


def _views(gr, painting: PaintingView | None) -> list:
    """The images, the line saying what they explain and the per-task confidence
    lists of ``painting`` (all empty, only the original's box shown, for none)."""
    if painting is None:
        images = [gr.update(value=None, visible=i == 0) for i in range(4)]
        return [*images, "", *(gr.update(value=None, visible=False) for _ in TASKS)]
    images = [
        gr.update(value=image, visible=image is not None)
        for image in (painting.original, painting.gradcam, painting.rows, painting.cols)
    ]
    explained = ""
    if painting.gradcam is not None:
        explained = (
            f"Grad-CAM of **{painting.explained}**, on the model's view of the "
            f"painting (red: what raised that score most)."
        )
    if painting.rows is not None:
        explained += (
            " Row and column attention of the cnn_rnn head: green is an even "
            "share, red twice that or more."
        )
    tasks = list(painting.top)
    labels = [
        gr.update(value=painting.top[tasks[i]], label=tasks[i], visible=True)
        if i < len(tasks)
        else gr.update(value=None, visible=False)
        for i in range(len(TASKS))
    ]
    return [*images, explained, *labels]
