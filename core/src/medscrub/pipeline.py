"""The run: discover -> read -> rules -> cleaners -> write -> verify -> record.

The pipeline knows no format; every step is a hook call.  ``process_item``
runs in a worker and never raises: a bad input becomes a failed
:class:`ItemResult` with a one-line reason and the batch goes on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .context import RunConfig, RunContext
from .manifest import Manifest, recipe_fingerprint
from .model import BadInput, Finding, Item, ItemResult, MedscrubError, UnsupportedInput
from .output import STATE_DIR, OutputSink, clear_temporaries, inside, safe_relative
from .plugins import collect
from .pseudonyms import ReidentificationMap
from .verification import scan_bytes, scan_name

# -- discovery ---------------------------------------------------------------


def discover(context: RunContext) -> Iterator[Item | ItemResult]:
    """Every item under the input root, in a stable order; an unclaimed file
    comes as an ``unsupported`` result instead."""
    root = context.input_root
    hook = context.pm.hook.medscrub_claim
    taken: set[Path] = set()

    def item_for(path: Path) -> Item | ItemResult | None:
        rel = path.relative_to(root).as_posix() if path != root else path.name
        try:
            claim = hook(path=path, context=context)
        except OSError as e:
            return ItemResult(rel, None, "failed", reason=f"cannot read: {e.strerror or e}")
        except Exception as e:  # one bad file must not stop discovery
            return ItemResult(rel, None, "failed", reason=f"{type(e).__name__} while identifying the file: {e}")
        if claim is None:
            if path.is_dir():
                return None
            return ItemResult(rel, None, "unsupported", reason="no installed plugin reads this file")
        paths = tuple(Path(p).absolute() for p in claim.paths) or (path,)
        taken.update(paths)
        size = sum(p.stat().st_size for p in paths if p.is_file())
        return Item(rel, claim.format, paths, root, size)

    if root.is_file():
        found = item_for(root)
        if found is not None:
            yield found
        return

    def walk(folder: Path) -> Iterator[Item | ItemResult]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            rel = folder.relative_to(root).as_posix() or "."
            yield ItemResult(rel, None, "failed", reason=f"cannot list folder: {e.strerror or e}")
            return
        for entry in entries:
            path = Path(entry.path).absolute()
            if path in taken:
                continue
            if entry.is_dir(follow_symlinks=False):
                if inside(path, context.output_root):  # not walked, so no file inside it is offered
                    continue
                found = item_for(path)
                if found is None:
                    yield from walk(path)
                else:
                    yield found
            elif entry.is_file():
                found = item_for(path)
                if found is not None:
                    yield found

    yield from walk(root)


def group_items(items: list[Item], context: RunContext) -> list[Item]:
    """Merge the items that plugins give one group key into one work unit."""
    hook = context.pm.hook.medscrub_group_key
    groups: dict[str, list[Item]] = {}
    order: list[Item | str] = []
    for item in items:
        try:
            key = hook(item=item, context=context)
        except Exception:  # a bad input fails alone, in its worker, with its reason
            key = None
        if key is None:
            order.append(item)
            continue
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(item)

    def merge(group: list[Item]) -> Item:
        if len(group) == 1:
            return group[0]
        first = group[0]
        return Item(
            first.id, first.format, tuple(p for i in group for p in i.paths), first.root,
            sum(i.size for i in group), tuple(i.id for i in group),
        )

    return [merge(groups[x]) if isinstance(x, str) else x for x in order]


# -- one item ----------------------------------------------------------------


def output_relative(asset, context: RunContext) -> PurePosixPath:
    if context.recipe.output.naming == "pseudonymous":
        name = context.pm.hook.medscrub_output_name(asset=asset, context=context)
        if name:
            return safe_relative(name)
    return PurePosixPath(asset.item.id)


def check_outputs(identifiers: dict[str, set[str]], sink: OutputSink) -> list:
    """The in-run leak check: remembered values in the written bytes and names."""
    findings = []
    for tmp, final in sink.finals():
        relative = final.relative_to(sink.output_root).as_posix()
        findings += scan_name(relative, identifiers)
        findings += scan_bytes(tmp, identifiers, label=relative, skip=sink.opaque_ranges(tmp))
    return findings


def save_previews(asset, context: RunContext) -> list[dict[str, str]]:
    """Keep the cleaners' pictures for the QA report, in the state folder."""
    if not asset.previews:
        return []
    key = hashlib.sha256(asset.item.id.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    folder = context.output_root / STATE_DIR / "previews" / key
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for n, preview in enumerate(asset.previews):
        entry = {"title": preview.title, "after": f"previews/{key}/{n}-after.png"}
        (folder / f"{n}-after.png").write_bytes(preview.after)
        if context.recipe.run.internal_previews and preview.before:
            entry["before"] = f"previews/{key}/{n}-before.png"
            (folder / f"{n}-before.png").write_bytes(preview.before)
        saved.append(entry)
    return saved


def process_item(item: Item, context: RunContext) -> ItemResult:
    """Read, clean, write and verify one item.  Never raises."""
    start = time.perf_counter()
    result = ItemResult(item.id, item.format, "failed", members=list(item.members))
    sink = None
    try:
        hook = context.pm.hook
        asset = hook.medscrub_read(item=item, context=context)
        if asset is None:
            raise UnsupportedInput(f"no installed plugin reads the format {item.format!r}")
        if not hook.medscrub_apply_rules(asset=asset, rules=context.rules, context=context):
            raise UnsupportedInput(f"no installed plugin applies metadata rules to {item.format!r}")
        for cleaner in context.cleaners:
            if cleaner.applies(asset):
                for change in cleaner.clean(asset, context) or ():
                    asset.changes.append(change)
        hook.medscrub_inspect(asset=asset, context=context)
        result.actions = asset.action_counts()
        result.flags = dict(asset.flags)
        if asset.quarantine:
            result.status, result.reason = "quarantined", asset.quarantine
            return result
        sink = OutputSink(context.output_root, output_relative(asset, context), forbidden=item.paths)
        if not hook.medscrub_write(asset=asset, sink=sink, context=context):
            raise UnsupportedInput(f"no installed plugin writes {item.format!r}")
        if context.recipe.run.verify:
            findings = check_outputs(asset.identifiers, sink)
            if context.recipe.run.deep_verify and not findings:
                for tmp, final in sink.finals():
                    relative = final.relative_to(context.output_root).as_posix()
                    original = sink.source(tmp) or item.path
                    for found in hook.medscrub_verify(output=tmp, original=original, format=item.format, context=context):
                        findings += [Finding(relative, f.place, f.kind, f.hint) for f in found or ()]
            if findings:
                result.findings = [f.line() for f in findings]
                raise MedscrubError(f"leak check: {findings[0].kind} in {findings[0].place} of {findings[0].file}"
                                    f"{f' and {len(findings) - 1} more' if len(findings) > 1 else ''}; output withheld")
        result.output_bytes = sink.sizes()
        result.output = sink.commit()
        result.previews = save_previews(asset, context)
        result.status = "done"
        result.mappings = context.pseudonyms.take_issued()
    except MedscrubError as e:
        result.status = "unsupported" if isinstance(e, UnsupportedInput) else "failed"
        result.reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    except (OSError, MemoryError) as e:
        result.reason = f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"
    except Exception as e:  # a plugin bug must not end the batch
        where = traceback.extract_tb(e.__traceback__)[-1]
        result.reason = f"internal error {type(e).__name__}: {e} ({Path(where.filename).name}:{where.lineno})"
    finally:
        if sink is not None and result.status != "done":
            sink.discard()
        if result.status != "done":
            context.pseudonyms.take_issued()  # nothing of a failed item reaches the map
        result.seconds = round(time.perf_counter() - start, 4)
    return result


# -- the batch ---------------------------------------------------------------


@dataclass
class RunSummary:
    results: list[ItemResult] = field(default_factory=list)
    skipped: int = 0  # done by an earlier run
    report: Path | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def exit_code(self) -> int:
        return 0 if all(r.status == "done" for r in self.results) else 1


def _is_done(record: dict, output_root: Path) -> bool:
    """Done earlier, and every output still there at its recorded size (a
    power loss can leave an empty or short file under the final name)."""
    if record.get("status") != "done":
        return False
    outputs = record.get("output", ())
    sizes = record.get("output_bytes") or [None] * len(outputs)
    for name, size in zip(outputs, sizes, strict=False):
        try:
            if size is not None and (output_root / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def run_batch(
    config: RunConfig,
    workers: int = 1,
    executor: str = "local",
    executor_options: dict | None = None,
    progress: Callable[[ItemResult | None, int | None], None] | None = None,
) -> RunSummary:
    """Run a whole batch; resume what an earlier run into the same output left."""
    input_root, output_root = config.input_root.absolute(), config.output_root.absolute()
    config = dataclasses.replace(config, input_root=input_root, output_root=output_root)
    if not input_root.exists():
        raise MedscrubError(f"input {input_root} does not exist")
    if inside(output_root, input_root) and input_root.is_dir() or inside(input_root, output_root):
        raise MedscrubError("the output folder must be outside the input, and the input outside the output")
    context = RunContext(config)
    problems = context.check_rules()
    if problems:
        raise MedscrubError("\n".join(problems))
    recipe = context.recipe
    if recipe.output.reidentification_map and inside(recipe.output.reidentification_map, output_root):
        raise MedscrubError("the re-identification map must be outside the output folder")
    executors = dict(collect(context.pm, "medscrub_register_executors"))
    if executor not in executors:
        raise MedscrubError(f"no executor {executor!r} (installed: {', '.join(sorted(executors))})")

    output_root.mkdir(parents=True, exist_ok=True)
    clear_temporaries(output_root)
    manifest = Manifest(output_root)
    recipe_text = config.recipe_path.read_text() if config.recipe_path else ""
    previous = manifest.previous()
    manifest.open(recipe_fingerprint(recipe_text + repr(sorted(config.cleaners)), config.secret.fingerprint()))
    reid = ReidentificationMap(recipe.output.reidentification_map) if recipe.output.reidentification_map else None

    summary = RunSummary()

    def record(result: ItemResult) -> None:
        manifest.append(result)
        if reid is not None:
            reid.add(result.mappings)
        summary.results.append(result)
        if progress:
            progress(result, None)

    items: list[Item] = []
    try:
        for found in discover(context):
            if isinstance(found, ItemResult):
                record(found)
            else:
                items.append(found)
        items = group_items(items, context)
        todo = []
        for item in items:
            if item.id in previous and _is_done(previous[item.id], output_root):
                summary.skipped += 1
                continue
            if item.id in previous:  # its earlier outputs are stale: they are this item's to replace
                for name in previous[item.id].get("output", ()):
                    stale = output_root / name
                    if inside(stale, output_root) and not inside(stale, output_root / STATE_DIR):
                        stale.unlink(missing_ok=True)
            todo.append(item)
        items = todo
        if progress:
            progress(None, len(items))
        runner = executors[executor](workers, executor_options or {})
        for result in runner.run(items, config):
            record(result)
    finally:
        manifest.close()
        if reid is not None:
            reid.close()
        clear_temporaries(output_root)
    if recipe.run.report:
        from .report import build_report

        summary.report = build_report(output_root)
    return summary


# -- worker side -------------------------------------------------------------

_WORKER: RunContext | None = None


def init_worker(config: RunConfig) -> None:
    global _WORKER
    _WORKER = RunContext(config)


def work(item: Item) -> ItemResult:
    assert _WORKER is not None, "init_worker was not called"
    return process_item(item, _WORKER)


__all__ = ["BadInput", "RunSummary", "discover", "init_worker", "process_item", "run_batch", "work", "STATE_DIR"]
