"""The openSMILE extractor: the widths openSMILE documents, and exactly what opensmile.Smile computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import opensmile
import pytest

from harness import EXTRACTORS
from harness.data.types import RawMedia
from harness.datasets.media import decode_audio
from harness.extractors.smile import FEATURE_SETS
from harness.options import option_specs

SR = 16000
FIXTURES = Path(__file__).parent / "fixtures" / "speech"

# Feature counts as openSMILE's documentation and the papers that defined the sets give them
# (functionals; low-level descriptors per 10 ms frame): IS09 emotion challenge 384, IS10
# paralinguistic challenge 1582, IS13 / ComParE 2016 6373, eGeMAPS v02 88, emobase 988.
DOCUMENTED = {
    "IS09_emotion": (384, 16),
    "IS10_paraling": (1582, 38),
    "IS13_ComParE": (6373, 65),
    "ComParE_2016": (6373, 65),
    "eGeMAPSv02": (88, 25),
    "emobase": (988, 26),
}


@pytest.fixture(scope="module")
def speech() -> RawMedia:
    return RawMedia(waveform=decode_audio(FIXTURES / "s2_excited.wav", SR), sample_rate=SR)


def test_every_feature_set_has_the_documented_width(speech):
    assert set(DOCUMENTED) == set(FEATURE_SETS)
    for feature_set, (functionals, lld) in DOCUMENTED.items():
        func = EXTRACTORS.create("opensmile", feature_set=feature_set, level="functionals")
        frames = EXTRACTORS.create("opensmile", feature_set=feature_set, level="lld")
        assert (func.dim, frames.dim) == (functionals, lld), feature_set
        x, y = func.extract([speech])[0], frames.extract([speech])[0]
        assert x.shape == (1, functionals) and y.shape[1] == lld, feature_set
        # one LLD row per 10 ms frame (a few frames fewer at the edges, by each set's window)
        assert abs(y.shape[0] - len(speech.waveform) / 160) < 8, (feature_set, y.shape)
        assert np.isfinite(x.numpy()).all() and np.isfinite(y.numpy()).all()


@pytest.mark.parametrize("level", ["functionals", "lld"])
def test_output_equals_opensmile_process_signal(level):
    """On fixture WAVs decoded as the raw loaders decode them, every set and level is exactly
    what ``opensmile.Smile(...).process_signal`` returns for the same signal."""
    media = [RawMedia(waveform=decode_audio(FIXTURES / name, SR), sample_rate=SR)
             for name in ("s1_calm.wav", "s3_excited.wav")]
    smile_level = {"functionals": opensmile.FeatureLevel.Functionals, "lld": opensmile.FeatureLevel.LowLevelDescriptors}
    for feature_set, member in FEATURE_SETS.items():
        ex = EXTRACTORS.create("opensmile", feature_set=feature_set, level=level)
        smile = opensmile.Smile(feature_set=opensmile.FeatureSet[member], feature_level=smile_level[level])
        assert ex.feature_names == list(smile.feature_names)
        for m, x in zip(media, ex.extract(media)):
            expected = smile.process_signal(m.waveform, SR).to_numpy(dtype=np.float32)
            np.testing.assert_array_equal(x.numpy(), expected, err_msg=f"{feature_set} {level}")


def test_is10_functionals_differ_between_calm_and_excited_speech():
    ex = EXTRACTORS.create("opensmile", feature_set="IS10_paraling")
    calm, excited = ex.extract([RawMedia(waveform=decode_audio(FIXTURES / f"s1_{s}.wav", SR), sample_rate=SR)
                                for s in ("calm", "excited")])
    names = ex.feature_names
    pitch = names.index("F0final_sma_amean")
    assert excited[0, pitch] > calm[0, pitch] * 1.3  # espeak-ng's pitch 80 against 30


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError) as err:
        EXTRACTORS.create("opensmile", feature_set="IS11_speaker_state")
    message = str(err.value)
    assert "\n" not in message and "'IS11_speaker_state'" in message
    assert all(name in message for name in FEATURE_SETS)
    with pytest.raises(ValueError, match="option 'level' does not allow 'deltas': must be one of 'functionals', 'lld'"):
        EXTRACTORS.create("opensmile", level="deltas")
    with pytest.raises(ValueError, match=r"option 'sample_rate' does not allow 100: must lie in \[8000, 192000\]"):
        EXTRACTORS.create("opensmile", sample_rate=100)
    ex = EXTRACTORS.create("opensmile", feature_set="eGeMAPSv02")
    with pytest.raises(ValueError, match="item 0 has sample rate 8000 Hz, expected 16000 Hz"):
        ex.extract([RawMedia(waveform=np.zeros(8000, np.float32), sample_rate=8000)])
    with pytest.raises(ValueError, match="item 0 has no waveform"):
        ex.extract([RawMedia(transcript="hello")])


def test_options_are_declared_for_describe_and_config_checks():
    specs = {s.name: s for s in option_specs(EXTRACTORS.get("opensmile"))}
    assert specs["feature_set"].allowed == tuple(FEATURE_SETS)
    assert specs["level"].allowed == ("functionals", "lld")
    assert specs["feature_set"].default == "IS10_paraling"


def test_is10_functionals_have_the_audio_width_of_the_iemocap_presets():
    """Raw IEMOCAP audio through IS10 feeds these presets with no projection in between."""
    from harness import MODELS
    from harness.presets import presets_of

    width = EXTRACTORS.create("opensmile", feature_set="IS10_paraling").dim
    for model in ("mcer-reference", "sdt", "mmgcn"):
        assert presets_of(MODELS.get(model))["iemocap"].dims["audio"] == width, model
