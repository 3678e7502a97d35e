"""Measuring trained models: accuracy reports, evaluation of a run, prediction on files."""

from cifarlab.evaluation.evaluate import evaluate
from cifarlab.evaluation.metrics import EvalReport
from cifarlab.evaluation.predict import Prediction, predict

__all__ = ["EvalReport", "Prediction", "evaluate", "predict"]
