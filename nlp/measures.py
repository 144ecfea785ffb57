"""Regex recognisers for measures ("1/2-Inch", "128GB", "1000 Count") and model numbers."""
from __future__ import annotations

import re
from typing import Iterator, NamedTuple, Optional

# surface (lowercase) -> (canonical unit, dimension)
UNITS: dict[str, tuple[str, str]] = {}


def _units(canonical: str, dimension: str, *surfaces: str) -> None:
    for s in (canonical, *surfaces):
        UNITS[s] = UNITS[s.lower()] = (canonical, dimension)


_units("in", "length", "inch", "inches", '"', "''", "in.")
_units("ft", "length", "foot", "feet", "'")
_units("yd", "length", "yard", "yards", "yds")
_units("mm", "length", "millimeter", "millimeters", "millimetre", "millimetres")
_units("cm", "length", "centimeter", "centimeters")
_units("m", "length", "meter", "meters", "metre", "metres")
_units("um", "length", "micron", "microns", "µm")
_units("mil", "thickness", "mils")
_units("ga", "gauge", "gauge", "awg")
_units("lb", "weight", "lbs", "pound", "pounds")
_units("oz", "weight", "ounce", "ounces")
_units("g", "weight", "gram", "grams")
_units("kg", "weight", "kilogram", "kilograms", "kgs")
_units("ml", "volume", "milliliter", "milliliters", "millilitre")
_units("l", "volume", "liter", "liters", "litre", "litres")
_units("gal", "volume", "gallon", "gallons")
_units("fl oz", "volume", "fl. oz", "fl.oz")
_units("v", "voltage", "volt", "volts", "vac", "vdc", "kv")
_units("a", "current", "amp", "amps", "ampere", "amperes")
_units("mah", "charge")
_units("w", "power", "watt", "watts", "kw")
_units("hz", "frequency", "khz", "mhz")
_units("psi", "pressure", "bar")
_units("rpm", "speed")
_units("ohm", "resistance", "ohms", "kohm", "Ω")
_units("gb", "storage", "mb", "tb")
_units("count", "count", "ct", "pack", "pk", "pcs", "pc", "pieces", "piece", "pairs", "pair",
       "per box", "box", "sheets", "rolls", "roll")
_units("grit", "grit")
_units("degf", "temperature", "°f", "degrees f", "deg f")
_units("degc", "temperature", "°c", "degrees c", "deg c")
_units("%", "percent", "percent")

_NUMBER = r"(?:\d+[- ]\d+/\d+|\d+/\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.\d+|\d+)"
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
MEASURE_RE = re.compile(
    rf"(?<![\w./-])(?P<num>{_NUMBER})\s?-?\s?(?P<unit>{_UNIT_ALT})(?![\w])", re.IGNORECASE)
# Inch/foot marks are punctuation, so the trailing \w guard above is enough for them too.

MODEL_RE = re.compile(
    r"(?<![\w/.-])(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Z])[A-Z0-9][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"
    r"(?![\w/-])")


class Measure(NamedTuple):
    start: int
    end: int
    text: str
    value: float
    unit: str
    dimension: str


def parse_number(text: str) -> Optional[float]:
    """"1/2" -> 0.5, "1-1/4" and "1 1/4" -> 1.25, "1,000" -> 1000.0."""
    text = text.replace(",", "")
    whole, frac = "0", text
    mixed = re.fullmatch(r"(\d+)[- ](\d+/\d+)", text)
    if mixed:
        whole, frac = mixed.groups()
    try:
        if "/" in frac:
            num, den = frac.split("/")
            return float(whole) + float(num) / float(den) if float(den) else None
        return float(text)
    except ValueError:
        return None


def find_measures(text: str) -> Iterator[Measure]:
    for m in MEASURE_RE.finditer(text):
        unit_surface = m.group("unit").lower()
        canonical, dimension = UNITS.get(unit_surface) or UNITS[m.group("unit")]
        # A bare "a"/"m"/"l"/"g"/"in" after a number is too often a word ("2 in 1", "5 A B").
        if unit_surface in {"in", "a", "m", "l", "g"} and " " in m.group(0):
            following = text[m.end():m.end() + 2]
            if unit_surface != "in" or following.strip()[:1].isdigit():
                continue
        if m.group("unit") == "L" and m.group(0)[-2:-1].isdigit():
            continue  # "304L" is a steel grade, not litres
        value = parse_number(m.group("num"))
        if value is None:
            continue
        if unit_surface in {"mb", "tb"}:
            canonical = unit_surface
        if unit_surface in {"kv", "kw", "khz", "mhz", "kohm"}:
            canonical = unit_surface
        yield Measure(m.start(), m.end(), m.group(0), value, canonical, dimension)


def measure_key(value: float, unit: str, dimension: str) -> str:
    number = f"{value:.4f}".rstrip("0").rstrip(".")
    return f"{dimension}-{number}-{unit}".replace("%", "pct").replace(" ", "-")


def is_model_number(token: str, strict: bool = True) -> bool:
    """Alphanumeric codes with letters and digits ("TRA708T", "SPP6", "T-50"), not measures."""
    if not MODEL_RE.fullmatch(token):
        return False
    if MEASURE_RE.fullmatch(token) or re.fullmatch(r"\d+(?:st|nd|rd|th|pcs|x\d+)", token, re.I):
        return False
    if strict:
        letters = sum(c.isalpha() for c in token)
        return len(token) >= 4 and letters >= 1 and not re.fullmatch(r"\d+[A-Za-z]|[A-Za-z]\d", token)
    return len(token) >= 3


def find_model_numbers(text: str, strict: bool = True) -> Iterator[tuple[int, int, str]]:
    for m in MODEL_RE.finditer(text):
        if is_model_number(m.group(0), strict):
            yield m.start(), m.end(), m.group(0)
