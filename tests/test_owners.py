"""Who owns a run and what becomes of runs whose owner is gone (:mod:`dlpractice.tracking.owners`),
the history a run flushes while it trains, and the MLflow UI link of a run — in process, against
a real SQLite store and real processes. (SIGKILLed runs and sweeps: tests/test_faults.py.)"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlpractice import config, tracking
from dlpractice.nn import Network, TrainResult

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

linux = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")

REASON = "process ended without closing the run"
HOST, PID, START = "dlpractice.owner.host", "dlpractice.owner.pid", "dlpractice.owner.start_ticks"
BOOT, PID_NS, HEARTBEAT = ("dlpractice.owner.boot_id", "dlpractice.owner.pid_namespace",
                           "dlpractice.heartbeat")
HOUR = 3600.0


def stat_after_name(pid: int) -> list[bytes]:
    """/proc/<pid>/stat from field 3 on: after the command name, in parentheses (any bytes)."""
    return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()


def start_ticks(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat: the process's start, in clock ticks since boot."""
    return stat_after_name(pid)[19].decode()


def state(pid: int) -> str:
    return stat_after_name(pid)[0].decode()


def this_machine() -> dict[str, str]:
    """This host as the owner tags name it, read here from /proc."""
    return {HOST: socket.gethostname(),
            BOOT: Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
            PID_NS: os.readlink("/proc/self/ns/pid")}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tracking.Store:
    store = tracking.Store(f"sqlite:///{tmp_path_factory.mktemp('owners') / 'mlflow.db'}")
    store.prepare()
    return store


@pytest.fixture
def experiment(store, request) -> str:
    """An experiment of the test's own; no run of it is left RUNNING."""
    name = request.node.name
    yield name
    client = store.client
    for run in client.search_runs([store.experiment_id(name)], "attributes.status = 'RUNNING'"):
        client.set_terminated(run.info.run_id, "FINISHED")


def make_cfg(store: tracking.Store, experiment: str) -> config.Config:
    return config.load({"train": {"iterations": 40, "record_every": 10},
                        "data": {"n_samples": 60},
                        "tracking": {"uri": store.uri, "experiment": experiment}})


def running_run(store, experiment: str, tags: dict[str, str], start_s: float | None = None) -> str:
    start_ms = int((time.time() if start_s is None else start_s) * 1000)
    run = store.client.create_run(store.experiment_id(experiment), start_time=start_ms, tags=tags)
    return run.info.run_id


def statuses(store, run_ids) -> list[str]:
    return [store.client.get_run(r).info.status for r in run_ids]


@pytest.fixture
def sleeper():
    """A live process whose command name (field 2 of /proc/<pid>/stat) holds parentheses,
    spaces and a byte that is no UTF-8."""
    script = ('import ctypes, time; ctypes.CDLL(None).prctl(15, b"a) b\\xff (", 0, 0, 0); '
              'print(flush=True); time.sleep(300)')
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    proc.stdout.readline()  # named
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdout.close()


# -- the tags a run carries ---------------------------------------------------------------------


@linux
def test_a_run_and_a_sweeps_parent_carry_their_owner_and_a_heartbeat(store, experiment):
    before = time.time()
    with tracking.RunTracker(make_cfg(store, experiment), store) as tracker:
        pass
    parent = tracking.start_sweep_run(store, experiment, "sweep-x")
    tracking.finish_sweep_run(store, parent)
    after = time.time()
    me = {**this_machine(), PID: str(os.getpid()), START: start_ticks(os.getpid())}
    for run_id in (tracker.run_id, parent):
        tags = store.client.get_run(run_id).data.tags
        assert {k: tags[k] for k in me} == me
        assert before - 0.01 <= float(tags[HEARTBEAT]) <= after


def test_a_sweeps_parent_is_owned_by_the_process_the_sweep_names(store, experiment):
    owner = {HOST: "login-node", PID: "4242", START: "99"}
    parent = tracking.start_sweep_run(store, experiment, "sweep-y", owner=owner)
    tags = store.client.get_run(parent).data.tags
    tracking.finish_sweep_run(store, parent)
    assert {k: tags.get(k) for k in (HOST, PID, START, BOOT)} == {**owner, BOOT: None}


# -- runs of this host --------------------------------------------------------------------------


@linux
def test_runs_whose_process_is_gone_are_closed_killed_and_live_ones_are_left(store, experiment,
                                                                             sleeper, caplog):
    here = this_machine()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended_ticks = start_ticks(ended.pid)
    ended.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    zombie_ticks = start_ticks(zombie.pid)
    zombie.send_signal(signal.SIGKILL)  # not reaped (no wait) until the end of the test
    deadline = time.monotonic() + 30
    while state(zombie.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(zombie.pid) == "Z"
    beat = round(time.time() - 30, 3)  # the heartbeat plays no part on this host

    def run(**tags: str) -> str:
        return running_run(store, experiment, tags, start_s=beat - 60)

    live = {**here, PID: str(sleeper.pid), START: start_ticks(sleeper.pid),
            HEARTBEAT: f"{beat:.3f}"}
    assert Path(f"/proc/{sleeper.pid}/stat").read_bytes().startswith(
        f"{sleeper.pid} (a) b\xff () ".encode("latin-1"))
    without = {k: v for k, v in live.items() if k not in (HOST, PID)}
    left = {
        "live": run(**live),
        "live, no start recorded": run(**{k: v for k, v in live.items() if k != START}),
        "no owner": run(config_hash="abc"),
        "no pid": run(**{**without, HOST: here[HOST]}),
        "no host": run(**{**without, PID: str(ended.pid)}),
        "a pid that is no number": run(**{**live, PID: "12a"}),
        "a pid no process can have": run(**{**live, PID: "9" * 20}),
        "another pid namespace, recent heartbeat": run(**{**live, PID: "1", PID_NS: "pid:[1]"}),
    }
    gone = {
        "ended": run(**{**live, PID: str(ended.pid), START: ended_ticks}),
        "zombie": run(**{**live, PID: str(zombie.pid), START: zombie_ticks}),
        "pid reused": run(**{**live, START: str(int(live[START]) + 1)}),
        "rebooted since": run(**{**live, BOOT: "another-boot"}),
    }
    try:
        with caplog.at_level(logging.WARNING, "dlpractice.tracking"):
            closed = tracking.close_abandoned_runs(store, experiment, HOUR)
    finally:
        zombie.wait()
    assert sorted(closed) == sorted(gone.values())
    assert [r.getMessage() for r in caplog.records] == [
        f"closed 4 abandoned MLflow run(s) of experiment {experiment!r} as KILLED: "
        f"{', '.join(closed)}"]
    assert statuses(store, left.values()) == ["RUNNING"] * len(left), list(left)
    for name, run_id in gone.items():
        run = store.client.get_run(run_id)
        assert (run.info.status, run.data.tags.get("failure_reason")) == ("KILLED", REASON), name
        assert run.info.end_time == round(beat * 1000), name  # ended at its last sign of life


def test_the_process_calling_is_alive(store, experiment):
    tags = tracking.owner_tags()
    assert (tags[HOST], tags[PID]) == (socket.gethostname(), str(os.getpid()))
    mine = running_run(store, experiment, tags)
    assert tracking.close_abandoned_runs(store, experiment, HOUR) == []
    assert statuses(store, [mine]) == ["RUNNING"]


def test_an_open_run_of_this_process_survives_another_entry_point(store, experiment):
    with tracking.RunTracker(make_cfg(store, experiment), store) as tracker:
        assert tracking.close_abandoned_runs(tracking.Store(store.uri), experiment, HOUR) == []
        assert statuses(store, [tracker.run_id]) == ["RUNNING"]
    assert statuses(store, [tracker.run_id]) == ["FINISHED"]


# -- runs of other hosts ------------------------------------------------------------------------


def test_runs_of_other_hosts_are_closed_only_when_their_heartbeat_is_stale(store, experiment):
    now = float(int(time.time()))  # whole seconds: a heartbeat exactly at the limit is exact
    other = {HOST: f"not-{socket.gethostname()}", PID: "1234", START: "5"}

    def run(beat_age: float | None, start_age: float = 2 * HOUR, **tags: str) -> str:
        beat = {} if beat_age is None else {HEARTBEAT: f"{now - beat_age:.3f}"}
        return running_run(store, experiment, {**other, **beat, **tags}, now - start_age)

    old, recent, at_limit = run(HOUR + 1), run(HOUR - 60), run(HOUR)
    never_beat_old, never_beat_new = run(None), run(None, start_age=60)
    unreadable = run(None, start_age=60, **{HEARTBEAT: "soon"})
    # a sweep's parent beats while one of its running runs does
    parent_alive, parent_dead = run(2 * HOUR), run(2 * HOUR)
    child_alive = run(30, **{"mlflow.parentRunId": parent_alive})
    child_dead = run(HOUR + 5, **{"mlflow.parentRunId": parent_dead})

    closed = tracking.close_abandoned_runs(store, experiment, HOUR, now=now)
    assert sorted(closed) == sorted([old, never_beat_old, parent_dead, child_dead])
    assert statuses(store, [recent, at_limit, never_beat_new, unreadable, parent_alive,
                            child_alive]) == ["RUNNING"] * 6
    killed = store.client.get_run(old)
    assert (killed.info.status, killed.data.tags["failure_reason"]) == ("KILLED", REASON)
    assert killed.info.end_time == round(float(killed.data.tags[HEARTBEAT]) * 1000)
    # without a heartbeat a run ends when it started
    started = store.client.get_run(never_beat_old).info
    assert started.end_time == started.start_time
    # a shorter limit: the recent ones go too
    again = tracking.close_abandoned_runs(store, experiment, 50.0, now=now)
    assert sorted(again) == sorted([recent, at_limit, never_beat_new, unreadable])


def test_only_the_experiment_asked_for_is_looked_at(store, experiment):
    other = {HOST: "elsewhere", PID: "1", HEARTBEAT: "0"}
    elsewhere = running_run(store, f"{experiment}-other", other)
    assert tracking.close_abandoned_runs(store, experiment, HOUR) == []
    assert statuses(store, [elsewhere]) == ["RUNNING"]
    assert tracking.close_abandoned_runs(store, f"{experiment}-other", HOUR) == [elsewhere]


def test_a_run_that_cannot_be_closed_is_named_and_the_others_are_closed(store, experiment,
                                                                        monkeypatch, caplog):
    from mlflow.tracking import MlflowClient

    stale = {HOST: "elsewhere", PID: "1", HEARTBEAT: "0"}
    # the refused one first (the latest start: MLflow's search order), the others after it
    runs = [running_run(store, experiment, stale, start_s=start) for start in (200, 100, 100)]
    real = MlflowClient.set_terminated

    def refuse_one(self, run_id, *args, **kwargs):
        if run_id == runs[0]:
            raise RuntimeError("database is locked\nmore")
        return real(self, run_id, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "set_terminated", refuse_one)
    with caplog.at_level(logging.WARNING, "dlpractice.tracking"):
        closed = tracking.close_abandoned_runs(store, experiment, HOUR)
    monkeypatch.undo()
    assert sorted(closed) == sorted(runs[1:])
    assert statuses(store, runs) == ["RUNNING", "KILLED", "KILLED"]
    assert [r.getMessage() for r in caplog.records] == [
        f"could not close the abandoned MLflow run {runs[0]}: database is locked",
        f"closed 2 abandoned MLflow run(s) of experiment {experiment!r} as KILLED: "
        f"{', '.join(closed)}"]


def test_a_store_that_cannot_be_searched_only_warns(store, experiment, monkeypatch, caplog):
    from mlflow.tracking import MlflowClient

    def broken(*args, **kwargs):
        raise RuntimeError("database is locked\nmore")

    stale = running_run(store, experiment, {HOST: "elsewhere", PID: "1", HEARTBEAT: "0"})
    monkeypatch.setattr(MlflowClient, "search_runs", broken)
    with caplog.at_level(logging.WARNING, "dlpractice.tracking"):
        assert tracking.close_abandoned_runs(store, experiment, HOUR) == []
    assert [r.getMessage() for r in caplog.records] == [
        f"could not look for abandoned runs in {store.uri}: database is locked"]
    monkeypatch.undo()
    assert statuses(store, [stale]) == ["RUNNING"]


# -- the history flushed while a run trains -----------------------------------------------------


def history(store, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in store.client.get_metric_history(run_id, key))


def result_of(points: list[tuple[int, float, float]]) -> TrainResult:
    result = TrainResult(parameters={}, network=Network([2, 1], "relu"))
    for step, cost, dev_cost in points:
        result.iterations.append(step)
        result.costs.append(cost)
        result.dev_costs.append(dev_cost)
        result.grad_norms.append([0.5])
    result.iterations_run = points[-1][0] + 1
    return result


def test_the_history_is_flushed_every_interval_with_a_heartbeat_and_logged_once(store, experiment):
    points = [(0, 0.9, 0.95), (10, 0.8, 0.85), (20, 0.7, 0.75), (30, 0.6, 0.65)]
    with tracking.RunTracker(make_cfg(store, experiment), store, flush_every_s=0.5) as tracker:
        run_id = tracker.run_id
        started = float(store.client.get_run(run_id).data.tags[HEARTBEAT])
        tracker.callback(*points[0])
        tracker.callback(*points[1])
        assert history(store, run_id, "cost") == []  # within the interval: nothing logged
        time.sleep(0.55)
        before = time.time()
        tracker.callback(*points[2])
        assert history(store, run_id, "cost") == [(s, c) for s, c, _ in points[:3]]
        assert history(store, run_id, "dev_cost") == [(s, d) for s, _, d in points[:3]]
        beat = float(store.client.get_run(run_id).data.tags[HEARTBEAT])
        assert before - 0.01 <= beat <= time.time() and beat > started
        tracker.callback(*points[3])
        assert len(history(store, run_id, "cost")) == 3  # the next interval has not passed
        tracker.log_history(result_of(points))
    # every point once: the flushed ones are not logged again
    assert history(store, run_id, "cost") == [(s, c) for s, c, _ in points]
    assert history(store, run_id, "dev_cost") == [(s, d) for s, _, d in points]
    assert history(store, run_id, "grad_norm_W1") == [(s, 0.5) for s, _, _ in points]


def test_a_run_flushes_every_ten_seconds_by_default(store, experiment):
    assert tracking.RunTracker(make_cfg(store, experiment), store).flush_every_s == 10.0


def test_an_interrupted_run_logs_what_was_not_flushed_yet(store, experiment):
    points = [(0, 0.9, 0.95), (10, 0.8, 0.85), (20, 0.7, 0.75), (30, 0.6, 0.65)]
    with pytest.raises(KeyboardInterrupt), tracking.RunTracker(
            make_cfg(store, experiment), store, flush_every_s=0.0) as tracker:
        tracker.callback(*points[0])  # each callback flushes
        tracker.callback(*points[1])
        tracker.flush_every_s = 3600.0  # from the next flush on (that one was due already)
        tracker.callback(*points[2])
        assert len(history(store, tracker.run_id, "cost")) == 3
        tracker.callback(*points[3])
        raise KeyboardInterrupt
    assert store.client.get_run(tracker.run_id).info.status == "KILLED"
    assert history(store, tracker.run_id, "cost") == [(s, c) for s, c, _ in points]
    assert history(store, tracker.run_id, "dev_cost") == [(s, d) for s, _, d in points]


def test_a_flush_the_store_refuses_is_tried_again_at_the_next(store, experiment, monkeypatch,
                                                               caplog):
    from dlpractice.tracking import metadata

    real = metadata.log_batch
    failures = iter([RuntimeError("database is locked")])

    def flaky(*args, **kwargs):
        for exc in failures:
            raise exc
        return real(*args, **kwargs)

    points = [(0, 0.9, 0.95), (10, 0.8, 0.85)]
    with tracking.RunTracker(make_cfg(store, experiment), store, flush_every_s=0.0) as tracker:
        monkeypatch.setattr(metadata, "log_batch", flaky)
        with caplog.at_level(logging.WARNING, "dlpractice.tracking"):
            tracker.callback(*points[0])  # refused: training goes on
        assert history(store, tracker.run_id, "cost") == []
        tracker.callback(*points[1])
        assert history(store, tracker.run_id, "cost") == [(0, 0.9), (10, 0.8)]
    assert [r.getMessage() for r in caplog.records] == [
        f"could not log the history of MLflow run {tracker.run_id} yet: database is locked"]


# -- the MLflow UI link of a run -----------------------------------------------------------------


def test_the_link_of_a_run_in_the_embedded_store_is_make_ui(store, experiment):
    with tracking.RunTracker(make_cfg(store, experiment), store) as tracker:
        pass
    exp_id = store.client.get_experiment_by_name(experiment).experiment_id
    link = f"http://127.0.0.1:5000/#/experiments/{exp_id}/runs/{tracker.run_id}"
    assert tracking.Store(store.uri).run_url(tracker.run_id) == link  # looked up
    assert store.run_url(tracker.run_id, exp_id) == link


@pytest.mark.parametrize("uri,base", [
    ("http://127.0.0.1:5050", "http://127.0.0.1:5050"),
    ("https://mlflow.example.org/team/", "https://mlflow.example.org/team"),
    ("https://alice:s3cret@mlflow.example.org:8443/x?y=1", "https://mlflow.example.org:8443/x"),
])
def test_the_link_of_a_run_on_a_tracking_server_is_the_server_without_credentials(uri, base):
    assert tracking.Store(uri).run_url("r1", "7") == f"{base}/#/experiments/7/runs/r1"
