"""LoRA SFT on Ray Train with tiny-ko: loss goes down, the output loads with the seed's snippet, adapters
continue, killed workers resume from checkpoints, MLflow holds the run and no secret."""

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from korlora.errors import KorloraError
from korlora.train.config import TrainConfig
from korlora.train.sft import assistant_mask_coverage, start_weighted_loss

QA = [
    ("오늘 날씨 어때요?", "오늘은 맑고 따뜻해요. 산책하기 좋은 날이에요."),
    ("점심 뭐 먹을까요?", "김치찌개 어때요? 따뜻한 국물이 속을 편하게 해 줘요."),
    ("주말에 뭐 하면 좋을까요?", "가까운 공원에서 자전거를 타 보세요. 기분 전환이 될 거예요."),
    ("책 추천해 주세요.", "짧은 소설집부터 읽어 보세요. 한 편씩 끊어 읽기 좋아요."),
]
MARKER = "hf_korlora_secret_marker_123456"


def write_data(path: Path, n: int = 64) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            q, a = QA[i % len(QA)]
            f.write(json.dumps({"id": f"r{i}", "messages": [{"role": "user", "content": f"{q} ({i})"},
                                                            {"role": "assistant", "content": a}]},
                               ensure_ascii=False) + "\n")
    return path


def config(tmp_path: Path, **overrides) -> TrainConfig:
    values = dict(model_name_or_path="tiny-ko", data_file=str(write_data(tmp_path / "data.jsonl")),
                  output_dir=str(tmp_path / "out"), storage_path=str(tmp_path / "ray"), max_steps=16,
                  save_steps=8, logging_steps=2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                  learning_rate=2e-3, eval_share=0.1, experiment_name="test-train")
    values.update(overrides)
    return TrainConfig(**values)


def test_mask_coverage_on_tiny_ko(tiny_ko):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    rows = [{"messages": [{"role": "system", "content": "시스템"}, {"role": "user", "content": q},
                          {"role": "assistant", "content": a}]} for q, a in QA]
    coverage = assistant_mask_coverage(tokenizer, rows)
    assert coverage["assistant_labeled_share"] == 1.0
    assert coverage["other_unlabeled_share"] > 0.85  # only the turn's newline and <|im_end|> are extra
    tokenizer.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    with pytest.raises(KorloraError, match="generation"):
        assistant_mask_coverage(tokenizer, rows)


def test_start_weighted_loss_weights_first_answer_tokens():
    torch.manual_seed(0)
    logits = torch.randn(1, 9, 11)
    # two answers in one row: labelled positions 2-5 and 7-8 (before the shift)
    labels = torch.tensor([[-100, -100, 1, 2, 3, 4, -100, 5, 6]])
    plain = start_weighted_loss(logits, labels, 1.0, 0)
    reference = torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100)
    assert torch.allclose(plain, reference)
    ce = torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:].clamp(min=0), reduction="none")
    weighted = start_weighted_loss(logits, labels, 3.0, 2)
    # after the shift, answer tokens sit at 1..4 and 6..7; the first two of each answer weigh 3
    expected = (3 * ce[1] + 3 * ce[2] + ce[3] + ce[4] + 3 * ce[6] + 3 * ce[7]) / 6
    assert torch.allclose(weighted, expected)
    # normalised by the step's token count when given (several ranks / accumulation steps)
    assert torch.allclose(start_weighted_loss(logits, labels, 3.0, 2, num_items=12), expected / 2)


def test_start_weighted_loss_func_is_plain_in_evaluation():
    from types import SimpleNamespace

    from korlora.train.sft import start_weighted_loss_func

    torch.manual_seed(0)
    outputs = SimpleNamespace(logits=torch.randn(1, 6, 7))
    labels = torch.tensor([[-100, 1, 2, 3, 4, 5]])
    loss = start_weighted_loss_func(5.0, 2)
    with torch.no_grad():
        assert torch.allclose(loss(outputs, labels), start_weighted_loss(outputs.logits, labels, 1.0, 0))
    assert not torch.allclose(loss(outputs, labels), start_weighted_loss(outputs.logits, labels, 1.0, 0))


def test_use_4bit_without_cuda_is_a_clear_error(tmp_path, tiny_ko):
    from korlora.train.driver import run_training

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(KorloraError, match="CUDA"):
        run_training(config(tmp_path, use_4bit=True))


@pytest.mark.slow
def test_train_on_ray_lowers_loss_and_loads_with_seed_snippet(tmp_path, tiny_ko, ray_local, monkeypatch, capfd):
    from korlora.train.driver import run_training

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_TOKEN", MARKER)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = run_training(config(tmp_path))
    out = result.output_dir
    printed = capfd.readouterr()
    assert "PreemptionWatcher" not in printed.out + printed.err  # quiet logs on a local Ray

    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = tokenizer.apply_chat_template([{"role": "user", "content": QA[0][0]}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    assert model.generate(**ids, max_new_tokens=5, do_sample=False).shape[1] > ids["input_ids"].shape[1]
    assert (out / "adapter_model.safetensors").exists()

    db = sqlite3.connect(tmp_path / "mlflow.db")
    losses = [v for (v,) in db.execute("select value from metrics where key='loss' order by step")]
    assert len(losses) >= 4 and losses[-1] < losses[0]
    params = dict(db.execute("select key, value from params"))
    assert params["learning_rate"] == "0.002" and params["attn_implementation_used"] == "sdpa"
    assert "eval_loss" in {k for (k,) in db.execute("select key from metrics")}
    assert not any(MARKER in str(v) for v in params.values())
    assert not any(MARKER in str(v) for (v,) in db.execute("select value from tags"))
    artifacts = [p for p in (tmp_path / "mlruns").rglob("*") if p.is_file()]
    assert any(p.name == "adapter_model.safetensors" for p in artifacts)
    for path in [*artifacts, *out.rglob("*")]:
        if path.is_file():
            assert MARKER.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_two_workers_and_init_adapter(tmp_path, tiny_ko, ray_local, monkeypatch):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from korlora.train.driver import run_training

    monkeypatch.chdir(tmp_path)
    first = run_training(config(tmp_path, num_workers=2, max_steps=8, save_steps=4, experiment_name="two-workers"))
    assert first.metrics["global_step"] == 8
    db = sqlite3.connect(tmp_path / "mlflow.db")
    losses = [v for (v,) in db.execute("select value from metrics where key='loss' order by step")]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    # a zero-step continuation saves exactly the starting adapter: its weights are the starting point
    cont = run_training(config(tmp_path, init_adapter=str(first.output_dir), output_dir=str(tmp_path / "cont"),
                               max_steps=1, learning_rate=1e-12, mlflow=False, warmup_steps=0))
    a = load_file(first.output_dir / "adapter_model.safetensors")
    b = load_file(cont.output_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    base = AutoModelForCausalLM.from_pretrained(tiny_ko)
    assert PeftModel.from_pretrained(base, str(cont.output_dir)) is not None


@pytest.mark.slow
def test_killed_worker_resumes_from_checkpoint(tmp_path, tiny_ko, ray_local, monkeypatch):
    from korlora.train.driver import run_training

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "killed"
    monkeypatch.setenv("KORLORA_TEST_KILL_AT_STEP", "10")
    monkeypatch.setenv("KORLORA_TEST_KILL_MARKER", str(marker))
    ray_local.shutdown()  # workers inherit the environment of a fresh local Ray
    from korlora.raycompat import init_local_ray

    init_local_ray(num_cpus=2)
    result = run_training(config(tmp_path, max_steps=16, save_steps=4, experiment_name="test-kill"))
    assert marker.read_text() == "10"  # the worker died at step 10 ...
    assert result.metrics["global_step"] == 16  # ... and the run still finished
    import sqlite3 as sq

    db = sq.connect(tmp_path / "mlflow.db")
    steps = [s for (s,) in db.execute("select step from metrics where key='loss' order by step")]
    # resumed from the step-8 checkpoint: steps 1-8 were logged once, never redone from zero
    assert steps.count(2) == 1 and max(steps) == 16


@pytest.mark.slow
def test_rerun_with_the_same_settings_reuses_the_finished_run(tmp_path, tiny_ko, ray_local, monkeypatch):
    from korlora.train.driver import run_training

    monkeypatch.chdir(tmp_path)
    first = run_training(config(tmp_path, max_steps=4, save_steps=4, experiment_name="rerun"))
    weights = (first.output_dir / "adapter_model.safetensors").read_bytes()
    second = run_training(config(tmp_path, max_steps=4, save_steps=4, experiment_name="rerun"))
    assert second.metrics.get("reused") == 1 and second.metrics["global_step"] == 4
    assert (second.output_dir / "adapter_model.safetensors").read_bytes() == weights
    assert second.mlflow_run_id == first.mlflow_run_id
    db = sqlite3.connect(tmp_path / "mlflow.db")
    assert [s for (s,) in db.execute("select status from runs")] == ["FINISHED"]


@pytest.mark.slow
def test_an_error_inside_training_fails_the_run(tmp_path, tiny_ko, ray_local, monkeypatch):
    from korlora.train.driver import run_training

    monkeypatch.chdir(tmp_path)
    bad = config(tmp_path, sft={"lr_scheduler_type": "no_such_schedule"}, experiment_name="fails", max_failures=0)
    with pytest.raises(KorloraError, match="training failed"):
        run_training(bad)
    db = sqlite3.connect(tmp_path / "mlflow.db")
    (status,) = db.execute("select status from runs").fetchone()
    assert status == "FAILED"
    (error,) = db.execute("select value from tags where key = 'korlora.error'").fetchone()
    assert "no_such_schedule" in error


@pytest.mark.slow
def test_start_weighted_gradient_is_the_same_on_one_and_two_workers(tmp_path, tiny_ko, ray_local, monkeypatch):
    """One SGD step on the same global batch (4 rows): 1 worker × 4 rows and 2 workers × 2 rows must move the
    adapter by the same amount. Without TRL's multiplication by the number of processes the 2-worker step
    would be half as large. SGD without clipping, so the update is the gradient itself."""
    from safetensors.torch import load_file

    from korlora.train.driver import run_training

    monkeypatch.chdir(tmp_path)
    data = write_data(tmp_path / "four.jsonl", n=4)
    common = dict(data_file=str(data), max_steps=1, save_steps=1, eval_share=0.0, learning_rate=1.0,
                  lr_scheduler_type="constant", warmup_steps=0, lora_dropout=0.0, start_loss_weight=3.0,
                  start_tokens=2, sft={"optim": "sgd", "max_grad_norm": 0.0}, mlflow=False, cpus_per_worker=1)
    one = run_training(config(tmp_path, output_dir=str(tmp_path / "one"), num_workers=1,
                              per_device_train_batch_size=4, **common))
    two = run_training(config(tmp_path, output_dir=str(tmp_path / "two"), num_workers=2,
                              per_device_train_batch_size=2, **common))
    a = load_file(one.output_dir / "adapter_model.safetensors")
    b = load_file(two.output_dir / "adapter_model.safetensors")
    lora_b = [k for k in a if "lora_B" in k]
    assert lora_b and all(a[k].abs().max() > 1e-6 for k in lora_b)  # the step moved B (initialised at zero)
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6), (k, (a[k] - b[k]).abs().max())
