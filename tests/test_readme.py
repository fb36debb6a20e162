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


def test_readme_sampler_example_is_one_class_plus_one_registry_line_that_works():
    import numpy as np
    import scipy.sparse as sp

    from rankguard.registry import Registry

    block = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "TailSampler" in b)
    registry = Registry("sampler")
    namespace: dict = {"SAMPLERS": registry}   # a private registry: the test leaves the real one alone
    exec(compile(block, str(README), "exec"), namespace)
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
    sampler = registry.get("tails")(train, np.random.default_rng(0), n_negatives=4000)
    neg = sampler.sample(np.array([0]), np.array([0]))
    assert not np.isin(neg, [0, 1]).any()                       # never a training positive of user 0
    q = sampler.negative_distribution(np.array([1]))[0]       # item 1 (popularity 1) vs the unseen 2, 3, 4
    np.testing.assert_allclose(q, np.array([0, 0.5, 1, 1, 1]) / 3.5)
