"""A procedural talking head drawn with OpenCV at GRID's 360x288.

Everything is a filled polygon in head coordinates (origin at the face centre, x right, y down,
pixels), turned by the head pose and placed in the frame. The pose gives a little 3-D feel for
free: inner features (eyes, nose, mouth) slide further than the outline when the head turns or
nods. Polygons are drawn anti-aliased with 4 bits of sub-pixel precision, so the lips move
smoothly even by fractions of a pixel.

``FaceRenderer(look).render(state)`` returns one BGR uint8 frame ``[288, 360, 3]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from model.corpus.speakers import Appearance

WIDTH, HEIGHT = 360, 288
_SHIFT = 4
_SCALE = 1 << _SHIFT
_AA = cv2.LINE_AA


@dataclass(frozen=True)
class FaceState:
    """What changes from frame to frame."""

    opening: float = 0.0  # mouth opening 0 (closed) .. 1 (wide open)
    width: float = 0.5  # mouth width 0 (rounded, "oo") .. 1 (spread, "ee"); 0.5 at rest
    blink: float = 0.0  # 0 eyes open .. 1 closed
    roll: float = 0.0  # degrees, positive turns clockwise on screen
    yaw: float = 0.0  # -1 .. 1, positive looks to the viewer's right
    pitch: float = 0.0  # -1 .. 1, positive nods down
    dx: float = 0.0  # pixels
    dy: float = 0.0


def _ellipse(cx: float, cy: float, a: float, b: float, t0: float = 0.0, t1: float = 2 * math.pi, n: int = 36) -> np.ndarray:
    t = np.linspace(t0, t1, n)
    return np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], axis=1)


def _shade(colour, factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)


def _lift(colour, amount: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + amount, 0, 255)) for c in colour)


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))


class FaceRenderer:
    """Draws one synthetic person; keeps the static background between frames."""

    def __init__(self, look: Appearance, centre: tuple[float, float] = (180.0, 126.0)) -> None:
        self.look = look
        self.centre = centre
        self._background = self._make_background()
        a, b = look.face_width, look.face_height
        self.eye_y = -0.14 * b
        self.brow_y = self.eye_y - look.eye_size - 8.0
        self.nose_tip = self.eye_y + look.nose_length
        self.mouth_y = self.nose_tip + 0.22 * b
        self._outline = self._head_outline(a, b, look.jaw)

    # ----------------------------------------------------------------------------- static parts
    def _make_background(self) -> np.ndarray:
        top, bottom = (np.array(c, np.float32) for c in self.look.background)
        ramp = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
        img = top[None, None, :] * (1 - ramp) + bottom[None, None, :] * ramp
        img = np.broadcast_to(img, (HEIGHT, WIDTH, 3)).copy()
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
        light = np.exp(-(((xx - 70) / 140) ** 2 + ((yy - 40) / 110) ** 2))[..., None]
        img = img * (0.85 + 0.3 * light)
        return np.clip(img, 0, 255).astype(np.uint8)

    @staticmethod
    def _head_outline(a: float, b: float, jaw: float) -> np.ndarray:
        t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
        c, s = np.cos(t), np.sin(t)
        n = np.where(s > 0, 2.0 + 2.2 * jaw, 2.0)  # lower half squarer for a strong jaw
        x = a * np.sign(c) * np.abs(c) ** (2.0 / n)
        y = b * np.sign(s) * np.abs(s) ** (2.0 / n)
        x = x * np.where(s > 0, 1.0 - (0.22 - 0.12 * jaw) * s**3, 1.0)  # taper to the chin
        return np.stack([x, y], axis=1)

    # ------------------------------------------------------------------------------- transform
    def _placer(self, state: FaceState):
        cx, cy = self.centre
        ang = math.radians(state.roll)
        cos, sin = math.cos(ang), math.sin(ang)

        def place(points: np.ndarray, depth: float = 1.0) -> np.ndarray:
            p = np.asarray(points, np.float64)
            x = p[:, 0] + depth * state.yaw * 10.0
            y = p[:, 1] + depth * state.pitch * 7.0
            out = np.empty_like(p)
            out[:, 0] = cx + state.dx + cos * x - sin * y
            out[:, 1] = cy + state.dy + sin * x + cos * y
            return np.round(out * _SCALE).astype(np.int32)

        return place

    @staticmethod
    def _fill(img: np.ndarray, pts: np.ndarray, colour) -> None:
        cv2.fillPoly(img, [pts], colour, _AA, _SHIFT)

    @staticmethod
    def _line(img: np.ndarray, pts: np.ndarray, colour, thickness: int, closed: bool = False) -> None:
        cv2.polylines(img, [pts], closed, colour, thickness, _AA, _SHIFT)

    # ---------------------------------------------------------------------------------- render
    def render(self, state: FaceState) -> np.ndarray:
        look = self.look
        img = self._background.copy()
        place = self._placer(state)
        a, b = look.face_width, look.face_height
        skin = look.skin
        self._hair_back(img, place, a, b)
        self._torso(img, state, a, b)
        # ears
        for side in (-1, 1):
            ear = _ellipse(side * (a * 0.97), self.eye_y + 9, 8.5, 15.5)
            self._fill(img, place(ear, 0.3), _shade(skin, 0.9))
            self._fill(img, place(_ellipse(side * (a * 0.97), self.eye_y + 9, 4.5, 10), 0.3), _shade(skin, 0.78))
            if look.earrings:
                self._fill(img, place(_ellipse(side * (a * 0.99), self.eye_y + 27, 3.2, 3.2, n=12), 0.3), (60, 200, 235))
        # face with a soft darker rim, so it reads as rounded
        self._fill(img, place(self._outline, 0.4), _shade(skin, 0.86))
        self._fill(img, place(self._outline * [0.9, 0.93] + [0, -2], 0.6), skin)
        # light falls on the forehead, the nose bridge and the cheeks; the eye sockets are in shadow
        lift = 14.0 + 0.12 * (255 - sum(skin) / 3)
        self._fill(img, place(_ellipse(0, -b * 0.45, a * 0.6, b * 0.28, n=24), 0.5), _lift(skin, lift * 0.5))
        for side in (-1, 1):
            self._fill(img, place(_ellipse(side * a * 0.5, self.nose_tip - 2, a * 0.26, b * 0.16, n=20), 0.8), _lift(skin, lift * 0.6))
        # eye sockets
        for side in (-1, 1):
            socket = _ellipse(side * look.eye_spacing, self.eye_y - 2, look.eye_size * 2.0, look.eye_size * 1.45, n=24)
            self._fill(img, place(socket), _lift(_shade(skin, 0.86), -lift * 0.3))
            self._fill(img, place(socket * [1.0, 0.8] + [0, self.eye_y * 0.2 - 1]), _lift(_shade(skin, 0.74), -lift * 0.5))
        bridge = _ellipse(0, (self.eye_y + self.nose_tip) / 2 - 3, 4.5, (self.nose_tip - self.eye_y) / 2 + 4, n=16)
        self._fill(img, place(bridge, 1.05), _lift(skin, lift))
        self._facial_hair(img, place, a, b)
        self._eyes(img, place, state)
        self._brows(img, place)
        self._nose(img, place)
        self._mouth(img, place, state)
        self._hair_top(img, place, a, b)
        if look.glasses:
            for side in (-1, 1):
                ring = _ellipse(side * look.eye_spacing, self.eye_y, look.eye_size * 2.0, look.eye_size * 1.55, n=28)
                self._line(img, place(ring), (30, 30, 30), 2, closed=True)
            bridge = np.array([[-look.eye_spacing + look.eye_size * 2.0, self.eye_y], [look.eye_spacing - look.eye_size * 2.0, self.eye_y]])
            self._line(img, place(bridge), (30, 30, 30), 2)
        return img

    def _torso(self, img: np.ndarray, state: FaceState, a: float, b: float) -> None:
        look = self.look
        cx, cy = self.centre
        cx += state.dx * 0.3
        neck_top, base = cy + b * 0.55, cy + b + 28
        neck = np.array([[cx - a * 0.42, neck_top], [cx + a * 0.42, neck_top], [cx + a * 0.48, base + 12], [cx - a * 0.48, base + 12]])
        self._fill(img, np.round(neck * _SCALE).astype(np.int32), _shade(look.skin, 0.8))
        t = np.linspace(math.pi, 2 * math.pi, 30)
        shoulders = np.stack([cx + 150 * np.cos(t), base + 18 + 40 * np.sin(t)], axis=1)
        body = np.vstack([[cx - 175, HEIGHT + 2], shoulders, [cx + 175, HEIGHT + 2]])
        self._fill(img, np.round(body * _SCALE).astype(np.int32), look.shirt)
        collar = np.array([[cx - a * 0.55, base - 10], [cx, base + 26], [cx + a * 0.55, base - 10]])
        self._fill(img, np.round(collar * _SCALE).astype(np.int32), _shade(look.skin, 0.85))
        self._line(img, np.round(collar * _SCALE).astype(np.int32), look.collar, 5)

    def _hair_back(self, img, place, a, b) -> None:
        look, style = self.look, self.look.hair_style
        if style in ("long", "long_fringe", "curly", "bob"):
            length = {"bob": b * 0.75, "curly": b * 1.25}.get(style, b * 1.75)
            spread = {"bob": 1.22, "curly": 1.45}.get(style, 1.3)
            top = _ellipse(0, -b * 0.1, a * 1.2, b * 1.02, math.pi, 2 * math.pi, 24)
            right = [[a * spread, length * 0.6], [a * spread * 0.95, length], [a * 0.5, length + 6]]
            left = [[-a * 0.5, length + 6], [-a * spread * 0.95, length], [-a * spread, length * 0.6]]
            shape = np.vstack([top, right, left])
            self._fill(img, place(shape, 0.2), _shade(look.hair, 0.8))
        if style == "ponytail":
            self._fill(img, place(_ellipse(0, -b * 1.02, a * 0.45, b * 0.22, n=20), 0.2), _shade(look.hair, 0.85))

    def _hair_top(self, img, place, a, b) -> None:
        look, style = self.look, self.look.hair_style
        hair = look.hair
        if style == "curly" or style == "curly_short":
            r = 11 if style == "curly" else 8
            for t in np.linspace(math.pi * 0.95, math.pi * 2.05, 15):
                x, y = a * 1.02 * math.cos(t), -b * 0.08 + b * 1.0 * math.sin(t)
                self._fill(img, place(_ellipse(x, y, r, r, n=14), 0.3), _shade(hair, 0.9 + 0.2 * ((t * 7) % 1)))
            self._fill(img, place(_ellipse(0, -b * 0.8, a * 0.85, b * 0.28, n=24), 0.3), hair)
            return
        hairline = {"receding": -0.78, "crew": -0.62, "short": -0.58, "side": -0.55, "long": -0.52, "bob": -0.42,
                    "ponytail": -0.6, "long_fringe": -0.3}.get(style, -0.55) * b
        side_depth = {"crew": -0.3, "receding": -0.3}.get(style, -0.15) * b
        outer = _ellipse(0, -b * 0.06, a * 1.07, b * 1.04, math.pi * 0.97, math.pi * 2.03, 30)
        if style == "receding":
            outer = _ellipse(0, -b * 0.04, a * 1.04, b * 1.0, math.pi * 0.97, math.pi * 2.03, 30)
        # hairline: from the right temple over the forehead to the left temple
        u = np.linspace(1, -1, 21)
        dip = hairline + (side_depth - hairline) * np.abs(u) ** 2.5
        if style == "side":
            dip = dip + 8 * (u + 1) / 2  # parting on one side
        inner = np.stack([u * a * 0.98, dip], axis=1)
        cap = np.vstack([outer, inner])
        self._fill(img, place(cap, 0.5), hair)
        if style in ("long", "long_fringe", "bob"):
            # strands framing the face, hanging in front of the cheeks
            for side in (-1, 1):
                bottom = b * (0.55 if style == "bob" else 1.2)
                strand = np.array([[side * a * 1.08, -b * 0.45], [side * a * 0.72, -b * 0.35], [side * a * 0.86, b * 0.1],
                                   [side * a * 0.98, bottom * 0.7], [side * a * 1.25, bottom]])
                self._fill(img, place(strand, 0.4), _shade(hair, 1.05))
        if style == "long_fringe":
            fringe = np.array([[-a * 0.95, -b * 0.4], [-a * 0.3, -b * 0.22], [a * 0.4, -b * 0.27], [a * 0.95, -b * 0.4], [a * 0.9, -b * 0.7], [-a * 0.9, -b * 0.7]])
            self._fill(img, place(fringe, 0.5), _shade(hair, 1.1))

    def _facial_hair(self, img, place, a, b) -> None:
        look = self.look
        kind = look.facial_hair
        if kind == "none":
            return
        my = self.mouth_y
        if kind in ("stubble", "beard"):
            colour = _mix(look.skin, look.hair, 0.3 if kind == "stubble" else 0.85)
            t = np.linspace(0.05 * math.pi, 0.95 * math.pi, 30)
            jaw = self._outline[(np.arange(72) >= 2) & (np.arange(72) <= 34)]
            jaw = jaw * 0.97
            upper = np.array([[-a * 0.9, self.eye_y + 18], [-a * 0.45, my - 14], [a * 0.45, my - 14], [a * 0.9, self.eye_y + 18]])
            beard = np.vstack([jaw, upper])
            self._fill(img, place(beard, 0.7), colour)
            del t
        if kind in ("beard", "moustache", "goatee"):
            w = look.mouth_width
            stache = np.array([[-w - 6, my + 3], [-w * 0.7, my - 9], [0, my - 11], [w * 0.7, my - 9], [w + 6, my + 3], [w * 0.5, my - 4], [0, my - 5], [-w * 0.5, my - 4]])
            self._fill(img, place(stache, 0.9), _shade(look.hair, 0.9))
        if kind == "goatee":
            goat = _ellipse(0, my + 20, look.mouth_width * 0.7, 13, n=24)
            self._fill(img, place(goat, 0.8), _shade(look.hair, 0.9))

    def _eyes(self, img, place, state: FaceState) -> None:
        look = self.look
        es, ew = look.eye_size, look.eye_size * 1.35
        open_ = max(0.0, 1.0 - state.blink)
        lid = (self.look.hair if self.look.hair_style in ("long", "bob", "long_fringe", "ponytail", "curly") else (25, 25, 25))
        for side in (-1, 1):
            ex, ey = side * look.eye_spacing, self.eye_y
            t = np.linspace(0, math.pi, 16)
            upper_h, lower_h = es * 0.62 * open_ + 0.6, es * 0.38
            upper = np.stack([ex - ew * np.cos(t), ey - upper_h * np.sin(t)], axis=1)  # left to right, over the top
            lower = np.stack([ex + ew * np.cos(t), ey + lower_h * np.sin(t)], axis=1)  # right to left, underneath
            if open_ > 0.08:
                self._fill(img, place(np.vstack([upper, lower])), _mix(look.skin, (215, 222, 226), 0.6))
                iris_x = ex + state.yaw * 2.0
                iris = _ellipse(iris_x, ey + 0.5, es * 0.55, es * 0.55, n=20)
                iris[:, 1] = np.clip(iris[:, 1], ey - upper_h, ey + lower_h)  # the lids hide what is outside
                self._fill(img, place(iris), look.eyes)
                pupil = _ellipse(iris_x, ey + 0.5, es * 0.25, es * 0.25, n=14)
                pupil[:, 1] = np.clip(pupil[:, 1], ey - upper_h, ey + lower_h)
                self._fill(img, place(pupil), (15, 15, 15))
                self._fill(img, place(_ellipse(iris_x + es * 0.18, ey - es * 0.15, 1.6, 1.6, n=8)), (250, 250, 250))
            # upper lid line (lashes), thicker for heavier lashes
            self._line(img, place(upper), _shade(lid, 0.6), 2 if look.eye_size < 9 else 3)
            if self.look.earrings or look.eye_size >= 9:
                self._line(img, place(upper[:3] + [-side * 0, 0]), (20, 20, 20), 3)

    def _brows(self, img, place) -> None:
        look = self.look
        u = np.linspace(0, 1, 12)
        for side in (-1, 1):
            inner = look.eye_spacing - look.eye_size * 1.3
            outer = look.eye_spacing + look.eye_size * 1.6
            x = side * (inner + (outer - inner) * u)
            y = self.brow_y - look.brow_arch * np.sin(np.pi * (0.3 + 0.7 * u)) + 2.0 * u
            thick = look.brow_thickness * (1.0 - 0.45 * u)
            band = np.vstack([np.stack([x, y - thick / 2], 1), np.stack([x, y + thick / 2], 1)[::-1]])
            self._fill(img, place(band), _mix(_shade(look.hair, 0.6), (20, 20, 25), 0.45))

    def _nose(self, img, place) -> None:
        look = self.look
        tip = self.nose_tip
        shadow = _shade(look.skin, 0.72)
        bridge = np.array([[4, self.eye_y + 4], [5.5, tip - 8], [8, tip - 1]])
        self._line(img, place(bridge, 1.1), _shade(look.skin, 0.82), 2)
        base = _ellipse(0, tip - 2, 10, 5, 0.15 * math.pi, 0.85 * math.pi, 12)
        self._line(img, place(base, 1.15), shadow, 2)
        for side in (-1, 1):
            self._fill(img, place(_ellipse(side * 4.5, tip + 0.5, 2.6, 1.6, n=10), 1.15), _shade(look.skin, 0.45))

    def _mouth(self, img, place, state: FaceState) -> None:
        look = self.look
        opening = float(np.clip(state.opening, 0, 1))
        width = float(np.clip(state.width, 0, 1))
        mw = look.mouth_width * (0.72 + 0.56 * width) * (1.0 - 0.12 * opening)
        h = 24.0 * opening  # gap between the lips
        my = self.mouth_y
        female = look.earrings or look.hair_style in ("long", "bob", "ponytail", "long_fringe", "curly")
        ul, ll = (5.0, 6.5) if female else (3.5, 5.0)
        top_in, bot_in = my - 0.3 * h, my + 0.7 * h
        xs = np.linspace(-1, 1, 15)
        upper_outer = np.stack([xs * mw, top_in - ul * (1 - xs**2) ** 0.5 - 1.2 * np.abs(np.sin(xs * math.pi)) * (np.abs(xs) < 0.5) * 0], 1)
        upper_outer[:, 1] += 1.5 * np.exp(-(xs / 0.12) ** 2)  # cupid's bow dip
        lower_outer = np.stack([xs[::-1] * mw, bot_in + ll * (1 - xs[::-1] ** 2) ** 0.6], 1)
        corners_y = my + 0.2 * h
        upper_outer[[0, -1], 1] = corners_y
        lower_outer[[0, -1], 1] = corners_y
        self._fill(img, place(np.vstack([upper_outer, lower_outer]), 1.0), look.lips)
        inner_w = mw * 0.88
        if h > 1.0:
            inner_top = np.stack([xs * inner_w, top_in - 0.0 * xs + (np.abs(xs) ** 2) * (corners_y - top_in)], 1)
            inner_bot = np.stack([xs[::-1] * inner_w, bot_in + (np.abs(xs[::-1]) ** 2) * (corners_y - bot_in)], 1)
            cavity = np.vstack([inner_top, inner_bot])
            self._fill(img, place(cavity), (40, 25, 70))
            teeth_h = min(0.35 * h, 5.0)
            teeth = cavity.copy()
            teeth[:, 1] = np.minimum(teeth[:, 1], top_in + teeth_h)
            self._fill(img, place(teeth), (225, 235, 240))
            if h > 8:
                tongue = _ellipse(0, bot_in - 1, inner_w * 0.55, min(4.0, h * 0.2), math.pi, 2 * math.pi, 12)
                self._fill(img, place(tongue), (90, 90, 190))
        else:
            seam = np.stack([xs * mw * 0.95, my + 0.4 * np.abs(xs) ** 2 - 0.5], 1)
            self._line(img, place(seam), _shade(look.lips, 0.45), 2)
