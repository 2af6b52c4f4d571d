#!/usr/bin/env bash
# tests/tools/format.sh [--check | --diff] [FILE...]: formats the C sources of
# worker/, sinks/ and tests/ (or the FILEs given) with the repository's
# .clang-format, in place.
#   --check  changes nothing; lists the files that are not formatted and exits 1
#   --diff   changes nothing; prints what formatting would change, as a diff
# The style is pinned to Debian's clang-format 14 (apt-get install clang-format):
# other versions format some constructs differently, so they are refused.
# CLANG_FORMAT names another binary of that version.
set -euo pipefail
cd "$(dirname "$0")/../.."

mode=apply
case ${1:-} in
--check | --diff)
	mode=${1#--}
	shift
	;;
-h | --help)
	sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
	exit 0
	;;
esac

cf=${CLANG_FORMAT:-clang-format}
version=$("$cf" --version 2>/dev/null) || { echo "format.sh: $cf not found (apt-get install clang-format)" >&2; exit 2; }
[[ $version == *"clang-format version 14."* ]] || { echo "format.sh: needs clang-format 14, found: $version" >&2; exit 2; }

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
	mapfile -t files < <(git ls-files --cached --others --exclude-standard -- 'worker/*.[ch]' 'sinks/*.[ch]' 'tests/*.[ch]')
fi

rc=0
for f in "${files[@]}"; do
	case $mode in
	apply) "$cf" -i --style=file "$f" ;;
	check) "$cf" --style=file "$f" | cmp -s - "$f" || { echo "$f"; rc=1; } ;;
	diff) "$cf" --style=file "$f" | diff -u --label "a/$f" --label "b/$f" "$f" - || true ;;
	esac
done
[ "$mode" = check ] && [ $rc -ne 0 ] && echo "format.sh: these files are not formatted; run tests/tools/format.sh" >&2
exit $rc
