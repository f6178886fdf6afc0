"""What the lecture claims of each study's settings, and whether a table's numbers show it: the
text of the studies' ``comment`` column. Pure: reads table lines (dicts), returns text; no files,
no figures, no MLflow (:mod:`dlpractice.studies` builds the lines and writes the tables).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dlpractice.diagnose import exceeds
from dlpractice.epsilon_scan import EPSILONS, EpsilonScan

# What each diagnosis says, in the lecture's words (the comments of the lecture's studies).
LABEL_WORDS = {"high_variance": "high variance", "high_bias": "high bias",
               "high_bias_high_variance": "high bias and high variance",
               "good_fit": "neither high bias nor high variance"}
LECTURE_SLOPES = {"central": 2.0, "forward": 1.0}  # error O(ε²) two-sided, O(ε) one-sided
LECTURE_ESTIMATES = {"central": 3.0001, "forward": 3.0301}  # θ³ at θ = 1, ε = 0.01


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def bias_variance_comment(line: Mapping[str, Any]) -> str:
    """What the lecture says of this setting's errors and whether its diagnosis shows it, e.g.
    ``high variance: train 1.0% vs dev 11.2% — shown``."""
    expected = str(line.get("_lecture", ""))
    claim = LABEL_WORDS.get(expected, expected or "no claim")
    if line.get("train_error") is None or line.get("dev_error") is None:
        return f"{claim}: no errors to show it (the run failed)"
    numbers = f"train {pct(line['train_error'])} vs dev {pct(line['dev_error'])}"
    if line.get("bayes_error"):
        claim += f" with Bayes error {pct(line['bayes_error'])}"
    diagnosis = line.get("diagnosis")
    verdict = "shown" if diagnosis == expected else f"not shown (diagnosed {diagnosis})"
    return f"{claim}: {numbers} — {verdict}"


def learning_curve_comments(lines: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each row's comment: what the lecture claims of its curve (more data cures variance, not
    bias) and whether the curve's smallest and largest sizes show it."""
    by_curve: dict[str, list[Mapping[str, Any]]] = {}
    for line in lines:
        if line.get("train_error") is not None and line.get("dev_error") is not None:
            by_curve.setdefault(str(line["curve"]), []).append(line)
    texts = {}
    for curve, done in by_curve.items():
        done = sorted(done, key=lambda r: r["train_size"])
        small, large = done[0], done[-1]
        bias_threshold, variance_threshold = large["_thresholds"]
        span = f"{small['train_size']} → {large['train_size']} examples"
        if large["_lecture"] == "high_variance":
            shown = (exceeds(small["dev_error"] - large["dev_error"], variance_threshold)
                     and not exceeds(large["variance"], variance_threshold))
            texts[curve] = (
                f"more data cures variance: dev error {pct(small['dev_error'])} → "
                f"{pct(large['dev_error'])}, variance {pct(small['variance'])} → "
                f"{pct(large['variance'])} ({span})")
        elif large["_lecture"] == "high_bias":
            shown = all(exceeds(r["avoidable_bias"], bias_threshold) for r in done)
            texts[curve] = (
                f"more data does not cure bias: train error {pct(small['train_error'])} → "
                f"{pct(large['train_error'])}, avoidable bias "
                f"{pct(min(r['avoidable_bias'] for r in done))} or more ({span})")
        else:
            texts[curve] = "the lecture makes no claim of this curve (tags: lecture)"
            continue
        texts[curve] += " — shown" if shown else " — not shown"
    return [texts.get(str(line.get("curve")), "no errors to show the claim (the runs failed)")
            for line in lines]


def epsilon_scan_comment(scan: EpsilonScan, estimate: float | None = None) -> str:
    """The lecture's order of a finite difference's error against the scan's fitted slope, the
    θ³ estimate at ε = 0.01 against the lecture's, and where rounding takes over."""
    claim = LECTURE_SLOPES[scan.method]
    shown = abs(scan.slope - claim) < 0.25
    order = "ε²" if claim == 2 else "ε"
    comment = [f"lecture: error O({order}), slope ≈ {claim:g}; fitted {scan.slope:.2f} — "
               + ("shown" if shown else "not shown")]
    if estimate is not None:
        lecture = LECTURE_ESTIMATES[scan.method]
        comment.insert(0, f"lecture: {lecture} at ε = 0.01; here {estimate:.6f} — "
                       + ("shown" if abs(estimate - lecture) < 1e-9 else "not shown"))
    if scan.rounding_epsilon is not None:
        comment.append(f"rounding takes over below ε = {scan.rounding_epsilon:g}")
    elif scan.check == "exact":
        comment.append(f"no rounding regime down to ε = {min(EPSILONS):g}: cost changes without "
                       "cancellation")
    return "; ".join(comment)


def other_regularization_comments(lines: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each row's comment: the unregularized setting (tag ``lecture`` = high_variance) is high
    variance (:func:`bias_variance_comment`); each method (``reduces_variance``) has a lower dev
    error and a lower variance than it (early stopping: at its stop, with its end's errors)."""
    base = next((b for b in lines if b.get("_lecture") == "high_variance"), None)
    texts = []
    for line in lines:
        if line.get("_lecture") != "reduces_variance":
            texts.append(bias_variance_comment(line))
            continue
        claim = "reduces variance"
        if line.get("dev_error") is None:
            texts.append(f"{claim}: no errors to show it (the run failed)")
            continue
        if base is None or base.get("dev_error") is None:
            texts.append(f"{claim}: no unregularized run to compare with")
            continue
        numbers = (f"dev error {pct(base['dev_error'])} → {pct(line['dev_error'])}, variance "
                   f"{pct(base['variance'])} → {pct(line['variance'])} vs {base['setting']}")
        if line.get("best_iteration") is not None:
            numbers += (f" (stopped at iteration {line['best_iteration']}; at the end: train "
                        f"{pct(line['train_error_end'])} vs dev {pct(line['dev_error_end'])})")
        shown = line["dev_error"] < base["dev_error"] and line["variance"] < base["variance"]
        texts.append(f"{claim}: {numbers} — " + ("shown" if shown else "not shown"))
    return texts


# The lecture's remedies per diagnosis (bias first when both are high): the recipe's actions.
BIAS_ACTIONS = ("more_units", "more_layers", "train_longer")
VARIANCE_ACTIONS = ("more_data", "add_l2", "raise_l2", "add_dropout", "lower_keep_prob")


def recipe_comments(lines: Sequence[Mapping[str, Any]], outcome: str, max_steps: int
                    ) -> list[str]:
    """Each step's comment: the lecture's remedy for its diagnosis and the recipe's next action
    (``_next``); the last step's: the lecture's claim that the recipe reaches a good fit and
    whether this path shows it."""
    texts = []
    for k, line in enumerate(lines):
        label, nxt = line.get("diagnosis"), line.get("_next")
        if label is None:
            texts.append("the run failed: no diagnosis — the recipe stops")
            continue
        words = LABEL_WORDS.get(str(label), str(label))
        if k == len(lines) - 1:
            claim = "lecture: the recipe reaches a good fit"
            if outcome == "good_fit":
                texts.append(f"{claim} — shown ({words} after {k} changes)")
            elif outcome == "stop":
                texts.append(f"{claim} — not shown ({words}; {line.get('_stop_reason', '')})")
            else:
                texts.append(f"{claim} — not shown ({words} after recipe.max_steps={max_steps} "
                             "steps)")
            continue
        remedy = (BIAS_ACTIONS if str(label).startswith("high_bias") else VARIANCE_ACTIONS)
        lecture = ("bias first: a bigger network, then train longer" if remedy is BIAS_ACTIONS
                   else "more data, then regularization")
        verdict = "shown" if nxt in remedy else "not shown"
        texts.append(f"{words} → lecture: {lecture}; next: {nxt} — {verdict}")
    return texts
