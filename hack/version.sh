#!/bin/sh
# Prints RAUTA's version from git: the nearest tag, commits since it and the
# commit (v0.3.0, v0.3.0-4-gabc1234), the bare commit before the first tag,
# "-dirty" when tracked files changed; "dev" outside a git checkout.
#   hack/version.sh          the version
#   hack/version.sh commit   the full commit hash (empty outside git)
#   hack/version.sh epoch    the commit time in Unix seconds, or
#                            $SOURCE_DATE_EPOCH when set (reproducible builds
#                            take their dates from here, never from "now")
cd "$(dirname "$0")/.." || exit 1
case "${1:-version}" in
version)
  git describe --tags --always --dirty 2>/dev/null || echo dev
  ;;
commit)
  git rev-parse HEAD 2>/dev/null || true
  ;;
epoch)
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    echo "$SOURCE_DATE_EPOCH"
  else
    git log -1 --format=%ct 2>/dev/null || echo 0
  fi
  ;;
*)
  echo "usage: $0 [version|commit|epoch]" >&2
  exit 2
  ;;
esac
