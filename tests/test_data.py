"""Datasets: generators, file loading and validation, splits, normalization, the load policy."""

import csv
import hashlib
import json
import pathlib
import subprocess
import sys

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
    football_like,
    from_heldout,
    generate,
    load_dataset,
    load_file,
    normalize_splits,
    split,
    validate_xy,
)
from dlpractice.data.generators import DEFAULTS
from dlpractice.errors import ConfigError, DataError
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


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"name": "swirl"}, DataError, "'swirl'"),
        ({"name": "moons", "course_compat": True}, ConfigError, "'moons'"),
        ({"name": "circles", "course_compat": True, "n_samples": 500}, ConfigError, "500"),
        ({"name": "circles", "n_samples": 1}, ConfigError, "n_samples"),
        ({"name": "moons", "noise": -0.1}, ConfigError, "-0.1"),
        ({"name": "football_like", "noise": 2.0}, ConfigError, "2.0"),
        ({"name": "spiral", "seed": -1}, ConfigError, "seed is -1"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        generate(**kwargs)


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
    np.testing.assert_array_equal(generate("circles", course_compat=True)[0], X)


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
    if case == "bad extension":
        (tmp_path / "data.txt").write_text("1,2,0\n")
        return tmp_path / "data.txt"
    if case == "corrupt mat":
        (tmp_path / "bad.mat").write_bytes(b"this is not a MATLAB file at all")
        return tmp_path / "bad.mat"
    if case == "corrupt npz":
        npz.write_bytes(b"PK\x03\x04 truncated zip")
        return npz
    if case == "object array":
        np.savez(npz, X=np.array([{"a": 1}] * 10, dtype=object), y=y)
        return npz
    if case == "missing key":
        return write(npz, {"X": rows, "Xval": rows, "yval": y})
    if case == "Xval without yval":
        return write(npz, {"X": rows, "y": y, "Xval": rows})
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
    elif case == "Xval features":
        return write(npz, {"X": rows, "y": y, "Xval": np.ones((6, 3)), "yval": y[:6]})
    elif case == "val labels {0,3}":
        return write(npz, {"X": rows, "y": y, "Xval": rows, "yval": y * 3})
    elif case.startswith("csv"):
        path = tmp_path / "bad.csv"
        path.write_text({
            "csv empty": "",
            "csv not a number": "x1,x2,y\n1,2,0\n3,abc,1\n",
            "csv ragged": "1,2,0\n3,4\n",
            "csv unknown label column": "x1,x2,y\n1,2,0\n3,4,1\n",
        }[case])
        return path
    return write(npz, {"X": rows, "y": y})


BAD_CASES = [
    ("missing file", "absent.mat' does not exist"),
    ("bad extension", "'.txt'; allowed: .csv, .mat, .npz"),
    ("corrupt mat", "bad.mat' cannot be read as a MATLAB .mat file"),
    ("corrupt npz", "bad.npz' cannot be read as an .npz file"),
    ("object array", "cannot be read"),
    ("missing key", "has no key 'y' (keys: X, Xval, yval)"),
    ("Xval without yval", "has no key 'yval'"),
    ("nan", "1 nan/inf value(s), first nan at feature 1, example 3"),
    ("inf", "first inf at feature 0, example 4"),
    ("labels {0,2}", "labels are {0, 2}; allowed: 0 and 1"),
    ("one class", "only one class (0) among 10 examples"),
    ("lengths disagree", "X has shape (10, 2) but there are 4 labels"),
    ("label shape", "labels have shape (10, 2)"),
    ("empty", "labels are empty"),
    ("Xval features", "Xval has 3 features but X has 2"),
    ("val labels {0,3}", "held-out part: labels are {0, 3}"),
    ("csv empty", "has no data rows"),
    ("csv not a number", "line 3 column 2 is 'abc'"),
    ("csv ragged", "line 2 has 2 columns; expected 3"),
]


@pytest.mark.parametrize(("case", "fragment"), BAD_CASES, ids=[c for c, _ in BAD_CASES])
def test_bad_data_raises_one_line_data_error(tmp_path, case, fragment):
    with pytest.raises(DataError) as info:
        load_file(_bad(tmp_path, case))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_csv_unknown_label_column(tmp_path):
    with pytest.raises(DataError, match=r"no column 'label' \(columns: x1, x2, y\)"):
        load_file(_bad(tmp_path, "csv unknown label column"), label_column="label")


def test_label_column_is_for_csv_only(tmp_path):
    X, Y = toy()
    with pytest.raises(ConfigError, match="csv"):
        load_file(write(tmp_path / "d.npz", {"X": X, "y": Y}), label_column="y")


@pytest.mark.parametrize(
    ("X", "Y", "fragment"),
    [
        (np.ones(3), np.ones((1, 3)), "X must be a 2-D array"),
        (np.ones((2, 3)), np.ones(3), "Y must be a 2-D array"),
        (np.ones((2, 3)), np.ones((1, 4)), "expected (1, 3)"),
        (np.ones((0, 3)), np.ones((1, 3)), "empty"),
        (np.array([["a", "b"]]), np.ones((1, 2)), "dtype"),
        (np.ones((2, 2)), np.array([[0.0, np.nan]]), "labels are {0, nan}"),
    ],
)
def test_validate_xy(X, Y, fragment):
    with pytest.raises(DataError, match="^mydata: ") as info:
        validate_xy(X, Y, "mydata")
    assert fragment in str(info.value)


def test_validate_xy_accepts_good_data_and_checks_classes_on_request():
    X, Y = toy()
    validate_xy(X, Y, "ok", both_classes=True)
    validate_xy(X, np.ones_like(Y), "one class is fine for a dev set")
    with pytest.raises(DataError, match="only one class"):
        validate_xy(X, np.ones_like(Y), "train", both_classes=True)


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


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"ratios": (0.6, 0.3, 0.3)}, ConfigError, "summing to 1"),
        ({"ratios": (1.2, -0.1, -0.1)}, ConfigError, "each >= 0"),
        ({"ratios": (0.0, 0.5, 0.5)}, ConfigError, "train > 0"),
        ({"ratios": (0.5, 0.5)}, ConfigError, "(train, dev, test)"),
        ({"ratios": (0.9, 0.09, 0.01)}, DataError, "test split would be empty: ratio 0.01 of 20"),
        ({"dev_size": 5}, ConfigError, "test_size is None"),
        ({"dev_size": 10, "test_size": 10}, DataError, "leave no training example out of 20"),
        ({"dev_size": -1, "test_size": 2}, ConfigError, "dev_size is -1"),
    ],
)
def test_split_rejects_bad_requests(kwargs, error, fragment):
    X, Y = toy(m=20)
    with pytest.raises(error) as info:
        split(X, Y, **kwargs)
    assert fragment in str(info.value)


def test_split_needs_both_classes_in_train():
    X, Y = toy(m=10)
    with pytest.raises(DataError, match="only one class"):
        split(X, np.zeros_like(Y))
    Y = np.zeros((1, 10))
    Y[0, 0] = 1
    with pytest.raises(DataError, match="train split has only one class"):
        split(X, Y, dev_size=5, test_size=4, stratify=False)


def test_from_heldout_uses_the_heldout_part_as_dev_and_test():
    X, Y = toy(m=30)
    X_val, Y_val = toy(m=10, seed=2)
    s = from_heldout(X, Y, X_val, Y_val)
    assert s.X_dev is s.X_test is X_val and s.Y_dev is s.Y_test is Y_val
    assert s.X_train is X
    with pytest.raises(DataError, match="held-out data has 2 features but train has 3"):
        from_heldout(X, Y, X_val[:2], Y_val)


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
    np.testing.assert_allclose(normalized.X_train.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(normalized.X_train.std(axis=1), 1)
    np.testing.assert_allclose(stats.mean, splits.X_train.mean(axis=1, keepdims=True))
    np.testing.assert_allclose(normalized.X_dev, (splits.X_dev - stats.mean) / stats.std)
    assert (np.abs(normalized.X_dev.mean(axis=1)) > 0.3).all()  # not forced to zero
    assert normalized.Y_dev is splits.Y_dev


def test_constant_feature_gets_unit_std():
    X = np.vstack([np.full(10, 7.0), np.arange(10.0)])
    stats = fit_normalizer(X)
    assert stats.std[0, 0] == 1.0
    Xn = apply_normalizer(stats, X)
    assert np.isfinite(Xn).all() and np.allclose(Xn[0], 0)


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


def test_normalizer_errors(tmp_path):
    stats = fit_normalizer(np.ones((2, 5)))
    with pytest.raises(DataError, match="fitted on 2 features"):
        apply_normalizer(stats, np.ones((3, 5)))
    with pytest.raises(DataError, match="no key 'std'"):
        NormStats.from_dict({"mean": [0.0]})
    with pytest.raises(DataError, match="std > 0"):
        NormStats.from_dict({"mean": [0.0], "std": [0.0]})
    with pytest.raises(DataError, match="does not exist"):
        NormStats.load_npz(tmp_path / "absent.npz")
    with pytest.raises(DataError, match="cannot fit"):
        fit_normalizer(np.array([[1.0, np.nan]]))


# --- load_dataset -----------------------------------------------------------------------------


def test_load_dataset_unknown_name_lists_allowed():
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    assert "'mnist'" in str(info.value)
    assert all(name in str(info.value) for name in DATASET_NAMES)


@pytest.mark.parametrize("name", ["circles", "moons", "blobs", "spiral"])
def test_load_dataset_generated_is_split_and_fingerprinted(name):
    splits, fingerprint = load_dataset(name, n_samples=100, seed=3)
    assert splits.sizes() == {"train": 60, "dev": 20, "test": 20}
    assert len(fingerprint) == 64
    assert load_dataset(name, n_samples=100, seed=3)[1] == fingerprint
    assert load_dataset(name, n_samples=100, seed=4)[1] != fingerprint


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


def test_load_dataset_football_like_keeps_its_heldout_part():
    splits, _ = load_dataset("football_like", seed=2)
    assert splits.sizes() == {"train": 211, "dev": 200, "test": 200}
    np.testing.assert_array_equal(splits.X_dev, football_like(2)[2])


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


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "file"},
        {"name": "moons", "path": "x.mat"},
        {"name": "file", "path": "x.mat", "n_samples": 10},
        {"name": "blobs", "course_compat": True},
    ],
)
def test_load_dataset_rejects_inconsistent_arguments(kwargs):
    with pytest.raises(ConfigError):
        load_dataset(**kwargs)


def test_core_imports_no_heavy_tools():
    code = (
        "import sys, dlpractice.data, dlpractice.diagnose; "
        "print(sorted(m for m in ('sklearn', 'pandas', 'matplotlib', 'hydra', 'mlflow', 'dvc') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
