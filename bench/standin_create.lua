-- bench/standin_create.lua: wrk script for bench/provision_throughput's
-- measurement of the Airbyte stand-in alone.  Every request is what the
-- worker sends to provision a tenant: POST /v1/workspaces with a unique
-- name and the stand-in's token, on a kept-alive connection, as the worker
-- sends it (src/airbyte/http_client.c reuses connections, and hands libcurl
-- the body so that it cannot re-send a request by itself).
local counter = 0

function init(args)
	token = os.getenv("TOKEN") or "standin-token"
end

function request()
	counter = counter + 1
	local body = string.format('{"name": "standin alone %d-%d"}', counter, math.random(1, 1000000000))
	return wrk.format("POST", "/v1/workspaces",
		{["Content-Type"] = "application/json",
		 ["Authorization"] = "Bearer " .. token}, body)
end
