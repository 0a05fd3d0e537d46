"""Preference training on answer starts: the pair reader accounts for every line, ``--method dpo`` on Ray Train
raises the chosen − rejected log-probability margin, continues an adapter against itself as reference, and
ORPO runs too."""

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from korlora.errors import KorloraError
from korlora.schema import Reason
from korlora.train.config import TrainConfig
from korlora.train.preference import read_pairs

QA = [
    ("오늘 날씨 어때요?", "오늘은 맑고 따뜻해요. 산책하기 좋은 날이에요."),
    ("점심 뭐 먹을까요?", "김치찌개 어때요? 따뜻한 국물이 속을 편하게 해 줘요."),
    ("주말에 뭐 하면 좋을까요?", "가까운 공원에서 자전거를 타 보세요. 기분 전환이 될 거예요."),
    ("책 추천해 주세요.", "짧은 소설집부터 읽어 보세요. 한 편씩 끊어 읽기 좋아요."),
]
BROKEN = ["!! ", "assistant: ", "\n\n", "..."]


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def write_pairs(path: Path, n: int = 16) -> Path:
    """korlora's correction pairs: the clean answer chosen, the same answer behind a broken start rejected."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            q, a = QA[i % len(QA)]
            f.write(json.dumps({"prompt": [user(f"{q} ({i})")], "chosen": [assistant(a)],
                                "rejected": [assistant(BROKEN[i % len(BROKEN)] + a)], "id": f"p{i}",
                                "category": "daily", "source": "test", "tags": ["punct"]}, ensure_ascii=False) + "\n")
    return path


def test_pair_reader_accounts_for_every_line(tmp_path):
    lines = [
        # 1: korlora's own pair
        {"prompt": [user("안녕?")], "chosen": [assistant("안녕하세요.")], "rejected": [assistant("!! 안녕하세요.")],
         "id": "a", "tags": ["punct"]},
        # 2: TRL's plain strings, with a system prompt
        {"prompt": "날씨 어때요?", "chosen": "맑아요.", "rejected": "assistant: 맑아요.", "system": "친절하게"},
        # 3: messages = the prompt conversation
        {"messages": [user("하나"), assistant("네."), user("둘")], "chosen": assistant("둘이요."),
         "rejected": [assistant("...둘이요.")]},
        # 4: ShareGPT pair
        {"conversations": [{"from": "system", "value": "시스템"}, {"from": "human", "value": "셋"}],
         "chosen": {"from": "gpt", "value": "셋이에요."}, "rejected": {"from": "gpt", "value": "\n\n셋이에요."}},
        # (line 5 is blank)
        "{not json",  # 6
        {"prompt": "넷", "chosen": "넷이에요."},  # 7: no rejected
        {"prompt": "다섯", "chosen": "  ", "rejected": "다섯이요."},  # 8: empty chosen
        {"prompt": "여섯", "chosen": "여섯이요.", "rejected": [assistant("여섯이요.")]},  # 9: the same answer
        {"prompt": "일곱", "chosen": [user("일곱이요.")], "rejected": "!일곱"},  # 10: chosen from the user
        {"messages": [user("여덟"), assistant("네")], "chosen": "여덟", "rejected": "!여덟"},  # 11: prompt answered
        {"conversations": [{"from": "robot", "value": "아홉"}], "chosen": {"from": "gpt", "value": "아홉"},
         "rejected": {"from": "gpt", "value": "!아홉"}},  # 12: unknown ShareGPT speaker
        {"chosen": "열", "rejected": "!열"},  # 13: no prompt at all
        [1, 2],  # 14: not an object
        {"prompt": "열하나", "chosen": "열하나", "rejected": "!열하나", "tags": "punct"},  # 15: bad metadata
    ]
    path = tmp_path / "pairs.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, line in enumerate(lines):
            f.write((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n")
            if i == 3:
                f.write("\n")  # a blank line is not a record
    result = read_pairs(path)
    assert result.lines == len(lines)
    assert result.line_numbers == [1, 2, 3, 4]
    rejects = {r["line"]: r["reason"] for r in result.rejects}
    assert rejects == {6: Reason.INVALID_JSON, 7: Reason.INVALID_SCHEMA, 8: Reason.EMPTY_CONTENT,
                       9: Reason.CHOSEN_EQUALS_REJECTED, 10: Reason.INVALID_SCHEMA, 11: Reason.INVALID_SCHEMA,
                       12: Reason.INVALID_SCHEMA, 13: Reason.INVALID_SCHEMA, 14: Reason.INVALID_SCHEMA,
                       15: Reason.INVALID_SCHEMA}
    details = {r["line"]: r["detail"] for r in result.rejects}
    assert "'rejected' is missing" in details[7] and details[8].startswith("chosen:")
    assert "only assistant" in details[10] and "not the user's" in details[11] and "'robot'" in details[12]
    assert all(r["raw"] for r in result.rejects)  # the original line is kept
    one, two, three, four = result.rows
    assert one == {"prompt": [user("안녕?")], "chosen": [assistant("안녕하세요.")],
                   "rejected": [assistant("!! 안녕하세요.")], "id": "a", "tags": ["punct"]}
    assert two["prompt"] == [{"role": "system", "content": "친절하게"}, user("날씨 어때요?")]
    assert two["chosen"] == [assistant("맑아요.")] and two["rejected"] == [assistant("assistant: 맑아요.")]
    assert three["prompt"] == [user("하나"), assistant("네."), user("둘")] and three["chosen"] == [assistant("둘이요.")]
    assert four["prompt"] == [{"role": "system", "content": "시스템"}, user("셋")]
    assert four["rejected"] == [assistant("\n\n셋이에요.")]


def test_method_settings_are_checked_against_the_methods_trl_config():
    dpo = TrainConfig(method="dpo", sft={"beta": 0.2, "loss_type": ["sigmoid"]}, max_length=128)
    values = dpo.sft_values()
    assert values["beta"] == 0.2 and values["max_length"] == 128 and "method" not in values
    assert "packing" not in values  # not a DPOConfig field: only what the method's config knows is passed
    assert TrainConfig(method="orpo", sft={"beta": 0.1}).sft_values()["beta"] == 0.1
    with pytest.raises(ValueError, match="not SFTConfig settings"):
        TrainConfig(sft={"beta": 0.2})
    with pytest.raises(ValueError, match="not DPOConfig settings"):
        TrainConfig(method="dpo", sft={"assistant_only_loss_typo": True})
    with pytest.raises(ValueError, match="set by korlora"):
        TrainConfig(method="dpo", sft={"bf16": True})
    with pytest.raises(ValueError, match="SFT only"):
        TrainConfig(method="dpo", packing=True)
    with pytest.raises(ValueError, match="unknown method"):
        TrainConfig(method="ppo")


def test_preflight_writes_every_reject_next_to_the_data_and_stops(tmp_path, tiny_ko):
    from korlora.train.driver import preflight

    good = write_pairs(tmp_path / "good.jsonl", n=4)
    checks = preflight(TrainConfig(model_name_or_path="tiny-ko", method="dpo", data_file=str(good)))
    assert checks == {"preference_pairs": 4, "prompt_prefix_share": 1.0}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text(encoding="utf-8") + '{"prompt": "x", "chosen": "y", "rejected": "y"}\n',
                   encoding="utf-8")
    with pytest.raises(KorloraError, match="1 of 5 lines are not valid pairs .*line 5, chosen_equals_rejected"):
        preflight(TrainConfig(model_name_or_path="tiny-ko", method="dpo", data_file=str(bad)))
    (reject,) = [json.loads(line) for line in (tmp_path / "bad.jsonl.rejects.jsonl").read_text().splitlines()]
    assert reject["line"] == 5 and reject["reason"] == "chosen_equals_rejected"


def mean_margin(model, tokenizer, pairs: list[dict]) -> float:
    """Mean of log p(chosen | prompt) − log p(rejected | prompt), summed over each answer's tokens (the
    tokens after the prompt with its generation header, up to and including the end of turn)."""
    margins = []
    with torch.no_grad():
        for pair in pairs:
            prompt = tokenizer.apply_chat_template(pair["prompt"], add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"]
            logps = []
            for side in ("chosen", "rejected"):
                ids = tokenizer.apply_chat_template(pair["prompt"] + pair[side], tokenize=True,
                                                    return_dict=True)["input_ids"]
                assert list(ids[:len(prompt)]) == list(prompt)
                x = torch.tensor([list(ids)])
                logprobs = model(input_ids=x).logits[0, :-1].float().log_softmax(-1)
                token_logps = logprobs.gather(-1, x[0, 1:, None])[:, 0]
                logps.append(token_logps[len(prompt) - 1:].sum().item())
            margins.append(logps[0] - logps[1])
    return sum(margins) / len(margins)


def config(tmp_path: Path, **overrides) -> TrainConfig:
    values = dict(model_name_or_path="tiny-ko", method="dpo", data_file=str(write_pairs(tmp_path / "pairs.jsonl")),
                  output_dir=str(tmp_path / "out"), storage_path=str(tmp_path / "ray"), max_steps=12,
                  save_steps=6, logging_steps=2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                  learning_rate=5e-3, eval_share=0.0, max_length=64, warmup_steps=0, lora_dropout=0.0,
                  experiment_name="test-dpo")
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.slow
def test_dpo_on_ray_raises_the_margin_of_clean_starts(tmp_path, tiny_ko, ray_local, monkeypatch):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from korlora.train.driver import run_training
    from korlora.train.preference import load_pairs

    monkeypatch.chdir(tmp_path)
    cfg = config(tmp_path, sft={"beta": 0.1})
    pairs = load_pairs(cfg.data_file)
    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    before = mean_margin(AutoModelForCausalLM.from_pretrained(tiny_ko).eval(), tokenizer, pairs)
    result = run_training(cfg)
    assert result.metrics["global_step"] == 12
    out = result.output_dir
    assert (out / "adapter_model.safetensors").is_file() and not (out / "ref").exists()
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_ko), str(out)).eval()
    after = mean_margin(model, tokenizer, pairs)
    print(f"mean log-probability margin chosen − rejected: before {before:.3f}, after {after:.3f}")
    assert after > before + 1.0

    db = sqlite3.connect(tmp_path / "mlflow.db")
    margins = [v for (v,) in db.execute("select value from metrics where key='rewards/margins' order by step")]
    assert len(margins) >= 5 and margins[-1] > margins[0]
    params = dict(db.execute("select key, value from params"))
    assert params["method"] == "dpo" and params["sft.beta"] == "0.1"
    assert {k for (k,) in db.execute("select key from metrics")} >= {"preference_pairs", "prompt_prefix_share"}


def sft_adapter(tmp_path: Path, tiny_ko: Path):
    """A LoRA adapter with non-zero weights (what an SFT run leaves), saved with its tokenizer."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_ko),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    path = tmp_path / "sft_adapter"
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_ko).save_pretrained(path)
    return model, path


@pytest.mark.slow
def test_dpo_continues_the_init_adapter_against_itself(tmp_path, tiny_ko, ray_local, monkeypatch):
    """SFT → DPO: the adapter is loaded trainable and is the starting point (a tiny learning rate leaves it
    where it was, not at a zero LoRA), and DPO's reference is that adapter (TRL's frozen "ref" copy): at the
    first step the policy equals the reference, so every reward is 0, while the adapter-disabled base differs."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from korlora.train.driver import run_training

    monkeypatch.chdir(tmp_path)
    sft, init = sft_adapter(tmp_path, tiny_ko)
    result = run_training(config(tmp_path, init_adapter=str(init), output_dir=str(tmp_path / "dpo"), max_steps=2,
                                 save_steps=2, logging_steps=1, learning_rate=1e-12, experiment_name="test-dpo-init"))
    start = load_file(init / "adapter_model.safetensors")
    end = load_file(result.output_dir / "adapter_model.safetensors")
    assert start.keys() == end.keys() and not (result.output_dir / "ref").exists()
    assert all(torch.allclose(start[k], end[k], atol=1e-6) for k in start)
    assert all(end[k].abs().max() > 1e-3 for k in end if "lora_B" in k)  # not a fresh (zero) LoRA

    db = sqlite3.connect(tmp_path / "mlflow.db")
    first = dict(db.execute("select key, value from metrics where step = 1 and key like 'rewards/%'"))
    assert all(abs(first[k]) < 1e-6 for k in ("rewards/chosen", "rewards/rejected", "rewards/margins"))
    # with the adapter disabled as reference the rewards would not be 0: the adapter moves the margin
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    base_margin = mean_margin(AutoModelForCausalLM.from_pretrained(tiny_ko).eval(), tokenizer, pairs)
    assert abs(mean_margin(sft.eval(), tokenizer, pairs) - base_margin) > 1e-2


@pytest.mark.slow
def test_orpo_runs_on_ray(tmp_path, tiny_ko, ray_local, monkeypatch):
    from peft import AutoPeftModelForCausalLM

    from korlora.train.driver import run_training

    monkeypatch.chdir(tmp_path)
    result = run_training(config(tmp_path, method="orpo", max_steps=4, save_steps=4, eval_share=0.25,
                                 sft={"beta": 0.1}, mlflow=False))
    assert result.metrics["global_step"] == 4 and result.metrics["eval_loss"] == result.metrics["eval_loss"]
    assert AutoPeftModelForCausalLM.from_pretrained(str(result.output_dir)) is not None


@pytest.mark.slow
def test_killed_dpo_worker_resumes_from_checkpoint(tmp_path, tiny_ko, ray_local, monkeypatch):
    """A DPO run continuing an adapter (so its checkpoints also hold TRL's "ref" copy) is killed at step 6 and
    resumes from the step-4 checkpoint instead of starting again."""
    from safetensors.torch import load_file

    from korlora.raycompat import init_local_ray
    from korlora.train.driver import run_training

    monkeypatch.chdir(tmp_path)
    _, init = sft_adapter(tmp_path, tiny_ko)
    marker = tmp_path / "killed"
    monkeypatch.setenv("KORLORA_TEST_KILL_AT_STEP", "6")
    monkeypatch.setenv("KORLORA_TEST_KILL_MARKER", str(marker))
    ray_local.shutdown()  # workers inherit the environment of a fresh local Ray
    init_local_ray(num_cpus=2)
    result = run_training(config(tmp_path, init_adapter=str(init), max_steps=8, save_steps=4,
                                 experiment_name="test-dpo-kill"))
    assert marker.read_text() == "6" and result.metrics["global_step"] == 8
    db = sqlite3.connect(tmp_path / "mlflow.db")
    steps = [s for (s,) in db.execute("select step from metrics where key='rewards/margins' order by step")]
    assert steps.count(2) == 1 and steps.count(4) == 1 and max(steps) == 8  # steps 1-4 were not redone
    start = load_file(init / "adapter_model.safetensors")
    end = load_file(result.output_dir / "adapter_model.safetensors")
    assert start.keys() == end.keys() and any(not torch.allclose(start[k], end[k]) for k in start)
