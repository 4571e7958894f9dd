"""The episode record shows imagined vs real outcome for every executed step (a real Crafter episode)."""

from __future__ import annotations

import json

import pytest

from agents.calibration import ALL, EDGES, Calibration, logged_steps
from agents.episode import run_episode
from agents.rafa import RafaConfig
from tools.episodes import LOG_FILE, SUMMARY_FILE, read_log


def test_every_step_logs_imagined_next_to_real_and_the_summary_agrees(tmp_path, one_torch_thread) -> None:
    config = RafaConfig(imagination=True, max_decisions=6, max_env_steps=300)
    result = run_episode("make a wooden pickaxe", seed=1, out_dir=tmp_path, llm=None, config=config, video=False)
    records = read_log(tmp_path / LOG_FILE)
    actions = [r for r in records if r["type"] == "ActionStep"]
    plans = [r for r in records if r["type"] == "PlanningStep"]
    assert actions and len(plans) >= len(actions)
    for action in actions:
        seen = action["imagined"]
        assert seen is not None, action
        assert 0.0 <= seen["predicted_success"] <= 1.0 and 0.0 <= seen["raw_success"] <= 1.0
        assert seen["real_success"] == action["ok"]
        assert seen["agreed"] == ((seen["predicted_success"] >= 0.5) == action["ok"])
        real = action["data"]["inventory_delta"]
        assert seen["real_inventory_delta"] == {k: v for k, v in real.items() if k != "health" and v}
        assert seen["real_health_change"] == real.get("health", 0)
        assert seen["real_achievements"] == sorted(action["achievements"])
        assert isinstance(seen["predicted_inventory_delta"], dict)
        assert isinstance(seen["predicted_achievement_delta"], dict)
        assert isinstance(seen["predicted_health_change"], float)
    # each executed step was the one imagined at its decision
    by_index = {p["index"]: p for p in plans}
    for action in actions:
        plan = by_index[action["index"] - 1]
        assert plan["imagined"]["plan"] == [action["arguments"]["skill"]]
        assert plan["imagined"]["success_prob"] == action["imagined"]["predicted_success"]
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert summary == result.summary
    imagination = summary["imagination"]
    assert imagination["imagined_steps"] == len(actions)
    agreed = sum(a["imagined"]["agreed"] for a in actions) / len(actions)
    assert imagination["success_agreement"] == pytest.approx(agreed, abs=1e-3)
    assert imagination["vetoes"] == sum(len(p["vetoed"]) for p in plans)
    # the same records fit a calibration: one count per executed step
    calibration = Calibration.fit(logged_steps(tmp_path))
    assert sum(n for n, _ in calibration.counts[ALL]) == len(actions)


def test_calibration_maps_raw_estimates_to_real_rates_and_round_trips(tmp_path) -> None:
    pairs = [("collect wood", 0.1, True)] * 30 + [("place table", 0.0, False)] * 30 + [("collect wood", 0.9, True)] * 3
    calibration = Calibration.fit(pairs)
    assert calibration("collect wood", 0.1) > 0.8  # underrated by imagination, but it really succeeds
    assert calibration("place table", 0.01) < 0.2  # a confident, confirmed failure
    assert calibration("collect stone", 0.1) == pytest.approx(31 / 32)  # no own data: its bin's pooled rate
    calibration.save(tmp_path)
    assert Calibration.load(tmp_path) == calibration
    assert Calibration.load(tmp_path / "nowhere") is None
    assert len(calibration.counts[ALL]) == len(EDGES)


def test_damaged_calibration_names_the_file(tmp_path) -> None:
    Calibration.fit([("collect wood", 0.1, True)]).save(tmp_path)
    assert not list(tmp_path.glob("*.tmp*"))  # written through a temp file, renamed into place
    (tmp_path / "calibration.json").write_text('{"edges": [0.05,')
    with pytest.raises(ValueError, match=r"calibration.json is not readable JSON"):
        Calibration.load(tmp_path)
