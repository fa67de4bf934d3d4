"""Transcript corruptions of ``utt.raw.transcript`` (words split on whitespace).

Each word is hit independently with the severity's rate; replacement words come from fixed
lists (never from other utterances), so the result is a pure function of the utterance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.corruption import RawCorruption, SeverityTable, UttContext
from harness.data.types import Utterance
from harness.registry import CORRUPTIONS

RATE_TABLE = SeverityTable("word_rate", "of words", (0.0, 0.1, 0.2, 0.3, 0.45, 0.6))

COMMON_WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by "
    "word but not what all were we when your can said there use an each which she do how their if will up "
    "other about out many then them these so some her would make like him into time has look two more write "
    "go see number no way could people my than first water been call who oil its now find long down day did"
).split()

# Homophones and near-homophones an ASR system typically confuses (both directions are used).
CONFUSIONS = {
    "there": ["their", "they're"], "their": ["there"], "to": ["two", "too"], "too": ["to"], "two": ["to"],
    "for": ["four", "far"], "know": ["no", "now"], "no": ["know"], "right": ["write", "ride"], "hear": ["here"],
    "here": ["hear"], "its": ["it's"], "it's": ["its"], "your": ["you're", "year"], "then": ["than", "them"],
    "than": ["then"], "would": ["wood"], "i": ["eye", "a"], "a": ["uh", "the"], "the": ["a", "uh"], "and": ["an", "in"],
    "we": ["wee", "he"], "you": ["yeah", "ew"], "great": ["grate", "gray"], "love": ["of", "laugh"],
    "hate": ["eight", "height"], "sad": ["said", "sat"], "miss": ["this", "mess"], "fine": ["find", "five"],
    "sure": ["shore", "sugar"], "lost": ["last", "loss"], "call": ["cool", "all"], "work": ["walk", "word"],
    "home": ["hum", "whole"], "well": ["will", "wall"], "what": ["want", "watt"], "so": ["sew", "saw"],
}


def _asr_word(word: str, rng: np.random.Generator) -> str:
    low = word.lower()
    if low in CONFUSIONS:
        return str(rng.choice(CONFUSIONS[low]))
    if len(low) > 3:  # a phonetic-ish slip: drop, double or swap a letter
        k = int(rng.integers(1, len(low) - 1))
        op = int(rng.integers(0, 3))
        if op == 0:
            return low[:k] + low[k + 1:]
        if op == 1:
            return low[:k] + low[k] + low[k:]
        return low[:k - 1] + low[k] + low[k - 1] + low[k + 1:]
    return str(rng.choice(COMMON_WORDS))


class TextCorruption(RawCorruption):
    raw_field = "transcript"
    table = RATE_TABLE

    def __init__(self, modality: str = "text", extractor: dict[str, Any] | str | None = None,
                 device: str = "auto") -> None:
        super().__init__(modality, extractor=extractor, device=device)

    def corrupt_words(self, words: list[str], rate: float, rng: np.random.Generator) -> list[str]:
        raise NotImplementedError

    def corrupt_raw(self, utts: Sequence[Utterance], severity: int, rngs: Sequence[np.random.Generator],
                    contexts: Sequence[UttContext]) -> list[Any]:
        return [" ".join(self.corrupt_words(str(u.raw.transcript).split(), self.table[severity], r))
                for u, r in zip(utts, rngs)]


@CORRUPTIONS.register("text-deletion")
class WordDeletion(TextCorruption):
    """Word deletion: each word is dropped with probability ``word_rate``."""

    title = "Deleted words"

    def corrupt_words(self, words, rate, rng):
        hit = rng.random(len(words)) < rate
        return [w for w, h in zip(words, hit) if not h]


@CORRUPTIONS.register("text-substitution")
class WordSubstitution(TextCorruption):
    """Word substitution: each word is replaced, with probability ``word_rate``, by a random
    common English word."""

    title = "Substituted words"

    def corrupt_words(self, words, rate, rng):
        hit = rng.random(len(words)) < rate
        subs = rng.choice(COMMON_WORDS, size=len(words))
        return [str(s) if h else w for w, h, s in zip(words, hit, subs)]


@CORRUPTIONS.register("text-asr")
class AsrConfusion(TextCorruption):
    """ASR-like errors: each word, with probability ``word_rate``, is confused with a homophone
    (their/there, four/for...), mangled by a letter slip, or (1 in 5 hits) deleted."""

    title = "ASR errors"

    def corrupt_words(self, words, rate, rng):
        out = []
        for w in words:
            if rng.random() < rate:
                if rng.random() < 0.2:
                    continue
                out.append(_asr_word(w, rng))
            else:
                out.append(w)
        return out


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein word error rate of ``hypothesis`` against ``reference`` (whitespace words)."""
    r, h = reference.split(), hypothesis.split()
    d = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        prev, d[0] = d.copy(), i
        for j in range(1, len(h) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return float(d[len(h)]) / max(1, len(r))
