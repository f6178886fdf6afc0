"""What every logged run shares: the tags each run carries, secret filtering and redaction,
one-line values, requests within MLflow's batch limits and the staging of files for one upload.

Owns MLflow's per-request limits; holds no state, opens no store and creates no file of a run.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlpractice.paths import project_root

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from dlpractice.config import Config

_log = logging.getLogger(__package__)

# MLflow's per-request limits (mlflow.utils.validation): 1000 metrics, 100 params, 100 tags.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 5000  # the portable limit (8000 in recent MLflow)
FAILURE_REASON_TAG = "failure_reason"
PARENT_RUN_TAG = "mlflow.parentRunId"  # mlflow.utils.mlflow_tags.MLFLOW_PARENT_RUN_ID

_SECRET_WORDS = frozenset({
    "password", "passwords", "passwd", "pwd", "token", "tokens", "secret", "secrets", "key",
    "keys", "apikey", "credential", "credentials",
})
_URI_PASSWORD = re.compile(r"(?<=://)([^/:@\s]*):[^/@\s]*@")


def tag_text(value: Any, limit: int = MAX_TAG_VALUE) -> str:
    """The first non-blank line of ``str(value)``, cut to ``limit`` characters with "…"."""
    lines = [ln.strip() for ln in str(value).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_reason(exc: BaseException) -> str:
    """The ``failure_reason`` tag: the exception's first line, else its type's name."""
    return tag_text(exc) or type(exc).__name__


def _split_words(key: str) -> list[str]:
    words: list[str] = []
    for part in re.split(r"[^0-9A-Za-z]+", key):
        words += re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", part)
    return [w.lower() for w in words]


def is_secret(key: str) -> bool:
    """Does a config key look like a credential? ``api_key``, ``tracking.password``,
    ``authToken``, ``client_secret`` do; ``keep_prob``, ``monkey``, ``keyboard`` do not."""
    return any(word in _SECRET_WORDS for word in _split_words(key))


def redact(text: str) -> str:
    """``http://user:secret@host`` -> ``http://user:***@host`` (e.g. ``tracking.uri``)."""
    return _URI_PASSWORD.sub(r"\1:***@", text)


def params(cfg: Config) -> dict[str, str]:
    """The flattened resolved config, without secret-looking keys, redacted and cut to size."""
    from dlpractice.config import flatten

    out: dict[str, str] = {}
    for key, value in flatten(cfg.to_dict()).items():
        if is_secret(key):
            continue
        text = redact(str(value))
        out[key] = text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 1] + "…"
    return out


def user_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Caller-given tags as redacted one-line strings, without None values and secret-looking
    keys."""
    return {str(key): redact(tag_text(value)) for key, value in (tags or {}).items()
            if value is not None and not is_secret(str(key))}


@lru_cache(maxsize=8)
def _git_commit(root: Path) -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


def common_tags() -> dict[str, str]:
    """Tags every run and sweep carries: user, git commit, DVC experiment name."""
    tags: dict[str, str] = {}
    with contextlib.suppress(KeyError, OSError):  # no user name in some containers
        tags["mlflow.user"] = getpass.getuser()
    commit = _git_commit(project_root())
    if commit:
        tags["git_commit"] = commit
        tags["mlflow.source.git.commit"] = commit
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_experiment"] = os.environ["DVC_EXP_NAME"]
    return tags


def now_ms() -> int:
    return int(time.time() * 1000)


def metric_series(key: str, steps: Iterable[int], values: Iterable[float], ts: int,
                  model_id: str | None = None) -> list[Any]:
    """``key``'s points (linked to the LoggedModel ``model_id``, if given)."""
    from mlflow.entities import Metric

    return [Metric(key, float(v), ts, int(s), model_id=model_id)
            for s, v in zip(steps, values, strict=False)]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def log_batch(client: MlflowClient, run_id: str, metrics: Iterable[Any] = (),
              params: Iterable[Any] = (), tags: Iterable[Any] = ()) -> None:
    """``log_batch`` within MLflow's per-request limits (one request for up to 1000 metrics)."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    param_chunks = list(_chunks(params, MAX_PARAMS_TAGS_PER_BATCH))
    tag_chunks = list(_chunks(tags, MAX_PARAMS_TAGS_PER_BATCH))
    for i in range(max(len(param_chunks), len(tag_chunks))):
        p = param_chunks[i] if i < len(param_chunks) else []
        t = tag_chunks[i] if i < len(tag_chunks) else []
        room = MAX_METRICS_PER_BATCH - len(p) - len(t)
        m, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=m, params=p, tags=t, synchronous=True)
    for m in _chunks(metrics, MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=m, synchronous=True)


def _place(src: str | Path, dest: str | Path) -> None:
    """``dest`` becomes a hard link to ``src`` (a copy across filesystems); a file already there
    is replaced, never written through (it may be a link to another caller's file)."""
    dest = Path(dest)
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:  # another filesystem, or no hard links there
        shutil.copy2(src, dest)


def upload(client: MlflowClient, run_id: str, files: Mapping[str, str | Path]) -> None:
    """``files`` (label -> file or folder) in one ``log_artifacts`` call, each under its own
    name; folders are merged, of two files with one name the last wins, a missing path is skipped
    with a warning."""
    with tempfile.TemporaryDirectory(prefix="dlpractice-artifacts-") as tmp:
        staged = False
        for label, src in files.items():
            src = Path(src)
            dest = Path(tmp) / src.name
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True, copy_function=_place)
            elif src.is_file():
                _place(src, dest)
            else:
                _log.warning("artifact %s: %s does not exist; skipped", label, src)
                continue
            staged = True
        if staged:
            client.log_artifacts(run_id, tmp)
