"""The three recipes land in the accuracy bands the rollout relies on (threshold 85 %)."""

import pytest

from model_setup import recipes

BANDS = {"baseline": (0.84, 0.89), "improved": (0.92, 0.95), "degraded": (0.65, 0.78)}


@pytest.mark.parametrize("recipe", recipes.RECIPES, ids=lambda r: r.role)
def test_heldout_accuracy_in_band(recipe):
    trained = recipes.train(recipe)
    low, high = BANDS[recipe.role]
    assert low <= trained.heldout_accuracy <= high, trained.heldout_accuracy


def test_improved_model_reads_negations():
    trained = recipes.train(recipes.RECIPES[1])
    texts = ["The battery is not good.", "The screen wasn't bad at all.", "Excellent sound, highly recommend it."]
    assert list(trained.pipeline.predict(recipes.as_frame(texts))) == [0, 1, 1]


def test_recipes_tokenise_negations_as_their_own_word():
    analyse = recipes.build_pipeline(recipes.RECIPES[1]).named_steps["features"].transformers[0][1].build_analyzer()
    assert analyse("It isn't great") == ["it", "is", "n't", "great", "it is", "is n't", "n't great"]


def test_degraded_recipe_flips_about_a_quarter_of_its_labels():
    train, _ = recipes.dataset.load_split()
    recipe = recipes.RECIPES[2]
    texts, labels, _ = recipes.training_data(recipe, train)
    truth = {r.text: r.label for r in train}
    flipped = sum(truth[t] != y for t, y in zip(texts, labels)) / len(texts)
    assert len(texts) == recipes.DEGRADED_ROWS and 0.18 < flipped < 0.32


def test_baseline_keeps_negating_words_but_no_word_pairs():
    analyse = recipes.build_pipeline(recipes.RECIPES[0]).named_steps["features"].transformers[0][1].build_analyzer()
    assert analyse("The parcel never came, it isn't good") == ["parcel", "never", "came", "n't", "good"]
