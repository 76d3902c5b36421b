"""The analysis configuration: defaults, the shipped files, and messages naming the field."""

from pathlib import Path

import pytest

from canary_controller.analysis import ConfigError, SequentialAnalysis, ThresholdAnalysis, build_analysis, load_config
from canary_controller.analysis.config import DEFAULT_COUNTERS

CONTROLLER = Path(__file__).resolve().parents[2] / "controller"


def test_defaults_follow_the_design():
    cfg = load_config(None)
    assert cfg.mode == "sequential"
    assert cfg.steps == (5, 10, 20, 50)
    assert (cfg.min_dwell_s, cfg.max_stage_s, cfg.on_inconclusive) == (60, 1800, "rollback")
    assert (cfg.alpha_rollback, cfg.alpha_step, cfg.alpha_promote, cfg.burn_in) == (0.05, 0.05, 0.01, 30)
    assert cfg.outage_fallback_s == 600
    assert [m.kind for m in cfg.metrics] == ["accuracy", "availability", "latency"]
    assert [m.weight for m in cfg.metrics] == pytest.approx([1 / 3] * 3)
    acc, avail, lat = cfg.metrics
    assert (acc.margin, acc.tau_rollback, acc.tau_promote, acc.tau_change) == (0.02, 0.05, 0.02, 0.1)
    assert (avail.margin, avail.tau_rollback, avail.tau_promote, avail.tau_change) == ("auto",) * 4
    # The latency SLO margin is 2 points, like accuracy's.
    assert (lat.margin, lat.tau_rollback, lat.tau_promote, lat.tau_change) == (0.02, 0.03, 0.02, 0.06)
    cd = cfg.change_detection
    assert (cd.enabled, cd.alpha_share, cd.start_interval_s, cd.max_starts) == (True, 0.5, 15, 64)
    assert cfg.counters == DEFAULT_COUNTERS
    assert cfg.counters["latency_fast"].endswith('{le="0.1"}')
    assert cfg.guards.error_burst.k == 100 and cfg.guards.restarts.max == 0
    assert cfg.threshold.accuracy_threshold == 85 and cfg.threshold.window_s is None


def test_reference_file_is_the_defaults():
    assert load_config(CONTROLLER / "analysis.yaml") == load_config(None)


def test_threshold_file_loads():
    cfg = load_config(str(CONTROLLER / "analysis-threshold.yaml"))
    assert cfg.mode == "threshold"
    assert isinstance(build_analysis(cfg), ThresholdAnalysis)
    assert isinstance(build_analysis(None), SequentialAnalysis)


def test_partial_weights_share_the_rest():
    cfg = load_config({"metrics": [{"kind": "accuracy", "weight": 0.5}, {"kind": "availability"}, {"kind": "latency"}]})
    assert [m.weight for m in cfg.metrics] == pytest.approx([0.5, 0.25, 0.25])
    assert cfg.metrics[0].name == "accuracy"  # name defaults to the kind


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"metrics": [{"kind": "accuracy"}, {"kind": "latency", "margin": -0.1}]},
            "metrics[1].margin: must be > 0, got -0.1",
        ),
        ({"stepz": [1]}, "stepz: unknown key"),
        ({"metrics": [{"kind": "accuracy", "marign": 0.1}]}, "metrics[0].marign: unknown key"),
        ({"steps": [5, 20, 10]}, "steps[2]: must be strictly increasing, got 10 after 20"),
        ({"steps": [5, 120]}, "steps[1]: must be <= 100, got 120"),
        ({"steps": []}, "steps: must be a non-empty list"),
        ({"mode": "magic"}, "mode: must be one of sequential, threshold"),
        (
            {"metrics": [{"kind": "accuracy", "weight": 0.5}, {"kind": "latency", "weight": 0.2}]},
            "metrics: weights must sum to 1",
        ),
        ({"metrics": [{"kind": "accuracy", "weight": 1.0}, {"kind": "latency"}]}, "metrics[1].weight: nothing left"),
        ({"metrics": [{"kind": "accuracy", "margin": "auto"}]}, 'metrics[0].margin: "auto" is only for availability'),
        ({"metrics": [{"kind": "speed"}]}, "metrics[0].kind: must be one of accuracy, availability, latency"),
        ({"metrics": [{"kind": "accuracy"}, {"kind": "accuracy"}]}, "metrics[1].name: duplicate"),
        ({"guards": {"error_burst": {"alpha": 1.5}}}, "guards.error_burst.alpha: must be < 1, got 1.5"),
        ({"guards": {"restarts": {"max": -1}}}, "guards.restarts.max: must be >= 0"),
        ({"guards": {"sample_ratio": {"enabled": "yes"}}}, "guards.sample_ratio.enabled: must be true or false"),
        ({"threshold": {"min_samples": 0}}, "threshold.min_samples: must be >= 1"),
        ({"threshold": {"window": 60}}, "threshold.window: unknown key"),
        ({"counters": {"latency": "x"}}, "counters.latency: unknown key"),
        ({"counters": {"requests": ""}}, "counters.requests: must be a non-empty PromQL selector"),
        ({"alpha_rollback": True}, "alpha_rollback: must be a number"),
        ({"alpha_promote": 0}, "alpha_promote: must be > 0, got 0"),
        ({"min_dwell_s": -5}, "min_dwell_s: must be >= 0, got -5"),
        ({"on_inconclusive": "panic"}, "on_inconclusive: must be one of rollback, hold"),
        ({"burn_in": 2.5}, "burn_in: must be an integer"),
        ([1, 2], "(top level): must be a mapping"),
    ],
)
def test_errors_name_the_field(raw, message):
    with pytest.raises(ConfigError) as err:
        load_config(raw)
    assert message in str(err.value)


def test_unreadable_file(tmp_path):
    bad = tmp_path / "a.yaml"
    bad.write_text("steps: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_nulls_allowed_where_documented():
    cfg = load_config({"max_stage_s": None, "threshold": {"latency_threshold_ms": None, "window_s": 120}})
    assert cfg.max_stage_s is None
    assert cfg.threshold.latency_threshold_ms is None and cfg.threshold.window_s == 120
