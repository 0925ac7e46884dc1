#!/usr/bin/env bash
# make_uninstall.t: "make uninstall" removes every file "make install"
# put in place: the library (and its JIT bitcode), the control file, every
# SQL script and the webhook shim.  Both run into a staging DESTDIR, so
# the suite's own installation is not touched.
set -u
cd "$(dirname "$0")/../.."
. test/lib/tap.sh

STAGE=${TA_WORKDIR:-/tmp/tenant_airbyte_test}-uninstall
rm -rf "$STAGE"
mkdir -p "$STAGE"
PG_CONFIG=${PG_CONFIG:-pg_config}

make -s PG_CONFIG="$PG_CONFIG" DESTDIR="$STAGE" install >"$STAGE.log" 2>&1
tap_ok $? "make install into a staging directory"
installed=$(cd "$STAGE" && find . -type f | sort)
echo "$installed" | sed 's/^/#   installed /'
echo "$installed" | grep -q '/tenant_airbyte_webhookd$'
tap_ok $? "... it installs the shim"
echo "$installed" | grep -q '/tenant_airbyte\.control$'
tap_ok $? "... the control file"
echo "$installed" | grep -q '/tenant_airbyte--0\.1\.0--.*\.sql$'
tap_ok $? "... and the upgrade script"

make -s PG_CONFIG="$PG_CONFIG" DESTDIR="$STAGE" uninstall >>"$STAGE.log" 2>&1
tap_ok $? "make uninstall"
left=$(cd "$STAGE" && find . -type f -o -type l | sort)
tap_is "$left" "" "nothing make install put is left behind"
[ -n "$left" ] && echo "$left" | sed 's/^/#   left behind: /'

rm -rf "$STAGE" "$STAGE.log"
tap_done
