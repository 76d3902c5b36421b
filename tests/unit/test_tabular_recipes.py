"""The tabular demos' versions: improved >= baseline, degraded clearly worse, on held-out rows;
and every version takes the full row, so one signature and one payload fit all three."""

import json

import pytest

from model_setup import demos, tabular


@pytest.fixture(scope="module")
def trained():
    return {
        (name, role): tabular.train(name, role)
        for name in ("breast-cancer", "diabetes")
        for role in ("baseline", "improved", "degraded")
    }


def _figures(trained, name, key):
    figures = {role: trained[(name, role)].metrics[key] for role in ("baseline", "improved", "degraded")}
    print(f"\n{name} {key}: " + ", ".join(f"{role} {v:.4f}" for role, v in figures.items()))
    return figures


def test_breast_cancer_improved_beats_baseline_and_degraded_is_far_behind(trained):
    acc = _figures(trained, "breast-cancer", "heldout_accuracy")
    assert acc["improved"] >= acc["baseline"] + 0.02
    assert acc["degraded"] <= acc["baseline"] - 0.15
    assert 0.90 <= acc["baseline"] and 0.60 <= acc["degraded"] <= 0.80


def test_diabetes_improved_beats_baseline_and_degraded_is_far_behind(trained):
    mae = _figures(trained, "diabetes", "heldout_mae")
    within = _figures(trained, "diabetes", tabular.WITHIN_KEY)
    assert mae["improved"] <= mae["baseline"] - 3
    assert within["improved"] >= within["baseline"]
    assert mae["degraded"] >= mae["baseline"] + 8
    assert within["degraded"] <= within["baseline"] - 0.10


@pytest.mark.parametrize("name, width", [("breast-cancer", 30), ("diabetes", 10)])
def test_every_version_takes_the_full_row_and_picks_its_features(trained, name, width):
    for role in ("baseline", "improved", "degraded"):
        candidate = trained[(name, role)]
        assert list(candidate.example.columns) == list(tabular.demo_data.split(name).columns)
        assert candidate.example.shape == (3, width)
        assert len(candidate.model.predict(candidate.example)) == 3
    assert trained[(name, "degraded")].params["n_features"] < trained[(name, "improved")].params["n_features"] == width


def test_version_tags_declare_task_classes_and_held_out_figures(trained):
    tags = trained[("breast-cancer", "improved")].tags
    assert tags["canary.task"] == "classification" and json.loads(tags["canary.classes"]) == [0, 1]
    assert float(tags["heldout_accuracy"]) > 0.9
    tags = trained[("diabetes", "degraded")].tags
    assert tags["canary.task"] == "regression" and "canary.classes" not in tags
    assert {"heldout_mae", tabular.WITHIN_KEY} <= set(tags)
    assert "Should fail a canary analysis" in trained[("diabetes", "degraded")].description


def test_bundled_demos_and_first_setup_aliases():
    assert demos.BUNDLED == ("sentiment", "breast-cancer", "diabetes")
    assert demos.get("their-model") is None
    for name in ("breast-cancer", "diabetes"):
        assert demos.get(name).roles == (("baseline", "production"), ("improved", "canary"), ("degraded", None))


def test_a_glob_picks_the_columns_it_names():
    recipe = tabular.RECIPES["breast-cancer"][0]
    columns = tabular.demo_data.split("breast-cancer").columns
    picked = tabular.features_of(recipe, columns)
    assert len(picked) == 10 and all(c.startswith("mean ") for c in picked)
    with pytest.raises(ValueError, match="no column"):
        tabular.features_of(tabular.TabularRecipe("x", None, "", "linear", features=("nope",)), columns)
