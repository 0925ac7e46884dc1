-- bench/webhookd_ingest.lua: wrk script for bench/webhookd_ingest.
-- Every request is a Frontegg tenant.created delivery with a valid
-- x-webhook-secret token (TOKEN in the environment) and a unique 1 KiB body,
-- so none is deduplicated away.  Counts 2xx answers per thread.
local threads = {}
local counter = 0

function setup(thread)
	thread:set("tid", #threads + 1)
	table.insert(threads, thread)
end

function init(args)
	accepted = 0
	other = 0
	token = os.getenv("TOKEN")
	wrk.method = "POST"
	wrk.path = "/api/webhooks/frontegg/tenant-created"
	wrk.headers["Content-Type"] = "application/json"
	wrk.headers["X-Webhook-Secret"] = token
end

function request()
	counter = counter + 1
	local head = string.format(
		'{"eventKey":"frontegg.tenant.created","eventContext":{"tenantId":"bench-%d-%d-%d"},"tenant":{"name":"Bench tenant"},"pad":"',
		tid, os.time(), counter)
	local body = head .. string.rep("x", 1024 - #head - 2) .. '"}'
	return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
	if status >= 200 and status < 300 then
		accepted = accepted + 1
	else
		other = other + 1
	end
end

function done(summary, latency, requests)
	local a, o = 0, 0
	for _, t in ipairs(threads) do
		a = a + t:get("accepted")
		o = o + t:get("other")
	end
	local seconds = summary.duration / 1e6
	io.write(string.format("accepted: %d  other answers: %d  errors: %d\n", a, o,
		summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
	io.write(string.format("accepted/s: %.0f   latency p50 %.2f ms  p99 %.2f ms\n",
		a / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
