"""Devices and precisions: what each name means on a machine with or without GPUs (mocked on CPU),
the one-line refusals, and that bf16 autocast on the CPU computes in bf16 while results leave as
float32."""

from __future__ import annotations

import pytest
import torch

from engine.device import (
    autocast,
    check_precision,
    grad_scaler,
    model_device,
    resolve_device,
    start_processes,
    to_float32,
)
from engine.errors import EditlensError


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def one_line(error: pytest.ExceptionInfo[EditlensError], *words: str) -> None:
    assert "\n" not in str(error.value)
    for word in words:
        assert word in str(error.value)


# --- resolution ----------------------------------------------------------------------------------


def test_auto_takes_the_cpu_on_a_machine_without_gpus(no_gpu: None) -> None:
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_takes_the_current_gpu_when_there_is_one(two_gpus: None) -> None:
    assert resolve_device("auto") == torch.device("cuda", 0)


def test_auto_takes_apples_gpu_when_there_is_no_cuda(
    no_gpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")


def test_cuda_and_a_numbered_gpu_resolve_to_that_gpu(two_gpus: None) -> None:
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(" CUDA:1 ") == torch.device("cuda", 1)


def test_cpu_is_always_there(two_gpus: None) -> None:
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_on_a_machine_without_gpus_is_one_line(no_gpu: None) -> None:
    with pytest.raises(EditlensError) as error:
        resolve_device("cuda")
    one_line(error, "device cuda", "no CUDA GPU", "--device auto or cpu")


def test_a_gpu_number_past_the_last_gpu_is_one_line(two_gpus: None) -> None:
    with pytest.raises(EditlensError) as error:
        resolve_device("cuda:2")
    one_line(error, "cuda:2", "2 CUDA device(s)", "cuda:0 to cuda:1")


def test_mps_on_a_machine_without_it_is_one_line(no_gpu: None) -> None:
    with pytest.raises(EditlensError) as error:
        resolve_device("mps")
    one_line(error, "device mps", "no Apple GPU")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "gpu", "cuda:-1", ""])
def test_an_unknown_device_name_lists_the_accepted_ones(name: str) -> None:
    with pytest.raises(EditlensError) as error:
        resolve_device(name)
    one_line(error, "auto, cpu, cuda, cuda:N, mps")


# --- precision -----------------------------------------------------------------------------------


def test_fp16_on_the_cpu_is_refused_in_one_line() -> None:
    with pytest.raises(EditlensError) as error:
        check_precision(torch.device("cpu"), "fp16")
    one_line(error, "fp16 needs a GPU", "bf16 or fp32")


def test_an_unknown_precision_is_refused_in_one_line() -> None:
    with pytest.raises(EditlensError) as error:
        check_precision(torch.device("cpu"), "int8")
    one_line(error, "'int8'", "fp32, bf16, fp16")


def test_bf16_and_fp32_are_allowed_on_the_cpu() -> None:
    check_precision(torch.device("cpu"), "bf16")
    check_precision(torch.device("cpu"), "fp32")


def test_bf16_on_a_gpu_without_bfloat16_is_refused(
    two_gpus: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "Tesla V100")
    with pytest.raises(EditlensError) as error:
        check_precision(torch.device("cuda", 0), "bf16")
    one_line(error, "Tesla V100 has no bfloat16", "fp16 or fp32")


def test_bf16_autocast_on_the_cpu_computes_in_bf16_and_results_leave_as_float32() -> None:
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with autocast(torch.device("cpu"), "bf16"):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    stored = to_float32(out)
    assert stored.dtype == torch.float32 and stored.device.type == "cpu"
    # bf16 keeps 8 bits of mantissa: close to fp32, not equal
    assert torch.allclose(stored, layer(x), atol=0.05) and not torch.equal(stored, layer(x))


def test_fp32_autocast_changes_nothing() -> None:
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with autocast(torch.device("cpu"), "fp32"):
        out = layer(x)
    assert out.dtype == torch.float32 and torch.equal(out, layer(x))


def test_the_gradient_scaler_is_on_for_fp16_only() -> None:
    cpu = torch.device("cpu")
    assert not grad_scaler(cpu, "fp32").is_enabled()
    assert not grad_scaler(cpu, "bf16").is_enabled()


def test_a_model_is_where_its_weights_are_and_a_weightless_stub_on_the_cpu() -> None:
    assert model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")
    with torch.device("meta"):
        assert model_device(torch.nn.Linear(2, 2)) == torch.device("meta")


# --- processes -----------------------------------------------------------------------------------


def test_without_a_launcher_a_job_is_one_process_on_its_device(
    no_gpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    procs = start_processes("auto")
    assert (procs.rank, procs.world, procs.main) == (0, 1, True)
    assert procs.device_name == "cpu" and procs.accelerator is None
    assert procs.sum([1.5, 2.0]) == [1.5, 2.0]
    assert procs.gather(torch.arange(3)).tolist() == [[0, 1, 2]]


def test_a_numbered_gpu_under_several_processes_is_refused(
    two_gpus: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(EditlensError) as error:
        start_processes("cuda:1")
    one_line(error, "under 2 processes", "--device cuda or auto")


# --- evaluation ----------------------------------------------------------------------------------


def test_an_evaluation_run_is_the_same_on_any_device_but_not_in_any_precision() -> None:
    import dataclasses

    from engine.evaluate import run_id_for
    from engine.specs import EvalSpec

    spec = EvalSpec(corpus="c")
    assert run_id_for(spec) == run_id_for(dataclasses.replace(spec, device="cuda:1"))
    assert run_id_for(spec) != run_id_for(dataclasses.replace(spec, precision="bf16"))


@pytest.mark.slow
def test_a_bf16_evaluation_on_the_cpu_stores_float32_scores_close_to_fp32(tmp_path) -> None:
    import dataclasses

    import duckdb
    from train_fixture import corpus, make_store, tiny_model

    from engine.evaluate import evaluate
    from engine.specs import EvalSpec

    db = make_store(tmp_path / "store.duckdb", "tiny", corpus(train=8, dev=16))
    model = tiny_model(tmp_path / "tiny-bert")
    spec = EvalSpec(
        corpus="tiny", model=str(model), split="dev", methods=("attention", "grad"),
        faithfulness=False, device="cpu", max_length=32,
    )  # fmt: skip
    full = evaluate(db, spec).run_id
    low = evaluate(db, dataclasses.replace(spec, precision="bf16")).run_id
    with duckdb.connect(str(db), read_only=True) as con:
        kinds = con.execute("SELECT typeof(scores) FROM scores LIMIT 1").fetchall()
        pairs = con.execute(
            "SELECT a.scores, b.scores FROM scores a JOIN scores b USING (example, method, layer)"
            " WHERE a.run = ? AND b.run = ?",
            [full, low],
        ).fetchall()
        config = con.execute("SELECT config->>'device' FROM runs WHERE id = ?", [low]).fetchall()
    assert kinds == [("FLOAT[]",)] and config == [("cpu",)]
    assert len(pairs) == 16 * 3  # attention at 2 layers, grad at one
    differences = [abs(x - y) for a, b in pairs for x, y in zip(a, b, strict=True)]
    assert 0 < max(differences) < 0.05  # computed in bf16, stored as float32, close to fp32
