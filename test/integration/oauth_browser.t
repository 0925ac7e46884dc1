#!/usr/bin/env bash
# oauth_browser.t: an OAuth consent in a real browser.  Headless Chromium
# (Debian's chromium, driven through chromedriver's WebDriver API by
# test/lib/browser_consent.py) opens the consent URL initiate_oauth_consent()
# returned, clicks Approve on the stand-in's consent page, follows
# Airbyte's redirect to the shim's GET /api/oauth/callback and the shim's
# redirect to --oauth-done-url, a small page server of the test's own.
# Afterwards the done page shows status=ok and the source id, the source
# exists for the tenant, and the stand-in saw its POST /sources carry the
# secretId and no credentials.  A missing chromium fails the test: it is
# never skipped.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/webhookd.sh
. test/lib/tap.sh

tap_plan 5
if [ -z "${TA_STANDIN_URL:-}" ]; then
	echo "# the stand-in is not running (test/run starts it)"
	exit 1
fi
tap_ok "$(command -v chromium >/dev/null && command -v chromedriver >/dev/null; echo $?)" \
	"chromium and chromedriver are installed"

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset >/dev/null
q "DELETE FROM tenant_airbyte.operations WHERE tenant_id = 'ob-browser';
   DELETE FROM tenant_airbyte.oauth_consents WHERE tenant_id = 'ob-browser';
   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'ob-browser'" >/dev/null
q "DO \$\$ BEGIN
	IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'ob_shim') THEN DROP OWNED BY ob_shim; DROP ROLE ob_shim; END IF;
   END \$\$;
   CREATE ROLE ob_shim LOGIN;
   GRANT EXECUTE ON FUNCTION tenant_airbyte.oauth_callback(uuid, text) TO ob_shim" >/dev/null
q "SELECT tenant_airbyte.provision_tenant('ob-browser', 'Browser tenant')" >/dev/null

shim_port=$(ta_free_port)
done_port=$(ta_free_port)
driver_port=$(ta_free_port)
TA_WEBHOOKD_LOG=$TA_WORKDIR/webhookd-browser-$shim_port.log
"$TA_BINDIR/tenant_airbyte_webhookd" --listen "127.0.0.1:$shim_port" \
	--conninfo "host=127.0.0.1 port=$TA_PORT user=ob_shim dbname=$WORKER_DB" \
	--oauth-done-url "http://127.0.0.1:$done_port/connected" \
	--log-file "$TA_WEBHOOKD_LOG" 2>>"$TA_WEBHOOKD_LOG" &
shim_pid=$!
trap 'kill $shim_pid 2>/dev/null' EXIT
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$shim_port/health" && break; sleep 0.1; done

consent_url=$(q "SELECT tenant_airbyte.initiate_oauth_consent('ob-browser', 'facebook-marketing',
	'http://127.0.0.1:$shim_port/api/oauth/callback', 'Meta Ads - browser', '{\"account_ids\": [\"3003\"]}')
	->> 'consent_url'")
result=$(timeout 300 python3 test/lib/browser_consent.py "$consent_url" "$done_port" "$driver_port")
echo "# browser: $result"
source_id=$(q "SELECT airbyte_source_id FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'ob-browser' AND name = 'Meta Ads - browser'")
tap_is "$(json_eval "${result:-{\}}" 'd.get("url")' 2>/dev/null)" "http://127.0.0.1:$done_port/connected?status=ok&source_id=$source_id" \
	"the browser ends on the done page, sent there by the shim with status=ok and the source id"
tap_is "$(json_eval "${result:-{\}}" 'd.get("text")' 2>/dev/null)" "status=ok&source_id=$source_id" \
	"... which it rendered"
tap_ok "$([ -n "$source_id" ]; echo $?)" "the source exists for the tenant afterwards"
tap_is "$(json_eval "$(ta_standin GET /_control/oauth)" '[(r["secretId"].startswith("standin-secret-"), r["credentials_present"]) for r in d["source_requests"]]')" \
	"[(True, False)]" "the stand-in saw one POST /sources with the secretId and no credentials"

kill "$shim_pid" 2>/dev/null; wait "$shim_pid" 2>/dev/null
q "DELETE FROM tenant_airbyte.operations WHERE tenant_id = 'ob-browser';
   DELETE FROM tenant_airbyte.oauth_consents WHERE tenant_id = 'ob-browser';
   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'ob-browser';
   DROP OWNED BY ob_shim; DROP ROLE ob_shim" >/dev/null
exit $((TAP_FAILED > 0))
