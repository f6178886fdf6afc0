"""``hydra/launcher=vectorized``: a Hydra launcher that trains a sweep's networks in stacked passes.

Hydra imports (and executes) every module of the ``hydra_plugins`` namespace when an app starts:
``config.py`` registers the config node; the launcher (numpy, MLflow, …) loads only when a sweep
uses it. Nothing is imported here, so that the config class is defined once (a second definition
would not pickle for the launcher's worker processes).
"""
