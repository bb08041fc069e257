"""flags.py: a flag per Config field, negative numbers as values, typed JSON values."""

import dataclasses

import pytest

import purea2c
from purea2c import cli, flags


def _overrides(argv):
    args = cli.build_parser().parse_args(["train", *argv])
    return flags.config_overrides(args)


def test_every_config_field_round_trips_through_its_flag():
    """Each field's default, written as on a command line, parses back to itself: new Config
    fields get working flags with no edit to the CLI."""
    for field in dataclasses.fields(purea2c.Config):
        default = getattr(purea2c.Config(), field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(default, bool):
            argv = [flag if default else "--no-" + flag[2:]]
        elif isinstance(default, tuple):
            argv = [flag, *map(str, default)]
        else:
            argv = [flag, str(default)]
        assert _overrides(argv) == {field.name: default}, field.name


def test_flags_build_the_config():
    overrides = _overrides(["--hidden-sizes", "32", "16", "--no-clear-buffer", "--gamma", "0.9",
                            "--pi_learning_rate", "3e-4", "--env", "Acrobot-v1"])
    assert overrides == {"hidden_sizes": (32, 16), "clear_buffer": False, "gamma": 0.9,
                         "pi_learning_rate": 3e-4, "env": "Acrobot-v1"}
    config = flags.make_config(None, overrides)
    assert (config.hidden_sizes, config.clear_buffer, config.gamma) == ((32, 16), False, 0.9)
    coax = flags.make_config("coax_a2c", {"gamma": 0.5})
    assert coax == purea2c.Config.preset("coax_a2c", gamma=0.5)
    # No preset named: the env's own preset (CartPole-v1's), else the defaults.
    assert flags.make_config(None, {}) == purea2c.Config.preset("CartPole-v1")
    assert flags.make_config(None, {"env": "Catch-bsuite"}) == purea2c.Config.preset(
        "Catch-bsuite")
    assert flags.make_config(None, {"env": "DeepSea-bsuite"}) == purea2c.Config(
        env="DeepSea-bsuite")


@pytest.mark.parametrize("text, value", [("-1", -1.0), ("-1e-3", -1e-3), ("-.5", -0.5),
                                         ("-2.5E+2", -250.0), ("-inf", -float("inf"))])
def test_a_negative_number_is_a_flag_value(text, value):
    assert _overrides(["--pi-learning-rate", text]) == {"pi_learning_rate": value}
    assert _overrides(["--log-std-init", text]) == {"log_std_init": value}
    assert flags.NEGATIVE_NUMBER.match(text)


@pytest.mark.parametrize("text", ["--gamma", "-h", "-x", "-1x", "--1", "-e3", "-"])
def test_options_are_not_negative_numbers(text):
    assert not flags.NEGATIVE_NUMBER.match(text)


def test_json_values_are_checked_against_the_field_type():
    assert flags.json_field_value("hidden_sizes", [32, 16]) == (32, 16)
    assert flags.json_field_value("gamma", 1) == 1.0 and isinstance(
        flags.json_field_value("gamma", 1), float)
    assert flags.json_field_value("clear_buffer", False) is False
    assert flags.json_field_value("env", "Acrobot-v1") == "Acrobot-v1"
    for name, value, rule in [("num_envs", None, "must be an int, got null"),
                              ("num_envs", 1.5, "must be an int, got 1.5"),
                              ("num_envs", True, "must be an int, got true"),
                              ("gamma", "0.9", 'must be a number, got "0.9"'),
                              ("clear_buffer", 1, "must be a bool, got 1"),
                              ("hidden_sizes", 64, "must be a list of ints, got 64"),
                              ("hidden_sizes", [64, None], "must be a list of ints"),
                              ("env", None, "must be a string, got null")]:
        with pytest.raises(ValueError, match=f"field {name} {rule}"):
            flags.json_field_value(name, value)


def test_every_field_value_of_a_config_passes_its_own_check():
    for field in dataclasses.fields(purea2c.Config):
        value = getattr(purea2c.Config(), field.name)
        value = list(value) if isinstance(value, tuple) else value
        flags.json_field_value(field.name, value)
