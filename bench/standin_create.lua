-- bench/standin_create.lua: wrk script for bench/provision_throughput's
-- measurement of the Airbyte stand-in alone.  Every request is what the
-- worker sends to provision a tenant: POST /v1/workspaces with a unique
-- name, the stand-in's token, and a connection of its own (the worker
-- never reuses a connection for a POST, so that libcurl cannot re-send
-- one silently).
local counter = 0

function init(args)
	token = os.getenv("TOKEN") or "standin-token"
end

function request()
	counter = counter + 1
	local body = string.format('{"name": "standin alone %d-%d"}', counter, math.random(1, 1000000000))
	return wrk.format("POST", "/v1/workspaces",
		{["Content-Type"] = "application/json",
		 ["Authorization"] = "Bearer " .. token,
		 ["Connection"] = "close"}, body)
end
