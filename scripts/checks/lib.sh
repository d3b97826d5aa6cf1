# Shared by the check scripts (source it): step headers, checks that record failures, and
# tool virtual environments pinned and created on first use. Needs ROOT and PYTHON set.

failed=()

step() { printf '\n==> %s\n' "$*"; }

# check NAME COMMAND...: run it; on failure say so loudly and remember it (the caller exits 1
# at the end if anything failed, so every check still runs).
check() {
  local name=$1
  shift
  if "$@"; then
    printf 'ok: %s\n' "$name"
  else
    printf '\n*** FAILED: %s ***\n' "$name" >&2
    failed+=("$name")
  fi
}

# ensure_venv DIR REQUIREMENT...: create DIR and install the pinned requirements unless the venv
# already holds exactly them (recorded in DIR/.requirements after a successful install).
ensure_venv() {
  local venv=$1
  shift
  local wanted
  wanted=$(printf '%s\n' "$@")
  if [[ -x $venv/bin/python && -f $venv/.requirements && $(<"$venv/.requirements") == "$wanted" ]]; then
    return 0
  fi
  printf 'setting up %s: %s\n' "${venv#"$ROOT"/}" "$*"
  [[ -x $venv/bin/python ]] || "$PYTHON" -m venv "$venv"
  local log
  log=$(mktemp)
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    printf '\n*** FAILED: pip install into %s ***\n' "$venv" >&2
    exit 1
  fi
  rm -f "$log"
  printf '%s' "$wanted" >"$venv/.requirements"
}

# finish NAME: exit 1 naming every failed check, or say that all passed.
finish() {
  if ((${#failed[@]})); then
    printf '\n*** %s: %d check(s) FAILED: %s ***\n' "$1" "${#failed[@]}" "${failed[*]}" >&2
    exit 1
  fi
  printf '\n== %s: all checks passed\n' "$1"
}
