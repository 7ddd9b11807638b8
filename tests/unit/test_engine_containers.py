"""Every container goes through one place, with one hardening profile and named exceptions."""

from __future__ import annotations

from testdock.engine import ContainerSpec, Profile, container_options


def test_the_project_code_runs_hardened() -> None:
    options = container_options(ContainerSpec(
        "img:1", ["pytest"], 2**30, 1.5, {"A": "1"}, {"/host": {"bind": "/app/x", "mode": "rw"}},
        {"io.testdock.run": "execution"}, read_only=False, user="1000:1000", tmp_size="256m", pids_limit=64))
    assert options["mem_limit"] == options["memswap_limit"] == 2**30  # no swap
    assert options["nano_cpus"] == 1_500_000_000
    assert options["cap_drop"] == ["ALL"] and options["security_opt"] == ["no-new-privileges"]
    assert options["pids_limit"] == 64 and options["read_only"] is False and options["user"] == "1000:1000"
    assert options["tmpfs"] == {"/tmp": "rw,exec,nosuid,nodev,size=256m"}
    assert options["network_mode"] == "host" and options["detach"] is True
    assert options["labels"] == {"io.testdock.managed": "true", "io.testdock.run": "execution"}
    assert ContainerSpec("img:1").read_only is True  # read-only unless a phase says otherwise


def test_the_named_exceptions_run_as_their_image_says() -> None:
    for profile in (Profile.SERVICE, Profile.PLAIN):
        options = container_options(ContainerSpec("postgres:15", memory=2**28, profile=profile))
        assert not {"cap_drop", "security_opt", "read_only", "tmpfs", "user", "pids_limit"} & set(options)
        assert options["mem_limit"] == options["memswap_limit"] == 2**28
        assert options["labels"] == {"io.testdock.managed": "true"}
    assert "mem_limit" not in container_options(ContainerSpec("img", profile=Profile.PLAIN, network="none"))
