"""What a training run *is*: one record, written once into the run, and one function that compares two.

``mnetcost train`` writes a run's identity into its ``config.json`` (key ``identity``) before the
first epoch; ``train --resume``, ``grid``, ``report``, ``plot --runs``, ``export`` and ``evaluate``
read it back with :func:`from_config` and compare through :func:`compare`, each asking one of the
:data:`QUESTIONS`. Standard library only: every side of the package (calculator-free analysis, nn,
deploy, cli) may import it.

The identity (:class:`RunIdentity`)
-----------------------------------
* ``recipe``: every option that changes what is trained or how it is evaluated (:data:`RECIPE`):
  ``variant`` (name, or a spec file's path), ``spec`` (a digest of the spec's parsed TOML, so a spec
  file may move or be reformatted), ``alpha``, ``delta``, ``classes``, ``resolution`` ([h, w]),
  ``epochs`` (planned; the one field a resume may change, to extend the run), ``batch_size``,
  ``lr``, ``augment``, ``dropout``, ``fmp_mode``, ``test_draws``, ``bn_stats``, ``bn_batches`` (0
  with ``bn_stats`` running: unused), ``world_size`` (processes: each draws its own random
  streams and normalises its own share of a batch). Not in it (:data:`EXECUTION`): ``device``,
  ``amp``, ``compile``, ``channels_last``, ``depthwise`` and ``threads`` change the speed or the last
  bits of floating-point sums, not the recipe (``config.json`` records them under ``determinism``).
* ``data``: ``source`` (``cifar10``, ``cifar100`` or the absolute PATH), ``name``, ``fingerprint``
  (:func:`data_fingerprint`: what the data *is*, wherever it lies), ``class_names`` (in label
  order), ``train_images``, ``test_images``, and the normalisation statistics ``mean`` and ``std``
  (per channel, 0-1 scale) the model was trained with.
* ``seed`` and ``run_id`` (a random hex id drawn at the start; checkpoints and exported files name it).

Runs written before identities (config.json ``format`` 1 or 2) get theirs derived from what their
config holds (:func:`from_config`): the recipe fields are there (a field added later takes the value
those runs used, :data:`LEGACY`), the data source and class names are there; the fingerprint and the
normalisation statistics are not. What one side lacks is not compared: :class:`Comparison` lists it
under ``unchecked`` (the data is then compared by its source path), so legacy runs resume, count as
done, pool with new runs of the same recipe and data source, and export, while the gap is said.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from mnetcost.errors import MnetcostError

IDENTITY_FORMAT = 1
# The files of a run folder (the contract of mnetcost.nn.training); ".lock" is the folder's lock.
RUN_FILES = ("config.json", "metrics.jsonl", "last.pt", "best.pt", "summary.json")
OFFICIAL = ("cifar10", "cifar100")
RECIPE = ("variant", "spec", "alpha", "delta", "classes", "resolution", "epochs", "batch_size", "lr", "augment",
          "dropout", "fmp_mode", "test_draws", "bn_stats", "bn_batches", "world_size")
# What runs written before a recipe field existed did.
LEGACY = {"fmp_mode": "tf", "test_draws": 1, "bn_stats": "running", "bn_batches": 0, "world_size": 1}
EXECUTION = ("device", "amp", "compile", "channels_last", "depthwise", "threads")
DATA = ("source", "name", "fingerprint", "class_names", "train_images", "test_images", "mean", "std")
CONFIGURATION = ("variant", "spec", "alpha", "delta")
# question -> the fields it does not compare
QUESTIONS = {
    # train --resume, grid, a checkpoint, an exported file: is this that run? (its plan may grow)
    "same-run": ("epochs",),
    # report, plot: may these runs be pooled as seeds of one experiment?
    "same-recipe": ("seed", "run_id"),
    # the paper's claims: may these configurations be compared with each other?
    "same-cohort": ("seed", "run_id", *CONFIGURATION),
}


@dataclass(frozen=True)
class RunIdentity:
    """What a run is. ``None`` in ``recipe`` or ``data``: not recorded (or, for an expectation,
    not asked). ``origin``: where it was read from ("recorded", "format 1", "summary.json", ...)."""

    recipe: dict
    data: dict
    seed: int | None = None
    run_id: str | None = None
    origin: str = "recorded"
    note: str | None = None  # e.g. fields completed on a resume of a run written before identities

    def to_json(self) -> dict:
        result = {"format": IDENTITY_FORMAT, "run_id": self.run_id, "seed": self.seed,
                  "recipe": {key: self.recipe.get(key) for key in RECIPE},
                  "data": {key: self.data.get(key) for key in DATA}}
        if self.note:
            result["note"] = self.note
        return result

    @property
    def legacy(self) -> bool:
        """Read from a run written before identities were recorded."""
        return self.origin != "recorded"

    def with_data(self, **changes) -> "RunIdentity":
        from dataclasses import replace

        return replace(self, data={**self.data, **changes})


# --- building identities --------------------------------------------------------------------------
def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _resolution(value) -> list | None:
    if _int(value) is not None:
        return [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_int(v) is not None for v in value):
        return [int(v) for v in value]
    return None


def spec_digest(toml_text: str | None) -> str | None:
    """``sha256:<hex>`` of a spec's parsed TOML (comments, spacing and key order do not count)."""
    if not isinstance(toml_text, str):
        return None
    import tomllib

    try:
        canonical = json.dumps(tomllib.loads(toml_text), sort_keys=True, default=str)
    except (ValueError, RecursionError):  # not TOML, nested too deeply, an integer too long to read
        canonical = toml_text
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def recipe_of(options: dict, spec_toml: str | None = None, legacy: bool = True) -> dict:
    """The recipe from a dict of train options (``TrainConfig`` fields, a config.json's
    ``config``, a summary.json, an ONNX file's metadata), normalised: ``resolution`` [h, w],
    numbers as floats where the option is one, ``bn_batches`` 0 when ``bn_stats`` is running.
    ``legacy``: a missing field takes the value of runs written before it existed."""
    recipe = {}
    for key in RECIPE:
        value = options.get(key)
        if value is None and legacy and key in LEGACY:
            value = LEGACY[key]
        recipe[key] = value
    recipe["variant"] = recipe["variant"] if isinstance(recipe["variant"], str) and recipe["variant"] else None
    recipe["spec"] = spec_digest(spec_toml if spec_toml is not None else options.get("spec_toml")) \
        or (options.get("spec") if str(options.get("spec", "")).startswith("sha256:") else None)
    for key in ("alpha", "lr", "dropout"):
        recipe[key] = _float(recipe[key])
    for key in ("delta", "classes", "epochs", "batch_size", "test_draws", "bn_batches", "world_size"):
        recipe[key] = _int(recipe[key])
    recipe["resolution"] = _resolution(recipe["resolution"])
    recipe["augment"] = recipe["augment"] if isinstance(recipe["augment"], bool) else None
    for key in ("fmp_mode", "bn_stats"):
        recipe[key] = recipe[key] if isinstance(recipe[key], str) else None
    if recipe["bn_stats"] == "running":
        recipe["bn_batches"] = 0
    return recipe


def _floats(values) -> list | None:
    """A list of finite numbers (per-channel statistics), else None."""
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return values if values and all(math.isfinite(v) for v in values) else None


def _strings(values) -> list | None:
    if isinstance(values, (list, tuple)) and all(isinstance(v, str) for v in values):
        return list(values)
    return None


def data_of(source: str | None, *, name: str | None = None, fingerprint: str | None = None, class_names=None,
            train_images: int | None = None, test_images: int | None = None, mean=None, std=None) -> dict:
    """The ``data`` part of an identity; a value of the wrong kind is taken as not recorded."""
    source = str(source) if isinstance(source, (str, Path)) and str(source) else None
    return {"source": source, "name": name if isinstance(name, str) and name else name_of(source),
            "fingerprint": fingerprint if isinstance(fingerprint, str) and fingerprint else None,
            "class_names": _strings(class_names), "train_images": _int(train_images),
            "test_images": _int(test_images), "mean": _floats(mean) if mean is not None else None,
            "std": _floats(std) if std is not None else None}


def new_identity(options: dict, data: dict, run_id: str | None, spec_toml: str | None = None,
                 note: str | None = None) -> RunIdentity:
    """The identity of a run being started (``options``: the TrainConfig fields)."""
    return RunIdentity(recipe=recipe_of(options, spec_toml, legacy=False), data=dict(data),
                       seed=_int(options.get("seed")), run_id=run_id, note=note)


def from_json(block: dict) -> RunIdentity:
    """An identity as :meth:`RunIdentity.to_json` wrote it; ValueError when it is not one."""
    if not isinstance(block, dict) or block.get("format") != IDENTITY_FORMAT \
            or not isinstance(block.get("recipe"), dict) or not isinstance(block.get("data"), dict):
        raise ValueError("not a run identity of format 1")
    spec = block["recipe"].get("spec")
    recipe = {**recipe_of(block["recipe"], legacy=False), "spec": spec if isinstance(spec, str) and spec else None}
    data = data_of(block["data"].get("source"), **{key: block["data"].get(key) for key in DATA if key != "source"})
    run_id, note = block.get("run_id"), block.get("note")
    return RunIdentity(recipe=recipe, data=data, seed=_int(block.get("seed")),
                       run_id=run_id if isinstance(run_id, str) and run_id else None,
                       note=note if isinstance(note, str) else None)


def from_config(stored: dict) -> RunIdentity:
    """The identity of the run whose ``config.json`` is ``stored``: its recorded identity, or,
    for a run written before identities, derived from its options, ``dataset_info`` and
    ``class_names`` (no fingerprint, no normalisation statistics)."""
    if isinstance(stored.get("identity"), dict):
        try:
            return from_json(stored["identity"])
        except ValueError:
            pass
    config = stored.get("config") if isinstance(stored.get("config"), dict) else {}
    info = stored.get("dataset_info") if isinstance(stored.get("dataset_info"), dict) else {}
    source = config.get("dataset") or info.get("source")
    names = stored.get("class_names")
    data = data_of(source, name=info.get("name") if isinstance(info.get("name"), str) else None,
                   class_names=names if isinstance(names, list) else None, train_images=info.get("train"),
                   test_images=info.get("test"))
    return RunIdentity(recipe=recipe_of(config), data=data, seed=_int(config.get("seed")),
                       run_id=stored.get("run_id") if isinstance(stored.get("run_id"), str) else None,
                       origin=f"format {stored.get('format', 1)}")


def from_summary(summary: dict) -> RunIdentity:
    """What a ``summary.json`` alone says (a run folder without its config.json)."""
    options = {**summary, "epochs": summary.get("epochs_planned")}
    data = data_of(summary.get("dataset_source"), name=summary.get("dataset") if isinstance(summary.get("dataset"), str)
                   else None, fingerprint=summary.get("dataset_fingerprint"), train_images=summary.get("train_images"),
                   test_images=summary.get("test_images"))
    return RunIdentity(recipe=recipe_of(options), data=data, seed=_int(summary.get("seed")),
                       run_id=summary.get("run_id") if isinstance(summary.get("run_id"), str) else None,
                       origin="summary.json")


def from_options(options: dict, run_id: str | None = None, origin: str = "options") -> RunIdentity:
    """What a dict of options says (a checkpoint's stored options, an exported file's metadata):
    fields it lacks stay unknown (no legacy values are assumed)."""
    source = options.get("dataset_source", options.get("dataset"))
    data = data_of(source if isinstance(source, str) else None,
                   name=options.get("dataset_name") if isinstance(options.get("dataset_name"), str) else None,
                   fingerprint=options.get("dataset_fingerprint"), mean=options.get("mean"), std=options.get("std"))
    return RunIdentity(recipe=recipe_of(options, legacy=False), data=data, seed=_int(options.get("seed")),
                       run_id=run_id, origin=origin)


def read_run(folder: Path | str) -> RunIdentity | None:
    """The identity of the run in ``folder`` (its config.json, else its summary.json), or None."""
    folder = Path(folder)
    for name, read in (("config.json", from_config), ("summary.json", from_summary)):
        try:
            stored = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(stored, dict) and (name == "summary.json" or isinstance(stored.get("config"), dict)):
            return read(stored)
    return None


# --- the data: its name and fingerprint ------------------------------------------------------------
def archive_stem(path: Path | str) -> str:
    """``cifar10-jpeg`` for ``.../cifar10-jpeg.tar.xz``: a data file's name without its archive suffixes."""
    name = Path(path).name
    for suffix in (".tar.gz", ".tar.xz", ".tar.bz2", ".tgz", ".txz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def name_of(source: str | None) -> str | None:
    if source is None:
        return None
    return source if source in OFFICIAL else archive_stem(source)


_FINGERPRINTS: dict = {}  # (path, what stat says) -> fingerprint, for this process


def data_fingerprint(source: str | None) -> str | None:
    """What the data at ``source`` is, independent of where it lies; None when there is nothing
    to read.

    * ``cifar10``/``cifar100``: ``official:<name>`` (every download is checked against the
      official MD5 sum, so the name fixes the content);
    * a file (an archive): ``sha256:<hex>`` of its bytes (the 18.5 MB cifar10-jpeg.tar.xz: 0.04 s
      from the page cache, 0.3 s from disk, on a loaded 2-core machine);
    * a folder (an extracted official folder, an image tree): ``tree-sha256:<hex>`` over every
      file's relative path and size, and the bytes of the files of at most 200 MB together that
      hold the data in few files (the official batch files); hidden files do not count. Editing
      an image without changing its size is not seen; moving or copying the folder changes
      nothing. (That archive extracted, 60,000 JPEG files: about 1 s.)

    Computed once per process and file state."""
    if source is None:
        return None
    if source in OFFICIAL:
        return f"official:{source}"
    path = Path(source)
    try:
        if path.is_file():
            stat = path.stat()
            key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
            if key not in _FINGERPRINTS:
                _FINGERPRINTS[key] = "sha256:" + _file_sha256(path)
            return _FINGERPRINTS[key]
        if path.is_dir():
            entries = []
            root = str(path)
            for folder, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                prefix = os.path.relpath(folder, root).replace(os.sep, "/") + "/" if folder != root else ""
                with os.scandir(folder) as listing:
                    stats = {entry.name: entry.stat() for entry in listing
                             if entry.is_file() and not entry.name.startswith(".")}
                for name in sorted(stats):
                    entries.append((prefix + name, stats[name].st_size, stats[name].st_mtime_ns))
            key = (str(path.resolve()), tuple(entries))
            if key not in _FINGERPRINTS:
                digest = hashlib.sha256()
                few = len(entries) <= 16 and sum(size for _, size, _ in entries) <= 200 * 2 ** 20
                for relative, size, _ in entries:
                    digest.update(f"{relative}\0{size}\0".encode())
                    if few:
                        digest.update(_file_sha256(path / relative).encode())
                _FINGERPRINTS[key] = "tree-sha256:" + digest.hexdigest()
            return _FINGERPRINTS[key]
    except OSError:
        return None
    return None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def short(fingerprint: str | None) -> str:
    """``sha256:1b0e82da`` for display."""
    if not fingerprint:
        return "no fingerprint"
    kind, _, value = fingerprint.partition(":")
    return f"{kind}:{value[:8]}" if value and kind != "official" else fingerprint


# --- the one comparison ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """``differences``: what differs, one phrase each ("lr 0.001 (run) vs 0.01 (now)");
    ``unchecked``: what one side does not record, so it was not compared."""

    differences: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        return not self.differences

    def text(self) -> str:
        return "; ".join(self.differences)


def _is_path(variant: str | None) -> bool:
    return variant is not None and ("/" in variant or variant.endswith(".toml"))


def _show(value) -> str:
    if isinstance(value, list) and len(value) > 4:
        return "[" + ", ".join(map(repr, value[:3])) + f", ... ({len(value)})]"
    return repr(value)


def compare(first: RunIdentity, second: RunIdentity, question: str = "same-run",
            names: tuple[str, str] = ("run", "now")) -> Comparison:
    """Compare two identities for ``question`` (:data:`QUESTIONS`); ``names`` label the sides in
    the phrases. For ``same-run``, two run ids decide alone (equal: the same run, whatever its
    location or a later extension of its plan). A field one side lacks is not compared but
    listed in ``unchecked``; data without a fingerprint on either side is compared by its source
    (``cifar10`` or the path), else by its name."""
    if question not in QUESTIONS:
        raise ValueError(f"unknown question {question!r}")
    ignore = set(QUESTIONS[question])
    a, b = names
    if question == "same-run" and first.run_id and second.run_id:
        if first.run_id != second.run_id:
            return Comparison((f"run id {first.run_id} ({a}) vs {second.run_id} ({b})",))
        return Comparison()
    differences: list[str] = []
    unchecked: list[str] = []

    def lacking(what: str, x, y) -> None:
        if x is None and y is None:
            return
        unchecked.append(f"{what} (not recorded by the {a if x is None else b})")

    # the network: by the spec's content where both record it, else by the variant's name
    if "spec" not in ignore:
        va, vb = first.recipe.get("variant"), second.recipe.get("variant")
        sa, sb = first.recipe.get("spec"), second.recipe.get("spec")
        if sa and sb:
            if sa != sb and va == vb:  # one file, edited since: name it once, with both contents
                differences.append(f"the spec's content differs: {vb} ({b}, {short(sb)}) is not the copy the {a} "
                                   f"stored ({short(sa)})")
            elif sa != sb:
                differences.append(f"the spec's content differs: {va} ({a}, {short(sa)}) vs {vb} ({b}, {short(sb)})")
        else:
            lacking("the spec's content", sa, sb)
            if va is not None and vb is not None and (not _is_path(va) or not _is_path(vb)) and va != vb:
                differences.append(f"variant {va!r} ({a}) vs {vb!r} ({b})")
    for key in RECIPE:
        if key in ("variant", "spec") or key in ignore:
            continue
        x, y = first.recipe.get(key), second.recipe.get(key)
        if x is None or y is None:
            lacking(key, x, y)
        elif (round(x, 9) != round(y, 9)) if key == "alpha" else x != y:
            differences.append(f"{key} {_show(x)} ({a}) vs {_show(y)} ({b})")
    differences += _data_differences(first.data, second.data, a, b, lacking)
    if "seed" not in ignore:
        if first.seed is None or second.seed is None:
            lacking("seed", first.seed, second.seed)
        elif first.seed != second.seed:
            differences.append(f"seed {first.seed} ({a}) vs {second.seed} ({b})")
    return Comparison(tuple(differences), tuple(unchecked))


def same_data(first: RunIdentity, second: RunIdentity) -> bool:
    """Whether two runs ran on the same data, as :func:`compare` judges it."""
    return not _data_differences(first.data, second.data, "", "", lambda *args: None)


def _data_differences(x: dict, y: dict, a: str, b: str, lacking) -> list[str]:
    differences = []
    fa, fb = x.get("fingerprint"), y.get("fingerprint")
    if fa and fb:
        if fa != fb:
            differences.append(f"the data: {x.get('source') or x.get('name')} [{short(fa)}] ({a}) vs "
                               f"{y.get('source') or y.get('name')} [{short(fb)}] ({b})")
    else:
        if fa or fb:
            lacking("the data's fingerprint", fa, fb)
        sa, sb = x.get("source"), y.get("source")
        if sa and sb:
            if sa != sb:
                differences.append(f"the data source {sa} ({a}) vs {sb} ({b})")
        else:
            na, nb = x.get("name"), y.get("name")
            if na and nb and na != nb:
                differences.append(f"the data {na} ({a}) vs {nb} ({b})")
    ca, cb = x.get("class_names"), y.get("class_names")
    if ca is not None and cb is not None and list(ca) != list(cb):
        differences.append(f"class names {_show(list(ca))} ({a}) vs {_show(list(cb))} ({b})")
    for key, what in (("train_images", "training images"), ("test_images", "test images")):
        if x.get(key) is not None and y.get(key) is not None and x[key] != y[key]:
            differences.append(f"{what} {x[key]} ({a}) vs {y[key]} ({b})")
    return differences


# --- pooling seeds ---------------------------------------------------------------------------------
@dataclass
class Pool:
    """Runs of one recipe on one data: ``members`` count, one per seed; ``left_out``: (item,
    reason) for a copy of a member (same run id) or a second run of a member's seed."""

    members: list = field(default_factory=list)
    left_out: list = field(default_factory=list)
    unchecked: list = field(default_factory=list)


def pool(items: list, identity_of, name_of_item=lambda item: str(item)) -> list[Pool]:
    """Pool ``items`` (in the order given, which decides ties: put the run to keep first) by
    :func:`compare` ``same-recipe``: an item joins the first pool whose every member has its
    recipe and data, else starts one. Within a pool one seed counts once: an item with a
    member's run id (a copied folder) or a member's seed is left out, with the reason."""
    pools: list[Pool] = []
    for item in items:
        mine = identity_of(item)
        for candidate in pools:
            checks = [compare(identity_of(member), mine, "same-recipe", ("one", "other"))
                      for member in candidate.members]
            if all(check.same for check in checks):
                candidate.unchecked.extend(u for check in checks for u in check.unchecked
                                           if u not in candidate.unchecked)
                twin = next((m for m in candidate.members if mine.run_id and identity_of(m).run_id == mine.run_id),
                            None)
                if twin is not None:
                    candidate.left_out.append((item, f"a copy of {name_of_item(twin)} (run id {mine.run_id})"))
                    break
                twin = next((m for m in candidate.members
                             if mine.seed is not None and identity_of(m).seed == mine.seed), None)
                if twin is not None:
                    candidate.left_out.append((item, f"seed {mine.seed} again (counted once, as {name_of_item(twin)})"))
                    break
                candidate.members.append(item)
                break
        else:
            pools.append(Pool(members=[item]))
    return pools


# --- what data and files belong to a run ------------------------------------------------------------
def class_mapping(run_names, data_names, what: str) -> list[int] | None:
    """How ``data_names`` (a dataset's classes in its label order) map onto ``run_names`` (the
    run's): None when they are the same list; a list ``new_label[data_label]`` when they are the
    same names in another order; MnetcostError (one line, naming ``what``) when the names differ."""
    run_names, data_names = list(run_names), list(data_names)
    if run_names == data_names:
        return None
    if sorted(run_names) == sorted(data_names) and len(set(run_names)) == len(run_names):
        position = {name: index for index, name in enumerate(run_names)}
        return [position[name] for name in data_names]
    missing = [name for name in run_names if name not in data_names]
    extra = [name for name in data_names if name not in run_names]
    detail = []
    if extra:
        detail.append(f"it has {_show(extra)} that the run does not")
    if missing:
        detail.append(f"it lacks {_show(missing)}")
    raise MnetcostError(f"{what}: its classes are not the run's ({'; '.join(detail) or 'repeated names'}); "
                        "a model can only be scored on the classes it was trained on")


def run_file_of(path: Path | str) -> tuple[Path, str] | None:
    """(run folder, file name) when ``path`` is one of a run folder's own files (config.json,
    metrics.jsonl, last.pt, best.pt, summary.json, the lock), else None. A run folder: one whose
    config.json is a run's (a dict with a ``config`` dict)."""
    from mnetcost.files import LOCK_NAME

    target = Path(os.path.realpath(path))
    if target.name not in RUN_FILES + (LOCK_NAME,):
        return None
    try:
        stored = json.loads((target.parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(stored, dict) and isinstance(stored.get("config"), dict):
        return target.parent, target.name
    return None


def check_not_run_file(path: Path | str, option: str = "--out") -> None:
    """Refuse an output that would overwrite a run's own file (one line, nothing touched)."""
    found = run_file_of(path)
    if found is not None:
        folder, name = found
        raise MnetcostError(f"{option} {path}: is {name} of the run in {folder}, which it would overwrite; "
                            "write to another file")
