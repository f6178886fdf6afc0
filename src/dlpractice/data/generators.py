"""Toy 2-D datasets of the course, in course orientation: X (2, m), Y (1, m), both float64.

By default everything is drawn from ``np.random.default_rng(seed)``. ``course_compat=True`` (and
``course_circles``/``course_planar``) reproduce the course's exact arrays from numpy's *global*
RandomState seeded as its helper files do, then restore the caller's global state.
scikit-learn is imported inside the functions that need it, to keep the core light.
Owns: the generators. Must not touch: splitting, files.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Real

import numpy as np

from dlpractice.errors import ConfigError, DataError

# name -> (default n_samples, default noise), noise being the std of the points' jitter (circles,
# moons), of the clusters (blobs), of angle and radius (spiral), of the labels (football_like)
DEFAULTS: dict[str, tuple[int, float]] = {
    "circles": (300, 0.05),  # course init_utils.load_dataset
    "moons": (300, 0.2),  # course planar_utils.load_extra_datasets
    "blobs": (300, 1.0),  # sklearn's default cluster_std
    "spiral": (400, 0.2),  # course planar_utils.load_planar_dataset ("flower")
    "football_like": (211, 0.1),  # size of the course's football.mat training part
}
GENERATOR_NAMES: tuple[str, ...] = tuple(DEFAULTS)
COURSE_NAMES: tuple[str, ...] = ("circles", "spiral")
FOOTBALL_VAL_SIZE = 200  # size of football.mat's held-out part (Xval)


def generate(
    name: str,
    n_samples: int | None = None,
    noise: float | None = None,
    seed: int = 0,
    course_compat: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a toy dataset; ``n_samples``/``noise`` default per dataset (see ``DEFAULTS``).

    With ``course_compat=True`` the course's own training arrays come back (see
    ``course_dataset``); ``seed`` is then not used.
    """
    if name not in DEFAULTS:
        raise DataError(f"unknown generated dataset '{name}' (allowed: {', '.join(DEFAULTS)})")
    if course_compat:
        return course_dataset(name, n_samples, noise)[:2]
    m, noise = _check_size_noise(name, n_samples, noise)
    rng = np.random.default_rng(_check_seed(seed))
    if name == "spiral":
        return _flower(rng.standard_normal, m, noise)
    if name == "football_like":
        return _football_points(rng, m, noise)
    return _sklearn_toy(name, m, noise, random_state=int(rng.integers(2**31)))


def course_circles() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exactly the course's ``init_utils.load_dataset``: 300 train and 100 test circles.

    The course calls ``make_circles`` without ``random_state``, so sklearn draws from numpy's
    global RandomState, seeded 1 for train and 2 for test; we keep that on purpose.
    """
    from sklearn.datasets import make_circles

    with _global_seed(1):
        train_X, train_Y = make_circles(n_samples=300, noise=0.05)
    with _global_seed(2):
        test_X, test_Y = make_circles(n_samples=100, noise=0.05)
    return (*_course_orientation(train_X, train_Y), *_course_orientation(test_X, test_Y))


def course_planar() -> tuple[np.ndarray, np.ndarray]:
    """Exactly the course's ``planar_utils.load_planar_dataset``: the 400-point "flower"."""
    with _global_seed(1):
        return _flower(np.random.randn, 400, 0.2)


def football_like(
    seed: int = 0,
    *,
    n_train: int | None = None,
    n_val: int = FOOTBALL_VAL_SIZE,
    noise: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stand-in for the course's football.mat: train (2, 211) plus a held-out part (2, 200).

    The train part equals ``generate("football_like", n_train, noise, seed)``; the held-out part
    is drawn next from the same generator, so both come from one distribution.
    """
    n_train, noise = _check_size_noise("football_like", n_train, noise)
    n_val = _check_count("n_val for 'football_like'", n_val)
    rng = np.random.default_rng(_check_seed(seed))
    return (*_football_points(rng, n_train, noise), *_football_points(rng, n_val, noise))


def course_dataset(
    name: str, n_samples: int | None = None, noise: float | None = None
) -> tuple[np.ndarray, ...]:
    """The course's exact data for ``name``: circles -> ``course_circles()`` (train and test),
    spiral -> ``course_planar()`` (train only).

    Size, noise and seed are the course's, so ``n_samples``/``noise`` must stay None.
    """
    if name not in COURSE_NAMES:
        raise ConfigError(
            f"course_compat=True has no course version of '{name}' "
            f"(allowed: {', '.join(COURSE_NAMES)})"
        )
    if n_samples is not None or noise is not None:
        raise ConfigError(
            f"course_compat=True fixes n_samples and noise for '{name}' (course: n_samples="
            f"{DEFAULTS[name][0]}, noise={DEFAULTS[name][1]}); got n_samples={n_samples}, "
            f"noise={noise}, allowed: None"
        )
    return course_circles() if name == "circles" else course_planar()


def _check_size_noise(name: str, n_samples: int | None, noise: float | None) -> tuple[int, float]:
    default_m, default_noise = DEFAULTS[name]
    m = _check_count(f"n_samples for '{name}'", default_m if n_samples is None else n_samples)
    noise = default_noise if noise is None else noise
    # football_like: a label jitter as wide as the field leaves nothing to learn.
    top = 1.0 if name == "football_like" else np.inf
    if isinstance(noise, bool) or not isinstance(noise, Real) or not 0 <= noise <= top:
        raise ConfigError(f"noise for '{name}' is {noise!r}; allowed: a number in [0, {top}]")
    return m, float(noise)


def _check_count(label: str, value: int) -> int:
    """At least two examples, so that both classes can appear."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 2:
        raise ConfigError(f"{label} is {value!r}; allowed: an integer >= 2")
    return int(value)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed is {seed!r}; allowed: an integer >= 0")
    return int(seed)


@contextmanager
def _global_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global RandomState as the course does, then put the caller's state back."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def _course_orientation(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's (m, n) / (m,) to the course's (n, m) / (1, m), as float64."""
    return np.ascontiguousarray(X.T, dtype=np.float64), y.reshape(1, -1).astype(np.float64)


def _sklearn_toy(
    name: str, m: int, noise: float, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_blobs, make_circles, make_moons

    if name == "circles":
        X, y = make_circles(n_samples=m, noise=noise, random_state=random_state)
    elif name == "moons":
        X, y = make_moons(n_samples=m, noise=noise, random_state=random_state)
    else:
        # Like the course's extra "blobs": six clusters, labelled by parity, so the two classes
        # are not linearly separable.
        X, y = make_blobs(
            n_samples=m, centers=6, n_features=2, cluster_std=noise, random_state=random_state
        )
        y = y % 2
    return _course_orientation(X, y)


def _flower(
    randn: Callable[[int], np.ndarray], m: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """The course's planar "flower": two classes of petals, r = 4 sin(4t) plus jitter.

    ``randn`` is the normal source, so the course version (np.random.randn) and the seeded one
    (Generator.standard_normal) share the exact sequence of draws.
    """
    X = np.zeros((m, 2))
    Y = np.zeros((m, 1))
    a = 4  # maximum ray of the flower
    bounds = (0, m // 2, m)
    for j in range(2):
        ix = range(bounds[j], bounds[j + 1])
        n = len(ix)
        t = np.linspace(j * 3.12, (j + 1) * 3.12, n) + randn(n) * noise  # theta
        r = a * np.sin(4 * t) + randn(n) * noise  # radius
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = j
    return X.T, Y.T


def _football_points(
    rng: np.random.Generator, m: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points like football.mat's: class 1 upper-left of a wavy diagonal, class 0 lower-right.

    Labels are jittered across the boundary (std ``noise``) and a fraction ``noise / 5`` flipped
    anywhere, so that, as on the real file, a 2-20-3-1 net overfits a little and L2/dropout help.
    """
    X = np.vstack([rng.uniform(-0.75, 0.6, m), rng.uniform(-0.8, 0.8, m)])
    boundary = 1.1 * X[0] + 0.15 + 0.05 * np.sin(12 * X[0])
    Y = (X[1] + noise * rng.standard_normal(m) > boundary).astype(np.float64)
    flipped = rng.random(m) < noise / 5
    Y[flipped] = 1 - Y[flipped]
    return X, Y.reshape(1, -1)
