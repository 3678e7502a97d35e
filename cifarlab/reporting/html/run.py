"""The report of one run: what it is, how it trained, how good it is, where it fails, how sure it is.

Every section reads what the run directory has and says what it lacks: a run
that is still training, died, or saved no test predictions still gets a page.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cifarlab.errors import CifarlabError, first_line
from cifarlab.formatting import cell, duration, html_table, percent
from cifarlab.reporting.html.page import facts, guarded, note, plotted, png_img, pre
from cifarlab.reporting.plots import plot_accuracy, plot_confusion, plot_loss, plot_robustness, plt, save_figure
from cifarlab.rundir import RunDir

GALLERY_SIZE = 24  # most confident mistakes shown
CALIBRATION_BINS = 15


@dataclass
class RunView:
    """What a run directory holds, read once: every section draws from this."""

    run: RunDir
    summary: dict[str, Any]
    config: Any  # cifarlab.config.Config, or None when config.yaml is unreadable
    config_problem: str | None
    predictions: dict[str, np.ndarray] | None
    predictions_problem: str | None
    classes: list[str]

    @classmethod
    def read(cls, path: str | Path) -> "RunView":
        """Read the run at ``path`` through :class:`RunDir`, tolerating every missing or broken file."""
        from cifarlab.data.official import CLASSES

        run = RunDir(path)
        config, config_problem, predictions, predictions_problem = None, None, None, None
        try:
            config = run.config()
        except (CifarlabError, OSError, ValueError) as exc:
            config_problem = first_line(exc)
        try:
            saved = run.predictions()
            if saved is not None:
                predictions = {k: np.asarray(saved[k]) for k in ("index", "label", "probs")}
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file: safetensors raises its own error types
            predictions_problem = f"{type(exc).__name__}: {first_line(exc)}"
        return cls(run, run.summary(), config, config_problem, predictions, predictions_problem, list(CLASSES))

    def correct(self) -> np.ndarray:
        """Per test image: whether the saved prediction is right."""
        return self.predictions["probs"].argmax(1) == self.predictions["label"]

    def confusion(self) -> np.ndarray:
        """The test confusion matrix of the saved predictions (rows: true class)."""
        from cifarlab.evaluation.metrics import confusion_matrix

        return confusion_matrix(self.predictions["label"], self.predictions["probs"].argmax(1), len(self.classes))


def _missing_predictions(view: RunView) -> str:
    if view.predictions_problem:
        return note(f"Test predictions unreadable ({RunDir.PREDICTIONS}: {view.predictions_problem}), "
                    "so this section cannot be drawn.")
    status = view.summary.get("status", "unknown")
    why = ("the run has not finished its final test pass" if status != "completed"
           else "this run was trained by a cifarlab that did not save them")
    return note(f"No test predictions ({RunDir.PREDICTIONS}): {why} (status: {status}), "
                "so this section cannot be drawn.")


def header(view: RunView) -> str:
    """Status, preset, data, splits, device, precision, seed, times, size of the network."""
    s, cfg = view.summary, view.config
    arch = s.get("arch") or {}
    status = s.get("status", "unknown")
    parts = []
    if not s:
        parts.append(note(f"No {RunDir.SUMMARY}: the run never started training, or this is not a run directory."))
    elif status != "completed":
        parts.append(note(f"Status '{status}': the run is still training or stopped before the end "
                          f"(last update {s.get('updated_at', 'unknown')}); this page shows what it wrote so far."))
    if view.config_problem:
        parts.append(note(f"Configuration unreadable: {view.config_problem}"))
    val_size = cfg.data.val_size if cfg is not None else None
    network = (f"{arch.get('conv')} conv + {arch.get('fc')} fc, {arch.get('activation')}, "
               f"{arch.get('normalization')}") if arch else s.get("model", "-")
    macs = arch.get("macs")
    parts.append(facts([
        ("status", status),
        ("preset", s.get("preset", cfg.preset if cfg is not None else "-")),
        ("network", network),
        ("parameters", f"{s['params']:,}" if isinstance(s.get("params"), int) else "-"),
        ("MACs per image", f"{macs:,}" if isinstance(macs, int) else "not recorded"),
        ("data", s.get("data", "-")),
        ("images: train / validation / test", " / ".join(
            f"{n:,}" if isinstance(n, int) else "-" for n in (s.get("train_images"), val_size, s.get("test_images")))),
        ("device, precision", f"{s.get('device', '-')}, {s.get('precision', '-')}"),
        ("seed", s.get("seed", "-")),
        ("epochs", f"{s.get('epochs_completed', '-')} of {s.get('epochs', '-')}"),
        ("training time", duration(s.get("train_seconds"))),
        ("wall time", duration(s.get("wall_seconds"))),
        ("validation accuracy (last, best)",
         f"{percent(s.get('val_acc'))}, {percent(s.get('best_val_acc'))} at epoch {s.get('best_epoch', '-')}"),
    ]))
    return "\n".join(parts)


def curves(view: RunView) -> str:
    """Loss per step (raw and smoothed) and accuracy per epoch, as the trainer's own plots draw them."""
    records = view.run.metrics()  # read once: a skipped line is warned about once
    if not any(r.get("type") in ("step", "epoch") for r in records):
        return note(f"No training records in {RunDir.METRICS}: no epoch has finished yet.")
    loss = png_img(plotted(plot_loss, records), "training loss per step")
    accuracy = png_img(plotted(plot_accuracy, records, test_acc=view.summary.get("test_acc")), "accuracy per epoch")
    return f'<div class="pair">{loss}{accuracy}</div>'


def test_accuracy(view: RunView) -> str:
    """Test accuracy with its 95% Wilson interval."""
    from cifarlab.evaluation.metrics import wilson_interval

    if view.predictions is not None:
        correct, total = int(view.correct().sum()), len(view.predictions["label"])
    elif view.summary.get("test_acc") is not None and view.summary.get("test_images"):
        total = int(view.summary["test_images"])
        correct = round(view.summary["test_acc"] * total)
    else:
        return note("No test accuracy yet: the final test pass runs when training completes.")
    low, high = wilson_interval(correct, total)
    return (f'<p><span class="big">{correct / total:.2%}</span> on {total:,} test images '
            f"({correct:,} right); 95% confidence interval {low:.2%} to {high:.2%} (Wilson score interval: the "
            "range the accuracy on unlimited images from the same distribution would lie in).</p>")


def per_class(view: RunView) -> str:
    """Precision, recall, F1 and support per class, sortable."""
    from cifarlab.evaluation.metrics import per_class_scores

    if view.predictions is None:
        return _missing_predictions(view)
    scores = per_class_scores(view.confusion())
    rows = [[c, cell(s["precision"], f"{s['precision']:.3f}"), cell(s["recall"], f"{s['recall']:.3f}"),
             cell(s["f1"], f"{s['f1']:.3f}"), cell(s["support"])] for c, s in zip(view.classes, scores)]
    return html_table(["class", "precision", "recall", "F1", "test images"], rows, sortable=True)


def confusion(view: RunView) -> str:
    """The confusion matrix heatmap."""
    if view.predictions is None:
        return _missing_predictions(view)
    return png_img(plotted(plot_confusion, view.confusion().tolist(), view.classes), "confusion matrix", "plot narrow")


def calibration(view: RunView) -> str:
    """ECE over 15 bins and the reliability diagram with the images per bin."""
    from cifarlab.evaluation.calibration import reliability_bins

    if view.predictions is None:
        return _missing_predictions(view)
    bins = reliability_bins(view.predictions["probs"], view.predictions["label"], CALIBRATION_BINS)
    edges = np.asarray(bins["edges"])
    count = np.asarray(bins["count"])
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    filled = count > 0
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 6.5), height_ratios=[3, 1], sharex=True)
    ax.bar(centres[filled], np.asarray(bins["accuracy"])[filled], width=width[filled], edgecolor="black",
           color="tab:blue", label="accuracy of the images in the bin")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.scatter(np.asarray(bins["confidence"])[filled], np.asarray(bins["accuracy"])[filled], color="tab:red",
               zorder=3, s=14, label="(mean confidence, accuracy)")
    ax.set(ylabel="accuracy", title=f"Reliability diagram, {CALIBRATION_BINS} bins (ECE {bins['ece']:.2%})")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    hist.bar(centres, count, width=width, color="tab:gray", edgecolor="black")
    hist.set(yscale="log" if count.max(initial=0) > 50 * max(1, np.median(count[filled]) if filled.any() else 1)
             else "linear", xlabel="confidence (probability of the predicted class)", ylabel="images", xlim=(0, 1))
    mean_conf, accuracy = float(view.predictions["probs"].max(1).mean()), float(view.correct().mean())
    lean = ("over-confident: more sure than it is right (bars below the diagonal)" if mean_conf > accuracy
            else "under-confident: right more often than it is sure (bars above the diagonal)")
    text = (f"<p>Expected calibration error (ECE, {CALIBRATION_BINS} equal-width bins): "
            f'<span class="big">{bins["ece"]:.2%}</span>. Mean confidence {mean_conf:.2%} against accuracy '
            f"{accuracy:.2%}: on the whole the model is {lean}.</p>")
    return text + png_img(plotted(save_figure, fig, dpi=90), "reliability diagram")  # smaller than a run's plots


def _test_images(view: RunView, chosen: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The test images of the predictions at ``chosen`` (from the run's dataset, then cached), or None and why not."""
    from cifarlab.data import default_cache_dir, load_dataset
    from cifarlab.data.download import FILENAME

    if view.config is None:
        return None, "the run's config is unreadable, so its dataset is unknown"
    path = view.config.data.path
    if path is None and not (default_cache_dir() / FILENAME).is_file():  # a report never downloads
        return None, "the run used the downloaded CIFAR-10, which is not in this machine's cache"
    try:
        data = load_dataset(path, progress=False)
    except (CifarlabError, OSError) as exc:
        return None, f"the run's dataset cannot be loaded ({first_line(exc)})"
    indices = view.predictions["index"][chosen]
    if len(indices) and (indices.max() >= len(data.test_labels)
                         or not np.array_equal(data.test_labels[indices], view.predictions["label"][chosen])):
        return None, f"the test images at {path} are not the ones this run was tested on"
    return data.test_images[indices], None


def mistakes(view: RunView) -> str:
    """Thumbnails of the test images the model got wrong with the highest confidence."""
    from PIL import Image

    if view.predictions is None:
        return _missing_predictions(view)
    p = view.predictions
    predicted, confidence = p["probs"].argmax(1), p["probs"].max(1)
    wrong = np.flatnonzero(predicted != p["label"])
    if not len(wrong):
        return "<p>No mistakes on the test images.</p>"
    chosen = wrong[np.argsort(-confidence[wrong], kind="stable")][:GALLERY_SIZE]
    intro = (f"<p>The {len(chosen)} test images the model got wrong with the highest confidence "
             f"({len(wrong):,} mistakes in all).</p>")
    images, problem = _test_images(view, chosen)
    if images is None:
        return intro + note(f"No thumbnails: {problem}.") + html_table(
            ["test image", "true class", "predicted", "probability"],
            [[cell(int(p["index"][i])), view.classes[p["label"][i]], view.classes[predicted[i]],
              cell(float(confidence[i]), f"{confidence[i]:.1%}")] for i in chosen])
    figures = []
    for image, i in zip(images, chosen):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")  # 32x32: the page scales it up, pixelated
        index = int(p["index"][i])
        caption = (f"#{index}<br>true <b>{view.classes[p['label'][i]]}</b><br>"
                   f"predicted <b>{view.classes[predicted[i]]}</b> ({confidence[i]:.1%})")
        figures.append(f"<figure>{png_img(buf.getvalue(), f'test image {index}', 'thumb')}"
                       f"<figcaption>{caption}</figcaption></figure>")
    return intro + f'<div class="gallery">{"".join(figures)}</div>'


def robustness(view: RunView) -> str:
    """Accuracy per corruption and severity, when ``cifarlab evaluate RUN --corruptions`` has saved it."""
    result = view.run.robustness()
    if not result:
        return note(f"Not computed: `cifarlab evaluate {view.run.path} --corruptions` measures it "
                    f"and saves {RunDir.ROBUSTNESS}.")
    corruptions = result.get("corruptions", {})
    severities = sorted({int(k) for accs in corruptions.values() for k in accs})
    table_rows = []
    for name, accs in corruptions.items():
        values = [accs.get(str(k)) for k in severities]
        mean = float(np.mean([v for v in values if v is not None]))
        table_rows.append([name] + [cell(v, percent(v)) for v in values] + [cell(mean, percent(mean))])
    summary = (f'<p>Mean corruption accuracy <span class="big">{percent(result.get("mean"))}</span> '
               f"against {percent(result.get('clean'))} on the clean test images.</p>")
    return (summary + html_table(["corruption"] + [f"severity {k}" for k in severities] + ["mean"], table_rows,
                                 sortable=True)
            + png_img(plotted(plot_robustness, result), "accuracy against corruption severity"))


def configuration(view: RunView) -> str:
    """The resolved config as YAML and the environment the run trained in."""
    config = pre(view.config.to_yaml()) if view.config is not None else note(
        f"{RunDir.CONFIG} unreadable: {view.config_problem}")
    env = view.run.env()
    environment = pre(json.dumps(env, indent=2, default=str)) if env else note(f"No {RunDir.ENV}.")
    return (f"<details open><summary>Resolved config ({RunDir.CONFIG})</summary>{config}</details>"
            f"<details><summary>Environment ({RunDir.ENV})</summary>{environment}</details>")


SECTIONS: list[tuple[str, Callable[[RunView], str]]] = [
    ("Overview", header),
    ("Training curves", curves),
    ("Test accuracy", test_accuracy),
    ("Per-class precision, recall and F1", per_class),
    ("Confusion matrix", confusion),
    ("Calibration", calibration),
    ("Most confident mistakes", mistakes),
    ("Robustness to common corruptions", robustness),
    ("Configuration and environment", configuration),
]


def run_sections(path: str | Path) -> tuple[str, str, list[str]]:
    """Title, subtitle and sections of the report of the run at ``path``."""
    view = RunView.read(path)
    subtitle = f"Run directory {Path(view.run.path).resolve()}"
    return f"Run {Path(view.run.path).name}", subtitle, [guarded(title, build, view) for title, build in SECTIONS]
