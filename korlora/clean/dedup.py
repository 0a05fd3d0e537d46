"""Exact and near-duplicate detection for Korean chat text.

Both work on a *dedup form* of the text: NFC, lower case, no whitespace and no punctuation, so spacing and
punctuation edits (띄어쓰기, 문장부호) do not make two rows different. Near duplicates use MinHash over
character n-grams (no tokenizer; Korean syllables are dense, so 5 characters ≈ two words) with LSH banding,
all vectorised with numpy, and candidate pairs are verified by exact Jaccard.

Seeds are fixed, so signatures depend only on the text: the same row gets the same signature in any block
of any worker.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_NON_WORD = re.compile(r"[\W_]+")
_MASK64 = (1 << 64) - 1
DEFAULT_NGRAM = 4
DEFAULT_NUM_PERM = 80
DEFAULT_BANDS = 16
DEFAULT_THRESHOLD = 0.8
BUCKET_WINDOW = 64  # in a bucket, each row is compared with at most this many earlier members


def dedup_form(text: str) -> str:
    """NFC, lower case, whitespace and punctuation removed."""
    return _NON_WORD.sub("", unicodedata.normalize("NFC", text).lower())


def dedup_text(row: dict) -> str:
    """The text of a row that dedup compares: user and assistant turns (system prompts are drawn at random
    by the data builders, so they are left out)."""
    return "\n".join(m["content"] for m in row["messages"] if m["role"] != "system")


def form_key(form: str) -> str:
    """Hex digest of a dedup form."""
    return hashlib.blake2b(form.encode("utf-8"), digest_size=16).hexdigest()


def exact_key(text: str) -> str:
    """Hex digest of the dedup form: rows with the same key are exact duplicates."""
    return form_key(dedup_form(text))


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads polynomial n-gram hashes over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shingle_hashes(forms: Sequence[str], ngram: int = DEFAULT_NGRAM) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the character n-grams of each dedup form, concatenated, and the start offset of each
    form's hashes (length ``len(forms) + 1``). A form shorter than ``ngram`` is one shingle."""
    padded = [f.ljust(ngram, "\0") if len(f) < ngram else f for f in forms]
    lengths = np.fromiter((len(f) for f in padded), dtype=np.int64, count=len(padded))
    counts = lengths - ngram + 1
    offsets = np.zeros(len(padded) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if not padded:
        return np.zeros(0, dtype=np.uint64), offsets
    cps = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    total = len(cps) - ngram + 1
    h = np.zeros(total, dtype=np.uint64)
    mult = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for j in range(ngram):
            h = h * mult + cps[j: j + total]
        h = _mix64(h)
    starts = np.repeat(np.cumsum(lengths) - lengths, counts) + (np.arange(offsets[-1]) - np.repeat(offsets[:-1], counts))
    return h[starts], offsets


@dataclass(frozen=True)
class MinHasher:
    """MinHash signatures (multiply-shift hashing of 64-bit shingles) and LSH band keys, seeded."""

    num_perm: int = DEFAULT_NUM_PERM
    bands: int = DEFAULT_BANDS
    ngram: int = DEFAULT_NGRAM
    seed: int = 1

    def __post_init__(self) -> None:
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        a = rng.integers(1, 2**63, size=self.num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        b = rng.integers(0, 2**63, size=self.num_perm, dtype=np.uint64)
        band_mult = rng.integers(1, 2**63, size=self.num_perm, dtype=np.uint64) | np.uint64(1)
        return a, b, band_mult

    def signatures(self, forms: Sequence[str], chunk: int = 1 << 15) -> np.ndarray:
        """``(len(forms), num_perm)`` uint32 signatures."""
        a, b, _ = self._params()
        hashes, offsets = shingle_hashes(forms, self.ngram)
        out = np.empty((len(forms), self.num_perm), dtype=np.uint32)
        start = 0
        with np.errstate(over="ignore"):
            while start < len(forms):
                end = int(np.searchsorted(offsets, offsets[start] + chunk, side="right")) - 1
                end = min(max(end, start + 1), len(forms))
                lo, hi = offsets[start], offsets[end]
                x = hashes[lo:hi]
                values = (a[:, None] * x[None, :] + b[:, None]) >> np.uint64(32)
                out[start:end] = np.minimum.reduceat(values, offsets[start:end] - lo, axis=1).T
                start = end
        return out

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """``(n, bands)`` uint64 keys: rows sharing a key in any band are candidate pairs."""
        _, _, mult = self._params()
        rows = self.num_perm // self.bands
        with np.errstate(over="ignore"):
            mixed = signatures.astype(np.uint64) * mult[None, :]
            keys = mixed.reshape(len(signatures), self.bands, rows).sum(axis=2, dtype=np.uint64)
            return _mix64(keys + np.arange(self.bands, dtype=np.uint64))


def estimate_margin(threshold: float, num_perm: int) -> float:
    """How far below ``threshold`` a MinHash estimate may fall for a true pair (4 standard errors)."""
    return 4 * (threshold * (1 - threshold) / num_perm) ** 0.5 + 0.02


def candidate_pairs(keys: np.ndarray, window: int = BUCKET_WINDOW, signatures: np.ndarray | None = None,
                    min_estimate: float = 0.0) -> np.ndarray:
    """Unique ``(i, j)`` pairs with ``i < j`` that share a band key; ``keys`` is ``(n, bands)``.

    Vectorised: rows are sorted by (key, index) per band and each row is paired with up to ``window``
    earlier rows of its bucket. With ``signatures``, pairs whose MinHash estimate of Jaccard is below
    ``min_estimate`` are dropped here, so templated data with big buckets stays cheap to verify.
    """
    n = len(keys)
    found = []
    index = np.arange(n)
    for band in range(keys.shape[1] if n else 0):
        order = np.lexsort((index, keys[:, band]))
        sorted_keys = keys[order, band]
        for d in range(1, window + 1):
            same = sorted_keys[d:] == sorted_keys[:-d]
            if not same.any():
                break  # equal keys at distance d+1 imply equal keys at distance d
            i, j = order[:-d][same], order[d:][same]
            if signatures is not None and min_estimate > 0:
                keep = (signatures[i] == signatures[j]).mean(axis=1) >= min_estimate
                i, j = i[keep], j[keep]
            found.append(i * n + j)
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    flat = np.unique(np.concatenate(found).astype(np.int64))
    return np.stack([flat // n, flat % n], axis=1)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two shingle-hash sets (sorted unique arrays)."""
    inter = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - inter
    return inter / union if union else 1.0


def shingle_set(form: str, ngram: int = DEFAULT_NGRAM) -> np.ndarray:
    hashes, _ = shingle_hashes([form], ngram)
    return np.unique(hashes)


def verify_pairs(forms: Sequence[str] | Mapping[int, str], pairs: np.ndarray, threshold: float,
                 ngram: int = DEFAULT_NGRAM, progress: bool = False) -> list[tuple[int, int, float]]:
    """The candidate pairs whose exact n-gram Jaccard is at least ``threshold``."""
    from tqdm import tqdm

    cache: dict[int, np.ndarray] = {}

    def sets(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = shingle_set(forms[i], ngram)
        return cache[i]

    out = []
    for i, j in tqdm(pairs.tolist(), desc="verify near duplicates", unit="pair", disable=not progress):
        score = jaccard(sets(i), sets(j))
        if score >= threshold:
            out.append((i, j, score))
    return out


def near_duplicate_pairs(texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD, ngram: int = DEFAULT_NGRAM,
                         num_perm: int = DEFAULT_NUM_PERM, bands: int = DEFAULT_BANDS,
                         seed: int = 1) -> list[tuple[int, int, float]]:
    """``(i, j, jaccard)`` with ``i < j`` for pairs of ``texts`` whose character n-gram Jaccard (of the dedup
    form) is at least ``threshold``, found by MinHash LSH and verified exactly. Sorted by ``(j, i)``."""
    forms = [dedup_form(t) for t in texts]
    hasher = MinHasher(num_perm=num_perm, bands=bands, ngram=ngram, seed=seed)
    signatures = hasher.signatures(forms)
    pairs = candidate_pairs(hasher.band_keys(signatures), signatures=signatures,
                            min_estimate=threshold - estimate_margin(threshold, num_perm))
    found = verify_pairs(forms, pairs, threshold, ngram)
    return sorted(found, key=lambda p: (p[1], p[0]))


def first_kept(n: int, pairs: Sequence[tuple[int, int, float]]) -> dict[int, tuple[int, float]]:
    """Greedy keep-first: row ``j`` is dropped when it is a near duplicate of an earlier row that is kept.
    Returns ``{dropped_j: (kept_i, jaccard)}``; pairs must be sorted by ``(j, i)``."""
    dropped: dict[int, tuple[int, float]] = {}
    for i, j, score in pairs:
        if j not in dropped and i not in dropped:
            dropped[j] = (i, score)
    return dropped
