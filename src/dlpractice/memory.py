"""How much memory a run needs, estimated from its config before anything is allocated, and the
check that refuses a run (or a sweep) the machine cannot hold, with one line.

Counts what a run holds at its peak: the data (loading, raw and normalized splits), one training
step's buffers for ``train.batch_size`` examples (dev and final costs and evaluation run in chunks
of it), the gradient check's subset and chunks, the decision boundary's scatter; a sweep multiplies
by its processes and stacked configurations. Available: ``/proc/meminfo``'s MemAvailable, lowered
to what a cgroup limit leaves. Owns: the estimate and the refusal. Must not touch: arrays (it
allocates none), MLflow; it reads no data file beyond its array headers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dlpractice.config import Config
from dlpractice.errors import MemoryLimitError

FLOAT = 8  # bytes of a float64
# per process: Python with numpy, scipy, scikit-learn, Hydra, MLflow and matplotlib imported
INTERPRETER_BYTES = 400 << 20
# generating or reading and splitting holds this many copies of X and Y at once (the generator's
# intermediates, the fingerprint's bytes, the split's copies and index arrays)
LOADING_COPIES = 3.5
CSV_BYTES_PER_VALUE = 120  # a .csv is parsed into Python lists of strings and floats first
FIGURE_BYTES = 16 << 20  # matplotlib's caches once a run has drawn its figures
SCATTER_BYTES_PER_POINT = 96  # matplotlib's scatter of the training points (2-D data)
GRID_EXAMPLES = 120 * 120  # the decision boundary's grid (plots.GRID_POINTS squared)
GRADCHECK_CHUNK_BYTES = 1 << 20  # gradcheck.MAX_CHUNK_BYTES
FOOTBALL_HELDOUT = 200  # football_like's held-out part (generators.FOOTBALL_VAL_SIZE)
COURSE_SIZES = {"circles": (300, 100), "spiral": (400, 0)}  # the course's own arrays: (data, held out)


@dataclass(frozen=True)
class DataSizes:
    """Examples per split as the run will have them; ``test`` is 0 when the dev set is the test set
    (a held-out part serves as both)."""

    n_features: int
    train: int
    dev: int
    test: int
    loaded: int  # examples generated or read before the split
    file_bytes: int = 0
    csv: bool = False


def data_sizes(cfg: Config) -> DataSizes | None:
    """The run's data sizes from its config (a file's from its array headers); None when a data
    file cannot be read (loading it will say why)."""
    from dlpractice.data.generators import COURSE_NAMES

    d = cfg.data
    heldout = 0
    if d.name == "file":
        from dlpractice.data.files import stored_sizes

        try:
            n_features, loaded, heldout = stored_sizes(Path(str(d.path)).expanduser())
            file_bytes = Path(str(d.path)).expanduser().stat().st_size
        except Exception:  # a corrupt file raises many unrelated types; loading it says what
            return None
        csv = str(d.path).lower().endswith(".csv")
    else:
        n_features, file_bytes, csv = 2, 0, False
        loaded = d.n_samples
        if cfg.course_compat and d.name in COURSE_NAMES:
            loaded, heldout = COURSE_SIZES[d.name]
        elif d.name == "football_like":
            heldout = FOOTBALL_HELDOUT
    if heldout and not d.split_heldout:
        return DataSizes(n_features, _kept(cfg, loaded), heldout, 0, loaded + heldout, file_bytes,
                         csv)
    m = loaded + heldout
    if d.dev_size is None and d.test_size is None:
        dev, test = round(m * d.ratios[1]), round(m * d.ratios[2])
    else:
        dev, test = d.dev_size or 0, d.test_size or 0
    return DataSizes(n_features, _kept(cfg, max(m - dev - test, 1)), dev, test, m, file_bytes, csv)


def _kept(cfg: Config, n_train: int) -> int:
    """The train examples the run keeps (``data.train_size``); all of them for a value the split
    cannot give (the run refuses it when it prepares its data)."""
    from dlpractice.config import train_examples
    from dlpractice.errors import ConfigError

    try:
        return train_examples(cfg, n_train)
    except ConfigError:
        return n_train


@dataclass(frozen=True)
class Estimate:
    """Bytes of one process's parts (the working sets are used one after another, with the data
    held); ``shared``: a vectorized sweep's stacked jobs' data, each held by the process that
    trains it (in all, besides the processes' own parts)."""

    loading: int  # peak while the data is generated or read, split and normalized
    data: int  # the splits held from then on (raw and normalized)
    training: int
    gradcheck: int
    evaluation: int  # evaluation of each split in chunks
    plots: int  # the figures; the decision boundary's grid and scatter of the training points
    examples: int  # examples of a training step
    batch_size: int | None  # train.batch_size (None: full batch)
    evaluation_examples: int  # examples evaluation forwards at once
    points: int  # training points the decision boundary draws
    gradcheck_examples: int  # gradcheck.max_examples
    processes: int = 1
    stacked: int = 1  # configurations trained in one stacked pass per process
    shared: int = 0
    sweep: bool = False

    @property
    def per_process(self) -> int:
        work = max(self.training, self.gradcheck, self.evaluation, self.plots)
        return INTERPRETER_BYTES + max(self.loading, self.data + work)

    @property
    def total(self) -> int:
        return self.shared + self.processes * self.per_process


def _workspace(dims: Sequence[int], m: int, backward: bool = True) -> int:
    """``network.Workspace`` over m examples: [A; 1] per layer input, Z_out, A_out, Y; for backward
    also dZ per layer and a relu mask per hidden unit."""
    forward = m * FLOAT * (sum(n + 1 for n in dims[:-1]) + 3)
    return forward + (m * (FLOAT * sum(dims[1:]) + sum(dims[1:-1])) if backward else 0)


def _chunked(dims: Sequence[int], m: int, step: int, backward: bool = True) -> int:
    """Workspaces of a pass over m examples in chunks of ``step`` (and the remainder's)."""
    chunks, rest = divmod(m, step)
    return (_workspace(dims, min(m, step), backward)
            + (_workspace(dims, rest, backward) if chunks and rest else 0))


def _keeps(cfg: Config, dims: Sequence[int]) -> tuple[float, ...]:
    """The keep probability of each hidden layer."""
    keep = cfg.hidden_keep_probs()
    return keep if isinstance(keep, tuple) else (keep,) * (len(dims) - 2)


def _derivatives(cfg: Config, dims: Sequence[int]) -> int:
    """Temporaries of g'(A) per example of the widest layer (in floats): none for relu's mask, two
    for the others, a third where dropout needs A before it (tanh, sigmoid)."""
    activation = cfg.model.activation
    if activation == "relu":
        return 0
    return 2 + (activation != "leaky_relu" and min(_keeps(cfg, dims)) < 1.0)


def _step_extras(cfg: Config, dims: Sequence[int], b: int) -> int:
    """A step's temporaries besides the workspace: the cost's, the derivative's, dropout, jitter."""
    r = cfg.regularizer
    extra = 3 * FLOAT * b  # logaddexp(0, Z), Y * Z and their difference
    extra += _derivatives(cfg, dims) * FLOAT * max(dims[1:-1]) * b
    for n, kp in zip(dims[1:-1], _keeps(cfg, dims)):
        if kp < 1.0:  # the uniform draws kept per shape, this and the last step's masks
            extra += (FLOAT + 2) * n * b
    if r.input_keep_prob < 1.0:
        extra += (FLOAT + 2) * dims[0] * b
    if r.jitter:
        extra += 2 * FLOAT * dims[0] * b
    return extra


def _augmented(cfg: Config, dims: Sequence[int], sizes: DataSizes) -> int:
    """``regularizers.augment_flips``: X and Y with a mirrored copy per flip axis."""
    flips = len(cfg.regularizer.flip_axes)
    if not flips:
        return 0
    return FLOAT * (dims[0] + 1) * sizes.train * (1 + flips) + FLOAT * dims[0] * sizes.train * flips


def _training(cfg: Config, dims: Sequence[int], sizes: DataSizes, b: int) -> int:
    """``nn.train``: the step's workspaces (a batch and the remainder's; the final cost reuses
    them), the dev set's forward passes in chunks of the batch, the shuffled order, augmented copies
    and the parameter-sized arrays."""
    m = sizes.train * (1 + len(cfg.regularizer.flip_axes))
    total = (_chunked(dims, m, b) + _chunked(dims, sizes.dev, b, backward=False)
             + _step_extras(cfg, dims, b) + _augmented(cfg, dims, sizes))
    if b < m:
        total += 2 * FLOAT * m
    return total + 5 * FLOAT * _parameters(dims)


def _parameters(dims: Sequence[int]) -> int:
    return sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))


def _stacked_workspace(cfg: Config, dims: Sequence[int], m: int, K: int) -> int:
    """``nn.stacked._StackedWorkspace`` of K configurations over m examples: [X; 1], then per
    configuration Y, the step scales, Z_out, A_out, the output's dZ and every hidden [A; 1] with
    relu's mask of it (or, for the others, its own dZ)."""
    hidden = sum(n + 1 for n in dims[1:-1])
    per = FLOAT * (5 + hidden) + (1 if cfg.model.activation == "relu" else FLOAT) * hidden
    return FLOAT * (dims[0] + 1) * m + K * m * per


def _stacked_training(cfg: Config, dims: Sequence[int], sizes: DataSizes, K: int) -> int:
    """``nn.stacked.train_stacked``: the step's and the dev set's workspaces, dropout's draws and
    masks, augmented copies, the parameter-sized arrays, and the final pass's workspace with a
    matmul's temporary of the widest layer (a strided output); a step's temporaries (at most three
    of the widest layer) are fewer than that workspace, which holds two per hidden layer."""
    m = sizes.train * (1 + len(cfg.regularizer.flip_axes))
    step = _stacked_workspace(cfg, dims, m, K)
    total = 2 * step + _stacked_workspace(cfg, dims, sizes.dev, K) + _augmented(cfg, dims, sizes)
    for n, kp in zip(dims[1:-1], _keeps(cfg, dims)):
        if kp < 1.0:
            total += (FLOAT + 1) * K * (n + 1) * m
    widest = FLOAT * K * (max(dims[1:-1]) + 1) * m
    return total + widest + 3 * FLOAT * m + 6 * FLOAT * K * _parameters(dims)


def _gradcheck(cfg: Config, dims: Sequence[int], sizes: DataSizes) -> int:
    """``gradcheck.check_network`` on its subset: the unperturbed pass ``nn.differences`` keeps
    (inputs, two contexts and Z per hidden unit, the loss's terms; more than the backprop pass
    before it) and one chunk of perturbations."""
    g = cfg.gradcheck
    if not g.enabled:
        return 0
    m = min(g.max_examples, sizes.train)
    hidden = dims[1:-1]
    kept = FLOAT * m * (sum(n + 1 for n in dims[:-1]) + 3 * sum(hidden) + 6)
    per_perturbation = FLOAT * m * (4 + 2 * max(hidden[1:], default=0))
    steps = 2 if g.method == "central" else 1
    chunk = max(GRADCHECK_CHUNK_BYTES, steps * per_perturbation)
    return FLOAT * (dims[0] + 1) * m + kept + chunk


def _evaluation(dims: Sequence[int], sizes: DataSizes, b: int) -> int:
    """``pipeline.evaluate`` forwards each split in chunks of the batch."""
    return max(_chunked(dims, n, b, backward=False) for n in (sizes.train, sizes.dev, sizes.test))


def _plots(dims: Sequence[int], sizes: DataSizes) -> int:
    """The run's figures; with 2-D data the decision boundary draws the training points over a
    grid."""
    if dims[0] != 2:
        return FIGURE_BYTES
    return FIGURE_BYTES + SCATTER_BYTES_PER_POINT * sizes.train + _workspace(dims, GRID_EXAMPLES)


def _data(cfg: Config, sizes: DataSizes) -> tuple[int, int]:
    """(peak while loading, held afterwards: raw splits and their normalized inputs). Scaling and
    normalizing hold less than loading: at most three copies of X at once."""
    n = sizes.n_features
    examples = sizes.train + sizes.dev + sizes.test
    normalized = FLOAT * n * examples if cfg.data.normalize else 0
    loading = LOADING_COPIES * FLOAT * (n + 1) * sizes.loaded + 2 * sizes.file_bytes
    if sizes.csv:
        loading += CSV_BYTES_PER_VALUE * (n + 1) * sizes.loaded
    return int(loading), FLOAT * (n + 1) * examples + normalized


def estimate(cfg: Config, *, stacked: int = 1) -> Estimate | None:
    """Peak bytes of one process running ``cfg`` (with ``stacked`` configurations of its shape
    trained in one pass); None when its data file cannot be read."""
    from dlpractice.nn import layer_dims_for

    sizes = data_sizes(cfg)
    if sizes is None:
        return None
    dims = layer_dims_for(sizes.n_features, cfg.model.hidden)
    m = sizes.train * (1 + len(cfg.regularizer.flip_axes))
    batch = cfg.train.batch_size
    b = m if batch is None else max(1, min(int(batch), m))
    training = (_stacked_training(cfg, dims, sizes, stacked) if stacked > 1
                else _training(cfg, dims, sizes, b))
    loading, data = _data(cfg, sizes)
    b_eval = sizes.train if batch is None else max(1, min(int(batch), sizes.train))
    return Estimate(loading=loading, data=data, training=training,
                    gradcheck=_gradcheck(cfg, dims, sizes),
                    evaluation=_evaluation(dims, sizes, b_eval), plots=_plots(dims, sizes),
                    examples=b, batch_size=batch, evaluation_examples=b_eval,
                    points=sizes.train if sizes.n_features == 2 else 0,
                    gradcheck_examples=cfg.gradcheck.max_examples, stacked=stacked)


def sweep_estimate(cfgs: Sequence[Config], processes: int,
                   stacks: Sequence[Sequence[int]] = ()) -> Estimate | None:
    """A sweep's jobs ``cfgs`` over ``processes`` processes; ``stacks``: indices of jobs trained in
    one pass (the vectorized launcher, whose every process prepares the data of its share of each
    stack and trains it). None when no job can be estimated."""
    single = [e for e in (estimate(c) for c in cfgs) if e is not None]
    if not single:
        return None
    worst = max(single, key=lambda e: e.per_process)
    shared = 0
    for stack in stacks:
        shared += sum(e.data for e in (estimate(cfgs[j]) for j in stack) if e is not None)
        share = math.ceil(len(stack) / processes)
        members = [e for e in (estimate(cfgs[j], stacked=share) for j in stack) if e is not None]
        # a member with dropout makes the stack hold masks for every member; a share of one is
        # a single run, counted already
        stacked = max(members, key=lambda e: e.per_process, default=None)
        if stacked is not None and stacked.per_process > worst.per_process:
            worst = stacked
    return replace(worst, processes=processes, shared=shared, sweep=True)


def launcher_processes(launcher: Mapping) -> int | None:
    """How many jobs a sweep's launcher (its ``hydra.launcher`` node) runs at once on this machine
    (at most); None for launchers that run jobs elsewhere (each job checks itself there)."""
    target = str(launcher.get("_target_"))
    n = launcher.get("n_jobs")
    n = -1 if n is None else int(n)
    cpus = os.cpu_count() or 1
    if target.endswith("BasicLauncher"):
        return 1
    if target.endswith("VectorizedLauncher"):
        return n if n > 0 else cpus
    if target.endswith("JoblibLauncher"):
        return n if n > 0 else max(1, cpus + 1 + n)  # joblib's -1: every CPU, -2: all but one
    return None


def available_bytes(meminfo: Path = Path("/proc/meminfo"), cgroups: Path = Path("/sys/fs/cgroup"),
                    own: Path = Path("/proc/self/cgroup")) -> int | None:
    """MemAvailable of ``/proc/meminfo``, lowered to what this process's cgroup memory limit
    leaves; None when neither can be read (not Linux). The paths are Linux's (others: tests)."""
    values = [v for v in (_meminfo_available(meminfo), _cgroup_room(cgroups, own)) if v is not None]
    return min(values) if values else None


def _meminfo_available(meminfo: Path) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room(root: Path, own: Path) -> int | None:
    """This process's cgroup memory limit (v2, else v1) minus its usage; None without a limit."""
    paths = {"v2": "", "v1": ""}
    try:
        for line in own.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if not controllers:
                paths["v2"] = path.lstrip("/")
            elif "memory" in controllers.split(","):
                paths["v1"] = path.lstrip("/")
    except (OSError, ValueError):
        pass
    # in a container the own cgroup is often the mount's root: the path then names nothing here
    for folder, limit_name, usage_name in (
        (root / paths["v2"], "memory.max", "memory.current"),
        (root, "memory.max", "memory.current"),
        (root / "memory" / paths["v1"], "memory.limit_in_bytes", "memory.usage_in_bytes"),
        (root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"),
    ):
        try:
            limit = (folder / limit_name).read_text().strip()
            usage = int((folder / usage_name).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "no limit" as a huge number
            return None
        return max(0, int(limit) - usage)
    return None


def size_text(n: float) -> str:
    """Bytes for people: ``23.7 GiB``, ``512 MiB``."""
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    return f"{n / (1 << 20):.0f} MiB"


def refusal(est: Estimate, available: int | None) -> str | None:
    """The one line refusing ``est`` when it does not fit in ``available`` bytes (None: it fits,
    or the available memory is unknown)."""
    if available is None or est.total <= available:
        return None
    work = max(("training", est.training), ("gradient check", est.gradcheck),
               ("evaluation", est.evaluation), ("plots", est.plots), key=lambda kv: kv[1])
    if work[0] == "training" and est.stacked > 1:
        what = f"{est.stacked} configurations stacked over {est.examples} examples"
    elif work[0] == "training":
        batch = "null, full batch" if est.batch_size is None else est.batch_size
        what = f"train.batch_size={batch}: {est.examples} examples per step"
    elif work[0] == "gradient check":
        what = f"gradcheck.max_examples={est.gradcheck_examples}"
    elif work[0] == "evaluation":
        what = f"the largest split in chunks of {est.evaluation_examples} examples"
    elif est.points:
        what = f"the figures and the decision boundary's {est.points} training points"
    else:
        what = "the figures"
    parts = f"data {size_text(est.data)}, {work[0]} {size_text(work[1])} for {what}"
    if est.loading > est.data + work[1]:
        parts = f"loading the data {size_text(est.loading)}"
    subject = "this sweep" if est.sweep else "this run"
    if est.sweep:
        each = "1 process" if est.processes == 1 else f"{est.processes} processes"
        parts = f"{each} of about {size_text(est.per_process)}: {parts}"
        if est.shared:
            parts += f"; the stacks' data {size_text(est.shared)} in all"
    advice = "lower train.batch_size or data.n_samples, or run fewer parallel jobs"
    if work[0] == "gradient check":
        advice = "lower gradcheck.max_examples or " + advice.removeprefix("lower ")
    return (f"{subject} needs about {size_text(est.total)} ({parts}) but {size_text(available)} "
            f"is available: {advice}")


def check_run(cfg: Config, *, trained: bool = False) -> None:
    """Refuse one run of ``cfg`` (``trained``: its training was done elsewhere) that would not fit
    in the memory available now: :class:`MemoryLimitError` with one line."""
    est = estimate(cfg)
    if est is not None and trained:
        est = replace(est, training=0)
    _refuse(est)


def check_sweep(cfgs: Sequence[Config], processes: int,
                stacks: Sequence[Sequence[int]] = ()) -> None:
    """Refuse a sweep (see :func:`sweep_estimate`) that would not fit: :class:`MemoryLimitError`."""
    if cfgs:
        _refuse(sweep_estimate(cfgs, processes, stacks))


def _refuse(est: Estimate | None) -> None:
    message = None if est is None else refusal(est, available_bytes())
    if message is not None:
        raise MemoryLimitError(message)
