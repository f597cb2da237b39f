# Sourced by the GPU benchmark scripts: makes trmzoo and the Python packages named in NEEDS importable on a
# machine without internet. When one is missing, the wheels in .whl/ (copied along; see docs/performance.md)
# and trmzoo itself are installed into /tmp/site, which goes on PYTHONPATH. Expects PY and NEEDS to be set.
if ! "$PY" -c "import trmzoo, ${NEEDS// /, }" 2>/dev/null; then
    echo "installing trmzoo (and .whl/ if present) into /tmp/site"
    if [[ -d .whl ]]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target /tmp/site .
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    "$PY" -c "import trmzoo, ${NEEDS// /, }" || { echo "error: trmzoo or one of: $NEEDS still missing (carry their wheels in .whl/)"; exit 1; }
fi
