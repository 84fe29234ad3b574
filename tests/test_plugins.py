"""One extension pattern: spaces, importers and samplers arrive from installed packages through
entry points, like proxies; a name registered twice is an error naming both sources; and
``nas.testing`` holds the contract checks a plugin author runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nas.errors import NasError
from nas.registry import Registry
from nas.searchspaces import get_space
from nas.testing import check_proxy, check_space

from conftest import install_plugin

EXAMPLE = Path(__file__).parent / "plugin_example"


def _nas(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *argv], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def toy_env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("toy")
    return {**install_plugin(EXAMPLE, root / "site"), "NAS_HOME": str(root / "home")}


def test_a_plugin_space_works_with_score_correlate_and_search(toy_env):
    listed = _nas(toy_env, "spaces", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "toy-mlp" in [row["name"] for row in json.loads(listed.stdout)]

    imported = _nas(toy_env, "bench", "import", "toy-mlp", "toy-bench", "--json")  # the plugin's importer
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["rows"] == 64

    scored = _nas(
        toy_env,
        "score",
        "--space",
        "toy-mlp",
        "--proxy",
        "params,synflow",
        "--archs",
        "8-8-8,64-64-64",
        "--json",
        "--quiet",
    )
    assert scored.returncode == 0, scored.stderr
    params = {r["arch"]: r["score"] for r in json.loads(scored.stdout)["scores"] if r["proxy"] == "params"}
    assert params == {
        "8-8-8": 48 * 8 + 8 + 2 * (8 * 8 + 8) + 8 * 10 + 10,
        "64-64-64": 48 * 64 + 64 + 2 * (64 * 64 + 64) + 64 * 10 + 10,
    }

    correlated = _nas(
        toy_env,
        "correlate",
        "--space",
        "toy-mlp",
        "--proxy",
        "params",
        "--dataset",
        "cifar10",
        "--split",
        "valid",
        "--epochs",
        "10",
        "--sample",
        "all",
        "--bootstrap",
        "0",
        "--json",
    )
    assert correlated.returncode == 0, correlated.stderr
    [record] = json.loads(correlated.stdout)["results"]
    assert record["n"] == 64 and record["kendall_tau"] > 0.5  # the toy table grows with log(params)

    searched = _nas(
        toy_env,
        "search",
        "--space",
        "toy-mlp",
        "--proxy",
        "params",
        "--sampler",
        "toy-first(startup=1)",
        "--trials",
        "6",
        "--json",
    )
    assert searched.returncode == 0, searched.stderr
    result = json.loads(searched.stdout)
    assert result["evaluations"] == 6 and result["sampler"] == "toy-first"
    assert result["report"]["dataset"] == "cifar10"  # joined with the plugin's table


def test_a_plugin_taking_a_builtin_name_is_an_error_naming_both(tmp_path):
    pkg = tmp_path / "src"
    (pkg / "clash").mkdir(parents=True)
    (pkg / "clash" / "__init__.py").write_text(
        "from nas.searchspaces import SearchSpace\n\nclass Clash(SearchSpace):\n    name = 'nats-tss'\n"
    )
    (pkg / "pyproject.toml").write_text(
        "[build-system]\nrequires = ['setuptools']\nbuild-backend = 'setuptools.build_meta'\n"
        "[project]\nname = 'clash'\nversion = '0.2'\n"
        "[project.entry-points.'zcnas.spaces']\nnats-tss = 'clash:Clash'\n"
    )
    env = install_plugin(pkg, tmp_path / "site")
    result = _nas(env, "spaces")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "nas: error: search space 'nats-tss' is registered twice: by nas.searchspaces.nats_tss.NatsTSS "
        "and by clash.Clash (entry point 'nats-tss' of clash 0.2); rename one of them"
    )


def test_registering_a_proxy_name_twice_is_an_error():
    from nas.proxies import register_proxy

    with pytest.raises(NasError, match=r"proxy 'near' is registered twice: by nas\.proxies\.near\.\w+ and by "):

        @register_proxy("near")
        def near(model, batch):  # noqa: ARG001
            return 0.0


def test_the_registry_reads_aliases_and_lets_a_reloaded_module_register_again():
    reg: Registry[int] = Registry("number", "zcnas.test-numbers", aliases={"uno": "one"})
    reg.add("one", 1, source="mod.one")
    reg.add("one", 11, source="mod.one")  # the same source again: a reload, not a clash
    assert reg.get("UNO") == 11 and reg.canonical(" One ") == "one" and "uno" in reg
    with pytest.raises(NasError, match="unknown number 'two'; expected one of one"):
        reg.get("two")


def test_contract_checks_pass_on_the_builtins_and_catch_a_broken_space():
    for name in ("nats-tss", "nats-sss"):
        assert check_space(get_space(name), samples=3)["checked"][-1] == "network and params"
    nb101 = check_space(get_space("nb101"), samples=3, build=False)
    assert "index order" not in nb101["checked"]  # NB101 has no official index
    for proxy in ("params", "synflow", "naswot"):
        assert check_proxy(proxy)["repeatable"]

    sys.path.insert(0, str(EXAMPLE))
    try:
        from zcnas_toy.space import ToyMLP
    finally:
        sys.path.remove(str(EXAMPLE))
    assert check_space(ToyMLP())["samples"] == 5

    class Miscounted(ToyMLP):
        def num_params(self, arch, num_classes=10):
            return super().num_params(arch, num_classes) + 1

    with pytest.raises(AssertionError, match="num_params.*the built network has"):
        check_space(Miscounted())
