"""A synthetic, labelled set of short English reviews (1 = positive, 0 = negative).

Made from templates with a seeded random generator, so every service (model setup, load
generator, tests) sees the same reviews without downloading anything. Stdlib only.

The reviews cover several kinds of things people review on a shop site (gadgets, food, stays,
clothes, apps, deliveries and service), each with its own words, so that a model trained on
them learns the common sentiment vocabulary rather than a single product category. Casing,
punctuation and a few typos vary as in text people type.

The mix is tuned so that models differ in a way the canary rollout can see:
- plain sentences, which any bag of words gets right;
- negations ("not good", "wasn't bad at all", "wouldn't order again"), which need word pairs;
- mixed reviews whose label follows the majority of their clauses or an explicit verdict;
- sarcastic or lukewarm ones, which no simple model gets right reliably;
- and a few percent of flipped labels, as in real human labelling.
"""

from __future__ import annotations

import functools
import random
from typing import NamedTuple

CLASSES = (0, 1)
DEFAULT_SEED = 7
DEFAULT_SIZE = 20000  # enough for word pairs of the common negations to be seen several times
HELDOUT_SHARE = 0.25
LABEL_NOISE = 0.02
TYPO_RATE = 0.12  # share of reviews with one misspelt word
NEGATED_STATEMENT_SHARE = 0.25  # of negations: whole sentences ("I won't be back") rather than "not <adjective>"
NEGATED_EVENT_SHARE = 0.3  # of negations: a negated verb or "no <noun>" ("it didn't break", "no reply")


class Review(NamedTuple):
    text: str
    label: int


class Domain(NamedTuple):
    """What one kind of review talks about, and the words people use for it."""

    items: tuple[str, ...]
    aspects: tuple[str, ...]
    good: tuple[str, ...]  # adjectives
    bad: tuple[str, ...]
    good_events: tuple[str, ...]  # verb phrases, after "it" or "the <item>"
    bad_events: tuple[str, ...]


PRODUCTS = (
    "headset",
    "laptop",
    "blender",
    "coffee maker",
    "phone case",
    "keyboard",
    "monitor",
    "vacuum",
    "backpack",
    "treadmill",
    "smartwatch",
    "tablet",
    "charger",
    "desk lamp",
    "air fryer",
    "router",
    "camera",
    "speaker",
    "mattress",
    "water bottle",
    "jacket",
    "printer",
    "mouse",
    "toaster",
    "kettle",
    "office chair",
    "microwave",
    "drone",
    "e-reader",
    "tent",
    "projector",
    "hair dryer",
    "rice cooker",
    "webcam",
    "suitcase",
    "fitness tracker",
)
ASPECTS = (
    "battery",
    "screen",
    "sound",
    "build quality",
    "price",
    "design",
    "customer service",
    "delivery",
    "packaging",
    "setup",
    "fit",
    "material",
    "performance",
    "noise level",
    "manual",
    "charging",
    "app",
    "warranty support",
    "size",
    "weight",
    "display",
    "motor",
    "handle",
    "lid",
    "strap",
    "power button",
    "cable",
    "finish",
)

DOMAINS = {
    "gadgets": Domain(
        PRODUCTS,
        ASPECTS,
        (
            "fast",
            "quiet",
            "responsive",
            "sleek",
            "durable",
            "powerful",
            "crisp",
            "sharp",
            "bright",
            "compact",
            "handy",
            "sturdy",
            "reliable",
            "well built",
            "easy to use",
        ),
        (
            "noisy",
            "slow",
            "faulty",
            "defective",
            "flimsy",
            "fragile",
            "laggy",
            "clunky",
            "dim",
            "tinny",
            "glitchy",
            "wobbly",
            "unreliable",
            "broken",
            "hard to use",
        ),
        (
            "works like a charm",
            "does exactly what it promises",
            "arrived early",
            "feels premium",
            "was easy to set up",
            "lasts all day",
            "holds up well",
            "charges quickly",
            "connects instantly",
            "beats my old one easily",
            "made my mornings easier",
            "still works like new",
        ),
        (
            "stopped working after a week",
            "keeps disconnecting",
            "arrived scratched",
            "feels like a toy",
            "was a pain to set up",
            "dies before lunch",
            "overheats constantly",
            "fell apart quickly",
            "made a weird rattling noise",
            "is worse than my old one",
            "won't turn on anymore",
            "broke within days",
            "leaks all over the counter",
        ),
    ),
    "food": Domain(
        (
            "lasagne",
            "ramen",
            "kebab",
            "dumplings",
            "risotto",
            "bagel",
            "brunch",
            "smoothie",
            "wrap",
            "sandwich",
            "stew",
            "fish and chips",
            "pad thai",
            "croissant",
            "milkshake",
            "takeaway",
            "bakery",
            "restaurant",
            "bistro",
            "diner",
            "food truck",
            "meal kit",
            "chocolate",
            "pie",
            "omelette",
            "waffles",
            "chili",
            "pastry",
        ),
        (
            "food",
            "portions",
            "service",
            "flavour",
            "meat",
            "sauce",
            "dessert",
            "menu",
            "bread",
            "starter",
            "main course",
            "atmosphere",
            "waiter",
            "staff",
            "drinks",
            "rice",
        ),
        (
            "delicious",
            "tasty",
            "fresh",
            "flavourful",
            "yummy",
            "crispy",
            "tender",
            "juicy",
            "mouthwatering",
            "scrumptious",
            "well seasoned",
            "perfectly cooked",
            "authentic",
            "hearty",
            "generous",
            "filling",
        ),
        (
            "bland",
            "stale",
            "soggy",
            "greasy",
            "burnt",
            "undercooked",
            "overcooked",
            "tasteless",
            "rubbery",
            "watery",
            "mushy",
            "inedible",
            "oily",
            "chewy",
            "stingy",
            "gross",
        ),
        (
            "was cooked to perfection",
            "melted in my mouth",
            "came out quickly",
            "was packed with flavour",
            "hit the spot",
            "was worth the trip",
            "tasted homemade",
            "kept us coming back",
        ),
        (
            "made me ill",
            "gave me food poisoning",
            "took ages to come out",
            "showed up cold",
            "was swimming in oil",
            "had a hair in it",
            "was half missing",
            "sat on the counter for ages",
        ),
    ),
    "stays": Domain(
        (
            "hotel",
            "hostel",
            "guesthouse",
            "apartment",
            "resort",
            "lodge",
            "inn",
            "motel",
            "cabin",
            "b&b",
            "holiday let",
            "villa",
            "stay",
            "city break",
        ),
        (
            "room",
            "bathroom",
            "bed",
            "pool",
            "reception",
            "location",
            "wifi",
            "shower",
            "staff",
            "check-in",
            "parking",
            "balcony",
            "kitchen",
            "sheets",
            "host",
        ),
        (
            "clean",
            "spotless",
            "spacious",
            "cosy",
            "peaceful",
            "welcoming",
            "immaculate",
            "bright",
            "modern",
            "convenient",
            "relaxing",
            "charming",
            "central",
            "homely",
        ),
        (
            "dirty",
            "filthy",
            "cramped",
            "smelly",
            "mouldy",
            "shabby",
            "dated",
            "damp",
            "grim",
            "run-down",
            "sticky",
            "freezing",
            "dingy",
            "unsafe",
        ),
        (
            "felt like home",
            "had everything we needed",
            "exceeded our expectations",
            "made our trip",
            "was a real treat",
            "was perfect for a weekend away",
        ),
        (
            "had stains on the sheets",
            "had no hot water",
            "smelled of damp",
            "had bugs in the bed",
            "kept us awake all night",
            "was double booked",
            "charged us hidden fees",
        ),
    ),
    "clothes": Domain(
        (
            "sweater",
            "coat",
            "boots",
            "sandals",
            "trainers",
            "leggings",
            "skirt",
            "blouse",
            "socks",
            "hat",
            "gloves",
            "trousers",
            "shorts",
            "pyjamas",
            "swimsuit",
            "belt",
            "cardigan",
            "raincoat",
            "overalls",
            "bra",
            "suit",
            "polo",
        ),
        (
            "fabric",
            "fit",
            "colour",
            "size",
            "stitching",
            "zip",
            "material",
            "cut",
            "sleeves",
            "sole",
            "waistband",
            "buttons",
            "lining",
        ),
        (
            "soft",
            "comfy",
            "flattering",
            "stylish",
            "warm",
            "breathable",
            "true to size",
            "well made",
            "cute",
            "elegant",
            "snug",
            "gorgeous",
            "classy",
        ),
        (
            "itchy",
            "scratchy",
            "baggy",
            "tight",
            "faded",
            "thin",
            "cheaply made",
            "shapeless",
            "uncomfortable",
            "ugly",
            "sweaty",
            "stiff",
            "tacky",
        ),
        (
            "fits like a glove",
            "washes well",
            "gets lots of compliments",
            "kept its shape",
            "goes with everything",
            "feels like a second skin",
        ),
        (
            "lost its shape",
            "pilled straight away",
            "bled colour onto everything",
            "split along the side",
            "gave me a rash",
            "came in the wrong size",
        ),
    ),
    "apps": Domain(
        (
            "app",
            "website",
            "game",
            "software",
            "platform",
            "subscription",
            "streaming service",
            "banking app",
            "music app",
            "fitness app",
            "browser extension",
            "online course",
        ),
        (
            "interface",
            "login",
            "update",
            "notifications",
            "checkout",
            "search",
            "layout",
            "loading times",
            "support team",
            "menus",
            "sync",
            "free version",
        ),
        (
            "intuitive",
            "smooth",
            "simple",
            "slick",
            "user friendly",
            "snappy",
            "polished",
            "stable",
            "addictive",
            "clever",
            "seamless",
        ),
        (
            "buggy",
            "glitchy",
            "laggy",
            "clunky",
            "confusing",
            "bloated",
            "unstable",
            "unusable",
            "sluggish",
            "broken",
            "pointless",
        ),
        (
            "runs without a hitch",
            "saves me loads of time",
            "loads instantly",
            "keeps getting better with each update",
            "just works",
            "syncs across all my devices",
        ),
        (
            "crashes every time I open it",
            "freezes all the time",
            "drains my battery",
            "lost all my data",
            "won't let me log in",
            "is full of ads",
            "charged me twice",
        ),
    ),
    "service": Domain(
        (
            "delivery",
            "courier",
            "seller",
            "store",
            "order",
            "shipment",
            "retailer",
            "garage",
            "plumber",
            "salon",
            "gym",
            "taxi",
            "repair shop",
            "removal company",
            "cleaner",
            "dentist",
            "bank",
            "airline",
            "phone shop",
        ),
        (
            "driver",
            "packaging",
            "tracking",
            "customer support",
            "refund process",
            "staff",
            "service",
            "manager",
            "booking",
            "phone line",
            "team",
            "appointment",
            "price",
        ),
        (
            "prompt",
            "speedy",
            "quick",
            "punctual",
            "courteous",
            "friendly",
            "helpful",
            "polite",
            "attentive",
            "professional",
            "efficient",
            "kind",
            "knowledgeable",
            "accommodating",
            "honest",
        ),
        (
            "late",
            "rude",
            "unhelpful",
            "unprofessional",
            "careless",
            "clueless",
            "dismissive",
            "incompetent",
            "unresponsive",
            "pushy",
            "disorganised",
            "sloppy",
            "dishonest",
        ),
        (
            "arrived ahead of schedule",
            "showed up right on time",
            "kept me updated",
            "sorted everything out quickly",
            "answered all my questions",
            "went the extra mile",
            "refunded me without any fuss",
            "made the whole thing painless",
        ),
        (
            "arrived a week late",
            "never turned up",
            "lost my order",
            "ignored my messages",
            "delivered to the wrong address",
            "arrived broken",
            "kept me waiting for hours",
            "cancelled at the last minute",
            "overcharged me",
        ),
    ),
}
# Things that happen with anything bought or booked; added to every domain's own events.
ANY_GOOD_EVENTS = (
    "was worth the wait",
    "did the trick",
    "was a pleasant surprise",
    "turned out better than expected",
    "made us very happy",
    "is now my go-to",
    "gets used every day",
    "was a bargain",
    "lived up to the reviews",
    "was money well spent",
    "put a smile on my face",
    "sold me instantly",
)
ANY_BAD_EVENTS = (
    "was the wrong one",
    "was missing half the parts",
    "never showed up",
    "was a complete mess",
    "had to go back",
    "ruined our evening",
    "left a lot to be desired",
    "went straight in the bin",
    "is already falling apart",
    "was not as advertised",
    "wasted a whole afternoon",
    "got worse every day",
    "cost me twice the quote",
    "caused one problem after another",
)
DOMAINS = {
    name: domain._replace(
        good_events=domain.good_events + ANY_GOOD_EVENTS, bad_events=domain.bad_events + ANY_BAD_EVENTS
    )
    for name, domain in DOMAINS.items()
}
DOMAIN_NAMES = tuple(DOMAINS)

# Words that fit anything; each review mixes them with its domain's own. Ordered from the most
# common: a review picks the first ones far more often, as people do (see _common).
POSITIVE = (
    "great",
    "good",
    "excellent",
    "amazing",
    "perfect",
    "nice",
    "awesome",
    "fantastic",
    "lovely",
    "brilliant",
    "wonderful",
    "decent",
    "solid",
    "impressive",
    "beautiful",
    "reliable",
    "superb",
    "outstanding",
    "incredible",
    "terrific",
    "fabulous",
    "pleasant",
    "enjoyable",
    "cool",
    "exceptional",
    "stunning",
    "flawless",
    "top quality",
    "first class",
    "sweet",
    "epic",
    "phenomenal",
    "faultless",
    "delightful",
    "comfortable",
    "sturdy",
    "durable",
    "spot on",
)
NEGATIVE = (
    "bad",
    "terrible",
    "awful",
    "poor",
    "horrible",
    "disappointing",
    "cheap",
    "useless",
    "rubbish",
    "mediocre",
    "overpriced",
    "dreadful",
    "pathetic",
    "frustrating",
    "unreliable",
    "flimsy",
    "weak",
    "shoddy",
    "lousy",
    "annoying",
    "disgusting",
    "nasty",
    "ridiculous",
    "unacceptable",
    "worthless",
    "subpar",
    "appalling",
    "atrocious",
    "abysmal",
    "crappy",
    "junky",
    "sad",
    "horrendous",
    "inferior",
    "substandard",
    "lame",
    "naff",
    "dodgy",
)
INTENSIFIERS = (
    "",
    "",
    "",
    "",
    "really ",
    "very ",
    "super ",
    "absolutely ",
    "quite ",
    "pretty ",
    "incredibly ",
    "so ",
    "extremely ",
    "totally ",
    "truly ",
    "seriously ",
)
SUBJECTS = (
    "I",
    "we",
    "my wife",
    "my husband",
    "my son",
    "my daughter",
    "my partner",
    "my mum",
    "the whole family",
    "my friend",
)
OPENERS = (
    "",
    "",
    "",
    "",
    "",
    "",
    "Bought this {item} last month. ",
    "Got this {item} as a gift. ",
    "Update after two weeks: ",
    "Second time using them. ",
    "Ordered it on sale. ",
    "Used it daily for a month. ",
    "Honest review: ",
    "First time trying this place. ",
    "Tried the {item} on a friend's advice. ",
    "Went there last weekend. ",
    "Long time customer. ",
    "Ok so ",
    "Well, ",
    "Just a quick review. ",
    "To be honest, ",
    "Tbh ",
)
POSITIVE_VERDICTS = (
    "Would buy again.",
    "Highly recommend it.",
    "Five stars.",
    "Love it.",
    "Worth every penny.",
    "Very happy with it.",
    "Exceeded my expectations.",
    "Best purchase this year.",
    "A keeper.",
    "Glad I bought it.",
    "10/10.",
    "Will definitely be back.",
    "Will order again.",
    "A must have.",
    "Money well spent.",
    "Thanks so much!",
    "Couldn't ask for more.",
    "Recommended!",
    "Top marks.",
    "Really impressed.",
    "Big thumbs up.",
    "Totally worth it.",
)
NEGATIVE_VERDICTS = (
    "Returning it.",
    "Waste of money.",
    "One star.",
    "Avoid.",
    "Regret buying it.",
    "Sent it back.",
    "Save your money.",
    "Never again.",
    "Very disappointed.",
    "Asked for a refund.",
    "Zero stars if I could.",
    "Stay away.",
    "Don't bother.",
    "Money down the drain.",
    "Total rip-off.",
    "What a joke.",
    "Complete waste of time.",
    "Steer clear.",
    "Do better.",
    "Really let down.",
    "Such a shame.",
)
POSITIVE_FEELINGS = (  # first-person, with {subj} (past tense only) and {item}
    "I love this {item}",
    "I absolutely love it",
    "{subj} really enjoyed it",
    "{subj} loved it",
    "I can't get enough of it",
    "really pleased with it",
    "so happy with this {item}",
    "I adore it",
    "delighted with it",
    "thrilled with the {item}",
    "impressed",
    "I would happily recommend it",
    "it made my day",
    "over the moon with it",
    "{subj} enjoyed every bit of it",
    "highly satisfied",
    "a real gem",
    "{subj} was blown away",
    "I love how {pos} it is",
)
NEGATIVE_FEELINGS = (
    "I hate this {item}",
    "{subj} really disliked it",
    "I regret it",
    "so disappointed",
    "really annoyed with this {item}",
    "fed up with it",
    "gutted",
    "furious about it",
    "a total letdown",
    "I want my money back",
    "what a waste",
    "{subj} was let down badly",
    "I can't stand it",
    "a nightmare from start to finish",
    "very unhappy",
    "a disaster",
    "{subj} hated it",
)
# Negated phrases: the surface words point one way, the meaning the other. Any sentiment word
# can be negated (the common ones most often); these phrases are negated more than used plainly.
NEGATABLE_POSITIVE = ("worth it", "happy", "worth the money", "what I expected", "helpful", "fresh")
NEGATABLE_NEGATIVE = ("a problem", "expensive", "difficult", "complicated", "an issue", "a hassle")
NEGATED_POSITIVE = (  # mean negative
    "is not {npos}",
    "is not {npos}",
    "was not {npos}",
    "isn't {npos}",
    "wasn't {npos}",
    "is not {npos} at all",
    "is not very {npos}",
    "is far from {npos}",
    "isn't that {npos}",
    "was not {npos} in any way",
)
NEGATED_NEGATIVE = (  # mean positive
    "is not {nneg}",
    "is not {nneg}",
    "was not {nneg}",
    "isn't {nneg}",
    "wasn't {nneg} at all",
    "is not {nneg} at all",
    "is never {nneg}",
    "is not {nneg} in the slightest",
    "isn't too {nneg}",
    "was not {nneg} one bit",
)
NEGATED_STATEMENTS = {  # whole sentences, negation on the verb; with {item} and {aspect}
    0: (
        "I can't recommend this {item}.",
        "I would not buy this {item} again.",
        "Not worth the money.",
        "This {item} does not work well.",
        "I don't love it.",
        "Nothing about this {item} is good.",
        "I'm not happy with this {item}.",
        "It doesn't live up to the hype.",
        "Not impressed with this {item}.",
        "Wouldn't recommend it to anyone.",
        "I didn't enjoy it.",
        "We won't be back.",
        "I won't be ordering again.",
        "Didn't like the {aspect} one bit.",
        "It never worked properly.",
        "The {aspect} doesn't work.",
        "Won't be using them again.",
        "Not what I expected at all.",
        "I didn't like it.",
        "Nobody bothered to help.",
        "It doesn't do what it says.",
        "Never going back.",
        "No one answered when I called.",
        "Not pleased.",
        "It didn't last a month.",
        "I wouldn't go back.",
        "Not recommended.",
        "No one ever called me back.",
        "Still no reply from anyone.",
        "Nothing about it works.",
        "Never received the {item}.",
        "No apology, nothing.",
        "Nobody seemed to care.",
        "Never buying from here again.",
        "No way I'm paying for this again.",
        "No stars from me.",
    ),
    1: (
        "I have no complaints about this {item}.",
        "Never had a problem with it.",
        "This {item} doesn't disappoint.",
        "Not a single issue so far.",
        "I can't complain about this {item}.",
        "No regrets buying this {item}.",
        "Never had any trouble with the {aspect}.",
        "Nothing bad to say about it.",
        "I'm not disappointed at all.",
        "Couldn't be happier with this {item}.",
        "No issues whatsoever.",
        "It never lets me down.",
        "Nothing to complain about.",
        "I wouldn't change a thing.",
        "Can't recommend it enough.",
        "Not one problem.",
        "It hasn't failed me once.",
        "Didn't expect it to be this good.",
        "No problems at all.",
        "I don't regret it one bit.",
        "Never disappoints.",
        "Nothing went wrong.",
        "Don't hesitate, just get it.",
        "You won't regret it.",
    ),
}
SARCASTIC = (  # all negative, with an upbeat word or two
    "Oh {pos}, the {item} {badevent}.",
    "Wow, what a {pos} {item}, it {badevent}.",
    "Just {pos}, another {item} that {badevent}.",
    "Love that the {aspect} {badevent}. So {pos}.",
    "Five stars for a {item} that {badevent}... not.",
    "Well done, the {aspect} {badevent}.",
    "Thanks a lot, the {item} {badevent}.",
    "{Pos} work, it {badevent}.",
)
LUKEWARM = (  # genuinely ambiguous: the label is a coin toss
    "It's okay, nothing special.",
    "The {item} is fine I guess.",
    "It does the job, mostly.",
    "Average {item}, neither good nor bad.",
    "Meh. The {aspect} is acceptable.",
    "Hard to say yet, ask me in a month.",
    "It is what it is.",
    "Not sure how I feel about the {item}.",
    "It's alright.",
    "Could be better, could be worse.",
)

CONTEXT = (  # neutral sentences people add around their verdict, in reviews of either kind
    "We went for lunch on a Sunday.",
    "I use it mostly for work.",
    "Picked it up from the shop near me.",
    "Ordered from them on Monday.",
    "It came in a plain box.",
    "This was for my sister's birthday.",
    "We stayed two nights.",
    "I have had it for about three weeks.",
    "We got back home on Friday.",
    "What can I say.",
    "Here is what I think.",
    "Been using it since March.",
    "My first order with them.",
    "We booked it through a friend.",
    "I paid with my card.",
    "Came here with the kids.",
    "It's the blue one.",
    "Just my two cents.",
    "Hope this helps someone.",
    "Will update later.",
    "That's all for now.",
    "Bought two of them.",
    "We were a group of four.",
    "It was my second visit.",
)


# What happened, told without a sentiment word: people often just say the parcel never came or
# the kettle still works after two years. Each family pairs subjects with predicates of both
# kinds, so the subjects themselves stay neutral; a predicate may take a {soon}/{later}/{fast} tail.
SOON = (
    "after a week",
    "after two days",
    "within a month",
    "on day one",
    "after three uses",
    "the first time I used it",
    "after ten days",
    "within a fortnight",
    "after one wash",
    "in the second week",
    "just after the warranty ran out",
    "after a year",
    "overnight",
    "after twenty minutes",
    "after a couple of months",
    "three months in",
    "within minutes",
)
LATER = (
    "after two years",
    "after months of daily use",
    "after a year",
    "after all this time",
    "three years on",
    "after a whole summer of use",
    "after countless trips",
    "to this day",
    "after being dropped a few times",
    "after a year of heavy use",
    "after a few months",
    "for months now",
)
FAST = (
    "the same day",
    "within hours",
    "straight away",
    "the next day",
    "in full",
    "within a couple of days",
    "before I even asked",
    "right away",
    "that afternoon",
    "",
)
EVENT_FAMILIES = (  # (subjects, good predicates, bad predicates)
    (
        (
            "the parcel",
            "my parcel",
            "the package",
            "my order",
            "our order",
            "the delivery",
            "the box",
            "the {item}",
            "the shipment",
        ),
        (
            "arrived a day early",
            "came the next day",
            "turned up on the day they said",
            "arrived well wrapped",
            "came in mint condition",
            "was brought right to my door",
            "showed up earlier than expected",
            "got here in two days",
            "arrived sealed and intact",
            "came with everything included",
            "was here before the weekend",
        ),
        (
            "never arrived",
            "never came",
            "went missing",
            "got lost in the post",
            "turned up two weeks late",
            "was left out in the rain",
            "came ripped open",
            "arrived with a big dent",
            "was sent to the wrong town",
            "is still stuck at a depot",
            "came without half the pieces",
            "was thrown over the gate",
            "came soaking wet",
            "arrived smashed",
            "still hasn't shown up",
        ),
    ),
    (
        ("it", "the {item}", "mine", "this {item}", "the {aspect}"),
        (
            "still works {later}",
            "still looks new {later}",
            "has held up {later}",
            "is still going strong {later}",
            "still runs like the first day",
            "has survived {later}",
            "keeps going {later}",
            "is like new {later}",
            "hasn't needed a repair {later}",
        ),
        (
            "stopped working {soon}",
            "broke {soon}",
            "died {soon}",
            "cracked {soon}",
            "snapped {soon}",
            "fell to pieces {soon}",
            "started leaking {soon}",
            "stopped charging {soon}",
            "gave up {soon}",
            "came apart at the seams {soon}",
            "started peeling {soon}",
            "quit on me {soon}",
            "went dead {soon}",
            "wore out {soon}",
            "shrank {soon}",
            "started making a grinding sound {soon}",
        ),
    ),
    (
        (
            "they",
            "the shop",
            "the seller",
            "the company",
            "the store",
            "customer service",
            "the hotel",
            "the airline",
            "the restaurant",
        ),
        (
            "refunded me {fast}",
            "sent a replacement {fast}",
            "gave me my money back {fast}",
            "swapped it for a new one {fast}",
            "processed my return {fast}",
            "credited my account {fast}",
            "covered the repair",
            "paid for the return label",
            "honoured the warranty {fast}",
            "offered a partial refund {fast}",
        ),
        (
            "never refunded me",
            "still haven't refunded me",
            "refused to refund me",
            "kept my money",
            "lost my return",
            "made me pay for the return",
            "ignored my refund request",
            "refused to honour the warranty",
            "took two months to refund me",
            "refunded only half",
            "sent the same faulty one back",
            "charged me a restocking fee",
            "cancelled my order without a word",
        ),
    ),
    (
        (
            "support",
            "the support team",
            "customer service",
            "the agent",
            "the staff",
            "the manager",
            "the helpline",
            "the owner",
            "the host",
            "the lady at the desk",
        ),
        (
            "replied within the hour",
            "answered every question",
            "called me back {fast}",
            "fixed it over the phone",
            "sorted it out in minutes",
            "talked me through the setup",
            "helped us carry our bags",
            "followed up to check everything was fine",
            "found me a solution {fast}",
            "got back to me {fast}",
            "remembered us from last time",
        ),
        (
            "never replied",
            "never got back to me",
            "ignored my emails",
            "passed me from department to department",
            "blamed someone else",
            "closed my ticket without fixing anything",
            "told me to wait another week",
            "promised a call back that never came",
            "kept me waiting for an hour",
            "read from a script",
            "cut me off mid sentence",
            "argued with me",
            "left us standing at the desk",
        ),
    ),
    (
        ("",),
        (
            "our food came out {fast}",
            "the table was ready when we arrived",
            "they gave us a free upgrade",
            "the food came out piping hot",
            "they brought extra pillows without us asking",
            "the kids got a free dessert",
            "I've already ordered another one",
            "we're planning our next visit",
            "I got my money back {fast}",
            "I use it every day now",
            "my whole family uses it now",
            "I've told all my friends about it",
            "I bought a second one for my mum",
            "it paid for itself",
            "the fault was fixed {fast}",
            "the refund came through {fast}",
            "I got a full refund {fast}",
            "it all went smoothly",
            "the whole thing went without a hitch",
            "it tasted like proper home cooking",
        ),
        (
            "we waited over an hour for our food",
            "they lost our reservation",
            "the food came out lukewarm",
            "we had to ask three times for water",
            "our order was wrong twice",
            "the bill had extra items on it",
            "there was no hot water all weekend",
            "we were seated next to the toilets",
            "I had to send it back",
            "I'm still waiting",
            "I had to call them five times",
            "I ended up buying a different one",
            "it went back the next day",
            "I had to throw it away",
            "I've given up on it",
            "I've had to chase them every week",
            "we left before the mains came",
            "the fault came back {soon}",
            "the refund never came",
            "it tasted burnt",
            "the kids went to bed hungry",
        ),
    ),
)


def _event(rng: random.Random, polarity: int, domain: Domain, item: str) -> str:
    """One sentiment-free account of what happened, good or bad."""
    subjects, good, bad = rng.choice(EVENT_FAMILIES)
    subject, predicate = rng.choice(subjects), rng.choice(good if polarity else bad)
    tails = {"soon": rng.choice(SOON), "later": rng.choice(LATER), "fast": rng.choice(FAST)}
    text = f"{subject} {predicate}".strip().format(item=item, aspect=rng.choice(domain.aspects), **tails)
    return text.rstrip()


def _maybe_cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _common(rng: random.Random, words: tuple[str, ...]) -> str:
    """A word from a list ordered by use: the first ones much more often (about Zipf's law)."""
    return rng.choices(words, weights=[1 / (rank + 2) for rank in range(len(words))])[0]


def _adjective(rng: random.Random, polarity: int, domain: Domain) -> str:
    """A sentiment adjective: half the time a general one, else one of the domain's own."""
    draw = rng.random()
    if draw < 0.1:  # the often negated words are used plainly too, so they keep their sign
        return rng.choice(NEGATABLE_POSITIVE if polarity else NEGATABLE_NEGATIVE)
    if draw < 0.55:
        return _common(rng, POSITIVE if polarity else NEGATIVE)
    return rng.choice(domain.good if polarity else domain.bad)


def _negatable(rng: random.Random, polarity: int, domain: Domain) -> str:
    """A word or phrase of the given polarity, to be negated: mostly a common one."""
    draw = rng.random()
    if draw < 0.2:
        return rng.choice(NEGATABLE_POSITIVE if polarity else NEGATABLE_NEGATIVE)
    if draw < 0.7:
        return _common(rng, POSITIVE if polarity else NEGATIVE)
    return rng.choice(domain.good if polarity else domain.bad)


def _fill(rng: random.Random, template: str, domain: Domain, **fixed) -> str:
    values = {
        "item": rng.choice(domain.items),
        "aspect": rng.choice(domain.aspects),
        "pos": rng.choice(POSITIVE),
        "neg": rng.choice(NEGATIVE),
        "int": rng.choice(INTENSIFIERS),
        "npos": _negatable(rng, 1, domain),
        "nneg": _negatable(rng, 0, domain),
        "badevent": rng.choice(domain.bad_events),
        "subj": rng.choice(SUBJECTS),
    }
    values["Pos"] = _maybe_cap(values["pos"])
    values.update(fixed)
    return template.format(**values)


def _clause(rng: random.Random, polarity: int, domain: Domain, item: str) -> str:
    """One plain clause of the given polarity about the item."""
    adj = _adjective(rng, polarity, domain)
    intens = rng.choice(INTENSIFIERS)
    aspect = rng.choice(domain.aspects)
    event = rng.choice(domain.good_events if polarity else domain.bad_events)
    verb = rng.choice(("is", "was", "is", "was", "seems", "looks", "felt"))
    feeling = rng.choice(POSITIVE_FEELINGS if polarity else NEGATIVE_FEELINGS)
    forms = (
        f"the {aspect} {verb} {intens}{adj}",
        f"{intens}{adj} {aspect}",
        f"the {aspect} {event}",
        f"this {item} is {intens}{adj}",
        f"{adj} {item} overall",
        f"it {event}",
        f"the {item} {event}",
        _fill(rng, feeling, domain, item=item),
        f"{intens}{adj} {aspect} and {_adjective(rng, polarity, domain)} {rng.choice(domain.aspects)}",
        f"{intens}{adj}",
        _event(rng, polarity, domain, item),
        _superlative(rng, polarity, item),
        _modal_verb(rng, polarity, domain, item),
    )
    return rng.choice(forms)


def _superlative(rng: random.Random, polarity: int, item: str) -> str:
    """ "the best/worst <item> I've ever had": how people rank, the same frame for both kinds."""
    word = rng.choice(("best", "best", "nicest", "finest") if polarity else ("worst", "worst", "poorest", "saddest"))
    ever = rng.choice(("ever ", "", "in years ", "in ages "))
    frame = rng.choice(
        (
            "the {w} {item} I've {ever}had",
            "by far the {w} {item} around",
            "{w} {item} {ever}",
            "easily the {w} one I've tried",
            "the {w} service I've had {ever}",
        )
    )
    return frame.format(w=word, item=item, ever=ever).strip()


def _sentences(clauses: list[str], rng: random.Random) -> str:
    """Join clauses as separate sentences, or as one run-on sentence as many people write."""
    if len(clauses) > 1 and rng.random() < 0.4:
        joiner = rng.choice((", ", " and ", ", and "))
        return _maybe_cap(joiner.join(clauses)) + rng.choice((".", "!", ""))
    return " ".join(_maybe_cap(c) + rng.choice((".", ".", ".", "!")) for c in clauses)


def _verdict(rng: random.Random, label: int) -> str:
    return rng.choice(POSITIVE_VERDICTS if label else NEGATIVE_VERDICTS)


def _plain(rng: random.Random, domain: Domain, item: str) -> Review:
    label = rng.randint(0, 1)
    clauses = [_clause(rng, label, domain, item) for _ in range(rng.randint(1, 3))]
    text = _sentences(clauses, rng)
    if rng.random() < 0.4:
        text += " " + _verdict(rng, label)
    return Review(text, label)


def _story(rng: random.Random, domain: Domain, item: str) -> Review:
    """What happened, with no sentiment word: one or two events, now and then a verdict."""
    label = rng.randint(0, 1)
    tell = (_event, _event, _event, _modal_verb)
    clauses = [rng.choice(tell)(rng, label, domain, item) for _ in range(rng.randint(1, 2))]
    text = _sentences(clauses, rng)
    if rng.random() < 0.2:
        text += " " + _verdict(rng, label)
    return Review(text, label)


def _negated_clause(rng: random.Random, polarity: int, domain: Domain) -> str:
    """A clause whose meaning is `polarity` but whose sentiment word says the opposite."""
    subject = rng.choice(("the " + rng.choice(domain.aspects), "it", "the " + rng.choice(domain.items)))
    pattern = rng.choice(NEGATED_NEGATIVE if polarity else NEGATED_POSITIVE)
    return f"{subject} " + _fill(rng, pattern, domain)


# Negation on the verb of an event: "it didn't break once" is praise, "it doesn't charge" is not.
# Base-form verbs follow the auxiliaries; people (support, the seller) and things have their own.
NEGATORS = ("didn't", "doesn't", "did not", "does not", "won't", "will not", "never did", "wouldn't")
THING_SUBJECTS = ("it", "the {item}", "mine", "the {aspect}")
PEOPLE_SUBJECTS = ("they", "the seller", "support", "the staff", "the courier", "the company", "the shop")
VERBS = {  # (subjects, verbs that are good news, verbs that are bad news)
    "things": (
        THING_SUBJECTS,
        (
            "work",
            "arrive",
            "charge",
            "fit",
            "turn on",
            "last",
            "connect",
            "stay on",
            "do the job",
            "switch on",
            "stay closed",
            "hold a charge",
            "match the photos",
            "come with a charger",
            "heat up",
            "save anything",
            "load",
            "stay cold",
        ),
        (
            "break",
            "crash",
            "leak",
            "freeze",
            "lag",
            "overheat",
            "disconnect",
            "fade",
            "shrink",
            "rip",
            "stop working",
            "fall apart",
            "rattle",
            "squeak",
            "fail",
            "scratch",
            "peel",
            "wobble",
            "smell",
            "drain the battery",
            "jam",
            "itch",
            "pill",
        ),
    ),
    "people": (
        PEOPLE_SUBJECTS,
        (
            "reply",
            "call back",
            "help",
            "turn up",
            "apologise",
            "refund me",
            "show up",
            "answer",
            "listen",
            "fix it",
            "deliver",
            "keep their promise",
            "send a replacement",
            "explain anything",
        ),
        (
            "rush me",
            "overcharge",
            "charge extra",
            "cancel",
            "argue",
            "make a fuss",
            "keep me waiting",
            "mess up the order",
            "push extras on us",
            "forget anything",
            "lose the parcel",
        ),
    ),
}
NEGATED_VERB_TAILS = {
    1: ("", "", " once", " at all", " so far", " even once", " in months", " like my old one did"),
    0: ("", "", " at all", " properly", " as promised", " for long", " even once", " for me"),
}
# "No <noun>": no bad thing is praise, no good thing is a complaint.
NO_FORMS = ("no", "not a single", "never any", "zero", "not one", "without any", "not even one")
GOOD_NOUNS = (
    "refund",
    "reply",
    "apology",
    "update",
    "help",
    "response",
    "explanation",
    "call back",
    "replacement",
    "hot water",
    "signal",
    "instructions",
    "tracking",
)
BAD_NOUNS = (
    "scratches",
    "delays",
    "bugs",
    "crashes",
    "problems",
    "issues",
    "complaints",
    "fuss",
    "hassle",
    "hidden fees",
    "dents",
    "leaks",
    "surprises",
    "stains",
    "faults",
    "glitches",
    "breakdowns",
)
NO_TAILS = ("", "", " so far", " at all", " whatsoever", " since I got it", " from them", " in a year")


def _negated_verb(rng: random.Random, polarity: int, domain: Domain, item: str) -> str:
    """An event with a negated verb whose meaning is `polarity`."""
    subjects, good, bad = VERBS[rng.choice(tuple(VERBS))]
    subject = rng.choice(subjects).format(item=item, aspect=rng.choice(domain.aspects))
    verb = rng.choice(bad if polarity else good)
    return f"{subject} {rng.choice(NEGATORS)} {verb}{rng.choice(NEGATED_VERB_TAILS[polarity])}"


def _modal_verb(rng: random.Random, polarity: int, domain: Domain, item: str) -> str:
    """The same verbs said plainly ("it started to leak", "they were quick to help"), so that a verb
    keeps its own sign and is not known only from its negations."""
    subjects, good, bad = VERBS[rng.choice(tuple(VERBS))]
    subject = rng.choice(subjects).format(item=item, aspect=rng.choice(domain.aspects))
    modal = rng.choice(
        ("seems to", "managed to", "went on to", "tends to", "was quick to", "is sure to")
        + (
            ("continues to", "still manages to", "was happy to", "is built to")
            if polarity
            else ("started to", "began to", "was quick to", "always seems to")
        )
    )
    return f"{subject} {modal} {rng.choice(good if polarity else bad)}"


def _no_noun(rng: random.Random, polarity: int) -> str:
    noun = rng.choice(BAD_NOUNS if polarity else GOOD_NOUNS)
    return f"{rng.choice(NO_FORMS)} {noun}{rng.choice(NO_TAILS)}"


def _negation(rng: random.Random, domain: Domain, item: str) -> Review:
    label = rng.randint(0, 1)
    draw = rng.random()
    if draw < NEGATED_STATEMENT_SHARE:
        text = _fill(rng, rng.choice(NEGATED_STATEMENTS[label]), domain, item=item)
    elif draw < NEGATED_STATEMENT_SHARE + NEGATED_EVENT_SHARE:
        clause = _negated_verb(rng, label, domain, item) if rng.random() < 0.7 else _no_noun(rng, label)
        text = _maybe_cap(clause) + rng.choice((".", ".", "!", ""))
    else:
        text = _maybe_cap(_negated_clause(rng, label, domain)) + rng.choice((".", ".", "!"))
    return Review(text, label)


def _mixed(rng: random.Random, domain: Domain, item: str) -> Review:
    """Clauses of both polarities; the majority, or a stated verdict, decides the label."""
    label = rng.randint(0, 1)
    if rng.random() < 0.4:
        parts = [label, label, 1 - label]
        rng.shuffle(parts)
        clauses = [_clause(rng, p, domain, item) for p in parts]
        text = _maybe_cap(clauses[0]) + ", " + clauses[1] + ", but " + clauses[2] + "."
    else:
        first, second = _clause(rng, 1 - label, domain, item), _clause(rng, label, domain, item)
        link = rng.choice((" but ", ", but ", " although ", ", though "))
        text = f"{_maybe_cap(first)}{link}{second}. {_verdict(rng, label)}"
    return Review(text, label)


def _sarcastic(rng: random.Random, domain: Domain, item: str) -> Review:
    return Review(_fill(rng, rng.choice(SARCASTIC), domain, item=item), 0)


def _lukewarm(rng: random.Random, domain: Domain, item: str) -> Review:
    return Review(_fill(rng, rng.choice(LUKEWARM), domain, item=item), rng.randint(0, 1))


def _typo(rng: random.Random, text: str) -> str:
    """One slip of the keyboard in a longer word: a letter dropped, doubled or swapped."""
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    word, at = words[i], rng.randrange(1, len(words[i]) - 1)
    slips = (
        word[:at] + word[at + 1 :],
        word[:at] + word[at] + word[at:],
        word[:at] + word[at + 1] + word[at] + word[at + 2 :],
    )
    words[i] = rng.choice(slips)
    return " ".join(words)


def _casual(rng: random.Random, text: str) -> str:
    """How people type on a phone: sometimes all lower case, apostrophes left out."""
    if rng.random() < 0.15:
        text = text.lower()
    if rng.random() < 0.15:
        text = text.replace("n't", "nt").replace("'m", "m")
    if rng.random() < TYPO_RATE:
        text = _typo(rng, text)
    return text


# Share of each kind of review; the negations are what separate a bag of words from bigrams.
KINDS = ((_plain, 0.63), (_story, 0.12), (_negation, 0.17), (_mixed, 0.05), (_sarcastic, 0.02), (_lukewarm, 0.01))


def _one(rng: random.Random, makers, weights) -> Review:
    maker = rng.choices(makers, weights)[0]
    domain = DOMAINS[rng.choice(DOMAIN_NAMES)]
    item = rng.choice(domain.items)
    review = maker(rng, domain, item)
    opener = rng.choice(OPENERS)
    text = _fill(rng, opener, domain, item=item) + review.text if opener else review.text
    if rng.random() < 0.3:
        context = rng.choice(CONTEXT)
        text = f"{context} {text}" if rng.random() < 0.5 else f"{text} {context}"
    return Review(_casual(rng, text), review.label)


def generate(n: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED, noise: float = LABEL_NOISE) -> list[Review]:
    """`n` distinct reviews; the same arguments give the same list."""
    if n < 1:
        raise ValueError("n must be positive")
    rng = random.Random(seed)
    makers = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    seen: set[str] = set()
    reviews: list[Review] = []
    while len(reviews) < n:
        review = _one(rng, makers, weights)
        if review.text in seen:
            continue
        seen.add(review.text)
        label = review.label
        if rng.random() < noise:
            label = 1 - label
        reviews.append(Review(review.text, label))
    return reviews


@functools.lru_cache(maxsize=1)
def load_split() -> tuple[tuple[Review, ...], tuple[Review, ...]]:
    """The fixed (train, heldout) split every service uses; disjoint by text."""
    reviews = generate()
    cut = int(len(reviews) * (1 - HELDOUT_SHARE))
    return tuple(reviews[:cut]), tuple(reviews[cut:])
