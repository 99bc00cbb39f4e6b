"""Text alternatives of the training playground's live views (`vitviz.playground`): the task's examples, the loss
and accuracy curves, the position-embedding similarity grid and its grid-likeness over steps, the CLS attention of
each head, the confusion matrix and the worst mistakes. Each sentence is computed from the very numbers the page
draws."""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from ..i18n import _, ngettext, sentences
from .common import describe_distribution, percent


def _number(value: float) -> str:
    """A loss or a correlation as the page writes it: two decimals."""
    return f"{value:.2f}"


def examples(task: str, labels: Sequence[str]) -> str:
    """The grid of example images: how many, of which task, and how many of each class (in the order drawn)."""
    counts = Counter(labels)
    classes = ", ".join(_("{count} “{label}”").format(count=n, label=label) for label, n in counts.items())
    return ngettext("{n} example image of the task “{task}”, its label under it: {classes}.",
                    "{n} example images of the task “{task}”, each with its label under it: {classes}.",
                    len(labels)).format(n=len(labels), task=task, classes=classes)


def curves(steps: np.ndarray, train_accuracy: np.ndarray, val_accuracy: np.ndarray, val_loss: np.ndarray) -> str:
    """The loss and accuracy charts: "After 600 steps, validation accuracy 91 %, train 95 %; validation loss fell from
    1.39 to 0.21." (all (n,) at the evaluation steps; train accuracy is nan at step 0, where nothing was trained)."""
    if len(steps) == 0:
        return _("Loss and accuracy against step: not evaluated yet.")
    last, train = int(steps[-1]), float(train_accuracy[-1])
    if np.isfinite(train):
        head = _("After {steps} steps, validation accuracy {val}, train {train}").format(
            steps=last, val=percent(val_accuracy[-1]), train=percent(train))
    else:
        head = _("At step {steps}, before any training, validation accuracy {val}").format(
            steps=last, val=percent(val_accuracy[-1]))
    first, now = float(val_loss[0]), float(val_loss[-1])
    if len(steps) == 1:
        return _("{head}; validation loss {now}.").format(head=head, now=_number(now))
    verb = _("validation loss fell from {first} to {now}") if now < first else _("validation loss went from {first} to {now}")
    return _("{head}; {loss}.").format(head=head, loss=verb.format(first=_number(first), now=_number(now)))


def grid_likeness(steps: np.ndarray, correlation: np.ndarray, grid: tuple[int, int], pos: str) -> str:
    """The position-embedding similarity grid and its grid-likeness number (the rank correlation between similarity
    and closeness on the grid, -1…1) over steps; `pos` names the kind of position embedding shown."""
    gh, gw = grid
    if pos == "none":
        return _("No position embeddings in this run: there is no similarity grid; the model sees the {gh} × {gw} "
                 "patches as an unordered set.").format(gh=gh, gw=gw)
    if len(correlation) == 0:
        return _("Position-embedding similarity on the {gh} × {gw} grid: not measured yet.").format(gh=gh, gw=gw)
    now = float(correlation[-1])
    parts = [_("Position-embedding similarity on the {gh} × {gw} grid, tile (r, c) showing how similar every "
               "position is to position (r, c): grid-likeness {now} at step {step}.").format(
        gh=gh, gw=gw, now=_number(now), step=int(steps[-1]))]
    if len(correlation) > 1:
        parts.append(_("It was {first} at step {start}; the highest so far is {best} at step {at}.").format(
            first=_number(correlation[0]), start=int(steps[0]), best=_number(np.max(correlation)),
            at=int(steps[int(np.argmax(correlation))])))
    parts.append(_("1 means similarity falls exactly with grid distance, 0 means no relation.") if now < 0.5 else
                 _("Neighbouring positions are the most alike: the grid is visible."))
    return sentences(*parts)


def confusion(matrix: np.ndarray, classes: Sequence[str]) -> str:
    """The confusion matrix (rows: true class, columns: predicted; counts (k, k)): the accuracy and the most confused
    pair."""
    matrix = np.asarray(matrix)
    total = int(matrix.sum())
    if total == 0:
        return _("Confusion matrix: no validation images judged yet.")
    right = int(np.trace(matrix))
    head = _("Confusion matrix of {total} validation images, true class by row, predicted by column: {right} on the "
             "diagonal ({share}).").format(total=total, right=right, share=percent(right / total))
    wrong = matrix - np.diag(np.diag(matrix))
    if wrong.max() == 0:
        return sentences(head, _("No image is mistaken."))
    true, predicted = np.unravel_index(np.argmax(wrong), wrong.shape)
    return sentences(head, ngettext(
        "Most confused: {n} “{true}” image taken for “{predicted}”.",
        "Most confused: {n} “{true}” images taken for “{predicted}”.", int(wrong[true, predicted])).format(
        n=int(wrong[true, predicted]), true=classes[true], predicted=classes[predicted]))


def mistakes(true: Sequence[str], predicted: Sequence[str], confidence: Sequence[float]) -> str:
    """The worst mistakes (most confident wrong answers), each with its true and predicted class."""
    if not len(true):
        return _("No validation image is mistaken.")
    items = "; ".join(_("“{true}” taken for “{predicted}” ({confidence} sure)").format(
        true=t, predicted=p, confidence=percent(c)) for t, p, c in zip(true, predicted, confidence))
    return ngettext("The worst mistake: {items}.", "The {n} worst mistakes, most confident first: {items}.",
                    len(true)).format(n=len(true), items=items)


def attention(maps: np.ndarray, label: str) -> str:
    """CLS attention of every head of the last layer on one validation image (maps (heads, gh, gw), rows summing
    with the CLS's own share to 1): where each head looks."""
    heads = [_("head {h}: {where}").format(h=h + 1, where=describe_distribution(m, _("the attention")))
             for h, m in enumerate(np.asarray(maps))]
    return _("CLS attention on a validation image labelled “{label}”, one panel per head; {heads}.").format(
        label=label, heads="; ".join(heads))
