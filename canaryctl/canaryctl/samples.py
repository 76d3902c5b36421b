"""Labelled texts to send: the project's held-out split when available, else a built-in list."""

from __future__ import annotations

# Used when canaryctl is pip-installed on a host without the project's shared code.
# Label 1 = positive, 0 = negative.
BUILTIN = (
    ("The battery lasts for days and charging is quick", 1),
    ("Setup took two minutes and everything just worked", 1),
    ("Lovely fabric, fits perfectly and feels sturdy", 1),
    ("Support answered within an hour and fixed my issue", 1),
    ("Sharp picture, great sound, I am really pleased", 1),
    ("Arrived early and works better than described", 1),
    ("A delightful read that I recommend to everyone", 1),
    ("Excellent build quality for a fair price", 1),
    ("Stopped working after one week, very annoying", 0),
    ("The screen cracked on arrival and nobody replied", 0),
    ("Cheap plastic, the handle snapped the first day", 0),
    ("Slow, noisy and the app keeps crashing", 0),
    ("Refund took a month, awful customer service", 0),
    ("Nothing like the photos, a total letdown", 0),
    ("Boring plot and the ending made no sense", 0),
    ("Overpriced junk, I regret buying it", 0),
)


def labelled_samples() -> tuple[list[tuple[str, int]], str]:
    """(samples, source) with samples as (text, label) pairs."""
    try:
        from canary_common.dataset import load_split
    except ImportError:
        return list(BUILTIN), "built-in samples"
    _, heldout = load_split()
    samples = [(review.text, int(review.label)) for review in heldout]
    if not samples:
        return list(BUILTIN), "built-in samples"
    return samples, "held-out split"
