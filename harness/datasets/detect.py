"""Format detection, one-call loading and the dataset card (``mcer-bench data inspect``).

``detect_format(path) -> str`` names the format of a file or folder, ``load_path(path,
**options) -> BenchDataset`` detects and loads it (each pickle unpickled once, safely), and
``dataset_card(dataset) -> dict`` gives splits, counts, dims, length statistics, the label
distribution, repairs and the SHA-256 check against the published MMSA checksums.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data.types import SPLITS, BenchDataset
from harness.datasets.safe_pickle import safe_load, sha256_file
from harness.errors import DataError

# thuiar/MMSA README (docs/FORMATS.md, "Published checksums")
PUBLISHED_SHA256 = {
    "MOSI/Processed/unaligned_50.pkl": "78e0f8b5ef8ff71558e7307848fc1fa929ecb078203f565ab22b9daab2e02524",
    "MOSI/Processed/aligned_50.pkl": "d3994fd25681f9c7ad6e9c6596a6fe9b4beb85ff7d478ba978b124139002e5f9",
    "MOSEI/Processed/unaligned_50.pkl": "ad8b23d50557045e7d47959ce6c5b955d8d983f2979c7d9b7b9226f6dd6fec1f",
    "MOSEI/Processed/aligned_50.pkl": "45eccfb748a87c80ecab9bfac29582e7b1466bf6605ff29d3b338a75120bf791",
    "SIMS/Processed/unaligned_39.pkl": "c9e20c13ec0454d98bb9c1e520e490c75146bfa2dfeeea78d84de047dbdd442f",
}
PICKLE_FORMATS = ("mmsa", "mult-pickle", "erc-pickle")
RAW_FORMATS = ("raw-mmsa", "raw-iemocap", "raw-meld")
FORMATS = (*PICKLE_FORMATS, "csd", *RAW_FORMATS)
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _pickle_format(obj: Any, source: str) -> str:
    if isinstance(obj, (tuple, list)):
        return "erc-pickle"
    if isinstance(obj, dict) and "train" in obj and isinstance(obj["train"], dict):
        keys = set(map(str, obj["train"]))
        if keys & {"regression_labels", "classification_labels", "annotations"}:
            return "mmsa"
        if "labels" in keys:
            return "mult-pickle"
        raise DataError(f"{source}: a split dict whose 'train' keys {sorted(keys)} have neither MMSA labels "
                        f"('regression_labels') nor MulT 'labels'")
    kind = type(obj).__name__
    extra = f" with keys {sorted(map(str, obj))}" if isinstance(obj, dict) else ""
    raise DataError(f"{source}: unrecognised pickle content: a {kind}{extra}; expected an MMSA/MulT split dict "
                    f"or an ERC tuple")


def _folder_format(p: Path) -> str:
    if any(p.glob("*.csd")):
        return "csd"
    if (p / "label.csv").is_file() and (p / "Raw").is_dir():
        return "raw-mmsa"
    if any(p.glob("Session[0-9]*")):
        return "raw-iemocap"
    if any(p.rglob("*_sent_emo.csv")):
        return "raw-meld"
    raise DataError(f"{p}: folder holds no recognised dataset layout (expected *.csd files, label.csv + Raw/ "
                    f"(MMSA), Session1..5/ (IEMOCAP) or *_sent_emo.csv (MELD))")


def detect_format(path: str | Path) -> str:
    """One of :data:`FORMATS` for a file or a folder.

    Pickles are unpickled (safely) to look inside; the error names the path when nothing fits.
    """
    p = Path(path)
    if p.is_dir():
        return _folder_format(p)
    if not p.is_file():
        raise FileNotFoundError(f"dataset path {str(p)!r} does not exist")
    with open(p, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC or p.suffix == ".csd":
        return "csd"
    if not head:
        raise DataError(f"{p}: empty file")
    return _pickle_format(safe_load(p), str(p))


def load_path(path: str | Path, **options: Any) -> BenchDataset:
    """Detect the format of ``path`` and load it with the matching registered loader's options."""
    from harness.datasets.erc_pickle import erc_from_object
    from harness.datasets.mmsa import mmsa_from_object
    from harness.datasets.mult_pickle import mult_from_object
    from harness.registry import DATASETS

    p = Path(path)
    fmt = _folder_format(p) if p.is_dir() else None
    if fmt in RAW_FORMATS:
        return DATASETS.create(fmt, path=str(p), **options)
    if fmt is None:
        if not p.is_file():
            raise FileNotFoundError(f"dataset path {str(p)!r} does not exist")
        with open(p, "rb") as f:
            head = f.read(8)
        if head == HDF5_MAGIC or p.suffix == ".csd":
            fmt = "csd"
    if fmt == "csd":
        return DATASETS.create("csd", path=str(p), **options)
    obj = safe_load(p)
    fmt = _pickle_format(obj, str(p))
    DATASETS.resolve(fmt, {"path": str(p), **options})  # names and values, as DATASETS.create checks them
    build = {"mmsa": mmsa_from_object, "mult-pickle": mult_from_object, "erc-pickle": erc_from_object}[fmt]
    return build(obj, str(p), sha256=sha256_file(p), **options)


def inspect_path(path: str | Path, **options: Any) -> dict[str, Any]:
    """The card ``mcer-bench data inspect PATH`` prints: for a single ``.csd`` file, what that
    sequence holds (:func:`harness.datasets.csd.describe_sequence`, no labels needed);
    otherwise the dataset card of the detected format loaded with ``options``."""
    p = Path(path)
    if p.is_file():
        with open(p, "rb") as f:
            head = f.read(8)
        if head == HDF5_MAGIC or p.suffix == ".csd":
            if options:
                raise ValueError(f"{p}: options {sorted(options)} apply to loading a dataset; a single .csd file is "
                                 f"described as it is (inspect its folder to load the dataset)")
            from harness.datasets.csd import describe_sequence

            return describe_sequence(p)
    return dataset_card(load_path(p, **options))


def checksum_status(source: str | None, sha256: str | None) -> dict[str, Any]:
    """Compare a file's SHA-256 with the published MMSA value for its path (or any published value)."""
    if not sha256:
        return {"sha256": None, "published": None, "match": None, "note": "no checksum recorded"}
    norm = (source or "").replace("\\", "/")
    for rel, published in PUBLISHED_SHA256.items():
        if norm.endswith(rel):
            return {"sha256": sha256, "published": published, "file": rel, "match": sha256 == published}
    for rel, published in PUBLISHED_SHA256.items():
        if sha256 == published:
            return {"sha256": sha256, "published": published, "file": rel, "match": True}
    return {"sha256": sha256, "published": None, "match": None, "note": "no published checksum for this file"}


def dataset_card(dataset: BenchDataset) -> dict[str, Any]:
    """JSON-serialisable card: splits, dialogue/utterance counts, dims, length stats, labels, repairs, checksum."""
    out = dataset.summary()
    card = dict(dataset.card)
    out["dims"] = dict(dataset.spec.dims)
    out["repairs"] = card.get("repairs", {"total": 0, "by_kind": {}, "items": []})
    out["checksum"] = checksum_status(card.get("source"), card.get("sha256"))
    out["format"] = card.get("format")
    out["validation"] = card.get("validation")
    out["utterances_per_dialogue"] = {
        s: _stats([len(d) for d in dataset.splits[s]]) for s in SPLITS
    }
    return out


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": float(min(values)), "mean": float(sum(values) / len(values)), "max": float(max(values))}
