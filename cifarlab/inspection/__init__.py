"""Look at a network before training it: shapes, parameters, MACs, memory and design findings.

>>> from cifarlab.inspection import inspect_model
>>> report = inspect_model("seed")          # or an nn.Module, a Config, a layer list, a YAML file, a run
>>> print(report.format_table())            # report.to_dict() for JSON; shows as HTML in notebooks
"""

from cifarlab.inspection.diagram import draw_diagram
from cifarlab.inspection.findings import Finding
from cifarlab.inspection.report import InspectReport, inspect_model, parse_shape

__all__ = ["Finding", "InspectReport", "draw_diagram", "inspect_model", "parse_shape"]
