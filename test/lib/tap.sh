# test/lib/tap.sh: the few TAP helpers the bash integration tests use.
#   tap_plan N                         print the plan first
#   tap_ok STATUS DESCRIPTION          tap_ok 0 "it works"  (0 passes)
#   tap_is GOT WANT DESCRIPTION        compare strings, show both on failure
#   tap_done                           print the plan last; status = failures
#   ok, is                             short names for tap_ok, tap_is
TAP_COUNT=0
TAP_FAILED=0

tap_plan() { echo "1..$1"; }

tap_ok()
{
	TAP_COUNT=$((TAP_COUNT + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $TAP_COUNT - $2"
	else
		echo "not ok $TAP_COUNT - $2"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

tap_is()
{
	if [ "$1" = "$2" ]; then
		tap_ok 0 "$3"
	else
		tap_ok 1 "$3"
		echo "#   got:  '$1'"
		echo "#   want: '$2'"
	fi
}

ok() { tap_ok "$@"; }
is() { tap_is "$@"; }

tap_done()
{
	echo "1..$TAP_COUNT"
	[ "$TAP_FAILED" -eq 0 ]
}
