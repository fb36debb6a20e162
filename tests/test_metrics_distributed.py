"""Two gloo processes: the class forms gather uneven shards and equal the single-process values exactly."""

from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rankguard.distributed import gather_uneven
from rankguard.metrics import AUROC, AveragePrecision, PartialAUC, RetrievalMAP, RetrievalNDCG


def data():
    g = torch.Generator().manual_seed(0)
    n = 301
    preds = torch.randint(0, 20, (n,), generator=g).to(torch.float32)  # ties across the shards too
    target = torch.rand(n, generator=g) < 0.3
    indexes = torch.randint(0, 13, (n,), generator=g)
    return preds, target, indexes


def metrics():
    return {"auroc": AUROC(), "ap": AveragePrecision(), "pauc": PartialAUC(max_fpr=0.4),
            "ndcg": RetrievalNDCG(5), "map": RetrievalMAP()}


def _worker(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        preds, target, indexes = data()
        cut = 100  # uneven shards: rank 0 gets 100 samples (in two batches), rank 1 gets 201
        lo, hi = (0, cut) if rank == 0 else (cut, preds.numel())
        ms = metrics()
        for m in ms.values():
            for a in range(lo, hi, 60):
                b = min(a + 60, hi)
                m.update(preds[a:b], target[a:b], indexes[a:b]) if "Retrieval" in type(m).__name__ \
                    else m.update(preds[a:b], target[a:b])
        values = {name: m.compute() for name, m in ms.items()}
        gathered = gather_uneven(torch.arange(3) if rank == 0 else None, like=torch.empty(0, dtype=torch.int64))
        values["gathered"] = gathered.tolist()
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump(values, f)
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_equals_single_process(tmp_path):
    init = f"file://{tmp_path / 'init'}"
    mp.spawn(_worker, args=(init, str(tmp_path)), nprocs=2, join=True)
    preds, target, indexes = data()
    want = {}
    for name, m in metrics().items():
        m.update(preds, target, indexes) if "Retrieval" in type(m).__name__ else m.update(preds, target)
        want[name] = m.compute()
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got.pop("gathered") == [0, 1, 2]  # rank 1 contributed nothing, no padding left over
        assert got == want  # exactly: one computation on the union, not an average
