"""Labels from the tag styles statsd_exporter reads, taken from a raw name and DogStatsD tags.

The daemon's parser (``server.protocol``) already splits DogStatsD ``|#k:v`` tags off
the line and keeps names raw; the other three styles live *inside* the name, so they
are read here, from the name only, never from the wire:

* InfluxDB  ``name,k=v,k2=v2``
* Librato   ``name#k=v,k2=v2``
* SignalFX  ``name[k=v,k2=v2]`` (the brackets may sit anywhere in the name)

Rules follow statsd_exporter: SignalFX is looked for first; otherwise the first ``#``
or ``,`` starts tags; a tag that is empty, has no separator, or an empty key or value
is a tag error (the tag is skipped, the sample kept); tag keys are escaped into valid
label names; name tags *and* DogStatsD tags on one line is an error (sample dropped).
"""

from __future__ import annotations

from typing import NamedTuple

from django_statsd_push.bridge.mapping import escape_metric_name

__all__ = ["Tagged", "split_tags"]


class Tagged(NamedTuple):
    name: str
    labels: dict[str, str]
    tag_errors: int
    mixed: bool  # name-embedded tags and DogStatsD tags together: drop the sample


def _add(tag: str, separator: str, labels: dict[str, str]) -> int:
    if tag[:1] == "#" and separator == ":":
        tag = tag[1:]
    key, found, value = tag.partition(separator)
    if not found or not key or not value:
        return 1
    labels[escape_metric_name(key)] = value
    return 0


def _add_all(text: str, separator: str, labels: dict[str, str]) -> int:
    errors = 0
    parts = text.split(",")
    if parts and parts[-1] == "":
        parts.pop()  # a trailing comma is not an empty tag (statsd_exporter agrees)
    for tag in parts:
        errors += _add(tag, separator, labels)
    return errors


def _name_tags(name: str, labels: dict[str, str]) -> tuple[str, int]:
    start, end = name.find("["), name.find("]")
    if start != -1 and end != -1:
        return name[:start] + name[end + 1 :], _add_all(name[start + 1 : end], "=", labels)
    if (start == -1) != (end == -1):
        return name, 1  # one bracket only: not SignalFX; name kept as it is
    hash_at, comma_at = name.find("#"), name.find(",")
    cut = min(i for i in (hash_at, comma_at, len(name)) if i != -1)
    if cut == len(name):
        return name, 0
    return name[:cut], _add_all(name[cut + 1 :], "=", labels)


def split_tags(name: str, dogstatsd: tuple[str, ...] = ()) -> Tagged:
    """Clean name and labels (name-embedded tags, then DogStatsD tags)."""
    labels: dict[str, str] = {}
    if "[" in name or "#" in name or "," in name or "]" in name:
        name, errors = _name_tags(name, labels)
        if dogstatsd and labels:
            return Tagged(name, labels, errors, True)
    else:
        errors = 0
    last = len(dogstatsd) - 1
    for index, tag in enumerate(dogstatsd):
        if tag:
            errors += _add(tag, ":", labels)
        elif index != last:  # "|#a:1," ends in an empty tag that is no error
            errors += 1
    return Tagged(name, labels, errors, False)
