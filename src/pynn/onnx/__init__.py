"""ONNX export: ``pynn.onnx.export(model, "model.onnx", opset=17)`` or
``model.export("model.onnx", format="onnx")``.

Built with the ``onnx`` package's helper API alone (``pip install "pynn-cpu[onnx]"``);
importing :mod:`pynn` never needs it. See :mod:`pynn.onnx.export` for the layer
coverage and the documented list of layers that cannot be exported.
"""
from .export import UNSUPPORTED, ExportContext, export, register_exporter, to_onnx

__all__ = ["export", "to_onnx", "register_exporter", "ExportContext", "UNSUPPORTED"]
