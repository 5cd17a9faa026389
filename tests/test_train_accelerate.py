"""`samedge train` under `accelerate launch --cpu --num_processes 2` on a tiny random llama.

Data parallel with the same global batch: each of the two processes takes half of every step's
examples, DDP averages the gradients, and samedge.train divides each process's summed token loss by
the answer tokens of the whole global batch (times the process count, which DDP's average undoes).
The two-process gradient is then the single-process one, up to the order of float additions, so the
adapters agree to float32 rounding accumulated over a few AdamW steps (measured: max |diff| ~1e-7
on weights of ~1e-2; the test allows 1e-5).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.bundle_fixtures import REPO, cli_environ, isolated_home

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from tests.test_train import SENTENCES, _doc  # noqa: E402
from tests.timeouts import generous  # noqa: E402

# `--cpu --num_processes 2` starts ONE process in accelerate 1.x (`--cpu` selects its simple launcher,
# whatever --num_processes says: accelerate/commands/launch.py, launch_command). Several CPU processes
# come from the distributed launcher (torchrun), which accelerate names --multi_gpu; without a GPU,
# the Accelerator then runs MULTI_CPU over gloo.
LAUNCH = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
          "--dynamo_backend", "no", "--main_process_port", "0"]
SETTINGS = ["max_steps=6", "batch_size=4", "lr=5e-3", "warmup_steps=2", "dev_sentences=0", "checkpoint_every=100",
            "centroid_texts=4", "r=4", "alpha=8", "dropout=0.0", "max_epochs=100", "save_dtype='float32'",
            "precision='fp32'"]  # compared to float rounding: no bf16


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.tiny_models import make_tiny_llama

    root = tmp_path_factory.mktemp("accelerate")
    make_tiny_llama(root / "hf", hidden=64, layers=2)
    docs = [_doc(i, t, s) for i, (t, s) in enumerate(SENTENCES)]
    with open(root / "train.jsonl", "w") as f:
        for doc in docs:
            f.write(json.dumps(doc) + "\n")
    with open(root / "dev.jsonl", "w") as f:
        f.write(json.dumps(docs[0]) + "\n")
    env = cli_environ(isolated_home(root), OMP_NUM_THREADS=1)
    return root, env


def _train_args(root, out):
    args = ["train", "--domain", "tiny", "--data", root / "train.jsonl", "--dev", root / "dev.jsonl", "--labels",
            "person,location,organization", "--base", root / "hf", "--out", out, "--json"]
    for item in SETTINGS:
        args += ["--set", item]
    return [str(a) for a in args]


def _run(cmd, env, timeout=400):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=generous(timeout))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def test_two_processes_train_the_single_process_adapter(setup):
    from safetensors.numpy import load_file

    root, env = setup
    single = _run([sys.executable, "-m", "samedge", *_train_args(root, root / "single")], env)
    launch = [sys.executable, "-m", "accelerate.commands.launch", *LAUNCH, "-m", "samedge"]
    double = _run(launch + _train_args(root, root / "double"), env)

    assert single["training"]["processes"] == 1 and double["training"]["processes"] == 2
    assert double["training"]["steps"] == single["training"]["steps"] == 6
    np.testing.assert_allclose(double["training"]["first_losses"], single["training"]["first_losses"], atol=1e-4)
    a = load_file(root / "single" / "adapter_model.safetensors")
    b = load_file(root / "double" / "adapter_model.safetensors")
    assert set(a) == set(b) and a
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    moved = max(float(np.abs(a[k]).max()) for k in a if "lora_B" in k)
    assert moved > 1e-3, "training must move the adapter (LoRA B starts at zero)"
    assert worst < 1e-5, worst
