# test/lib/tap.sh: the few TAP helpers the bash integration tests use.
#   ok CONDITION_STATUS DESCRIPTION    ok 0 "it works"  (0 passes)
#   is GOT WANT DESCRIPTION
#   tap_done                           prints the plan; exit status = failures
TAP_COUNT=0
TAP_FAILED=0

ok()
{
	TAP_COUNT=$((TAP_COUNT + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $TAP_COUNT - $2"
	else
		echo "not ok $TAP_COUNT - $2"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

is()
{
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		echo "#   got:  '$1'"
		echo "#   want: '$2'"
	fi
}

tap_done()
{
	echo "1..$TAP_COUNT"
	[ "$TAP_FAILED" -eq 0 ]
}
