"""rankguard: robust ranking learning on PyTorch.

Layout (data -> model -> scores -> loss/metric -> report):

- :mod:`rankguard.functional` -- pure tensor functions (exact all-pairs engine).
- :mod:`rankguard.losses`     -- ``nn.Module`` wrappers holding state (AUC, AP/SOAP, ...).
- :mod:`rankguard.metrics`    -- one definition per metric (AUC, AP, pAUC, top-K, q-values).
- :mod:`rankguard.data`       -- dataset registry and the data-directory setting.
- :mod:`rankguard.recsys`     -- interaction data, splits, evaluator, models, trainer.
- :mod:`rankguard.cli`        -- the ``rankguard`` command.
"""

__version__ = "0.1.0"
