"""Audio helpers of the speech DataModules: WAV reading without FFmpeg, fixed-length clips, log-mel features.

Speech Commands is plain 16-bit PCM WAV, so clips are read with the standard library's :mod:`wave`
(torchaudio >= 2.9 reads audio through TorchCodec/FFmpeg, which this corpus does not need). Features
are torchaudio's :class:`~torchaudio.transforms.MelSpectrogram` followed by ``log(mel + eps)``.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import torch
import torchaudio

__all__ = ["LogMel", "fit_length", "read_wav"]


def read_wav(path: str | Path, sample_rate: int = 16_000) -> torch.Tensor:
    """Reads a mono 16-bit PCM WAV file as floats in ``[-1, 1)``.

    Args:
        path: The ``.wav`` file.
        sample_rate: The rate the file must have, in Hz.

    Returns:
        ``float32`` ``[samples]`` (``int16 / 32768``).

    Raises:
        ValueError: If the file is not a readable WAV (corrupt header, truncated data), is not mono
            16-bit PCM, or has another sample rate. The message names the file.
    """
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            data = w.readframes(frames)
    except (wave.Error, EOFError) as err:
        raise ValueError(
            f"{path}: not a readable WAV file ({err}); the file is corrupt: re-extract it from the release "
            "archive or delete it"
        ) from err
    if channels != 1 or width != 2:
        raise ValueError(
            f"{path}: expected mono 16-bit PCM WAV, got {channels} channel(s) of {8 * width}-bit samples; "
            "convert it, e.g. `sox in.wav -c 1 -b 16 out.wav`"
        )
    if rate != sample_rate:
        raise ValueError(
            f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz; resample the file (e.g. `sox in.wav -r "
            f"{sample_rate} out.wav`) or set the DataModule's sample rate"
        )
    if len(data) != frames * channels * width:
        raise ValueError(
            f"{path}: truncated WAV: the header announces {frames} samples but the file holds "
            f"{len(data) // (channels * width)}; re-extract it from the release archive or delete it"
        )
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return torch.from_numpy(samples)


def fit_length(samples: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pads at the end or trims the end so the last dimension has ``length`` samples.

    Args:
        samples: ``[..., n]`` waveform(s).
        length: Target number of samples.

    Returns:
        ``[..., length]``; the input itself when it already has that length.
    """
    n = samples.shape[-1]
    if n == length:
        return samples
    if n > length:
        return samples[..., :length]
    return torch.nn.functional.pad(samples, (0, length - n))


class LogMel(torch.nn.Module):
    """Log-mel spectrogram of fixed-length clips, as ``[frames, n_mels]`` sequences.

    ``features = log(MelSpectrogram(x) + eps)`` with a Hann window of ``n_fft`` samples, hop
    ``clip_samples // (n_frames - 1)`` and centred frames, so a clip of ``clip_samples`` samples gives
    ``n_frames`` frames (1 s at 16 kHz with ``n_frames=81``: a 200-sample = 12.5 ms hop).

    Args:
        sample_rate: Hz.
        clip_samples: Samples per clip.
        n_mels: Mel bands (features per frame).
        n_frames: Frames per clip (time steps), ``>= 2``.
        n_fft: FFT and window size in samples.
        f_min: Lowest mel band edge in Hz.
        f_max: Highest mel band edge in Hz (``<= sample_rate / 2``).
        eps: Offset inside the logarithm.
    """

    def __init__(
        self,
        sample_rate: int = 16_000,
        clip_samples: int = 16_000,
        n_mels: int = 20,
        n_frames: int = 81,
        n_fft: int = 480,
        f_min: float = 20.0,
        f_max: float = 8_000.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.n_frames = n_frames
        self.eps = eps
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=n_fft,
            hop_length=clip_samples // (n_frames - 1),
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            center=True,
            power=2.0,
        )

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Features of a batch of clips.

        Args:
            clips: ``[batch, clip_samples]`` or ``[clip_samples]``.

        Returns:
            ``float32`` ``[batch, n_frames, n_mels]`` (or ``[n_frames, n_mels]``).
        """
        spec = self.mel(clips)[..., : self.n_frames]  # [..., n_mels, frames]
        return spec.add(self.eps).log().transpose(-1, -2).contiguous()
