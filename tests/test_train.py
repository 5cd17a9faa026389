"""Training on a tiny random llama: the loss falls, the adapter reloads exactly, the manifest is complete,
resume continues where a run stopped, and the library refuses bad adapters."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from samedge.data.labels import make_label  # noqa: E402
from samedge.errors import UserError  # noqa: E402
from samedge.train import Source, load_config, parse_overrides, train  # noqa: E402
from samedge.train.examples import batch_plan, capped_empties  # noqa: E402

SENTENCES = [
    ("Alice Smith moved to Paris in 2019 .", [("Alice Smith", "person"), ("Paris", "location")]),
    ("Bob Jones works for Acme Corp in Berlin .", [("Bob Jones", "person"), ("Acme Corp", "organization"),
                                                  ("Berlin", "location")]),
    ("The meeting in Rome was chaired by Carla Ruiz .", [("Rome", "location"), ("Carla Ruiz", "person")]),
    ("Nothing to see here .", []),
    ("Globex hired Dan Brown last week .", [("Globex", "organization"), ("Dan Brown", "person")]),
    ("Eve Adams visited Tokyo and Osaka .", [("Eve Adams", "person"), ("Tokyo", "location"), ("Osaka", "location")]),
]


def _doc(i, text, spans):
    ents = []
    for mention, label in spans:
        start = text.index(mention)
        ents.append({"start": start, "end": start + len(mention), "label": label, "text": mention})
    return {"id": f"d{i}", "text": text, "entities": ents}


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from tests.tiny_models import make_tiny_llama

    root = tmp_path_factory.mktemp("base")
    make_tiny_llama(root / "hf", hidden=64, layers=2)
    return root / "hf"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMEDGE_HOME", str(tmp_path / "home"))
    return tmp_path


def _source():
    docs = [_doc(i, t, s) for i, (t, s) in enumerate(SENTENCES)]
    labels = [make_label(n) for n in ("person", "location", "organization")]
    return Source("tiny", labels, docs, docs[:2], "tiny test domain")


def _config(**kw):
    base = {"max_steps": 12, "batch_size": 4, "lr": 5e-3, "warmup_steps": 2, "dev_sentences": 0, "dev_answer_tokens": 8,
            "checkpoint_every": 4, "centroid_texts": 8, "r": 4, "alpha": 8, "dropout": 0.0, "max_epochs": 100}
    base.update(kw)
    return load_config(overrides=base)


def test_training_lowers_loss_and_writes_a_complete_manifest(tiny_base, home):
    out = home / "expert"
    manifest = train([_source()], out, name="tiny", config=_config(dev_sentences=2), base=str(tiny_base),
                     progress=False)
    t = manifest["training"]
    assert np.mean(t["last_losses"]) < np.mean(t["first_losses"])
    for key in ("format", "name", "domain", "labels", "base", "lora", "training", "dev", "centroid", "files"):
        assert key in manifest, key
    assert manifest["base"]["base_id"] and manifest["training"]["steps"] == 12
    assert manifest["dev"]["tiny"]["sentences"] == 2 and 0 <= manifest["dev"]["tiny"]["f1"] <= 100
    assert manifest["training"]["hyperparameters"]["r"] == 4
    assert manifest["centroid"] is None or len(manifest["centroid"]["vector"]) == 384
    assert set(manifest["files"]) == {"adapter_model.safetensors", "adapter_config.json"}
    assert json.loads((out / "expert.json").read_text()) == manifest
    assert not (home / "expert.work").exists(), "checkpoints are removed after a finished run"


def test_training_stops_before_step_one_when_examples_do_not_fit_max_length(tiny_base, home):
    # A domain with many labels has a prompt longer than max_length: every example would be left
    # out and the run would "finish" untrained (wlp2020's 18 labels at 320 tokens did exactly that).
    out = home / "expert"
    with pytest.raises(UserError, match=r"0 of \d+ sampled examples fit max_length=16"):
        train([_source()], out, name="tiny", config=_config(max_length=16), base=str(tiny_base), progress=False)
    assert not (out / "expert.json").exists()


def test_warm_start_continues_a_truncated_expert_at_its_own_rank(tiny_base, home):
    # Shipped experts are stored at rank 6 (SVD truncation) while train_defaults says 8: a warm
    # start (`--init-from models/experts/X`) takes the expert's own rank and starts where it ended.
    from samedge.library import load_expert
    from samedge.merge.adapter import shrink_expert

    first = train([_source()], home / "a", name="tiny", config=_config(save_dtype="float32"), base=str(tiny_base),
                  progress=False)
    shrink_expert(load_expert(home / "a"), 2, home / "a2", dtype="float32")
    warm = train([_source()], home / "b", name="tiny", config=_config(save_dtype="float32", max_steps=4),
                 base=str(tiny_base), progress=False, init_from=home / "a2")
    assert (warm["lora"]["r"], warm["lora"]["alpha"]) == (2, 2)
    assert warm["training"]["hyperparameters"]["r"] == 2
    assert warm["training"]["initialised_from"]["name"] == "tiny"
    assert warm["training"]["first_losses"][0] < first["training"]["first_losses"][0]


def test_save_and_reload_give_identical_logits(tiny_base, home):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = home / "expert"
    train([_source()], out, name="tiny", config=_config(save_dtype="float32", max_steps=4), base=str(tiny_base),
          progress=False)
    ids = torch.tensor([[1, 5, 9, 42, 7, 3]])
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), out).eval()
    again = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), out).eval()
    with torch.no_grad():
        a, b = model(ids).logits, again(ids).logits
    assert torch.equal(a, b)
    plain = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(ids).logits, a), "the adapter must change the model"


def test_training_is_deterministic_and_resume_matches_an_uninterrupted_run(tiny_base, home, monkeypatch):
    from safetensors.numpy import load_file

    cfg = _config(save_dtype="float32", max_steps=8, checkpoint_every=4)
    train([_source()], home / "a", name="tiny", config=cfg, base=str(tiny_base), progress=False)
    train([_source()], home / "b", name="tiny", config=cfg, base=str(tiny_base), progress=False)
    a = load_file(home / "a" / "adapter_model.safetensors")
    b = load_file(home / "b" / "adapter_model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)

    # Interrupt after the first checkpoint (step 4), then resume.
    from samedge.train import checkpoints
    original = checkpoints.save

    def stop_after_checkpoint(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save", stop_after_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train([_source()], home / "c", name="tiny", config=cfg, base=str(tiny_base), progress=False)
    assert not (home / "c").exists() and (home / "c.work" / "checkpoint" / "state.json").exists()
    monkeypatch.setattr(checkpoints, "save", original)
    with pytest.raises(UserError, match="--resume"):
        train([_source()], home / "c", name="tiny", config=cfg, base=str(tiny_base), progress=False)
    manifest = train([_source()], home / "c", name="tiny", config=cfg, base=str(tiny_base), resume=True,
                     progress=False)
    assert manifest["training"]["resumed_from"] == 4
    c = load_file(home / "c" / "adapter_model.safetensors")
    assert all(np.allclose(a[k], c[k], atol=1e-6) for k in a)


def test_unified_gets_the_per_example_budget_of_all_experts():
    from samedge.train.examples import planned_steps

    cfg = load_config(overrides={"max_steps": 100, "max_epochs": 1000, "batch_size": 8})
    assert planned_steps(10_000, cfg, n_sources=3) == 300
    capped = load_config(overrides={"max_steps": 100, "max_epochs": 2, "batch_size": 8})
    assert planned_steps(80, capped) == 20


def test_batch_plan_is_pure_and_covers_each_epoch():
    plan = batch_plan(10, 4, 5, seed=1)
    assert plan == batch_plan(10, 4, 5, seed=1)
    first_epoch = [i for b in plan for i in b][:10]
    assert sorted(first_epoch) == list(range(10))


def test_sentences_without_entities_are_capped_to_a_share_with_a_seeded_sample():
    docs = [{"id": str(i), "entities": [{"label": "x"}] if i % 10 == 0 else []} for i in range(100)]
    kept = capped_empties(docs, 0.5, seed=0)
    full = [d for d in kept if d["entities"]]
    assert len(full) == 10 and len(kept) == 20  # all 10 with entities, 10 of the 90 without
    assert [d["id"] for d in kept] == sorted((d["id"] for d in kept), key=int)  # order kept
    assert kept == capped_empties(docs, 0.5, seed=0) != capped_empties(docs, 0.5, seed=1)
    assert len(capped_empties(docs, 0.75, seed=0)) == 40
    assert capped_empties(docs, 1.0, seed=0) == docs
    balanced = docs[:20]  # 2 of 20 with entities -> 2 empties kept
    assert len(capped_empties(balanced, 0.5, seed=0)) == 4
    assert capped_empties([{"entities": []}] * 3, 0.5, seed=0) == [{"entities": []}] * 3  # nothing to balance
    assert load_config()["max_empty_share"] == 0.5
    with pytest.raises(UserError, match="max_empty_share"):
        load_config(overrides={"max_empty_share": 0.0})


def test_config_refuses_unknown_and_mistyped_options():
    with pytest.raises(UserError, match="unknown training option"):
        load_config(overrides={"rank": 8})
    with pytest.raises(UserError, match="must be int"):
        load_config(overrides={"r": "eight"})
    assert parse_overrides(["lr=2e-4", "target_modules=['q_proj']"]) == {"lr": 2e-4, "target_modules": ["q_proj"]}


def test_experts_add_refuses_bad_adapters(tiny_base, home, monkeypatch):
    """Wrong base, shape mismatch, NaN and pickle files: each refused with a clear error."""
    from samedge.errors import IntegrityError
    from samedge.library import Library, load_expert
    from samedge.library.experts import validate_adapter
    from samedge.files import hash_files
    from safetensors.numpy import load_file, save_file

    out = home / "expert"
    train([_source()], out, name="tiny", config=_config(max_steps=2), base=str(tiny_base), progress=False)
    library = Library([home / "lib"])
    # 1. wrong base: the tiny expert is not on the packaged SmolLM2
    with pytest.raises(IntegrityError, match="trained on base"):
        library.add(out)
    assert not (home / "lib" / "tiny").exists()

    def tampered(name, change):
        folder = home / name
        shutil.copytree(out, folder)
        tensors = load_file(folder / "adapter_model.safetensors")
        change(tensors)
        save_file(tensors, folder / "adapter_model.safetensors")
        manifest = json.loads((folder / "expert.json").read_text())
        manifest["files"] = hash_files(folder, ["adapter_model.safetensors", "adapter_config.json"])
        (folder / "expert.json").write_text(json.dumps(manifest))
        return load_expert(folder)

    from samedge.base import provision
    base = provision(str(tiny_base))
    key = sorted(k for k in load_file(out / "adapter_model.safetensors") if "lora_A" in k)[0]

    # 2. shape mismatch
    def reshape(t):
        t[key] = np.zeros((t[key].shape[0] + 1, t[key].shape[1]), dtype=t[key].dtype)
    with pytest.raises(IntegrityError, match="shape"):
        validate_adapter(tampered("shape", reshape), base.base_id, base.gguf)

    # 3. NaN
    def poison(t):
        t[key] = t[key].copy()
        t[key][0, 0] = np.nan
    with pytest.raises(IntegrityError, match="NaN"):
        validate_adapter(tampered("nan", poison), base.base_id, base.gguf)

    # 4. a pickle file beside the adapter
    pickled = home / "pickled"
    shutil.copytree(out, pickled)
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(IntegrityError, match="pickled"):
        library.add(pickled)
    # 5. unsafe manifest paths
    unsafe = home / "unsafe"
    shutil.copytree(out, unsafe)
    manifest = json.loads((unsafe / "expert.json").read_text())
    manifest["files"]["../../etc/passwd"] = "0" * 64
    (unsafe / "expert.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="unsafe path"):
        library.add(unsafe)


def test_answer_only_logits_give_the_loss_of_full_logits_with_left_padding(tiny_base):
    # The step computes logits only at the answer positions of a left-padded batch; the loss and
    # its gradient must equal those of the plain right-padded forward over every position.
    from transformers import AutoModelForCausalLM

    from samedge.train.trainer import _step_loss, batch_loss

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    batch = [([5, 6, 7, 8, 9, 10], [-100, -100, -100, -100, 9, 10]), ([11, 12, 13], [-100, 12, 13]),
             ([3, 4, 5, 6, 7, 8, 9, 10, 11], [-100] * 7 + [10, 11])]
    n_answer = 6
    loss, n_tokens = batch_loss(model, batch, 0, "cpu", n_answer)
    loss.backward()
    fast = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    width = 9
    ids = torch.tensor([i + [0] * (width - len(i)) for i, _ in batch])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
    reference = _step_loss(model(input_ids=ids, attention_mask=mask).logits, labels, n_answer)
    reference.backward()
    assert n_tokens == 18
    assert abs(float(loss) - float(reference)) < 1e-5
    for name, p in model.named_parameters():
        assert torch.allclose(fast[name], p.grad, atol=1e-5), name


def test_freed_memory_is_kept_and_trimmed_only_above_the_threshold():
    # Trimming after every step made the next step fault every page back in (a quarter of a CPU
    # step); below the threshold nothing is handed back, above it the heap is trimmed.
    from samedge.train.memory import _LIBC, keep_freed_memory, release_freed_memory, resident_bytes

    glibc = _LIBC is not None
    assert keep_freed_memory() is glibc
    rss = resident_bytes()
    assert rss is not None and rss > 0
    assert release_freed_memory(above_bytes=rss * 100) is False
    assert release_freed_memory(above_bytes=0) is glibc
