"""``python -m dlpractice.recipe [overrides]``: the basic recipe as a loop — train, diagnose, change
one thing (:mod:`dlpractice.recipe_policy`), train again — until a good fit, nothing left to try or
``recipe.max_steps`` runs. Each step is one run of the Hydra app's own function
(:func:`dlpractice.experiment.run_job`), an MLflow child of one parent run (a sweep run,
:mod:`dlpractice.tracking`) tagged ``recipe_step``, ``recipe_action`` and ``recipe_reason``.

Owns the command line (one-line errors before any run opens), composing each step's config
(Hydra's compose API over ``conf/``: the start's overrides plus the recipe's changes) and the
recipe's folder: ``steps/step-<k>/`` (run folders), ``table.md``/``table.csv``, ``recipe_path.png``.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from dlpractice import recipe_policy as policy
from dlpractice.errors import ArgumentParser, ConfigError, DlpracticeError, one_line

COLUMNS = ("setting", "step", "action", "hidden", "iterations", "train_size", "regularizer",
           "train_error", "dev_error", "avoidable_bias", "variance", "diagnosis", "reason",
           "status", "comment")
FIGURE = "recipe_path.png"
RUN_DIR = "hydra.run.dir"  # the recipe's folder, as for the app's single run


def parse_args(argv: list[str]) -> tuple[list[str], Path]:
    """The command line -> the start's overrides and the recipe's folder; one line on misuse."""
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from dlpractice import experiment, params

    parser = ArgumentParser(prog="python -m dlpractice.recipe",
                            description="The basic recipe: train, diagnose, change one thing, "
                                        "until a good fit (recipe.max_steps runs at most).")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the start, e.g. "
                        "model.hidden=[2] data.train_size=20; hydra.run.dir=<folder>")
    parser.add_argument("--overrides", dest="quoted", default="",
                        help="more overrides as one quoted word (MLproject)")
    args = parser.parse_args(argv)
    try:
        overrides = [*args.overrides, *shlex.split(args.quoted)]
    except ValueError as exc:  # e.g. an unterminated quote
        raise ConfigError(f"--overrides {args.quoted!r}: {exc}") from None
    grammar = OverridesParser.create()
    out_dir = Path("outputs") / time.strftime("%Y-%m-%d") / time.strftime("%H-%M-%S")
    start = []
    for text in overrides:
        try:
            (parsed,) = grammar.parse_overrides([text])
        except HydraException as exc:
            raise ConfigError(f"cannot parse the override {text!r}: {one_line(exc)}") from None
        key = parsed.key_or_group
        if parsed.is_sweep_override():
            raise ConfigError(f"{text} is a sweep, but the recipe changes one config step by "
                              "step: give one value")
        if key == RUN_DIR:
            out_dir = Path(str(parsed.value()))
        elif key.startswith("hydra"):
            raise ConfigError(f"{text}: the recipe takes no Hydra settings but {RUN_DIR}")
        else:
            start.append(text)
    params.check_group_choices(start, experiment.CONF_DIR)
    params.check_keys(start, experiment.CONF_DIR)
    return start, out_dir


def compose(overrides: list[str]) -> Any:
    """``conf/`` composed with ``overrides`` and validated: a :class:`~dlpractice.config.Config`."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from dlpractice import config, experiment

    try:
        with initialize_config_dir(str(experiment.CONF_DIR), version_base="1.3"):
            raw = hydra_compose("config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot compose the config: {one_line(exc)}") from None
    return config.load(raw)


def merged(start: list[str], changes: dict[str, Any]) -> list[str]:
    """The start's overrides with the recipe's changes in place of the same keys."""
    kept = [o for o in start if o.partition("=")[0].lstrip("+~") not in changes]
    return [*kept, *policy.overrides_list(changes)]


def settings_of(cfg: Any, n_train: int) -> policy.Settings:
    from dlpractice.config import train_examples

    r = cfg.regularizer
    keep = r.keep_prob if isinstance(r.keep_prob, (int, float)) else tuple(r.keep_prob)
    return policy.Settings(tuple(cfg.model.hidden), cfg.train.iterations, cfg.data.train_size,
                           train_examples(cfg, n_train), n_train, r.name, r.lambd, keep)


def regularizer_text(cfg: Any) -> str:
    r = cfg.regularizer
    if r.name in ("l2", "l1"):
        return f"{r.name} λ {r.lambd:g}"
    if r.name == "dropout":
        return f"dropout keep_prob {cfg.hidden_keep_probs()}"
    return r.name


class Recipe:
    """One recipe: its start, folder, store and parent run; :meth:`run` takes the steps."""

    def __init__(self, start: list[str], out_dir: Path, unshown: list[str] | None = None):
        """``unshown``: overrides of every step that are not the user's start (e.g. the tag of
        ``mlflow run``'s launcher run)."""
        import uuid

        from dlpractice import pipeline, tracking

        self.start, self.out_dir, self.unshown = start, out_dir, list(unshown or ())
        self.cfg = compose([*start, *self.unshown])  # the one check of the whole command line
        self.max_steps = self.cfg.recipe.max_steps
        data = self.cfg.data
        whole = self.cfg if data.train_size is None else replace(
            self.cfg, data=replace(data, train_size=None))
        pipeline.prepare_data(self.cfg)  # data.train_size must fit the split, before any run
        self.n_train = pipeline.prepare_data(whole).splits.X_train.shape[1]
        self.stores = tracking.Stores()
        self.store = self.stores.get(self.cfg.tracking.uri) if self.cfg.tracking.enabled else None
        if self.store is not None:
            self.store.check()
        self.recipe_id = uuid.uuid4().hex[:12]
        self.parent_run_id: str | None = None

    def open_parent(self) -> None:
        from dlpractice import tracking

        if self.store is None:
            return
        t = self.cfg.tracking
        tracking.close_abandoned_runs(self.store, t.experiment, t.stale_after_s)
        self.parent_run_id = tracking.start_sweep_run(
            self.store, t.experiment, f"recipe-{self.recipe_id}",
            tags={**t.tags, "sweep_id": self.recipe_id, "sweep_dir": str(self.out_dir.resolve()),
                  "recipe": "true", "recipe_start": " ".join(self.start)})

    def run(self) -> tuple[list[dict[str, Any]], str]:
        """Every step's table line and the outcome: ``good_fit``, ``stop`` (nothing left to try),
        ``max_steps`` or ``failed``."""
        from dlpractice.diagnose import diagnose
        from dlpractice.experiment import run_job
        from dlpractice.tracking.sweeps import JOB_TAG, SWEEP_TAG

        changes: dict[str, Any] = {}
        action = policy.START
        reason = policy.start_reason(self.start)
        lines: list[dict[str, Any]] = []
        outcome = "max_steps"
        for step in range(self.max_steps):
            try:  # a change the config refuses ends the recipe with its row
                # the start itself at step 0
                cfg = compose([*merged(self.start, changes), *self.unshown])
            except DlpracticeError as exc:
                lines.append({"setting": f"step-{step}", "step": step, "action": action,
                              "reason": reason, "status": f"failed: {one_line(exc)}"})
                outcome = "failed"
                break
            cfg = replace(cfg, tracking=replace(cfg.tracking, rerun=True))  # every step trains
            tags = {SWEEP_TAG: self.recipe_id, JOB_TAG: str(step), "recipe_step": str(step),
                    "recipe_action": action, "recipe_reason": reason,
                    "recipe_overrides": " ".join(policy.overrides_list(changes)),
                    "mlflow.note.content": reason}
            settings = settings_of(cfg, self.n_train)
            line: dict[str, Any] = {
                "setting": f"step-{step}", "step": step, "action": action,
                "hidden": str(list(cfg.model.hidden)), "iterations": cfg.train.iterations,
                "train_size": settings.n_used, "regularizer": regularizer_text(cfg),
                "reason": reason}
            try:
                row = run_job(cfg, self.out_dir / "steps" / f"step-{step}", multirun=True,
                              parent_run_id=self.parent_run_id, tags=tags, stores=self.stores)
            except DlpracticeError as exc:  # e.g. training diverged: the run ended FAILED
                lines.append({**line, "status": f"failed: {one_line(exc)}"})
                outcome = "failed"
                break
            line.update({k: row.get(k) for k in ("train_error", "dev_error", "avoidable_bias",
                                                 "variance", "diagnosis")})
            lines.append(line)
            d = cfg.diagnosis
            decision = policy.decide(
                diagnose(row["train_error"], row["dev_error"], d.bayes_error,
                         bias_threshold=d.bias_threshold,
                         variance_threshold=d.variance_threshold), settings)
            line["_next"] = decision.action
            if decision.action in (policy.DONE, policy.STOP):
                outcome = "good_fit" if decision.action == policy.DONE else "stop"
                line["_stop_reason"] = decision.reason
                break
            changes.update(decision.overrides)
            action, reason = decision.action, decision.reason
        return lines, outcome

    def write(self, lines: list[dict[str, Any]], outcome: str) -> list[Path]:
        """table.md, table.csv and recipe_path.png in the recipe's folder."""
        from dlpractice import claims, plots, report

        for line, text in zip(lines, claims.recipe_comments(lines, outcome, self.max_steps),
                              strict=True):
            line["comment"] = text
        d = self.cfg.diagnosis
        heading = (f"# recipe\n\n{RECIPE_TEXT}\n\nStart: `python -m dlpractice.recipe "
                   f"{' '.join(self.start)}`; outcome: {outcome} after {len(lines)} of at most "
                   f"{self.max_steps} steps (recipe.max_steps). High bias: avoidable bias above "
                   f"{claims.pct(d.bias_threshold)}; high variance: variance above "
                   f"{claims.pct(d.variance_threshold)}.")
        files = list(report.write_table(lines, self.out_dir, "table", COLUMNS, heading=heading))
        points = [(line["step"], line["action"], line["avoidable_bias"], line["variance"])
                  for line in lines if line.get("avoidable_bias") is not None]
        files.append(plots.recipe_path(points, self.out_dir / FIGURE, d.bias_threshold,
                                       d.variance_threshold))
        return files

    def close(self, status: str, files: list[Path] = (), lines: list[dict[str, Any]] = (),
              outcome: str | None = None) -> str | None:
        """Close the parent run (once) with the table, figure and outcome; its UI link."""
        from dlpractice import tracking

        if self.parent_run_id is None:
            return None
        run_id, self.parent_run_id = self.parent_run_id, None
        tags = {"recipe_steps": str(len(lines)), "jobs": str(len(lines)),
                "failed_jobs": str(sum(1 for line in lines if "status" in line))}
        if outcome is not None:
            tags["recipe_outcome"] = outcome
        done = [line for line in lines if line.get("dev_error") is not None]
        metrics = ({"final_train_error": done[-1]["train_error"],
                    "final_dev_error": done[-1]["dev_error"]} if done else {})
        tracking.finish_sweep_run(self.store, run_id, files=files, tags=tags, status=status,
                                  metrics=metrics)
        return self.store.run_url(run_id)


RECIPE_TEXT = (
    "The basic recipe as a loop, from a deliberately poor start: train, diagnose (avoidable bias "
    "= train − Bayes error, variance = dev − train error), then high bias → a bigger network "
    "(more units, then more layers), then train longer; high variance → more data while "
    "data.train_size can grow, then L2 (λ up), then dropout; bias first when both are high; "
    "stop at a good fit. Each row is one run (an MLflow child run of the recipe's parent run).")


def main(argv: list[str] | None = None) -> int:
    from dlpractice.errors import sigterm_as_interrupt

    try:
        start, out_dir = parse_args(sys.argv[1:] if argv is None else argv)
        from dlpractice.experiment import mlflow_project_override

        recipe = Recipe(start, out_dir, unshown=mlflow_project_override())
    except DlpracticeError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    sigterm_as_interrupt()
    from dlpractice import report, startup

    startup.import_kept(*startup.MLFLOW, *startup.MATPLOTLIB)
    try:
        recipe.open_parent()
        lines, outcome = recipe.run()
        files = recipe.write(lines, outcome)
        url = recipe.close("FINISHED", files, lines, outcome)
    except KeyboardInterrupt as exc:
        recipe.close("KILLED")
        signum = signal.SIGTERM if str(exc) == f"signal {int(signal.SIGTERM)}" else signal.SIGINT
        print(f"error: interrupted by {signal.Signals(signum).name}; the open MLflow runs are "
              "recorded as KILLED", file=sys.stderr)
        return 128 + int(signum)
    except BaseException:
        recipe.close("FAILED")
        raise
    print(report.table_markdown(lines, [c for c in COLUMNS if c not in ("reason", "comment")]))
    print(f"outcome: {outcome} after {len(lines)} steps")
    if url:
        print(f"run: {url}")
    print(f"folder: {out_dir}")
    return 0 if outcome != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
