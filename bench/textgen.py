"""Message text that searches like real support mail: a few very common words,
a long tail of rare ones, and recurring phrases.

Words are drawn from a Zipf-like distribution over a vocabulary of common
English and support words followed by thousands of made-up rare words. A
pre-drawn stream of words is cut into messages, which is fast enough to write a
million messages in seconds.
"""

from __future__ import annotations

import random

COMMON_WORDS = """
the to and a i you for is my order it of in on this with can not have be your
we that please me do was but are at hi thanks just an there what when how if
from get so will it's would no help our all one need its about know still any
has been out up could i'm some did hello payment they time new account by see
delivery back as or refund shipping package email here now like more should
which then them only day week also code number phone tracking address invoice
product price return received store website app login password card size
colour item again problem cancel change update discount today tomorrow yesterday
customer support team reply message issue working broken error page checkout
box damaged missing wrong sent arrived late early monday friday weekend shop
free express standard label courier warehouse stock available soon ticket
question answer information details link click button screen mobile laptop
subscription plan monthly yearly renew charged twice bank transfer paypal
voucher gift wrap exchange replacement warranty repair manual instructions
""".split()

# Phrases customers type again and again; searched as phrases.
PHRASES = [
    "tracking number",
    "where is my order",
    "cannot log in",
    "charged twice",
    "wrong size",
    "refund request",
    "delivery address",
    "discount code does not work",
]

# A word that occurs in a handful of messages only: the rare-word search.
RARE_WORD = "quokkaberry"
COMMON_WORD = "order"
PHRASE = "tracking number"

_SYLLABLES = (
    "ka lo mi ne ra tu vi so pe da zu fo gri bla tre ster mon vel dor qui".split()
)


def _rare_words(count: int, rng: random.Random) -> list[str]:
    words = set()
    while len(words) < count:
        size = rng.randint(2, 4)
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(size)))
    return sorted(words)


class TextGenerator:
    def __init__(self, seed: int = 7, stream_words: int = 2_000_000):
        rng = random.Random(seed)
        vocabulary = COMMON_WORDS + _rare_words(30_000, rng)
        # Zipf's law: the k-th most common word appears about 1/k as often.
        weights = [1.0 / (rank + 1) ** 1.07 for rank in range(len(vocabulary))]
        self._stream = rng.choices(vocabulary, weights=weights, k=stream_words)
        self._rng = rng

    def message(self, index: int) -> str:
        """The text of message number ``index``, 3 to 60 words long."""
        rng = self._rng
        length = min(60, 3 + int(rng.expovariate(1 / 14)))
        start = rng.randrange(0, len(self._stream) - length)
        words = self._stream[start : start + length]
        if rng.random() < 0.04:
            words.insert(rng.randrange(len(words) + 1), rng.choice(PHRASES))
        if index % 50_000 == 1234:
            words.insert(rng.randrange(len(words) + 1), RARE_WORD)
        text = " ".join(words)
        return text[0].upper() + text[1:] + rng.choice(".?!.")

    def subject(self) -> str:
        return " ".join(self._rng.sample(COMMON_WORDS[60:], 4)).capitalize()
