"""``format`` as regular languages over the decoded string.

Each entry follows what Python ``jsonschema``'s format checker accepts with the
standard format packages (``rfc3339-validator``, ``fqdn``, ``rfc3987``...), or the
RFC that checker implements where it has quirks we do not reproduce (listed in
``FORMATS[name].notes``).  ``exact`` says whether the DFA is exactly the
checker's language; ``not``/``oneOf`` need exact languages to complement.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..automata import ops
from ..automata.fsm import ByteDFA
from ..automata.regex import regex_to_dfa

__all__ = ["FORMATS", "FORMAT_TABLES", "FormatSpec", "KNOWN_UNSUPPORTED_FORMATS", "build_format_dfa", "format_dfa",
           "write_format_tables"]

_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = (r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])"
              r"|(?:0[48]|[2468][048]|[13579][26])00)")
_MD = (r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
       r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
       r"|02-(?:0[1-9]|1[0-9]|2[0-8]))")
DATE = rf"(?:{_YEAR}-{_MD}|{_LEAP_YEAR}-02-29)"
_HH = r"(?:[01][0-9]|2[0-3])"
_MM = r"[0-5][0-9]"
TIME = rf"{_HH}:{_MM}:{_MM}(?:\.[0-9]+)?(?:[Zz]|[+-]{_HH}:{_MM})"
DATE_TIME = rf"{DATE}[Tt]{TIME}"

_DUR_TIME = r"T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
DURATION = rf"P(?:(?:[0-9]+D|[0-9]+M(?:[0-9]+D)?|[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?)(?:{_DUR_TIME})?|{_DUR_TIME}|[0-9]+W)"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{IPV4})"
IPV6 = ("(?:" + "|".join([
    rf"(?:{_H16}:){{6}}{_LS32}",
    rf"::(?:{_H16}:){{5}}{_LS32}",
    rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
    rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
    rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
]) + ")")
_LABEL = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"  # 1-63 characters
HOSTNAME = rf"{_LABEL}(?:\.{_LABEL})*\.?"
#: RFC 1035: at most 253 characters, not counting a trailing dot
HOSTNAME_LENGTH = r"(?s:.{0,253}\.?)"
UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
EMAIL = r"(?s:.*@.*)"
JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)*"
REL_JSON_POINTER = rf"(?:0|[1-9][0-9]*)(?:#|{JSON_POINTER})"

# RFC 3986 / RFC 3987
_UNRES = r"A-Za-z0-9\-._~"
_SUB = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_UCS = (r"\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd\U00020000-\U0002fffd"
        r"\U00030000-\U0003fffd\U00040000-\U0004fffd\U00050000-\U0005fffd\U00060000-\U0006fffd"
        r"\U00070000-\U0007fffd\U00080000-\U0008fffd\U00090000-\U0009fffd\U000a0000-\U000afffd"
        r"\U000b0000-\U000bfffd\U000c0000-\U000cfffd\U000d0000-\U000dfffd\U000e1000-\U000efffd")
_PRIV = r"\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"


def _uri_regex(iri: bool, reference: bool) -> str:
    unres = _UNRES + (_UCS if iri else "")
    pchar = rf"(?:[{unres}{_SUB}:@]|{_PCT})"
    seg = rf"{pchar}*"
    seg_nz = rf"{pchar}+"
    seg_nz_nc = rf"(?:[{unres}{_SUB}@]|{_PCT})+"
    userinfo = rf"(?:[{unres}{_SUB}:]|{_PCT})*"
    ipvfuture = rf"v[0-9A-Fa-f]+\.[{_UNRES}{_SUB}:]+"
    host = rf"(?:\[(?:{IPV6}|{ipvfuture})\]|(?:[{unres}{_SUB}]|{_PCT})*)"
    authority = rf"(?:{userinfo}@)?{host}(?::[0-9]*)?"
    abempty = rf"(?:/{seg})*"
    absolute = rf"/(?:{seg_nz}(?:/{seg})*)?"
    rootless = rf"{seg_nz}(?:/{seg})*"
    noscheme = rf"{seg_nz_nc}(?:/{seg})*"
    query = rf"(?:{pchar}|[/?{_PRIV if iri else ''}])*"
    fragment = rf"(?:{pchar}|[/?])*"
    scheme = r"[A-Za-z][A-Za-z0-9+\-.]*"
    hier = rf"(?://{authority}{abempty}|{absolute}|{rootless}|)"
    uri = rf"{scheme}:{hier}(?:\?{query})?(?:#{fragment})?"
    if not reference:
        return uri
    rel = rf"(?://{authority}{abempty}|{absolute}|{noscheme}|)(?:\?{query})?(?:#{fragment})?"
    return rf"(?:{uri}|{rel})"


@dataclass(frozen=True)
class FormatSpec:
    name: str
    regex: str
    exact: bool
    notes: str = ""
    within: str | None = None  # a second regex the string must also match (length limits)


FORMATS: dict[str, FormatSpec] = {f.name: f for f in [
    FormatSpec("date-time", DATE_TIME, True, "RFC 3339 date-time as rfc3339-validator checks it (T/Z in either "
               "case, day valid for the month incl. leap years, no leap seconds)"),
    FormatSpec("date", DATE, True, "RFC 3339 full-date, a real calendar date (year 0001-9999)"),
    FormatSpec("time", TIME, True, "RFC 3339 full-time with an offset, no leap seconds (as jsonschema)"),
    FormatSpec("duration", DURATION, True, "RFC 3339 Appendix A duration"),
    FormatSpec("email", EMAIL, True, "as jsonschema: any string containing '@'"),
    FormatSpec("idn-email", EMAIL, True, "as jsonschema: any string containing '@'"),
    FormatSpec("ipv4", IPV4, True, "dotted quad, no leading zeros (Python ipaddress)"),
    FormatSpec("ipv6", IPV6, True, "RFC 4291 text forms incl. embedded IPv4, no zone id (Python ipaddress)"),
    FormatSpec("hostname", HOSTNAME, False, "RFC 1123 labels of 1-63 ASCII letters/digits/hyphens, optional "
               "trailing dot, at most 253 characters besides that dot (as fqdn checks); fqdn's quirks are not "
               "produced: non-ASCII digits and case variants its IGNORECASE `\\d` admits, a final newline",
               within=HOSTNAME_LENGTH),
    FormatSpec("uuid", UUID, False, "8-4-4-4-12 hex digits; uuid.UUID's extra spellings (braces, urn:) are not "
               "produced"),
    FormatSpec("uri", _uri_regex(False, False), True, "RFC 3986 URI"),
    FormatSpec("uri-reference", _uri_regex(False, True), True, "RFC 3986 URI-reference"),
    FormatSpec("iri", _uri_regex(True, False), True, "RFC 3987 IRI"),
    FormatSpec("iri-reference", _uri_regex(True, True), True, "RFC 3987 IRI-reference"),
    FormatSpec("json-pointer", JSON_POINTER, True, "RFC 6901"),
    FormatSpec("relative-json-pointer", REL_JSON_POINTER, True, "draft-handrews-relative-json-pointer-01"),
]}

#: Formats a JSON Schema validator checks but that have no exact regular language here.
KNOWN_UNSUPPORTED_FORMATS = {
    "regex": "checking that a string is a valid regular expression is not a regular language",
    "idn-hostname": "IDNA 2008 validity is not implemented",
    "uri-template": "RFC 6570 templates are not implemented",
}


#: The formats' DFAs as built by :func:`build_format_dfa`, shipped beside this module
#: (``python -c 'import structgen.json_schema.formats as f; f.write_format_tables()'`` writes them): reading one takes ~0.1 ms,
#: building it 1-70 ms (uri-reference 28, iri-reference 72), once per process and format.
#: Each is stored with a digest of its spec and used only while the digest matches;
#: the tests compare every stored DFA with a fresh build.
FORMAT_TABLES = Path(__file__).with_name("format_tables.npz")


def _spec_digest(spec: FormatSpec) -> str:
    return hashlib.sha256(repr((spec.regex, spec.within)).encode()).hexdigest()[:16]


def build_format_dfa(spec: FormatSpec) -> ByteDFA:
    """The format's DFA from its regex (and its ``within`` regex): the definition."""
    dfa = regex_to_dfa(spec.regex, max_states=200_000)  # minimal already
    if spec.within is not None:  # the product is minimal too
        dfa = ops.intersect(dfa, regex_to_dfa(spec.within, max_states=200_000))
    return dfa


@functools.lru_cache(maxsize=1)
def _tables():
    try:
        return np.load(FORMAT_TABLES)  # members are read (and decompressed) when indexed
    except OSError:
        return None


def _stored_dfa(name: str) -> ByteDFA | None:
    tables = _tables()
    if tables is None or f"{name}.digest" not in tables.files or \
            str(tables[f"{name}.digest"]) != _spec_digest(FORMATS[name]):
        return None
    return ops.trimmed_dfa(tables[f"{name}.trans"], tables[f"{name}.classes"], tables[f"{name}.accepting"],
                           int(tables[f"{name}.start"]))


@functools.lru_cache(maxsize=None)
def format_dfa(name: str) -> ByteDFA:
    spec = FORMATS[name]
    dfa = _stored_dfa(name)
    return build_format_dfa(spec) if dfa is None else dfa


def write_format_tables(path: Path = FORMAT_TABLES) -> None:
    """Build every format's DFA and store them (with their specs' digests) at ``path``."""
    arrays = {}
    for name, spec in FORMATS.items():
        dfa = build_format_dfa(spec)
        arrays.update({f"{name}.trans": dfa.trans, f"{name}.classes": dfa.classes,
                       f"{name}.accepting": dfa.accepting, f"{name}.start": np.int64(dfa.start),
                       f"{name}.digest": np.array(_spec_digest(spec))})
    np.savez_compressed(path, **arrays)
