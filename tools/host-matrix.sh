#!/usr/bin/env bash
# The host matrix (issue 15): loads the release bundles in real open hosts, plays 16 bars at a set
# tempo and checks the notes that come out (count, place on the host's bar grid, note-offs, state
# after a project save and reload). Heavy, so not part of CI; re-run it after plugin changes and
# copy the table it prints into README.md's plugin section.
#
#   tools/host-matrix.sh [--carla DIR] [--carla-git GITDIR] [--no-bundle] [--bpm 100] [--bars 16]
#
# Hosts:
# - Carla (CLAP and VST3): built from a git directory of its public repository (falkTX/Carla; no
#   Debian 12 package), `make backend` only, under nice; driven through its Python API on JACK's
#   dummy driver, as JACK timebase master; a JACK client records the plugin's MIDI output.
# - pedalboard and DawDreamer (VST3) from PyPI, in a venv under target/host-matrix.
# Writes target/host-matrix/results.jsonl and results.md; exits non-zero when a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/host-matrix
mkdir -p "$out"
carla_dir=${CARLA_DIR:-$out/carla}
carla_git=""
bundle=1
bpm=100
bars=16
while [ $# -gt 0 ]; do
  case $1 in
    --carla) carla_dir=$2; shift 2 ;;
    --carla-git) carla_git=$2; shift 2 ;;
    --no-bundle) bundle=0; shift ;;
    --bpm) bpm=$2; shift 2 ;;
    --bars) bars=$2; shift 2 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
done

need_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}
need_apt jackd2 libjack-jackd2-dev liblo-dev libmagic-dev libx11-dev libsndfile1-dev pkg-config \
  g++ make python3-venv xvfb x11-apps

# Carla's backend library and Python API.
if [ ! -f "$carla_dir/bin/libcarla_standalone2.so" ]; then
  [ -n "$carla_git" ] || { echo "no Carla in $carla_dir: pass --carla-git GITDIR (falkTX/Carla)"; exit 2; }
  rm -rf "$carla_dir" && mkdir -p "$carla_dir"
  git --git-dir="$carla_git" archive HEAD | tar -x -C "$carla_dir"
  echo "== building Carla's backend (a few minutes)"
  nice -n 10 make -C "$carla_dir" backend -j"$(nproc)" HAVE_QT4=false HAVE_QT5=false \
    HAVE_PYQT=false HAVE_FLUIDSYNTH=false HAVE_YSFX=false >"$out/carla-build.log" 2>&1 \
    || { tail -20 "$out/carla-build.log"; exit 1; }
fi
carla_version=$(sed -n 's/.*CARLA_VERSION_STRING *"\(.*\)".*/\1/p' "$carla_dir/source/includes/CarlaDefines.h")

# Python hosts.
venv=$out/venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q pedalboard dawdreamer JACK-Client numpy
py=$venv/bin/python

if [ "$bundle" = 1 ]; then
  echo "== bundles"
  cargo xtask bundle jit-music --release >"$out/bundle.log" 2>&1 || { tail -20 "$out/bundle.log"; exit 1; }
fi
clap=$root/target/bundled/JiT-Music.clap
vst3=$root/target/bundled/JiT-Music.vst3
[ -e "$clap" ] && [ -e "$vst3" ] || { echo "bundles missing in target/bundled"; exit 1; }

echo "== JACK (dummy driver, 48 kHz, 1024 frames)"
jackd --no-realtime -n jit-matrix -d dummy -r 48000 -p 1024 >"$out/jackd.log" 2>&1 &
jack_pid=$!
export JACK_DEFAULT_SERVER=jit-matrix
echo "== Xvfb for the editor check"
display_file=$(mktemp)
Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp 3>"$display_file" >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill "$jack_pid" "$xvfb_pid" 2>/dev/null || true; rm -f "$display_file"' EXIT
for _ in $(seq 100); do [ -s "$display_file" ] && break; sleep 0.1; done
xdisplay=":$(head -1 "$display_file")"
for _ in $(seq 50); do
  "$py" -c 'import jack; jack.Client("probe", no_start_server=True).close()' 2>/dev/null && break
  sleep 0.2
done

results=$out/results.jsonl
: >"$results"
status=0
run() {
  echo "== $*"
  "$py" tools/host_matrix.py "$@" >"$out/last.log" 2>&1 || status=1
  grep -v '^{"host"' "$out/last.log" | grep -v 'unsupported CLAP extension' | tail -5 || true
  grep '^{"host"' "$out/last.log" | tee -a "$results" || { echo "no result"; status=1; }
}
run carla --format clap --carla "$carla_dir" --bundle "$clap" --bpm "$bpm" --bars "$bars"
run carla --format vst3 --carla "$carla_dir" --bundle "$vst3" --bpm "$bpm" --bars "$bars"
export DISPLAY=$xdisplay
run carla-editor --format clap --carla "$carla_dir" --bundle "$clap"
run carla-editor --format vst3 --carla "$carla_dir" --bundle "$vst3"
run pedalboard --format vst3 --bundle "$vst3"
run dawdreamer --format vst3 --bundle "$vst3"

# The README table: one row per host and format, every check with its detail.
"$py" - "$results" "$carla_version" "$bpm" "$bars" >"$out/results.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
names = {"carla": f"Carla {sys.argv[2]}", "carla-editor": f"Carla {sys.argv[2]}, editor",
         "pedalboard": "pedalboard", "dawdreamer": "DawDreamer"}
print(f"Measured by `tools/host-matrix.sh` ({sys.argv[4]} bars at {sys.argv[3]} BPM, 48 kHz):\n")
print("| host | format | result | checks |")
print("|---|---|---|---|")
for r in rows:
    ok = all(v[0] for v in r["checks"].values())
    detail = "; ".join(f"{'ok' if v[0] else 'FAIL'} {k}: {v[1]}" for k, v in r["checks"].items())
    print(f"| {names[r['host']]} | {r['format'].upper()} | {'pass' if ok else 'FAIL'} | {detail} |")
PY
cat "$out/results.md"
exit $status
