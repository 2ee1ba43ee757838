"""Parameters, size on disk and compute of each backbone + head combination.

    python -m keras_art.summary
    python -m keras_art.summary --backbones resnet50 --heads cnn_rnn,gap,spp \
        --image-size 384 --num-classes 27 --json summary.json

Compute is in multiply-accumulates (GMACs; GFLOPs = 2 x GMACs), counted from layer
shapes: see `keras_art.models.model_cost`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from keras_art.cli import ArgumentParser, quiet_tensorflow, run_command
from keras_art.config import BACKBONES, HEADS, ModelConfig
from keras_art.errors import UserError

COLUMNS = (
    ("backbone", "backbone", "{}"),
    ("head", "head", "{}"),
    ("params", "params", "{:,}"),
    ("trainable", "trainable_params", "{:,}"),
    ("head params", "head_params", "{:,}"),
    ("size MB", "size_mb", "{:.1f}"),
    ("GMACs", "gmacs", "{:.3f}"),
    ("GFLOPs", "gflops", "{:.3f}"),
)


def model_costs(
    backbones: list[str] | tuple[str, ...] = tuple(BACKBONES),
    heads: list[str] | tuple[str, ...] = HEADS,
    image_size: int = 224,
    num_classes: int = 27,
    json_path: str | None = None,
    base: ModelConfig | None = None,
) -> list[dict]:
    """Summarise every backbone x head; print a table, optionally write JSON."""
    for name, values, known in (
        ("--backbones", backbones, tuple(BACKBONES)),
        ("--heads", heads, HEADS),
    ):
        unknown = [v for v in values if v not in known]
        if unknown or not values:
            raise UserError(
                f"{name}: unknown or empty {unknown or values!r}. Choose from: "
                f"{', '.join(known)}."
            )
    if image_size < 32:
        raise UserError(f"--image-size must be at least 32. Received: {image_size}")
    if num_classes < 1:
        raise UserError(f"--num-classes must be at least 1. Received: {num_classes}")
    from keras_art.models.model_cost import measure_model  # TensorFlow: after checks

    base = base or ModelConfig()
    rows = []
    for backbone in backbones:
        for head in heads:
            cfg = ModelConfig(**{**vars(base), "backbone": backbone, "head": head})
            rows.append(measure_model(cfg, {"classes": num_classes}, image_size))
    print(_table(rows, image_size, num_classes))
    if json_path:
        out = Path(json_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


def _table(rows: list[dict], image_size: int, num_classes: int) -> str:
    cells = [[title for title, _, _ in COLUMNS]]
    cells += [[fmt.format(row[key]) for _, key, fmt in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = [
        f"{image_size} x {image_size} px, {num_classes} classes, per image "
        "(GFLOPs = 2 x GMACs)"
    ]
    for r in cells:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


# The library's parameter names -> this command's flags (its errors' words).
FLAGS = {
    "backbones": "--backbones",
    "heads": "--heads",
    "image_size": "--image-size",
    "num_classes": "--num-classes",
    "json_path": "--json",
}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m keras_art.summary",
        description="Parameters, .keras size and GMACs per backbone x head.",
    )
    parser.add_argument("--backbones", type=_csv, default=list(BACKBONES))
    parser.add_argument("--heads", type=_csv, default=list(HEADS))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=27)
    parser.add_argument("--json", dest="json_path", help="also write rows here")

    def run():
        args = parser.parse_args(argv)
        quiet_tensorflow()
        model_costs(
            args.backbones,
            args.heads,
            args.image_size,
            args.num_classes,
            args.json_path,
        )

    return run_command(run, flags=FLAGS)


if __name__ == "__main__":
    sys.exit(main())
