#!/bin/sh
# The install command of Dockerfile.gpu, with the torch pin and project install CI runs (.ci/run), so the image gets
# what CI tested: torch pinned first (PyPI's 2.13.0 is the CUDA 13 build on Linux; a local CPU
# wheel where one lies on disk), then the project with the given extras.
#   sh deploy/install.sh EXTRAS [--editable]
set -eu
extras="$1"
editable=""
if [ "${2:-}" = "--editable" ]; then
    editable="-e"
fi
python3 -m pip install -q --disable-pip-version-check --no-cache-dir 'torch==2.13.0' $editable ".[${extras}]"
