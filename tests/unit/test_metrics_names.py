"""Metric names and params come from promptopt.evaluation.names, without the scoring code."""

from __future__ import annotations

import subprocess
import sys

from promptopt.evaluation import METRIC_NAMES, METRICS, MODEL_METRICS
from promptopt.evaluation.names import DETERMINISTIC_METRICS, MODEL_METRIC_NAMES, PARAMS


def test_names_match_the_registry() -> None:
    assert tuple(METRICS) == DETERMINISTIC_METRICS
    assert tuple(MODEL_METRICS) == MODEL_METRIC_NAMES
    assert set(PARAMS) == set(METRIC_NAMES)
    assert {name: m.params for name, m in MODEL_METRICS.items()} == {n: PARAMS[n] for n in MODEL_METRIC_NAMES}


def test_request_models_do_not_import_the_metrics() -> None:
    code = (
        "import sys\n"
        "import promptopt.batch.listing, promptopt.experiments.models, promptopt.evaluation.models\n"
        "from promptopt.evaluation.models import MetricRequest\n"
        "MetricRequest(name='regex', params={'pattern': 'a'})\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert not loaded & {
        "promptopt.evaluation.metrics",
        "promptopt.evaluation.embedding",
        "promptopt.evaluation.judge",
        "promptopt.evaluation.model_calls",
        "promptopt.llm.registry",
    }
