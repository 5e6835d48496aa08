#!/usr/bin/env bash
# Refuses an #include that crosses a forbidden arrow of the architecture (docs/architecture.md).
# Each part lists the parts it may include; third-party headers that belong to one part (DCMTK,
# SQLiteCpp, LibTorch) are refused elsewhere. Run by ctest (architecture.arrows) and by hand:
#   bash scripts/check-arrows.sh [SOURCE_ROOT]      exit 0 clean, 1 with one line per violation
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2

# part (folder) -> the project folders its files may include, besides its own.
declare -A allowed=(
  [common]=""
  [engine]="common"
  [storage]="common"
  [training]="common engine"
  [daemon/config]="common"
  [daemon/dicom]="common engine"
  [daemon/routing]="common storage daemon/config"
  [daemon/ingest]="common storage daemon/config daemon/dicom daemon/routing"
  [daemon/jobs]="common engine storage daemon/dicom"
  [daemon/send]="common storage daemon/config daemon/dicom"
  [daemon/http]="common storage"
  [daemon/app]="common storage daemon/config daemon/dicom daemon/routing daemon/ingest daemon/jobs daemon/send daemon/http"
  [daemon/cli]="common engine storage daemon/config daemon/dicom"
)
# third-party include prefix -> the only parts that may use it (tests may use anything).
declare -A owners=(
  ["dcmtk/"]="daemon/dicom"
  ["SQLiteCpp/"]="storage"
  ["torch/"]="engine training daemon/jobs daemon/cli"
  ["ATen/"]="engine training daemon/jobs daemon/cli"
  ["systemd/"]="daemon/app"
  ["boost/beast"]="daemon/http"
)

part_of() {  # the part a file belongs to: the longest matching folder
  local f=$1 best=""
  for p in "${!allowed[@]}"; do
    [[ $f == "$p"/* && ${#p} -gt ${#best} ]] && best=$p
  done
  echo "$best"
}

status=0
while IFS= read -r file; do
  part=$(part_of "$file")
  [ -n "$part" ] || continue
  while IFS= read -r line; do
    inc=${line#*:}
    n=${line%%:*}
    if [[ $inc =~ ^#include\ \"([^\"]+)\" ]]; then
      target=${BASH_REMATCH[1]}
      target_part=$(part_of "$target")
      [ -z "$target_part" ] && continue  # generated or local headers
      [ "$target_part" = "$part" ] && continue
      ok=0
      for a in ${allowed[$part]}; do [ "$a" = "$target_part" ] && ok=1; done
      if [ $ok = 0 ]; then
        echo "$file:$n: $part may not include $target ($target_part)"
        status=1
      fi
    elif [[ $inc =~ ^#include\ \<([^\>]+)\> ]]; then
      target=${BASH_REMATCH[1]}
      for prefix in "${!owners[@]}"; do
        [[ $target == "$prefix"* ]] || continue
        ok=0
        for o in ${owners[$prefix]}; do [ "$o" = "$part" ] && ok=1; done
        # An owner's headers keep the library to themselves: only its .cpp files include it.
        # (storage/Sql.h is storage's private helper for statements, included by its .cpp files only.)
        if [ $ok = 1 ] && [[ $file == *.h && $prefix != "torch/" && $prefix != "ATen/" && $file != storage/Sql.h ]]; then
          ok=0
        fi
        if [ $ok = 0 ]; then
          echo "$file:$n: <$target> belongs to ${owners[$prefix]// /, } (.cpp files), not $part"
          status=1
        fi
      done
    fi
  done < <(grep -n '^#include' "$file")
done < <(find common engine storage training daemon -name '*.h' -o -name '*.cpp' | sort)

if [ $status = 0 ]; then echo "check-arrows: every include follows docs/architecture.md"; fi
exit $status
