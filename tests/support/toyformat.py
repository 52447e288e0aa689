"""A tiny real format for testing the core without any imaging library.

A toy file is ``TOY1`` on its first line, ``key=value`` header lines, a
``---`` line, then payload bytes kept byte for byte.  ``name``, ``id`` and
``date`` are identifying.  Registered per test through
``RunConfig.extra_plugins``; importable by worker processes because
tests/support is on PYTHONPATH (see tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from medscrub import Asset, BadInput, Claim, Finding, Format, hookimpl, mask

MAGIC = b"TOY1\n"


def write_toy(path: Path, header: dict[str, str], payload: bytes = b"\x00\x01payload") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{k}={v}\n" for k, v in header.items())
    path.write_bytes(MAGIC + lines.encode() + b"---\n" + payload)
    return path


def parse(data: bytes) -> tuple[dict[str, str], bytes]:
    if not data.startswith(MAGIC):
        raise BadInput("not a toy file")
    head, sep, payload = data[len(MAGIC):].partition(b"---\n")
    if not sep:
        raise BadInput("truncated toy file: no end of header")
    header = {}
    for line in head.decode().splitlines():
        key, eq, value = line.partition("=")
        if not eq:
            raise BadInput(f"bad header line {line[:20]!r}")
        header[key] = value
    return header, payload


class ToyPlugin:
    """The toy format: claim, read, rules, write, verify."""

    @hookimpl
    def medscrub_register_formats(self, register):
        register(Format("toy", "test format for the core"))

    @hookimpl
    def medscrub_claim(self, path, context):
        if path.is_file() and path.suffix == ".toy":
            return Claim("toy", (path,))
        return None

    @hookimpl
    def medscrub_read(self, item, context):
        if item.format != "toy":
            return None
        if len(item.paths) > 1:  # a grouped series: one asset, several files
            parts = [(rel, *parse(path.read_bytes())) for rel, path in zip(item.inputs, item.paths, strict=True)]
            asset = Asset(item, "toy", {"header": parts[0][1], "payload": parts[0][2], "parts": parts})
            for _, header, _ in parts:
                asset.remember("name", header.get("name", ""))
            return asset
        header, payload = parse(item.path.read_bytes())
        if header.get("sleep"):
            time.sleep(float(header["sleep"]))
        if header.get("crash") == "exit":
            os._exit(3)  # a worker dying, as a decoder segfault would
        if header.get("crash") == "bug":
            raise ZeroDivisionError("plugin bug")
        asset = Asset(item, "toy", {"header": header, "payload": payload})
        for key in ("name", "id", "date"):
            if header.get(key):
                asset.remember(key if key != "date" else "date", header[key])
        return asset

    @hookimpl
    def medscrub_group_key(self, item, context):
        if item.format == "toy":
            series = parse(item.path.read_bytes())[0].get("series")
            return f"toy-series:{series}" if series else None
        return None

    @hookimpl
    def medscrub_apply_rules(self, asset, rules, context):
        if asset.format != "toy":
            return None
        for _, header, _ in asset.data.get("parts", [(None, asset.data["header"], None)]):
            self._clean(asset, header, rules, context)
        return True

    def _clean(self, asset, header, rules, context):
        site = {rule.match: rule for _, rule in rules.for_format("toy")}
        patient = header.get("id", "")
        for key in list(header):
            rule = site.get(key)
            if rule is not None:
                action = rule.action
                if action == "keep":
                    continue
                if action == "remove":
                    del header[key]
                elif action == "replace":
                    header[key] = rule.value
                elif action == "empty":
                    header[key] = ""
                else:
                    header[key] = context.pseudonyms.hash(key, header[key])
                asset.record(action, key, "site")
            elif key in ("name", "id"):
                header[key] = context.patient_pseudonym(patient)
                asset.record("pseudonymise", key, "toy-profile")
            elif key == "date":
                if context.date_policy == "remove":
                    del header[key]
                    asset.record("remove", key, "toy-profile")
                elif context.date_policy == "shift":
                    date = dt.date.fromisoformat(header[key])
                    header[key] = context.pseudonyms.shift(date, patient).isoformat()
                    asset.record("shift", key, "toy-profile")
        if header.get("quarantine"):
            asset.quarantine = header["quarantine"]

    @hookimpl
    def medscrub_output_name(self, asset, context):
        if asset.format == "toy":
            return f"{asset.data['header'].get('id', 'unknown')}/../{asset.data['header'].get('id', 'x')}.toy"
        return None

    @hookimpl
    def medscrub_write(self, asset, sink, context):
        if asset.format != "toy":
            return None
        if "parts" in asset.data:
            for rel, header, payload in asset.data["parts"]:
                write_toy(sink.path(rel), header, payload)
            return True
        header = asset.data["header"]
        if header.get("leak"):
            header["note"] = header["leak"]  # a plugin bug that copies PHI back
        write_toy(sink.path(), header, asset.data["payload"])
        return True

    @hookimpl
    def medscrub_verify(self, output, original, format, context):
        if format != "toy":
            return None
        found = []
        out_header, _ = parse(Path(output).read_bytes())
        if original is not None:
            in_header, _ = parse(Path(original).read_bytes())
            for key in ("name", "id"):
                if in_header.get(key) and in_header[key] in out_header.values():
                    found.append(Finding(str(output), f"header {key}", key, mask(in_header[key])))
        return found


plugin = ToyPlugin()


def png(width: int, height: int, value: int = 128) -> bytes:
    """A small grey PNG, made without an image library."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([value]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class ToyCleaner:
    """A pixel cleaner for toy files: zeroes the payload, leaves pictures."""

    @hookimpl
    def medscrub_register_cleaners(self, register):
        from medscrub import Cleaner

        register(Cleaner("erase-text", "zero the toy payload", applies=self.applies, clean=self.clean, flag="--erase-text"))

    @staticmethod
    def applies(asset):
        return asset.format == "toy"

    @staticmethod
    def clean(asset, context):
        from medscrub import Change, Preview

        asset.data["payload"] = bytes(len(asset.data["payload"]))
        asset.previews.append(Preview("payload", before=png(40, 30, 250), after=png(40, 30, 0)))
        return [Change("pixels", "payload", "toy-cleaner", f"{len(asset.data['payload'])} bytes")]


cleaner = ToyCleaner()
