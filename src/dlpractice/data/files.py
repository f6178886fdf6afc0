"""Load a dataset from a file (.mat, .npz, .csv) and validate it into course orientation.

Every problem is a one-line ``DataError`` naming the file, what was wrong, the value seen and what
is allowed: these messages end up on the command line of a DVC stage or a Hydra run. Owns: reading
and validating. Must not touch: splitting, normalizing, writing files.
"""

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from dlpractice.errors import ConfigError, DataError, one_line

EXTENSIONS = (".csv", ".mat", ".npz")


@dataclass(frozen=True, eq=False)
class LoadedData:
    """A file's arrays in course orientation; ``X_val``/``Y_val`` are None without a held-out part.

    ``fingerprint`` is the sha256 of the file's bytes, so a run can record exactly what it read.
    """

    X: np.ndarray
    Y: np.ndarray
    X_val: np.ndarray | None
    Y_val: np.ndarray | None
    source: Path
    fingerprint: str

    @property
    def has_heldout(self) -> bool:
        return self.X_val is not None


def validate_xy(X: np.ndarray, Y: np.ndarray, name: str, *, both_classes: bool = False) -> None:
    """Check course-orientation data: X (n, m), Y (1, m), m > 0, all finite, labels in {0, 1}.

    ``both_classes`` is for training data: a set with one class cannot teach a classifier.
    """
    for label, a in (("X", X), ("Y", Y)):
        if not isinstance(a, np.ndarray) or a.ndim != 2:
            seen = a.shape if isinstance(a, np.ndarray) else type(a).__name__
            raise DataError(f"{name}: {label} must be a 2-D array; got {seen}")
        if a.dtype.kind not in "biuf":
            raise DataError(f"{name}: {label} has dtype {a.dtype}; allowed: numbers")
    n, m = X.shape
    if n == 0 or m == 0:
        raise DataError(
            f"{name}: X has shape {X.shape} (empty); need at least one feature and one example"
        )
    if Y.shape != (1, m):
        raise DataError(f"{name}: Y has shape {Y.shape}; expected (1, {m}) to match X {X.shape}")
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(
            f"{name}: X has {int(bad.sum())} nan/inf value(s), first {X[i, j]} at feature {i}, "
            f"example {j}; all values must be finite"
        )
    labels = np.unique(Y)
    if not np.isin(labels, (0, 1)).all():
        shown = ", ".join(f"{v:g}" for v in labels[:6]) + (", ..." if labels.size > 6 else "")
        raise DataError(f"{name}: labels are {{{shown}}}; allowed: 0 and 1")
    if both_classes and labels.size < 2:
        raise DataError(
            f"{name}: only one class ({labels[0]:g}) among {m} examples; training needs 0 and 1"
        )


def load_file(path: str | Path, *, label_column: str | int | None = None) -> LoadedData:
    """Keys X, y (and optionally Xval, yval) of a .mat/.npz, or a .csv table, in course orientation.

    Arrays may be stored (m, n) or (n, m): the side matching the label count is m (rows when both
    do). A .csv has one example per row, an optional header, the label last or in ``label_column``.
    """
    path = Path(path)
    where = f"data file '{path}'"
    if not path.exists():
        raise DataError(f"{where} does not exist")
    if not path.is_file():
        raise DataError(f"{where} is not a file")
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise DataError(f"{where} has extension '{suffix}'; allowed: {', '.join(EXTENSIONS)}")
    if label_column is not None and suffix != ".csv":
        raise ConfigError(f"label_column={label_column!r} applies to .csv files only, not {where}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{where} cannot be read: {exc.strerror}") from exc
    if suffix == ".csv":
        arrays = _read_csv(raw, where, label_column)
    else:
        arrays = _read_archive(raw, where, suffix)
    X, Y = _orient(_require(arrays, "X", where), _require(arrays, "y", where), f"{where} X/y")
    validate_xy(X, Y, where, both_classes=True)
    X_val = Y_val = None
    if "Xval" in arrays or "yval" in arrays:
        X_val, Y_val = _orient(
            _require(arrays, "Xval", where), _require(arrays, "yval", where),
            f"{where} Xval/yval",
        )
        if X_val.shape[0] != X.shape[0]:
            raise DataError(
                f"{where}: Xval has {X_val.shape[0]} features but X has {X.shape[0]}; "
                "the held-out part needs the same features"
            )
        validate_xy(X_val, Y_val, f"{where} held-out part")
    return LoadedData(X, Y, X_val, Y_val, path, hashlib.sha256(raw).hexdigest())


def stored_sizes(path: str | Path) -> tuple[int, int, int]:
    """(features, examples, held-out examples) of a data file, from its arrays' headers (.npz,
    .mat) or by counting rows (.csv) — nothing is loaded. ValueError or OSError when they cannot
    be read that way (:func:`load_file` then says what is wrong)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_sizes(path)
    if suffix == ".npz":
        shapes = _npz_shapes(path)
    elif suffix == ".mat":
        shapes = {name: tuple(shape) for name, shape, _ in scipy.io.whosmat(str(path))}
    else:
        raise ValueError(f"extension {suffix!r}")
    n, m = _sizes(shapes["X"], shapes["y"])
    held = _sizes(shapes["Xval"], shapes["yval"])[1] if "Xval" in shapes and "yval" in shapes else 0
    return n, m, held


def _sizes(X: tuple[int, ...], y: tuple[int, ...]) -> tuple[int, int]:
    """(features, examples) of arrays of these shapes, oriented as :func:`_orient` does."""
    m = int(np.prod(y))
    if len(X) == 1:
        return 1, m
    return (int(X[1]), m) if X[0] == m else (int(X[0]), m)


def _npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    import zipfile

    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shapes[name.removesuffix(".npy")] = read(f)[0]
    return shapes


def _csv_sizes(path: Path) -> tuple[int, int, int]:
    """(features, rows, 0) of a .csv: the first line's columns less the label, the lines (a header
    counts as a row: an estimate)."""
    rows, first = 0, b""
    with path.open("rb") as f:
        first = f.readline()
        rows = int(bool(first.strip()))
        for block in iter(lambda: f.read(1 << 20), b""):
            rows += block.count(b"\n")
    return max(first.count(b","), 1), rows, 0


def _read_archive(raw: bytes, where: str, suffix: str) -> dict[str, np.ndarray]:
    # The readers raise many unrelated types on a corrupt file (ValueError, OSError, zipfile's,
    # scipy's MatReadError...); all of them mean the same thing to the user.
    try:
        if suffix == ".mat":
            content = scipy.io.loadmat(io.BytesIO(raw))
            return {k: v for k, v in content.items() if not k.startswith("__")}
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except Exception as exc:
        kind = "a MATLAB .mat" if suffix == ".mat" else "an .npz"
        raise DataError(f"{where} cannot be read as {kind} file: {one_line(exc)}") from exc


def _read_csv(raw: bytes, where: str, label_column: str | int | None) -> dict[str, np.ndarray]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text (byte {exc.start})") from exc
    reader = csv.reader(io.StringIO(text))
    rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    header = None
    if rows and any(cell.strip() and not _is_number(cell) for cell in rows[0][1]):
        header = [cell.strip() for cell in rows.pop(0)[1]]
    if not rows:
        raise DataError(f"{where} has no data rows (empty)")
    width = len(header) if header else len(rows[0][1])
    if width < 2:
        raise DataError(f"{where} has {width} column; need feature column(s) and a label column")
    values = []
    for line, row in rows:
        if len(row) != width:
            raise DataError(f"{where} line {line} has {len(row)} columns; expected {width}")
        try:
            values.append([float(cell) for cell in row])
        except ValueError:
            c, cell = next((c, cell) for c, cell in enumerate(row) if not _is_number(cell))
            raise DataError(
                f"{where} line {line} column {c + 1} is {cell.strip()!r}; allowed: a number"
            ) from None
    table = np.array(values)
    col = _label_index(label_column, header, width, where)
    return {"X": np.delete(table, col, axis=1), "y": table[:, col]}


def _label_index(label_column: str | int | None, header: list[str] | None, width: int,
                 where: str) -> int:
    if label_column is None:
        return width - 1
    if isinstance(label_column, str):
        if header is None:
            raise DataError(
                f"{where} has no header row, so label column {label_column!r} cannot be found; "
                "add a header or give the column index"
            )
        if label_column not in header:
            raise DataError(
                f"{where} has no column {label_column!r} (columns: {', '.join(header)})"
            )
        return header.index(label_column)
    if not -width <= label_column < width:
        raise DataError(
            f"{where} has {width} columns; label_column={label_column} is out of range"
        )
    return label_column % width


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _require(arrays: dict[str, np.ndarray], key: str, where: str) -> np.ndarray:
    if key not in arrays:
        raise DataError(f"{where} has no key '{key}' (keys: {', '.join(sorted(arrays)) or 'none'})")
    return arrays[key]


def _orient(X: np.ndarray, y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Turn stored X, y into course orientation X (n, m), Y (1, m) float64.

    The label count m decides the orientation; when both sides of X equal m, rows are examples.
    """
    X, y = np.asarray(X), np.asarray(y)
    for label, a in (("X", X), ("labels", y)):
        if a.dtype.kind not in "biuf":
            raise DataError(f"{where}: {label} have dtype {a.dtype}; allowed: numbers")
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise DataError(f"{where}: labels have shape {y.shape}; allowed: (m,), (m, 1) or (1, m)")
    m = y.size
    if m == 0:
        raise DataError(f"{where}: labels are empty (0 examples); need at least one example")
    if X.ndim == 1:
        X = X.reshape(1, -1)  # a single feature stored flat
    if X.ndim != 2:
        raise DataError(f"{where}: X has shape {X.shape}; allowed: (m, n) or (n, m)")
    if X.shape[0] == m:
        X = X.T
    elif X.shape[1] != m:
        raise DataError(f"{where}: X has shape {X.shape} but there are {m} labels; "
                        f"X needs {m} rows or {m} columns")
    return np.ascontiguousarray(X, dtype=np.float64), y.reshape(1, m).astype(np.float64)
