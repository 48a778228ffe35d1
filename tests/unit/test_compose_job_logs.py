"""``deploy/compose.sh job`` keeps showing the containers' logs when
docker-compose's ``logs --follow`` dies mid-job (docker-compose v1 ends it with a
traceback when the engine reports a container it can no longer inspect): the
follower is started again, nothing is lost, the job's exit code is the
coordinator's, and a follower that keeps dying is given up after 5 restarts
while the job goes on.

The engine and docker-compose are small fakes on ``PATH`` that record what they
were asked to do."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support import ROOT

COMPOSE = ROOT / "deploy" / "compose.sh"

# docker-compose: `logs --follow` dies $FAKE_CRASHES times (after printing what
# the containers have said so far), then follows until `stop`; `up` starts the
# coordinator, which says its line at once.
FAKE_COMPOSE = r"""#!/usr/bin/env bash
state=$FAKE_STATE
echo "$*" >>"$state/calls"
case $1 in
  logs)
    echo x >>"$state/logs"
    n=$(wc -l <"$state/logs")
    echo "alice_1 | serving"
    [ -e "$state/coordinator" ] && echo "coordinator_1 | job finished"
    if [ "$n" -le "$FAKE_CRASHES" ]; then
      echo "AttributeError: 'NoneType' object has no attribute 'log_stream'" >&2
      exit 1
    fi
    while [ ! -e "$state/stopped" ]; do sleep 0.1; done ;;
  up) case "$*" in *coordinator*) touch "$state/coordinator" ;; esac ;;
  ps) echo c0ffee ;;
  stop) touch "$state/stopped" ;;
esac
exit 0
"""

# The engine: `wait` returns the coordinator's code once the log follower has
# been started as often as the test expects and, when $FAKE_WAIT_FOR is set,
# once compose.sh has said that text (so the job cannot end before it does).
FAKE_ENGINE = r"""#!/usr/bin/env bash
state=$FAKE_STATE
case $1 in
  info) exit 0 ;;
  wait)
    until [ -e "$state/logs" ] && [ "$(wc -l <"$state/logs")" -ge "$FAKE_FOLLOWS" ] \
        && { [ -z "$FAKE_WAIT_FOR" ] || grep -qF "$FAKE_WAIT_FOR" "$state/stderr"; }; do
      sleep 0.1
    done
    echo "$FAKE_EXIT" ;;
esac
"""


def _run_job(
    tmp_path: Path, crashes: int, follows: int, exit_code: int, wait_for: str = ""
) -> tuple[subprocess.CompletedProcess, int]:
    bin_dir = tmp_path / "bin"
    state = tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("docker-compose", FAKE_COMPOSE), ("docker", FAKE_ENGINE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_STATE": str(state),
        "FAKE_CRASHES": str(crashes),
        "FAKE_FOLLOWS": str(follows),
        "FAKE_EXIT": str(exit_code),
        "FAKE_WAIT_FOR": wait_for,
        "SPLITREC_RUNS": str(tmp_path / "runs"),
        "SPLITREC_UID": str(os.getuid()),
        "SPLITREC_GID": str(os.getgid()),
        "COMPOSE_PROJECT_NAME": "fakejob",
    }
    with (state / "stderr").open("w") as stderr:
        result = subprocess.run(
            [str(COMPOSE), "job"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=120,
        )
    result.stderr = (state / "stderr").read_text()
    follows_made = len((state / "logs").read_text().splitlines())
    return result, follows_made


def test_a_dead_log_follower_is_started_again_and_nothing_is_lost(tmp_path):
    result, follows = _run_job(tmp_path, crashes=1, follows=2, exit_code=0)
    assert result.returncode == 0, result.stderr
    assert follows == 2
    assert "following them again from their start" in result.stderr
    # The second follower showed the coordinator's line the first one missed.
    assert "coordinator_1 | job finished" in result.stdout
    assert "the job ended with exit code 0" in result.stderr


def test_a_follower_that_keeps_dying_is_given_up_and_the_job_goes_on(tmp_path):
    result, follows = _run_job(
        tmp_path, crashes=100, follows=6, exit_code=3, wait_for="the job goes on"
    )
    assert result.returncode == 3, result.stderr
    assert follows == 6
    assert "stopped following the logs 6 times" in result.stderr
    assert "deploy/compose.sh logs" in result.stderr
    assert "the job ended with exit code 3" in result.stderr
