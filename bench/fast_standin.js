// bench/fast_standin.js: a fast Airbyte stand-in for the engine's
// throughput and latency benchmarks (bench/provision_throughput,
// bench/provision_latency, bench/commit_to_request).
//
//   node bench/fast_standin.js --port PORT
//
// Why a second stand-in.  test/airbyte_standin.py is the one the tests use:
// it checks every request body against Airbyte's OpenAPI spec and models
// sources, destinations, jobs, OAuth and faults.  It is Python with a
// thread per connection, and on two cores it serves about 600 requests/s
// at 50 ms (700 at 128 connections), below the 640/s and 2,560/s
// ceilings the benchmarks compare the worker with, so they measured the
// stand-in.  This one is a single Node.js event loop that answers only
// what provisioning sends, with the same shapes as the spec's responses:
//
//   POST /applications/token       {access_token, token_type, expires_in}
//   POST /workspaces               {name, ...} -> WorkspaceResponse
//   GET  /workspaces               limit/offset pages -> WorkspacesResponse
//   GET|PATCH|DELETE /workspaces/{id}
//
// under /v1 or /api/public/v1, each after latency_ms, with the bearer
// token checked (401 otherwise).  A body whose name is not a string is a
// 400; nothing else is validated (the tests do that).  The control API is
// the subset of the Python stand-in's that the benchmarks read, with the
// same names and shapes:
//
//   GET  /_control/health          "ok"
//   POST /_control/reset           forget everything; a JSON body is config
//   POST /_control/config          merge settings: latency_ms, api_token,
//                                  client_id, client_secret
//   POST /_control/reset_counters  zero counters and the request log
//   GET  /_control/counters        {requests: {route: n}, statuses,
//                                  workspaces_created_by_name: {name: n},
//                                  live_workspaces_by_name, live_workspaces,
//                                  in_flight, peak_in_flight, tokens_issued,
//                                  auth_failures}; ?name_prefix=P filters
//                                  the by-name maps
//   GET  /_control/requests        {requests: [{route, name, query, status,
//                                  arrived_us, answered_us}]}, the last
//                                  200,000, CLOCK_REALTIME microseconds
//   POST /_control/seed_workspaces {count, prefix?}
//
// Times: arrived_us is taken when Node has parsed the request's headers
// (the request line and headers arrive in one segment on loopback).
'use strict';

const http = require('http');
const crypto = require('crypto');
const { performance } = require('perf_hooks');

const DEFAULTS = {
	api_token: 'standin-token',
	client_id: 'standin-client',
	client_secret: 'standin-secret',
	token_expires_in: 900,
	latency_ms: 0,
};

let config, workspaces, order, tokens, counters, log;

// realtime in microseconds, monotonic within the process
function nowUs()
{
	return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

// forget all state; cfg (optional) is merged over the defaults
function reset(cfg)
{
	config = Object.assign({}, DEFAULTS, cfg || {});
	workspaces = new Map();		// id -> {workspaceId, name, ..., deleted}
	order = [];					// ids in creation order
	tokens = new Map();
	resetCounters();
	counters.peak_in_flight = 0;
}

// zero what the benchmarks count, keep the workspaces
function resetCounters()
{
	const inFlight = counters ? counters.in_flight : 0;
	counters = {
		requests: {}, statuses: {}, created_by_name: new Map(),
		in_flight: inFlight, peak_in_flight: inFlight,
		tokens_issued: 0, auth_failures: 0,
	};
	log = [];
}

function newWorkspace(name, extra)
{
	const w = Object.assign({
		workspaceId: crypto.randomUUID(), name: name,
		dataResidency: 'auto', notifications: {},
	}, extra || {});
	workspaces.set(w.workspaceId, w);
	order.push(w.workspaceId);
	return w;
}

function publicWs(w)
{
	const o = { workspaceId: w.workspaceId, name: w.name,
				dataResidency: w.dataResidency, notifications: w.notifications };
	if (w.organizationId)
		o.organizationId = w.organizationId;
	return o;
}

function send(res, status, obj)
{
	const data = obj === null ? '' : JSON.stringify(obj);
	const headers = { 'Content-Length': Buffer.byteLength(data) };
	if (obj !== null)
		headers['Content-Type'] = 'application/json';
	res.writeHead(status, headers);
	res.end(data);
	return status;
}

function problem(res, status, title, detail)
{
	return send(res, status, {
		status: status,
		type: 'https://reference.airbyte.com/reference/errors#' + title,
		title: title, detail: detail, documentationUrl: null, data: {},
	});
}

// the API: returns the status sent
function api(req, res, route, args, query, body)
{
	if (route === 'POST /applications/token')
	{
		if (!body || body.client_id !== config.client_id || body.client_secret !== config.client_secret)
			return problem(res, 401, 'unauthorized', 'Invalid client credentials.');
		const token = 'tok-' + crypto.randomBytes(16).toString('hex');
		tokens.set(token, Date.now() + config.token_expires_in * 1000);
		counters.tokens_issued++;
		return send(res, 200, { access_token: token, token_type: 'Bearer', expires_in: config.token_expires_in });
	}
	const auth = req.headers.authorization || '';
	const token = auth.startsWith('Bearer ') ? auth.slice(7) : null;
	const exp = token !== null ? tokens.get(token) : undefined;
	if (token === null || !((config.api_token && token === config.api_token) || (exp !== undefined && exp > Date.now())))
	{
		counters.auth_failures++;
		return problem(res, 401, 'unauthorized', 'Invalid or expired bearer token.');
	}
	if (route === 'POST /workspaces')
	{
		if (!body || typeof body.name !== 'string')
			return problem(res, 400, 'bad-request', 'name must be a string.');
		const extra = {};
		if (body.organizationId)
			extra.organizationId = body.organizationId;
		if (body.notifications)
			extra.notifications = body.notifications;
		const w = newWorkspace(body.name, extra);
		counters.created_by_name.set(body.name, (counters.created_by_name.get(body.name) || 0) + 1);
		return send(res, 200, publicWs(w));
	}
	if (route === 'GET /workspaces')
	{
		const limit = parseInt(query.get('limit') || '20', 10);
		const offset = parseInt(query.get('offset') || '0', 10);
		if (!(limit >= 1 && limit <= 100) || !(offset >= 0))
			return problem(res, 400, 'bad-request', 'limit must be between 1 and 100, offset not negative.');
		const ids = (query.getAll('workspaceIds') || []).join(',').split(',').filter(x => x);
		const deleted = query.get('includeDeleted') === 'true';
		const items = [];
		let skipped = 0;
		for (const id of order)
		{
			const w = workspaces.get(id);
			if ((!deleted && w.deleted) || (ids.length && !ids.includes(id)))
				continue;
			if (skipped++ < offset)
				continue;
			items.push(publicWs(w));
			if (items.length >= limit)
				break;
		}
		const base = 'http://' + req.headers.host + req.url.split('?')[0];
		const out = { data: items, next: base + '?limit=' + limit + '&offset=' + (offset + limit) };
		if (offset > 0)
			out.previous = base + '?limit=' + limit + '&offset=' + Math.max(0, offset - limit);
		return send(res, 200, out);
	}
	const w = workspaces.get(args[0]);
	if (!w || w.deleted)
		return problem(res, 404, 'resource-not-found', 'Could not find a workspace with id ' + args[0] + '.');
	if (route === 'GET /workspaces/{id}')
		return send(res, 200, publicWs(w));
	if (route === 'PATCH /workspaces/{id}')
	{
		if (!body || typeof body.name !== 'string')
			return problem(res, 400, 'bad-request', 'name must be a string.');
		w.name = body.name;
		return send(res, 200, publicWs(w));
	}
	w.deleted = true;
	return send(res, 204, null);
}

// route key, as the Python stand-in names them, and path arguments
function routeOf(method, path)
{
	for (const p of ['/api/public/v1', '/v1'])
		if (path.startsWith(p + '/'))
		{
			path = path.slice(p.length);
			break;
		}
	if (method === 'POST' && path === '/applications/token')
		return ['POST /applications/token', []];
	if (path === '/workspaces' && (method === 'POST' || method === 'GET'))
		return [method + ' /workspaces', []];
	const m = /^\/workspaces\/([^/]+)$/.exec(path);
	if (m && (method === 'GET' || method === 'PATCH' || method === 'DELETE'))
		return [method + ' /workspaces/{id}', [m[1]]];
	return [null, []];
}

function byName(map, prefix)
{
	const out = {};
	for (const [k, v] of map)
		if (prefix === null || k.startsWith(prefix))
			out[k] = v;
	return out;
}

function control(req, res, what, query, body)
{
	const method = req.method;
	if (what === 'health')
		return send(res, 200, 'ok');
	if (what === 'reset' && method === 'POST')
	{
		reset(body);
		return send(res, 200, { ok: true });
	}
	if (what === 'config' && method === 'POST')
	{
		Object.assign(config, body || {});
		return send(res, 200, config);
	}
	if (what === 'reset_counters' && method === 'POST')
	{
		resetCounters();
		return send(res, 200, { ok: true });
	}
	if (what === 'seed_workspaces' && method === 'POST')
	{
		const n = (body && body.count) || 0, prefix = (body && body.prefix) || 'Seeded';
		for (let i = 1; i <= n; i++)
			newWorkspace(prefix + ' ' + i);
		return send(res, 200, { workspaces: workspaces.size });
	}
	if (what === 'counters' && method === 'GET')
	{
		const prefix = query.get('name_prefix');
		const live = new Map();
		let count = 0;
		for (const w of workspaces.values())
			if (!w.deleted)
			{
				count++;
				live.set(w.name, (live.get(w.name) || 0) + 1);
			}
		return send(res, 200, {
			requests: counters.requests, statuses: counters.statuses,
			workspaces_created_by_name: byName(counters.created_by_name, prefix),
			live_workspaces_by_name: byName(live, prefix),
			live_workspaces: count,
			in_flight: counters.in_flight, peak_in_flight: counters.peak_in_flight,
			tokens_issued: counters.tokens_issued, auth_failures: counters.auth_failures,
		});
	}
	if (what === 'requests' && method === 'GET')
	{
		const route = query.get('route'), prefix = query.get('name_prefix');
		return send(res, 200, { requests: log.filter(e => (route === null || e.route === route) &&
			(prefix === null || (e.name || '').startsWith(prefix))) });
	}
	return problem(res, 404, 'not-found', 'No control ' + method + ' ' + what + '.');
}

function handle(req, res)
{
	const arrived = nowUs();
	const url = new URL(req.url, 'http://x');
	const chunks = [];
	req.on('data', c => chunks.push(c));
	req.on('end', () =>
	{
		let body = null;
		if (chunks.length)
		{
			try
			{
				body = JSON.parse(Buffer.concat(chunks).toString());
			}
			catch (e)
			{
				body = undefined;
			}
		}
		if (url.pathname.startsWith('/_control/'))
		{
			control(req, res, url.pathname.slice(10), url.searchParams, body);
			return;
		}
		const [route, args] = routeOf(req.method, url.pathname);
		if (route === null)
		{
			problem(res, 404, 'not-found', 'No route ' + req.method + ' ' + url.pathname + '.');
			return;
		}
		const entry = { route: route, name: body && typeof body.name === 'string' ? body.name : null,
						query: url.search.slice(1), status: null, arrived_us: arrived, answered_us: null };
		counters.requests[route] = (counters.requests[route] || 0) + 1;
		counters.in_flight++;
		if (counters.in_flight > counters.peak_in_flight)
			counters.peak_in_flight = counters.in_flight;
		log.push(entry);
		if (log.length > 200000)
			log.splice(0, log.length - 200000);
		const counted = counters;
		const answer = () =>
		{
			let status;
			if (body === undefined)
				status = problem(res, 400, 'bad-request', 'The request body is not valid JSON.');
			else
				status = api(req, res, route, args, url.searchParams, body);
			counted.in_flight--;
			if (counted !== counters)
				counters.in_flight--;
			entry.status = status;
			entry.answered_us = nowUs();
			const s = counters.statuses[route] || (counters.statuses[route] = {});
			s[status] = (s[status] || 0) + 1;
		};
		if (config.latency_ms > 0)
			setTimeout(answer, config.latency_ms);
		else
			answer();
	});
}

const portArg = process.argv.indexOf('--port');
const port = portArg > 0 ? parseInt(process.argv[portArg + 1], 10) : 18080;
reset();
const server = http.createServer({ keepAliveTimeout: 60000 }, handle);
server.listen({ host: '127.0.0.1', port: port, backlog: 4096 }, () =>
	process.stderr.write('fast stand-in on 127.0.0.1:' + port + '\n'));
process.on('SIGTERM', () => process.exit(0));
