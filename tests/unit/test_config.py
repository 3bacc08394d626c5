import pytest

from hominem.config import Config, ConfigError, load_config
from tests.conftest import ROOT, SMOKE


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy:\n  lora:\n    rank: 8\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert str(bad) in str(e.value) and "policy.lora.rank" in str(e.value)


def test_unknown_override_and_bad_type_are_errors():
    with pytest.raises(ConfigError, match="reward.epoch"):
        load_config(SMOKE, ["reward.epoch=3"])
    with pytest.raises(ConfigError, match="reward.epochs"):
        load_config(SMOKE, ["reward.epochs=many"])


def test_dotted_override_is_typed():
    cfg = load_config(SMOKE, ["policy.lora.r=16", "pairs.pareto=true"])
    assert cfg.policy.lora.r == 16 and cfg.pairs.pareto is True


def test_extends_merges_parent(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {SMOKE}\nreward:\n  epochs: 7\n")
    cfg = load_config(child)
    assert cfg.reward.epochs == 7 and cfg.policy.model == "tiny:decoder"


def test_every_field_is_documented():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, Config.__mro__[1]):
                walk(ann)
    walk(Config)


@pytest.mark.parametrize("name", ["default.yaml", "smoke.yaml"])
def test_shipped_configs_load(name):
    load_config(ROOT / "configs" / name)
