#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and the demo need.
# Idempotent: when all packages are present it prints one line and changes nothing.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git clang-format clang-tidy
  # libraries (DESIGN.md "Dependencies")
  libpcsclite-dev libssl-dev libpoco-dev libcurl4-openssl-dev libacl1-dev libsystemd-dev
  libgtest-dev libgmock-dev googletest libp11-kit-dev
  # provider signatures: XML-DSig of confirmations (verified by the gateway, made by the simulator)
  libxmlsec1-dev
  # the card stack: pcscd, OpenSC as the PKCS#11 module, libp11 as the OpenSSL engine
  pcscd opensc opensc-pkcs11 libengine-pkcs11-openssl openssl
  # tests and demo: the virtual reader driver (never on a production host: it listens on all
  # interfaces), a software token, SMTP clients and Postfix as a real peer, ACL tools
  vsmartcard-vpcd softhsm2 gnutls-bin swaks postfix python3 python3-aiosmtpd sslscan acl
  util-linux iproute2 procps
  # monitoring: promtool checks the alert rules; the tests run their own prometheus process
  # (the package's own service is disabled below, it would listen on all interfaces)
  prometheus
  # the provider connection through an HTTP proxy: the tests run their own tinyproxy on 127.0.0.1
  # (the package's own service is disabled below)
  tinyproxy
  # reliability and benchmarks: gcore (core dumps), perf and callgrind, plots, TSan/libFuzzer
  gdb linux-perf valgrind gnuplot-nox clang libclang-rt-14-dev
  # packaging and unit checks
  systemd debhelper lintian dpkg-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

echo "install-deps: installing ${missing[*]}"
# Postfix asks how to configure itself; the tests configure their own instances.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# The prometheus and tinyproxy packages start and enable their own servers (prometheus on all
# interfaces, port 9090; tinyproxy on port 8888); the tests run their own on 127.0.0.1. Keep them
# from starting during the installation (a policy-rc.d that denies only these two, unless the host
# already has one) and disable them afterwards.
policy=
if [[ " ${missing[*]} " == *" prometheus "* || " ${missing[*]} " == *" tinyproxy "* ]] &&
  [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\n# demail-gateway install-deps.sh: temporary\ncase "$1" in prometheus|tinyproxy) exit 101;; esac\nexit 0\n' |
    $SUDO tee "$policy" >/dev/null
  $SUDO chmod 0755 "$policy"
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" || { [ -z "$policy" ] || $SUDO rm -f "$policy"; exit 1; }
[ -z "$policy" ] || $SUDO rm -f "$policy"
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus.service 2>/dev/null || true
  else
    $SUDO deb-systemd-helper disable prometheus.service 2>/dev/null || true
    $SUDO update-rc.d prometheus disable 2>/dev/null || true
  fi
  echo "install-deps: the prometheus service is disabled (the tests start their own)"
fi
if [[ " ${missing[*]} " == *" tinyproxy "* ]]; then
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now tinyproxy.service 2>/dev/null || true
  else
    $SUDO deb-systemd-helper disable tinyproxy.service 2>/dev/null || true
    $SUDO update-rc.d tinyproxy disable 2>/dev/null || true
  fi
  echo "install-deps: the tinyproxy service is disabled (the tests start their own)"
fi
