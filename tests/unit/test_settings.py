"""The one way every service reads its environment (canary_common.settings)."""

import pytest

from canary_common.settings import SettingsError
from canary_controller.settings import ControllerEnv
from canary_router.config import Settings as RouterSettings
from model_server.config import Settings as ModelServerSettings


def test_variables_are_the_fields_in_capitals_and_empty_means_unset():
    s = RouterSettings.from_env(
        {"BACKEND_TIMEOUT_S": "3.5", "DEFAULT_CANARY_PERCENTAGE": "", "PRODUCTION_URL": "http://p:1/"}
    )
    assert s.backend_timeout_s == 3.5
    assert s.default_canary_percentage == 20.0  # "" is unset: the default applies
    assert s.production_url == "http://p:1"


def test_an_alias_names_a_variable_of_another_name():
    s = ModelServerSettings.from_env({"MLFLOW_TRACKING_URI": "http://m:5000", "MODEL_ALIAS": "canary"})
    assert (s.tracking_uri, s.alias) == ("http://m:5000", "canary")


@pytest.mark.parametrize(
    "env, words",
    [
        ({"BACKEND_TIMEOUT_S": "soon"}, "BACKEND_TIMEOUT_S must be a number, got 'soon'"),
        ({"BACKEND_POOL_SIZE": "2.5"}, "BACKEND_POOL_SIZE must be a whole number, got '2.5'"),
        ({"BACKEND_POOL_SIZE": "0"}, "BACKEND_POOL_SIZE must be >= 1, got '0'"),
        ({"DEFAULT_CANARY_PERCENTAGE": "150"}, "DEFAULT_CANARY_PERCENTAGE must be >= 0 and <= 100, got '150'"),
        ({"ALLOW_FORCED_ROUTE": "maybe"}, "ALLOW_FORCED_ROUTE must be 0 or 1"),
    ],
)
def test_a_bad_value_is_named_with_what_it_must_be(env, words):
    with pytest.raises(SettingsError) as caught:
        RouterSettings.from_env(env)
    assert words in str(caught.value)


def test_every_bad_variable_is_named_at_once_and_a_missing_one_is_required():
    with pytest.raises(SettingsError) as caught:
        ModelServerSettings.from_env({"ALIAS_POLL_S": "-1"})
    assert "MLFLOW_TRACKING_URI is required" in str(caught.value)
    assert "ALIAS_POLL_S must be > 0, got '-1'" in str(caught.value)


def test_a_rule_of_the_service_reads_like_the_others():
    with pytest.raises(SettingsError, match="DECISION_WEBHOOK_URL must be a URL starting with http"):
        ControllerEnv.from_env({"DECISION_WEBHOOK_URL": "hooks.example.com"})


def test_derived_defaults_follow_the_variables_they_depend_on():
    s = RouterSettings.from_env({"BACKEND_TIMEOUT_S": "4", "PROMETHEUS_MULTIPROC_DIR": "/tmp/m"})
    assert (s.shadow_timeout_s, s.feedback_store_dir) == (4.0, "/tmp/m")
    s = RouterSettings.from_env(
        {"SHADOW_TIMEOUT_S": "1", "FEEDBACK_STORE_DIR": "/tmp/f", "PROMETHEUS_MULTIPROC_DIR": "/tmp/m"}
    )
    assert (s.shadow_timeout_s, s.feedback_store_dir) == (1.0, "/tmp/f")


def test_settings_are_frozen():
    s = RouterSettings()
    with pytest.raises(ValueError):
        s.backend_timeout_s = 9
