"""Who owns a run, and closing the runs whose owner is gone (:func:`close_abandoned_runs`).

Owns the owner tags (host, pid, process start, boot and pid namespace) and the heartbeat tag each
run carries, and the rule: a run of this host is abandoned when its process is gone (or its pid now
belongs to another process); a run of another host, or of a process this one cannot see, when its
last heartbeat is older than ``tracking.stale_after_s``. Reads Linux's /proc; holds no state; logs
to no run but the abandoned ones it closes.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlpractice.tracking import metadata as md

if TYPE_CHECKING:
    from dlpractice.tracking.store import Store

__all__ = ["ABANDONED_REASON", "HEARTBEAT_TAG", "OWNER_BOOT_TAG", "OWNER_HOST_TAG",
           "OWNER_PID_NAMESPACE_TAG", "OWNER_PID_TAG", "OWNER_START_TAG", "close_abandoned_runs",
           "heartbeat_tags", "owner_tags", "process_gone"]

_log = logging.getLogger(__package__)

OWNER_HOST_TAG = "dlpractice.owner.host"  # socket.gethostname()
OWNER_PID_TAG = "dlpractice.owner.pid"
OWNER_START_TAG = "dlpractice.owner.start_ticks"  # /proc/<pid>/stat field 22: ticks since boot
OWNER_BOOT_TAG = "dlpractice.owner.boot_id"  # /proc/sys/kernel/random/boot_id
OWNER_PID_NAMESPACE_TAG = "dlpractice.owner.pid_namespace"  # /proc/self/ns/pid
HEARTBEAT_TAG = "dlpractice.heartbeat"  # unix seconds of the run's last sign of life
ABANDONED_REASON = "process ended without closing the run"
_MAX_RESULTS = 50_000  # MLflow's largest search (SEARCH_MAX_RESULTS_THRESHOLD): one query


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 (state) on, None without it; the command name (field 2)
    may hold any bytes, parentheses too, so the fields start after its last ')'."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat.rpartition(b")")[2].decode().split()


def _read_line(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def owner_tags() -> dict[str, str]:
    """This process as a run's owner: host and pid, and where Linux tells them its start (clock
    ticks since boot), the boot's id and its pid namespace."""
    pid = os.getpid()
    fields = _stat_fields(pid)
    tags = {OWNER_HOST_TAG: socket.gethostname(), OWNER_PID_TAG: str(pid),
            OWNER_START_TAG: fields[19] if fields else None,
            OWNER_BOOT_TAG: _read_line("/proc/sys/kernel/random/boot_id"),
            OWNER_PID_NAMESPACE_TAG: _pid_namespace()}
    return {key: value for key, value in tags.items() if value}


def heartbeat_tags() -> dict[str, str]:
    """The heartbeat tag: now, in unix seconds."""
    return {HEARTBEAT_TAG: f"{time.time():.3f}"}


def process_gone(pid: int, start_ticks: str | None = None) -> bool:
    """Has process ``pid`` of this machine ended (a zombie has), or does its pid now belong to a
    process started at other than ``start_ticks``? False when this cannot be told (no POSIX, a
    pid no process can have)."""
    if os.name != "posix":
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it exists
        pass
    except (OverflowError, OSError):
        return False
    fields = _stat_fields(pid)
    if fields is None:  # no /proc here (macOS): the pid exists, its start is unknown
        return False
    if fields[0] == "Z":  # ended, not yet reaped by its parent
        return True
    return start_ticks is not None and fields[19] != start_ticks


def _heartbeat(run: Any) -> float:
    """The run's last sign of life in unix seconds: its heartbeat tag, else its start."""
    try:
        return float(run.data.tags[HEARTBEAT_TAG])
    except (KeyError, ValueError):
        return run.info.start_time / 1000.0


def _abandoned(tags: Mapping[str, str], here: Mapping[str, str], heartbeat: float, now: float,
               stale_after_s: float) -> bool:
    host, pid = tags.get(OWNER_HOST_TAG), str(tags.get(OWNER_PID_TAG))
    if not host or not pid.isdigit():  # not a run of ours (or from before owners): left alone
        return False
    if host == here.get(OWNER_HOST_TAG):
        boot = tags.get(OWNER_BOOT_TAG)
        if boot and here.get(OWNER_BOOT_TAG) and boot != here[OWNER_BOOT_TAG]:
            return True  # this machine restarted since: every process of that boot has ended
        if os.name == "posix" and (tags.get(OWNER_PID_NAMESPACE_TAG)
                                   == here.get(OWNER_PID_NAMESPACE_TAG)):
            return process_gone(int(pid), tags.get(OWNER_START_TAG))
    return now - heartbeat > stale_after_s


def close_abandoned_runs(store: Store, experiment: str, stale_after_s: float,
                         now: float | None = None) -> list[str]:
    """Mark the RUNNING runs of ``experiment`` whose owner is gone KILLED, tagged
    ``failure_reason`` = "process ended without closing the run", ended at their last heartbeat;
    returns their ids. A sweep's parent run beats while one of its RUNNING runs does; runs without
    owner tags are left alone. Call it before opening runs; a failing search or mark only warns."""
    from mlflow.entities import RunTag

    exp_id = store.experiment_id(experiment)
    client, now = store.client, time.time() if now is None else now
    try:
        running = client.search_runs([exp_id], filter_string="attributes.status = 'RUNNING'",
                                     max_results=_MAX_RESULTS)
    except Exception as exc:
        _log.warning("could not look for abandoned runs in %s: %s", store.uri, md.tag_text(exc))
        return []
    beats = {run.info.run_id: _heartbeat(run) for run in running}
    for run in running:
        parent = run.data.tags.get(md.PARENT_RUN_TAG)
        if parent in beats:
            beats[parent] = max(beats[parent], beats[run.info.run_id])
    here = owner_tags()
    closed = []
    for run in running:
        run_id = run.info.run_id
        if not _abandoned(run.data.tags, here, beats[run_id], now, stale_after_s):
            continue
        end_ms = max(run.info.start_time, round(_heartbeat(run) * 1000))
        try:
            md.log_batch(client, run_id, tags=[RunTag(md.FAILURE_REASON_TAG, ABANDONED_REASON)])
            client.set_terminated(run_id, status="KILLED", end_time=end_ms)
        except Exception as exc:
            _log.warning("could not close the abandoned MLflow run %s: %s", run_id,
                         md.tag_text(exc))
            continue
        closed.append(run_id)
    if closed:
        _log.warning("closed %d abandoned MLflow run(s) of experiment %r as KILLED: %s",
                     len(closed), experiment, ", ".join(closed))
    return closed
