"""execctl's configuration: which source wins (flags, environment, profile, sourced stack env, stack env file),
what each source may carry, and that the key is never part of what is shown."""

from __future__ import annotations

import pytest

from execctl.config import ConfigProblem, read_env_file, resolve


@pytest.fixture
def stack_dir(tmp_path):
    d = tmp_path / "stack"
    d.mkdir()
    (d / "env").write_text("export API_URL=http://127.0.0.1:1111/api/v1\nexport API_KEY='stack key'\n"
                           "export PUBSUB_EMULATOR_HOST=127.0.0.1:2222\nexport GOOGLE_CLOUD_PROJECT=local-proj\n"
                           "export ORDER_EVENTS_TOPIC=order-events-x\n")
    return d


@pytest.fixture
def profiles(tmp_path):
    path = tmp_path / "profiles.toml"
    (tmp_path / "prod.key").write_text("prod-key-from-file\n")
    path.write_text(f'[prod]\nurl = "https://exec.example.com/api/v1/"\napi_key_file = "{tmp_path / "prod.key"}"\n'
                    'project = "prod-proj"\n[bare]\nurl = "https://bare.example.com/api/v1"\n')
    return path


def test_the_stack_env_file_is_read_as_the_shell_reads_it(stack_dir):
    env = read_env_file(stack_dir / "env")
    assert env["API_KEY"] == "stack key" and env["API_URL"] == "http://127.0.0.1:1111/api/v1"


def test_a_running_stack_is_found_with_its_pubsub_emulator(stack_dir):
    cfg = resolve(stack_dir=str(stack_dir), environ={})
    assert cfg.url == "http://127.0.0.1:1111/api/v1" and cfg.api_key.get_secret_value() == "stack key"
    assert (cfg.pubsub_emulator_host, cfg.project, cfg.order_events_topic) == ("127.0.0.1:2222", "local-proj",
                                                                               "order-events-x")
    assert cfg.source == {"url": f"local stack {stack_dir / 'env'}", "api_key": f"local stack {stack_dir / 'env'}"}


def test_flags_beat_environment_beats_profile_beats_the_stack(stack_dir, profiles):
    environ = {"EXECCTL_URL": "http://env/api/v1", "EXECCTL_API_KEY": "env-key", "EXECCTL_PROFILE": "prod",
               "EXECCTL_CONFIG": str(profiles)}
    flags = resolve(url="http://flag/api/v1", api_key="flag-key", stack_dir=str(stack_dir), environ=environ)
    assert (flags.url, flags.api_key.get_secret_value()) == ("http://flag/api/v1", "flag-key")
    env = resolve(stack_dir=str(stack_dir), environ=environ)
    assert (env.url, env.api_key.get_secret_value()) == ("http://env/api/v1", "env-key")
    profile = resolve(stack_dir=str(stack_dir), environ={"EXECCTL_PROFILE": "prod", "EXECCTL_CONFIG": str(profiles)})
    assert (profile.url, profile.api_key.get_secret_value()) == ("https://exec.example.com/api/v1",
                                                                 "prod-key-from-file")
    # Pub/Sub follows the service: a profile's project, never the local stack's emulator.
    assert (profile.pubsub_emulator_host, profile.project) == (None, "prod-proj")


def test_the_stacks_key_goes_to_the_stack_only(stack_dir, profiles):
    cfg = resolve(profile="bare", config_file=str(profiles), stack_dir=str(stack_dir), environ={})
    assert cfg.url == "https://bare.example.com/api/v1" and cfg.api_key is None and "api_key" not in cfg.source


def test_a_sourced_stack_env_is_used(tmp_path):
    cfg = resolve(stack_dir=str(tmp_path), environ={"API_URL": "http://src/api/v1", "API_KEY": "k"})
    assert cfg.url == "http://src/api/v1" and cfg.source["url"].startswith("env API_URL")


def test_unusable_configuration_names_the_problem(tmp_path, profiles):
    with pytest.raises(ConfigProblem, match="no service URL"):
        resolve(stack_dir=str(tmp_path), environ={})
    with pytest.raises(ConfigProblem, match="no .nope. table"):
        resolve(profile="nope", config_file=str(profiles), stack_dir=str(tmp_path), environ={})
    with pytest.raises(ConfigProblem, match="cannot read the API key file"):
        resolve(url="http://x", api_key_file="/nonexistent/key", stack_dir=str(tmp_path), environ={})


def test_the_key_is_never_in_what_is_shown(stack_dir):
    cfg = resolve(api_key="s3cret-value", stack_dir=str(stack_dir), environ={})
    assert "s3cret-value" not in repr(cfg) and "s3cret-value" not in str(cfg.describe())
    assert cfg.describe()["api_key"] == "set"
