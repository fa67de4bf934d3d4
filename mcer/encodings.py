"""Input projections, speaker embedding and positional encodings of the MCER model.

Shapes: ``B`` dialogues, ``N`` utterances (padded), ``H`` hidden size.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn

Positional = Literal["rotary", "sinusoidal", "none"]
POSITIONAL: tuple[str, ...] = get_args(Positional)


class InputProjection(nn.Module):
    """One ``Linear(D_m -> H)`` per modality: ``{m: [B, N, D_m]}`` -> ``{m: [B, N, H]}``."""

    def __init__(self, dims: dict[str, int], hidden: int) -> None:
        super().__init__()
        self.proj = nn.ModuleDict({m: nn.Linear(d, hidden) for m, d in dims.items()})

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: layer(inputs[m]) for m, layer in self.proj.items()}


class SpeakerEmbedding(nn.Module):
    """``Embedding(S + 1, H)``; padding positions get id ``S`` (the padding index, a zero vector).

    ``forward(speakers [B, N] in 0..S-1, mask [B, N] bool)`` -> ``[B, N, H]``.
    """

    def __init__(self, num_speakers: int, hidden: int) -> None:
        super().__init__()
        self.num_speakers = num_speakers
        self.embedding = nn.Embedding(num_speakers + 1, hidden, padding_idx=num_speakers)

    def forward(self, speakers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if speakers.device.type == "cpu":
            if speakers.numel() and (int(speakers.max()) >= self.num_speakers or int(speakers.min()) < 0):
                raise ValueError(
                    f"speaker ids must lie in 0..{self.num_speakers - 1} (DataSpec.num_speakers={self.num_speakers}), "
                    f"got range {int(speakers.min())}..{int(speakers.max())}"
                )
        else:
            # On an accelerator, reading the range back would stall the device every step: the
            # check runs there, asynchronously, and fails the next synchronising call.
            torch._assert_async(((speakers >= 0) & (speakers < self.num_speakers)).all(),
                                f"speaker ids must lie in 0..{self.num_speakers - 1} "
                                f"(DataSpec.num_speakers={self.num_speakers})")
        ids = speakers.masked_fill(~mask, self.num_speakers)
        return self.embedding(ids)


class PositionalEncoding(nn.Module):
    """Utterance-position encoding, then the speaker embedding added: ``[B, N, H]`` -> ``[B, N, H]``.

    ``kind="rotary"``: feature pairs ``(x_2i, x_2i+1)`` of utterance ``p`` rotated by angle
    ``p * 10000^(-2i/H)`` (the reference code's IEMOCAP form; it also holds 3 unused
    ``modality_scales`` parameters, kept only so the reference parameter count matches when
    ``reference_params=True``). ``"sinusoidal"``: additive sin/cos table (MELD form).
    ``"none"``: speaker embedding only.
    """

    def __init__(self, hidden: int, kind: str = "sinusoidal", max_len: int = 4096, base: float = 10000.0,
                 reference_params: bool = False) -> None:
        super().__init__()
        if kind not in POSITIONAL:
            raise ValueError(f"positional must be one of {POSITIONAL}, got {kind!r}")
        self.kind, self.hidden = kind, hidden
        if kind == "rotary":
            self.rot_dim = hidden - hidden % 2
            self.register_buffer("inv_freq", base ** (-torch.arange(0, self.rot_dim, 2).float() / self.rot_dim),
                                 persistent=False)
            if reference_params:
                self.modality_scales = nn.Parameter(torch.ones(3))
        elif kind == "sinusoidal":
            pe = torch.zeros(max_len, hidden)
            pos = torch.arange(max_len).float().unsqueeze(1)
            div = torch.exp(torch.arange(0, hidden, 2).float() * (-math.log(base) / hidden))
            pe[:, 0::2] = torch.sin(pos * div)
            pe[:, 1::2] = torch.cos(pos * div[: hidden // 2])
            self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor, speaker_emb: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[1]
        if self.kind == "rotary":
            # angles in float32 whatever x's dtype: in bf16, position 109 times a frequency would be
            # off by up to 0.25 rad
            ang = torch.arange(n, device=x.device, dtype=torch.float32)[:, None] * self.inv_freq.float()  # [N, H/2]
            cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
            x1, x2 = x[..., 0 : self.rot_dim : 2], x[..., 1 : self.rot_dim : 2]
            rot = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
            x = torch.cat([rot, x[..., self.rot_dim :]], dim=-1) if self.rot_dim < self.hidden else rot
        elif self.kind == "sinusoidal":
            if n > self.pe.shape[0]:
                raise ValueError(f"dialogue length {n} exceeds the positional table's max_len {self.pe.shape[0]}")
            x = x + self.pe[:n].to(x.dtype)
        if speaker_emb is not None:
            x = x + speaker_emb
        return x
