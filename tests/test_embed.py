"""The runtime embedder: torch-free, batched, order-preserving, explicit about length and threads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from samedge.embed import Embedder, default_embedder_dir
from samedge.errors import IntegrityError, UserError
from tests.timeouts import generous  # noqa: E402

SENTENCES = [
    "EU rejects German call to boycott British lamb .",
    "Famotidine-associated delirium : a series of six cases .",
    "any good italian restaurants near here open after midnight",
    "what 1990s sci fi movie starred keanu reeves as a hacker",
    "The Labour Party won the 1945 general election in a landslide .",
    "lol cant wait for the new @taylorswift13 album",
    "x",
]

pytestmark = pytest.mark.skipif(not (default_embedder_dir() / "model.onnx").is_file(),
                                reason="models/embedder not built (python -m samedge.converters.embedder_to_onnx)")


@pytest.fixture(scope="module")
def embedder():
    # One thread: tests share the machine with other work.
    return Embedder.load(threads=1)


def test_runtime_path_imports_no_torch():
    code = textwrap.dedent("""
        import sys
        from samedge.embed import Embedder
        e = Embedder.load(threads=1)
        v = e.embed(["hello world", "a second, longer sentence about lamb"])
        c = e.centroid(["hello world"])
        assert v.shape == (2, 384) and c.shape == (384,), (v.shape, c.shape)
        heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
        assert not heavy, heavy
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=generous(120),
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_shipped_model_is_int8_and_verified():
    manifest = json.loads((default_embedder_dir() / "manifest.json").read_text())
    assert manifest["precision"] == "int8"
    assert manifest["verification"]["sentences"] >= 200
    assert manifest["verification"]["fp32_vs_torch_cosine"]["min"] >= 0.9999
    assert manifest["verification"]["int8_vs_fp32_cosine"]["min"] >= 0.995
    size_mb = (default_embedder_dir() / "model.onnx").stat().st_size / 1e6
    assert 15 < size_mb < 30


def test_vectors_are_unit_rows_in_input_order(embedder):
    vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Length-sorted batching must put every row back: each text alone gives (nearly) its own row.
    for i, text in enumerate(SENTENCES):
        alone = embedder.embed([text])[0]
        assert float(alone @ vectors[i]) > 0.99, text


def test_batch_size_does_not_change_results_beyond_int8_noise(embedder):
    a = embedder.embed(SENTENCES, batch_size=1)
    b = embedder.embed(SENTENCES, batch_size=3)
    c = embedder.embed(SENTENCES, batch_size=64)
    # int8 activations are quantized per batch: neighbours move vectors in the 3rd-4th decimal only.
    assert np.min(np.sum(a * b, axis=1)) > 0.99
    assert np.min(np.sum(a * c, axis=1)) > 0.99
    with pytest.raises(UserError, match="batch_size"):
        embedder.embed(SENTENCES, batch_size=0)


def test_similar_texts_are_closer_than_unrelated_ones(embedder):
    v = embedder.embed(["the patient developed acute renal failure",
                        "acute kidney injury was observed in the patient",
                        "cheap pizza place with outdoor seating"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_empty_input_and_bad_input(embedder):
    assert embedder.embed([]).shape == (0, 384)
    with pytest.raises(UserError, match="single string"):
        embedder.embed("not a list")
    with pytest.raises(UserError, match="not str"):
        embedder.embed(["fine", 3])


def test_centroid_is_unit_and_samples_with_a_fixed_seed(embedder):
    texts = [f"sentence number {i} about the stock market" for i in range(40)]
    c1 = embedder.centroid(texts, max_texts=10, seed=1)
    c2 = embedder.centroid(texts, max_texts=10, seed=1)
    c3 = embedder.centroid(texts, max_texts=10, seed=2)
    assert c1.shape == (384,)
    assert abs(float(np.linalg.norm(c1)) - 1.0) < 1e-5
    np.testing.assert_array_equal(c1, c2)
    assert not np.array_equal(c1, c3)
    with pytest.raises(UserError, match="empty"):
        embedder.centroid([])


def test_explicit_max_length_truncates_and_is_counted():
    long_text = " ".join(["word"] * 300)
    short = Embedder.load(threads=1, max_length=16)
    assert short.max_length == 16
    assert short.count_truncated([long_text, "short one"]) == 1
    feed_width = short.tokenizer.encode(long_text).ids
    assert len(feed_width) == 16
    with pytest.raises(UserError, match="max_length"):
        Embedder.load(threads=1, max_length=1)
    with pytest.raises(UserError, match="max_length"):
        Embedder.load(threads=1, max_length=513)


def test_thread_count_is_validated_and_applied():
    e = Embedder.load(threads=2)
    assert e.session.get_session_options().intra_op_num_threads == 2
    with pytest.raises(UserError, match="threads"):
        Embedder.load(threads=0)


def test_fingerprint_is_the_model_sha256(embedder):
    from samedge.files import sha256_file

    assert embedder.fingerprint == sha256_file(default_embedder_dir() / "model.onnx")


def test_tampered_or_missing_model_is_refused(tmp_path):
    copy = tmp_path / "embedder"
    shutil.copytree(default_embedder_dir(), copy)
    with open(copy / "tokenizer.json", "a", encoding="utf-8") as f:
        f.write(" ")
    with pytest.raises(IntegrityError, match="tokenizer.json"):
        Embedder.load(copy)
    with pytest.raises(UserError, match="manifest.json missing"):
        Embedder.load(tmp_path / "nowhere")


# --- the converter's int8 pieces (onnx only, no torch) ------------------------------

def _tiny_graph(rng):
    """x [batch, seq, 8] -> two weight MatMuls sharing x, plus an embedding-table Gather."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w1, w2 = rng.normal(size=(8, 5)).astype(np.float32), rng.normal(size=(8, 3)).astype(np.float32)
    table = rng.normal(size=(20, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0),
         helper.make_node("Add", ["x", "emb"], ["h"]),
         helper.make_node("MatMul", ["h", "w1"], ["y1"], name="mm1"),
         helper.make_node("MatMul", ["h", "w2"], ["y2"], name="mm2")],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 8]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("y1", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("y2", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
         numpy_helper.from_array(table, "table")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, feed):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


def test_outlier_channels_picks_the_largest_above_the_ratio():
    from samedge.converters.embedder_to_onnx import outlier_channels

    absmax = np.array([1.0, 9.0, 1.2, 0.8, 3.0, 1.1])
    assert outlier_channels(absmax, ratio=2.0, max_channels=32).tolist() == [1, 4]
    assert outlier_channels(absmax, ratio=2.0, max_channels=1).tolist() == [1]
    assert outlier_channels(absmax, ratio=20.0).tolist() == []


def test_split_outliers_is_exact_in_fp32():
    from samedge.converters.embedder_to_onnx import split_outliers

    rng = np.random.default_rng(0)
    model = _tiny_graph(rng)
    feed = {"x": rng.normal(size=(2, 3, 8)).astype(np.float32),
            "ids": rng.integers(0, 20, size=(2, 3)).astype(np.int64)}
    feed["x"][:, 0, 6] = 40.0  # a [CLS]-like outlier in channel 6
    before = _run(model, feed)
    absmax = {"h": np.abs(feed["x"]).reshape(-1, 8).max(0) + 0.1}
    split, fp32_nodes = split_outliers(model, absmax, ratio=3.0, max_channels=4)
    assert split == 1 and sorted(fp32_nodes) == ["mm1/outlier_part", "mm2/outlier_part"]
    after = _run(model, feed)
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_quantize_rows_keeps_each_row_within_half_a_step():
    from onnx import numpy_helper

    from samedge.converters.embedder_to_onnx import quantize_rows

    rng = np.random.default_rng(1)
    model = _tiny_graph(rng)
    initializers = lambda: {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}  # noqa: E731
    table = initializers()["table"]
    feed = {"x": np.zeros((1, 20, 8), dtype=np.float32), "ids": np.arange(20, dtype=np.int64)[None]}
    before = _run(model, feed)
    quantize_rows(model, table="table")
    stored = initializers()
    assert "table" not in stored and stored["table/int8"].dtype == np.int8
    step = np.abs(table).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(stored["table/int8"] * stored["table/row_scale"] - table) <= step / 2 + 1e-7)
    for a, b in zip(before, _run(model, feed)):  # the rewritten graph still runs, and agrees closely
        np.testing.assert_allclose(a, b, atol=0.05)


def test_calibration_sentences_are_disjoint_from_verification(shared_data):
    from samedge.converters.embedder_to_onnx import calibration_sentences, verification_sentences

    verification = verification_sentences(shared_data)
    calibration = calibration_sentences(shared_data)
    assert len(verification) >= 200 and len(calibration) >= 100
    assert not set(verification) & set(calibration)
