"""The request stream the cache bench replays: distinct texts, and Zipf-distributed picks among them."""

from __future__ import annotations

WORDS = (
    "the a of to and in is it you that he was for on are with as his they be at one have this from "
    "or had by hot word but what some we can out other were all there when up use your how said an "
    "each she which do their time if will way about many then them write would like so these her "
    "long make thing see him two has look more day could go come did number sound no most people my "
    "over know water than call first who may down side been now find any new work part take get "
    "place made live where after back little only round man year came show every good me give our "
    "under name very through just form sentence great think say help low line differ turn cause much "
    "mean before move right boy old too same tell does set three want air well also play small end "
    "put home read hand port large spell add even land here must big high such follow act why ask "
    "men change went light kind off need house picture try us again animal point mother world near "
    "build self earth father head stand own page should country found answer school grow study still "
    "learn plant cover food sun four between state keep eye never last let thought city tree cross "
    "farm hard start might story saw far sea draw left late run while press close night real life"
).split()


def corpus(n: int, seed: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < n:
        words = rng.choice(WORDS, size=int(rng.integers(6, 25)))
        text = " ".join(words).capitalize() + "."
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def zipf_stream(n_items: int, n_requests: int, skew: float, seed: int) -> list[int]:
    """Indices into the corpus; rank k (1-based) drawn with probability proportional to 1/k^skew."""
    import numpy as np

    weights = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** skew
    rng = np.random.default_rng(seed + 1)
    return [int(i) for i in rng.choice(n_items, size=n_requests, p=weights / weights.sum())]
