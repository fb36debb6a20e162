"""The README's library tour must run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    pos = namespace["pos"]
    assert pos.grad is not None and pos.grad.shape == pos.shape and bool(pos.grad.ne(0).any())
    assert 0.0 <= namespace["roc_auc"](namespace["scores"].detach(), namespace["labels"]) <= 1.0


def test_readme_names_the_ci_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    cmd = 'python -m pip install -c constraints.txt -e ".[test]" && python -m pytest -q'
    assert cmd in README.read_text() and cmd in ci
