#!/usr/bin/env bash
# Install what containet needs on a fresh Debian 12 machine (as root), then run a job.
#
#   bash scripts/bootstrap.sh demo      install, bring the lab up, open containet-tui
#   bash scripts/bootstrap.sh test      install, lint, run the whole test suite (what CI runs)
#   bash scripts/bootstrap.sh install   install only
#
# Safe to re-run: packages already there are not reinstalled, a running dockerd
# is reused, a lab that is up is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:-demo}

APT=(openvswitch-switch docker.io iperf3 libiperf0 busybox-static iptables iproute2 iputils-ping tcpdump
     procps util-linux python3 python3-venv python3-dev gcc tmux ethtool ovn-central ovn-host)
[ "$job" = test ] && APT+=(chromium vagrant)
VENV=${CONTAINET_VENV:-.venv}

say() { printf '\033[1m[containet]\033[0m %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "containet: error: run this as root (sudo bash scripts/bootstrap.sh $job)" >&2
    exit 3
fi

install_packages() {
    local missing=()
    for p in "${APT[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

install_python() {
    local py=python3
    # prefer a python3 >= 3.11 (Debian 12 ships 3.11)
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "containet: error: python3 >= 3.11 needed" >&2; exit 3; }
    [ -x "$VENV/bin/python" ] || { say "python venv $VENV"; "$py" -m venv "$VENV"; }
    say "pip install -e .[dev]"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[dev]'
    # bytecode now: with PYTHONDONTWRITEBYTECODE set, every `containet` run would
    # otherwise compile the project's sources again (~0.4 s a command)
    "$VENV/bin/python" -m compileall -q workbench scenarios screens >/dev/null
}

docker_answers() { timeout 5 "$VENV/bin/python" -c 'import docker; docker.from_env(timeout=4).ping()' >/dev/null 2>&1; }

start_dockerd() {
    docker_answers && return 0
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        say "systemctl start docker"
        systemctl start docker || true
    fi
    if ! docker_answers; then
        say "starting dockerd (--iptables=false --bridge=none), log in /var/log/containet-dockerd.log"
        nohup dockerd --iptables=false --bridge=none >/var/log/containet-dockerd.log 2>&1 &
    fi
    for _ in $(seq 1 60); do docker_answers && return 0; sleep 1; done
    echo "containet: error: dockerd did not answer within 60 s (see /var/log/containet-dockerd.log)" >&2
    exit 3
}

install_packages
install_python
start_dockerd
export PATH="$PWD/$VENV/bin:$PATH"

case "$job" in
    install)
        say "installed: containet, containet-tui in $VENV/bin"
        ;;
    demo)
        containet lab up
        exec containet-tui
        ;;
    test)
        say "lint: ruff, mypy, import contracts"
        ruff check workbench scenarios screens tests bench
        mypy workbench scenarios screens tests bench
        lint-imports
        say "Vagrantfile: vagrant validate (HOSTS=2 and HOSTS=8)"
        for n in 2 8; do HOSTS=$n VAGRANT_HOME=/tmp/containet-vagrant vagrant validate --ignore-provider >/dev/null; done
        say "tests: unit, integration (real lab), tui"
        set +e
        python -m pytest -q -p no:cacheprovider --durations=30 tests
        rc=$?
        set -e
        # the suite cleans its own instance; nothing it made may remain
        CONTAINET_INSTANCE=test containet clean >/dev/null || true
        exit $rc
        ;;
    *)
        echo "usage: bash scripts/bootstrap.sh demo|test|install" >&2
        exit 2
        ;;
esac
