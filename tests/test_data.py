"""Datasets: generators, file loading and validation, splits, normalization, the load policy."""

import csv
import hashlib
import json
import pathlib
import subprocess
import sys
from functools import partial

import numpy as np
import pytest
import scipy.io
from sklearn.datasets import make_circles

from dlpractice.data import (
    DATASET_NAMES,
    GENERATOR_NAMES,
    NormStats,
    Splits,
    apply_normalizer,
    course_circles,
    course_planar,
    fit_normalizer,
    flip_labels,
    football_like,
    from_heldout,
    generate,
    load_dataset,
    load_file,
    normalize_splits,
    split,
    subsample,
    validate_xy,
)
from dlpractice.data.generators import DEFAULTS
from dlpractice.errors import ConfigError, DataError, one_line
from tests import reference

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def global_rng_guard():
    """Tests that seed numpy's global RandomState put it back, like the code under test does."""
    saved = np.random.get_state()
    yield
    np.random.set_state(saved)


def toy(m: int = 40, n: int = 3, seed: int = 0, p1: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Course-orientation data with both classes; feature 0 is the example's id."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m))
    X[0] = np.arange(m)
    Y = np.zeros((1, m))
    Y[0, : round(m * p1)] = 1
    return X, Y


# --- generators -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_generate_shapes_dtypes_classes(name):
    X, Y = generate(name)
    m = DEFAULTS[name][0]
    assert X.shape == (2, m) and Y.shape == (1, m)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    assert set(np.unique(Y)) == {0.0, 1.0}
    assert np.isfinite(X).all()


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_generate_is_determined_by_seed(name):
    X1, Y1 = generate(name, seed=7)
    X2, Y2 = generate(name, seed=7)
    X3, _ = generate(name, seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(Y1, Y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_generate_size_override_and_no_global_side_effect(name, global_rng_guard):
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    X, Y = generate(name, n_samples=51, noise=0.1, seed=3)
    assert X.shape == (2, 51) and Y.shape == (1, 51)
    assert np.random.rand() == expected


GEN_ERRORS = [
    ({"name": "swirl"}, DataError,
     "unknown generated dataset 'swirl' (allowed: circles, moons, blobs, spiral, football_like)"),
    ({"name": "moons", "course_compat": True}, ConfigError,
     "course_compat=True has no course version of 'moons' (allowed: circles, spiral)"),
    ({"name": "circles", "course_compat": True, "n_samples": 500}, ConfigError,
     "course_compat=True fixes n_samples and noise for 'circles' (course: n_samples=300, "
     "noise=0.05); got n_samples=500, noise=None, allowed: None"),
    ({"name": "spiral", "course_compat": True, "noise": 0.1}, ConfigError,
     "course_compat=True fixes n_samples and noise for 'spiral' (course: n_samples=400, "
     "noise=0.2); got n_samples=None, noise=0.1, allowed: None"),
    ({"name": "circles", "n_samples": 1}, ConfigError,
     "n_samples for 'circles' is 1; allowed: an integer >= 2"),
    ({"name": "moons", "n_samples": 2.5}, ConfigError,
     "n_samples for 'moons' is 2.5; allowed: an integer >= 2"),
    ({"name": "blobs", "n_samples": True}, ConfigError,
     "n_samples for 'blobs' is True; allowed: an integer >= 2"),
    ({"name": "moons", "noise": -0.1}, ConfigError,
     "noise for 'moons' is -0.1; allowed: a number in [0, inf]"),
    ({"name": "moons", "noise": True}, ConfigError,
     "noise for 'moons' is True; allowed: a number in [0, inf]"),
    ({"name": "circles", "noise": "0.1"}, ConfigError,
     "noise for 'circles' is '0.1'; allowed: a number in [0, inf]"),
    ({"name": "football_like", "noise": 2.0}, ConfigError,
     "noise for 'football_like' is 2.0; allowed: a number in [0, 1.0]"),
    ({"name": "spiral", "seed": -1}, ConfigError, "seed is -1; allowed: an integer >= 0"),
    ({"name": "spiral", "seed": 1.5}, ConfigError, "seed is 1.5; allowed: an integer >= 0"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), GEN_ERRORS)
def test_generate_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error) as info:
        generate(**kwargs)
    assert type(info.value) is error and str(info.value) == message


def test_football_like_rejects_a_tiny_heldout_part():
    with pytest.raises(ConfigError) as info:
        football_like(n_val=1)
    assert str(info.value) == "n_val for 'football_like' is 1; allowed: an integer >= 2"


def reference_sklearn(name: str, m: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded recipe of circles/moons/blobs: default_rng(seed) draws sklearn's random_state
    in [0, 2**31); blobs are six clusters labelled by parity. Course orientation, float64."""
    from sklearn.datasets import make_blobs, make_moons

    random_state = int(np.random.default_rng(seed).integers(2**31))
    if name == "circles":
        X, y = make_circles(n_samples=m, noise=noise, random_state=random_state)
    elif name == "moons":
        X, y = make_moons(n_samples=m, noise=noise, random_state=random_state)
    else:
        X, y = make_blobs(n_samples=m, centers=6, n_features=2, cluster_std=noise,
                          random_state=random_state)
        y = y % 2
    return X.T.astype(np.float64), y.reshape(1, m).astype(np.float64)


def reference_flower(m: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The course's flower with default_rng(seed).standard_normal in place of np.random.randn."""
    randn = np.random.default_rng(seed).standard_normal
    X, Y = np.zeros((m, 2)), np.zeros((m, 1))
    for j, ix in enumerate((range(0, m // 2), range(m // 2, m))):
        t = np.linspace(j * 3.12, (j + 1) * 3.12, len(ix)) + randn(len(ix)) * noise
        r = 4 * np.sin(4 * t) + randn(len(ix)) * noise
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = j
    return X.T, Y.T


def football_draws(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """football_like's draws, in order: the field (uniform), the label jitter, the flip draws."""
    X = np.vstack([rng.uniform(-0.75, 0.6, m), rng.uniform(-0.8, 0.8, m)])
    return X, rng.standard_normal(m), rng.random(m)


def reference_football(rng: np.random.Generator, m: int, noise: float):
    """The documented recipe: class 1 above the wavy diagonal 1.1 x + 0.15 + 0.05 sin(12 x) after a
    jitter of std ``noise``; a point is flipped when its flip draw is below noise / 5."""
    X, jitter, flip_draw = football_draws(rng, m)
    above = X[1] + noise * jitter > 1.1 * X[0] + 0.15 + 0.05 * np.sin(12 * X[0])
    return X, (above != (flip_draw < noise / 5)).astype(np.float64).reshape(1, m)


@pytest.mark.parametrize(
    ("name", "m", "noise", "seed"),
    [("circles", 300, 0.05, 0), ("circles", 50, 0.2, 5), ("moons", 300, 0.2, 0),
     ("moons", 40, 0.0, 9), ("moons", 2, 2.0, 1), ("blobs", 300, 1.0, 0), ("blobs", 60, 0.4, 3)],
)
def test_generate_sklearn_toys_are_the_documented_recipe(name, m, noise, seed):
    """Defaults (n_samples, noise, seed 0) and every override reach sklearn; noise 0 and 2 are fine."""
    kwargs = {} if (m, noise, seed) == (*DEFAULTS[name], 0) else {
        "n_samples": m, "noise": noise, "seed": seed}
    X, Y = generate(name, **kwargs)
    X_ref, Y_ref = reference_sklearn(name, m, noise, seed)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(Y, Y_ref)
    assert X.dtype == np.float64 and Y.dtype == np.float64


@pytest.mark.parametrize(("m", "noise", "seed"), [(400, 0.2, 0), (60, 0.5, 7)])
def test_generate_spiral_is_the_seeded_flower(m, noise, seed):
    kwargs = {} if seed == 0 else {"n_samples": m, "noise": noise, "seed": seed}
    X, Y = generate("spiral", **kwargs)
    X_ref, Y_ref = reference_flower(m, noise, seed)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(Y, Y_ref)


@pytest.mark.parametrize(("n_train", "n_val", "noise", "seed"),
                         [(211, 200, 0.1, 0), (50, 30, 0.3, 2), (20, 2, 1.0, 5)])
def test_football_like_is_the_documented_recipe(n_train, n_val, noise, seed):
    kwargs = {} if seed == 0 else {"n_train": n_train, "n_val": n_val, "noise": noise, "seed": seed}
    X, Y, X_val, Y_val = football_like(**kwargs)
    rng = np.random.default_rng(seed)
    X_ref, Y_ref = reference_football(rng, n_train, noise)
    X_val_ref, Y_val_ref = reference_football(rng, n_val, noise)  # drawn next, same generator
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(Y, Y_ref)
    np.testing.assert_array_equal(X_val, X_val_ref)
    np.testing.assert_array_equal(Y_val, Y_val_ref)
    assert Y.dtype == np.float64 and Y_val.shape == (1, n_val)


def test_football_like_boundaries_are_strict():
    """A point exactly on the jittered boundary is class 0 (strict >), and a flip draw exactly
    equal to noise / 5 does not flip (strict <): noise is chosen to hit each tie exactly."""
    m, seed = 211, 0  # the draws do not depend on noise, so they can be read before choosing it
    X, jitter, flip_draw = football_draws(np.random.default_rng(seed), m)
    boundary = 1.1 * X[0] + 0.15 + 0.05 * np.sin(12 * X[0])
    ties = [(i, (boundary[i] - X[1, i]) / jitter[i]) for i in range(m)]
    i, noise = next((i, s) for i, s in ties if 0.05 < s <= 1 and X[1, i] + s * jitter[i] == boundary[i]
                    and not flip_draw[i] < s / 5)
    Y = generate("football_like", n_samples=m, noise=noise, seed=seed)[1]
    assert Y[0, i] == 0.0
    np.testing.assert_array_equal(Y, reference_football(np.random.default_rng(seed), m, noise)[1])
    j, noise = next((j, 5 * r) for j, r in enumerate(flip_draw) if 0 < r <= 0.2 and 5 * r / 5 == r)
    Y = generate("football_like", n_samples=m, noise=noise, seed=seed)[1]
    above = X[1, j] + noise * jitter[j] > boundary[j]
    assert Y[0, j] == float(above)  # not flipped
    np.testing.assert_array_equal(Y, reference_football(np.random.default_rng(seed), m, noise)[1])


def test_course_circles_is_the_course_load_dataset(global_rng_guard):
    X, Y, X_test, Y_test = course_circles()
    np.random.seed(1)
    train_X, train_Y = make_circles(n_samples=300, noise=0.05)
    np.random.seed(2)
    test_X, test_Y = make_circles(n_samples=100, noise=0.05)
    np.testing.assert_array_equal(X, train_X.T)
    np.testing.assert_array_equal(Y, train_Y.reshape(1, 300))
    np.testing.assert_array_equal(X_test, test_X.T)
    np.testing.assert_array_equal(Y_test, test_Y.reshape(1, 100))
    assert X.shape == (2, 300) and X_test.shape == (2, 100)
    assert Y.sum() == 150  # make_circles: half outer (0), half inner (1)
    train_only = generate("circles", course_compat=True)
    assert len(train_only) == 2  # the training part only, not the 100 test circles
    np.testing.assert_array_equal(train_only[0], X)
    np.testing.assert_array_equal(train_only[1], Y)


def test_course_planar_is_the_course_flower(global_rng_guard):
    X, Y = course_planar()
    np.random.seed(1)  # the course's load_planar_dataset, verbatim apart from names
    m, N, a = 400, 200, 4
    X_ref, Y_ref = np.zeros((m, 2)), np.zeros((m, 1))
    for j in range(2):
        ix = range(N * j, N * (j + 1))
        t = np.linspace(j * 3.12, (j + 1) * 3.12, N) + np.random.randn(N) * 0.2
        r = a * np.sin(4 * t) + np.random.randn(N) * 0.2
        X_ref[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y_ref[ix] = j
    np.testing.assert_array_equal(X, X_ref.T)
    np.testing.assert_array_equal(Y, Y_ref.T)
    assert X.shape == (2, 400) and Y.sum() == 200
    np.testing.assert_array_equal(generate("spiral", course_compat=True)[0], X)


def test_football_like_has_the_football_file_layout():
    X, Y, X_val, Y_val = football_like(seed=4)
    assert X.shape == (2, 211) and Y.shape == (1, 211)
    assert X_val.shape == (2, 200) and Y_val.shape == (1, 200)
    for data, labels in ((X, Y), (X_val, Y_val)):
        assert data[0].min() >= -0.75 and data[0].max() <= 0.6
        assert data[1].min() >= -0.8 and data[1].max() <= 0.8
        assert 0.3 < labels.mean() < 0.7
    X_gen, Y_gen = generate("football_like", seed=4)
    np.testing.assert_array_equal(X, X_gen)
    np.testing.assert_array_equal(Y, Y_gen)


# --- files ------------------------------------------------------------------------------------


def write(path: pathlib.Path, arrays: dict) -> pathlib.Path:
    if path.suffix == ".mat":
        scipy.io.savemat(path, arrays)
    else:
        np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("suffix", [".mat", ".npz"])
@pytest.mark.parametrize("rows_are_examples", [True, False])
@pytest.mark.parametrize("label_shape", ["column", "row", "flat"])
def test_archive_round_trip(tmp_path, suffix, rows_are_examples, label_shape):
    X, Y = toy(m=30, n=2)
    X_val, Y_val = toy(m=12, n=2, seed=1)

    def stored(A, labels):
        shaped = {"column": labels.reshape(-1, 1), "row": labels, "flat": labels.ravel()}
        return (A.T if rows_are_examples else A), shaped[label_shape]

    Xs, ys = stored(X, Y)
    Xvs, yvs = stored(X_val, Y_val)
    path = write(tmp_path / f"d{suffix}", {"X": Xs, "y": ys.astype(np.uint8), "Xval": Xvs,
                                            "yval": yvs.astype(np.uint8)})
    data = load_file(path)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.Y, Y)
    np.testing.assert_array_equal(data.X_val, X_val)
    np.testing.assert_array_equal(data.Y_val, Y_val)
    assert data.Y.dtype == np.float64 and data.has_heldout
    assert data.source == path
    assert data.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()


def test_archive_without_heldout(tmp_path):
    X, Y = toy()
    data = load_file(write(tmp_path / "d.npz", {"X": X.T, "y": Y.ravel()}))
    assert data.X_val is None and data.Y_val is None and not data.has_heldout


@pytest.mark.parametrize("header", [True, False])
def test_csv_round_trip(tmp_path, header):
    X, Y = toy(m=25, n=2)
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(["x1", "x2", "y"])
        writer.writerows(np.vstack([X, Y]).T.tolist())
    data = load_file(path)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.Y, Y)
    assert data.X_val is None


def test_csv_named_or_indexed_label_column(tmp_path):
    X, Y = toy(m=10, n=2)
    path = tmp_path / "d.csv"
    rows = np.vstack([Y, X]).T  # label first
    path.write_text("y,a,b\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    for label_column in ("y", 0):
        data = load_file(path, label_column=label_column)
        np.testing.assert_array_equal(data.X, X)
        np.testing.assert_array_equal(data.Y, Y)


def _bad(tmp_path: pathlib.Path, case: str) -> pathlib.Path:
    X, Y = toy(m=10, n=2)
    rows = X.T
    y = Y.ravel()
    npz = tmp_path / "bad.npz"
    if case == "missing file":
        return tmp_path / "absent.mat"
    if case == "directory":
        (tmp_path / "folder.npz").mkdir()
        return tmp_path / "folder.npz"
    if case == "bad extension":
        (tmp_path / "data.txt").write_text("1,2,0\n")
        return tmp_path / "data.txt"
    if case == "corrupt mat":
        (tmp_path / "bad.mat").write_bytes(b"this is not a MATLAB file at all")
        return tmp_path / "bad.mat"
    if case == "corrupt npz":
        npz.write_bytes(b"PK\x03\x04 truncated zip")
        return npz
    if case == "npz bare EOFError":
        # a local zip header whose extra-field length points past the end: zipfile raises a bare
        # EOFError (no message), so the type name is what the user sees
        np.savez(npz, X=rows, y=y)
        raw = bytearray(npz.read_bytes())
        raw[29] = 0xFF
        npz.write_bytes(bytes(raw))
        return npz
    if case == "object array":
        np.savez(npz, X=np.array([{"a": 1}] * 10, dtype=object), y=y)
        return npz
    if case == "missing key":
        return write(npz, {"X": rows, "Xval": rows, "yval": y})
    if case == "missing X":
        return write(npz, {"y": y})
    if case == "no arrays":
        np.savez(npz)
        return npz
    if case == "mat missing key":
        return write(tmp_path / "bad.mat", {"X": rows})
    if case == "Xval without yval":
        return write(npz, {"X": rows, "y": y, "Xval": rows})
    if case == "yval without Xval":
        return write(npz, {"X": rows, "y": y, "yval": y})
    if case == "nan":
        rows[3, 1] = np.nan
    elif case == "inf":
        rows[4, 0] = np.inf
    elif case == "labels {0,2}":
        y = y * 2
    elif case == "one class":
        y = np.zeros_like(y)
    elif case == "lengths disagree":
        y = y[:4]
    elif case == "label shape":
        y = np.vstack([y, y]).T
    elif case == "empty":
        rows, y = np.zeros((0, 2)), np.zeros(0)
    elif case == "text X":
        rows = np.full((10, 2), "a")
    elif case == "text labels":
        y = np.full(10, "b")
    elif case == "X 3-D":
        rows = np.ones((2, 5, 2))
    elif case == "Xval features":
        return write(npz, {"X": rows, "y": y, "Xval": np.ones((6, 3)), "yval": y[:6]})
    elif case == "Xval lengths disagree":
        return write(npz, {"X": rows, "y": y, "Xval": np.ones((6, 2)), "yval": y[:4]})
    elif case == "val labels {0,3}":
        return write(npz, {"X": rows, "y": y, "Xval": rows, "yval": y * 3})
    elif case.startswith("csv"):
        path = tmp_path / "bad.csv"
        path.write_bytes({
            "csv empty": b"",
            "csv not a number": b"x1,x2,y\n1,2,0\n3,abc,1\n",
            "csv ragged": b"1,2,0\n3,4\n",
            "csv rows narrower than header": b"x1,x2,y\n1,0\n2,1\n",
            "csv one column": b"1\n0\n",
            "csv not utf-8": b"x,y\n1,\xff\n",
        }[case])
        return path
    return write(npz, {"X": rows, "y": y})


BAD_CASES = [  # the whole message; {where} is "data file '<path>'"
    ("missing file", "{where} does not exist"),
    ("directory", "{where} is not a file"),
    ("bad extension", "{where} has extension '.txt'; allowed: .csv, .mat, .npz"),
    ("corrupt mat", "{where} cannot be read as a MATLAB .mat file: index out of range"),
    ("corrupt npz", "{where} cannot be read as an .npz file: File is not a zip file"),
    ("npz bare EOFError", "{where} cannot be read as an .npz file: EOFError"),
    ("object array",
     "{where} cannot be read as an .npz file: Object arrays cannot be loaded when allow_pickle=False"),
    ("missing key", "{where} has no key 'y' (keys: X, Xval, yval)"),
    ("missing X", "{where} has no key 'X' (keys: y)"),
    ("no arrays", "{where} has no key 'X' (keys: none)"),
    ("mat missing key", "{where} has no key 'y' (keys: X)"),  # not the .mat's __header__ etc.
    ("Xval without yval", "{where} has no key 'yval' (keys: X, Xval, y)"),
    ("yval without Xval", "{where} has no key 'Xval' (keys: X, y, yval)"),
    ("nan", "{where}: X has 1 nan/inf value(s), first nan at feature 1, example 3; "
            "all values must be finite"),
    ("inf", "{where}: X has 1 nan/inf value(s), first inf at feature 0, example 4; "
            "all values must be finite"),
    ("labels {0,2}", "{where}: labels are {{0, 2}}; allowed: 0 and 1"),
    ("one class", "{where}: only one class (0) among 10 examples; training needs 0 and 1"),
    ("lengths disagree",
     "{where} X/y: X has shape (10, 2) but there are 4 labels; X needs 4 rows or 4 columns"),
    ("label shape", "{where} X/y: labels have shape (10, 2); allowed: (m,), (m, 1) or (1, m)"),
    ("empty", "{where} X/y: labels are empty (0 examples); need at least one example"),
    ("text X", "{where} X/y: X have dtype <U1; allowed: numbers"),
    ("text labels", "{where} X/y: labels have dtype <U1; allowed: numbers"),
    ("X 3-D", "{where} X/y: X has shape (2, 5, 2); allowed: (m, n) or (n, m)"),
    ("Xval features",
     "{where}: Xval has 3 features but X has 2; the held-out part needs the same features"),
    ("Xval lengths disagree",
     "{where} Xval/yval: X has shape (6, 2) but there are 4 labels; X needs 4 rows or 4 columns"),
    ("val labels {0,3}", "{where} held-out part: labels are {{0, 3}}; allowed: 0 and 1"),
    ("csv empty", "{where} has no data rows (empty)"),
    ("csv not a number", "{where} line 3 column 2 is 'abc'; allowed: a number"),
    ("csv ragged", "{where} line 2 has 2 columns; expected 3"),
    ("csv rows narrower than header", "{where} line 2 has 2 columns; expected 3"),
    ("csv one column", "{where} has 1 column; need feature column(s) and a label column"),
    ("csv not utf-8", "{where} is not UTF-8 text (byte 6)"),
]


@pytest.mark.parametrize(("case", "message"), BAD_CASES, ids=[c for c, _ in BAD_CASES])
def test_bad_data_raises_one_line_data_error(tmp_path, case, message):
    path = _bad(tmp_path, case)
    with pytest.raises(DataError) as info:
        load_file(path)
    assert str(info.value) == message.format(where=f"data file '{path}'")


@pytest.mark.parametrize(("exc", "line"), [
    (ValueError("  \n  first line  \nsecond line"), "first line"),
    (OSError("one line"), "one line"),
    (EOFError(), "EOFError"),
    (RuntimeError("\n\t\n"), "RuntimeError"),
])
def test_one_line_is_the_first_non_empty_line_or_the_type_name(exc, line):
    assert one_line(exc) == line


@pytest.mark.skipif(not pathlib.Path("/proc/self/mem").is_file(), reason="needs Linux /proc")
def test_unreadable_file(tmp_path):
    """A file that exists but whose read fails (reading /proc/self/mem at 0 is an I/O error)."""
    path = tmp_path / "d.csv"
    path.symlink_to("/proc/self/mem")
    with pytest.raises(DataError) as info:
        load_file(path)
    assert str(info.value) == f"data file '{path}' cannot be read: Input/output error"


CSV_LABEL_ERRORS = [
    ("1,2,0\n3,4,1\n", "y", "{where} has no header row, so label column 'y' cannot be found; "
                            "add a header or give the column index"),
    ("x1,x2,y\n1,2,0\n3,4,1\n", "label", "{where} has no column 'label' (columns: x1, x2, y)"),
    ("1,2,0\n3,4,1\n", 3, "{where} has 3 columns; label_column=3 is out of range"),
    ("1,2,0\n3,4,1\n", -4, "{where} has 3 columns; label_column=-4 is out of range"),
]


@pytest.mark.parametrize(("text", "label_column", "message"), CSV_LABEL_ERRORS)
def test_csv_bad_label_column(tmp_path, text, label_column, message):
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        load_file(path, label_column=label_column)
    assert str(info.value) == message.format(where=f"data file '{path}'")


def test_label_column_is_for_csv_only(tmp_path):
    X, Y = toy()
    path = write(tmp_path / "d.npz", {"X": X, "y": Y})
    with pytest.raises(ConfigError) as info:
        load_file(path, label_column="y")
    assert str(info.value) == f"label_column='y' applies to .csv files only, not data file '{path}'"


def test_csv_label_column_by_negative_index_and_a_single_feature(tmp_path):
    """-width is the first column; two columns are one feature and the label."""
    path = tmp_path / "d.csv"
    path.write_text("0,1.5,2.5\n1,3.5,4.5\n0,5.5,6.5\n")
    data = load_file(path, label_column=-3)
    np.testing.assert_array_equal(data.X, [[1.5, 3.5, 5.5], [2.5, 4.5, 6.5]])
    np.testing.assert_array_equal(data.Y, [[0.0, 1.0, 0.0]])
    path.write_text("1.5,0\n3.5,1\n")
    data = load_file(path)
    np.testing.assert_array_equal(data.X, [[1.5, 3.5]])
    np.testing.assert_array_equal(data.Y, [[0.0, 1.0]])


def test_archive_single_flat_feature_and_integer_values(tmp_path):
    """A flat X is one feature; integer arrays come back as float64."""
    data = load_file(write(tmp_path / "d.npz", {"X": np.array([3, 1, 4, 1]), "y": [0, 1, 1, 0]}))
    np.testing.assert_array_equal(data.X, [[3.0, 1.0, 4.0, 1.0]])
    np.testing.assert_array_equal(data.Y, [[0.0, 1.0, 1.0, 0.0]])
    assert data.X.dtype == np.float64 and data.Y.dtype == np.float64
    data = load_file(write(tmp_path / "e.npz", {"X": np.array([[1, 2], [3, 4], [5, 6]]),
                                                 "y": np.array([0, 1, 0])}))
    np.testing.assert_array_equal(data.X, [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])
    assert data.X.dtype == np.float64


@pytest.mark.parametrize(
    ("X", "Y", "message"),
    [
        (np.ones(3), np.ones((1, 3)), "X must be a 2-D array; got (3,)"),
        ([[1.0, 2.0]], np.ones((1, 2)), "X must be a 2-D array; got list"),
        (np.ones((2, 3)), np.ones(3), "Y must be a 2-D array; got (3,)"),
        (np.ones((2, 3)), [[0, 1, 0]], "Y must be a 2-D array; got list"),
        (np.ones((2, 3)), np.ones((1, 4)), "Y has shape (1, 4); expected (1, 3) to match X (2, 3)"),
        (np.ones((0, 3)), np.ones((1, 3)),
         "X has shape (0, 3) (empty); need at least one feature and one example"),
        (np.ones((2, 0)), np.ones((1, 0)),
         "X has shape (2, 0) (empty); need at least one feature and one example"),
        (np.array([["a", "b"]]), np.ones((1, 2)), "X has dtype <U1; allowed: numbers"),
        (np.ones((1, 2)), np.array([["a", "b"]]), "Y has dtype <U1; allowed: numbers"),
        (np.ones((2, 2)), np.array([[0.0, np.nan]]), "labels are {0, nan}; allowed: 0 and 1"),
        # at most six distinct labels are shown, then "..."
        (np.ones((1, 6)), np.arange(6.0)[None], "labels are {0, 1, 2, 3, 4, 5}; allowed: 0 and 1"),
        (np.ones((1, 7)), np.arange(7.0)[None],
         "labels are {0, 1, 2, 3, 4, 5, ...}; allowed: 0 and 1"),
        (np.ones((1, 8)), np.arange(8.0)[None] / 2,
         "labels are {0, 0.5, 1, 1.5, 2, 2.5, ...}; allowed: 0 and 1"),
    ],
)
def test_validate_xy(X, Y, message):
    with pytest.raises(DataError) as info:
        validate_xy(X, Y, "mydata")
    assert str(info.value) == "mydata: " + message


def test_validate_xy_accepts_good_data_and_checks_classes_on_request():
    X, Y = toy()
    assert validate_xy(X, Y, "ok", both_classes=True) is None
    assert validate_xy(X, np.ones_like(Y), "one class is fine for a dev set") is None
    assert validate_xy(np.ones((3, 1)), np.zeros((1, 1)), "a single example is enough") is None
    with pytest.raises(DataError) as info:
        validate_xy(X, np.ones_like(Y), "train", both_classes=True)
    assert str(info.value) == "train: only one class (1) among 40 examples; training needs 0 and 1"


def test_course_football_file():
    football = reference.require_course_file()
    data = load_file(football)
    assert data.X.shape == (2, 211) and data.Y.shape == (1, 211)
    assert data.X_val.shape == (2, 200) and data.Y_val.shape == (1, 200)
    assert set(np.unique(data.Y)) == {0.0, 1.0}
    splits, fingerprint = load_dataset("file", path=football)
    assert splits.sizes() == {"train": 211, "dev": 200, "test": 200}
    assert fingerprint == data.fingerprint


# --- split ------------------------------------------------------------------------------------


def ids(X: np.ndarray) -> list[int]:
    return X[0].astype(int).tolist()


@pytest.mark.parametrize("stratify", [True, False])
def test_split_is_disjoint_complete_and_keeps_pairs(stratify):
    X, Y = toy(m=50, p1=0.3)
    s = split(X, Y, seed=1, stratify=stratify)
    assert sorted(ids(s.X_train) + ids(s.X_dev) + ids(s.X_test)) == list(range(50))
    assert s.sizes() == {"train": 30, "dev": 10, "test": 10}
    for Xp, Yp in ((s.X_train, s.Y_train), (s.X_dev, s.Y_dev), (s.X_test, s.Y_test)):
        np.testing.assert_array_equal(Yp, Y[:, Xp[0].astype(int)])
        np.testing.assert_array_equal(Xp, X[:, Xp[0].astype(int)])


@pytest.mark.parametrize("m", [10, 37, 101, 250])
@pytest.mark.parametrize("p1", [0.1, 0.33, 0.5])
@pytest.mark.parametrize("ratios", [(0.6, 0.2, 0.2), (0.7, 0.15, 0.15), (0.98, 0.01, 0.01)])
def test_stratification_keeps_class_proportions_within_one(m, p1, ratios):
    X, Y = toy(m=m, p1=p1)
    try:
        s = split(X, Y, ratios=ratios, seed=m)
    except DataError as error:  # too few examples for a 1% split: must say so
        assert "would be empty" in str(error)
        return
    share = Y.mean()
    for Yp in (s.Y_train, s.Y_dev, s.Y_test):
        assert abs(Yp.sum() - share * Yp.size) < 1


def test_stratified_splits_are_shuffled():
    X, Y = toy(m=100)
    s = split(X, Y, seed=0)
    assert 0 < s.Y_train[0, :30].sum() < 30  # not all ones first


def test_split_is_determined_by_seed():
    X, Y = toy(m=60)
    a, b, c = split(X, Y, seed=5), split(X, Y, seed=5), split(X, Y, seed=6)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert ids(a.X_train) != ids(c.X_train)


def test_split_by_fixed_sizes_for_big_data():
    X, Y = toy(m=20_000, n=1, p1=0.2)
    s = split(X, Y, dev_size=200, test_size=100, seed=0)
    assert s.sizes() == {"train": 19_700, "dev": 200, "test": 100}
    assert s.Y_dev.sum() == 40 and s.Y_test.sum() == 20


def test_zero_ratio_gives_an_empty_split():
    X, Y = toy(m=20)
    assert split(X, Y, ratios=(0.8, 0.0, 0.2)).sizes() == {"train": 16, "dev": 0, "test": 4}
    assert split(X, Y, dev_size=0, test_size=5).sizes() == {"train": 15, "dev": 0, "test": 5}


def reference_split(Y: np.ndarray, sizes: tuple[int, int, int], seed: int,
                    stratify: bool = True) -> list[np.ndarray]:
    """The documented recipe, drawn from default_rng(seed); returns each split's example indices.

    Stratified: shuffle class 0 then class 1; class 0 gets floor(size * m0 / m) of each split,
    plus one more for the splits with the largest remainders (the earlier split on a tie); class 1
    fills the rest; then each split is shuffled. Unstratified: one permutation, cut in order.
    """
    rng = np.random.default_rng(seed)
    m = Y.shape[1]
    if not stratify:
        order = rng.permutation(m).tolist()
        cut = (sizes[0], sizes[0] + sizes[1])
        return [np.array(order[:cut[0]]), np.array(order[cut[0]:cut[1]]), np.array(order[cut[1]:])]
    zeros, ones = (rng.permutation(np.flatnonzero(Y[0] == c)).tolist() for c in (0, 1))
    m0 = len(zeros)
    take0 = [size * m0 // m for size in sizes]
    by_remainder = sorted(range(3), key=lambda k: (-(sizes[k] * m0 % m), k))
    for k in by_remainder[: m0 - sum(take0)]:
        take0[k] += 1
    parts = []
    for size, n0 in zip(sizes, take0):
        taken, zeros, ones = zeros[:n0] + ones[: size - n0], zeros[n0:], ones[size - n0:]
        parts.append(rng.permutation(np.array(taken, dtype=np.int64)))
    return parts


def assert_split_is(s: Splits, X: np.ndarray, Y: np.ndarray, parts: list[np.ndarray]) -> None:
    for (Xp, Yp), idx in zip(((s.X_train, s.Y_train), (s.X_dev, s.Y_dev), (s.X_test, s.Y_test)),
                             parts):
        np.testing.assert_array_equal(Xp, X[:, idx])
        np.testing.assert_array_equal(Yp, Y[:, idx])


@pytest.mark.parametrize(
    ("m", "p1", "kwargs", "sizes"),
    [
        (50, 0.3, {"seed": 1}, (30, 10, 10)),
        (50, 0.3, {"seed": 1, "stratify": False}, (30, 10, 10)),
        (40, 0.5, {}, (24, 8, 8)),  # the default seed is 0
        (40, 0.5, {"stratify": False}, (24, 8, 8)),
        (37, 0.33, {"ratios": (0.5, 0.3, 0.2), "seed": 4}, (19, 11, 7)),  # 11.1 -> 11, 7.4 -> 7
        (30, 0.2, {"dev_size": 4, "test_size": 9, "seed": 2}, (17, 4, 9)),
    ],
)
def test_split_takes_exactly_the_documented_examples(m, p1, kwargs, sizes):
    """The seed and the ratios pin the exact examples of each split (see the module docstring)."""
    X, Y = toy(m=m, p1=p1)
    s = split(X, Y, **kwargs)
    assert s.sizes() == dict(zip(("train", "dev", "test"), sizes))
    parts = reference_split(Y, sizes, kwargs.get("seed", 0), kwargs.get("stratify", True))
    assert_split_is(s, X, Y, parts)


def test_stratified_remainders_go_to_the_earlier_split_on_a_tie():
    """3 zeros among 10, sizes 6/2/2: class 0 gets 1.8/0.6/0.6, so 1 + 0 + 0 plus one extra each to
    train (remainder .8) and to dev (.6, tied with test but earlier): dev 1 zero, test none."""
    X, Y = toy(m=10, p1=0.7)
    s = split(X, Y, seed=3)
    assert (s.Y_train.size - s.Y_train.sum(), s.Y_dev.size - s.Y_dev.sum(),
            s.Y_test.size - s.Y_test.sum()) == (2, 1, 0)


SPLIT_ERRORS = [
    ({"ratios": (0.6, 0.3, 0.3)}, ConfigError,
     "split ratios are (0.6, 0.3, 0.3); allowed: (train, dev, test), each >= 0, train > 0, "
     "summing to 1"),
    ({"ratios": (1.2, -0.1, -0.1)}, ConfigError,
     "split ratios are (1.2, -0.1, -0.1); allowed: (train, dev, test), each >= 0, train > 0, "
     "summing to 1"),
    ({"ratios": (0.0, 0.5, 0.5)}, ConfigError,
     "split ratios are (0.0, 0.5, 0.5); allowed: (train, dev, test), each >= 0, train > 0, "
     "summing to 1"),
    ({"ratios": (0.5, 0.5)}, ConfigError,
     "split ratios are (0.5, 0.5); allowed: (train, dev, test), each >= 0, train > 0, summing to 1"),
    ({"ratios": (0.9, 0.09, 0.01)}, DataError,  # test: 20 * 0.01 = 0.2 rounds to 0
     "test split would be empty: ratio 0.01 of 20 examples rounds to 0; "
     "use more data or a larger ratio"),
    ({"ratios": (0.98, 0.01, 0.01)}, DataError,
     "dev split would be empty: ratio 0.01 of 20 examples rounds to 0; "
     "use more data or a larger ratio"),
    ({"ratios": (0.02, 0.49, 0.49)}, DataError,  # dev and test: 9.8 -> 10 each, all 20 examples
     "train split would be empty: ratio 0.02 of 20 examples; use more data or a larger train ratio"),
    ({"dev_size": 5}, ConfigError,
     "test_size is None; allowed: an integer >= 0, given with dev_size and test_size together"),
    ({"dev_size": -1, "test_size": 2}, ConfigError,
     "dev_size is -1; allowed: an integer >= 0, given with dev_size and test_size together"),
    ({"dev_size": 10, "test_size": 10}, DataError,
     "dev_size=10 + test_size=10 leave no training example out of 20; "
     "allowed: dev_size + test_size < 20"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), SPLIT_ERRORS)
def test_split_rejects_bad_requests(kwargs, error, message):
    X, Y = toy(m=20)
    with pytest.raises(error) as info:
        split(X, Y, **kwargs)
    assert type(info.value) is error and str(info.value) == message


def test_split_validates_its_input_as_training_data():
    X, Y = toy(m=10)
    with pytest.raises(DataError) as info:
        split(X, np.zeros_like(Y))
    assert str(info.value) == (
        "data to split: only one class (0) among 10 examples; training needs 0 and 1")
    with pytest.raises(DataError) as info:
        split(X, 2 * Y)
    assert str(info.value) == "data to split: labels are {0, 2}; allowed: 0 and 1"


def test_split_needs_both_classes_in_train():
    """Unstratified, a one-example train split has one class; the message shows which."""
    X = np.arange(10.0)[None]
    Y = np.zeros((1, 10))
    Y[0, 0] = 1
    train = reference_split(Y, (1, 5, 4), seed=0, stratify=False)[0]
    with pytest.raises(DataError) as info:
        split(X, Y, dev_size=5, test_size=4, stratify=False)
    assert str(info.value) == (
        f"train split has only one class ({Y[0, train[0]]:g}) among 1 examples; "
        "use stratify=True or more data")


def test_from_heldout_uses_the_heldout_part_as_dev_and_test():
    X, Y = toy(m=30)
    X_val, Y_val = toy(m=10, seed=2)
    s = from_heldout(X, Y, X_val, Y_val)
    assert s.X_dev is s.X_test is X_val and s.Y_dev is s.Y_test is Y_val
    assert s.X_train is X
    one_class = from_heldout(X, Y, X_val, np.ones_like(Y_val))  # fine for held-out data
    assert one_class.Y_dev.sum() == 10


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ("features", "held-out data has 2 features but train has 3; they must match"),
        ("train one class", "train data: only one class (0) among 30 examples; training needs 0 and 1"),
        ("train labels", "train data: labels are {0, 2}; allowed: 0 and 1"),
        ("val labels", "held-out data: labels are {0, 3}; allowed: 0 and 1"),
    ],
)
def test_from_heldout_rejects_bad_parts(part, message):
    X, Y = toy(m=30)
    X_val, Y_val = toy(m=10, seed=2)
    args = {
        "features": (X, Y, X_val[:2], Y_val),
        "train one class": (X, np.zeros_like(Y), X_val, Y_val),
        "train labels": (X, 2 * Y, X_val, Y_val),
        "val labels": (X, Y, X_val, 3 * Y_val),
    }[part]
    with pytest.raises(DataError) as info:
        from_heldout(*args)
    assert str(info.value) == message


# --- subsample: part of train (data.train_size) ---------------------------------------------


@pytest.mark.parametrize(("m", "p1", "smallest"), [(60, 0.5, 2), (101, 0.3, 4), (250, 0.1, 10)])
def test_subsample_is_stratified_nested_and_leaves_dev_and_test(m, p1, smallest):
    """Each size takes that many distinct train examples (pairs kept, in train's order), each
    class within one example of its share of train; smaller subsamples are parts of larger
    ones; dev and test are the very same arrays."""
    X, Y = toy(m=m, p1=p1)
    s = split(X, Y, seed=2)
    train_ids = ids(s.X_train)
    n_train, ones = len(train_ids), s.Y_train.sum()
    previous: set[int] = set()
    sizes = sorted({int(n) for n in np.geomspace(smallest, n_train - 1, 7)})
    for n in sizes:
        part = subsample(s, n, seed=5)
        for name in ("X_dev", "Y_dev", "X_test", "Y_test"):
            assert getattr(part, name) is getattr(s, name)
        chosen = ids(part.X_train)
        assert len(chosen) == n == len(set(chosen)) and set(chosen) <= set(train_ids)
        np.testing.assert_array_equal(part.X_train, X[:, chosen])
        np.testing.assert_array_equal(part.Y_train, Y[:, chosen])
        positions = [train_ids.index(i) for i in chosen]
        assert positions == sorted(positions)
        assert abs(part.Y_train.sum() - ones * n / n_train) <= 0.5
        assert 0 < part.Y_train.sum() < n
        assert previous <= set(chosen)
        previous = set(chosen)
        assert chosen == ids(s.X_train[:, reference.subsample_indices(s.Y_train, n, 5)])
    assert subsample(s, n_train, seed=5) is s


def test_subsample_is_determined_by_its_seed():
    X, Y = toy(m=200)
    s = split(X, Y, seed=0)
    a, b, c = (ids(subsample(s, 30, seed=k).X_train) for k in (3, 3, 4))
    assert a == b and a != c
    # its own stream: not the split's draws (default_rng(seed)) taken again
    assert a == ids(s.X_train[:, reference.subsample_indices(s.Y_train, 30, 3)])


@pytest.mark.parametrize(("size", "message"), [
    (0, "train_size is 0; allowed: an integer in [1, 30] (the train split's size)"),
    (31, "train_size is 31; allowed: an integer in [1, 30] (the train split's size)"),
    (2.5, "train_size is 2.5; allowed: an integer in [1, 30] (the train split's size)"),
    (True, "train_size is True; allowed: an integer in [1, 30] (the train split's size)"),
    (None, "train_size is None; allowed: an integer in [1, 30] (the train split's size)"),
])
def test_subsample_rejects_sizes_the_split_cannot_give(size, message):
    X, Y = toy(m=50)
    with pytest.raises(ConfigError) as info:
        subsample(split(X, Y), size)
    assert str(info.value) == message


def test_subsample_needs_both_classes():
    """3 ones among 30 train examples: 2 examples are both of class 0 (2 * 27/30 = 1.8 -> 2)."""
    X, Y = toy(m=50, p1=0.1)
    s = split(X, Y)
    assert s.Y_train.sum() == 3
    with pytest.raises(DataError) as info:
        subsample(s, 2)
    assert str(info.value) == ("train_size=2 takes no example of class 1 (3 of the train split's "
                               "30); allowed: a larger train_size")
    assert subsample(s, 10).Y_train.sum() == 1  # 10 * 27/30 = 9 zeros
    with pytest.raises(DataError) as info:  # one example is of one class only
        subsample(s, 1)
    assert str(info.value) == ("train_size=1 takes no example of class 1 (3 of the train split's "
                               "30); allowed: a larger train_size")
    X, Y = toy(m=50, p1=0.9)  # now class 0 is the rare one: 2 * 3/30 = 0.2 -> none
    with pytest.raises(DataError) as info:
        subsample(split(X, Y), 2)
    assert str(info.value) == ("train_size=2 takes no example of class 0 (3 of the train split's "
                               "30); allowed: a larger train_size")


def test_subsample_and_label_noise_default_to_seed_0():
    X, Y = toy(m=100)
    s = split(X, Y)
    np.testing.assert_array_equal(subsample(s, 20).X_train,
                                  s.X_train[:, reference.subsample_indices(s.Y_train, 20, 0)])
    flipped = flip_labels((X, Y), 0.3)
    noisy = np.where(reference_flips(100, 0.3, np.random.default_rng((0, 2))), 1 - Y, Y)
    np.testing.assert_array_equal(flipped[1], noisy)
    assert flipped[0] is X
    unchanged = flip_labels((X, Y), 0.0)  # no noise is allowed: nothing flips
    np.testing.assert_array_equal(unchanged[1], Y)


# --- label noise --------------------------------------------------------------------------------


def reference_flips(m: int, label_noise: float, generator: np.random.Generator) -> np.ndarray:
    """The documented recipe: a label flips where its draw of default_rng((seed, 2)).random is
    below label_noise (Y's examples first, then a held-out part's)."""
    return generator.random(m) < label_noise


@pytest.mark.parametrize("label_noise", [0.05, 0.15, 0.45])
def test_label_noise_flips_labels_before_the_split(label_noise):
    splits, fingerprint = load_dataset("moons", n_samples=400, noise=0.1, seed=3,
                                       label_noise=label_noise)
    X, Y = reference_sklearn("moons", 400, 0.1, 3)
    flips = reference_flips(400, label_noise, np.random.default_rng((3, 2)))
    noisy = np.where(flips, 1 - Y, Y)
    assert_split_is(splits, X, noisy, reference_split(noisy, (240, 80, 80), 3))
    assert abs(flips.mean() - label_noise) < 4 * np.sqrt(label_noise * (1 - label_noise) / 400)
    clean = load_dataset("moons", n_samples=400, noise=0.1, seed=3)
    assert fingerprint != clean[1] and len(fingerprint) == 64
    assert fingerprint == load_dataset("moons", n_samples=400, noise=0.1, seed=3,
                                       label_noise=label_noise)[1]
    assert load_dataset("moons", n_samples=400, noise=0.1, seed=3, label_noise=0.0)[1] == clean[1]


def test_label_noise_reaches_a_heldout_part():
    splits, _ = load_dataset("football_like", n_samples=100, noise=0.2, seed=1, label_noise=0.3)
    rng = np.random.default_rng(1)
    X, Y = reference_football(rng, 100, 0.2)
    X_val, Y_val = reference_football(rng, 200, 0.2)
    generator = np.random.default_rng((1, 2))
    flips, flips_val = (reference_flips(n, 0.3, generator) for n in (100, 200))
    np.testing.assert_array_equal(splits.X_train, X)
    np.testing.assert_array_equal(splits.Y_train, np.where(flips, 1 - Y, Y))
    np.testing.assert_array_equal(splits.X_dev, X_val)
    np.testing.assert_array_equal(splits.Y_dev, np.where(flips_val, 1 - Y_val, Y_val))


def test_label_noise_of_a_file(tmp_path):
    X, Y = toy(m=50, n=2)
    path = write(tmp_path / "p.npz", {"X": X, "y": Y})
    splits, fingerprint = load_dataset("file", path=path, label_noise=0.2, seed=4)
    noisy = np.where(reference_flips(50, 0.2, np.random.default_rng((4, 2))), 1 - Y, Y)
    assert_split_is(splits, X, noisy, reference_split(noisy, (30, 10, 10), 4))
    assert fingerprint != hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("label_noise", [0.5, -0.1, 1.0, True, "x", float("nan")])
def test_label_noise_out_of_range_is_refused(label_noise):
    with pytest.raises(ConfigError) as info:
        load_dataset("moons", n_samples=40, label_noise=label_noise)
    assert str(info.value) == f"label_noise is {label_noise!r}; allowed: a number in [0, 0.5)"


# --- normalize --------------------------------------------------------------------------------


def shifted_splits() -> Splits:
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[[5.0], [-3.0]], scale=[[2.0], [0.5]], size=(2, 200))
    X_dev = X[:, :50] + 1.0  # a dev set from a shifted distribution
    Y = (rng.random((1, 200)) < 0.5).astype(float)
    return Splits(X, Y, X_dev, Y[:, :50], X[:, :40], Y[:, :40])


def test_normalization_is_fitted_on_train_only():
    splits = shifted_splits()
    normalized, stats = normalize_splits(splits)
    mean = splits.X_train.mean(axis=1, keepdims=True)
    std = splits.X_train.std(axis=1, keepdims=True)
    np.testing.assert_allclose(stats.mean, mean)
    np.testing.assert_allclose(stats.std, std)
    np.testing.assert_allclose(normalized.X_train, (splits.X_train - mean) / std)
    np.testing.assert_allclose(normalized.X_dev, (splits.X_dev - mean) / std)
    np.testing.assert_allclose(normalized.X_test, (splits.X_test - mean) / std)
    np.testing.assert_allclose(normalized.X_train.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(normalized.X_train.std(axis=1), 1)
    assert (np.abs(normalized.X_dev.mean(axis=1)) > 0.3).all()  # not forced to zero
    assert normalized.Y_dev is splits.Y_dev and normalized.Y_test is splits.Y_test


def test_constant_feature_gets_unit_std():
    X = np.vstack([np.full(10, 7.0), np.arange(10.0)])
    stats = fit_normalizer(X)
    np.testing.assert_array_equal(stats.mean, [[7.0], [4.5]])
    np.testing.assert_allclose(stats.std, [[1.0], [np.sqrt(8.25)]])
    Xn = apply_normalizer(stats, X)
    np.testing.assert_allclose(Xn, [np.zeros(10), (np.arange(10.0) - 4.5) / np.sqrt(8.25)])
    one = fit_normalizer(np.array([[3.0]]))  # a single example: a constant feature
    assert one.mean.tolist() == [[3.0]] and one.std.tolist() == [[1.0]]


def test_norm_stats_stores_float64_columns():
    """Integers and nested lists are accepted and kept as float64 arrays."""
    stats = NormStats(np.array([[1], [2]]), [[1], [4]])
    for value, expected in ((stats.mean, [[1.0], [2.0]]), (stats.std, [[1.0], [4.0]])):
        assert isinstance(value, np.ndarray) and value.dtype == np.float64
        np.testing.assert_array_equal(value, expected)
    assert stats.n_features == 2
    assert stats.to_dict() == {"mean": [1.0, 2.0], "std": [1.0, 4.0]}


def test_norm_stats_round_trips(tmp_path):
    stats = fit_normalizer(shifted_splits().X_train)
    again = NormStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    np.testing.assert_array_equal(again.mean, stats.mean)
    np.testing.assert_array_equal(again.std, stats.std)
    stats.save_npz(tmp_path / "norm.npz")
    loaded = NormStats.load_npz(tmp_path / "norm.npz")
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.std, stats.std)
    assert loaded.mean.shape == (2, 1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: apply_normalizer(fit_normalizer(np.ones((2, 5))), np.ones((3, 5))),
         "X has shape (3, 5); the normalizer was fitted on 2 features"),
        (lambda: NormStats(np.zeros((2, 1)), np.ones((3, 1))),
         "normalizer mean (2, 1) and std (3, 1) must both be (n, 1)"),
        (lambda: NormStats(np.zeros((2, 3)), np.ones((2, 3))),
         "normalizer mean (2, 3) and std (2, 3) must both be (n, 1)"),
        (lambda: NormStats(np.zeros(2), np.ones(2)),
         "normalizer mean (2,) and std (2,) must both be (n, 1)"),
        (lambda: NormStats.from_dict({"mean": [0.0], "std": [0.0]}),
         "normalizer mean/std must be finite with std > 0"),
        (lambda: NormStats(np.array([[np.inf]]), np.ones((1, 1))),
         "normalizer mean/std must be finite with std > 0"),
        (lambda: NormStats.from_dict({"mean": [0.0], "scale": [1.0]}),
         "normalizer dict has no key 'std' (keys: mean, scale)"),
        (lambda: NormStats.from_dict({"mean": ["a", "b"], "std": [1.0, 1.0]}),
         "normalizer dict values must be lists of numbers: could not convert string to float: 'a'"),
        (lambda: NormStats.from_dict({"mean": [0.0], "std": ["wide"]}),
         "normalizer dict values must be lists of numbers: "
         "could not convert string to float: 'wide'"),
        (lambda: fit_normalizer(np.array([[1.0, np.nan]])),
         "cannot fit a normalizer on X of shape (1, 2): need a non-empty, finite (n_features, m) "
         "array"),
        (lambda: fit_normalizer(np.ones(3)),
         "cannot fit a normalizer on X of shape (3,): need a non-empty, finite (n_features, m) "
         "array"),
        (lambda: fit_normalizer(np.ones((2, 0))),
         "cannot fit a normalizer on X of shape (2, 0): need a non-empty, finite (n_features, m) "
         "array"),
    ],
)
def test_normalizer_errors(make, message):
    with pytest.raises(DataError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, None),
        (b"not an npz", "This file contains pickled (object) data. If you trust the file you can "
                        "load it unsafely using the `allow_pickle=` keyword argument or "
                        "`pickle.load()`."),
        ("object", "Object arrays cannot be loaded when allow_pickle=False"),
    ],
)
def test_normalizer_file_errors(tmp_path, content, reason):
    """A missing file, a file that is no .npz, and numbers stored as pickled objects."""
    path = tmp_path / "norm.npz"
    if content == "object":
        np.savez(path, mean=np.array([[0.0]], dtype=object), std=np.array([[1.0]], dtype=object))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as info:
        NormStats.load_npz(path)
    expected = (f"normalizer file '{path}' does not exist" if reason is None
                else f"normalizer file '{path}' cannot be read as .npz: {reason}")
    assert str(info.value) == expected


# --- load_dataset -----------------------------------------------------------------------------


def test_load_dataset_unknown_name_lists_allowed():
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    assert str(info.value) == (
        "unknown dataset 'mnist' (allowed: file, circles, moons, blobs, spiral, football_like)")
    assert DATASET_NAMES == ("file", *GENERATOR_NAMES)


@pytest.mark.parametrize("name", ["circles", "moons", "blobs", "spiral"])
def test_load_dataset_generated_is_split_and_fingerprinted(name):
    splits, fingerprint = load_dataset(name, n_samples=100, seed=3)
    assert splits.sizes() == {"train": 60, "dev": 20, "test": 20}
    assert len(fingerprint) == 64
    assert load_dataset(name, n_samples=100, seed=3)[1] == fingerprint
    assert load_dataset(name, n_samples=100, seed=4)[1] != fingerprint


@pytest.mark.parametrize(
    ("name", "kwargs", "sizes"),
    [
        ("moons", {"n_samples": 100, "noise": 0.3, "seed": 3, "split_ratios": (0.5, 0.25, 0.25)},
         (50, 25, 25)),
        ("blobs", {"n_samples": 80, "noise": 0.5, "seed": 6, "dev_size": 10, "test_size": 5},
         (65, 10, 5)),
        ("spiral", {"n_samples": 50, "noise": 0.4, "seed": 2}, (30, 10, 10)),
        ("circles", {}, (180, 60, 60)),  # everything by default: 300 points, noise 0.05, seed 0
    ],
)
def test_load_dataset_generates_and_splits_with_its_arguments(name, kwargs, sizes):
    """n_samples, noise, seed and the split settings all reach the generator and the split."""
    splits, _ = load_dataset(name, **kwargs)
    m, noise = kwargs.get("n_samples", DEFAULTS[name][0]), kwargs.get("noise", DEFAULTS[name][1])
    seed = kwargs.get("seed", 0)
    X, Y = (reference_flower if name == "spiral" else partial(reference_sklearn, name))(
        m, noise, seed)
    assert splits.sizes() == dict(zip(("train", "dev", "test"), sizes))
    assert_split_is(splits, X, Y, reference_split(Y, sizes, seed))


@pytest.mark.parametrize("kwargs", [{"n_samples": 50, "noise": 0.3, "seed": 2}, {}])
def test_load_dataset_football_like_keeps_its_heldout_part(kwargs):
    splits, fingerprint = load_dataset("football_like", **kwargs)
    rng = np.random.default_rng(kwargs.get("seed", 0))
    m, noise = kwargs.get("n_samples", 211), kwargs.get("noise", 0.1)
    X, Y = reference_football(rng, m, noise)
    X_val, Y_val = reference_football(rng, 200, noise)
    assert splits.sizes() == {"train": m, "dev": 200, "test": 200}
    for got, expected in ((splits.X_train, X), (splits.Y_train, Y), (splits.X_dev, X_val),
                          (splits.Y_dev, Y_val), (splits.X_test, X_val), (splits.Y_test, Y_val)):
        np.testing.assert_array_equal(got, expected)
    assert len(fingerprint) == 64


def test_load_dataset_course_circles_dev_is_test():
    splits, _ = load_dataset("circles", course_compat=True)
    X, Y, X_test, Y_test = course_circles()
    assert splits.sizes() == {"train": 300, "dev": 100, "test": 100}
    np.testing.assert_array_equal(splits.X_train, X)
    np.testing.assert_array_equal(splits.Y_train, Y)
    np.testing.assert_array_equal(splits.X_dev, X_test)
    np.testing.assert_array_equal(splits.Y_test, Y_test)
    assert splits.X_dev is splits.X_test
    pooled, _ = load_dataset("circles", course_compat=True, split_heldout=True)
    assert pooled.sizes() == {"train": 240, "dev": 80, "test": 80}


def test_load_dataset_course_spiral_is_split():
    splits, _ = load_dataset("spiral", course_compat=True, dev_size=40, test_size=40)
    assert splits.sizes() == {"train": 320, "dev": 40, "test": 40}


def test_load_dataset_file_policies(tmp_path):
    X, Y = toy(m=50, n=2)
    X_val, Y_val = toy(m=20, n=2, seed=1)
    with_val = write(tmp_path / "v.npz", {"X": X, "y": Y, "Xval": X_val, "yval": Y_val})
    plain = write(tmp_path / "p.mat", {"X": X.T, "y": Y.T})
    splits, fingerprint = load_dataset("file", path=with_val)
    assert splits.sizes() == {"train": 50, "dev": 20, "test": 20}
    assert fingerprint == hashlib.sha256(with_val.read_bytes()).hexdigest()
    pooled, _ = load_dataset("file", path=with_val, split_heldout=True)
    assert pooled.sizes() == {"train": 42, "dev": 14, "test": 14}  # 70 examples pooled
    assert load_dataset("file", path=plain)[0].sizes() == {"train": 30, "dev": 10, "test": 10}


@pytest.mark.parametrize("seed", [None, 7])
def test_load_dataset_file_split_follows_the_seed(tmp_path, seed):
    """For a file, the seed (0 by default) only drives the split."""
    X, Y = toy(m=50, n=2, p1=0.4)
    path = write(tmp_path / "p.npz", {"X": X, "y": Y})
    splits, _ = load_dataset("file", path=path, **({} if seed is None else {"seed": seed}))
    assert_split_is(splits, X, Y, reference_split(Y, (30, 10, 10), seed or 0))


INCONSISTENT = [
    ({"name": "file"}, "dataset 'file' with path=None; a path is required for 'file' and "
                       "allowed for 'file' only"),
    ({"name": "moons", "path": "x.mat"}, "dataset 'moons' with path='x.mat'; a path is required "
                                         "for 'file' and allowed for 'file' only"),
    ({"name": "file", "path": "x.mat", "n_samples": 10},
     "dataset 'file' takes no n_samples, noise or course_compat (got n_samples=10, noise=None, "
     "course_compat=False)"),
    ({"name": "file", "path": "x.mat", "noise": 0.1},
     "dataset 'file' takes no n_samples, noise or course_compat (got n_samples=None, noise=0.1, "
     "course_compat=False)"),
    ({"name": "file", "path": "x.mat", "course_compat": True},
     "dataset 'file' takes no n_samples, noise or course_compat (got n_samples=None, "
     "noise=None, course_compat=True)"),
    ({"name": "blobs", "course_compat": True},
     "course_compat=True has no course version of 'blobs' (allowed: circles, spiral)"),
    ({"name": "circles", "course_compat": True, "n_samples": 500},
     "course_compat=True fixes n_samples and noise for 'circles' (course: n_samples=300, "
     "noise=0.05); got n_samples=500, noise=None, allowed: None"),
    ({"name": "spiral", "course_compat": True, "noise": 0.3},
     "course_compat=True fixes n_samples and noise for 'spiral' (course: n_samples=400, "
     "noise=0.2); got n_samples=None, noise=0.3, allowed: None"),
]


@pytest.mark.parametrize(("kwargs", "message"), INCONSISTENT)
def test_load_dataset_rejects_inconsistent_arguments(kwargs, message):
    with pytest.raises(ConfigError) as info:
        load_dataset(**kwargs)
    assert str(info.value) == message


def test_core_imports_no_heavy_tools():
    code = (
        "import sys, dlpractice.data, dlpractice.diagnose; "
        "print(sorted(m for m in ('sklearn', 'pandas', 'matplotlib', 'hydra', 'mlflow', 'dvc') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
