"""The shared names live in canary_common.contracts: the code defines exactly those metrics, and the
YAML and JSON files (Prometheus rules, analysis files, dashboards) and docs/contracts.md name
nothing else."""

from __future__ import annotations

import re

import pytest
import yaml
from prometheus_client import Counter
from prometheus_client.metrics import MetricWrapperBase

from canary_common import contracts as c
from support.procs import ROOT

METRIC_TOKEN = re.compile(r"\b[a-z_]*:?(?:canary_router|canary_controller|model_server)_[a-z0-9_]*(?::[a-z0-9_]+)?")
SUFFIXES = ("_bucket", "_count", "_sum")
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
FILES_THAT_NAME_METRICS = [
    *RULE_FILES,
    *sorted((ROOT / "prometheus" / "tests").glob("*.yml")),
    *sorted((ROOT / "controller").glob("analysis*.yaml")),
    *sorted((ROOT / "grafana" / "dashboards").glob("*.json")),
    ROOT / "docs" / "contracts.md",
    ROOT / "docs" / "scaling.md",
    ROOT / "README.md",
]


def _defined_metrics() -> dict[str, str]:
    """Every metric object the router, the model servers and the controller define: name -> module."""
    import canary_controller.notify  # noqa: F401  (its metric lives in telemetry)
    import canary_controller.telemetry
    import canary_router.metrics
    import model_server.metrics

    found = {}
    for module in (canary_router.metrics, model_server.metrics, canary_controller.telemetry):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                # prometheus_client keeps a counter's name without its _total suffix
                name = value._name + ("_total" if isinstance(value, Counter) else "")
                found[name] = module.__name__
    return found


def test_the_code_defines_exactly_the_contract_metrics():
    defined = _defined_metrics()
    assert set(defined) == set(c.METRICS), set(defined) ^ set(c.METRICS)


def _recorded_names() -> set[str]:
    names = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def _known(token: str, recorded: set[str]) -> bool:
    if ":" in token:  # a recording rule's name: level:metric:operations
        return token in recorded
    if token.endswith("_"):  # a family named by its prefix in prose
        return any(m.startswith(token) for m in c.METRICS)
    base = next((token[: -len(s)] for s in SUFFIXES if token.endswith(s)), token)
    return token in c.METRICS or base in c.METRICS


@pytest.mark.parametrize("path", FILES_THAT_NAME_METRICS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_metric_a_file_names_is_a_contract_metric_or_a_recorded_one(path):
    recorded = _recorded_names()
    unknown = sorted({t for t in METRIC_TOKEN.findall(path.read_text()) if not _known(t, recorded)})
    assert not unknown, f"{path.relative_to(ROOT)} names metrics that canary_common.contracts does not: {unknown}"


def test_docs_contracts_describes_every_shared_name():
    text = (ROOT / "docs" / "contracts.md").read_text()
    missing = [name for name in (*c.METRICS, *c.TAGS, *c.HEADERS, *c.ARMS) if name not in text]
    assert not missing, f"docs/contracts.md does not describe {missing}"


def test_the_analysis_files_read_the_routers_labels():
    for path in sorted((ROOT / "controller").glob("analysis*.yaml")):
        counters = yaml.safe_load(path.read_text()).get("counters", {})
        for selector in counters.values():
            for label in re.findall(r"([a-z_]+)=", selector):
                assert label in (c.STATUS_LABEL, c.OUTCOME_LABEL, "le"), (path.name, selector)


def test_canaryctl_mirrors_the_arms():
    """canaryctl installs on its own (pip, without canary_common), so it keeps a copy: checked here."""
    from canaryctl import render

    assert render.ARMS == c.ARMS
