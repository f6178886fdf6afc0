"""The README's Python API example runs as written and prints the right numbers."""

import re
from pathlib import Path

from tests import reference as ref

README = Path(__file__).resolve().parents[1] / "README.md"
# The basic recipe's first advice for each diagnosis (the lecture's order: bias first).
FIRST_ADVICE = {"high_bias": "bigger network", "high_bias_high_variance": "bigger network",
                "high_variance": "more data", "good_fit": "done"}


def test_readme_python_api_example_prints_what_it_computed(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    example = next(b for b in blocks if "load_dataset" in b)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3, lines

    splits, result = namespace["splits"], namespace["result"]
    train_acc = ref.accuracy(result.parameters, splits.X_train, splits.Y_train)
    dev_acc = ref.accuracy(result.parameters, splits.X_dev, splits.Y_dev)
    costs = [float(c) for c in re.findall(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?",
                                          lines[0].split("]")[0])]
    assert len(costs) == 6  # every 500 of 3000 iterations
    assert lines[0].split("]")[1].split() == [repr(train_acc), repr(dev_acc)]
    assert costs == result.costs and costs[0] > costs[-1]
    # training went on after the last record: the final parameters' cost is lower still
    assert ref.cost(result.parameters, splits.X_train, splits.Y_train, lambd=0.1) < costs[-1]

    label, _, _ = ref.diagnosis(1 - train_acc, 1 - dev_acc)
    assert lines[1].startswith(FIRST_ADVICE[label]), (label, lines[1])
    assert lines[2].startswith("gradient check passed: difference "), lines[2]
    difference = float(lines[2].split("difference ")[1].split()[0].rstrip(",;"))
    assert 0 <= difference < 2e-7
