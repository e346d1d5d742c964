"""Text normalization for speech: what a voice should say for what a person typed.

``normalize`` rewrites numbers (in ``num2words``' English), money, percentages, times, ordinals,
common abbreviations, symbols, URLs and e-mail addresses as English words, and drops characters
an English voice cannot say (emoji, control characters, CJK and other non-Latin scripts) with one
logged warning, never an exception. ``model.speech.sentences`` then cuts the result into pieces a
voice says one by one.

    >>> normalize("Dr. Smith paid $5.20 for 3 apples at 3:30 pm & left.")
    'Doctor Smith paid five dollars and twenty cents for three apples at three thirty p m and left.'

The rules are heuristics for English; ambiguous cases take the common reading (``St.`` before a
capitalised word is "Saint", otherwise "Street"; four-digit numbers from 1100 to 1999 and numbers
after words like "in"/"since" read as years).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable

from num2words import num2words

logger = logging.getLogger(__name__)

__all__ = ["normalize", "cardinal", "ordinal", "year", "decimal"]

# ------------------------------------------------------------------------------------------ numbers
_MAX_CARDINAL = 10**21 - 1  # above this, digits are read one by one
_DIGITS = "zero one two three four five six seven eight nine".split()


def _said(words: str) -> str:
    """num2words' English without the commas between its thousands: a voice pauses at a comma (and
    ``split_sentences`` may cut there), never inside a number."""
    return words.replace(",", "")


def cardinal(n: int) -> str:
    """``1234`` -> ``'one thousand two hundred and thirty-four'``; negative numbers read "minus"."""
    if abs(n) > _MAX_CARDINAL:
        return ("minus " if n < 0 else "") + digits(str(abs(n)))
    return _said(num2words(n, lang="en"))


def ordinal(n: int) -> str:
    """``21`` -> ``'twenty-first'``."""
    return _said(num2words(n, lang="en", to="ordinal")) if 0 <= n <= _MAX_CARDINAL else cardinal(n)


def year(n: int) -> str:
    """``1984`` -> ``'nineteen eighty-four'``, ``2005`` -> ``'two thousand and five'``, ``2024`` -> ``'twenty twenty-four'``."""
    return _said(num2words(n, lang="en", to="year")) if 1000 <= n <= 9999 else cardinal(n)


def digits(s: str) -> str:
    """``'007'`` -> ``'zero zero seven'``."""
    return " ".join(_DIGITS[int(c)] for c in s if c.isdigit())


def decimal(s: str) -> str:
    """``'3.14'`` -> ``'three point one four'``; ``'.5'`` -> ``'point five'``."""
    whole, _, frac = s.partition(".")
    words = _integer(whole) if whole else ""
    if frac:
        words = (words + " point " + digits(frac)).strip()
    return words


def _integer(s: str) -> str:
    """An integer string as words: digit by digit when it has leading zeros or is very long."""
    s = s.replace(",", "")
    if len(s) > 1 and s.startswith("0") or len(s) > 21:
        return digits(s)
    return cardinal(int(s))


# ------------------------------------------------------------------------------------ the rules
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
_MAGNITUDES = {
    "thousand": "thousand", "k": "thousand", "million": "million", "m": "million", "mn": "million",
    "billion": "billion", "bn": "billion", "b": "billion", "trillion": "trillion", "tn": "trillion",
}
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"

_RE_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"']+", re.IGNORECASE)
_RE_EMAIL = re.compile(r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b")
_RE_DOMAIN = re.compile(
    r"\b(?:[A-Za-z0-9-]+\.)+(?:com|org|net|edu|gov|io|ai|dev|app|info|co|uk|us|de|fr|eu|ca|au)\b(?!\.\w)"
)
_RE_CURRENCY = re.compile(
    r"(?P<sign>-)?(?P<sym>[$£€¥₹])\s?(?P<num>" + _NUM + r")(?:\s?(?P<mag>thousand|million|billion|trillion|bn|mn|tn|[kmb])\b)?",
    re.IGNORECASE,
)
_RE_PERCENT = re.compile(r"(?P<sign>-)?(?P<num>" + _NUM + r")\s?%")
_RE_TIME = re.compile(
    r"\b(?P<h>[01]?\d|2[0-4]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?(?:\s?(?P<ampm>[ap])\.?m\b\.?)?", re.IGNORECASE
)
_RE_HOUR_AMPM = re.compile(r"\b(?P<h>1[0-2]|0?[1-9])\s?(?P<ampm>[ap])\.?m\b\.?", re.IGNORECASE)
_RE_ORDINAL = re.compile(r"\b(?P<num>\d+)(?P<suf>st|nd|rd|th)\b", re.IGNORECASE)
_RE_DECADE = re.compile(r"(?:\b|')(?P<num>1[1-9]\d0|20\d0|\d0)'?s\b")
_RE_FRACTION = re.compile(r"(?<![\d/])(?P<a>\d{1,2})/(?P<b>\d{1,2})(?![\d/])")
_RE_RANGE = re.compile(r"(?<=\d)\s?[-–]\s?(?=\d)")
_RE_NEGATIVE = re.compile(r"(?<![\w.])-(?=\.?\d)")
_RE_NUMBER = re.compile(_NUM)
_YEAR_CONTEXT = re.compile(
    r"\b(?:in|since|by|until|till|from|year|of|during|before|after|circa|around|early|late|mid|"
    r"spring|summer|autumn|fall|winter|january|february|march|april|may|june|july|august|"
    r"september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)[\s.,]+$",
    re.IGNORECASE,
)
_FRACTIONS = {2: ("half", "halves"), 4: ("quarter", "quarters")}

# Abbreviations with their period. Titles never end a sentence; the others keep a full stop when
# the text ends after them or the next word starts with a capital.
_TITLES = {
    "Dr.": "Doctor", "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Prof.": "Professor",
    "Mt.": "Mount", "Gen.": "General", "Capt.": "Captain", "Sgt.": "Sergeant", "Rev.": "Reverend",
    "Hon.": "Honorable", "Gov.": "Governor", "Sen.": "Senator", "Rep.": "Representative",
}
_ABBREVIATIONS = {
    "etc.": "et cetera", "e.g.": "for example", "i.e.": "that is", "vs.": "versus", "vs": "versus",
    "approx.": "approximately", "Jr.": "Junior", "Sr.": "Senior", "Inc.": "Incorporated",
    "Ltd.": "Limited", "Co.": "Company", "Corp.": "Corporation", "Ave.": "Avenue", "Rd.": "Road",
    "Blvd.": "Boulevard", "Dept.": "Department", "Univ.": "University", "Fig.": "Figure",
    "min.": "minutes", "hrs.": "hours", "hr.": "hour", "sec.": "seconds", "a.m.": "a m", "p.m.": "p m",
    "U.S.": "U S", "U.K.": "U K", "Jan.": "January", "Feb.": "February", "Aug.": "August",
    "Sept.": "September", "Oct.": "October", "Nov.": "November", "Dec.": "December",
}
_RE_TITLE = re.compile(r"(?<![\w.])(" + "|".join(re.escape(k) for k in _TITLES) + r")(?=\s|$)")
_RE_ABBREV = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(k) for k in sorted(_ABBREVIATIONS, key=len, reverse=True)) + r")(?=[\s,;:!?)]|$)",
    re.IGNORECASE,
)
_ABBREV_LOWER = {k.lower(): v for k, v in _ABBREVIATIONS.items()}
_RE_SAINT_STREET = re.compile(r"(?<![\w.])St\.(?=(\s+\S)?)")
_RE_NUMBER_SIGN = re.compile(r"(?<![\w.])(?:No\.|#)\s?(?=\d)")
_UNITS = {
    "km": "kilometers", "kg": "kilograms", "cm": "centimeters", "mm": "millimeters", "mph": "miles per hour",
    "km/h": "kilometers per hour", "kph": "kilometers per hour", "lbs": "pounds", "lb": "pounds",
    "ft": "feet", "GB": "gigabytes", "MB": "megabytes", "KB": "kilobytes", "TB": "terabytes",
    "GHz": "gigahertz", "MHz": "megahertz", "kHz": "kilohertz", "Hz": "hertz", "ms": "milliseconds",
    "°C": "degrees Celsius", "°F": "degrees Fahrenheit", "°": "degrees",
}
_RE_UNIT = re.compile(
    r"(?<=\d)\s?(" + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True)) + r")(?![\w])"
)
_SYMBOLS = {
    "&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "%": " percent ", "<": " less than ",
    ">": " greater than ", "~": " about ", "°": " degrees ", "$": " dollars ", "£": " pounds ",
    "€": " euros ", "¥": " yen ", "₹": " rupees ", "§": " section ", "×": " times ", "÷": " divided by ",
    "/": " ", "\\": " ", "|": ", ", "_": " ", "*": " ", "^": " ", "`": "", "#": " ",
}
_TYPOGRAPHY = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u201c": '"', "\u201d": '"',
    "\u201e": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"', "\u2013": " - ", "\u2014": ", ",
    "\u2015": ", ", "\u2026": "...", "\u00a0": " ", "\u2212": "-",
}
# what survives: letters, whitespace and the punctuation voices use for prosody
_PUNCTUATION = set(".,!?;:'\"-()")


def _currency(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[m["sym"]]
    num = m["num"].replace(",", "")
    sign = "minus " if m["sign"] else ""
    if m["mag"]:
        return f"{sign}{decimal(num)} {_MAGNITUDES[m['mag'].lower()]} {many}"
    whole, _, frac = num.partition(".")
    whole_n = int(whole or "0")
    words = f"{cardinal(whole_n)} {one if whole_n == 1 else many}"
    if frac and sub_one and len(frac) <= 2:
        cents = int(frac.ljust(2, "0"))
        if cents:
            cents_words = f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}"
            words = cents_words if whole_n == 0 else f"{words} and {cents_words}"
    elif frac:
        words = f"{decimal(num)} {many}"
    return sign + words


def _time(m: re.Match) -> str:
    h, mnt = int(m["h"]), int(m["m"])
    ampm = f" {m['ampm'].lower()} m" if m["ampm"] else ""
    if mnt == 0:
        words = f"{cardinal(h)} o'clock" if ampm == "" and h <= 12 else (
            f"{cardinal(h)}" if ampm else f"{cardinal(h)} hundred"
        )
    elif mnt < 10:
        words = f"{cardinal(h)} oh {_DIGITS[mnt]}"
    else:
        words = f"{cardinal(h)} {cardinal(mnt)}"
    if m["s"]:
        words += f" and {cardinal(int(m['s']))} seconds"
    return words + ampm


def _ordinal(m: re.Match) -> str:
    return ordinal(int(m["num"]))


def _decade(m: re.Match) -> str:
    n = int(m["num"])
    words = year(n) if n >= 100 else cardinal(n)
    head, sep, last = words.rpartition(" ")
    first, hyphen, unit = last.rpartition("-")
    unit = unit[:-1] + "ies" if unit.endswith("y") else unit + "s"
    return head + sep + first + hyphen + unit


def _fraction(m: re.Match) -> str:
    a, b = int(m["a"]), int(m["b"])
    if 2 <= b <= 10 and 0 < a < b:
        if b in _FRACTIONS:
            name = _FRACTIONS[b][a != 1]
        else:
            name = ordinal(b) + ("s" if a != 1 else "")
        return f"{cardinal(a)} {name}"
    return f"{cardinal(a)} over {cardinal(b)}"


def _url(m: re.Match) -> str:
    url = m.group(0).rstrip(".,;:!?)")
    trailing = m.group(0)[len(url):]
    host = re.sub(r"^(?:https?://|ftp://)", "", url, flags=re.IGNORECASE)
    host = re.split(r"[/?#:]", host, maxsplit=1)[0]
    host = re.sub(r"^www\.", "", host, flags=re.IGNORECASE)
    return " " + " dot ".join(p for p in host.split(".") if p) + " " + trailing


def _email(m: re.Match) -> str:
    user, _, domain = m.group(0).partition("@")
    spoken_user = " dot ".join(p for p in re.split(r"\.", user) if p)
    spoken_user = spoken_user.replace("_", " underscore ").replace("+", " plus ").replace("-", " dash ")
    return f" {spoken_user} at {' dot '.join(domain.split('.'))} "


def _number(m: re.Match, text: str) -> str:
    s = m.group(0)
    if "." in s:
        return decimal(s)
    plain = s.replace(",", "")
    if "," not in s and len(plain) == 4 and not plain.startswith("0"):
        n = int(plain)
        if 1100 <= n <= 1999 or (2000 <= n <= 2099 and _YEAR_CONTEXT.search(text[: m.start()])):
            return year(n)
    return _integer(s)


def _abbreviation(m: re.Match, text: str) -> str:
    key = m.group(1)
    words = _ABBREVIATIONS.get(key) or _ABBREV_LOWER[key.lower()]
    if key.endswith("."):
        rest = text[m.end():]
        if not rest.strip() or re.match(r"\s+[A-Z]", rest):
            words += "."
    return words


def _saint_or_street(m: re.Match, text: str) -> str:
    rest = text[m.end():]
    if re.match(r"\s+[A-Z]", rest) and not re.search(r"\d\s*$", text[: m.start()]) and not re.search(
        r"[A-Z][a-z]+\s+$", text[: m.start()]
    ):
        return "Saint"
    return "Street." if not rest.strip() or re.match(r"\s+[A-Z]", rest) else "Street"


def _sub(pattern: re.Pattern, fn: Callable[[re.Match, str], str], text: str) -> str:
    return pattern.sub(lambda m: fn(m, text), text)


def _is_latin_letter(ch: str) -> bool:
    return ch.isalpha() and ch.isascii() or ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN")


def _strip_accent(ch: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))


def _filter_characters(text: str, alphabet: frozenset[str] | None) -> str:
    """Keep what the voice can say; drop the rest, with one warning listing what went.

    Punctuation the model's alphabet lacks is prosody, not speech: it becomes a comma or a space
    without a warning.
    """
    out, dropped = [], []
    for ch in text:
        if ch.isspace():
            out.append(" ")
        elif ch in _PUNCTUATION:
            if alphabet is None or ch in alphabet:
                out.append(ch)
            else:
                out.append("," if ch in ";:()" and "," in alphabet else " ")
        elif _is_latin_letter(ch):
            if alphabet is None or ch in alphabet or ch.lower() in alphabet:  # coqui's cleaners lowercase
                out.append(ch)
            elif (plain := _strip_accent(ch)) and all(c in alphabet or c.lower() in alphabet for c in plain):
                out.append(plain)  # the model has no "é": say "e"
            else:
                dropped.append(ch)
        else:
            dropped.append(ch)
            if unicodedata.category(ch)[0] not in "LM":  # an emoji or control between words separates them
                out.append(" ")
    if dropped:
        shown = "".join(dict.fromkeys(dropped))
        logger.warning(
            "dropped %d character(s) the voice cannot say: %s",
            len(dropped), ", ".join(_describe(c) for c in shown[:12]) + (" ..." if len(shown) > 12 else ""),
        )
    return "".join(out)


def _describe(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed').lower()})" if ch.isprintable() else f"U+{ord(ch):04X}"


def normalize(text: str, *, alphabet: Iterable[str] | None = None) -> str:
    """English words for ``text``, ready for a voice. Returns ``""`` when nothing is sayable.

    ``alphabet``: the characters a model's vocabulary holds (YourTTS); letters outside it lose
    their accents or are dropped. ``None`` keeps ASCII and accented Latin letters (espeak-ng).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    alpha = frozenset(alphabet) if alphabet is not None else None
    t = unicodedata.normalize("NFKC", text)
    for src, dst in _TYPOGRAPHY.items():
        t = t.replace(src, dst)
    # paragraphs end sentences; other line breaks and tabs are spaces
    t = re.sub(r"(?<=[^\s.!?:;,])[ \t]*(?:\r?\n[ \t]*){2,}", ". ", t)
    t = re.sub(r"[\r\n\t\v\f]+", " ", t)

    t = _RE_URL.sub(_url, t)
    t = _RE_EMAIL.sub(_email, t)
    t = _RE_DOMAIN.sub(lambda m: " dot ".join(m.group(0).split(".")), t)
    t = _RE_CURRENCY.sub(_currency, t)
    t = _RE_PERCENT.sub(lambda m: ("minus " if m["sign"] else "") + decimal(m["num"].replace(",", "")) + " percent", t)
    t = _RE_TIME.sub(_time, t)
    t = _RE_HOUR_AMPM.sub(lambda m: f"{cardinal(int(m['h']))} {m['ampm'].lower()} m", t)
    t = _RE_ORDINAL.sub(_ordinal, t)
    t = _RE_DECADE.sub(_decade, t)
    t = _RE_FRACTION.sub(_fraction, t)
    t = _RE_NUMBER_SIGN.sub("number ", t)
    t = _RE_UNIT.sub(lambda m: " " + _UNITS[m.group(1)], t)
    t = _sub(_RE_SAINT_STREET, _saint_or_street, t)
    t = _RE_TITLE.sub(lambda m: _TITLES[m.group(1)], t)
    t = _sub(_RE_ABBREV, _abbreviation, t)
    t = _RE_RANGE.sub(" to ", t)
    t = _RE_NEGATIVE.sub("minus ", t)
    t = _sub(_RE_NUMBER, _number, t)
    for sym, words in _SYMBOLS.items():
        t = t.replace(sym, words)

    t = _filter_characters(t, alpha)
    t = re.sub(r"\s+-+(?=\s)", ",", t)  # a dash standing alone is a pause
    t = re.sub(r"\s+", " ", t)
    t = re.sub(r"\s+([.,!?;:)])", r"\1", t)
    t = re.sub(r"([(])\s+", r"\1", t)
    t = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", t)  # ", ," left by dropped symbols
    t = re.sub(r"^[\s,.;:!?)-]+", "", t).strip()
    if not any(c.isalpha() for c in t):
        return ""
    return t
