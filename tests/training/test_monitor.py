import json

from mnistgan.training.monitor import eval_alarms, loss_alarms

from helpers import TINY, run_cli


def test_loss_alarms():
    assert loss_alarms({"loss_d": 1.2, "loss_g": 0.9, "d_acc": 0.6}, "bce") == []
    collapsed = loss_alarms({"loss_d": 0.001, "loss_g": 9.0, "d_acc": 1.0}, "bce")
    assert len(collapsed) == 1 and "D loss collapsed" in collapsed[0]
    assert "exploding" in loss_alarms({"loss_d": 0.5, "loss_g": 40.0, "d_acc": 1.0}, "bce")[0]
    assert loss_alarms({"loss_d": -3.0, "loss_g": 2.0, "d_acc": 0.5}, "wgan-gp") == []  # unbounded critic


def test_eval_alarm_on_histogram_collapse():
    assert eval_alarms({"classes_covered": 10}) == []
    assert "mode collapse" in eval_alarms({"classes_covered": 3, "histogram": [1] * 10})[0]


def test_eval_every_and_tensorboard(tmp_path):
    run = tmp_path / "run"
    out = run_cli(
        "train",
        "--run-dir",
        run,
        "--epochs",
        2,
        "--limit",
        32,
        "--eval-every",
        1,
        "--eval-samples",
        200,
        "--tensorboard",
        *TINY,
    ).stdout
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["epoch"] for r in evals] == [1, 2]
    assert all(r["n"] == 200 and r["fid"] > 0 and sum(r["histogram"]) == 200 for r in evals)
    assert "eval (n=200): FID" in out
    metrics = json.loads((run / "metrics.json").read_text())  # the final metrics, asked for by --eval-every
    assert metrics["samples"]["n"] == 200
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
