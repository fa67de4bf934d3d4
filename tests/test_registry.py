import pytest

from harness.registry import Registry, RegistryError


def test_register_create_and_glob():
    reg = Registry("widget")

    @reg.register("alpha-one", level="utterance")
    class Alpha:
        """Alpha widget."""

        def __init__(self, size: int = 3):
            self.size = size

    @reg.register("beta")
    def beta(scale: float = 1.0):
        return ("beta", scale)

    assert reg.names() == ["alpha-one", "beta"]
    assert reg.names("alpha*") == ["alpha-one"]
    assert reg.create("alpha-one", size=5).size == 5
    assert reg.create("beta", scale=2.0) == ("beta", 2.0)
    assert reg.get("alpha-one").metadata == {"level": "utterance"}
    assert reg.get("alpha-one").summary == "Alpha widget."


def test_unknown_name_lists_close_matches():
    reg = Registry("widget")
    reg.register("early-fusion")(lambda: None)
    reg.register("late-fusion")(lambda: None)
    with pytest.raises(RegistryError, match=r"unknown widget 'early-fuson'.*Did you mean: early-fusion"):
        reg.get("early-fuson")


def test_unknown_option_is_named_with_accepted_ones():
    reg = Registry("widget")

    @reg.register("w")
    class W:
        def __init__(self, spec, hidden: int = 4, dropout: float = 0.1):
            pass

    with pytest.raises(RegistryError, match=r"no option 'hiden'.*Did you mean 'hidden'.*Accepted options: dropout, hidden"):
        reg.create("w", object(), hiden=3)


def test_duplicate_name_from_another_object_is_refused():
    reg = Registry("widget")
    reg.register("x")(lambda: 1)

    def other():
        return 2

    with pytest.raises(RegistryError, match="already registered"):
        reg.register("x")(other)


def test_builtin_registries_are_populated():
    from harness import CORRUPTIONS, DATASETS, EXTRACTORS, MODELS

    assert {"text-only", "early-fusion"} <= set(MODELS.names())
    assert "synthetic" in DATASETS
    assert "feature-gaussian" in CORRUPTIONS
    assert {"logmel", "frame-stats", "hash-embed"} <= set(EXTRACTORS.names())


def test_missing_required_option_is_named():
    reg = Registry("dataset")

    @reg.register("files")
    def files(path: str, seed: int = 0):
        return path

    with pytest.raises(RegistryError, match=r"dataset 'files' needs option\(s\) 'path' \(no default\)"):
        reg.create("files")
    assert reg.create("files", path="x") == "x"
