"""Workloads: what the platform runs (the MLflow server, the inference service). Each may
use ``components.services`` and ``components.foundation``, never the reverse."""
