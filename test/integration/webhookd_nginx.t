#!/usr/bin/env bash
# webhookd_nginx.t: the README's "behind a proxy" way, as written.  The
# nginx server block is taken from README.md itself (only its port,
# certificate paths and the shim's port are changed), and the shim runs
# with the options the README gives for it.  As written, a sender outside
# Frontegg's addresses (this test, from 127.0.0.1) gets 403 from nginx;
# with 127.0.0.1 allowed as well, a signed delivery over HTTPS reaches the
# real receive_webhook() and is committed, other paths get 404, and a
# request framed two ways is refused before it reaches the shim.  Skipped
# where nginx is not installed.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/lib/webhookd.sh

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	echo "1..0 # SKIP nginx is not installed"
	exit 0
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

DB=ta_webhookd_nginx
SECRET="nginx-test-secret-$RANDOM$RANDOM"
W=$TA_WORKDIR/webhookd-nginx
rm -rf "$W"
mkdir -p "$W/tmp"
chmod 0777 "$W/tmp"

cleanup()
{
	[ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	ta_webhookd_stop >/dev/null 2>&1
	ta_psql -d postgres -c 'ALTER SYSTEM RESET tenant_airbyte.webhook_secret' \
		-c 'SELECT pg_reload_conf()' >/dev/null 2>&1
	ta_psql -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT

ta_webhookd_database $DB >/dev/null || { echo "Bail out! could not create $DB"; exit 1; }
ta_psql -d postgres -c "ALTER SYSTEM SET tenant_airbyte.webhook_secret = '$SECRET'" \
	-c 'SELECT pg_reload_conf()' >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null ||
	{ echo "Bail out! openssl could not make a certificate"; exit 1; }

SHIM_PORT=$(ta_free_port)
METRICS_PORT=$(ta_free_port)
NGINX_PORT=$(ta_free_port)
# the options README.md gives the shim behind a proxy
TA_WEBHOOKD_DB=$DB ta_webhookd_start "$SHIM_PORT" --allow 127.0.0.1 \
	--max-connections-per-ip 0 --metrics-listen "127.0.0.1:$METRICS_PORT" ||
	{ echo "Bail out! the shim did not start"; exit 1; }

# nginx_conf EXTRA_ALLOW: README's server block in a minimal nginx.conf
nginx_conf()
{
	{
		cat <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/error.log;
events { worker_connections 256; }
http {
    access_log $W/access.log;
    client_body_temp_path $W/tmp/body;
    proxy_temp_path $W/tmp/proxy;
    fastcgi_temp_path $W/tmp/fastcgi;
    uwsgi_temp_path $W/tmp/uwsgi;
    scgi_temp_path $W/tmp/scgi;
CONF
		sed -n '/^```nginx$/,/^```$/p' README.md | sed '1d;$d' |
			sed -e "s|listen 443 ssl;|listen 127.0.0.1:$NGINX_PORT ssl;|" \
				-e "s|/etc/letsencrypt/live/hooks.example.com/fullchain.pem|$W/cert.pem|" \
				-e "s|/etc/letsencrypt/live/hooks.example.com/privkey.pem|$W/key.pem|" \
				-e "s|proxy_pass http://127.0.0.1:8080;|proxy_pass http://127.0.0.1:$SHIM_PORT;|" \
				-e "s|^\( *\)deny all;|\1$1\n\1deny all;|"
		echo "}"
	} >"$W/nginx.conf"
}

# start_nginx: (re)start nginx on $W/nginx.conf and wait until it answers
start_nginx()
{
	local i
	[ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	"$NGINX" -c "$W/nginx.conf" -g 'daemon off;' 2>>"$W/error.log" &
	NGINX_PID=$!
	for i in $(seq 1 100); do
		curl -s -o /dev/null --cacert "$W/cert.pem" "https://127.0.0.1:$NGINX_PORT/" && return 0
		sleep 0.1
	done
	return 1
}

# deliver TENANT: a signed tenant.created through nginx; prints the status
deliver()
{
	curl -s -o "$W/b" -w '%{http_code}' --cacert "$W/cert.pem" -H 'Content-Type: application/json' \
		-H "x-webhook-secret: $(ta_frontegg_jwt "$SECRET")" \
		--data-binary "{\"eventKey\":\"frontegg.tenant.created\",\"eventContext\":{\"tenantId\":\"$1\"},\"tenant\":{\"name\":\"Nginx $1\"}}" \
		"https://127.0.0.1:$NGINX_PORT/api/webhooks/frontegg"
}

nginx_conf ""
grep -q 'allow 99.81.198.187;' "$W/nginx.conf" && grep -q "proxy_pass http://127.0.0.1:$SHIM_PORT;" "$W/nginx.conf"
ok $? "README.md's nginx server block was found and adapted"
"$NGINX" -t -c "$W/nginx.conf" >"$W/t" 2>&1
ok $? "nginx -t accepts it"
start_nginx
ok $? "nginx serves it"
is "$(deliver outsider-$RANDOM)" 403 "as written, a sender outside Frontegg's addresses gets 403 from nginx"

nginx_conf "allow 127.0.0.1;"
start_nginx
T=nginx-tenant-$RANDOM
is "$(deliver "$T")" 202 "with 127.0.0.1 allowed too, a signed delivery over HTTPS through nginx is accepted (202)"
is "$(ta_psql -d $DB -At -c "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id = '$T'")" 1 \
	"... and committed to the inbox"
is "$(deliver "$T")" 200 "... the same delivery again is a duplicate (200)"
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$W/cert.pem" "https://127.0.0.1:$NGINX_PORT/health")" 404 \
	"paths other than the webhook routes get 404 at nginx"
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$W/cert.pem" "https://127.0.0.1:$NGINX_PORT/metrics")" 404 \
	"... /metrics included"
python3 - "$NGINX_PORT" "$W/cert.pem" >"$W/smuggle" 2>&1 <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10),
                     server_hostname="127.0.0.1") as s:
    s.sendall(b"POST /api/webhooks/frontegg HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
              b"GET /api/webhooks/frontegg HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError):
        pass
print(data.count(b"HTTP/1.1 "), data[:12].decode("latin1"))
PY
is "$(cat "$W/smuggle")" "1 HTTP/1.1 400" "a request with Content-Length and Transfer-Encoding gets one 400 and no second answer"
grep -q 'status=202' "$TA_WEBHOOKD_LOG" && ! grep -q 'status=400' "$TA_WEBHOOKD_LOG"
ok $? "... refused before the shim (whose log has the 202, and no 400)"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/metrics")" 200 \
	"the shim's /metrics is on its own loopback address"

tap_done
