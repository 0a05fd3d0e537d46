"""Where the diagnosis runs: on a Ray cluster with GPUs it is a Ray task holding a GPU (so ``relearn`` never
loads the model on a CPU head); without Ray or GPUs it runs in this process."""

from __future__ import annotations

import os

import pytest

from korlora.diagnose.config import DiagnoseConfig


@pytest.mark.slow
def test_diagnosis_is_a_gpu_task_on_a_cluster_with_gpus(tiny_ko, tmp_path):
    """The cluster's GPU is a fake resource here: what is checked is that the task asked for and got one
    (``ray.get_gpu_ids()`` inside it), not CUDA."""
    import ray

    from korlora.diagnose.report import diagnose

    ray.shutdown()
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False,
             runtime_env={"env_vars": {"KORLORA_CACHE": os.environ["KORLORA_CACHE"]}})
    try:
        cfg = DiagnoseConfig(model_name_or_path="tiny-ko", output_dir=str(tmp_path), samples=0, max_new_tokens=2,
                             prompts=str(_two_prompts(tmp_path)))
        report = diagnose(cfg)
        assert report["ran_on"]["gpu_ids"] == ["0"]
        assert report["ran_on"]["pid"] != os.getpid()  # a Ray worker process, not the driver
        local = diagnose(DiagnoseConfig(**{**cfg.__dict__, "use_gpu": False}))
        assert local["ran_on"]["gpu_ids"] == [] and local["ran_on"]["pid"] == os.getpid()  # --use_gpu false
        assert local["greedy"] == report["greedy"]  # same model, same greedy answers wherever it runs
    finally:
        ray.shutdown()


def test_diagnosis_runs_here_without_ray(tiny_ko, tmp_path):
    import ray

    from korlora.diagnose.report import diagnose

    ray.shutdown()
    report = diagnose(DiagnoseConfig(model_name_or_path="tiny-ko", output_dir=str(tmp_path), samples=0,
                                     max_new_tokens=2, prompts=str(_two_prompts(tmp_path))))
    assert report["ran_on"] == {"device": "cpu", "dtype": "float32", "gpu_ids": [], "pid": os.getpid()}
    assert report["chat_template"] == "chatml"
    assert not ray.is_initialized()


def _two_prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"category": "daily", "text": "오늘 저녁은 뭘 먹을까요?"}\n'
                    '{"category": "finance", "text": "적금과 예금은 어떻게 다른가요?"}\n', encoding="utf-8")
    return path
