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
    assert len(train) == 15000 and len(heldout) == 5000
    assert not {r.text for r in train} & {r.text for r in heldout}
    assert dataset.load_split() is dataset.load_split()


def test_negations_mixed_and_sarcasm_are_present():
    reviews = dataset.generate()
    texts = [r.text.lower() for r in reviews]
    common_pos, common_neg = dataset.POSITIVE[:10], dataset.NEGATIVE[:10]

    def negating(words):
        return [r for r in reviews if any(f"{neg} {w}" in r.text.lower() for neg in ("not", "n't") for w in words)]

    negated_positive, negated_negative = negating(common_pos), negating(common_neg)
    assert len(negated_positive) > 60 and len(negated_negative) > 60
    # Their labels follow the meaning, not the surface word (apart from the label noise).
    assert sum(r.label == 0 for r in negated_positive) / len(negated_positive) > 0.9
    assert sum(r.label == 1 for r in negated_negative) / len(negated_negative) > 0.9
    assert sum(" but " in t for t in texts) > 200
    assert sum(t.startswith("oh ") or "oh " in t for t in texts) > 5


def test_common_sentiment_words_keep_their_sign():
    # Negations and mixed reviews must not outweigh plain use, or a bag of words learns that
    # "great" is neutral; in real reviews it is nearly always praise.
    train, _ = dataset.load_split()
    for word, label in (("great", 1), ("excellent", 1), ("bad", 0), ("terrible", 0)):
        labels = [r.label for r in train if word in r.text.lower().replace(".", " ").split()]
        assert sum(y == label for y in labels) / len(labels) > 0.7, word


def test_reviews_cover_every_domain_and_vary_in_form():
    texts = [r.text for r in dataset.generate(3000)]
    for name, domain in dataset.DOMAINS.items():
        assert sum(any(item in t.lower() for item in domain.items) for t in texts) > 100, name
    assert sum(t == t.lower() for t in texts) > 150  # typed all in lower case
    assert sum("nt " in t and "n't" not in t for t in texts) > 20  # apostrophes left out


def test_typo_changes_one_longer_word_only():
    import random

    rng = random.Random(1)
    text = "The delivery was amazingly quick."
    for _ in range(50):
        slipped = dataset._typo(rng, text)
        changed = [(a, b) for a, b in zip(text.split(), slipped.split()) if a != b]
        assert len(slipped.split()) == 5 and len(changed) == 1 and len(changed[0][0]) >= 5


def test_label_noise_is_a_few_percent():
    clean = dataset.generate(2000, seed=3, noise=0.0)
    noisy = dataset.generate(2000, seed=3)
    assert [r.text for r in clean] == [r.text for r in noisy]
    flipped = sum(a.label != b.label for a, b in zip(clean, noisy)) / len(clean)
    assert 0.01 < flipped < 0.04


def test_events_are_told_both_ways_without_sentiment_words():
    import random

    rng, domain = random.Random(2), dataset.DOMAINS["service"]
    told = {y: {dataset._event(rng, y, domain, "order") for _ in range(200)} for y in (0, 1)}
    assert len(told[0]) > 60 and len(told[1]) > 60 and not told[0] & told[1]
    words = set(dataset.POSITIVE[:10] + dataset.NEGATIVE[:10])
    assert not any(w in t.split() for t in told[0] | told[1] for w in words)


def test_negated_verbs_mean_the_opposite_of_their_verb():
    import random

    rng, domain = random.Random(4), dataset.DOMAINS["gadgets"]
    praise = dataset._negated_verb(rng, 1, domain, "kettle")
    assert any(n in praise for n in dataset.NEGATORS)
    assert any(f" {v}" in praise for _, _, bad in dataset.VERBS.values() for v in bad)
