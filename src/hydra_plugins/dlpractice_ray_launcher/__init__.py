"""``hydra/launcher=ray``: a Hydra launcher that runs each job of a sweep as one task on a running
Ray cluster, through Ray's public API only.

Hydra imports (and executes) every module of the ``hydra_plugins`` namespace when an app starts:
``config.py`` registers the config node; the launcher and Ray load only when a sweep uses it.
"""
