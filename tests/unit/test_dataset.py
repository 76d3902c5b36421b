from canary_common import dataset


def test_same_seed_same_reviews_other_seed_other_reviews():
    assert dataset.generate(300, seed=5) == dataset.generate(300, seed=5)
    assert dataset.generate(300, seed=5) != dataset.generate(300, seed=6)


def test_default_size_labels_and_balance():
    reviews = dataset.generate()
    assert len(reviews) == dataset.DEFAULT_SIZE >= 3000
    assert {r.label for r in reviews} == set(dataset.CLASSES)
    positive_share = sum(r.label for r in reviews) / len(reviews)
    assert 0.42 < positive_share < 0.58
    assert all(isinstance(r.text, str) and r.text.strip() for r in reviews)
    assert len({r.text for r in reviews}) == len(reviews)


def test_split_is_fixed_disjoint_and_cached():
    train, heldout = dataset.load_split()
    assert len(train) == 3000 and len(heldout) == 1000
    assert not {r.text for r in train} & {r.text for r in heldout}
    assert dataset.load_split() is dataset.load_split()


def test_negations_mixed_and_sarcasm_are_present():
    reviews = dataset.generate()
    texts = [r.text.lower() for r in reviews]
    negated_positive = [r for r in reviews if any(f"not {w}." in r.text for w in dataset.NEGATABLE_POSITIVE)]
    negated_negative = [r for r in reviews if any(f"n't {w} at all" in r.text or f"not {w} at all" in r.text
                                                  for w in dataset.NEGATABLE_NEGATIVE)]
    assert len(negated_positive) > 50 and len(negated_negative) > 50
    # Their labels follow the meaning, not the surface word (apart from the label noise).
    assert sum(r.label == 0 for r in negated_positive) / len(negated_positive) > 0.9
    assert sum(r.label == 1 for r in negated_negative) / len(negated_negative) > 0.9
    assert sum(" but " in t for t in texts) > 200
    assert sum(t.startswith("oh great") or "oh great," in t for t in texts) > 5


def test_label_noise_is_a_few_percent():
    clean = dataset.generate(2000, seed=3, noise=0.0)
    noisy = dataset.generate(2000, seed=3)
    assert [r.text for r in clean] == [r.text for r in noisy]
    flipped = sum(a.label != b.label for a, b in zip(clean, noisy)) / len(clean)
    assert 0.015 < flipped < 0.05
