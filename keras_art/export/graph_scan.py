"""Read a SavedModel's graph without loading it: GPU-only ops and the signatures.

A GRU traced while a GPU is visible becomes a ``CudnnRNNV3`` op, which has no CPU
kernel: such a SavedModel loads on a CPU-only server and fails on the first
request (keras issues 18504 and 21533). `find_gpu_only_ops` finds those ops in the
graph and in every function of its library, so the export can refuse to write one.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

# Every op named Cudnn* (CudnnRNN, CudnnRNNV2, CudnnRNNV3, CudnnRNNBackprop*,
# CudnnRNNParamsSize, CudnnRNNParamsToCanonical*, ...) has GPU kernels only.
GPU_ONLY_OP_PREFIXES = ("Cudnn",)


def read_saved_model_proto(saved_model_dir: str | os.PathLike):
    """The parsed ``saved_model.pb`` of ``saved_model_dir`` (a ``SavedModel`` proto)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    return proto


def find_gpu_only_ops(saved_model) -> dict[str, list[str]]:
    """GPU-only ops in a SavedModel, as ``{op type: [where, ...]}``; empty if none.

    Args:
        saved_model: a SavedModel directory, its parsed ``SavedModel`` proto, or a
            ``GraphDef`` (e.g. a traced function's ``graph.as_graph_def()``). Every
            graph is read: its own nodes ("graph") and every node of every
            function in its library (named by the function).
    """
    if isinstance(saved_model, (str, os.PathLike)):
        saved_model = read_saved_model_proto(saved_model)
    if hasattr(saved_model, "meta_graphs"):
        graph_defs = [meta_graph.graph_def for meta_graph in saved_model.meta_graphs]
    else:
        graph_defs = [saved_model]
    found: dict[str, list[str]] = {}

    def visit(nodes, where):
        for node in nodes:
            if node.op.startswith(GPU_ONLY_OP_PREFIXES):
                places = found.setdefault(node.op, [])
                if where not in places:
                    places.append(where)

    for graph_def in graph_defs:
        visit(graph_def.node, "graph")
        for function in graph_def.library.function:
            visit(function.node_def, function.signature.name)
    return found


def describe_signatures(saved_model) -> dict[str, dict[str, dict[str, list]]]:
    """``{signature: {"inputs"|"outputs": {name: [dtype, shape]}}}`` of the
    ``serve`` meta graph, read from the proto (shape ``-1`` = any size)."""

    if isinstance(saved_model, (str, os.PathLike)):
        saved_model = read_saved_model_proto(saved_model)
    out = {}
    for meta_graph in saved_model.meta_graphs:
        if "serve" not in meta_graph.meta_info_def.tags:
            continue
        for name, sig in sorted(meta_graph.signature_def.items()):
            if name.startswith("__"):  # TF's internal __saved_model_init_op
                continue
            out[name] = {
                side: {
                    key: [
                        tf.dtypes.as_dtype(info.dtype).name,
                        [d.size for d in info.tensor_shape.dim],
                    ]
                    for key, info in sorted(tensors.items())
                }
                for side, tensors in (("inputs", sig.inputs), ("outputs", sig.outputs))
            }
    return out


def format_signatures(signatures: dict) -> str:
    """One line per signature: ``name(input dtype[shape]) -> output dtype[shape]``."""

    def specs(tensors):
        return ", ".join(
            f"{key} {dtype}[{', '.join(str(d) for d in shape)}]"
            for key, (dtype, shape) in tensors.items()
        )

    return "\n".join(
        f"{name}({specs(sig['inputs'])}) -> {specs(sig['outputs'])}"
        for name, sig in signatures.items()
    )
