"""Processes popdrivers starts stop with it: the app's server, the background build, and what the tests start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from popdrivers import pipeline

pytest_plugins = ["pytester"]
POPDRIVERS = Path(sys.executable).with_name("popdrivers")
# A build that takes several seconds on two shared cores (simulation, training, drivers), so it can be stopped.
SLOW_BUILD = "--n-artists 80 --tracks-per-artist 30 --budget-seconds 3"
SMALL_BUILD = "--n-artists 20 --tracks-per-artist 12 --budget-seconds 0"


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (exited, or a zombie nobody reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` (as servers do, past connections in TIME_WAIT)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


# ---- the test suite ----------------------------------------------------------------------------------------


def test_after_the_suite_no_process_a_test_started_is_alive(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    pytester.makeconftest((Path(__file__).with_name("conftest.py")).read_text())
    pytester.makepyfile(test_leaky=f"""
        import subprocess, sys
        from pathlib import Path

        def test_forgets_its_server():
            # A new session: not a child the runner would reap, and not in its process group either.
            server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
            Path({str(pid_file)!r}).write_text(str(server.pid))
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    pid = int(pid_file.read_text())
    wait_for(lambda: gone(pid), 15, "the forgotten process was not stopped")
    result.stdout.fnmatch_lines(["*stopped 1 process(es) the tests left running*"])


# ---- process groups -----------------------------------------------------------------------------------------


def test_a_stop_signal_stops_the_whole_group_and_waits_for_it(tmp_path: Path, process_groups) -> None:
    """What `popdrivers app` does with its server: SIGTERM to it reaches the server's own children too."""
    pids = tmp_path / "pids"
    inner = ("import subprocess, sys, time, os; "
             "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
             f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}'); time.sleep(600)")
    outer = ("import sys; from popdrivers.processes import run_process_group; "
             f"sys.exit(run_process_group([sys.executable, '-c', {inner!r}], grace_seconds=5))")
    runner = process_groups.start([sys.executable, "-c", outer])
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, 30, "the group did not start")
    server, child = (int(p) for p in pids.read_text().split())
    runner.send_signal(signal.SIGTERM)  # to the runner alone, as `kill PID` does
    assert runner.wait(timeout=15) == 0
    assert gone(server) and gone(child), "a process of the group outlived the stop"


def test_run_process_group_restores_the_signal_handlers() -> None:
    from popdrivers.processes import run_process_group

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    assert run_process_group([sys.executable, "-c", "raise SystemExit(3)"]) == 3
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_what_a_command_leaves_in_its_group_is_stopped_when_it_exits(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = ("import subprocess, sys; "
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
              f"open({str(pid_file)!r}, 'w').write(str(child.pid))")
    from popdrivers.processes import run_process_group

    assert run_process_group([sys.executable, "-c", script], grace_seconds=5) == 0
    assert gone(int(pid_file.read_text()))


# ---- the app's server ---------------------------------------------------------------------------------------


def start_app(process_groups, artifacts: Path, port: int, **kwargs) -> subprocess.Popen:
    return process_groups.start([str(POPDRIVERS), "app", "--artifacts", str(artifacts), "--port", str(port),
                                 "--address", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                **kwargs)


@pytest.mark.slow
def test_sigterm_to_popdrivers_app_stops_the_server_it_started(small_artifacts: Path, process_groups) -> None:
    port = free_port()
    app = start_app(process_groups, small_artifacts, port)
    wait_for(lambda: healthy(f"http://127.0.0.1:{port}") or app.poll() is not None, 90, "the app did not answer")
    (server,) = children(app.pid)
    app.send_signal(signal.SIGTERM)  # kill, a process manager, a container stop
    assert app.wait(timeout=30) == 0
    wait_for(lambda: gone(server), 5, "the Streamlit server outlived `popdrivers app`")
    assert port_is_free(port)


@pytest.mark.slow
def test_a_killed_popdrivers_app_takes_its_server_with_it(small_artifacts: Path, process_groups) -> None:
    port = free_port()
    app = start_app(process_groups, small_artifacts, port)
    wait_for(lambda: healthy(f"http://127.0.0.1:{port}") or app.poll() is not None, 90, "the app did not answer")
    (server,) = children(app.pid)
    app.send_signal(signal.SIGKILL)  # no handler runs: the server notices its parent is gone
    app.wait(timeout=10)
    wait_for(lambda: gone(server), 20, "the Streamlit server outlived a killed `popdrivers app`")
    wait_for(lambda: port_is_free(port), 10, "the port was not freed")


# ---- the background build -----------------------------------------------------------------------------------


def start_owner(process_groups, target: Path, options: str) -> tuple[subprocess.Popen, int]:
    """A stand-in for the app's server: starts the background build of ``target`` and waits; (owner, builder)."""
    script = ("import sys, time; from popdrivers.pipeline import start_background_build; "
              "status = start_background_build(sys.argv[1]); print(status.pid, flush=True); time.sleep(600)")
    owner = process_groups.start([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, pipeline.ENV_BUILD_OPTIONS: options})
    builder = int(owner.stdout.readline())
    # Stopped while it trains: the temporary artifact folder exists and holds the canonical table.
    wait_for(lambda: pipeline.build_status(target).stage in {"train", "importance", "drivers"}, 120,
             "the build did not reach training")
    return owner, builder


def wait_for_build(target: Path) -> pipeline.BuildStatus:
    """Wait until the build of ``target`` has ended and its process has exited."""
    builder = pipeline.build_status(target).pid
    wait_for(lambda: pipeline.build_status(target).state != "running", 240, "the build did not finish")
    if builder is not None:
        wait_for(lambda: gone(builder), 30, "the builder did not exit after the build")
    return pipeline.build_status(target)


def leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.tmp"))


@pytest.mark.slow
def test_ctrl_c_on_the_app_stops_its_build_cleanly_and_the_next_start_builds_again(tmp_path: Path,
                                                                                   process_groups) -> None:
    target = tmp_path / "artifacts"
    owner, builder = start_owner(process_groups, target, SLOW_BUILD)
    os.killpg(owner.pid, signal.SIGINT)  # Ctrl-C in a terminal: the foreground process group gets SIGINT
    wait_for(lambda: gone(builder), 30, "the build outlived Ctrl-C")
    status = json.loads((pipeline.build_dir(target) / "status.json").read_text())
    assert status["state"] == "stopped"
    assert not (pipeline.build_dir(target) / "lock").exists() and leftovers(target) == []
    assert pipeline.build_status(target).state == "missing"  # not "could not be built"
    os.environ[pipeline.ENV_BUILD_OPTIONS] = SMALL_BUILD
    try:
        assert pipeline.start_background_build(target).state == "running"
        assert wait_for_build(target).state == "done"
    finally:
        del os.environ[pipeline.ENV_BUILD_OPTIONS]
    pipeline.load_artifacts(target)


@pytest.mark.slow
def test_the_build_stops_when_its_app_is_killed(tmp_path: Path, process_groups) -> None:
    target = tmp_path / "artifacts"
    owner, builder = start_owner(process_groups, target, SLOW_BUILD)
    owner.send_signal(signal.SIGKILL)  # the app alone, killed: no handler runs in it
    owner.wait()
    wait_for(lambda: gone(builder), 30, "the build outlived its killed app")
    assert pipeline.build_status(target).state == "missing" and leftovers(target) == []


@pytest.mark.slow
def test_a_build_killed_with_its_app_leaves_nothing_that_blocks_the_next_start(tmp_path: Path,
                                                                               process_groups) -> None:
    target = tmp_path / "artifacts"
    owner, builder = start_owner(process_groups, target, SLOW_BUILD)
    os.killpg(owner.pid, signal.SIGKILL)  # the machine's OOM killer, `kill -9` on the group: nothing cleans up
    owner.wait()
    wait_for(lambda: gone(builder), 10, "the builder was not killed")
    assert (pipeline.build_dir(target) / "lock").exists() and leftovers(target)  # what the issue saw
    status = pipeline.build_status(target)
    assert status.state == "missing" and "started again" in status.message
    os.environ[pipeline.ENV_BUILD_OPTIONS] = SMALL_BUILD
    try:
        assert pipeline.start_background_build(target).state == "running"
        assert leftovers(target) == []  # the dead builder's temporary folder is removed
        assert wait_for_build(target).state == "done"
    finally:
        del os.environ[pipeline.ENV_BUILD_OPTIONS]
    assert "left by a build that did not finish" in (pipeline.build_dir(target) / "build.log").read_text()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_build_that_died_while_its_app_runs_is_reported_as_failed(tmp_path: Path) -> None:
    target = tmp_path / "artifacts"
    folder = pipeline.build_dir(target)
    folder.mkdir(parents=True)
    (folder / "lock").write_text(str(dead_pid()))  # killed alone (out of memory?) before it could clean up
    (folder / "status.json").write_text(json.dumps({"state": "running", "owner": os.getpid(), "stage": "train"}))
    status = pipeline.build_status(target)
    assert status.state == "failed" and "stopped before it finished" in status.error
    assert pipeline.start_background_build(target).state == "failed"  # it would die again: the user decides


def test_a_stale_lock_and_status_of_a_build_gone_with_its_app_are_recognised(tmp_path: Path) -> None:
    target = tmp_path / "artifacts"
    folder = pipeline.build_dir(target)
    folder.mkdir(parents=True)
    (folder / "lock").write_text(str(dead_pid()))
    (folder / "status.json").write_text(json.dumps({"state": "running", "owner": dead_pid(), "stage": "train"}))
    assert pipeline.build_status(target).state == "missing"
    (folder / "status.json").unlink()  # a lock alone, as an older version left it
    assert pipeline.build_status(target).state == "missing"


def test_build_options_are_checked_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from popdrivers.errors import InputError

    monkeypatch.setenv(pipeline.ENV_BUILD_OPTIONS, "--n-artist 20")
    with pytest.raises(InputError, match="--n-artist"):
        pipeline.start_background_build(tmp_path / "artifacts")
    assert not (pipeline.build_dir(tmp_path / "artifacts") / "lock").exists()
    request = pipeline.BuildRequest.from_options(tmp_path / "a", ["--data", "x.csv", "--budget-seconds", "5"])
    assert request.command("a") == "popdrivers build --out a --data " + str(Path("x.csv").resolve()) + \
        " --budget-seconds 5"


def test_popdrivers_version() -> None:
    import popdrivers

    done = subprocess.run([str(POPDRIVERS), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"popdrivers {popdrivers.__version__}"
