#!/usr/bin/env bash
# layers.sh: the shape of lib/, as docs/architecture.md describes it.
#   1. Each folder of lib/ includes only folders below it in the order of the frame's path:
#      core <- offload <- config <- writer <- link <- sink <- dispatch <- ops <- runtime
#      (no arrow back up: config knows no sink or link type, link/ knows no dispatcher).
#   2. A link type's class (class X : public Link) and a sink type's (class X : public Sink)
#      are named only in their own file pair and in their table (link_types.cpp,
#      sink_types.cpp): a new type is one file pair and one table row.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/lib"
order=(core offload config writer link sink dispatch ops runtime)
fail=0
rank() { local i; for i in "${!order[@]}"; do [ "${order[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }
for dir in "${order[@]}"; do
  mine=$(rank "$dir")
  while IFS=: read -r file target; do
    theirs=$(rank "$target")
    if [ "$theirs" -lt 0 ] || [ "$theirs" -gt "$mine" ]; then
      echo "FAIL: lib/$file includes $target/, which is above $dir/" >&2
      fail=1
    fi
  done < <(grep -oE '#include "[a-z_]+/' -r "$dir" --include='*.cpp' --include='*.hpp' |
           sed 's/#include "//; s/\/$//' | awk -F: -v d="$dir" '$2 != d')
done
for base in Link Sink; do
  table=$([ $base = Link ] && echo link/link_types.cpp || echo sink/sink_types.cpp)
  for header in $(grep -lE "^class [A-Za-z]+ : public $base\b" -r link sink --include='*.hpp'); do
    for class in $(grep -oE "^class [A-Za-z]+ : public $base\b" "$header" | awk '{print $2}'); do
      pair=${header%.hpp}
      users=$(grep -rlw "$class" . --include='*.cpp' --include='*.hpp' |
              sed 's|^\./||' | grep -v -e "^$pair\." -e "^$table$" || true)
      if [ -n "$users" ]; then
        echo "FAIL: $class (lib/$header) is named outside its file pair and $table: $(echo $users)" >&2
        fail=1
      fi
    done
  done
done
[ $fail -eq 0 ] || exit 1
echo "ok: lib/ folders include only the ones below them (${order[*]}); each link and sink type is named only in its own file pair and its table"
