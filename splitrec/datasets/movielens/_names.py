"""Synthetic movie titles in the ml-1m style, e.g. ``Last Harbor, The (1995)``."""

import numpy as np

_ADJECTIVES = (
    "Silent", "Broken", "Golden", "Lost", "Dark", "Last", "Wild", "Hidden",
    "Crimson", "Frozen", "Secret", "Burning", "Lonely", "Electric", "Midnight",
    "Restless", "Hollow", "Sweet", "Savage", "Little", "Distant", "Eternal",
    "Fallen", "Bright", "Quiet", "Strange", "Final", "Blue", "Iron", "Velvet",
)  # fmt: skip
_NOUNS = (
    "River", "Harbor", "Kingdom", "Stranger", "Summer", "Promise", "Machine",
    "Garden", "Highway", "Detective", "Island", "Winter", "Empire", "Shadow",
    "Dream", "Mountain", "Witness", "Circus", "Journey", "Station", "Letter",
    "Planet", "Castle", "Heart", "Storm", "Mirror", "Frontier", "Game",
    "Ghost", "Orchard", "Train", "Border", "Symphony", "Horizon", "Legend",
)  # fmt: skip
_NAMES = (
    "Jack", "Emma", "Harry", "Lucy", "Max", "Rosie", "Sam", "Nora", "Eddie",
    "Grace", "Leo", "Molly", "Otto", "Ruby", "Walter", "Vera",
)  # fmt: skip
# Latin-1 words, as in the real foreign-language ml-1m titles.
_FOREIGN = (
    "Café", "Amélie", "Noël", "Señora", "Garçon", "Fräulein", "Müller",
    "Été", "Déjà", "Über", "Château", "Niño", "Søren", "Façade",
)  # fmt: skip
_ARTICLES = ("The", "A", "An")
_SEQUELS = ("2", "II", "III", "Part II")


def make_titles(rng: np.random.Generator, count: int) -> list[str]:
    """Return ``count`` distinct titles with years, some with commas or latin-1."""
    years = _years(rng, count)
    titles: list[str] = []
    seen: set[str] = set()
    while len(titles) < count:
        title = f"{_base_title(rng)} ({years[len(titles)]})"
        if title not in seen:
            seen.add(title)
            titles.append(title)
    return titles


def _years(rng: np.random.Generator, count: int) -> list[int]:
    """Release years 1919..2000, mostly from the 1990s."""
    recent = rng.random(count) < 0.6
    old = rng.integers(1919, 1990, count)
    new = rng.integers(1990, 2001, count)
    return np.where(recent, new, old).tolist()


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _base_title(rng: np.random.Generator) -> str:
    kind = float(rng.random())
    if kind < 0.02:
        core = f"{_pick(rng, _FOREIGN)} {_pick(rng, _NOUNS)}"
    elif kind < 0.14:
        # ml-1m moves a leading article to the end: "American President, The".
        core = f"{_pick(rng, _ADJECTIVES)} {_pick(rng, _NOUNS)}"
        return f"{core}, {_pick(rng, _ARTICLES)}"
    elif kind < 0.18:
        return f"{_pick(rng, _NOUNS)}, {_pick(rng, _NOUNS)} and {_pick(rng, _NOUNS)}"
    elif kind < 0.40:
        core = f"{_pick(rng, _NOUNS)} of the {_pick(rng, _NOUNS)}"
    elif kind < 0.52:
        core = f"{_pick(rng, _NAMES)}'s {_pick(rng, _NOUNS)}"
    elif kind < 0.60:
        core = _pick(rng, _NOUNS)
    else:
        core = f"{_pick(rng, _ADJECTIVES)} {_pick(rng, _NOUNS)}"
    if rng.random() < 0.04:
        core = f"{core} {_pick(rng, _SEQUELS)}"
    return core
