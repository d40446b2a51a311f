"""A line chart as a PNG, with nothing but the standard library (zlib for the encoding).

Enough for a benchmark's one picture: series of (x, y) points on a linear x axis and a
logarithmic y axis, dashed horizontal reference lines, tick labels, a title and a legend,
drawn with a 3×5 pixel font scaled up.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

Color = tuple[int, int, int]

# Rows top to bottom, three pixels each; lower case is drawn as upper case.
_FONT: dict[str, str] = {
    "0": "###|#.#|#.#|#.#|###",
    "1": ".#.|##.|.#.|.#.|###",
    "2": "###|..#|###|#..|###",
    "3": "###|..#|.##|..#|###",
    "4": "#.#|#.#|###|..#|..#",
    "5": "###|#..|###|..#|###",
    "6": "###|#..|###|#.#|###",
    "7": "###|..#|..#|.#.|.#.",
    "8": "###|#.#|###|#.#|###",
    "9": "###|#.#|###|..#|###",
    "A": ".#.|#.#|###|#.#|#.#",
    "B": "##.|#.#|##.|#.#|##.",
    "C": ".##|#..|#..|#..|.##",
    "D": "##.|#.#|#.#|#.#|##.",
    "E": "###|#..|##.|#..|###",
    "F": "###|#..|##.|#..|#..",
    "G": ".##|#..|#.#|#.#|.##",
    "H": "#.#|#.#|###|#.#|#.#",
    "I": "###|.#.|.#.|.#.|###",
    "J": "..#|..#|..#|#.#|.#.",
    "K": "#.#|#.#|##.|#.#|#.#",
    "L": "#..|#..|#..|#..|###",
    "M": "#.#|###|###|#.#|#.#",
    "N": "##.|#.#|#.#|#.#|#.#",
    "O": ".#.|#.#|#.#|#.#|.#.",
    "P": "##.|#.#|##.|#..|#..",
    "Q": ".#.|#.#|#.#|##.|.##",
    "R": "##.|#.#|##.|#.#|#.#",
    "S": ".##|#..|.#.|..#|##.",
    "T": "###|.#.|.#.|.#.|.#.",
    "U": "#.#|#.#|#.#|#.#|###",
    "V": "#.#|#.#|#.#|#.#|.#.",
    "W": "#.#|#.#|###|###|#.#",
    "X": "#.#|#.#|.#.|#.#|#.#",
    "Y": "#.#|#.#|.#.|.#.|.#.",
    "Z": "###|..#|.#.|#..|###",
    " ": "...|...|...|...|...",
    ".": "...|...|...|...|.#.",
    ",": "...|...|...|.#.|#..",
    "/": "..#|..#|.#.|#..|#..",
    "(": ".#.|#..|#..|#..|.#.",
    ")": ".#.|..#|..#|..#|.#.",
    "-": "...|...|###|...|...",
    ":": "...|.#.|...|.#.|...",
    "%": "#.#|..#|.#.|#..|#.#",
    "=": "...|###|...|###|...",
    "+": "...|.#.|###|.#.|...",
    "_": "...|...|...|...|###",
    "<": "..#|.#.|#..|.#.|..#",
    ">": "#..|.#.|..#|.#.|#..",
    "'": ".#.|.#.|...|...|...",
    "?": "###|..#|.#.|...|.#.",
    ";": "...|.#.|...|.#.|#..",
}

WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREY: Color = (150, 150, 150)
LIGHT: Color = (225, 225, 225)


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    color: Color
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Reference:
    label: str
    color: Color
    y: float


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(WHITE * (width * height))

    def dot(self, x: int, y: int, color: Color, size: int = 1) -> None:
        half = size // 2
        for yy in range(y - half, y - half + size):
            if not 0 <= yy < self.height:
                continue
            for xx in range(x - half, x - half + size):
                if 0 <= xx < self.width:
                    i = (yy * self.width + xx) * 3
                    self.pixels[i : i + 3] = bytes(color)

    def line(
        self,
        start: tuple[float, float],
        end: tuple[float, float],
        color: Color,
        width: int = 1,
        dash: int = 0,
    ) -> None:
        (x0, y0), (x1, y1) = start, end
        steps = max(1, round(max(abs(x1 - x0), abs(y1 - y0))))
        for step in range(steps + 1):
            if dash and (step // dash) % 2:
                continue
            t = step / steps
            self.dot(round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t), color, width)

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> int:
        """Draw ``text`` with its top-left corner at (x, y); returns the width drawn."""
        start = x
        for char in text:
            glyph = _FONT.get(char.upper(), _FONT["?"])
            for row, bits in enumerate(glyph.split("|")):
                for col, bit in enumerate(bits):
                    if bit == "#":
                        for dy in range(scale):
                            for dx in range(scale):
                                self.dot(x + col * scale + dx, y + row * scale + dy, color)
            x += 4 * scale
        return x - start

    def save(self, path: Path) -> None:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        path.write_bytes(
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def text_width(text: str, scale: int = 2) -> int:
    return len(text) * 4 * scale


def line_chart(
    path: Path,
    *,
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    references: Sequence[Reference] = (),
    notes: Sequence[str] = (),
    width: int = 960,
    height: int = 600,
) -> None:
    """Series against a linear x axis and a log10 y axis (values below the floor are clamped)."""
    canvas = Canvas(width, height)
    left, right, top, bottom = 90, width - 30, 60, height - 80 - 14 * len(notes)
    xs = [x for s in series for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in series for _, y in s.points if y > 0] + [r.y for r in references]
    x_max = max(xs) * 1.05
    y_low = 10 ** math.floor(math.log10(max(min(ys, default=1.0), 0.1)))
    y_high = 10 ** math.ceil(math.log10(max(ys, default=10.0) * 1.01))

    def px(x: float) -> float:
        return left + (right - left) * x / x_max

    def py(y: float) -> float:
        fraction = (math.log10(max(y, y_low)) - math.log10(y_low)) / (
            math.log10(y_high) - math.log10(y_low)
        )
        return bottom - (bottom - top) * fraction

    decade = y_low
    while decade <= y_high:
        for factor in (1, 2, 5):
            value = decade * factor
            if value > y_high:
                break
            y = round(py(value))
            canvas.line((left, y), (right, y), LIGHT)
            label = f"{value:g}"
            canvas.text(left - 10 - text_width(label), y - 5, label)
        decade *= 10
    step = _nice_step(x_max)
    tick = 0.0
    while tick <= x_max:
        x = round(px(tick))
        canvas.line((x, bottom), (x, bottom + 6), BLACK)
        label = f"{tick:g}"
        canvas.text(x - text_width(label) // 2, bottom + 12, label)
        tick += step
    canvas.line((left, top), (left, bottom), BLACK, 2)
    canvas.line((left, bottom), (right, bottom), BLACK, 2)
    for reference in references:
        y = round(py(reference.y))
        canvas.line((left, y), (right, y), reference.color, 2, dash=8)
        canvas.text(right - text_width(reference.label) - 4, y - 16, reference.label, GREY)
    for s in series:
        points = [(px(x), py(y)) for x, y in s.points]
        for a, b in itertools.pairwise(points):
            canvas.line(a, b, s.color, 3)
        for point_x, point_y in points:
            canvas.dot(round(point_x), round(point_y), s.color, 9)
    canvas.text((width - text_width(title, 3)) // 2, 10, title, scale=3)
    canvas.text((left + right - text_width(x_label)) // 2, bottom + 38, x_label)
    canvas.text(12, top - 18, y_label)
    for index, s in enumerate(series):
        y = top + 14 + 24 * index
        canvas.line((left + 20, y + 5), (left + 50, y + 5), s.color, 3)
        canvas.text(left + 60, y, s.label)
    for index, note in enumerate(notes):
        canvas.text(12, bottom + 62 + 14 * index, note, GREY, scale=2)
    canvas.save(path)


def _nice_step(span: float) -> float:
    raw = span / 8
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude
