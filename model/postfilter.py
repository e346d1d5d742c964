"""A clean-up of the sampled frames before lip sync: spatio-temporal non-local means, then a Gaussian
over time (not in the paper).

The shipped diffusion model is undertrained (a 2-core CPU trained it): its faces have the corpus's
layout but carry a confetti of colour noise that changes from frame to frame. Measured on 8
caption clips against held-out corpus frames (``tests/benchmarks/bench_postfilter.py``), the
Laplacian of the Lab colour channels is 3.3x the corpus's (0.7x after this filter) and the luma's
1.3x (0.9x after). Non-local means (Buades et al. 2005; OpenCV's
``fastNlMeansDenoisingColoredMulti``) averages each pixel with pixels whose surrounding patches look
alike, in the frame and its neighbours, so it removes noise that does not repeat and keeps edges
that do (eyes, mouth, hair line). The colour is filtered harder than the luma: the colour confetti
is the worst of the noise, and the luma carries the features. The price: on a clean drawing, edges
between similar colours blend a little (a mean change of 2.6 levels on the test's drawn face).

Non-local means leaves the model's flicker (frame-to-frame change 7.4x the corpus's), which sits at
larger scales than its patches. The corpus's faces hold still but for the mouth, so a Gaussian over
time follows (``smooth_in_time``, sigma ``TEMPORAL`` = 1 frame): the change falls to 1.9x the
corpus's and the colour noise from 0.70x to 0.51x, with a softer picture (luma detail 0.93x ->
0.58x). The mouth motion it softens is what the lip-sync network redraws next (26 speech-text clips:
SyncNet offset 26/26 within one frame with and without it, confidence 0.342/0.356 against
0.334/0.344).

This filters the model's output; it does not make the model better. It runs after the last
denoising step and before the lip-sync network, only on frames the diffusion model sampled (a
style image is clean already). Before, not after: the temporal window would average away the mouth
shapes the lip-sync network draws (on 12 caption + text clips, SyncNet confidence fell from 0.33 to
0.11 when filtered after lip sync, and stayed at 0.33 when filtered before). ``GeneratorSettings.postfilter``
(``--postfilter off`` on the CLIs) turns it off, which is the paper's path.
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

LUMA_H = 5.0  # filter strength for the luma (OpenCV's h)
CHROMA_H = 10.0  # filter strength for the colour channels (OpenCV's hColor)
WINDOW = 5  # frames searched: the frame and two on each side (odd)
PATCH = 5  # compared patch size in pixels
SEARCH = 15  # search window in pixels
TEMPORAL = 1.0  # then a Gaussian over time with this sigma in frames (0 = none)


def postfilter(video: np.ndarray, *, luma: float = LUMA_H, chroma: float = CHROMA_H, window: int = WINDOW,
               temporal: float = TEMPORAL) -> np.ndarray:
    """uint8 ``[F, H, W, 3]`` (RGB) -> the same shape, filtered: non-local means, then
    ``smooth_in_time(temporal)``. At the clip's ends the window is mirrored (frame 1 stands in for
    frame -1), so every frame sees ``window`` frames."""
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must be uint8 [F, H, W, 3], got {video.dtype} {video.shape}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number of frames, got {window}")
    if temporal < 0:
        raise ValueError(f"temporal must be >= 0 frames, got {temporal}")
    n = len(video)
    if n == 0:
        return video.copy()
    half = window // 2
    # mirror without repeating the edge frame; a clip shorter than the window repeats what it has
    order = [_mirror(i, n) for i in range(-half, n + half)]
    frames = [cv2.cvtColor(video[i], cv2.COLOR_RGB2BGR) for i in order]
    out = np.empty_like(video)
    for i in range(n):  # padded frames i .. i + window - 1 are frame i's window, centred on it
        filtered = cv2.fastNlMeansDenoisingColoredMulti(frames[i : i + window], half, window, None, luma, chroma, PATCH, SEARCH)
        out[i] = cv2.cvtColor(filtered, cv2.COLOR_BGR2RGB)
    return smooth_in_time(out, temporal)


def smooth_in_time(video: np.ndarray, sigma: float) -> np.ndarray:
    """Each pixel averaged over neighbouring frames with Gaussian weights (``sigma`` in frames,
    taps to 2 sigma, mirrored ends); ``sigma`` 0 returns the video as it is.

    >>> v = np.zeros((5, 1, 1, 3), np.uint8); v[2] = 255
    >>> smooth_in_time(v, 1.0)[:, 0, 0, 0].tolist()
    [28, 62, 103, 62, 28]
    """
    if sigma <= 0 or len(video) < 2:
        return video.copy()
    # scipy's "mirror" is ``_mirror``'s reflection; the radius is fixed at ceil(2 sigma), the reach
    # ``Windowed`` callers give (scipy's own truncation rounds it otherwise)
    out = gaussian_filter1d(video, sigma, axis=0, output=np.float64, mode="mirror", radius=int(np.ceil(2 * sigma)))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


SHARPEN_SIGMA = 1.5  # pixels at the 256-pixel output: the scale of the detail the upscaler smooths


def sharpen_luma(video: np.ndarray, amount: float, sigma: float = SHARPEN_SIGMA) -> np.ndarray:
    """An unsharp mask on the luma only: Y + amount * (Y - Gaussian(Y, sigma)) in YCrCb, the colour
    channels untouched (sharpening them would raise the colour noise the clean-up took out). For the
    upscaled frames of a drawn face (``GeneratorSettings.sharpen``): the upscaler, trained with L1,
    returns the mean of the detail it could add, so its edges are softer than the corpus's. It adds
    contrast at edges that are there; it invents no texture. uint8 ``[F, H, W, 3]`` RGB in and out.

    >>> v = np.full((1, 1, 8, 3), 60, np.uint8); v[..., 4:, :] = 140  # a grey step
    >>> sharpen_luma(v, 1.0, 1.0)[0, 0, :, 0].tolist()  # steeper: undershoot, overshoot, then flat
    [60, 60, 55, 36, 164, 145, 140, 140]
    """
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must be uint8 [F, H, W, 3], got {video.dtype} {video.shape}")
    if amount < 0 or sigma <= 0:
        raise ValueError(f"amount must be >= 0 and sigma > 0, got {amount} and {sigma}")
    if amount == 0 or len(video) == 0:
        return video.copy()
    out = np.empty_like(video)
    for i, frame in enumerate(video):
        ycc = cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb)
        luma = ycc[..., 0].astype(np.float32)
        luma += amount * (luma - cv2.GaussianBlur(luma, (0, 0), sigma))
        ycc[..., 0] = np.clip(np.rint(luma), 0, 255).astype(np.uint8)
        out[i] = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
    return out


def _mirror(i: int, n: int) -> int:
    """Index ``i`` reflected into ``[0, n)`` about the end frames (..., 2, 1, 0, 1, 2, ...)."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = abs(i) % period
    return period - i if i >= n else i


class Windowed:
    """A filter over time made to run on frames as they arrive, giving what it gives on the whole clip.

    ``fn`` maps ``uint8 [F, H, W, 3]`` to the same shape, frame ``i`` of its output depending only on
    input frames ``i - reach .. i + reach`` (mirrored at the clip's ends), as ``smooth_in_time`` and
    ``postfilter`` do. ``push(frames)`` returns the output frames that no later frame can change
    (all but the last ``reach`` seen); ``finish()`` returns the rest, the clip's end now known. The
    outputs joined equal ``fn`` on all the frames joined (tested), so a streamed utterance shows the
    frames a whole-utterance render would.
    """

    def __init__(self, fn, reach: int) -> None:
        if reach < 0:
            raise ValueError("reach must be >= 0")
        self.fn, self.reach = fn, reach
        self._frames: list[np.ndarray] = []  # the inputs from frame `_first` on: all a later output reads
        self._first = 0  # the clip's frame number of self._frames[0]
        self._seen = 0  # input frames pushed
        self._done = 0  # output frames handed out
        self._shape: tuple[int, ...] = (0, 0, 3)
        self._finished = False

    def push(self, frames: np.ndarray) -> np.ndarray:
        if self._finished:
            raise RuntimeError("push after finish")
        self._frames.extend(frames)
        self._seen += len(frames)
        if len(frames):
            self._shape = frames.shape[1:]
        return self._emit(self._seen - self.reach, final=False)

    def finish(self) -> np.ndarray:
        self._finished = True
        return self._emit(self._seen, final=True)

    def _emit(self, ready: int, final: bool) -> np.ndarray:
        if ready <= self._done or self._seen == 0:
            return np.zeros((0, *self._shape), np.uint8)
        # inputs from `reach` before the first frame wanted: all it reads, so the mirroring at the
        # window's own start (unless it is the clip's) reaches no frame handed out
        lo = max(0, self._done - self.reach)
        out = self.fn(np.stack(self._frames[lo - self._first :]))  # up to the last input: the clip's end when final
        result = out[self._done - lo : ready - lo]
        self._done = ready
        keep = max(0, ready - self.reach)  # the next output's `lo`: earlier inputs are never read again
        del self._frames[: keep - self._first]
        self._first = keep
        return result


class Cleanup:
    """The clean-up before lip sync (``settings.postfilter``, not in the paper), chunk by chunk. With
    the call's face and a restorer: a Gaussian over time (the flicker), then the restorer gives back
    the face's detail (``model/restore``); otherwise non-local means, then the Gaussian over time
    (``model/postfilter.py``). Both look ahead in time, so they run as ``Windowed`` filters."""

    def __init__(self, restorer, reference: np.ndarray | None, timings: dict, autocast) -> None:
        """``restorer``: ``model.restore`` network or None; ``autocast``: a context-manager factory for
        its arithmetic (the sampler's precision)."""
        self.restorer, self.reference, self.timings, self.autocast = restorer, reference, timings, autocast
        reach = math.ceil(2 * TEMPORAL)
        self.restores = reference is not None and restorer is not None
        if self.restores:
            self.label, self.filter = "restore", Windowed(lambda v: smooth_in_time(v, TEMPORAL), reach)
        else:
            self.label, self.filter = "postfilter", Windowed(postfilter, WINDOW // 2 + reach)

    def push(self, frames: np.ndarray, last: bool) -> np.ndarray:
        t0 = time.perf_counter()
        ready = self.filter.push(frames)
        if last:
            ready = np.concatenate([ready, self.filter.finish()])
        if self.restores and len(ready):
            with self.autocast():
                ready = self.restorer.restore(ready, self.reference)
        self.timings[self.label] = self.timings.get(self.label, 0.0) + time.perf_counter() - t0
        return ready
