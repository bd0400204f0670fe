# Sourced by the bench scripts: makes sure benches/.venv has Dask (distributed and
# array) and NumPy, installing them on first use; sets $venv.
venv=benches/.venv
if ! "$venv/bin/python" -c 'import dask.distributed, dask.array, numpy' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet 'dask[distributed,array]' numpy
fi
