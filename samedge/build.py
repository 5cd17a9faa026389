"""`samedge build`: select experts for a target, merge them, convert, quantize, bundle.

Stages (each reported with progress):

1. **target**  - the profile: labels with descriptions, unlabeled texts, optional dev set;
2. **select**  - domain similarity of the target's centroid to each expert's,
                 then (optionally) performance on sampled target sentences;
3. **merge**   - exact deltas combined by the chosen method into the GGUF f16 base (numpy);
4. **quantize** - llama.cpp's quantizer (Q8_0 default);
5. **bundle**  - model.gguf, bundle.json, Modelfile, published atomically.

The whole bundle is assembled in a temporary directory beside the output and
renamed into place at the end, so an interrupted build leaves nothing at the
output path, and a rerun starts clean.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from .config import BuildConfig
from .errors import UserError
from .files import atomic_dir, atomic_write_json, atomic_write_text, hash_files


class BuildOptions(BuildConfig):
    """A :class:`BuildConfig` as the Python API takes it (a Target or Label objects, paths), plus how
    to run (threads, force), which does not change the bundle."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    target: Any = None                     # also a samedge.targets.Target built in Python
    texts: list | None = None              # str or Path
    labels: list | None = None             # samedge.data.labels.Label objects
    dev: Any = None
    library: Any = None
    threads: int | None = None
    force: bool = False

    def record(self) -> dict:
        """The config bundle.json records (JSON). A Target object is recorded by its name."""
        fields = self.model_dump(include=set(BuildConfig.model_fields))
        fields["target"] = getattr(self.target, "name", self.target)
        fields["labels"] = None if self.labels is None else [lab.to_dict() for lab in self.labels]
        fields["texts"] = None if self.texts is None else [str(path) for path in self.texts]
        for key in ("dev", "library"):  # paths recorded as given (relative ones: to the build's directory)
            fields[key] = None if fields[key] is None else str(fields[key])
        return BuildConfig(**fields).model_dump(mode="json")

    @classmethod
    def from_config(cls, config: BuildConfig, **run) -> "BuildOptions":
        """Options that build what ``config`` describes (``run``: threads, force, or fields to override)."""
        from .data.labels import Label

        fields = config.model_dump()
        if config.labels is not None:
            fields["labels"] = [Label.from_dict(d) for d in config.labels]
        return cls(**{**fields, **run})


def resolve_target(opts: BuildOptions):
    """The target profile, with --labels/--texts/--dev overriding or replacing it."""
    from .data.decode import read_text
    from .data.labels import check_labels
    from .targets import Target, is_new_name, load_target, shipped_names

    if opts.target is None and not (opts.labels and opts.texts):
        raise UserError("give --target NAME (see `samedge targets list`), or both --labels and --texts")
    if isinstance(opts.target, Target):  # the Python API may pass a profile it built itself
        target = copy.copy(opts.target)
    elif opts.target is None:
        target = Target("custom", "user-defined target", [], [])
    elif is_new_name(opts.target):  # a new target, named by the user and defined by --labels/--texts
        if not (opts.labels and opts.texts):
            raise UserError(f"unknown target {opts.target!r}: not a shipped profile ({', '.join(shipped_names())}) "
                            f"nor a TOML file; to build a new target of that name, give both --labels and --texts")
        target = Target(opts.target, "user-defined target", [], [])
    else:
        target = load_target(opts.target)
    if opts.labels:
        target.labels = check_labels(opts.labels)
    if opts.texts:
        texts = []
        for path in opts.texts:
            texts += [line.strip() for line in read_text(path).splitlines() if line.strip()]
        target.texts = texts
    if opts.dev:
        target.dev = Path(opts.dev)
    if not target.labels:
        raise UserError(f"target {target.name} has no labels")
    if not target.texts:
        raise UserError(f"target {target.name} has no sample texts for similarity selection")
    return target


def _stage(name: str, log):
    log(f"[{name}]")
    return time.time()


def learn_reading(model: Path, target, opts: BuildOptions, log) -> dict:
    """The merged model's answer map, learned on the labeled sample selection scored (select/answer_map.py)."""
    from .extract.engines.llama import LlamaEngine
    from .select.answer_map import fit_answer_map
    from .select.performance import sample_instances

    docs, _ = sample_instances(target, opts.sample, opts.seed)
    engine = LlamaEngine(model, threads=opts.threads)
    try:
        fitted = fit_answer_map(engine, target.labels, docs)
    finally:
        engine.close()
    for row in fitted["changes"]:
        now = "nothing (dropped)" if row["now"] is None else repr(row["now"])
        was = "" if row["was"] is None else f" instead of {row['was']!r}"
        log(f"answers {row['answer']!r} ({row['answers']} in {fitted['documents']} labeled sentences): "
            f"read as {now}{was}")
    log(f"answer map: F1 on those sentences {fitted['f1_before']} -> {fitted['f1_after']}")
    return fitted


def build(opts: BuildOptions, out: str | Path, log=None, runner=None) -> dict:
    """Run every stage and publish the bundle at ``out``. Returns bundle.json's content plus timings.

    ``runner``: a ``samedge.select.runner.ExpertRunner`` shared by several builds in one process,
    so that candidates already scored on the same sample are not decoded again (same results)."""
    from . import bundle as bundle_mod
    from .base import provision
    from .library.library import Library
    from .merge import merge_into_gguf
    from .select.pipeline import select_experts
    from .select.runner import ExpertRunner
    from .targets import portable_path

    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(out)
    if out.exists() and not opts.force:
        raise UserError(f"{out} already exists (use --force to replace it)")
    timings = {}

    t = _stage("target", log)
    target = resolve_target(opts)
    library = Library.open(opts.library)
    experts = [e for e in library.experts(verify=True, exclude=opts.exclude)
               if not opts.only or e.name in opts.only]
    if not experts:
        raise UserError(f"the expert library ({', '.join(map(str, library.dirs))}) has no experts to select from")
    base = provision()
    if not target.dev:
        log("note: no labeled examples; --dev FILE with ~30 labeled sentences lets the build score experts by F1 "
            "and learn how to read their answers (BENCHMARKS.md 'Answer map')")
    timings["target"] = time.time() - t

    t = _stage("select", log)
    select = dict(base=base, weighting=opts.weighting, temperature=opts.temperature, sample=opts.sample,
                  seed=opts.seed, threads=opts.threads, align_threshold=opts.align_threshold,
                  agreement=opts.agreement,
                  runner=runner or ExpertRunner())
    # One merged model (the edge default), or two for --ensemble: one per selection criterion.
    strategies = [opts.selection] if not opts.ensemble else ["similarity", "performance"]
    plans = []
    for strategy in strategies:
        report = select_experts(target, experts, k=opts.k, strategy=strategy, **select)
        log(report.table())
        chosen = [e for e in experts if e.name in report.selected_names()]
        plans.append((report, chosen, [report.weight_of(e.name) for e in chosen]))
    alignment = []
    if opts.align_threshold is not None:  # the prompt names the merged experts were trained on
        from .embed import Embedder
        from .select.label_alignment import align_labels
        vocabulary = [lab for _, chosen, _ in plans for e in chosen for lab in e.labels]
        target.labels, alignment = align_labels(target.labels, vocabulary, Embedder.load(threads=opts.threads),
                                                opts.align_threshold)
        for row in alignment:
            log(f"label {row['tag']!r}: shown as {row['to']!r} (similarity {row['similarity']:.2f} to {row['from']!r})")
    timings["select"] = time.time() - t

    model_files = [bundle_mod.MODEL, bundle_mod.MODEL_B][:len(plans)]
    with atomic_dir(out, overwrite=opts.force) as tmp:
        merges = []
        for (report, chosen, weights), model_name in zip(plans, model_files):
            t = _stage(f"merge ({opts.method}, {len(chosen)} experts)", log)
            merged = tmp / f"{model_name}.f16.part"
            params = merge_into_gguf(base.gguf, base.base_id, chosen, weights, opts.method, merged,
                                     params=opts.method_params)
            timings["merge"] = timings.get("merge", 0) + time.time() - t

            t = _stage(f"quantize ({opts.quant})", log)
            if opts.quant == "f16":
                merged.rename(tmp / model_name)
            else:
                from .converters.quantize import quantize
                quantize(merged, tmp / model_name, opts.quant, threads=opts.threads)
                merged.unlink()
            timings["quantize"] = timings.get("quantize", 0) + time.time() - t
            merges.append({"model": model_name, "method": opts.method, "params": params,
                           "experts": [{"name": e.name, "weight": w, "sha256": e.manifest["files"]}
                                       for e, w in zip(chosen, weights)]})

        answer_map = None
        if opts.answer_map and target.dev and not opts.ensemble:
            t = _stage("answer map", log)
            answer_map = learn_reading(tmp / model_files[0], target, opts, log)
            timings["answer_map"] = time.time() - t

        t = _stage("bundle", log)
        atomic_write_text(tmp / bundle_mod.MODELFILE, bundle_mod.modelfile(target.labels))
        manifest = bundle_mod.manifest(
            target={"name": target.name, "description": target.description, "texts": len(target.texts),
                    "dev": portable_path(target.dev)},
            labels=target.labels, base=base.identity(), selection=plans[0][0].to_dict(), merge=merges[0],
            quant=opts.quant, files=hash_files(tmp, model_files + [bundle_mod.MODELFILE]))
        manifest["label_alignment"] = {"threshold": opts.align_threshold, "renamed": alignment}
        if answer_map is not None:
            manifest["answer_map"] = answer_map
        manifest["build"] = opts.record()  # `samedge build --config bundle.json` rebuilds from it
        if opts.ensemble:
            manifest["ensemble"] = {"combine": opts.ensemble, "models": model_files,
                                    "selection_b": plans[1][0].to_dict(), "merge_b": merges[1]}
        atomic_write_json(tmp / bundle_mod.MANIFEST, manifest)
        timings["bundle"] = time.time() - t
    bundle_mod.remember_bundle(out)
    log(f"wrote {out} ({(out / bundle_mod.MODEL).stat().st_size / 1e6:.0f} MB)")
    return dict(manifest, timings={k: round(v, 2) for k, v in timings.items()})
