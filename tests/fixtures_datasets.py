"""Writers of tiny dataset files in the exact published on-disk formats (docs/FORMATS.md) (used by test_datasets_*).

Nothing here is committed data: every test writes its files into ``tmp_path``.
"""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np

from harness.datasets.erc_pickle import LAYOUTS

# ---------------------------------------------------------------- a Python-2-style pickle writer


def py2_dumps(obj) -> bytes:
    """Protocol-2 pickle as Python 2 + NumPy 1.x wrote it: py2 ``str`` (BINSTRING) for text and
    array bytes, ``numpy.core.multiarray._reconstruct``, ``__builtin__.set``."""
    out = bytearray(b"\x80\x02")

    def s(x: str | bytes) -> None:  # py2 str
        b = x.encode("latin1") if isinstance(x, str) else x
        out.extend(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b)

    def glob(mod: str, name: str) -> None:
        out.extend(f"c{mod}\n{name}\n".encode())

    def w(x) -> None:
        if x is None:
            out.extend(b"N")
        elif isinstance(x, bool):
            out.extend(b"\x88" if x else b"\x89")
        elif isinstance(x, (int, np.integer)):
            out.extend(b"J" + struct.pack("<i", int(x)))
        elif isinstance(x, float):
            out.extend(b"G" + struct.pack(">d", x))
        elif isinstance(x, (str, bytes)):
            s(x)
        elif isinstance(x, dict):
            out.extend(b"}")
            for k, v in x.items():
                w(k)
                w(v)
                out.extend(b"s")
        elif isinstance(x, list):
            out.extend(b"]")
            for v in x:
                w(v)
                out.extend(b"a")
        elif isinstance(x, tuple):
            out.extend(b"(")
            for v in x:
                w(v)
            out.extend(b"t")
        elif isinstance(x, set):
            glob("__builtin__", "set")
            w(sorted(x))
            out.extend(b"\x85R")
        elif isinstance(x, np.ndarray):
            glob("numpy.core.multiarray", "_reconstruct")
            glob("numpy", "ndarray")
            out.extend(b"(K\x00tU\x01b\x87R")
            out.extend(b"(K\x01")
            w(tuple(int(d) for d in x.shape))
            glob("numpy", "dtype")
            s(x.dtype.str[1:])
            out.extend(b"K\x00K\x01\x87R(K\x03")
            s("<" if x.dtype.itemsize > 1 else "|")
            out.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
            out.extend(b"\x89")
            s(np.ascontiguousarray(x).tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(x))

    w(obj)
    out.extend(b".")
    return bytes(out)


class Evil:
    """Unpickling this runs ``touch <sentinel>`` (as a malicious dataset file would)."""

    def __init__(self, sentinel: str) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


# ---------------------------------------------------------------- MMSA


def mmsa_dict(variant: str = "unaligned", n=(3, 2, 2), lt=6, dt=8, la=9, da=5, lv=7, dv=4, seed=0,
              neg_inf=True) -> dict:
    """MMSA processed split dict; ``variant`` in unaligned / aligned / sims. Zero tail padding."""
    rng = np.random.default_rng(seed)
    if variant == "aligned":
        la = lv = lt
    out = {}
    for split, ns in zip(("train", "valid", "test"), n):
        t_len = rng.integers(2, lt + 1, ns)
        a_len = t_len if variant == "aligned" else rng.integers(1, la + 1, ns)
        v_len = t_len if variant == "aligned" else rng.integers(1, lv + 1, ns)
        text, audio, vision = np.zeros((ns, lt, dt)), np.zeros((ns, la, da)), np.zeros((ns, lv, dv))
        tb = np.zeros((ns, 3, lt))
        for i in range(ns):
            text[i, : t_len[i]] = rng.normal(size=(t_len[i], dt)) + 0.1
            audio[i, : a_len[i]] = rng.normal(size=(a_len[i], da)) + 0.1
            vision[i, : v_len[i]] = rng.normal(size=(v_len[i], dv)) + 0.1
            tb[i, 0, : t_len[i]] = rng.integers(100, 200, t_len[i])
            tb[i, 1, : t_len[i]] = 1
        if neg_inf and split == "train":
            audio[0, 0, 0] = -np.inf
        videos = [f"vid{j % 2}" for j in range(ns)]
        ids = np.array([f"{split}{v}$_${j}" for j, v in enumerate(videos)])
        lo = 1.0 if variant == "sims" else 3.0
        reg = np.round(rng.uniform(-lo, lo, ns), 1)
        ann = np.array(["Negative" if r < 0 else ("Neutral" if r == 0 else "Positive") for r in reg])
        d = {"raw_text": np.array([f"text {j}" for j in range(ns)]), "id": ids, "audio": audio.astype(np.float32),
             "vision": vision.astype(np.float32), "text": text.astype(np.float32),
             "text_bert": tb.astype(np.float32), "annotations": ann,
             "classification_labels": np.array([0 if r < 0 else (1 if r == 0 else 2) for r in reg], dtype=float),
             "regression_labels": reg.astype(np.float32)}
        if variant != "aligned":
            d["audio_lengths"] = [int(x) for x in a_len]
            d["vision_lengths"] = np.asarray(v_len)
        if variant == "sims":
            for m in "TAV":
                d[f"regression_labels_{m}"] = np.round(rng.uniform(-1, 1, ns), 1).astype(np.float32)
        out[split] = d
    return out


def mult_dict(iemocap: bool = False, n=(3, 2, 2), lt=5, dt=6, la=7, da=3, lv=8, dv=4, seed=0) -> dict:
    """MulT ``*_data_noalign.pkl`` split dict; CMU-SDK left padding; MOSI ids as bytes."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, ns in zip(("train", "valid", "test"), n):
        d = {}
        for key, L, D in (("text", lt, dt), ("audio", la, da), ("vision", lv, dv)):
            x = np.zeros((ns, L, D), dtype=np.float32)
            for i in range(ns):
                t = int(rng.integers(1, L + 1))
                x[i, L - t:] = rng.normal(size=(t, D)) + 0.1
            d[key] = x
        if iemocap:
            lab = np.zeros((ns, 4, 2), dtype=np.float32)
            lab[:, :, 0] = 1
            for i in range(ns):
                c = i % 4
                lab[i, c] = [0, 1]
            d["labels"] = lab
            d["id"] = np.array([[f"Ses01F_impro0{i}", str(i), "x"] for i in range(ns)])
        else:
            d["labels"] = rng.uniform(-3, 3, (ns, 1, 1)).astype(np.float32)
            d["id"] = np.array([f"{split}vid{i % 2}$_${i}".encode() for i in range(ns)], dtype=object)
        out[split] = d
    return out


# ---------------------------------------------------------------- ERC tuples

IEMOCAP_DIMS = {"text": 10, "audio": 12, "video": 7}
MELD_DIMS = {"text": 9, "audio": 6, "video": 5}


def erc_tuple(layout: str, n_train: int = 5, n_test: int = 2, seed: int = 0, dims: dict | None = None) -> tuple:
    """A tuple in ``layout`` (see ``LAYOUTS``); IEMOCAP-like when speakers are 'M'/'F'."""
    rng = np.random.default_rng(seed)
    roles = LAYOUTS[layout]
    meld = "meld" in layout
    dims = dims or (MELD_DIMS if meld else IEMOCAP_DIMS)
    n_cls = 7 if meld else 6
    vids = list(range(n_train + n_test + (1 if "valid" in roles else 0))) if meld else \
        [f"Ses0{1 + i // 3}F_impro0{i % 3}" for i in range(n_train + n_test + (1 if "valid" in roles else 0))]
    lens = {v: int(rng.integers(2, 5)) for v in vids}
    slots = []
    for r in roles:
        if r == "ids":
            slots.append({v: [f"{v}_F{j:03d}" for j in range(lens[v])] for v in vids})
        elif r == "speakers":
            slots.append({v: ([list(np.eye(9, dtype=int)[rng.integers(0, 9)]) for _ in range(lens[v])] if meld
                              else [["M", "F"][j % 2] for j in range(lens[v])]) for v in vids})
        elif r == "labels":
            slots.append({v: [int(rng.integers(0, n_cls)) for _ in range(lens[v])] for v in vids})
        elif r == "sentiment":
            slots.append({v: [int(rng.integers(0, 3)) for _ in range(lens[v])] for v in vids})
        elif r in ("text", "audio", "video"):
            slots.append({v: [rng.normal(size=dims[r]).astype(np.float32) for _ in range(lens[v])] for v in vids})
        elif r == "sentences":
            slots.append({v: [f"utterance {j} caf\xe9" for j in range(lens[v])] for v in vids})
        elif r == "train":
            slots.append(vids[:n_train])
        elif r == "test":
            slots.append(set(vids[n_train:n_train + n_test]))
        elif r == "valid":
            slots.append(vids[n_train + n_test:])
        else:  # "_": unused slots: roberta2..4 features, or a trailing extra
            slots.append({v: [rng.normal(size=4).astype(np.float32) for _ in range(lens[v])] for v in vids})
    return tuple(slots)


def poisoned_dataset_objects(evil: object) -> dict[str, object]:
    """An MMSA dict, a MulT dict and an ERC tuple, each with ``evil`` nested where data sits."""
    m = mmsa_dict()
    m["train"]["regression_labels"] = evil
    mu = mult_dict()
    mu["test"]["id"] = evil
    e = list(erc_tuple("dialoguernn-iemocap-9"))
    e[6] = {"x": evil}
    return {"mmsa": m, "mult": mu, "erc": tuple(e)}


def write_pickle(path, obj, protocol: int = 4) -> str:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return str(path)


def write_py2(path, obj) -> str:
    with open(path, "wb") as f:
        f.write(py2_dumps(obj))
    return str(path)


# ---------------------------------------------------------------- CMU SDK .csd (HDF5)


def write_csd(path, root: str, entries: dict, metadata: dict | None = None) -> str:
    """``/<root>/data/<vid>/{features,intervals}`` + ``/<root>/metadata/<key>`` (vlen-str JSON), gzip 9."""
    import json

    import h5py

    with h5py.File(path, "w") as f:
        g = f.create_group(root)
        data = g.create_group("data")
        for vid, (feats, iv) in entries.items():
            e = data.create_group(vid)
            e.create_dataset("features", data=feats, compression="gzip", compression_opts=9)
            e.create_dataset("intervals", data=iv, compression="gzip", compression_opts=9)
        meta = g.create_group("metadata")
        for k, v in (metadata or {"root name": root, "dimension namescomputational sequence version": "1.0"}).items():
            ds = meta.create_dataset(k, (1,), dtype=h5py.special_dtype(vlen=str))
            ds[0] = json.dumps(v)
    return str(path)


def csd_folder(folder, n_videos: int = 5, da: int = 5, dv: int = 3, dt: int = 6, seed: int = 0,
               label_width: int = 1) -> dict:
    """MOSI-like folder: words (with b'sp'), word vectors, COVAREP, Facet, opinion labels; returns the raw data."""
    rng = np.random.default_rng(seed)
    words, vecs, audio, video, labels = {}, {}, {}, {}, {}
    for k in range(n_videos):
        vid = f"vid_{k}"
        toks = [b"sp", b"hello", b"world", b"sp", b"this", b"is", b"good", b"sp"]
        iv = np.array([[0.5 * i, 0.5 * (i + 1)] for i in range(len(toks))])
        words[vid] = (np.array(toks, dtype="S").reshape(-1, 1), iv)
        vecs[vid] = (rng.normal(size=(len(toks), dt)).astype(np.float32), iv.copy())
        ta = np.arange(0, 4.0, 0.1)
        audio[vid] = (rng.normal(size=(len(ta), da)).astype(np.float32), np.stack([ta, ta + 0.1], 1))
        tv = np.arange(0, 4.0, 0.25)
        video[vid] = (rng.normal(size=(len(tv), dv)).astype(np.float32), np.stack([tv, tv + 0.25], 1))
        lab = rng.uniform(-3, 3, (2, label_width)).astype(np.float32)
        labels[vid] = (lab, np.array([[0.0, 1.6], [1.9, 4.0]]))
    folder.mkdir(parents=True, exist_ok=True)
    write_csd(folder / "CMU_MOSI_TimestampedWords.csd", "words", words)
    write_csd(folder / "CMU_MOSI_TimestampedWordVectors.csd", "glove_vectors", vecs)
    write_csd(folder / "CMU_MOSI_COVAREP.csd", "COVAREP", audio)
    write_csd(folder / "CMU_MOSI_Visual_Facet_41.csd", "FACET_4.1", video)
    write_csd(folder / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    return {"words": words, "text": vecs, "audio": audio, "video": video, "labels": labels}


# ---------------------------------------------------------------- raw media (written with PyAV / soundfile)


def write_mp4(path, seconds: float = 0.6, freq: float = 440.0, shade: int = 60, size: int = 32, fps: int = 10,
              sr: int = 16000, audio: bool = True) -> str:
    """A tiny mp4/avi (mpeg4 video + AAC mono audio) with a tone and frames shaded ``shade + 5 * i``."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width = v.height = size
        v.pix_fmt = "yuv420p"
        a = c.add_stream("aac", rate=sr, layout="mono") if audio else None
        for i in range(int(seconds * fps)):
            img = np.full((size, size, 3), (shade + 5 * i) % 256, np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is None:
            return str(path)
        x = (0.3 * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)
        for s in range(0, len(x), 1024):
            fr = av.AudioFrame.from_ndarray(x[None, s:s + 1024], format="flt", layout="mono")
            fr.sample_rate, fr.pts = sr, s
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    return str(path)


def write_wav(path, seconds: float = 0.5, freq: float = 300.0, sr: int = 16000) -> str:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32), sr)
    return str(path)


def raw_mmsa_folder(root, sims: bool = False) -> None:
    """label.csv (MOSEI column order, string clip ids like '0001') + Raw/<vid>/<clip>.mp4."""
    rows = []
    modes = ["train", "train", "train", "train", "valid", "test"]
    for k, mode in enumerate(modes):
        vid, clip = f"video_{k // 2:04d}", f"{k % 2 + 1:04d}"
        lab = [-0.8, 0.4, 1.0, -0.2, 0.6, -1.0][k] * (1 if sims else 3)
        ann = "Negative" if lab < 0 else "Positive"
        tav = ",".join(f"{lab / 2:.1f}" for _ in "TAV") if sims else ",,"
        rows.append(f'{vid},{clip},"hello, world {k}",{lab},{ann},{mode},{tav}')
        write_mp4(root / "Raw" / vid / f"{clip}.mp4", freq=200 + 100 * k, shade=40 * k)
    (root / "label.csv").write_text("video_id,clip_id,text,label,annotation,mode,label_T,label_A,label_V\n"
                                    + "\n".join(rows) + "\n")


EVAL_TEMPLATE = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[START_TIME - END_TIME]\tHEADER\tEMOTION\t[V, A, D]

"""


def raw_iemocap_folder(root) -> None:
    """Sessions 1 (3 dialogs) and 5 (1 dialog): EmoEvaluation with header/annotator lines, transcripts, wavs."""
    emos = ["neu", "ang", "xxx", "fru", "hap", "exc", "sad"]
    for sess, dialogs in ((1, ["Ses01F_impro01", "Ses01F_impro02", "Ses01M_script01_2"]), (5, ["Ses05F_impro01"])):
        base = root / f"Session{sess}"
        for j, dialog in enumerate(dialogs):
            ev, tr = [EVAL_TEMPLATE], []
            for u in range(3):
                uid = f"{dialog}_{'FM'[u % 2]}{u:03d}"
                start, end = 1.0 + u, 1.5 + u
                emo = emos[(u + j) % len(emos)]
                ev.append(f"[{start:.4f} - {end:.4f}]\t{uid}\t{emo}\t[2.5000, 3.0000, 3.5000]\n"
                          f"C-E1:\tNeutral;\t()\nA-E3:\tval 2; act 4; dom 4;\t()\n\n")
                tr.append(f"{uid} [{start:08.4f}-{end:08.4f}]: words of {uid}.")
                write_wav(base / "sentences" / "wav" / dialog / f"{uid}.wav", freq=200 + 50 * u)
            (base / "dialog" / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
            (base / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("".join(ev))
            (base / "dialog" / "transcriptions").mkdir(parents=True, exist_ok=True)
            (base / "dialog" / "transcriptions" / f"{dialog}.txt").write_text(
                "\n".join(tr) + "\nM: [LAUGHTER] not an utterance line\n")


MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"


def raw_meld_folder(root) -> None:
    """Three CSVs with quoted times and a mis-encoded byte; clips in the tar's split folders."""
    dirs = {"train": "train/train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}
    emos = ["neutral", "joy", "anger", "surprise"]
    for split, sub in dirs.items():
        n_dia = 2 if split == "train" else 1
        lines, k = [MELD_HEADER.encode()], 1
        for d in range(n_dia):
            for u in range(2):
                text = "Oh my God\x92s".encode("latin-1") if u == 0 else b"Hi, there"
                lines.append(b'%d,"%s",%s,%s,%s,%d,%d,3,2,"00:16:16,059","0:16:17,500"\n' % (
                    k, text, [b"Ross", b"Rachel"][u], emos[(d + u) % 4].encode(), b"neutral", d, u))
                write_mp4(root / sub / f"dia{d}_utt{u}.mp4", freq=300 + 100 * u, shade=20 * d)
                k += 2
        (root / f"{split}_sent_emo.csv").write_bytes(b"".join(lines))
    (root / "train" / "train_splits" / "._dia0_utt0.mp4").write_bytes(b"junk")
