#!/usr/bin/env bash
# oauth_consent.t: connecting a tenant's account through OAuth, end to end
# against the Airbyte stand-in, and the SaaS's own OAuth apps.
#
#   - the round trip: initiate_oauth_consent() -> the stand-in's consent
#     page -> its approval redirects with secret_id -> complete_oauth() ->
#     a source in the tenant's workspace whose POST /sources carried the
#     secretId and no credentials, recorded once, and its connection
#     (the tenant has a pipeline template);
#   - refused, with nothing sent to Airbyte: a replayed secret_id, another
#     tenant's consent, an expired consent;
#   - Airbyte refusing the create gives the consent back;
#   - the shim's GET /api/oauth/callback, as a role that may only run
#     oauth_callback(): 302 to --oauth-done-url with status=ok and the
#     source id, status=error&reason=already_used on a replay, an HTML
#     page naming the failure without --oauth-done-url; the secret_id in
#     no log (shim or server);
#   - OAuth apps reach every new workspace and, with apply_oauth_apps(),
#     the existing ones; a server answering 501 fails the operation with a
#     clear error and leaves the workspace active and the app kept.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/webhookd.sh
. test/lib/tap.sh

tap_plan 28
if [ -z "${TA_STANDIN_URL:-}" ]; then
	echo "# the stand-in is not running (test/run starts it)"
	exit 1
fi

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset >/dev/null
cleanup()
{
	q "DELETE FROM tenant_airbyte.operations WHERE tenant_id LIKE 'oc-%';
	   DELETE FROM tenant_airbyte.oauth_consents WHERE tenant_id LIKE 'oc-%';
	   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'oc-%';
	   DELETE FROM tenant_airbyte.tenant_templates WHERE tenant_id LIKE 'oc-%';
	   DELETE FROM tenant_airbyte.pipeline_templates;
	   DELETE FROM tenant_airbyte.oauth_apps" >/dev/null
}
cleanup
drop_roles()
{
	q "DO \$\$ DECLARE r text; BEGIN
		FOR r IN SELECT rolname FROM pg_roles WHERE rolname IN ('oc_app', 'oc_shim') LOOP
			EXECUTE format('DROP OWNED BY %I', r); EXECUTE format('DROP ROLE %I', r);
		END LOOP; END \$\$" >/dev/null
}
drop_roles
q "CREATE ROLE oc_app LOGIN;
   GRANT EXECUTE ON FUNCTION tenant_airbyte.initiate_oauth_consent(text, text, text, text, jsonb),
	   tenant_airbyte.complete_oauth(text, text, text, text, jsonb) TO oc_app;
   CREATE ROLE oc_shim LOGIN;
   ALTER ROLE oc_shim SET log_statement = 'all';
   GRANT EXECUTE ON FUNCTION tenant_airbyte.oauth_callback(uuid, text) TO oc_shim" >/dev/null

# as_app TENANT SQL: run SQL as the application role in TENANT's context,
# with every statement logged (as is the shim's role, below), so that the
# check that no secret_id reaches the server log can fail; prints the
# result, or "ERROR <sqlstate> <message>".
as_app()
{
	PGOPTIONS="-c tenant_airbyte.tenant_id=$1 -c client_min_messages=warning -c log_statement=all" \
		"$TA_BINDIR/psql" -X -q -A -t -d "$WORKER_DB" -U postgres \
		-v VERBOSITY=sqlstate -c "SET ROLE oc_app" -c "$2" 2>&1 | sed -E 's/^(psql:[^ ]* )?ERROR:  /ERROR /'
}
# approve CONSENT_URL: what the user's browser does on the stand-in's
# consent page (GET it, submit the Approve form); prints the Location
# Airbyte sends the browser to.
approve()
{
	local page ticket
	page=$(curl -s "$1")
	case "$page" in *'id="approve"'*) ;; *) echo "no approve button"; return 1 ;; esac
	ticket=${1##*ticket=}
	curl -s -o /dev/null -w '%{redirect_url}' "$TA_STANDIN_URL/oauth/approve?ticket=$ticket"
}
posts_to_sources() { json_eval "$(ta_standin GET /_control/counters)" 'd["requests"].get("POST /sources", 0)'; }

# A pipeline template, so that a source gets its connection.
q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"db.internal\", \"port\": 5432,
	  \"database\": \"app\", \"schema\": \"{{tenant_schema}}\", \"username\": \"loader\", \"password\": \"oc-secret\"}}')" >/dev/null
for t in oc-a oc-b; do
	q "SELECT tenant_airbyte.provision_tenant('$t', 'OAuth $t')" >/dev/null
done

# --- the round trip ---------------------------------------------------------
consent=$(as_app oc-a "SELECT tenant_airbyte.initiate_oauth_consent('oc-a', 'facebook-marketing',
	'https://app.example/oauth/done', 'Meta Ads - oc-a', '{\"account_ids\": [\"1001\"]}')")
cid=$(json_eval "$consent" 'd["consent_id"]')
curl_url=$(json_eval "$consent" 'd["consent_url"]')
tap_is "$(q "SELECT status FROM tenant_airbyte.oauth_consents WHERE consent_id = '$cid' AND tenant_id = 'oc-a'")" pending \
	"initiate_oauth_consent records a pending consent for the tenant"
location=$(approve "$curl_url")
tap_ok "$([[ "$location" == "https://app.example/oauth/done?consent=$cid&secret_id="* ]]; echo $?)" \
	"approving on the consent page sends the browser to the redirect URL with the consent id and a secret_id"
secret=${location##*secret_id=}
before=$(posts_to_sources)
result=$(as_app oc-a "SELECT tenant_airbyte.complete_oauth('oc-a', 'facebook-marketing', '$secret', 'Meta Ads - oc-a')")
source_id=$(json_eval "$result" 'd.get("source_id", "")' 2>/dev/null)
tap_is "$(json_eval "$result" 'd["status"]' 2>/dev/null)" created "complete_oauth creates the source"
tap_is "$(q "SELECT count(*) || ' ' || min(source_type) FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'oc-a' AND airbyte_source_id = '$source_id'")" \
	"1 facebook-marketing" "... recorded once in tenant_sources"
oauth=$(ta_standin GET /_control/oauth)
tap_is "$(json_eval "$oauth" '[(r["secretId"] == "'"$secret"'", r["credentials_present"], r["configuration_keys"]) for r in d["source_requests"]]')" \
	"[(True, False, ['account_ids', 'sourceType'])]" \
	"... by one POST /sources that carried the secretId and no credentials"
tap_is "$(json_eval "$(ta_standin GET /_control/counters)" 'd["spec_violations"]')" "{}" \
	"... whose body matched the spec's SourceCreateRequest"
ws=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'oc-a'")
tap_is "$(json_eval "$(ta_standin GET /_control/state)" '[s["workspaceId"] for s in d["sources"] if s["sourceId"] == "'"$source_id"'"]')" \
	"['$ws']" "... in the tenant's own workspace"
tap_is "$(q "SELECT status || ' ' || airbyte_source_id FROM tenant_airbyte.oauth_consents WHERE consent_id = '$cid'")" "used $source_id" \
	"the consent is used, naming its source"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'oc-a' AND airbyte_source_id = '$source_id')" 60)" t \
	"the source gets its connection (the tenant has a pipeline)"

# --- refusals -----------------------------------------------------------------
before=$(posts_to_sources)
tap_is "$(as_app oc-a "SELECT tenant_airbyte.complete_oauth('oc-a', 'facebook-marketing', '$secret', 'Meta Ads again')" | head -1)" \
	"ERROR 42710" "a replayed secret_id is refused (42710)"

consent=$(as_app oc-a "SELECT tenant_airbyte.initiate_oauth_consent('oc-a', 'google-ads', 'https://app.example/oauth/done')")
cid2=$(json_eval "$consent" 'd["consent_id"]')
location=$(approve "$(json_eval "$consent" 'd["consent_url"]')")
secret2=${location##*secret_id=}
tap_is "$(as_app oc-b "SELECT tenant_airbyte.complete_oauth('oc-b', 'google-ads', '$secret2', 'Stolen')" | head -1)" \
	"ERROR P0002" "another tenant cannot complete the consent with its secret_id (no pending consent of its own)"
tap_is "$(as_app oc-b "SELECT tenant_airbyte.complete_oauth('oc-a', 'google-ads', '$secret2', 'Stolen')" | head -1)" \
	"ERROR 42501" "... nor by naming the consent's tenant"
q "UPDATE tenant_airbyte.oauth_consents SET expires_at = now() - interval '1 second' WHERE consent_id = '$cid2'" >/dev/null
tap_is "$(as_app oc-a "SELECT tenant_airbyte.complete_oauth('oc-a', 'google-ads', '$secret2', 'Google Ads - late')" | head -1)" \
	"ERROR 55000" "an expired consent is refused (55000)"
tap_is "$(posts_to_sources)" "$before" "none of the refused completions sent anything to Airbyte"

# Airbyte refuses the create (a secretId it never issued): the consent is free again.
q "UPDATE tenant_airbyte.oauth_consents SET expires_at = now() + interval '10 minutes' WHERE consent_id = '$cid2'" >/dev/null
tap_is "$(as_app oc-a "SELECT tenant_airbyte.complete_oauth('oc-a', 'google-ads', 'not-issued-by-airbyte', 'Google Ads - oc-a')" | head -1)" \
	"ERROR TA000" "a secretId Airbyte does not know fails with Airbyte's refusal"
tap_is "$(q "SELECT status || ' ' || (secret_sha256 IS NULL) FROM tenant_airbyte.oauth_consents WHERE consent_id = '$cid2'")" "pending true" \
	"... and the consent is pending again, so the real secret_id still completes it"
result=$(as_app oc-a "SELECT tenant_airbyte.complete_oauth('oc-a', 'google-ads', '$secret2', 'Google Ads - oc-a')")
tap_is "$(json_eval "$result" 'd["status"]' 2>/dev/null)" created "... which it does"

# --- the shim's callback --------------------------------------------------------
shim_port=$(ta_free_port)
done_port=$(ta_free_port)
shim_log=$TA_WORKDIR/webhookd-oauth-$shim_port.log
"$TA_BINDIR/tenant_airbyte_webhookd" --listen "127.0.0.1:$shim_port" \
	--conninfo "host=127.0.0.1 port=$TA_PORT user=oc_shim dbname=$WORKER_DB" \
	--oauth-done-url "http://127.0.0.1:$done_port/connected?app=1" --log-file "$shim_log" 2>>"$shim_log" &
shim_pid=$!
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$shim_port/health" && break; sleep 0.1; done
consent=$(as_app oc-b "SELECT tenant_airbyte.initiate_oauth_consent('oc-b', 'facebook-marketing',
	'http://127.0.0.1:$shim_port/api/oauth/callback', NULL, '{\"account_ids\": [\"2002\"]}')")
cid3=$(json_eval "$consent" 'd["consent_id"]')
callback=$(approve "$(json_eval "$consent" 'd["consent_url"]')")
answer=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$callback")
source3=$(q "SELECT airbyte_source_id FROM tenant_airbyte.oauth_consents WHERE consent_id = '$cid3' AND status = 'used'")
tap_is "$answer" "302 http://127.0.0.1:$done_port/connected?app=1&status=ok&source_id=$source3" \
	"the shim completes the consent and sends the user to --oauth-done-url with the source id"
tap_is "$(q "SELECT name FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'oc-b' AND airbyte_source_id = '$source3'")" \
	"facebook-marketing - ${cid3:0:8}" "... the source is the consenting tenant's, with the default name"
tap_is "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$callback")" \
	"302 http://127.0.0.1:$done_port/connected?app=1&status=error&reason=already_used" \
	"opening the callback link again: status=error&reason=already_used"
kill "$shim_pid"; wait "$shim_pid" 2>/dev/null
"$TA_BINDIR/tenant_airbyte_webhookd" --listen "127.0.0.1:$shim_port" \
	--conninfo "host=127.0.0.1 port=$TA_PORT user=oc_shim dbname=$WORKER_DB" --log-file "$shim_log" 2>>"$shim_log" &
shim_pid=$!
for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$shim_port/health" && break; sleep 0.1; done
page=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$shim_port/api/oauth/callback?consent=$(q "SELECT gen_random_uuid()")&secret_id=oc-guess-secret")
tap_ok "$([[ "$page" == *"no pending OAuth consent"* && "$page" == *no_pending_consent* && "$page" == *404 ]]; echo $?)" \
	"without --oauth-done-url the shim answers a page naming what failed (404, no pending consent)"
kill "$shim_pid"; wait "$shim_pid" 2>/dev/null
tap_is "$(grep -c -e "$secret" -e "$secret2" -e "${callback##*secret_id=}" -e oc-guess-secret "$shim_log")|$(grep -c "oauth callback: consent $cid3 completed" "$shim_log")" "0|1" \
	"the shim's log names the consent and its outcome, never a secret_id"
tap_is "$(grep -c -e "$secret" -e "$secret2" -e "${callback##*secret_id=}" -e oc-guess-secret -e not-issued-by-airbyte "$TA_PGLOG")|$(grep -q 'passes credentials to complete_oauth()' "$TA_PGLOG" && grep -q 'passes credentials to oauth_callback()' "$TA_PGLOG" && echo redacted)" "0|redacted" \
	"no secret_id reached the server log, though every statement of the application and the shim is logged"

# --- OAuth apps -----------------------------------------------------------------
q "SELECT tenant_airbyte.set_oauth_app('facebook-marketing',
	'{\"credentials\": {\"client_id\": \"saas-app-id\", \"client_secret\": \"saas-app-secret-oc\"}}')" >/dev/null
tap_is "$(q "SELECT tenant_airbyte.apply_oauth_apps() >= 2")" t "apply_oauth_apps() records one operation per existing workspace"
tap_is "$(wait_until "NOT EXISTS (SELECT FROM tenant_airbyte.operations WHERE kind = 'apply_oauth_apps' AND status IN ('pending', 'in_flight'))" 60)|$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE kind = 'apply_oauth_apps' AND tenant_id IN ('oc-a', 'oc-b') AND status = 'done'")" \
	"t|2" "... which the worker carries out"
q "SELECT tenant_airbyte.provision_tenant('oc-new', 'OAuth new')" >/dev/null
wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE kind = 'apply_oauth_apps' AND tenant_id = 'oc-new' AND status = 'done')" 60 >/dev/null
ws_a=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'oc-a'")
ws_new=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'oc-new'")
tap_is "$(json_eval "$(ta_standin GET /_control/oauth)" '[d["credentials"].get(w, {}).get("facebook-marketing", {}).get("configuration", {}).get("credentials", {}).get("client_id") for w in ("'"$ws_a"'", "'"$ws_new"'")]')" \
	"['saas-app-id', 'saas-app-id']" "the app reached an existing workspace and a new one (PUT .../oauthCredentials)"
ta_standin POST /_control/config '{"oauth_apps": "501"}' >/dev/null
q "SELECT tenant_airbyte.provision_tenant('oc-501', 'OAuth 501')" >/dev/null
wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE kind = 'apply_oauth_apps' AND tenant_id = 'oc-501' AND status IN ('failed', 'dead'))" 60 >/dev/null
tap_is "$(q "SELECT status || ' ' || (outcome ->> 'sqlstate') || ' ' || (outcome ->> 'message') FROM tenant_airbyte.operations WHERE kind = 'apply_oauth_apps' AND tenant_id = 'oc-501'")" \
	"failed 0A000 this Airbyte server does not support OAuth app overrides (HTTP 501)" \
	"on a server answering 501 the operation fails saying it does not support OAuth app overrides"
tap_is "$(q "SELECT w.status || ' ' || (SELECT count(*) FROM tenant_airbyte.oauth_apps) FROM tenant_airbyte.tenant_airbyte_workspaces AS w WHERE w.tenant_id = 'oc-501'")" "active 1" \
	"... the workspace is provisioned and active, and the app is kept to apply later"
ta_standin POST /_control/config '{"oauth_apps": "ok"}' >/dev/null

cleanup
drop_roles
exit $((TAP_FAILED > 0))
